"""The bundled `evaluate` metrics: hand-computed values, official SQuAD rules, and loading with no network."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openbert.training.metrics import AVAILABLE_METRICS, load_metric, metric_path

REPO = Path(__file__).resolve().parents[1]


def test_accuracy_plain_and_weighted():
    accuracy = load_metric("accuracy")
    assert accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0]) == {"accuracy": 0.75}
    # Weights 1,1,2,1: the one wrong prediction carries 2 of 5 -> 3/5.
    weighted = accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0], sample_weight=[1, 1, 2, 1])
    assert weighted["accuracy"] == pytest.approx(0.6)
    assert accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0], normalize=False) == {"accuracy": 2.0}


def test_f1_binary_and_macro():
    f1 = load_metric("f1")
    # TP=2 (idx 0,1), FP=1 (idx 2), FN=1 (idx 4): P=2/3, R=2/3 -> F1=2/3.
    predictions, references = [1, 1, 1, 0, 0], [1, 1, 0, 0, 1]
    assert f1.compute(predictions=predictions, references=references)["f1"] == pytest.approx(2 / 3)
    # Class 0 as positive: TP=1, FP=1, FN=1 -> 1/2.
    assert f1.compute(predictions=predictions, references=references, pos_label=0)["f1"] == pytest.approx(0.5)
    # Three classes: class 0 F1 = 2*1/(1+2) = 2/3; class 1 = 2*1/(2+1) = 2/3; class 2 = 2*1/(1+1) = 1.
    macro = f1.compute(predictions=[0, 1, 1, 2], references=[0, 0, 1, 2], average="macro")
    assert macro["f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    with pytest.raises(ValueError, match="average='macro'"):
        f1.compute(predictions=[0, 1, 2], references=[0, 1, 2])


def test_matthews_correlation_binary_and_multiclass():
    mcc = load_metric("matthews_correlation")
    # TP=1 TN=2 FP=1 FN=0: (1*2 - 1*0) / sqrt(2*1*3*2) = 2/sqrt(12).
    binary = mcc.compute(predictions=[1, 1, 0, 0], references=[1, 0, 0, 0])
    assert binary["matthews_correlation"] == pytest.approx(2 / math.sqrt(12))
    # 3 classes, 6 samples, 3 correct, 2 per class on both sides: (3*6 - 12) / (36 - 12) = 0.25.
    multi = mcc.compute(predictions=[0, 1, 2, 0, 1, 2], references=[0, 1, 2, 1, 2, 0])
    assert multi["matthews_correlation"] == pytest.approx(0.25)
    # Constant predictions make the denominator 0; the convention is 0, not NaN.
    assert mcc.compute(predictions=[1, 1, 1], references=[0, 1, 0]) == {"matthews_correlation": 0.0}
    assert mcc.compute(predictions=[1, 0, 1], references=[0, 1, 0]) == {"matthews_correlation": -1.0}


def test_pearson_and_spearman():
    # x=[1,2,3], y=[1,2,4]: cov sum 3, |dx|=sqrt(2), |dy|=sqrt(42/9) -> r = 9/sqrt(84).
    pearson = load_metric("pearsonr").compute(predictions=[1, 2, 3], references=[1, 2, 4])
    assert pearson["pearsonr"] == pytest.approx(9 / math.sqrt(84))
    # Ties take their mean rank: ranks [1,2.5,2.5,4] vs [1,3,2,4] -> 4.5 / sqrt(4.5 * 5).
    spearman = load_metric("spearmanr").compute(predictions=[1, 2, 2, 3], references=[1, 3, 2, 4])
    assert spearman["spearmanr"] == pytest.approx(4.5 / math.sqrt(22.5))
    with_p = load_metric("spearmanr").compute(predictions=[1, 2, 3, 4], references=[4, 3, 2, 1],
                                              return_pvalue=True)
    assert with_p["spearmanr"] == pytest.approx(-1.0) and with_p["spearmanr_pvalue"] == pytest.approx(0.0)


def _squad_reference(qid, *texts):
    return {"id": qid, "answers": {"text": list(texts), "answer_start": [0] * len(texts)}}


def test_squad_v1_official_normalization_and_best_gold():
    squad = load_metric("squad")
    predictions = [
        # Case, punctuation, articles and extra spaces are ignored: exact.
        {"id": "a", "prediction_text": "  The   EIFFEL tower. "},
        # Punctuation is deleted, not replaced by a space: "Eiffel-Tower" -> "eiffeltower" != "eiffel tower".
        {"id": "b", "prediction_text": "Eiffel-Tower"},
        # Tokens [in, city, of, paris] vs the better gold [paris, city]: P=2/4, R=2/2 -> F1 2/3.
        {"id": "c", "prediction_text": "in the city of Paris"},
    ]
    references = [_squad_reference("a", "Eiffel Tower"), _squad_reference("b", "Eiffel Tower"),
                  _squad_reference("c", "London", "Paris city")]
    scores = squad.compute(predictions=predictions, references=references)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0 + 2 / 3) / 3)


def test_squad_v2_no_answer_rules_and_threshold_sweep():
    squad_v2 = load_metric("squad_v2")
    predictions = [
        {"id": "has", "prediction_text": "Paris", "no_answer_probability": 0.1},
        {"id": "has_missed", "prediction_text": "", "no_answer_probability": 0.9},
        {"id": "none_right", "prediction_text": "", "no_answer_probability": 0.8},
        {"id": "none_wrong", "prediction_text": "Rome", "no_answer_probability": 0.6},
    ]
    references = [_squad_reference("has", "paris"), _squad_reference("has_missed", "Lyon"),
                  _squad_reference("none_right"), _squad_reference("none_wrong", "  the ")]
    scores = squad_v2.compute(predictions=predictions, references=references)
    # "  the " normalizes to nothing, so "none_wrong" counts as unanswerable.
    assert (scores["HasAns_total"], scores["NoAns_total"], scores["total"]) == (2, 2, 4)
    assert scores["HasAns_exact"] == 50.0 and scores["NoAns_exact"] == 50.0 and scores["exact"] == 50.0
    # Sweep from "all no-answer" (2 right): passing p=0.1 adds "has" (+1 -> 3, best, thresh 0.1);
    # p=0.6 "none_wrong" answered -> 2; p=0.8 stays; p=0.9 "has_missed" scores 0 -> 2.
    assert scores["best_exact"] == 75.0 and scores["best_exact_thresh"] == pytest.approx(0.1)
    # A threshold under 0.6 turns "none_wrong" into a (correct) no-answer.
    thresholded = squad_v2.compute(predictions=predictions, references=references, no_answer_threshold=0.5)
    assert thresholded["NoAns_exact"] == 100.0 and thresholded["HasAns_exact"] == 50.0


def test_squad_rejects_mismatched_ids_and_empty_input():
    squad = load_metric("squad")
    with pytest.raises(ValueError, match="lack a prediction"):
        squad.compute(predictions=[{"id": "x", "prediction_text": "a"}],
                      references=[_squad_reference("y", "a")])
    with pytest.raises(ValueError, match="no gold answer"):
        squad.compute(predictions=[{"id": "x", "prediction_text": "a"}], references=[_squad_reference("x")])
    with pytest.raises(ValueError, match="evaluation split is empty"):
        load_metric("accuracy").compute(predictions=[], references=[])


def test_unknown_metric_name_lists_the_bundled_ones():
    with pytest.raises(ValueError, match="bundles accuracy, bleu, f1"):
        metric_path("meteor")


def test_metrics_load_without_network(tmp_path):
    """Every metric loads from its path and computes in a fresh process whose sockets all fail."""
    script = """
