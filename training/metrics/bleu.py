"""Corpus BLEU as sacrebleu computes it by default (an `evaluate` metric module).

Written out instead of depending on sacrebleu: BLEU is a hundred lines, and the metrics must load offline
without extra packages. Same definition as sacrebleu's `corpus_bleu` defaults: the "13a" tokenizer of
mteval-v13a.pl, clipped n-gram precisions up to 4-grams summed over the corpus, the geometric mean with
"exp" smoothing for orders without a match, and the brevity penalty on the corpus lengths.
"""

import math
import re
from collections import Counter

import datasets
import evaluate

from .shared import require_predictions

_DESCRIPTION = """BLEU (Papineni et al., 2002) of a corpus of predictions against one reference each, in [0, 100],
as sacrebleu's corpus_bleu computes it by default (13a tokenization, 4-grams, exp smoothing)."""

_INPUTS = """
Args:
    predictions (list of str): generated texts.
    references (list of str): one reference text per prediction.
    lowercase (bool, default False): compare lower-cased text (for models that only produce lower case).
Returns:
    {"bleu": float in [0, 100], "precisions": [4 floats], "brevity_penalty": float,
     "prediction_length": int, "reference_length": int}
Example:
    >>> load_metric("bleu").compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"])
    {'bleu': 100.0, ...}
"""

CITATION = "Papineni et al. (2002), BLEU: a Method for Automatic Evaluation of Machine Translation, ACL."

MAX_ORDER = 4

# mteval-v13a.pl's tokenization rules (sacrebleu's "13a"), applied in this order.
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # split off punctuation and symbols
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period and comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period and comma unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash after a digit
)


def tokenize_13a(text: str) -> list[str]:
    """Split `text` into tokens as mteval-v13a.pl does."""
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in text:
        text = text.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = f" {text} "
    for pattern, replacement in _13A_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def _ngrams(tokens: list[str]) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for n in range(1, MAX_ORDER + 1) for i in range(len(tokens) - n + 1))


def corpus_statistics(predictions: list[str], references: list[str], lowercase: bool) -> dict:
    """Matched and total n-grams per order, and the two corpus lengths."""
    matches, totals = [0] * MAX_ORDER, [0] * MAX_ORDER
    prediction_length = reference_length = 0
    for prediction, reference in zip(predictions, references, strict=True):
        if lowercase:
            prediction, reference = prediction.lower(), reference.lower()
        predicted, wanted = tokenize_13a(prediction), tokenize_13a(reference)
        prediction_length, reference_length = prediction_length + len(predicted), reference_length + len(wanted)
        predicted_ngrams, wanted_ngrams = _ngrams(predicted), _ngrams(wanted)
        for ngram, count in predicted_ngrams.items():
            totals[len(ngram) - 1] += count
            matches[len(ngram) - 1] += min(count, wanted_ngrams[ngram])  # clipped by the reference's count
    return dict(matches=matches, totals=totals, prediction_length=prediction_length,
                reference_length=reference_length)


def bleu_from_statistics(matches: list[int], totals: list[int], prediction_length: int,
                         reference_length: int) -> dict:
    """BLEU from corpus n-gram counts, with sacrebleu's "exp" smoothing: the k-th order without any match counts
    as 1 / 2^k matches instead of 0 (otherwise one empty order would zero the score)."""
    precisions = [0.0] * MAX_ORDER
    smoothing = 1.0
    for order in range(MAX_ORDER):
        if totals[order] == 0:
            break  # predictions too short for this order: its precision stays 0, so BLEU is 0
        if matches[order] == 0:
            smoothing *= 2
            precisions[order] = 100.0 / (smoothing * totals[order])
        else:
            precisions[order] = 100.0 * matches[order] / totals[order]
    if prediction_length == 0:
        brevity_penalty = 0.0
    elif prediction_length < reference_length:
        brevity_penalty = math.exp(1 - reference_length / prediction_length)
    else:
        brevity_penalty = 1.0
    log_mean = sum(math.log(p) if p > 0 else -9999999999 for p in precisions) / MAX_ORDER
    return dict(bleu=brevity_penalty * math.exp(log_mean), precisions=precisions, brevity_penalty=brevity_penalty,
                prediction_length=prediction_length, reference_length=reference_length)


class Bleu(evaluate.Metric):
    __doc__ = _DESCRIPTION + _INPUTS

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, lowercase=False):
        require_predictions(predictions, references)
        return bleu_from_statistics(**corpus_statistics(predictions, references, lowercase))
