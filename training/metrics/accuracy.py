"""Accuracy: the fraction of predictions equal to their reference label (an `evaluate` metric module)."""

import evaluate
import numpy as np

from .shared import DescribedMetric, require_predictions

_DESCRIPTION = "Accuracy = (number of predictions equal to the reference) / (number of predictions)."

_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): reference class ids, same length.
    normalize (bool, default True): return the fraction; False returns the count of correct predictions.
    sample_weight (list of float, optional): per-example weights.
Returns:
    {"accuracy": float}
Example:
    >>> load_metric("accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


class Accuracy(DescribedMetric, evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS
    description = _DESCRIPTION
    inputs_description = _INPUTS

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        require_predictions(predictions, references)
        correct = np.asarray(predictions) == np.asarray(references)
        weights = np.ones(len(correct)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        score = float(np.sum(weights * correct))
        return {"accuracy": score / float(np.sum(weights)) if normalize else score}
