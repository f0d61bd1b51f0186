"""`openbert finetune qa`: fine-tune a pretrained checkpoint for extractive question answering (SQuAD v1.1 / v2.0).

    openbert finetune qa --model_name_or_path DIR --train_files train-v1.1.json \\
        --validation_files dev-v1.1.json --do_train --do_eval --output_dir out/squad
    openbert finetune qa --model_name_or_path DIR --version_2_with_negative \\
        --train_files train-v2.0.json --validation_files dev-v2.0.json --do_train --do_eval --output_dir out/squad2
    openbert finetune qa config.yaml           # every option in one JSON/YAML file

Data: official SQuAD JSON, flat records (`id`, `title`, `context`, `question`, `answers{text, answer_start}`) in
JSON, JSON lines or Parquet, or a `datasets` dataset (`--dataset_name`). Questions whose `answer_start` does not
match their answer text are skipped with a warning and counted in the results. Long contexts are cut into
overlapping windows (`--max_seq_length`, `--doc_stride`); answers are searched over all windows of a question
(`--n_best_size`, `--max_answer_length`) and mapped back to the context text. The output directory receives the
model with its tokenizer and the question-answering pipeline's code (`pipeline("question-answering",
trust_remote_code=True)`), `{eval,predict}_predictions.json`, `..._nbest_predictions.json` (and
`..._null_odds.json` for v2), `all_results.json`, `{train,eval}_results.json`, `training_curves.png` and a card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PredictionOutput

from openbert.modeling import OpenBertForQuestionAnswering

from ..finetuning import RENAMED_OPTIONS, SPLIT_PREFIXES, FineTuningJob, ModelArguments
from ..job import Prepared, run_command, run_job
from .arguments import QADataArguments
from .data import QAExamples, read_qa_files, validate_qa_examples
from .pipeline import save_with_qa_pipeline
from .processing import MODEL_INPUT_COLUMNS, prepare_eval_features, prepare_train_features, write_qa_predictions
from .trainer import QAScorer, QuestionAnsweringTrainer

COMMAND = "finetune qa"
ARGUMENTS = (ModelArguments, QADataArguments, TrainingArguments)


class QuestionAnsweringJob(FineTuningJob):
    """Extractive question answering: answer spans in a context, scored by SQuAD's metrics."""

    task = "question-answering"

    def __init__(self, model_args: ModelArguments, data_args: QADataArguments,
                 load_model: Callable[..., PreTrainedModel] | None = None) -> None:
        super().__init__(model_args, data_args, load_model or OpenBertForQuestionAnswering.from_pretrained)

    def read_files(self, split: str, files: list[str]) -> list[dict[str, Any]]:
        return read_qa_files(files)

    def examples(self, split: str) -> QAExamples:
        """A split's validated questions, cut to its sample limit; test data need no answers."""
        records, source = self.load_split(split)
        loaded = validate_qa_examples(records, source, self.data_args.version_2_with_negative,
                                      require_answers=split != "test")
        return QAExamples(self.limit(split, loaded.dataset), loaded.skipped_misaligned, loaded.skipped_unanswerable)

    def windows(self, split: str, examples: Any, tokenizer: PreTrainedTokenizerBase) -> Any:
        """The model's windows over each context: with answer positions for training, with offsets otherwise."""
        function = prepare_train_features if split == "train" else prepare_eval_features
        return examples.map(
            partial(function, tokenizer=tokenizer, max_seq_length=self.data_args.max_seq_length,
                    doc_stride=self.data_args.doc_stride, pad_to_max_length=self.data_args.pad_to_max_length),
            batched=True, remove_columns=examples.column_names, desc=f"windows of the {split} split",
        )

    def prepare(self, args: TrainingArguments, callbacks: Sequence[TrainerCallback]) -> Prepared:
        tokenizer = self.load_tokenizer()
        if not tokenizer.is_fast:
            raise ValueError("QA preprocessing needs a fast (Rust) tokenizer for its offset mappings; "
                             f"{type(tokenizer).__name__} is not one")
        counts, model_inputs, scorers = {}, {}, {}
        for split in self.splits(args):
            prefix, examples = SPLIT_PREFIXES[split], self.examples(split)
            features = self.windows(split, examples.dataset, tokenizer)
            counts.update({f"{prefix}_examples": len(examples.dataset), f"{prefix}_features": len(features),
                           f"{prefix}_skipped_misaligned": examples.skipped_misaligned,
                           f"{prefix}_skipped_unanswerable": examples.skipped_unanswerable})
            if split == "train":
                model_inputs[split] = features
                continue
            model_inputs[split] = features.select_columns([c for c in MODEL_INPUT_COLUMNS
                                                           if c in features.column_names])
            scorers[prefix] = QAScorer(examples.dataset, features, self.data_args.version_2_with_negative,
                                       self.data_args.n_best_size, self.data_args.max_answer_length,
                                       self.data_args.null_score_diff_threshold, scored=split == "validation")
        trainer = QuestionAnsweringTrainer(
            model=self.load_pretrained(), args=args,
            train_dataset=model_inputs.get("train"), eval_dataset=model_inputs.get("validation"),
            processing_class=tokenizer, data_collator=self.collator(tokenizer), callbacks=self.callbacks(callbacks),
            qa_scorers=scorers,
        )
        return Prepared(trainer, counts, predict_dataset=model_inputs.get("test"))

    def save(self, trainer: Trainer) -> None:
        trainer.save_model()
        if trainer.is_world_process_zero():
            # With the question-answering pipeline's code: pipelines load the output directory alone.
            save_with_qa_pipeline(trainer.model, trainer.processing_class, trainer.args.output_dir)

    def write_predictions(self, trainer: Trainer, prefix: str, output: PredictionOutput | None) -> None:
        write_qa_predictions(trainer.qa_predictions[prefix], trainer.args.output_dir, prefix=prefix)

    def title(self) -> str:
        return f"question answering, fine-tuned from {self.model_short_name()}"


def run_qa(model_args: ModelArguments, data_args: QADataArguments, training_args: TrainingArguments,
           load_model: Callable[..., PreTrainedModel] | None = None,
           callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Run the requested --do_train/--do_eval/--do_predict steps; return every reported number.

    `load_model(path)` builds the model; it defaults to `OpenBertForQuestionAnswering.from_pretrained`. The
    benchmarks pass `BertForQuestionAnswering.from_pretrained` to run the identical recipe on transformers' BERT.
    """
    return run_job(QuestionAnsweringJob(model_args, data_args, load_model), training_args, callbacks)


def main(argv: Sequence[str] | None = None, command: str = COMMAND,
         callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Parse the command line (or one JSON/YAML config file) and run; `callbacks` go to the Trainer."""
    return run_command(command, ARGUMENTS, run_qa, argv, renamed=RENAMED_OPTIONS, description=__doc__,
                       callbacks=callbacks)
