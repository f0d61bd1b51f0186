"""The options of `openbert finetune classification` beyond those every fine-tuning job has."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..finetuning import FineTuningDataArguments
from .glue import GLUE_TASKS


@dataclass
class ClassificationDataArguments(FineTuningDataArguments):
    task_name: str | None = field(default=None, metadata={
        "help": "A GLUE task preset: reads the standard GLUE TSV layout (with --data_dir or the --*_files options), "
                "names the labels and scores with the task's official metric.",
        "choices": list(GLUE_TASKS)})
    data_dir: str | None = field(default=None, metadata={
        "help": "Folder of a GLUE task (train.tsv, dev.tsv, test.tsv; MNLI: dev_matched.tsv, test_matched.tsv)."})
    text_column: str | None = field(default=None, metadata={
        "help": "Column holding the text. Default: sentence1 (+ sentence2 as pair), else sentence, else text."})
    text_pair_column: str | None = field(default=None, metadata={
        "help": "Column holding the second text of a sentence pair (e.g. the hypothesis of NLI)."})
    label_column: str = field(default="label", metadata={"help": "Column holding the label."})
    is_regression: bool | None = field(default=None, metadata={
        "help": "Treat labels as real-valued scores (MSE loss, Pearson/Spearman). Default: regression when the "
                "training labels are numbers that are not all integers."})
