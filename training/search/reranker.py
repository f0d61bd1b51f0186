"""`openbert finetune reranker`: train a cross-encoder re-ranker (`OpenBertForSequenceClassification` with one
output, through `sentence_transformers.CrossEncoder`) on query-document pairs, and evaluate it re-ranking a
retriever's top documents.

    openbert finetune reranker --model_name_or_path MINILM_OPENBERT --retriever_name_or_path MINILM_OPENBERT \\
        --train_files squad-v2.0-dev-small.json --validation_files xquad.en.json \\
        --do_train --do_eval --output_dir out/reranker

A cross-encoder reads the query and the document together, so it judges their match better than comparing two
separately computed embeddings, but it must run once per (query, document): it re-ranks the few best documents a
bi-encoder (`--retriever_name_or_path`) found. Training pairs (`--train_files`; SQuAD-format files give
question-paragraph pairs) are scored against their positive, `--num_hard_negatives` documents the retriever ranks
high but are not the positive, and `--num_negatives` other documents of the batch
(sentence-transformers' cross-encoder MultipleNegativesRankingLoss). Evaluation re-ranks the retriever's top
`--rerank_top_k` (20) documents of every validation query among all documents of the validation split, and reports
nDCG@10, MRR@10 and MAP before (`reranking_base_*`) and after re-ranking.

The output directory is a sentence-transformers CrossEncoder with openbert's code; `CrossEncoder(output_dir)` loads
it after `import openbert` (`trust_remote_code=True` elsewhere), `openbert search query --reranker_name_or_path`
uses it. It gets a model card (`pipeline_tag: text-ranking`) and pushes like any run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import datasets
from sentence_transformers import mine_hard_negatives
from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
from transformers import TrainerCallback, TrainingArguments

from ..finetuning import RENAMED_OPTIONS
from ..job import Prepared, run_command, run_job
from ..output_dir import OpenBertTrainingArguments
from ..run_trainer import RunTrainer
from .arguments import RerankerDataArguments, SearchModelArguments
from .evaluation import reranking_evaluator
from .models import load_cross_encoder, load_sentence_transformer
from .pair_job import PairTrainingJob

COMMAND = "finetune reranker"


@dataclass
class RerankerTrainingArguments(CrossEncoderTrainingArguments, OpenBertTrainingArguments):
    """sentence-transformers' `CrossEncoderTrainingArguments` with openbert's `--overwrite_output_dir`."""


class RerankerTrainer(RunTrainer, CrossEncoderTrainer):
    """sentence-transformers' `CrossEncoderTrainer` that stops diverging runs (`RunTrainer`)."""


ARGUMENTS = (SearchModelArguments, RerankerDataArguments, RerankerTrainingArguments)


class RerankerJob(PairTrainingJob):
    """A cross-encoder trained on (query, positive[, negatives]) and evaluated on a retriever's top documents."""

    task = "text-ranking"

    def __init__(self, model_args: SearchModelArguments, data_args: RerankerDataArguments) -> None:
        super().__init__(model_args, data_args, load_cross_encoder)

    @staticmethod
    def arguments_class() -> type[TrainingArguments]:
        return CrossEncoderTrainingArguments

    def check(self, args: TrainingArguments) -> None:
        if self.data_args.retriever_name_or_path is None:
            if args.do_eval:
                raise ValueError("--do_eval re-ranks a retriever's top documents: pass --retriever_name_or_path")
            if args.do_train and self.data_args.num_hard_negatives:
                raise ValueError("--num_hard_negatives are mined with a retriever: pass --retriever_name_or_path, "
                                 "or --num_hard_negatives 0")
        super().check(args)

    def with_hard_negatives(self, train: datasets.Dataset, retriever: Any) -> datasets.Dataset:
        """(query, positive) pairs with `--num_hard_negatives` documents the retriever ranks in its top
        `--rerank_top_k` for the query, other than the positive; data that bring their own negatives keep them."""
        if len(self.layout.texts) > 2 or not self.data_args.num_hard_negatives:
            return train
        return mine_hard_negatives(
            train, retriever, num_negatives=self.data_args.num_hard_negatives,
            range_max=self.data_args.rerank_top_k, output_format="n-tuple", verbose=False,
        )

    def prepare(self, args: TrainingArguments, callbacks: Sequence[TrainerCallback]) -> Prepared:
        data, whole_validation = self.load_pairs(args)
        if self.layout.kind == "scored pairs":
            raise ValueError("a re-ranker trains on pairs or triplets (query, relevant document[, negatives]), not "
                             "scored pairs")
        retriever = (load_sentence_transformer(self.data_args.retriever_name_or_path)
                     if self.data_args.retriever_name_or_path else None)
        model = self.load_model(self.model_args.model_name_or_path, self.data_args.max_seq_length)
        train, loss, evaluator = data.get("train"), None, None
        if train is not None:
            train = self.with_hard_negatives(train, retriever) if retriever is not None else train
            loss = MultipleNegativesRankingLoss(model, num_negatives=self.data_args.num_negatives)
        if "validation" in data:
            evaluator = reranking_evaluator(self.validation_task(data["validation"], whole_validation), retriever,
                                            self.data_args.rerank_top_k, args.per_device_eval_batch_size)
        trainer = RerankerTrainer(model=model, args=args, train_dataset=train, loss=loss, evaluator=evaluator,
                                      callbacks=self.callbacks(callbacks))
        return Prepared(trainer, self.counts(data))


def run_reranker(model_args: SearchModelArguments, data_args: RerankerDataArguments,
                 training_args: TrainingArguments, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Run the requested --do_train/--do_eval steps; return every reported number. `training_args` must be a
    `sentence_transformers.cross_encoder.CrossEncoderTrainingArguments`."""
    return run_job(RerankerJob(model_args, data_args), training_args, callbacks)


def main(argv: Sequence[str] | None = None, command: str = COMMAND,
         callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Parse the command line (or one JSON/YAML config file) and run; `callbacks` go to the Trainer."""
    return run_command(command, ARGUMENTS, run_reranker, argv, renamed=RENAMED_OPTIONS, description=__doc__,
                       callbacks=callbacks)
