"""`openbert finetune seq2seq`: fine-tune a BERT2BERT encoder-decoder (Rothe et al., 2020) for text generation.

    openbert finetune seq2seq --model_name_or_path DIR --train_files pairs.jsonl --validation_files dev.jsonl \\
        --source_column text --target_column summary --predict_with_generate --do_train --do_eval --output_dir out
    openbert finetune seq2seq --task question_generation --model_name_or_path DIR --train_files train-v1.1.json \\
        --validation_files dev-v1.1.json --predict_with_generate --do_train --do_eval --output_dir out/qg
    openbert finetune seq2seq --task translation --model_name_or_path DIR --train_files xquad.en.json \\
        --target_files xquad.de.json --validation_split_percentage 16 --predict_with_generate \\
        --do_train --do_eval --output_dir out/en-de

The model: an encoder checkpoint (openbert or transformers' BERT) becomes both halves of a new
`OpenBertEncoderDecoderModel` (the decoder gets causal self-attention and new cross-attention;
`--tie_encoder_decoder` shares their weights), or an existing sequence-to-sequence checkpoint is fine-tuned further.
The tokenizer comes with the checkpoint (or `--tokenizer_name`): the decoder starts from [CLS] and stops at [SEP].
Data: `--task columns` reads `--source_column` -> `--target_column` from CSV/TSV/JSON(L)/Parquet files or a
`datasets` dataset; `--task question_generation` and `--task translation` read SQuAD-format data (see
`openbert.training.seq2seq.data`). Evaluation and prediction generate (`--predict_with_generate`, with
`--generation_num_beams`, `--generation_max_length`) and score BLEU and ROUGE-L offline. The output directory
receives the model with its tokenizer and code (`AutoModelForSeq2SeqLM`; remote code where openbert is not
installed), `predict_generations.jsonl` for `--do_predict`, `all_results.json`, `training_curves.png` and a card.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import datasets
from transformers import (
    DataCollatorForSeq2Seq,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
)
from transformers.trainer_utils import PredictionOutput

from openbert.tokenization.data_files import load_records

from ..finetuning import RENAMED_OPTIONS, SPLIT_PREFIXES, FineTuningJob, without_load_report
from ..job import Prepared, run_command, run_job
from ..output_dir import OpenBertTrainingArguments
from ..qa.data import read_qa_files
from ..run_trainer import RunTrainer
from .arguments import Seq2SeqDataArguments, Seq2SeqModelArguments
from .data import column_pairs, encode_pair, hold_out, question_generation_pairs, translation_pairs
from .generation import build_compute_metrics, configure_generation, decode, load_seq2seq_model

COMMAND = "finetune seq2seq"


@dataclass
class OpenBertSeq2SeqTrainingArguments(Seq2SeqTrainingArguments, OpenBertTrainingArguments):
    """transformers' `Seq2SeqTrainingArguments` with openbert's `--overwrite_output_dir`."""


class Seq2SeqRunTrainer(RunTrainer, Seq2SeqTrainer):
    """transformers' `Seq2SeqTrainer` (generation in evaluation) that stops diverging runs (`RunTrainer`)."""


ARGUMENTS = (Seq2SeqModelArguments, Seq2SeqDataArguments, OpenBertSeq2SeqTrainingArguments)
TITLES = {"columns": "sequence-to-sequence generation", "question_generation": "question generation",
          "translation": "translation"}


