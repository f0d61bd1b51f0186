"""`openbert search query`: the documents of an index that best match a query, with their scores.

    openbert search query --model_name_or_path out/embeddings --query "how do I reset my password?" --top_k 5
    openbert search query --model_name_or_path out/embeddings --query "..." --reranker_name_or_path out/reranker

The query is embedded by the model the index was built with (with its "query" prompt, if it has one) and compared
with every chunk by the model's similarity function; a document scores as its best chunk. With a re-ranker (a
cross-encoder from `openbert finetune reranker`) the best `--rerank_top_k` documents are scored again, each by its
best chunk read together with the query, and re-ordered. Each result shows its rank, score, document and the chunk
that matched; `--output_format json` prints one JSON object per query instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from openbert.tokenization.command_line import parse_command_line

from .evaluation import top_matches
from .index import Chunk, default_index_dir, load_index
from .models import load_cross_encoder, load_sentence_transformer

logger = logging.getLogger(__name__)
COMMAND = "search query"
# Characters of a matched chunk shown in text output.
SNIPPET_CHARS = 160


@dataclass(frozen=True)
class Hit:
    """One result: a document, its score, and the chunk of it that matched best."""

    document: str
    score: float
    chunk: Chunk


@dataclass
class QueryArguments:
    model_name_or_path: str = field(metadata={"help": "The sentence-embedding model the index was built with."})
    query: list[str] = field(metadata={"help": "One or more queries."})
    index_dir: str | None = field(default=None, metadata={
        "help": "The index folder. Default: search_index/ inside the model folder."})
    top_k: int = field(default=5, metadata={"help": "How many documents to show per query."})
    reranker_name_or_path: str | None = field(default=None, metadata={
        "help": "A cross-encoder (openbert finetune reranker) that re-scores the best --rerank_top_k documents."})
    rerank_top_k: int = field(default=20, metadata={"help": "How many documents the re-ranker re-scores."})
    output_format: Literal["text", "json"] = field(default="text", metadata={
        "help": "text: a ranked list per query; json: one JSON object per query (query, hits)."})


class Searcher:
    """An index with its model (and optionally a re-ranker), ready for queries."""

    def __init__(self, model_name_or_path: str, index_dir: str | None = None,
                 reranker_name_or_path: str | None = None) -> None:
        self.model = load_sentence_transformer(model_name_or_path)
        self.embeddings, self.chunks, config = load_index(index_dir or default_index_dir(model_name_or_path))
        if config["dimension"] != self.model.get_embedding_dimension():
            raise ValueError(f"the index holds {config['dimension']}-dimensional embeddings but "
                             f"{model_name_or_path} makes {self.model.get_embedding_dimension()}-dimensional ones: "
                             "query with the model that built the index, or index again")
        if config["model_name_or_path"] != str(Path(model_name_or_path).resolve()):
            logger.warning("the index was built with %s, not %s: scores are only meaningful with the same model",
                           config["model_name_or_path"], model_name_or_path)
        self.reranker = load_cross_encoder(reranker_name_or_path) if reranker_name_or_path else None

    def search(self, queries: Sequence[str], top_k: int = 5, rerank_top_k: int = 20) -> list[list[Hit]]:
        """The `top_k` best documents of each query, best first."""
        query_embeddings = self.model.encode_query(list(queries), convert_to_tensor=True).float().cpu()
        # Every chunk in similarity order; a document's first chunk in that order is its best.
        scores, order = top_matches(self.model, query_embeddings, self.embeddings, len(self.chunks))
        candidates = max(top_k, rerank_top_k) if self.reranker else top_k
        results = [self._best_per_document(row_scores, row_order, candidates)
                   for row_scores, row_order in zip(scores, order, strict=True)]
        if self.reranker is not None:
            results = [self._rerank(query, hits[:rerank_top_k]) for query, hits in zip(queries, results, strict=True)]
        return [hits[:top_k] for hits in results]

    def _best_per_document(self, scores: torch.Tensor, order: torch.Tensor, count: int) -> list[Hit]:
        hits: dict[str, Hit] = {}
        for score, index in zip(scores.tolist(), order.tolist(), strict=True):
            chunk = self.chunks[index]
            if chunk.document not in hits:
                hits[chunk.document] = Hit(chunk.document, score, chunk)
                if len(hits) == count:
                    break
        return list(hits.values())

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        scores = self.reranker.predict([(query, hit.chunk.text) for hit in hits], show_progress_bar=False)
        rescored = [Hit(hit.document, float(score), hit.chunk) for hit, score in zip(hits, scores, strict=True)]
        return sorted(rescored, key=lambda hit: hit.score, reverse=True)


def format_hits(query: str, hits: Sequence[Hit], output_format: str) -> str:
    if output_format == "json":
        return json.dumps({"query": query, "hits": [asdict(hit) for hit in hits]}, ensure_ascii=False)
    lines = [f"query: {query}"]
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.chunk.text.split())
        snippet = snippet if len(snippet) <= SNIPPET_CHARS else snippet[:SNIPPET_CHARS - 1] + "…"
        lines.append(f"{rank:>3}. {hit.score:8.4f}  {hit.document}\n       {snippet}")
    return "\n".join(lines)


ARGUMENTS = (QueryArguments,)
RENAMED_OPTIONS: dict[str, str] = {}


def main(argv: Sequence[str] | None = None, command: str = COMMAND) -> list[list[Any]]:
    """Print the results of every query; return them."""
    (args,) = parse_command_line(command, ARGUMENTS, argv, description=__doc__)
    searcher = Searcher(args.model_name_or_path, args.index_dir, args.reranker_name_or_path)
    results = searcher.search(args.query, args.top_k, args.rerank_top_k)
    for query, hits in zip(args.query, results, strict=True):
        print(format_hits(query, hits, args.output_format))
    return results
