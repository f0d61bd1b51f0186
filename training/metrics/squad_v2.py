"""SQuAD v2.0 scores with unanswerable questions, as the official evaluation script (an `evaluate` module)."""

import evaluate

from .shared import SquadMetric
from .squad_scoring import exact_match, match_ids, normalize_answer, token_f1

_DESCRIPTION = """SQuAD v2.0 scores: exact match and F1 (in percent) over all questions, answerable ones
(HasAns_*) and unanswerable ones (NoAns_*). A question is unanswerable when none of its gold answers is
non-empty after normalization; the right prediction for it is the empty string. A prediction whose
`no_answer_probability` exceeds `no_answer_threshold` is treated as "no answer". best_exact/best_f1 are the
scores at the threshold on `no_answer_probability` that maximises them (best_*_thresh), as officially.
"""

_INPUTS = """
Args:
    predictions (list of dict): {"id": str, "prediction_text": str ("" = no answer),
        "no_answer_probability": float} per question.
    references (list of dict): {"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}};
        an empty "text" list marks an unanswerable question.
    no_answer_threshold (float, default 1.0): see above; the default never overrides a prediction.
Returns:
    {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1",
     "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"} (the HasAns_/NoAns_ keys
    only when such questions are present).
"""


def _best_threshold(
    predictions: dict[str, str], scores: dict[str, float], no_answer_probs: dict[str, float],
    has_answer: dict[str, bool],
) -> tuple[float, float]:
    """Sweep the no-answer threshold over the sorted probabilities; return (best score in %, threshold).

    Starting from "every question answered with no answer" (score = number of unanswerable questions),
    lowering the threshold past a question turns its prediction back on: answerable questions gain their
    score, unanswerable ones lose 1 if a non-empty answer was predicted.
    """
    score = best = float(sum(not has for has in has_answer.values()))
    best_threshold = 0.0
    for qid in sorted(no_answer_probs, key=no_answer_probs.__getitem__):
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1.0
        if score > best:
            best, best_threshold = score, no_answer_probs[qid]
    return 100.0 * best / len(scores), best_threshold


class SquadV2(SquadMetric, evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS
    description, inputs_description = _DESCRIPTION, _INPUTS
    citation = "Rajpurkar, Jia & Liang (2018), Know What You Don't Know: Unanswerable Questions for SQuAD, ACL."
    with_no_answer_probability = True

    def _compute(self, predictions, references, no_answer_threshold=1.0):
        match_ids((p["id"] for p in predictions), (r["id"] for r in references))
        predicted = {p["id"]: p["prediction_text"] for p in predictions}
        no_answer_probs = {p["id"]: p["no_answer_probability"] for p in predictions}
        exact, f1, has_answer = {}, {}, {}
        for reference in references:
            qid = reference["id"]
            golds = [text for text in reference["answers"]["text"] if normalize_answer(text)] or [""]
            has_answer[qid] = golds != [""]
            exact[qid] = max(exact_match(predicted[qid], gold) for gold in golds)
            f1[qid] = max(token_f1(predicted[qid], gold, empty_matches_empty=True) for gold in golds)

        def thresholded(scores: dict[str, float]) -> dict[str, float]:
            # Above the threshold the prediction counts as "no answer": right exactly when there is none.
            return {qid: float(not has_answer[qid]) if no_answer_probs[qid] > no_answer_threshold else s
                    for qid, s in scores.items()}

        final_exact, final_f1 = thresholded(exact), thresholded(f1)
        results = {"exact": 100.0 * sum(final_exact.values()) / len(exact),
                   "f1": 100.0 * sum(final_f1.values()) / len(f1), "total": len(exact)}
        for prefix, wanted in (("HasAns", True), ("NoAns", False)):
            subset = [qid for qid in exact if has_answer[qid] == wanted]
            if subset:
                results[f"{prefix}_exact"] = 100.0 * sum(final_exact[q] for q in subset) / len(subset)
                results[f"{prefix}_f1"] = 100.0 * sum(final_f1[q] for q in subset) / len(subset)
                results[f"{prefix}_total"] = len(subset)
        # As the official script, the sweep starts again from the raw scores, ignoring no_answer_threshold.
        for name, scores in (("exact", exact), ("f1", f1)):
            best, threshold = _best_threshold(predicted, scores, no_answer_probs, has_answer)
            results[f"best_{name}"], results[f"best_{name}_thresh"] = best, threshold
        return results
