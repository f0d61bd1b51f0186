"""Pearson correlation between predicted and reference scores (an `evaluate` metric module); STS-B."""

import datasets
import evaluate
from scipy import stats

from .input_checks import require_predictions

_DESCRIPTION = """Pearson's r: the linear correlation of predictions and references, in [-1, 1].
r = cov(x, y) / (std(x) * std(y)). Needs at least two pairs; NaN when either side is constant.
"""

_INPUTS = """
Args:
    predictions (list of float): predicted scores.
    references (list of float): reference scores, same length.
    return_pvalue (bool, default False): also return the two-sided p-value.
Returns:
    {"pearsonr": float} (plus "pearsonr_pvalue" when asked)
Example:
    >>> load_metric("pearsonr").compute(predictions=[1, 2, 3], references=[1, 2, 4])
    {'pearsonr': 0.9819805060619656}
"""


class Pearsonr(evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references, return_pvalue=False):
        require_predictions(predictions, references)
        result = stats.pearsonr(predictions, references)
        scores = {"pearsonr": float(result.statistic)}
        if return_pvalue:
            scores["pearsonr_pvalue"] = float(result.pvalue)
        return scores
