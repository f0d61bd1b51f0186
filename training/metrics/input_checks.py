"""Input validation shared by the bundled metrics (imported relatively, so `evaluate` copies it along)."""

from collections.abc import Sequence


def require_predictions(predictions: Sequence, references: Sequence) -> None:
    """Raise a clear error for empty input, where every score would be a division by zero."""
    if len(predictions) == 0:
        raise ValueError("no predictions to score: the evaluation split is empty")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
