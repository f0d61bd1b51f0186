"""ROUGE-L: longest common subsequence F-measure (an `evaluate` metric module).

Written out instead of depending on rouge-score (which pulls nltk and absl): the same definition as its
`rougeL` (per-pair LCS precision, recall and F1, averaged over pairs; no stemming), with one difference in
tokenization that matters for other languages than English: text is lower-cased and split into runs of
Unicode letters and digits, where rouge-score drops every character outside a-z0-9 (it would erase "ä", "ß").
On ASCII text the two tokenizations are the same.
"""

import re

import datasets
import evaluate

from .shared import require_predictions

_DESCRIPTION = """ROUGE-L (Lin, 2004): for each prediction and its reference, precision and recall of their longest
common subsequence of tokens, combined into F1; the mean F1 over pairs, in [0, 100]."""

_INPUTS = """
Args:
    predictions (list of str): generated texts.
    references (list of str): one reference text per prediction.
Returns:
    {"rougeL": float in [0, 100]} (mean F1), plus "rougeL_precision" and "rougeL_recall" (means).
Example:
    >>> load_metric("rouge").compute(predictions=["the cat was found"], references=["the cat was under the bed"])
    {'rougeL': 60.0, 'rougeL_precision': 75.0, 'rougeL_recall': 50.0}
"""

CITATION = "Lin (2004), ROUGE: A Package for Automatic Evaluation of Summaries, ACL workshop."

_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def lcs_length(first: list[str], second: list[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming over one row at a time."""
    previous = [0] * (len(second) + 1)
    for token in first:
        current = [0]
        for j, other in enumerate(second):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of one pair, each in [0, 1]; 0 when either side has no token."""
    predicted, wanted = tokenize(prediction), tokenize(reference)
    if not predicted or not wanted:
        return 0.0, 0.0, 0.0
    common = lcs_length(predicted, wanted)
    precision, recall = common / len(predicted), common / len(wanted)
    f1 = 0.0 if common == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


class Rouge(evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        require_predictions(predictions, references)
        scores = [rouge_l(prediction, reference) for prediction, reference in zip(predictions, references,
                                                                                  strict=True)]
        precision, recall, f1 = (100.0 * sum(column) / len(scores) for column in zip(*scores, strict=True))
        return {"rougeL": f1, "rougeL_precision": precision, "rougeL_recall": recall}
