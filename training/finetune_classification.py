"""Fine-tune a pretrained checkpoint for sentence(-pair) classification or regression with the Trainer.

    python -m training.finetune_classification --model_name_or_path DIR --task_name sst2 \
        --data_dir glue_data/SST-2 --do_train --do_eval --output_dir out/sst2
    python -m training.finetune_classification --model_name_or_path DIR --train_file train.csv \
        --validation_file dev.csv --text_column review --label_column stars --do_train --do_eval --output_dir out
    python -m training.finetune_classification config.yaml      # every option in one JSON/YAML file

Every `TrainingArguments` flag is accepted (`--help` lists them). Data come from a GLUE task folder
(`--task_name` + `--data_dir`: the task's TSV layout, label names and official metric), CSV/TSV/JSON(L)
files, or a `datasets` dataset (`--dataset_name`: a `save_to_disk` folder, or a Hub name when online).
The output directory receives the model with its tokenizer (loadable by `pipeline("text-classification")`,
labels named via `id2label`), `all_results.json`, `{train,eval}_results.json`, `predict_results.tsv`
for `--do_predict`, and `training_curves.png`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    EvalPrediction,
    PreTrainedConfig,
    PreTrainedModel,
    Trainer,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from openbert.modeling import OpenBertForSequenceClassification

from .arguments import parse_args
from .classification_data import (
    LabelSpace,
    TextColumns,
    checkpoint_label_space,
    class_label_space,
    has_labels,
    infer_label_space,
    require_label_column,
    resolve_columns,
    tokenize_split,
)
from .curves import plot_log_history
from .finetune_arguments import ModelArguments, early_stopping_problems
from .glue import GLUE_TASKS, GlueTask, get_glue_task, glue_split_file, read_glue_file
from .metrics import load_metric
from .publish import data_sources, finish_run
from .push import hub_target_from_training_args
from .tabular_data import read_table

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class DataArguments:
    task_name: str | None = field(default=None, metadata={
        "help": "A GLUE task preset: reads the standard GLUE TSV layout (with --data_dir or the --*_file options), "
                "names the labels and scores with the task's official metric.",
        "choices": list(GLUE_TASKS)})
    data_dir: str | None = field(default=None, metadata={
        "help": "Folder of a GLUE task (train.tsv, dev.tsv, test.tsv; MNLI: dev_matched.tsv, test_matched.tsv)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "A `datasets` dataset: a folder written by `save_to_disk`, or a Hub name (needs network)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: .csv, .tsv, .json or .jsonl."})
    validation_file: str | None = field(default=None, metadata={"help": "Evaluation data, same formats."})
    test_file: str | None = field(default=None, metadata={
        "help": "Data to predict (--do_predict), same formats; labels optional (scored when present)."})
    text_column: str | None = field(default=None, metadata={
        "help": "Column holding the text. Default: sentence1 (+ sentence2 as pair), else sentence, else text."})
    text_pair_column: str | None = field(default=None, metadata={
        "help": "Column holding the second text of a sentence pair (e.g. the hypothesis of NLI)."})
    label_column: str = field(default="label", metadata={"help": "Column holding the label."})
    is_regression: bool | None = field(default=None, metadata={
        "help": "Treat labels as real-valued scores (MSE loss, Pearson/Spearman). Default: regression when the "
                "training labels are numbers that are not all integers."})
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


def _split_files(data_args: DataArguments) -> dict[str, str]:
    """Files given for each split: --*_file options, else the GLUE task folder's files."""
    files = {split: path for split, path in zip(
        SPLITS, (data_args.train_file, data_args.validation_file, data_args.test_file), strict=True) if path}
    if data_args.data_dir:
        if data_args.task_name is None:
            raise ValueError("--data_dir is a GLUE task folder and needs --task_name (one of "
                             f"{', '.join(GLUE_TASKS)}); for other data use --train_file/--validation_file")
        task = get_glue_task(data_args.task_name)
        for split in SPLITS:
            files.setdefault(split, str(glue_split_file(task, data_args.data_dir, split)))
    return files


