"""Evaluation of embedding models and re-rankers through sentence-transformers' own evaluators.

* scored pairs (STS-B): `EmbeddingSimilarityEvaluator`, Spearman (and Pearson) of the model's similarity against
  the gold scores: `similarity_spearman_cosine`;
* pairs and triplets: retrieval. Every distinct anchor is a query and every distinct positive or negative text a
  document of one corpus; a query's positives are its relevant documents. For SQuAD-format files that is "each
  question retrieves its paragraph among all paragraphs of the file". `InformationRetrievalEvaluator` reports
  `retrieval_cosine_ndcg@10`, `..._mrr@10`, `..._recall@1`, `..._recall@10`, `..._accuracy@k` and `..._map@100`;
* re-ranking: the retriever's top k documents of each query (k = 20 by default), re-scored by a cross-encoder;
  `CrossEncoderRerankingEvaluator` reports `reranking_ndcg@10`, `reranking_mrr@10` and `reranking_map`, and the
  retriever's own order over the same candidates as `reranking_base_*`. A positive the retriever missed stays
  missed (`always_rerank_positives=False`): the numbers are those of the two-stage system.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import datasets
import torch

from .data import TARGET, PairLayout

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator

# The cut-offs reported for retrieval.
RANK_CUTOFFS = (1, 10)


@dataclass(frozen=True)
class RetrievalTask:
    """Queries, one corpus, and which documents are relevant to each query (all by id)."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]


def retrieval_task(queries_from: datasets.Dataset, layout: PairLayout,
                   corpus_from: datasets.Dataset | None = None) -> RetrievalTask:
    """The retrieval task of a split of pairs or triplets: the anchors of `queries_from` query the documents of
    `corpus_from` (default: the same rows; pass the whole split to search all its documents with fewer queries)."""
    corpus_from = queries_from if corpus_from is None else corpus_from
    document_ids: dict[str, str] = {}
    for column in layout.texts[1:]:
        for text in corpus_from[column]:
            document_ids.setdefault(text, f"d{len(document_ids)}")
    query_ids: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for anchor, positive in zip(queries_from[layout.texts[0]], queries_from[layout.texts[1]], strict=True):
        query_id = query_ids.setdefault(anchor, f"q{len(query_ids)}")
        relevant.setdefault(query_id, set()).add(document_ids[positive])
    return RetrievalTask({i: text for text, i in query_ids.items()}, {i: text for text, i in document_ids.items()},
                         relevant)


def similarity_evaluator(dataset: datasets.Dataset, layout: PairLayout, batch_size: int) -> BaseEvaluator:
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    first, second = layout.texts
    return EmbeddingSimilarityEvaluator(dataset[first], dataset[second], dataset[TARGET], batch_size=batch_size,
                                        name="similarity", write_csv=False)


def retrieval_evaluator(task: RetrievalTask, batch_size: int) -> BaseEvaluator:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    return InformationRetrievalEvaluator(
        task.queries, task.corpus, task.relevant, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=list(RANK_CUTOFFS),
        precision_recall_at_k=list(RANK_CUTOFFS), map_at_k=[100], batch_size=batch_size, name="retrieval",
        write_csv=False,
    )


def top_matches(model: SentenceTransformer, queries: torch.Tensor, documents: torch.Tensor,
                k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and indices of the `k` documents most similar to each query, best first, by the model's similarity
    function (cosine, dot, ...), as sentence-transformers' own retrieval ranks them."""
    scores = model.similarity(queries, documents)
    return torch.topk(scores, k=min(k, documents.shape[0]), dim=1)


def reranking_evaluator(task: RetrievalTask, retriever: SentenceTransformer, top_k: int,
                        batch_size: int) -> BaseEvaluator:
    """Re-ranking of `retriever`'s top `top_k` documents of every query of `task`."""
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    query_ids, document_ids = list(task.queries), list(task.corpus)
    queries = retriever.encode_query([task.queries[i] for i in query_ids], batch_size=batch_size,
                                     convert_to_tensor=True)
    documents = retriever.encode_document([task.corpus[i] for i in document_ids], batch_size=batch_size,
                                          convert_to_tensor=True)
    _, best = top_matches(retriever, queries, documents, top_k)
    samples = [{"query": task.queries[query_id],
                "positive": [task.corpus[i] for i in sorted(task.relevant[query_id])],
                "documents": [task.corpus[document_ids[j]] for j in row.tolist()]}
               for query_id, row in zip(query_ids, best, strict=True)]
    return CrossEncoderRerankingEvaluator(samples, at_k=10, always_rerank_positives=False, batch_size=batch_size,
                                          name="reranking", write_csv=False)
