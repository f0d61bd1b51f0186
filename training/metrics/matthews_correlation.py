"""Matthews correlation coefficient, binary or multi-class (an `evaluate` metric module); CoLA's metric."""

import evaluate
import numpy as np

from .shared import DescribedMetric, require_predictions

_DESCRIPTION = """Matthews correlation between predicted and reference labels, in [-1, 1] (1: perfect, 0: no
better than chance). For K classes it is Gorodkin's R_K statistic computed from the confusion matrix C:
    MCC = (c * s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) * (s^2 - sum_k t_k^2))
with c = trace(C) correct predictions, s samples, t_k references of class k, p_k predictions of class k.
For two classes this is (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). It is 0 when the
denominator is 0 (all predictions or all references in one class).
"""

_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): reference class ids, same length.
Returns:
    {"matthews_correlation": float}
Example:
    >>> load_metric("matthews_correlation").compute(predictions=[1, 1, 0, 0], references=[1, 0, 0, 0])
    {'matthews_correlation': 0.5773502691896258}
"""


class MatthewsCorrelation(DescribedMetric, evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS
    description = _DESCRIPTION
    inputs_description = _INPUTS
    citation = "Matthews, B. W. (1975); Gorodkin, J. (2004) Comput. Biol. Chem. 28(5-6):367-374."

    def _compute(self, predictions, references):
        require_predictions(predictions, references)
        predictions, references = np.asarray(predictions), np.asarray(references)
        labels = np.union1d(predictions, references)
        predicted = np.array([np.sum(predictions == label) for label in labels], dtype=float)
        actual = np.array([np.sum(references == label) for label in labels], dtype=float)
        samples, correct = float(len(predictions)), float(np.sum(predictions == references))
        denominator = np.sqrt((samples**2 - predicted @ predicted) * (samples**2 - actual @ actual))
        if denominator == 0:
            return {"matthews_correlation": 0.0}
        return {"matthews_correlation": float((correct * samples - predicted @ actual) / denominator)}
