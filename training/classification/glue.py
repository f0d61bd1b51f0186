"""GLUE task presets: where each task's files are, which columns hold text and label, and its metrics.

The files are the standard `glue_data/<TASK>/{train,dev,test}.tsv` layout written by GLUE's download
script (tab-separated, header row except CoLA's train/dev). Label names are those of the `glue` dataset
on the Hugging Face Hub, so a fine-tuned model's config prints e.g. "positive" rather than "1".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets

from openbert.tokenization.data_files import expand_data_files, iter_lines, load_records


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task is laid out and scored."""

    name: str
    text_column: str
    text_pair_column: str | None
    label_column: str
    # Label values as written in the TSV files, in class-id order; empty for the regression task (STS-B).
    raw_labels: tuple[str, ...]
    # Human-readable names for those classes (stored as id2label).
    label_names: tuple[str, ...]
    # The task's official metrics (names of bundled metrics; f1 is binary, class 1 positive).
    metrics: tuple[str, ...]
    # Files of each split inside the task folder.
    split_files: tuple[tuple[str, str], ...] = (("train", "train.tsv"), ("validation", "dev.tsv"),
                                                ("test", "test.tsv"))
    # Column names of files without a header row (CoLA train/dev).
    headerless_columns: tuple[str, ...] | None = None

    @property
    def is_regression(self) -> bool:
        return not self.raw_labels


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, GlueTask] = {task.name: task for task in (
    GlueTask("cola", "sentence", None, "label", _BINARY, ("unacceptable", "acceptable"), ("matthews_correlation",),
             headerless_columns=("source", "label", "original_label", "sentence")),
    GlueTask("sst2", "sentence", None, "label", _BINARY, ("negative", "positive"), ("accuracy",)),
    GlueTask("mrpc", "#1 String", "#2 String", "Quality", _BINARY, ("not_equivalent", "equivalent"),
             ("accuracy", "f1")),
    GlueTask("qqp", "question1", "question2", "is_duplicate", _BINARY, ("not_duplicate", "duplicate"),
             ("accuracy", "f1")),
    GlueTask("stsb", "sentence1", "sentence2", "score", (), (), ("pearsonr", "spearmanr")),
    GlueTask("mnli", "sentence1", "sentence2", "gold_label", ("entailment", "neutral", "contradiction"),
             ("entailment", "neutral", "contradiction"), ("accuracy",),
             split_files=(("train", "train.tsv"), ("validation", "dev_matched.tsv"), ("test", "test_matched.tsv"))),
    GlueTask("qnli", "question", "sentence", "label", _NLI2, _NLI2, ("accuracy",)),
    GlueTask("rte", "sentence1", "sentence2", "label", _NLI2, _NLI2, ("accuracy",)),
)}


def get_glue_task(name: str) -> GlueTask:
    """The preset for `name` (e.g. "sst2"); raises listing the known tasks."""
    if name not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; choose one of {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[name]


def glue_split_file(task: GlueTask, data_dir: str | Path, split: str) -> Path:
    """Path of `split` ("train", "validation" or "test") of `task` inside its GLUE folder."""
    return Path(data_dir) / dict(task.split_files)[split]


def read_glue_files(task: GlueTask, files: Sequence[str]) -> datasets.Dataset:
    """Read a split's GLUE TSV file(s) of `task`, with or without their header row."""
    paths = expand_data_files(files)
    # CoLA's train/dev files have no header while its test file has one: look at the first line.
    header = next(iter_lines(paths[0]), "").split("\t")
    headerless = task.headerless_columns is not None and task.text_column not in header
    return load_records(paths, column_names=task.headerless_columns if headerless else None)
