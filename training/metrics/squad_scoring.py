"""Answer normalization and per-answer scores of the official SQuAD v1.1 and v2.0 evaluation scripts.

Shared by `squad.py` and `squad_v2.py` (imported relatively, so `evaluate` copies it along).
"""

import re
import string
from collections import Counter
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace (in that order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when both strings normalize to the same text, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str, empty_matches_empty: bool) -> float:
    """F1 of the bags of normalized tokens of `prediction` and `gold`.

    `empty_matches_empty` selects the v2.0 rule: when either side has no tokens the score is 1.0 if both
    are empty, else 0.0 (so a correct "no answer" scores 1). v1.1 scores any empty side 0.0.
    """
    prediction_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if empty_matches_empty and (not prediction_tokens or not gold_tokens):
        return float(prediction_tokens == gold_tokens)
    overlap = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(prediction_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def match_ids(prediction_ids: Iterable[str], reference_ids: Iterable[str]) -> None:
    """Raise when predictions and references do not cover the same question ids exactly once."""
    prediction_ids, reference_ids = list(prediction_ids), list(reference_ids)
    if not reference_ids:
        raise ValueError("no references to score: the evaluation split is empty")
    for ids, what in ((prediction_ids, "predictions"), (reference_ids, "references")):
        if len(set(ids)) != len(ids):
            duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ValueError(f"{what} repeat question ids {duplicates[:5]}")
    missing = set(reference_ids) - set(prediction_ids)
    extra = set(prediction_ids) - set(reference_ids)
    if missing or extra:
        raise ValueError(f"predictions and references must share their ids: {len(missing)} references "
                         f"lack a prediction (e.g. {sorted(missing)[:3]}), {len(extra)} predictions have no "
                         f"reference (e.g. {sorted(extra)[:3]})")