import json, socket
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
from openbert.training.metrics import AVAILABLE_METRICS, load_metric
out = {}
for name in AVAILABLE_METRICS:
    metric = load_metric(name)
    if name.startswith("squad"):
        prediction = {"id": "q", "prediction_text": "x"}
        if name == "squad_v2":
            prediction["no_answer_probability"] = 0.0
        out[name] = metric.compute(predictions=[prediction], references=[
            {"id": "q", "answers": {"text": ["x"], "answer_start": [0]}}])
    elif name in ("bleu", "rouge"):  # generated text against reference text
        out[name] = metric.compute(predictions=["a b c d"], references=["a b c d"])
    else:
        out[name] = metric.compute(predictions=[0, 1, 1], references=[0, 1, 1])
print(json.dumps(out))
"""
    # A fresh cache proves the scripts come from the package, not from an earlier download.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_MODULES_CACHE", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == set(AVAILABLE_METRICS)
    assert results["accuracy"] == {"accuracy": 1.0} and results["squad"] == {"exact_match": 100.0, "f1": 100.0}
    assert results["pearsonr"]["pearsonr"] == pytest.approx(1.0)
    assert results["bleu"]["bleu"] == pytest.approx(100.0) and results["rouge"]["rougeL"] == pytest.approx(100.0)
