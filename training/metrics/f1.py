"""F1 score, binary or macro-averaged over classes (an `evaluate` metric module)."""

import evaluate
import numpy as np

from .shared import DescribedMetric, require_predictions

_DESCRIPTION = """F1 = 2 * precision * recall / (precision + recall), the harmonic mean of the two.
`average="binary"` scores the class `pos_label` only; `average="macro"` is the unweighted mean of the
per-class F1 over every class seen in predictions or references. A class with no true positives has F1 0.
"""

_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): reference class ids, same length.
    average ("binary" or "macro", default "binary").
    pos_label (int, default 1): the positive class for `average="binary"`.
Returns:
    {"f1": float}
Example:
    >>> load_metric("f1").compute(predictions=[1, 1, 0, 0], references=[1, 0, 0, 1])
    {'f1': 0.5}
"""


def _class_f1(predictions: np.ndarray, references: np.ndarray, label: int) -> float:
    true_positives = np.sum((predictions == label) & (references == label))
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (#predicted as label + #labelled as label); 0 when both are 0.
    denominator = np.sum(predictions == label) + np.sum(references == label)
    return float(2 * true_positives / denominator) if denominator else 0.0


class F1(DescribedMetric, evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS
    description = _DESCRIPTION
    inputs_description = _INPUTS

    def _compute(self, predictions, references, average="binary", pos_label=1):
        require_predictions(predictions, references)
        predictions, references = np.asarray(predictions), np.asarray(references)
        if average == "binary":
            labels = np.union1d(predictions, references)
            if len(labels) > 2:
                raise ValueError(f"average='binary' scores two classes but got {labels.tolist()}; "
                                 "use average='macro'")
            return {"f1": _class_f1(predictions, references, pos_label)}
        if average == "macro":
            labels = np.union1d(predictions, references)
            return {"f1": float(np.mean([_class_f1(predictions, references, label) for label in labels]))}
        raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")
