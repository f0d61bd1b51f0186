"""The data of embedding and re-ranker training: text pairs, triplets, or scored pairs, from any file the one reader
takes, from SQuAD-format files, or from a `datasets` split.

sentence-transformers reads a training set by column order: the first text column is the anchor, the second its
positive (or the second sentence of a scored pair), any further ones negatives, and a column named `score` or
`label` the target. Every source is turned into exactly that layout here, so the losses and evaluators never
guess. A SQuAD-format article (title → paragraphs → questions) becomes one `(question, context)` pair per question,
answerable or not: every question was written about its paragraph, which is what retrieval has to find.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import datasets

from openbert.tokenization.data_files import expand_data_files, iter_records

# Column layouts recognised without --text_columns, in order of preference.
KNOWN_LAYOUTS = (
    ("anchor", "positive", "negative"), ("anchor", "positive"), ("query", "positive", "negative"),
    ("query", "positive"), ("question", "context"), ("sentence1", "sentence2"), ("text", "text_pair"),
)
SCORE_COLUMNS = ("score", "label")
# The name sentence-transformers reads the target from.
TARGET = "score"


@dataclass(frozen=True)
class PairLayout:
    """Which columns hold what: the texts in order (anchor, positive, negatives...) and the score, if any."""

    texts: tuple[str, ...]
    score: str | None = None

    @property
    def kind(self) -> str:
        """"scored pairs", "pairs" or "triplets" (anchor, positive and one or more negatives)."""
        if self.score is not None:
            return "scored pairs"
        return "pairs" if len(self.texts) == 2 else "triplets"


def squad_pairs(article: dict[str, Any]) -> Iterator[dict[str, str]]:
    """`{"question", "context"}` for every question of a SQuAD-format article."""
    for paragraph in article.get("paragraphs", []):
        for qa in paragraph.get("qas", []):
            yield {"question": qa["question"], "context": paragraph["context"]}


def read_pair_files(files: Sequence[str]) -> datasets.Dataset:
    """The records of `files` (files, folders, globs), SQuAD-format articles turned into question-context pairs."""
    paths = expand_data_files(files)
    records = [pair for path in paths for record in iter_records(path)
               for pair in (squad_pairs(record) if "paragraphs" in record else [record])]
    if not records:
        raise ValueError(f"{', '.join(map(str, paths))} hold no records (empty split)")
    return datasets.Dataset.from_list(records)


def resolve_layout(columns: Sequence[str], source: str, text_columns: Sequence[str] | None = None,
                   label_column: str | None = None) -> PairLayout:
    """The layout of a split with `columns`: the columns given, else the first known layout they hold."""
    if text_columns:
        texts = tuple(text_columns)
    else:
        texts = next((layout for layout in KNOWN_LAYOUTS if set(layout) <= set(columns)), ())
        if not texts:
            raise ValueError(f"{source}: cannot tell which columns hold the texts (columns: {list(columns)}); pass "
                             "--text_columns ANCHOR POSITIVE [NEGATIVE ...] (or SENTENCE1 SENTENCE2 with a score)")
    score = label_column or next((name for name in SCORE_COLUMNS if name in columns), None)
    missing = [name for name in (*texts, score) if name is not None and name not in columns]
    if missing:
        raise ValueError(f"{source} has no column {', '.join(map(repr, missing))} (columns: {list(columns)})")
    if len(texts) < 2 or (score is not None and len(texts) != 2):
        raise ValueError(f"{source}: need two text columns with a score, or two or more without (anchor, positive, "
                         f"negatives); got texts {list(texts)} and score {score!r}")
    return PairLayout(texts, score)


def to_training_layout(dataset: datasets.Dataset, layout: PairLayout, source: str,
                       max_score: float | None = None) -> datasets.Dataset:
    """The split with only the layout's columns, texts first, the score (divided by `max_score`) as `score`.

    Scores must end up in [-1, 1], the range of a cosine similarity; STS-B's 0-5 need `max_score=5`.
    """
    dataset = dataset.select_columns([*layout.texts, *([layout.score] if layout.score else [])])
    if layout.score is None:
        return dataset
    scores = [float(value) / (max_score or 1.0) for value in dataset[layout.score]]
    if any(not -1.0 <= score <= 1.0 for score in scores):
        raise ValueError(f"{source}: scores run from {min(scores):g} to {max(scores):g} but must lie in [-1, 1] like "
                         "cosine similarities; pass --max_score (e.g. 5 for STS-B's 0-5 scale)")
    dataset = dataset.remove_columns(layout.score).add_column(TARGET, scores)
    return dataset.cast_column(TARGET, datasets.Value("float32"))
