"""Spearman rank correlation between predicted and reference scores (an `evaluate` metric module); STS-B."""

import evaluate
from scipy import stats

from .shared import CorrelationMixin

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


class Spearmanr(CorrelationMixin, evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS
    description = _DESCRIPTION
    inputs_description = _INPUTS
    score_name = "spearmanr"
    statistic = staticmethod(stats.spearmanr)
