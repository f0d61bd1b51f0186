"""The model card of a training run: what the run knows (its `TrainingArguments`, the Trainer's step count, its
results and data) turned into the plain values `openbert.hub_cards` renders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transformers import TrainingArguments

from openbert.hub_cards import write_model_card

# The TrainingArguments fields a reader needs to reproduce a run (the other ~100 are logging and plumbing).
TRAINING_ARGUMENT_KEYS = (
    "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "num_train_epochs", "max_steps", "warmup_steps", "lr_scheduler_type", "weight_decay", "optim", "adam_beta1",
    "adam_beta2", "adam_epsilon", "max_grad_norm", "seed", "bf16", "fp16",
)
# Result keys that count things rather than measure the model; they stay out of the card's results.
_COUNT_SUFFIXES = ("_samples", "_examples", "_features")


@dataclass(frozen=True)
class CardFacts:
    """What a card says about a run's data and starting point."""

    datasets: list[str]
    base_model: str | None = None
    dataset_config: str | None = None
    eval_split: str = "validation"


def data_sources(dataset_name: str | None, files: Iterable[str | None] = ()) -> list[str]:
    """What a card names as the run's data: the dataset's name, else the files' names."""
    if dataset_name:
        return [dataset_name]
    return list(dict.fromkeys(Path(f).name for f in files if f))


def hyperparameters_from_training_args(args: TrainingArguments) -> dict[str, Any]:
    """The fields of `args` a reader needs to reproduce a run, plus the total batch size."""
    values = args.to_dict()
    chosen = {key: values[key] for key in TRAINING_ARGUMENT_KEYS if key in values}
    if chosen.get("max_steps", 0) <= 0:  # -1 means "as many as the epochs take": nothing to report
        chosen.pop("max_steps", None)
    chosen["total_train_batch_size"] = (
        values["per_device_train_batch_size"] * values["gradient_accumulation_steps"] * args.world_size
    )
    return chosen


def write_run_card(output_dir: str | Path, kind: Literal["pretrained", "finetuned"], task: str,
                   args: TrainingArguments, train_steps: int, results: Mapping[str, Any],
                   facts: CardFacts) -> Path | None:
    """Write the card of a trained and evaluated run into `output_dir`; None (and nothing written) otherwise:
    a card reports the evaluation of the trained model, and evaluation-only runs leave an existing card alone."""
    metrics = {key: value for key, value in results.items()
               if key.startswith("eval_") and not key.endswith(_COUNT_SUFFIXES) and "_skipped_" not in key}
    if "train_runtime" not in results or not metrics:
        return None
    return write_model_card(
        output_dir, kind=kind, task=task, metrics=metrics, hyperparameters=hyperparameters_from_training_args(args),
        train_runtime_s=results["train_runtime"], train_steps=train_steps, datasets=facts.datasets or ["local files"],
        base_model=facts.base_model, dataset_config=facts.dataset_config, eval_split=facts.eval_split,
    )