def load_raw_splits(data_args: DataArguments, wanted: Sequence[str]) -> dict[str, tuple[datasets.Dataset, str]]:
    """The `wanted` splits as (dataset, source description used in error messages)."""
    if data_args.dataset_name:
        if data_args.task_name:
            raise ValueError("--task_name reads GLUE TSV files; with --dataset_name name the columns with "
                             "--text_column/--text_pair_column/--label_column instead")
        if Path(data_args.dataset_name).is_dir():
            loaded = datasets.load_from_disk(data_args.dataset_name)
        else:
            loaded = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name)
        splits = {}
        for split in wanted:
            if split not in loaded:
                raise ValueError(f"dataset {data_args.dataset_name} has no {split!r} split (it has "
                                 f"{', '.join(loaded)})")
            if len(loaded[split]) == 0:
                raise ValueError(f"dataset {data_args.dataset_name} split {split!r} is empty")
            splits[split] = (loaded[split], f"{data_args.dataset_name}[{split}]")
        return splits
    files = _split_files(data_args)
    splits = {}
    for split in wanted:
        if split not in files:
            option = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}[split]
            raise ValueError(f"the {split} split is needed but no file was given: pass {option} (or "
                             "--task_name with --data_dir, or --dataset_name)")
        path = files[split]
        table = read_glue_file(get_glue_task(data_args.task_name), path) if data_args.task_name else read_table(path)
        splits[split] = (table, path)
    return splits


