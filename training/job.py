"""The skeleton of every training run; each entry point (pretraining, classification, question answering) fills it in.

    checks → data → model → Trainer → train → save → evaluate → predict → curves → card → push

A `TrainingJob` says what it checks before any compute, builds its data, model and Trainer in `prepare`, and may add
to the save and to the predictions. The order of the steps, the result files (`{train,eval,predict}_results.json`,
`all_results.json`), the curves, the model card and the push are the same for every job, and live here: a check or
a step that every run needs goes into `run_job` once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import PredictionOutput

from openbert.tokenization.command_line import given_options, parse_command_line

from .curves import plot_log_history
from .hub.card import CardFacts, write_run_card
from .hub.push import HubTarget, hub_target_from_training_args

STEP_FLAGS = {"train": "--do_train", "eval": "--do_eval", "predict": "--do_predict"}


@dataclass
class Prepared:
    """What a job builds before the first step: the Trainer with its data, and what the steps report about it."""

    trainer: Trainer
    # Numbers about the data by step ("train_samples", "eval_examples", ...), reported with that step's metrics.
    counts: dict[str, int] = field(default_factory=dict)
    predict_dataset: Any = None
    resume_from_checkpoint: str | None = None


class TrainingJob(ABC):
    """One kind of training run, as `run_job` runs it."""

    kind: ClassVar[Literal["pretrained", "finetuned"]]
    task: ClassVar[str]  # the Hub task of the trained model: the card's pipeline_tag
    steps: ClassVar[tuple[str, ...]] = ("train", "eval", "predict")

    def check(self, args: TrainingArguments) -> None:
        """Raise for options that cannot work, before any data is read or model loaded."""
        return None

    def trainer_arguments(self, args: TrainingArguments) -> dict[str, Any]:
        """Changes for the Trainer's copy of `args` (the caller's are never changed)."""
        return {}

    @abstractmethod
    def prepare(self, args: TrainingArguments, callbacks: Sequence[TrainerCallback]) -> Prepared:
        """The data, the model and the Trainer (with `callbacks` among its own)."""

    def save(self, trainer: Trainer) -> None:
        """Save the trained model with its tokenizer and code: a pipeline loads the output directory alone."""
        trainer.save_model()

    def write_predictions(self, trainer: Trainer, prefix: str, output: PredictionOutput | None) -> None:
        """Write what the "eval" or "predict" step predicted (`output` is None after "eval"); main process only."""
        return None

    @abstractmethod
    def card_facts(self) -> CardFacts:
        """What the model card says about the data and the starting point."""

    @abstractmethod
    def title(self) -> str:
        """The title of the curves."""


def run_job(job: TrainingJob, args: TrainingArguments, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Run the `--do_*` steps of `job`; return every number they reported (`args` is not changed)."""
    steps = steps_to_run(job, args)
    job.check(args)
    hub_target = hub_target_from_training_args(args)
    # The Trainer never pushes by itself (it would upload every checkpoint with its optimizer states): `finish` does.
    trainer_args = dataclasses.replace(args, push_to_hub=False, **job.trainer_arguments(args))
    set_seed(args.seed)
    prepared = job.prepare(trainer_args, callbacks)
    results: dict[str, Any] = dict(prepared.counts)
    for step in steps:
        results.update(STEPS[step](job, prepared))
    if prepared.trainer.is_world_process_zero():
        finish(job, prepared.trainer, args, results, hub_target)
    return {key: value for key, value in results.items() if isinstance(value, int | float) and not math.isnan(value)}


def steps_to_run(job: TrainingJob, args: TrainingArguments) -> list[str]:
    steps = [step for step in job.steps if getattr(args, f"do_{step}")]
    if not steps:
        raise ValueError(f"nothing to do: pass {' and/or '.join(STEP_FLAGS[step] for step in job.steps)}")
    return steps


def _train(job: TrainingJob, prepared: Prepared) -> dict[str, Any]:
    trainer = prepared.trainer
    metrics = trainer.train(resume_from_checkpoint=prepared.resume_from_checkpoint).metrics
    job.save(trainer)
    trainer.save_state()
    return _report(prepared, "train", metrics)


