"""`openbert finetune classification`: fine-tune a pretrained checkpoint for sentence(-pair) classification or
regression.

    openbert finetune classification --model_name_or_path DIR --task_name sst2 \\
        --data_dir glue_data/SST-2 --do_train --do_eval --output_dir out/sst2
    openbert finetune classification --model_name_or_path DIR --train_files train.csv \\
        --validation_files dev.csv --text_column review --label_column stars --do_train --do_eval --output_dir out
    openbert finetune classification config.yaml      # every option in one JSON/YAML file

Every `TrainingArguments` flag is accepted (`--help` lists them). Data come from a GLUE task folder
(`--task_name` + `--data_dir`: the task's TSV layout, label names and official metric), CSV/TSV/JSON(L)/Parquet
files, or a `datasets` dataset (`--dataset_name`: a `save_to_disk` folder, or a Hub name when online).
The output directory receives the model with its tokenizer (loadable by `pipeline("text-classification")`,
labels named via `id2label`), `all_results.json`, `{train,eval}_results.json`, `predict_results.tsv`
for `--do_predict`, `training_curves.png` and a model card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformers import (
    AutoConfig,
    EvalPrediction,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import PredictionOutput

from openbert.modeling import OpenBertForSequenceClassification
from openbert.tokenization.data_files import load_records

from ..finetuning import RENAMED_OPTIONS, SPLIT_PREFIXES, STEP_SPLITS, FineTuningJob, ModelArguments
from ..hub.card import CardFacts, DataFacts
from ..job import Prepared, run_command, run_job
from ..metrics import load_metric
from .arguments import ClassificationDataArguments
from .data import (
    LabelSpace,
    TextColumns,
    has_labels,
    require_label_column,
    resolve_columns,
    resolve_label_space,
    tokenize_split,
)
from .glue import get_glue_task, glue_split_file, read_glue_files

COMMAND = "finetune classification"
ARGUMENTS = (ModelArguments, ClassificationDataArguments, TrainingArguments)


def metric_names_for(task_name: str | None, label_space: LabelSpace) -> tuple[str, ...]:
    """The GLUE task's official metrics, else Pearson/Spearman (regression) or accuracy/F1/MCC."""
    if task_name:
        return get_glue_task(task_name).metrics
    if label_space.is_regression:
        return ("pearsonr", "spearmanr")
    return ("accuracy", "f1", "matthews_correlation")


def predicted_labels(predictions: np.ndarray | tuple, label_space: LabelSpace) -> np.ndarray:
    """Class ids (argmax of the logits) or scores from a Trainer's predictions."""
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    return logits.squeeze(-1) if label_space.is_regression else np.argmax(logits, axis=-1)


