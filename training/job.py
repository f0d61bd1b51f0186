"""The skeleton of every training run; each entry point (pretraining, classification, question answering) fills it in.

    checks → output dir → data → model → Trainer → train → save → evaluate → predict → curves → card → push

A `TrainingJob` says what it checks before any compute, builds its data, model and Trainer in `prepare`, and may add
to the save and to the predictions. The order of the steps, the result files (`{train,eval,predict}_results.json`,
`all_results.json`), the curves, the model card and the push are the same for every job, and live here: a check or
a step that every run needs goes into `run_job` once. So does what keeps a run reliable: the output directory's
lock, resume and overwrite (`output_dir.py`), the Trainer that stops diverging runs and the final checks of weights
and metrics (`run_trainer.py`), saves that explain a full disk, and a token that never reaches the disk.
"""

from __future__ import annotations

import logging
import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from transformers import TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import PredictionOutput

from openbert.modeling import OpenBertPreTrainedModel
from openbert.tokenization.command_line import given_options, parse_command_line

from .curves import plot_log_history
from .hub.card import CardFacts, write_run_card
from .hub.push import HubTarget, hub_target_from_training_args
from .output_dir import (
    claimed_output_dir,
    clear_for_training,
    explained_save_errors,
    find_checkpoints,
    resume_checkpoint,
    trainer_copy,
)
from .run_trainer import RunTrainer, check_finite_metrics, check_finite_weights

logger = logging.getLogger(__name__)

STEP_FLAGS = {"train": "--do_train", "eval": "--do_eval", "predict": "--do_predict"}


@dataclass
class Prepared:
    """What a job builds before the first step: the Trainer with its data, and what the steps report about it."""

    trainer: RunTrainer
    # Numbers about the data by step ("train_samples", "eval_examples", ...), reported with that step's metrics.
    counts: dict[str, int | float] = field(default_factory=dict)
    predict_dataset: Any = None


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
        """The data, the model and the `RunTrainer` (with `callbacks` among its own). `args.resume_from_checkpoint`
        is the checkpoint folder the run resumes from (already resolved and checked), or None."""

    def save(self, trainer: RunTrainer) -> None:
        """Save the trained model with its tokenizer and code: a pipeline loads the output directory alone."""
        trainer.save_model()

    def write_predictions(self, trainer: RunTrainer, prefix: str, output: PredictionOutput | None) -> None:
        """Write what the "eval" or "predict" step predicted (`output` is None after "eval"); main process only."""
        return None

    @abstractmethod
    def card_facts(self) -> CardFacts:
        """What the model card says about the data and the starting point."""

    @abstractmethod
    def title(self) -> str:
        """The title of the curves."""