def _evaluate(job: TrainingJob, prepared: Prepared) -> dict[str, Any]:
    metrics = prepared.trainer.evaluate()
    if prepared.trainer.is_world_process_zero():
        job.write_predictions(prepared.trainer, "eval", None)
    return _report(prepared, "eval", metrics)


def _predict(job: TrainingJob, prepared: Prepared) -> dict[str, Any]:
    # Scored too when the data has labels (the Trainer computes metrics whenever labels exist).
    output = prepared.trainer.predict(prepared.predict_dataset, metric_key_prefix="predict")
    if prepared.trainer.is_world_process_zero():
        job.write_predictions(prepared.trainer, "predict", output)
    return _report(prepared, "predict", output.metrics)


def _report(prepared: Prepared, prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """Log the step's metrics with its data counts and write them to `<prefix>_results.json`."""
    metrics = {**metrics, **{key: value for key, value in prepared.counts.items() if key.startswith(f"{prefix}_")}}
    prepared.trainer.log_metrics(prefix, metrics)
    prepared.trainer.save_metrics(prefix, metrics)
    return metrics


STEPS: dict[str, Callable[[TrainingJob, Prepared], dict[str, Any]]] = {
    "train": _train, "eval": _evaluate, "predict": _predict,
}


def finish(job: TrainingJob, trainer: Trainer, args: TrainingArguments, results: dict[str, Any],
           hub_target: HubTarget | None) -> None:
    """The curves (of a training run: an evaluation has none), then the model card (which shows them), then the
    push when one was asked for."""
    output_dir = Path(args.output_dir)
    if "train_runtime" in results:
        plot_log_history(trainer.state.log_history, output_dir / "training_curves.png", title=job.title())
    card = write_run_card(output_dir, job.kind, job.task, args, trainer.state, results, job.card_facts())
    if card is not None and hub_target is not None:
        hub_target.push(output_dir)


def configure_logging(args: TrainingArguments) -> None:
    """Log to stdout at the process's level (`--log_level`, `--log_level_replica`), ours and the libraries'."""
    import datasets
    import transformers

    level = args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout, level=level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def command_defaults(command: str, given: Mapping[str, str], save_strategy: str = "epoch") -> dict[str, Any]:
    """The `TrainingArguments` defaults of openbert's training commands, where transformers' would surprise
    (`given`: the options the user set, as `given_options` returns them):

    - `output_dir`: `outputs/<command>` (transformers writes `trainer_output/` into the working directory);
    - a checkpoint per epoch (or per `save_strategy`), at most 2 kept (transformers saves every 500 steps and
      keeps all: the README's SST-2 example wrote 51 checkpoints, 747 MB, for a 1.2 M-parameter model);
      checkpoints follow an explicit `--eval_strategy`, and `--save_steps` means checkpoints by steps, as
      `--load_best_model_at_end` needs;
    - a loss point every 2% of the steps (transformers logs every 500 steps: short runs drew no curve);
    - pinned memory only with an accelerator (on a CPU it does nothing but warn).
    """
    if given.get("eval_strategy") in ("steps", "epoch"):
        save_strategy = given["eval_strategy"]
    elif "save_steps" in given:
        save_strategy = "steps"
    return {"output_dir": str(Path("outputs") / command.replace(" ", "-")), "save_strategy": save_strategy,
            "save_total_limit": 2, "logging_steps": 0.02, "dataloader_pin_memory": torch.accelerator.is_available()}


def run_command(command: str, dataclass_types: Sequence[type], run: Callable[..., dict[str, float]],
                argv: Sequence[str] | None, *, renamed: dict[str, str] | None = None, description: str | None = None,
                callbacks: Sequence[TrainerCallback] = (), save_strategy: str = "epoch") -> dict[str, float]:
    """`openbert <command>`: parse `argv` into `dataclass_types` (`TrainingArguments` last) with the command's
    defaults (`command_defaults`; `save_strategy` when the user chose none), then run the job."""
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = command_defaults(command, given_options(argv), save_strategy)
    parsed = parse_command_line(command, dataclass_types, argv, renamed=renamed, description=description,
                                defaults=defaults)
    configure_logging(parsed[-1])
    return run(*parsed, callbacks=callbacks)
