"""Spearman rank correlation between predicted and reference scores (an `evaluate` metric module); STS-B."""

import evaluate
from scipy import stats

from .shared import CorrelationMetric


class Spearmanr(CorrelationMetric, evaluate.Metric):
    """Spearman's rho: the Pearson correlation of the ranks of predictions and references (ties get their
    average rank), in [-1, 1]. Measures how monotonic the relation is, not how linear.
    """

    description = __doc__
    score_name = "spearmanr"
    statistic = staticmethod(stats.spearmanr)
    example = "{'spearmanr': 1.0}"