class Seq2SeqJob(FineTuningJob):
    """BERT2BERT fine-tuning: source text -> target text, scored by BLEU and ROUGE-L on generated text."""

    task = "text2text-generation"

    def __init__(self, model_args: Seq2SeqModelArguments, data_args: Seq2SeqDataArguments,
                 load_model: Callable[..., PreTrainedModel] | None = None) -> None:
        super().__init__(model_args, data_args, load_model or load_seq2seq_model)
        self.predict_pairs: list[dict] = []

    def check(self, args: Seq2SeqTrainingArguments) -> None:
        super().check(args)
        data = self.data_args
        if (data.task == "translation") != bool(data.target_files):
            raise ValueError("--task translation needs --target_files (SQuAD-format files in the target language), "
                             f"and only it uses them (--task is {data.task!r})")
        if data.highlight_answer and data.task != "question_generation":
            raise ValueError(f"--highlight_answer marks answers for --task question_generation (--task is "
                             f"{data.task!r})")
        if data.validation_split_percentage is not None and data.validation_files:
            raise ValueError("pass --validation_files or --validation_split_percentage, not both")
        if (args.do_eval or args.do_predict) and not args.predict_with_generate:
            raise ValueError("--do_eval and --do_predict score generated text (BLEU, ROUGE-L): pass "
                             "--predict_with_generate")

    def read_files(self, split: str, files: list[str]) -> Any:
        return load_records(files) if self.data_args.task == "columns" else read_qa_files(files)

    def read_pairs(self, split: str) -> list[dict[str, Any]]:
        """A split's pairs as its task makes them; raises when there are none."""
        records, where = self.load_split(split)
        data = self.data_args
        if data.task == "question_generation":
            marker = self.load_tokenizer().sep_token if data.highlight_answer else None
            pairs = question_generation_pairs(records, answer_marker=marker)
        elif data.task == "translation":
            pairs = translation_pairs(records, read_qa_files(data.target_files), where)
        else:
            pairs = column_pairs(records, data.source_column, data.target_column, where,
                                 require_target=split != "test")
        if not pairs:
            raise ValueError(f"{where}: no {data.task} pairs (question generation needs answered questions)")
        return pairs

    def split_pairs(self, split: str) -> datasets.Dataset:
        """A split's pairs, the held-out part of the training pairs for `validation` when asked, cut to the split's
        sample limit."""
        percentage = self.data_args.validation_split_percentage
        if percentage is not None and split in ("train", "validation"):
            train, held_out = hold_out(self.read_pairs("train"), percentage)
            pairs = train if split == "train" else held_out
        else:
            pairs = self.read_pairs(split)
        features = datasets.Features({name: datasets.Value("string")
                                      for name in ("id", "source", "source_context", "target")})
        return self.limit(split, datasets.Dataset.from_list(pairs, features=features))

    def prepare(self, args: Seq2SeqTrainingArguments, callbacks: Sequence[TrainerCallback]) -> Prepared:
        tokenizer, data = self.load_tokenizer(), self.data_args
        encode = partial(encode_pair, tokenizer=tokenizer, max_source_length=data.max_seq_length,
                         max_target_length=data.max_target_length)
        counts, inputs = {}, {}
        for split in self.splits(args):
            pairs = self.split_pairs(split)
            counts[f"{SPLIT_PREFIXES[split]}_samples"] = len(pairs)
            inputs[split] = pairs.map(encode, remove_columns=pairs.column_names, desc=f"tokenizing {split}")
            if split == "test":
                self.predict_pairs = pairs.to_list()
        with without_load_report():  # the decoder's cross-attention is new: logged by load_seq2seq_model
            model = self.load_model(self.model_args.model_name_or_path, self.model_args.tie_encoder_decoder,
                                    **self.cross_attention_options())
        model = configure_generation(
            model, tokenizer,
            max_length=args.generation_max_length or data.max_target_length,
            num_beams=args.generation_num_beams or 1, no_repeat_ngram_size=data.no_repeat_ngram_size)
        trainer = Seq2SeqRunTrainer(
            model=model, args=args, train_dataset=inputs.get("train"), eval_dataset=inputs.get("validation"),
            processing_class=tokenizer, data_collator=self.collator_for(tokenizer, model),
            compute_metrics=build_compute_metrics(tokenizer), callbacks=self.callbacks(callbacks))
        return Prepared(trainer, counts, predict_dataset=inputs.get("test"))

    def cross_attention_options(self) -> dict[str, str]:
        """`load_model`'s keyword for --cross_attention_init; none at the default, so that a `load_model` of the
        old two-argument form keeps working."""
        init = self.model_args.cross_attention_init
        return {} if init == "random" else {"cross_attention_init": init}

    def collator_for(self, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> DataCollatorForSeq2Seq:
        """Pads sources with [PAD] and labels with -100 (ignored by the loss), per batch unless asked otherwise."""
        if self.data_args.pad_to_max_length:
            return DataCollatorForSeq2Seq(tokenizer, model=model, padding="max_length",
                                          max_length=self.data_args.max_seq_length)
        return DataCollatorForSeq2Seq(tokenizer, model=model)

    def write_predictions(self, trainer: Trainer, prefix: str, output: PredictionOutput | None) -> None:
        """`predict_generations.jsonl`: each test pair's id, source and generated text (and target, when given)."""
        if output is None:
            return
        texts = decode(output.predictions, trainer.processing_class)
        path = Path(trainer.args.output_dir) / f"{prefix}_generations.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for pair, text in zip(self.predict_pairs, texts, strict=True):
                row = {"id": pair["id"], "source": pair["source"], "generated": text, "target": pair["target"]}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def title(self) -> str:
        return f"{TITLES[self.data_args.task]}, fine-tuned from {self.model_short_name()}"


def run_seq2seq(model_args: Seq2SeqModelArguments, data_args: Seq2SeqDataArguments,
                training_args: Seq2SeqTrainingArguments, load_model: Callable[..., PreTrainedModel] | None = None,
                callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Run the requested --do_train/--do_eval/--do_predict steps; return every reported number.

    `load_model(path, tie_encoder_decoder)` builds the model (also given `cross_attention_init=` when
    --cross_attention_init is not random); it defaults to `load_seq2seq_model` (openbert halves).
    """
    return run_job(Seq2SeqJob(model_args, data_args, load_model), training_args, callbacks)


def main(argv: Sequence[str] | None = None, command: str = COMMAND,
         callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Parse the command line (or one JSON/YAML config file) and run; `callbacks` go to the Trainer."""
    return run_command(command, ARGUMENTS, run_seq2seq, argv, renamed=RENAMED_OPTIONS, description=__doc__,
                       callbacks=callbacks)
