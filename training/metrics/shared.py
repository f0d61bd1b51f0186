"""What the bundled metrics share: input validation and the body of the correlation metrics.

One flat module on purpose: `evaluate` copies the relative imports of a metric script into its cache, but
not the imports of those imports.
"""

from collections.abc import Sequence

import datasets
import evaluate


def require_predictions(predictions: Sequence, references: Sequence) -> None:
    """Raise a clear error for empty input, where every score would be a division by zero."""
    if len(predictions) == 0:
        raise ValueError("no predictions to score: the evaluation split is empty")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")


class CorrelationMixin:
    """The correlation of predicted with reference scores, by one of scipy.stats' correlation functions.

    Mixed into an `evaluate.Metric` subclass (not one itself: `evaluate` takes the first Metric subclass it
    finds in a metric script as the metric), which sets `score_name` (the key of the result), `statistic`
    (a scipy.stats function returning `.statistic` and `.pvalue`), `description` and `inputs_description`.
    """

    score_name: str
    statistic: staticmethod
    description = ""
    inputs_description = ""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.description,
            citation="",
            inputs_description=self.inputs_description,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references, return_pvalue=False):
        require_predictions(predictions, references)
        result = self.statistic(predictions, references)
        scores = {self.score_name: float(result.statistic)}
        if return_pvalue:
            scores[f"{self.score_name}_pvalue"] = float(result.pvalue)
        return scores
