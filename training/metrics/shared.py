"""What the bundled metrics share: input validation and the `evaluate` boilerplate of their descriptions.

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


class DescribedMetric:
    """`evaluate`'s `_info` from class attributes: `description`, `inputs_description`, `citation`, and
    `input_features()` (default: one value of `value_type` per prediction and per reference).

    Mixed into an `evaluate.Metric` subclass, before it (`evaluate` takes the first Metric subclass it finds in
    a metric script as the metric, so this is not one itself).
    """

    description = ""
    inputs_description = ""
    citation = ""
    value_type = "int64"

    def input_features(self) -> datasets.Features:
        value = datasets.Value(self.value_type)
        return datasets.Features({"predictions": value, "references": value})

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(description=self.description, citation=self.citation,
                                   inputs_description=self.inputs_description, features=self.input_features())


class CorrelationMetric(DescribedMetric):
    """The correlation of predicted with reference scores, by one of scipy.stats' correlation functions.

    A subclass sets `score_name` (the key of the result), `statistic` (a scipy.stats function returning
    `.statistic` and `.pvalue`), `description` and `example` (what `compute` returns on the docstring's example).
    """

    score_name: str
    statistic: staticmethod
    example = ""
    value_type = "float64"

    @property
    def inputs_description(self) -> str:
        return f"""
Args:
    predictions (list of float): predicted scores.
    references (list of float): reference scores, same length.
    return_pvalue (bool, default False): also return the two-sided p-value.
Returns:
    {{"{self.score_name}": float}} (plus "{self.score_name}_pvalue" when asked)
Example:
    >>> load_metric("{self.score_name}").compute(predictions=[1, 2, 3], references=[1, 2, 4])
    {self.example}
"""

    def _compute(self, predictions, references, return_pvalue=False):
        require_predictions(predictions, references)
        result = self.statistic(predictions, references)
        scores = {self.score_name: float(result.statistic)}
        if return_pvalue:
            scores[f"{self.score_name}_pvalue"] = float(result.pvalue)
        return scores


class SquadMetric(DescribedMetric):
    """`_info` of the SQuAD metrics: `{"id", "prediction_text"}` predictions (with `no_answer_probability` for
    v2.0) and `{"id", "answers": {"text", "answer_start"}}` references."""

    with_no_answer_probability = False

    def input_features(self) -> datasets.Features:
        prediction = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")}
        if self.with_no_answer_probability:
            prediction["no_answer_probability"] = datasets.Value("float64")
        answers = datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
        return datasets.Features({"predictions": prediction,
                                  "references": {"id": datasets.Value("string"), "answers": answers}})
