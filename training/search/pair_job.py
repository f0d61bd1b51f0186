"""What embedding and re-ranker training share: reading pairs into sentence-transformers' column layout, the
checks, and the retrieval task of the validation split."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import datasets
from transformers import TrainingArguments

from ..finetuning import SPLIT_PREFIXES, FineTuningJob
from .arguments import PairDataArguments, SearchModelArguments
from .data import PairLayout, read_pair_files, resolve_layout, to_training_layout
from .evaluation import RetrievalTask, retrieval_task


class PairTrainingJob(FineTuningJob):
    """A sentence-transformers training run on text pairs, triplets or scored pairs; no predict step."""

    steps: ClassVar[tuple[str, ...]] = ("train", "eval")

    @staticmethod
    @abstractmethod
    def arguments_class() -> type[TrainingArguments]:
        """The sentence-transformers `TrainingArguments` subclass the job's trainer insists on."""

    def __init__(self, model_args: SearchModelArguments, data_args: PairDataArguments,
                 load_model: Callable[..., Any]) -> None:
        super().__init__(model_args, data_args, load_model)
        self.layout: PairLayout | None = None  # known once the data are read

    def check(self, args: TrainingArguments) -> None:
        """The options first (no file is read for them), then the checkpoint and data (`FineTuningJob.check`)."""
        if not isinstance(args, self.arguments_class()):
            raise TypeError(f"pass a sentence-transformers {self.arguments_class().__name__}, not "
                            f"{type(args).__name__}: its trainer needs the fields that class adds")
        if self.data_args.test_files or self.data_args.max_predict_samples is not None:
            raise ValueError("this command has no predict step: drop --test_files/--max_predict_samples")
        if self.data_args.pad_to_max_length:
            raise ValueError("--pad_to_max_length does not apply: sentence-transformers pads each batch itself")
        super().check(args)

    def read_files(self, split: str, files: list[str]) -> datasets.Dataset:
        return read_pair_files(files)

    def load_pairs(self, args: TrainingArguments) -> tuple[dict[str, datasets.Dataset], datasets.Dataset | None]:
        """Every split the steps need in training layout, cut to its sample limit, and the whole validation split
        (retrieval searches all of its documents, however few queries `--max_eval_samples` keeps)."""
        raw = {split: self.load_split(split) for split in self.splits(args) if split in ("train", "validation")}
        first, source = next(iter(raw.values()))
        self.layout = resolve_layout(first.column_names, source, self.data_args.text_columns,
                                     self.data_args.label_column)
        whole = {split: to_training_layout(dataset, self.layout, source, self.data_args.max_score)
                 for split, (dataset, source) in raw.items()}
        return {split: self.limit(split, dataset) for split, dataset in whole.items()}, whole.get("validation")

    def validation_task(self, limited: datasets.Dataset, whole: datasets.Dataset) -> RetrievalTask:
        if self.layout.kind == "scored pairs":
            raise ValueError("retrieval needs pairs or triplets (query, relevant document[, negatives]), not scored "
                             "pairs")
        return retrieval_task(limited, self.layout, whole)

    @staticmethod
    def counts(data: dict[str, datasets.Dataset]) -> dict[str, int]:
        return {f"{SPLIT_PREFIXES[split]}_samples": len(dataset) for split, dataset in data.items()}

    def title(self) -> str:
        return f"{self.task}: {self.model_args.model_name_or_path}"
