"""BLEU and ROUGE-L, the generation metrics: hand-computed values of sacrebleu's and rouge-score's definitions."""

import math

import pytest

from openbert.training.metrics import load_metric


def test_bleu_clips_counts_and_smooths_orders_without_a_match():
    bleu = load_metric("bleu")
    same = bleu.compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"])
    assert same["bleu"] == pytest.approx(100)
    # "the cat the cat" vs "the cat is here": unigrams 2/4 (each word clipped to its one reference count),
    # bigrams 1/3, trigrams 0/2 and 4-grams 0/1 smoothed to 1/2 and 1/4 of a match; equal lengths, no penalty.
    result = bleu.compute(predictions=["the cat the cat"], references=["the cat is here"])
    assert result["precisions"] == pytest.approx([50.0, 100 / 3, 25.0, 25.0])
    assert result["bleu"] == pytest.approx((50.0 * 100 / 3 * 25.0 * 25.0) ** 0.25)


def test_bleu_brevity_penalty_and_corpus_level_counts():
    bleu = load_metric("bleu")
    short = bleu.compute(predictions=["a b c d"], references=["a b c d e f"])
    assert short["brevity_penalty"] == pytest.approx(math.exp(1 - 6 / 4))
    assert short["bleu"] == pytest.approx(100 * math.exp(1 - 6 / 4))
    # Counts are summed over the corpus before dividing: the 2-word sentence alone would score 0.
    corpus = bleu.compute(predictions=["a b c d", "x y"], references=["a b c d", "x y"])
    assert corpus["bleu"] == pytest.approx(100.0)
    assert bleu.compute(predictions=["x y"], references=["x y"])["bleu"] == 0.0


def test_bleu_tokenizes_punctuation_and_can_ignore_case():
    bleu = load_metric("bleu")
    # 13a tokenization splits "down." into "down" "." (so it matches "down ."); case counts unless lowercase.
    prediction, reference = "The cat sat down.", "the cat sat down ."
    assert bleu.compute(predictions=[prediction], references=[reference], lowercase=True)["bleu"] == pytest.approx(100)
    assert bleu.compute(predictions=[prediction], references=[reference])["bleu"] < 99


def test_rouge_l_is_the_mean_lcs_f1_and_keeps_non_ascii_letters():
    rouge = load_metric("rouge")
    # LCS "the cat was": precision 3/4, recall 3/6, F1 0.6.
    assert rouge.compute(predictions=["the cat was found"], references=["the cat was under the bed"]) == (
        {"rougeL": pytest.approx(60.0), "rougeL_precision": pytest.approx(75.0), "rougeL_recall": pytest.approx(50.0)}
    )
    # "groß" and "Köln" stay words (rouge-score's ASCII tokenizer would split them into fragments): LCS 3 of 4.
    german = rouge.compute(predictions=["Wie groß ist Köln?"], references=["wie gross ist köln"])
    assert german["rougeL"] == pytest.approx(75.0)
    # Means over pairs; an empty prediction scores 0.
    assert rouge.compute(predictions=["a b", ""], references=["a b", "c"])["rougeL"] == pytest.approx(50.0)


def test_generation_metrics_reject_empty_input():
    for name in ("bleu", "rouge"):
        with pytest.raises(ValueError, match="no predictions"):
            load_metric(name).compute(predictions=[], references=[])
