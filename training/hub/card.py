"""The model card of a training run: what the run knows (its `TrainingArguments`, the Trainer's state, its results,
its data and starting point) turned into the plain values `openbert.hub_cards` renders.

A card states only what the run did: the data it trained on and the data it was scored on are named apart; only
Hub data sets go into the card's `datasets` metadata (local files are named in the text); a local starting point
is named by its path, or by what the caller knows it to be (`--base_model_name`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers import TrainerState, TrainingArguments

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
class DataFacts:
    """Where one side of a run's data (training or evaluation) came from: a Hub data set or local files."""

    dataset_name: str | None = None  # a Hub id or a folder written by `save_to_disk`
    dataset_config: str | None = None
    split: str | None = None
    files: list[str] = field(default_factory=list)
    note: str | None = None  # how the data was drawn from the above, e.g. "the last 5% of the documents"

    @property
    def hub_dataset(self) -> str | None:
        """The Hub id, when the data came from the Hub (not from a local folder)."""
        return self.dataset_name if self.dataset_name and _is_hub_id(self.dataset_name) else None

    def describe(self) -> str:
        """A phrase for the card: "the `train` split of `nyu-mll/glue` (`sst2`)", "`train.jsonl` (local file)"."""
        if self.dataset_name:
            where = f"`{self.dataset_name}`" + (f" (`{self.dataset_config}`)" if self.dataset_config else "")
            text = f"the `{self.split}` split of {where}" if self.split else where
        else:
            names = ", ".join(f"`{Path(name).name}`" for name in self.files)
            text = f"{names} (local file{'s' if len(self.files) > 1 else ''})"
        return f"{text}, {self.note}" if self.note else text


@dataclass(frozen=True)
class CardFacts:
    """What a card says about a run's data and starting point."""

    train_data: DataFacts
    eval_data: DataFacts
    # The model the run started from: a Hub id, a local folder, or a description (None: trained from scratch).
    base_model: str | None = None


def describe_base_model(model_name_or_path: str | None, name: str | None = None) -> str | None:
    """How a card names a starting checkpoint: `name` when given (a Hub id, or a description such as "random
    initialisation"), else the Hub id, else the local folder's path (relative to the working directory when inside
    it, so that a site-packages copy is named by its full path rather than its last folder)."""
    if name or not model_name_or_path:
        return name
    path = Path(model_name_or_path)
    if not path.exists():
        return model_name_or_path
    resolved = path.resolve()
    try:
        return f"the local checkpoint `{resolved.relative_to(Path.cwd())}`"
    except ValueError:
        return f"the local checkpoint `{resolved}`"


def hyperparameters_from_training_args(args: TrainingArguments) -> dict[str, Any]:
    """The fields of `args` a reader needs to reproduce a run, plus the total batch size.

    `max_steps` (when set) bounds the run instead of `num_train_epochs`, so only the one that applied is shown;
    the epochs actually run are in the card's procedure.
    """
    values = args.to_dict()
    chosen = {key: values[key] for key in TRAINING_ARGUMENT_KEYS if key in values}
    chosen.pop("num_train_epochs" if chosen.get("max_steps", 0) > 0 else "max_steps", None)
    chosen["total_train_batch_size"] = (
        values["per_device_train_batch_size"] * values["gradient_accumulation_steps"] * args.world_size
    )
    return chosen


def write_run_card(output_dir: str | Path, kind: Literal["pretrained", "finetuned"], task: str,
                   args: TrainingArguments, state: TrainerState, results: Mapping[str, Any],
                   facts: CardFacts) -> Path | None:
    """Write the card of a trained and evaluated run into `output_dir`; None (and nothing written) otherwise:
    a card reports the evaluation of the trained model, and evaluation-only runs leave an existing card alone."""
    metrics = {key: value for key, value in results.items()
               if key.startswith("eval_") and not key.endswith(_COUNT_SUFFIXES) and "_skipped_" not in key}
    if "train_runtime" not in results or not metrics:
        return None
    hub_datasets = list(dict.fromkeys(_present(facts.eval_data.hub_dataset, facts.train_data.hub_dataset)))
    base_model = describe_base_model(facts.base_model)
    return write_model_card(
        output_dir, kind=kind, task=task, metrics=metrics, hyperparameters=hyperparameters_from_training_args(args),
        train_runtime_s=results["train_runtime"], train_steps=state.global_step, train_epochs=state.epoch,
        train_data=facts.train_data.describe(), eval_data=facts.eval_data.describe(), hub_datasets=hub_datasets,
        dataset_config=facts.eval_data.dataset_config,
        base_model=base_model if base_model and _is_hub_id(base_model) else None,
        base_model_text=base_model if base_model and not _is_hub_id(base_model) else None,
    )


def _present(*values: str | None) -> Iterable[str]:
    return (value for value in values if value)


def _is_hub_id(name: str) -> bool:
    """A valid Hub repo id that is not a local path."""
    if Path(name).exists() or name.startswith(("/", ".", "~")):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True
