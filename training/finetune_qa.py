"""Fine-tune a pretrained checkpoint for extractive question answering (SQuAD v1.1 / v2.0) with the Trainer.

    python -m training.finetune_qa --model_name_or_path DIR --train_file train-v1.1.json \
        --validation_file dev-v1.1.json --do_train --do_eval --output_dir out/squad
    python -m training.finetune_qa --model_name_or_path DIR --version_2_with_negative \
        --train_file train-v2.0.json --validation_file dev-v2.0.json --do_train --do_eval --output_dir out/squad2
    python -m training.finetune_qa config.yaml           # every option in one JSON/YAML file

Data: official SQuAD JSON, flat JSON/JSON lines (`id`, `title`, `context`, `question`,
`answers{text, answer_start}`), or a `datasets` dataset (`--dataset_name`). Questions whose `answer_start`
does not match their answer text are skipped with a warning and counted in the results. Long contexts
are cut into overlapping windows (`--max_seq_length`, `--doc_stride`); answers are searched over all
windows of a question (`--n_best_size`, `--max_answer_length`) and mapped back to the context text.
The output directory receives the model with its tokenizer (loadable by `pipeline("question-answering")`),
`{eval,predict}_predictions.json`, `..._nbest_predictions.json` (and `..._null_odds.json` for v2),
`all_results.json`, `{train,eval}_results.json` and `training_curves.png`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import datasets
from transformers import (
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from openbert.modeling import OpenBertForQuestionAnswering

from .arguments import parse_args
from .curves import plot_log_history
from .finetune_arguments import ModelArguments, early_stopping_problems
from .publish import data_sources, finish_run
from .push import hub_target_from_training_args
from .qa_data import QAExamples, read_qa_file, validate_qa_examples
from .qa_pipeline import save_with_qa_pipeline
from .qa_processing import MODEL_INPUT_COLUMNS, prepare_eval_features, prepare_train_features, write_qa_predictions
from .qa_trainer import QAScorer, QuestionAnsweringTrainer

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class QADataArguments:
    dataset_name: str | None = field(default=None, metadata={
        "help": "A `datasets` dataset in the flat SQuAD layout: a `save_to_disk` folder, or a Hub name (needs "
                "network), e.g. squad / squad_v2."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_file: str | None = field(default=None, metadata={
        "help": "Training data: official SQuAD .json, flat .json or .jsonl."})
    validation_file: str | None = field(default=None, metadata={
        "help": "Evaluation data (gold answers), same formats."})
    test_file: str | None = field(default=None, metadata={
        "help": "Questions to answer with --do_predict, same formats; answers optional and not scored."})
    version_2_with_negative: bool = field(default=False, metadata={
        "help": "SQuAD v2.0: some questions have no answer. Trains them to point at [CLS], lets predictions be "
                "empty, and scores with the v2.0 metric. Without it, unanswerable questions are skipped."})
    max_seq_length: int = field(default=384, metadata={
        "help": "Tokens per window (question + context + special tokens); longer contexts get several windows."})
    doc_stride: int = field(default=128, metadata={
        "help": "Tokens of context shared by consecutive windows of a long context (the overlap)."})
    pad_to_max_length: bool = field(default=False, metadata={
        "help": "Pad every window to max_seq_length. Default: pad each batch to its longest window."})
    n_best_size: int = field(default=20, metadata={
        "help": "Start and end positions tried per window, and answer candidates kept in the n-best file."})
    max_answer_length: int = field(default=30, metadata={"help": "Longest answer, in tokens."})
    null_score_diff_threshold: float = field(default=0.0, metadata={
        "help": "v2.0: answer \"\" when null score - best answer score exceeds this (raise it for more answers)."})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Use only the first N training questions (quick runs, CPU budgets)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation questions."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Answer only the first N test questions."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many evaluations without improving metric_for_best_model (e.g. f1; needs "
                "--load_best_model_at_end and an eval_strategy)."})


def load_qa_split(data_args: QADataArguments, split: str) -> QAExamples:
    """Read and validate one split; test data need no answers."""
    if data_args.dataset_name:
        if Path(data_args.dataset_name).is_dir():
            loaded = datasets.load_from_disk(data_args.dataset_name)
        else:
            loaded = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name)
        if split not in loaded:
            raise ValueError(f"dataset {data_args.dataset_name} has no {split!r} split (it has {', '.join(loaded)})")
        records, source = loaded[split], f"{data_args.dataset_name}[{split}]"
    else:
        path = {"train": data_args.train_file, "validation": data_args.validation_file,
                "test": data_args.test_file}[split]
        if path is None:
            option = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}[split]
            raise ValueError(f"the {split} split is needed but no file was given: pass {option} (or --dataset_name)")
        records, source = read_qa_file(path), path
    return validate_qa_examples(records, source, data_args.version_2_with_negative, require_answers=split != "test")


def _windows(examples: datasets.Dataset, function, tokenizer: PreTrainedTokenizerBase,
             data_args: QADataArguments, split: str) -> datasets.Dataset:
    return examples.map(
        partial(function, tokenizer=tokenizer, max_seq_length=data_args.max_seq_length,
                doc_stride=data_args.doc_stride, pad_to_max_length=data_args.pad_to_max_length),
        batched=True, remove_columns=examples.column_names, desc=f"windows of the {split} split",
    )


def _model_inputs(features: datasets.Dataset) -> datasets.Dataset:
    return features.select_columns([c for c in MODEL_INPUT_COLUMNS if c in features.column_names])


def run_qa(
    model_args: ModelArguments, data_args: QADataArguments, training_args: TrainingArguments,
    load_model: Callable[..., PreTrainedModel] | None = None,
) -> dict[str, float]:
    """Run the requested --do_train/--do_eval/--do_predict steps; return every reported number.

    `load_model(path, **config_overrides)` builds the model; it defaults to
    `OpenBertForQuestionAnswering.from_pretrained`. The benchmarks pass
    `BertForQuestionAnswering.from_pretrained` to run the identical recipe on transformers' implementation.
    """
    load_model = load_model or OpenBertForQuestionAnswering.from_pretrained
    wanted = [split for split, on in zip(
        SPLITS, (training_args.do_train, training_args.do_eval, training_args.do_predict), strict=True) if on]
    if not wanted:
        raise ValueError("nothing to do: pass --do_train, --do_eval and/or --do_predict")
    missing = early_stopping_problems(data_args.early_stopping_patience, training_args)
    if missing:
        raise ValueError(f"--early_stopping_patience needs {', '.join(missing)}")
    set_seed(training_args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    if not tokenizer.is_fast:
        raise ValueError("QA preprocessing needs a fast (Rust) tokenizer for its offset mappings; "
                         f"{type(tokenizer).__name__} is not one")

    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    prefixes = {"validation": "eval", "test": "predict"}
    results: dict[str, float] = {}
    model_inputs, scorers = {}, {}
    for split in wanted:
        loaded = load_qa_split(data_args, split)
        examples = loaded.dataset
        if limits[split] is not None:
            examples = examples.select(range(min(limits[split], len(examples))))
        prefix = prefixes.get(split, split)
        results.update({f"{prefix}_examples": len(examples), f"{prefix}_skipped_misaligned": loaded.skipped_misaligned,
                        f"{prefix}_skipped_unanswerable": loaded.skipped_unanswerable})
        if split == "train":
            features = _windows(examples, prepare_train_features, tokenizer, data_args, split)
            model_inputs[split] = features
        else:
            features = _windows(examples, prepare_eval_features, tokenizer, data_args, split)
            model_inputs[split] = _model_inputs(features)
            scorers[prefix] = QAScorer(examples, features, data_args.version_2_with_negative, data_args.n_best_size,
                                       data_args.max_answer_length, data_args.null_score_diff_threshold,
                                       scored=split == "validation")
        results[f"{prefix}_features"] = len(features)

    model = load_model(model_args.model_name_or_path)
    hub_target = hub_target_from_training_args(training_args)
    trainer = QuestionAnsweringTrainer(
        model=model, args=training_args, train_dataset=model_inputs.get("train"),
        eval_dataset=model_inputs.get("validation"), processing_class=tokenizer,
        data_collator=default_data_collator if data_args.pad_to_max_length else DataCollatorWithPadding(tokenizer),
        callbacks=([EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience)]
                   if data_args.early_stopping_patience is not None else []),
        qa_scorers=scorers,
    )
    output_dir = Path(training_args.output_dir)
    if training_args.do_train:
        train_metrics = trainer.train().metrics
        trainer.save_model()
        if trainer.is_world_process_zero():
            # Model, tokenizer and the question-answering pipeline's code: pipelines load from output_dir alone.
            save_with_qa_pipeline(trainer.model, tokenizer, output_dir)
        trainer.save_state()
        train_metrics.update({k: v for k, v in results.items() if k.startswith("train_")})
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        results.update(train_metrics)
    if training_args.do_eval:
        eval_metrics = trainer.evaluate()
        eval_metrics.update({k: v for k, v in results.items() if k.startswith("eval_")})
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        results.update(eval_metrics)
        if trainer.is_world_process_zero():
            write_qa_predictions(trainer.qa_predictions["eval"], output_dir, prefix="eval")
    if training_args.do_predict:
        predict_metrics = trainer.predict(model_inputs["test"], metric_key_prefix="predict").metrics
        predict_metrics.update({k: v for k, v in results.items() if k.startswith("predict_")})
        trainer.save_metrics("predict", predict_metrics)
        results.update(predict_metrics)
        if trainer.is_world_process_zero():
            write_qa_predictions(trainer.qa_predictions["predict"], output_dir, prefix="predict")
    if trainer.is_world_process_zero():
        plot_log_history(trainer.state.log_history, output_dir / "training_curves.png",
                         title=f"question answering: {model_args.model_name_or_path}")
        finish_run(training_args, hub_target, results, kind="finetuned", task="question-answering",
                   datasets=data_sources(data_args.dataset_name, [data_args.train_file, data_args.validation_file]),
                   base_model=model_args.model_name_or_path, dataset_config=data_args.dataset_config_name)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = parse_args((ModelArguments, QADataArguments, TrainingArguments), argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        stream=sys.stdout)
    return run_qa(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