def _truncate(dataset: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    return dataset.select(range(min(limit, len(dataset)))) if limit is not None else dataset


def metric_names_for(data_args: DataArguments, label_space: LabelSpace) -> tuple[str, ...]:
    """The GLUE task's official metrics, else Pearson/Spearman (regression) or accuracy/F1/MCC."""
    if data_args.task_name:
        return get_glue_task(data_args.task_name).metrics
    if label_space.is_regression:
        return ("pearsonr", "spearmanr")
    return ("accuracy", "f1", "matthews_correlation")


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
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted = logits.squeeze(-1) if label_space.is_regression else np.argmax(logits, axis=-1)
        scores = {}
        for name, metric in metrics.items():
            kwargs = {"average": f1_average} if name == "f1" else {}
            scores.update(metric.compute(predictions=predicted, references=prediction.label_ids, **kwargs))
        if len(scores) > 1:
            scores["combined_score"] = float(np.mean(list(scores.values())))
        return scores

    return compute_metrics


def resolve_label_space(
    raw: dict[str, tuple[datasets.Dataset, str]], columns: TextColumns, task: GlueTask | None,
    is_regression: bool | None, checkpoint_config: PreTrainedConfig,
) -> LabelSpace:
    """The task's classes: a GLUE preset's, a `ClassLabel` column's, else the labels of the training split.

    A checkpoint that is already a fine-tuned classifier (its config names its labels) keeps its class ids:
    evaluating or predicting with it alone uses them, and training it further needs the same label set.
    """
    from_checkpoint = checkpoint_label_space(checkpoint_config)
    first, _ = raw[next(iter(raw))]
    if task:
        space = LabelSpace(task.raw_labels, task.label_names)
    elif isinstance(first.features.get(columns.label), datasets.ClassLabel):
        space = class_label_space(first.features[columns.label])
    elif from_checkpoint is not None and "train" not in raw:
        return from_checkpoint
    else:
        labelled = raw.get("train") or raw.get("validation")
        if labelled is None:
            raise ValueError("--do_predict alone with a base checkpoint cannot know the label names: also give "
                             "training or validation data, or predict with a fine-tuned checkpoint")
        require_label_column(labelled[0], columns, labelled[1])
        space = infer_label_space(labelled[0][columns.label], labelled[1], is_regression)
    if from_checkpoint is None or from_checkpoint.label_names == space.label_names:
        return space
    if task is None and set(from_checkpoint.label_names) == set(space.label_names):
        return from_checkpoint  # the same classes: keep the checkpoint's ids
    raise ValueError(f"the checkpoint was fine-tuned for labels {list(from_checkpoint.label_names) or 'regression'} "
                     f"but the data has {list(space.label_names) or 'regression scores'}: start from a base "
                     "(not fine-tuned) checkpoint to learn other labels")


def write_predictions(path: Path, predictions: np.ndarray, label_space: LabelSpace) -> None:
    """GLUE submission layout: `index<TAB>prediction`, label names for classes, 3 decimals for scores."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("index\tprediction\n")
        for index, value in enumerate(predictions):
            shown = f"{value:.3f}" if label_space.is_regression else label_space.label_names[int(value)]
            handle.write(f"{index}\t{shown}\n")


def run_classification(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments,
    load_model: Callable[..., PreTrainedModel] | None = None,
) -> dict[str, float]:
    """Run the requested --do_train/--do_eval/--do_predict steps; return every reported metric.

    `load_model(path, **config_overrides)` builds the model; it defaults to
    `OpenBertForSequenceClassification.from_pretrained`. The benchmarks pass
    `BertForSequenceClassification.from_pretrained` to run the identical recipe on transformers' implementation.
    """
    load_model = load_model or OpenBertForSequenceClassification.from_pretrained
    wanted = [split for split, on in zip(
        SPLITS, (training_args.do_train, training_args.do_eval, training_args.do_predict), strict=True) if on]
    if not wanted:
        raise ValueError("nothing to do: pass --do_train, --do_eval and/or --do_predict")
    missing = early_stopping_problems(data_args.early_stopping_patience, training_args)
    if missing:
        raise ValueError(f"--early_stopping_patience needs {', '.join(missing)}")
    set_seed(training_args.seed)
    raw = load_raw_splits(data_args, wanted)

    first, first_source = raw[wanted[0]]
    task = get_glue_task(data_args.task_name) if data_args.task_name else None
    columns = (TextColumns(task.text_column, task.text_pair_column, task.label_column) if task else
               resolve_columns(first.column_names, first_source, data_args.text_column,
                               data_args.text_pair_column, data_args.label_column))
    label_space = resolve_label_space(raw, columns, task, data_args.is_regression,
                                      AutoConfig.from_pretrained(model_args.model_name_or_path))

    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    tokenized = {}
    for split in wanted:
        dataset, source = raw[split]
        dataset = _truncate(dataset, limits[split])
        resolve_columns(dataset.column_names, source, columns.text, columns.text_pair, columns.label)
        labelled = split != "test" or has_labels(dataset, columns)
        if labelled:
            require_label_column(dataset, columns, source)
        tokenized[split] = tokenize_split(dataset, source, columns, tokenizer, data_args.max_seq_length,
                                          data_args.pad_to_max_length, label_space if labelled else None)

    model = load_model(
        model_args.model_name_or_path, num_labels=label_space.num_labels, id2label=label_space.id2label,
        label2id=label_space.label2id,
        problem_type="regression" if label_space.is_regression else "single_label_classification",
    )
    callbacks = ([EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience)]
                 if data_args.early_stopping_patience is not None else [])
    hub_target = hub_target_from_training_args(training_args)
    trainer = Trainer(
        model=model, args=training_args, train_dataset=tokenized.get("train"),
        eval_dataset=tokenized.get("validation"), processing_class=tokenizer,
        data_collator=default_data_collator if data_args.pad_to_max_length else DataCollatorWithPadding(tokenizer),
        compute_metrics=build_compute_metrics(metric_names_for(data_args, label_space), label_space),
        callbacks=callbacks,
    )
    results: dict[str, float] = {}
    output_dir = Path(training_args.output_dir)
    if training_args.do_train:
        train_metrics = trainer.train().metrics
        train_metrics["train_samples"] = len(tokenized["train"])
        trainer.save_model()  # with the tokenizer, so pipelines load from output_dir alone
        trainer.save_state()
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        results.update(train_metrics)
    if training_args.do_eval:
        eval_metrics = trainer.evaluate()
        eval_metrics["eval_samples"] = len(tokenized["validation"])
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        results.update(eval_metrics)
    if training_args.do_predict:
        # Scored too when the test split has labels (the Trainer computes metrics whenever labels exist).
        output = trainer.predict(tokenized["test"], metric_key_prefix="predict")
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        predicted = logits.squeeze(-1) if label_space.is_regression else np.argmax(logits, axis=-1)
        if trainer.is_world_process_zero():
            write_predictions(output_dir / "predict_results.tsv", predicted, label_space)
        output.metrics["predict_samples"] = len(tokenized["test"])
        trainer.save_metrics("predict", output.metrics)
        results.update(output.metrics)
    if trainer.is_world_process_zero():
        plot_log_history(trainer.state.log_history, output_dir / "training_curves.png",
                         title=f"{data_args.task_name or 'classification'}: {model_args.model_name_or_path}")
        glue = "nyu-mll/glue" if data_args.task_name else None
        finish_run(training_args, hub_target, results, kind="finetuned", task="text-classification",
                   datasets=data_sources(glue or data_args.dataset_name,
                                         [data_args.train_file, data_args.validation_file]),
                   base_model=model_args.model_name_or_path,
                   dataset_config=data_args.task_name or data_args.dataset_config_name)
    return {k: v for k, v in results.items() if isinstance(v, int | float) and not math.isnan(v)}


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = parse_args((ModelArguments, DataArguments, TrainingArguments), argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        stream=sys.stdout)
    return run_classification(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
