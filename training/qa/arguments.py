"""The options of `openbert finetune qa` beyond those every fine-tuning job has."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..finetuning import FineTuningDataArguments


@dataclass
class QADataArguments(FineTuningDataArguments):
    max_seq_length: int = field(default=384, metadata={
        "help": "Tokens per window (question + context + special tokens); longer contexts get several windows."})
    version_2_with_negative: bool = field(default=False, metadata={
        "help": "SQuAD v2.0: some questions have no answer. Trains them to point at [CLS], lets predictions be "
                "empty, and scores with the v2.0 metric. Without it, unanswerable questions are skipped."})
    doc_stride: int = field(default=128, metadata={
        "help": "Tokens of context shared by consecutive windows of a long context (the overlap)."})
    n_best_size: int = field(default=20, metadata={
        "help": "Start and end positions tried per window, and answer candidates kept in the n-best file."})
    max_answer_length: int = field(default=30, metadata={"help": "Longest answer, in tokens."})
    null_score_diff_threshold: float = field(default=0.0, metadata={
        "help": "v2.0: answer \"\" when null score - best answer score exceeds this (raise it for more answers)."})
