"""The options of `openbert finetune seq2seq` beyond those every fine-tuning job has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..finetuning import FineTuningDataArguments, ModelArguments

SEQ2SEQ_TASKS = ("columns", "question_generation", "translation")


@dataclass
class Seq2SeqModelArguments(ModelArguments):
    tie_encoder_decoder: bool = field(default=False, metadata={
        "help": "Share the weights of the encoder and the decoder (Rothe et al.'s BERTShare: half the parameters). "
                "Only when a new model is built from an encoder checkpoint."})
    cross_attention_init: Literal["random", "self_attention"] = field(default="random", metadata={
        "help": "How the decoder's new cross-attention starts when a model is built from an encoder checkpoint. "
                "random: as transformers does. self_attention: a copy of the same layer's pretrained "
                "self-attention (query, key, value, output projection and LayerNorm), so that from the first step "
                "it reads the encoder's output with pretrained projections; learns to use the source in fewer "
                "steps (see benchmarks/README.md, question generation)."})


@dataclass
class Seq2SeqDataArguments(FineTuningDataArguments):
    task: Literal["columns", "question_generation", "translation"] = field(default="columns", metadata={
        "help": "columns: source and target texts from --source_column/--target_column of CSV/JSON(L)/Parquet "
                "files or a dataset. question_generation: SQuAD-format data; the source is the answer and the "
                "sentence that holds it, the target the question. translation: SQuAD-format data; each question "
                "is translated into the question of the same id in --target_files (e.g. xquad.en.json -> "
                "xquad.de.json)."})
    highlight_answer: bool = field(default=False, metadata={
        "help": "--task question_generation: also mark the answer inside its sentence between two of the "
                "tokenizer's [SEP] tokens (answer-aware highlighting), e.g. `[CLS] Paris [SEP] In spring Ada "
                "travelled to [SEP] Paris [SEP] . [SEP]`."})
    source_column: str = field(default="source", metadata={"help": "--task columns: the column of the input text."})
    target_column: str = field(default="target", metadata={"help": "--task columns: the column of the output text."})
    target_files: list[str] | None = field(default=None, metadata={
        "help": "--task translation: SQuAD-format files in the target language, with the ids of the source files."})
    validation_split_percentage: float | None = field(default=None, metadata={
        "help": "Without --validation_files, hold out this percentage of the training pairs for evaluation (the "
                "last ones: in SQuAD files, whole articles)."})
    max_seq_length: int = field(default=128, metadata={
        "help": "Longest source in tokens after tokenization; longer sources are truncated."})
    max_target_length: int = field(default=32, metadata={
        "help": "Longest target in tokens ([SEP] included): targets are truncated to it in training, and "
                "generation stops there unless --generation_max_length says otherwise."})
    no_repeat_ngram_size: int = field(default=0, metadata={
        "help": "Generation never repeats an n-gram of this size (0: off); saved in the model's generation config."})
