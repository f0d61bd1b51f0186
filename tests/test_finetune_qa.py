"""`python -m training.finetune_qa` end to end on a tiny model, and its saved model in pipelines."""

import json
import subprocess
import sys
import textwrap
from dataclasses import fields

import pytest
from huggingface_hub import ModelCard
from transformers import pipeline

from openbert.training.qa import QADataArguments, main

NAMES = ["Ada", "Bob", "Cleo", "Dan", "Eve", "Finn"]
CITIES = ["Paris", "Lyon", "Nice", "Rome", "Oslo", "Bern"]
FILLER = "The weather was mild and the trains ran on time. "
WINDOWS = ["--max_seq_length", "48", "--doc_stride", "16"]
FAST = ["--learning_rate", "3e-3", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
        "--report_to", "none", "--seed", "0", "--use_cpu", "--save_strategy", "no", "--num_train_epochs", "2"]


def squad_file(path, misaligned=0, unanswerable=0):
    """Official SQuAD JSON: one paragraph per name, long enough to need several 48-token windows."""
    paragraphs = []
    for index, (name, city) in enumerate(zip(NAMES, CITIES, strict=True)):
        # The answer sits after the filler in some paragraphs, so it is outside the first window.
        context = FILLER * (index % 3) + f"In spring {name} travelled to {city} by train. " + FILLER * 2
        start = context.index(city) + (1 if index < misaligned else 0)
        qas = [{"id": f"q{index}", "question": f"Where did {name} travel?",
                "answers": [{"text": city, "answer_start": start}]}]
        if index < unanswerable:
            qas.append({"id": f"n{index}", "question": "What colour was the sky?", "answers": [],
                        "is_impossible": True})
        paragraphs.append({"context": context, "qas": qas})
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Trips", "paragraphs": paragraphs}]}))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("qa_run")
    train = squad_file(root / "train.json", misaligned=1)
    dev = squad_file(root / "dev.json", unanswerable=2)
    out = root / "out"
    results = main(["--model_name_or_path", tiny, "--train_files", train, "--validation_files", dev, "--do_train",
                    "--do_eval", "--output_dir", str(out), *WINDOWS, *FAST])
    return out, results, dev


def test_train_and_eval_report_counts_scores_and_write_predictions(trained):
    out, results, dev = trained
    # One training question points one character past its answer: skipped, counted, not fatal.
    assert results["train_skipped_misaligned"] == 1 and results["train_examples"] == 5
    # SQuAD v1.1 evaluation skips the two unanswerable dev questions and counts them.
    assert results["eval_skipped_unanswerable"] == 2 and results["eval_examples"] == 6
    # Contexts longer than a window give several features per question.
    assert results["train_features"] > results["train_examples"] and results["eval_features"] > 6
    assert 0 <= results["eval_exact_match"] <= results["eval_f1"] <= 100
    all_results = json.loads((out / "all_results.json").read_text())
    assert all_results["eval_f1"] == results["eval_f1"] and all_results["train_skipped_misaligned"] == 1
    predictions = json.loads((out / "eval_predictions.json").read_text())
    nbest = json.loads((out / "eval_nbest_predictions.json").read_text())
    contexts = {qa["id"]: p["context"] for p in json.loads(open(dev).read())["data"][0]["paragraphs"]
                for qa in p["qas"]}
    assert set(predictions) == set(nbest) == {f"q{i}" for i in range(6)}
    for qid, answer in predictions.items():
        best = nbest[qid][0]
        assert answer == best["text"] == contexts[qid][best["start"]:best["end"]] and answer
        assert len(nbest[qid]) <= 20
    assert not (out / "eval_null_odds.json").exists()
    assert (out / "training_curves.png").is_file()
    card = ModelCard.load(out / "README.md")
    reported = {m.metric_type: m.metric_value for m in card.data.eval_results}
    assert reported["f1"] == results["eval_f1"] and card.data.pipeline_tag == "question-answering"
    assert "skipped_misaligned" not in reported


def test_pipeline_answers_equal_the_evaluated_predictions(trained):
    out, _, dev = trained
    predictions = json.loads((out / "eval_predictions.json").read_text())
    answer = pipeline("question-answering", model=str(out), trust_remote_code=True)
    for paragraph in json.loads(open(dev).read())["data"][0]["paragraphs"]:
        qa = paragraph["qas"][0]
        result = answer(question=qa["question"], context=paragraph["context"], max_seq_len=48, doc_stride=16)
        assert result["answer"] == predictions[qa["id"]]
        assert paragraph["context"][result["start"]:result["end"]] == result["answer"] and 0 < result["score"] <= 1


def test_saved_model_and_pipeline_through_remote_code(trained):
    out, _, dev = trained
    paragraph = json.loads(open(dev).read())["data"][0]["paragraphs"][2]
    script = textwrap.dedent(f"""
        import json, sys
        # Neither openbert's model nor its training package may be used: the checkpoint's own code must run.
        sys.modules["openbert"] = None
        sys.modules["training"] = None
        from transformers import pipeline
        answer = pipeline("question-answering", model={str(out)!r}, trust_remote_code=True)
        result = answer(question={paragraph["qas"][0]["question"]!r}, context={paragraph["context"]!r},
                        max_seq_len=48, doc_stride=16)
        print(json.dumps([type(answer.model).__module__, type(answer).__module__, result["answer"]]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    model_module, pipeline_module, text = json.loads(done.stdout.strip().splitlines()[-1])
    assert model_module.startswith("transformers_modules.") and pipeline_module.startswith("transformers_modules.")
    assert text == json.loads((out / "eval_predictions.json").read_text())["q2"]


def test_v2_evaluation_and_prediction_without_answers(trained, tmp_path):
    out, _, dev = trained
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"id": "x", "question": "Where did Ada travel?",
                                     "context": "In spring Ada travelled to Paris by train."}) + "\n")
    results = main(["--model_name_or_path", str(out), "--validation_files", dev, "--test_files", str(questions),
                    "--version_2_with_negative", "--do_eval", "--do_predict", "--output_dir", str(tmp_path / "v2"),
                    *WINDOWS, *FAST])
    assert (results["eval_HasAns_total"], results["eval_NoAns_total"], results["eval_total"]) == (6, 2, 8)
    assert results["eval_skipped_unanswerable"] == 0 and results["predict_examples"] == 1
    null_odds = json.loads((tmp_path / "v2" / "eval_null_odds.json").read_text())
    predictions = json.loads((tmp_path / "v2" / "eval_predictions.json").read_text())
    # v2 rule: "" exactly when the null score beats the best span (threshold 0).
    assert all((predictions[qid] == "") == (diff > 0) for qid, diff in null_odds.items())
    assert set(json.loads((tmp_path / "v2" / "predict_predictions.json").read_text())) == {"x"}


def test_missing_split_and_too_large_stride_are_clear_errors(tmp_path, tiny):
    train = squad_file(tmp_path / "train.json")
    with pytest.raises(ValueError, match="pass --validation_files"):
        main(["--model_name_or_path", tiny, "--train_files", train, "--do_train", "--do_eval", "--output_dir",
              str(tmp_path / "out"), *WINDOWS, *FAST])
    with pytest.raises(ValueError, match="doc_stride=40 must be smaller"):
        main(["--model_name_or_path", tiny, "--train_files", train, "--do_train", "--output_dir",
              str(tmp_path / "out"), "--max_seq_length", "48", "--doc_stride", "40", *FAST])


def test_every_option_has_help():
    for option in fields(QADataArguments):
        assert len(option.metadata.get("help", "")) > 20, f"--{option.name} has no help text"
