"""`openbert finetune embeddings`: train a sentence-embedding model (bi-encoder) on an openbert encoder with
sentence-transformers, and evaluate it on semantic similarity or retrieval.

    openbert finetune embeddings --model_name_or_path MINILM_OPENBERT --train_files glue/STS-B/train.tsv \\
        --validation_files glue/STS-B/dev.tsv --max_score 5 --do_train --do_eval --output_dir out/sts
    openbert finetune embeddings --model_name_or_path PRETRAINED --train_files pairs.jsonl \\
        --validation_files squad-dev.json --do_train --do_eval --output_dir out/retrieval
    openbert evaluate embeddings --model_name_or_path out/sts --validation_files xquad.en.json --output_dir out/eval

The starting point is a sentence-transformers checkpoint (all-MiniLM-L6-v2 converted with `openbert convert` keeps
its pooling and normalisation) or any openbert/BERT encoder (`openbert pretrain`'s output: mean pooling is added,
`--pooling` picks another). The data (`--train_files`, `--validation_files`: JSON lines, JSON, CSV/TSV, Parquet,
Arrow or SQuAD-format files; or `--dataset_name`) decide the loss: scored pairs train with CosineSimilarityLoss,
pairs and triplets with MultipleNegativesRankingLoss (every other positive of the batch is a negative; with
`--batch_sampler no_duplicates` no batch holds a text twice). Evaluation is Spearman correlation for scored pairs and
retrieval (nDCG@10, MRR@10, Recall@1/10) for pairs, through sentence-transformers' evaluators.

The output directory is a sentence-transformers model (modules.json, pooling, ...) whose encoder is openbert, with
its code: `SentenceTransformer(output_dir)` loads it after `import openbert`, and with `trust_remote_code=True`
anywhere else. It also gets `{train,eval}_results.json`, `training_curves.png` and a model card
(`pipeline_tag: sentence-similarity`); `--push_to_hub --hub_model_id NAMESPACE/NAME` pushes it like any run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import datasets
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer import losses
from transformers import TrainerCallback, TrainingArguments

from ..finetuning import RENAMED_OPTIONS
from ..job import Prepared, run_command, run_job
from ..output_dir import OpenBertTrainingArguments
from ..run_trainer import RunTrainer
from .arguments import EmbeddingDataArguments, SearchModelArguments
from .data import PairLayout
from .evaluation import retrieval_evaluator, similarity_evaluator
from .models import load_sentence_transformer
from .pair_job import PairTrainingJob

COMMAND = "finetune embeddings"


@dataclass
class EmbeddingTrainingArguments(SentenceTransformerTrainingArguments, OpenBertTrainingArguments):
    """sentence-transformers' `SentenceTransformerTrainingArguments` with openbert's `--overwrite_output_dir`."""


class EmbeddingTrainer(RunTrainer, SentenceTransformerTrainer):
    """sentence-transformers' `SentenceTransformerTrainer` that stops diverging runs (`RunTrainer`)."""


ARGUMENTS = (SearchModelArguments, EmbeddingDataArguments, EmbeddingTrainingArguments)


def embedding_loss(model: Any, layout: PairLayout, name: str) -> Any:
    """The loss `name` (or, for "auto", the standard one for the data's layout), checked against the layout."""
    if name == "auto":
        name = "cosine_similarity" if layout.kind == "scored pairs" else "multiple_negatives_ranking"
    needs = {"cosine_similarity": "scored pairs", "multiple_negatives_ranking": ("pairs", "triplets"),
             "triplet": "triplets"}[name]
    if layout.kind not in needs or (name == "triplet" and len(layout.texts) != 3):
        raise ValueError(f"--loss {name} needs {needs if isinstance(needs, str) else ' or '.join(needs)}, but the "
                         f"data are {layout.kind} (texts {list(layout.texts)}, score {layout.score!r})")
    if name == "cosine_similarity":
        return losses.CosineSimilarityLoss(model)
    if name == "triplet":
        return losses.TripletLoss(model)
    return losses.MultipleNegativesRankingLoss(model)


class EmbeddingJob(PairTrainingJob):
    """A sentence-transformers bi-encoder trained on pairs, triplets or scored pairs."""

    task = "sentence-similarity"

    def __init__(self, model_args: SearchModelArguments, data_args: EmbeddingDataArguments) -> None:
        super().__init__(model_args, data_args, load_sentence_transformer)

    @staticmethod
    def arguments_class() -> type[TrainingArguments]:
        return SentenceTransformerTrainingArguments

    def evaluator(self, limited: datasets.Dataset, whole: datasets.Dataset, batch_size: int) -> Any:
        if self.layout.kind == "scored pairs":
            return similarity_evaluator(limited, self.layout, batch_size)
        return retrieval_evaluator(self.validation_task(limited, whole), batch_size)

    def prepare(self, args: TrainingArguments, callbacks: Sequence[TrainerCallback]) -> Prepared:
        data, whole_validation = self.load_pairs(args)
        model = self.load_model(self.model_args.model_name_or_path, self.model_args.pooling,
                                self.data_args.max_seq_length)
        train = data.get("train")
        trainer = EmbeddingTrainer(
            model=model, args=args, train_dataset=train,
            loss=embedding_loss(model, self.layout, self.data_args.loss) if train is not None else None,
            evaluator=(self.evaluator(data["validation"], whole_validation, args.per_device_eval_batch_size)
                       if "validation" in data else None),
            callbacks=self.callbacks(callbacks),
        )
        return Prepared(trainer, self.counts(data))


def run_embeddings(model_args: SearchModelArguments, data_args: EmbeddingDataArguments,
                   training_args: TrainingArguments, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Run the requested --do_train/--do_eval steps; return every reported number. `training_args` must be a
    `sentence_transformers.SentenceTransformerTrainingArguments`."""
    return run_job(EmbeddingJob(model_args, data_args), training_args, callbacks)


def main(argv: Sequence[str] | None = None, command: str = COMMAND,
         callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Parse the command line (or one JSON/YAML config file) and run; `callbacks` go to the Trainer."""
    return run_command(command, ARGUMENTS, run_embeddings, argv, renamed=RENAMED_OPTIONS,
                       description=__doc__, callbacks=callbacks)