def build_compute_metrics(
    metric_names: Sequence[str], label_space: LabelSpace
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A Trainer `compute_metrics`: logits -> class ids (argmax) or scores, scored by the bundled metrics.

    F1 is binary (class 1 positive) with two classes and macro-averaged with more. With several metrics
    `combined_score` is their mean (a single number for --metric_for_best_model).
    """
    metrics = {name: load_metric(name) for name in metric_names}
    f1_average = "binary" if label_space.num_labels == 2 else "macro"

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        predicted = predicted_labels(prediction.predictions, label_space)
        scores = {}
        for name, metric in metrics.items():
            kwargs = {"average": f1_average} if name == "f1" else {}
            scores.update(metric.compute(predictions=predicted, references=prediction.label_ids, **kwargs))
        if len(scores) > 1:
            scores["combined_score"] = float(np.mean(list(scores.values())))
        return scores

    return compute_metrics


def write_predictions(path: Path, predictions: np.ndarray, label_space: LabelSpace) -> None:
    """GLUE submission layout: `index<TAB>prediction`, label names for classes, 3 decimals for scores."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("index\tprediction\n")
        for index, value in enumerate(predictions):
            shown = f"{value:.3f}" if label_space.is_regression else label_space.label_names[int(value)]
            handle.write(f"{index}\t{shown}\n")


class ClassificationJob(FineTuningJob):
    """Sequence classification or regression on labelled text (or text pairs)."""

    task = "text-classification"

    def __init__(self, model_args: ModelArguments, data_args: ClassificationDataArguments,
                 load_model: Callable[..., PreTrainedModel] | None = None) -> None:
        super().__init__(model_args, data_args, load_model or OpenBertForSequenceClassification.from_pretrained)
        self.glue = get_glue_task(data_args.task_name) if data_args.task_name else None
        self.label_space: LabelSpace | None = None  # known once the data are read

    def check(self, args: TrainingArguments) -> None:
        super().check(args)
        if self.glue and self.data_args.dataset_name:
            raise ValueError("--task_name reads GLUE TSV files; with --dataset_name name the columns with "
                             "--text_column/--text_pair_column/--label_column instead")
        if self.data_args.data_dir and not self.glue:
            raise ValueError("--data_dir is a GLUE task folder and needs --task_name; for other data use "
                             "--train_files/--validation_files")

    def split_files(self) -> dict[str, list[str]]:
        """The --*_files options, else the GLUE task folder's files."""
        files = super().split_files()
        if self.glue and self.data_args.data_dir:
            for split in STEP_SPLITS.values():
                files.setdefault(split, [str(glue_split_file(self.glue, self.data_args.data_dir, split))])
        return files

    def read_files(self, split: str, files: list[str]) -> Any:
        return read_glue_files(self.glue, files) if self.glue else load_records(files)

    def columns(self, raw: dict[str, tuple[Any, str]]) -> TextColumns:
        if self.glue:
            return TextColumns(self.glue.text_column, self.glue.text_pair_column, self.glue.label_column)
        first, source = next(iter(raw.values()))
        return resolve_columns(first.column_names, source, self.data_args.text_column,
                               self.data_args.text_pair_column, self.data_args.label_column)

    def tokenize(self, split: str, dataset: Any, source: str, columns: TextColumns,
                 tokenizer: PreTrainedTokenizerBase, label_space: LabelSpace) -> Any:
        """Model inputs of a split (cut to its sample limit), with labels unless it is unlabelled test data."""
        dataset = self.limit(split, dataset)
        resolve_columns(dataset.column_names, source, columns.text, columns.text_pair, columns.label)
        labelled = split != "test" or has_labels(dataset, columns)
        if labelled:
            require_label_column(dataset, columns, source)
        return tokenize_split(dataset, source, columns, tokenizer, self.data_args.max_seq_length,
                              self.data_args.pad_to_max_length, label_space if labelled else None)

    def prepare(self, args: TrainingArguments, callbacks: Sequence[TrainerCallback]) -> Prepared:
        raw = {split: self.load_split(split) for split in self.splits(args)}
        columns = self.columns(raw)
        self.label_space = resolve_label_space(raw, columns, self.glue, self.data_args.is_regression,
                                               AutoConfig.from_pretrained(self.model_args.model_name_or_path))
        tokenizer = self.load_tokenizer()
        tokenized = {split: self.tokenize(split, *raw[split], columns, tokenizer, self.label_space) for split in raw}
        model = self.load_pretrained(
            num_labels=self.label_space.num_labels,
            id2label=self.label_space.id2label, label2id=self.label_space.label2id,
            problem_type="regression" if self.label_space.is_regression else "single_label_classification",
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=tokenized.get("train"), eval_dataset=tokenized.get("validation"),
            processing_class=tokenizer, data_collator=self.collator(tokenizer), callbacks=self.callbacks(callbacks),
            compute_metrics=build_compute_metrics(metric_names_for(self.data_args.task_name, self.label_space),
                                                  self.label_space),
        )
        counts = {f"{SPLIT_PREFIXES[split]}_samples": len(dataset) for split, dataset in tokenized.items()}
        return Prepared(trainer, counts, predict_dataset=tokenized.get("test"))

    def write_predictions(self, trainer: Trainer, prefix: str, output: PredictionOutput | None) -> None:
        if prefix == "predict":
            write_predictions(Path(trainer.args.output_dir) / "predict_results.tsv",
                              predicted_labels(output.predictions, self.label_space), self.label_space)

    def card_facts(self) -> CardFacts:
        if not self.glue:
            return super().card_facts()
        facts = super().card_facts()
        glue = {"dataset_name": "nyu-mll/glue", "dataset_config": self.glue.name}
        note = "read from local GLUE files"
        return CardFacts(DataFacts(**glue, split="train", note=note), DataFacts(**glue, split="validation", note=note),
                         facts.base_model)

    def title(self) -> str:
        return f"{self.data_args.task_name or 'classification'}, fine-tuned from {self.model_short_name()}"


def run_classification(model_args: ModelArguments, data_args: ClassificationDataArguments,
                       training_args: TrainingArguments, load_model: Callable[..., PreTrainedModel] | None = None,
                       callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Run the requested --do_train/--do_eval/--do_predict steps; return every reported number.

    `load_model(path, **config_overrides)` builds the model; it defaults to
    `OpenBertForSequenceClassification.from_pretrained`. The benchmarks pass
    `BertForSequenceClassification.from_pretrained` to run the identical recipe on transformers' implementation.
    """
    return run_job(ClassificationJob(model_args, data_args, load_model), training_args, callbacks)


def main(argv: Sequence[str] | None = None, command: str = COMMAND,
         callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Parse the command line (or one JSON/YAML config file) and run; `callbacks` go to the Trainer."""
    return run_command(command, ARGUMENTS, run_classification, argv, renamed=RENAMED_OPTIONS, description=__doc__,
                       callbacks=callbacks)
