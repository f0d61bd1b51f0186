"""Spearman rank correlation between predicted and reference scores (an `evaluate` metric module); STS-B."""

import datasets
import evaluate
from scipy import stats

from .input_checks import require_predictions

_DESCRIPTION = """Spearman's rho: the Pearson correlation of the ranks of predictions and references (ties get
their average rank), in [-1, 1]. Measures how monotonic the relation is, not how linear.
"""

_INPUTS = """
Args:
    predictions (list of float): predicted scores.
    references (list of float): reference scores, same length.
    return_pvalue (bool, default False): also return the two-sided p-value.
Returns:
    {"spearmanr": float} (plus "spearmanr_pvalue" when asked)
Example:
    >>> load_metric("spearmanr").compute(predictions=[1, 2, 3], references=[1, 2, 4])
    {'spearmanr': 1.0}
"""


class Spearmanr(evaluate.Metric):
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
        result = stats.spearmanr(predictions, references)
        scores = {"spearmanr": float(result.statistic)}
        if return_pvalue:
            scores["spearmanr_pvalue"] = float(result.pvalue)
        return scores
