"""SQuAD v1.1 exact match and F1, as computed by the official evaluation script (an `evaluate` module)."""

import evaluate

from .shared import SquadMetric
from .squad_scoring import exact_match, match_ids, token_f1

_DESCRIPTION = """SQuAD v1.1 scores for extractive question answering. Each prediction is compared with every
gold answer of its question after normalization (lower case, no punctuation, no articles a/an/the, single
spaces) and keeps the best: exact match (EM) is 1 when the normalized strings are equal; F1 is the
harmonic mean of precision and recall of the shared tokens. Both are averaged over questions, in percent.
"""

_INPUTS = """
Args:
    predictions (list of dict): {"id": str, "prediction_text": str} per question.
    references (list of dict): {"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}},
        the same ids as the predictions.
Returns:
    {"exact_match": float, "f1": float}, both in [0, 100].
Example:
    >>> load_metric("squad").compute(
    ...     predictions=[{"id": "q", "prediction_text": "the Eiffel tower"}],
    ...     references=[{"id": "q", "answers": {"text": ["Eiffel Tower!", "tower"], "answer_start": [0, 7]}}])
    {'exact_match': 100.0, 'f1': 100.0}
"""


class Squad(SquadMetric, evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS
    description, inputs_description = _DESCRIPTION, _INPUTS
    citation = "Rajpurkar et al. (2016), SQuAD: 100,000+ Questions for Machine Comprehension of Text, EMNLP."

    def _compute(self, predictions, references):
        match_ids((p["id"] for p in predictions), (r["id"] for r in references))
        predicted = {p["id"]: p["prediction_text"] for p in predictions}
        exact = f1 = 0.0
        for reference in references:
            golds = reference["answers"]["text"]
            if not golds:
                raise ValueError(f"question {reference['id']} has no gold answer; SQuAD v1.1 scoring "
                                 "needs one (use the squad_v2 metric for unanswerable questions)")
            prediction = predicted[reference["id"]]
            exact += max(exact_match(prediction, gold) for gold in golds)
            f1 += max(token_f1(prediction, gold, empty_matches_empty=False) for gold in golds)
        return {"exact_match": 100.0 * exact / len(references), "f1": 100.0 * f1 / len(references)}