def run_job(job: TrainingJob, args: TrainingArguments, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Run the `--do_*` steps of `job`; return every number they reported (`args` is not changed).

    Everything checkable is checked before any compute: the job's options (`job.check`), then, with the output
    directory locked for the whole run, what a rerun does with it (resume, refuse or overwrite) and, when the run
    pushes, the token's access to the repo. The Trainer gets a copy of `args` that names the checkpoint to resume
    from and holds no token (it pickles its arguments into every checkpoint) and no push of its own.
    """
    steps = steps_to_run(job, args)
    job.check(args)
    asked_target = hub_target_from_training_args(args)

    def claim() -> tuple[str | None, HubTarget | None]:
        return resume_checkpoint(args), asked_target.checked() if asked_target is not None else None

    with claimed_output_dir(args, claim) as (resume, hub_target), explained_save_errors(args.output_dir):
        trainer_args = trainer_copy(args, push_to_hub=False, hub_token=None, resume_from_checkpoint=resume,
                                    **job.trainer_arguments(args))
        set_seed(args.seed)
        prepared = job.prepare(trainer_args, callbacks)
        if not isinstance(prepared.trainer, RunTrainer):
            raise TypeError(f"{type(job).__name__} built a {type(prepared.trainer).__name__}: a job's Trainer must "
                            "be a RunTrainer, which stops diverging runs before they reach a checkpoint")
        if getattr(args, "compile_layers", False):  # an OpenBertTrainingArguments field; the Trainer's copy lacks it
            compile_layers(prepared.trainer.model)
        if args.do_train and prepared.trainer.is_world_process_zero():
            clear_for_training(args, resume)  # only now: the data and the model have passed their checks
        results = run_steps(job, prepared, steps)
        if prepared.trainer.is_world_process_zero():
            finish(job, prepared.trainer, args, results, hub_target)
    return {key: value for key, value in results.items() if isinstance(value, int | float) and math.isfinite(value)}


def compile_layers(model: torch.nn.Module) -> None:
    """`--compile_layers`: `compile_layers()` on every openbert model inside the Trainer's model (an openbert head,
    the encoder of a sentence-transformers model, both halves of a BERT2BERT model), each once."""
    compiled: set[int] = set()
    for module in model.modules():  # outer models come before the ones they hold
        if isinstance(module, OpenBertPreTrainedModel) and id(module) not in compiled:
            module.compile_layers()
            compiled.update(id(inner) for inner in module.modules())
    if not compiled:
        logger.warning("--compile_layers: the %s holds no openbert model, so nothing was compiled; it runs eagerly.",
                       type(model).__name__)


def run_steps(job: TrainingJob, prepared: Prepared, steps: Sequence[str]) -> dict[str, Any]:
    """Every number the steps report; on Ctrl-C, say which checkpoint a rerun resumes from."""
    results: dict[str, Any] = dict(prepared.counts)
    try:
        for step in steps:
            results.update(STEPS[step](job, prepared))
    except KeyboardInterrupt:
        last = find_checkpoints(prepared.trainer.args.output_dir).last
        logger.warning("Interrupted. %s", f"The last complete checkpoint is {last}: run the same command again to "
                       "resume from it." if last else "No complete checkpoint was saved.")
        raise
    return results


def steps_to_run(job: TrainingJob, args: TrainingArguments) -> list[str]:
    steps = [step for step in job.steps if getattr(args, f"do_{step}")]
    if not steps:
        raise ValueError(f"nothing to do: pass {' and/or '.join(STEP_FLAGS[step] for step in job.steps)}")
    return steps


def _train(job: TrainingJob, prepared: Prepared) -> dict[str, Any]:
    trainer = prepared.trainer
    metrics = trainer.train(resume_from_checkpoint=trainer.args.resume_from_checkpoint).metrics
    # The last line of defence: RunTrainer stops at the first non-finite loss or gradient.
    check_finite_weights(trainer.model, trainer.args.output_dir)
    check_finite_metrics(metrics, trainer.args.output_dir)
    job.save(trainer)
    trainer.save_state()
    return _report(prepared, "train", metrics)


def _evaluate(job: TrainingJob, prepared: Prepared) -> dict[str, Any]:
    metrics = prepared.trainer.evaluate()
    check_finite_metrics(metrics, prepared.trainer.args.output_dir)
    if prepared.trainer.is_world_process_zero():
        job.write_predictions(prepared.trainer, "eval", None)
    return _report(prepared, "eval", metrics)


def _predict(job: TrainingJob, prepared: Prepared) -> dict[str, Any]:
    # Scored too when the data has labels (the Trainer computes metrics whenever labels exist).
    output = prepared.trainer.predict(prepared.predict_dataset, metric_key_prefix="predict")
    check_finite_metrics(output.metrics, prepared.trainer.args.output_dir)
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


def finish(job: TrainingJob, trainer: RunTrainer, args: TrainingArguments, results: dict[str, Any],
           hub_target: HubTarget | None) -> None:
    """The curves (of a training run: an evaluation has none), then the model card (which shows them), then the
    push when one was asked for."""
    output_dir = Path(args.output_dir)
    if "train_runtime" in results:
        plot_log_history(trainer.state.log_history, output_dir / "training_curves.png", title=job.title())
    results = {key: value for key, value in results.items() if not isinstance(value, float) or math.isfinite(value)}
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


# One kernel over all parameters instead of a loop of small operations per parameter (torch 2.4+, CPU and CUDA):
# the optimizer step of a base-size BERT took 92 ms fused against 400 ms for the loop on a 2-core CPU.
FUSED_ADAMW = "adamw_torch_fused"


def command_defaults(command: str, given: Mapping[str, str], save_strategy: str = "epoch") -> dict[str, Any]:
    """The `TrainingArguments` defaults of openbert's training commands, where transformers' would surprise
    (`given`: the options the user set, as `given_options` returns them):

    - `output_dir`: `outputs/<command>` (transformers writes `trainer_output/` into the working directory);
    - a checkpoint per epoch (or per `save_strategy`), at most 2 kept (transformers saves every 500 steps and
      keeps all: the README's SST-2 example wrote 51 checkpoints, 747 MB, for a 1.2 M-parameter model);
      checkpoints follow an explicit `--eval_strategy`, and `--save_steps` means checkpoints by steps, as
      `--load_best_model_at_end` needs;
    - a loss point every 2% of the steps (transformers logs every 500 steps: short runs drew no curve);
    - pinned memory only with an accelerator (on a CPU it does nothing but warn);
    - AdamW's fused kernel (`FUSED_ADAMW`), which transformers picks by default only with torch >= 2.8.
    """
    if given.get("eval_strategy") in ("steps", "epoch"):
        save_strategy = given["eval_strategy"]
    elif "save_steps" in given:
        save_strategy = "steps"
    return {"output_dir": str(Path("outputs") / command.replace(" ", "-")), "save_strategy": save_strategy,
            "save_total_limit": 2, "logging_steps": 0.02, "dataloader_pin_memory": torch.accelerator.is_available(),
            "optim": FUSED_ADAMW}


def run_command(command: str, dataclass_types: Sequence[type], run: Callable[..., dict[str, float]],
                argv: Sequence[str] | None, *, renamed: dict[str, str] | None = None, description: str | None = None,
                callbacks: Sequence[TrainerCallback] = (), save_strategy: str = "epoch") -> dict[str, float]:
    """`openbert <command>`: parse `argv` into `dataclass_types` (`TrainingArguments` last) with the command's
    defaults (`command_defaults`; `save_strategy` when the user chose none), then run the job. Under torchrun the
    process group the Trainer made is destroyed at the end, as torch asks of distributed programs (left to the
    interpreter's exit, a finished two-process run once aborted there: "terminate called without an active
    exception", exit code -6)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = command_defaults(command, given_options(argv), save_strategy)
    parsed = parse_command_line(command, dataclass_types, argv, renamed=renamed, description=description,
                                defaults=defaults)
    configure_logging(parsed[-1])
    try:
        return run(*parsed, callbacks=callbacks)
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
