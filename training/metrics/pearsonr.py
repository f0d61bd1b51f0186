"""Pearson correlation between predicted and reference scores (an `evaluate` metric module); STS-B."""

import evaluate
from scipy import stats

from .shared import CorrelationMetric


class Pearsonr(CorrelationMetric, evaluate.Metric):
    """Pearson's r: the linear correlation of predictions and references, in [-1, 1].
    r = cov(x, y) / (std(x) * std(y)). Needs at least two pairs; NaN when either side is constant.
    """

    description = __doc__
    score_name = "pearsonr"
    statistic = staticmethod(stats.pearsonr)
    example = "{'pearsonr': 0.9819805060619656}"
