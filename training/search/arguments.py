"""The options of `openbert finetune embeddings` and `openbert finetune reranker` beyond those every fine-tuning
job has (`openbert.training.finetuning.FineTuningDataArguments`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..finetuning import FineTuningDataArguments


@dataclass
class SearchModelArguments:
    model_name_or_path: str = field(metadata={
        "help": "The encoder to start from: a sentence-transformers checkpoint (its pooling, normalisation and "
                "prompts are kept, e.g. all-MiniLM-L6-v2 converted with `openbert convert`), or any openbert or "
                "BERT checkpoint (an encoder from `openbert pretrain`, a converted BERT)."})
    base_model_name: str | None = field(default=None, metadata={
        "help": "How the model card names the model fine-tuned, when --model_name_or_path does not say it: the Hub "
                "id of a local copy (e.g. sentence-transformers/all-MiniLM-L6-v2) or a description. Default: the Hub "
                "id, or the local path."})
    pooling: Literal["mean", "cls", "max"] = field(default="mean", metadata={
        "help": "How token vectors become one sentence vector, for a checkpoint that is not a sentence-transformers "
                "model yet (embeddings only; a sentence-transformers checkpoint keeps its own)."})


@dataclass
class PairDataArguments(FineTuningDataArguments):
    max_seq_length: int | None = field(default=None, metadata={
        "help": "Longest input in tokens; longer inputs are truncated. Default: the checkpoint's own (a "
                "sentence-transformers model's max_seq_length, else the tokenizer's and model's limit)."})
    text_columns: list[str] | None = field(default=None, metadata={
        "help": "The text columns in order: ANCHOR POSITIVE [NEGATIVE ...], or SENTENCE1 SENTENCE2 for scored pairs. "
                "Default: anchor/positive[/negative], query/positive[/negative], question/context, "
                "sentence1/sentence2 or text/text_pair, whichever the data has. SQuAD-format files give "
                "question/context pairs."})
    label_column: str | None = field(default=None, metadata={
        "help": "The column holding a similarity score, which makes the data scored pairs. Default: `score`, else "
                "`label`, when present."})
    max_score: float | None = field(default=None, metadata={
        "help": "Divide scores by this so that they lie in [-1, 1] like cosine similarities (5 for STS-B)."})


@dataclass
class EmbeddingDataArguments(PairDataArguments):
    loss: Literal["auto", "multiple_negatives_ranking", "cosine_similarity", "triplet"] = field(
        default="auto", metadata={
            "help": "auto: cosine_similarity for scored pairs, multiple_negatives_ranking (in-batch negatives, plus "
                    "the given negatives) for pairs and triplets. triplet: margin loss on (anchor, positive, "
                    "negative)."})


@dataclass
class RerankerDataArguments(PairDataArguments):
    retriever_name_or_path: str | None = field(default=None, metadata={
        "help": "A sentence-transformers model (bi-encoder) whose top documents are re-ranked in evaluation, and "
                "which mines hard negatives for training (--num_hard_negatives). Needed by --do_eval."})
    rerank_top_k: int = field(default=20, metadata={
        "help": "How many of the retriever's documents the re-ranker re-scores per query in evaluation."})
    num_hard_negatives: int = field(default=1, metadata={
        "help": "Negatives mined per training pair among the retriever's top --rerank_top_k documents (0: none; "
                "needs --retriever_name_or_path)."})
    num_negatives: int = field(default=3, metadata={
        "help": "Other documents of the batch scored against each query as negatives during training."})
