"""Pearson correlation between predicted and reference scores (an `evaluate` metric module); STS-B."""

import evaluate
from scipy import stats

from .shared import CorrelationMixin

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


class Pearsonr(CorrelationMixin, evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS
    description = _DESCRIPTION
    inputs_description = _INPUTS
    score_name = "pearsonr"
    statistic = staticmethod(stats.pearsonr)
