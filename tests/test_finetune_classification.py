"""`python -m training.finetune_classification` end to end on tiny models and tiny data."""

import csv
import json
import subprocess
import sys
import textwrap
from dataclasses import fields

import pytest
import yaml
from huggingface_hub import ModelCard
from transformers import AutoConfig, pipeline

from openbert.training.classification import ClassificationDataArguments, main
from openbert.training.finetuning import ModelArguments

POSITIVE = ["a great film", "great acting and a great plot", "truly great", "great fun", "simply great work",
            "the ending was great", "great music", "great from start to finish"]
NEGATIVE = ["an awful film", "awful acting and an awful plot", "truly awful", "awful noise", "simply awful work",
            "the ending was awful", "awful music", "awful from start to finish"]
# Short runs: a high, constant learning rate makes the tiny model separate "great" from "awful" in ~30 steps.
FAST = ["--learning_rate", "3e-3", "--lr_scheduler_type", "constant", "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "16",
        "--report_to", "none", "--seed", "0", "--use_cpu", "--save_strategy", "no", "--logging_steps", "2"]


def write_csv(path, rows, header=("review", "sentiment")):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def sentiment_rows():
    return [(text, "pos") for text in POSITIVE] + [(text, "neg") for text in NEGATIVE]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny):
    """One CSV run with string labels, train + eval + predict, shared by the output and pipeline tests."""
    root = tmp_path_factory.mktemp("csv_run")
    data = write_csv(root / "data.csv", sentiment_rows() * 2)
    test = write_csv(root / "test.csv", [("great", ""), ("awful", "")], header=("review", "unused"))
    out = root / "out"
    results = main(["--model_name_or_path", tiny, "--train_files", data, "--validation_files", data,
                    "--test_files", test, "--text_column", "review", "--label_column", "sentiment",
                    "--do_train", "--do_eval", "--do_predict", "--num_train_epochs", "8", "--output_dir", str(out),
                    *FAST])
    return out, results


def test_string_labels_train_eval_predict_and_outputs(trained):
    out, results = trained
    # Alphabetical class order; names stored in the config for pipelines.
    config = AutoConfig.from_pretrained(out)
    assert config.id2label == {0: "neg", 1: "pos"} and config.label2id == {"neg": 0, "pos": 1}
    assert config.model_type == "openbert"
    assert results["eval_accuracy"] == 1.0 and results["eval_f1"] == 1.0
    assert results["eval_matthews_correlation"] == 1.0
    all_results = json.loads((out / "all_results.json").read_text())
    assert all_results["eval_accuracy"] == 1.0 and all_results["train_samples"] == 32
    assert json.loads((out / "eval_results.json").read_text())["eval_samples"] == 32
    assert (out / "training_curves.png").stat().st_size > 1000
    assert (out / "predict_results.tsv").read_text().splitlines() == ["index\tprediction", "0\tpos", "1\tneg"]
    assert (out / "tokenizer.json").is_file()
    # The model card reports this run: its model-index holds the evaluation just measured.
    card = ModelCard.load(out / "README.md")
    reported = {m.metric_type: m.metric_value for m in card.data.eval_results}
    assert reported["accuracy"] == results["eval_accuracy"] and card.data.pipeline_tag == "text-classification"


def test_saved_model_in_text_classification_pipeline(trained):
    out, _ = trained
    classify = pipeline("text-classification", model=str(out))
    assert [r["label"] for r in classify(["simply great", "simply awful"])] == ["pos", "neg"]


def test_saved_model_through_remote_code(trained):
    out, _ = trained
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["openbert"] = None  # openbert is not importable: the checkpoint's own code must run
        from transformers import pipeline
        classify = pipeline("text-classification", model={str(out)!r}, trust_remote_code=True)
        print(json.dumps([type(classify.model).__module__, classify("great music")[0]["label"]]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    module, label = json.loads(done.stdout.strip().splitlines()[-1])
    assert module.startswith("transformers_modules.") and label == "pos"


def test_fine_tuned_checkpoint_keeps_its_class_ids(trained, tmp_path):
    out, _ = trained
    # Only "pos" rows: inferring classes from this file alone would find one class; the checkpoint knows two.
    dev = write_csv(tmp_path / "dev.csv", [("simply great", "pos"), ("great music", "pos")])
    results = main(["--model_name_or_path", str(out), "--validation_files", dev, "--text_column", "review",
                    "--label_column", "sentiment", "--do_eval", "--output_dir", str(tmp_path / "eval"), *FAST])
    assert results["eval_accuracy"] == 1.0 and results["eval_samples"] == 2
    other = write_csv(tmp_path / "other.csv", [("fine", "ok"), ("bad", "ko")])
    with pytest.raises(ValueError, match=r"fine-tuned for labels \['neg', 'pos'\] but the data has \['ko', 'ok'\]"):
        main(["--model_name_or_path", str(out), "--train_files", other, "--text_column", "review",
              "--label_column", "sentiment", "--do_train", "--output_dir", str(tmp_path / "again"), *FAST])


def glue_cola_dir(root):
    """A CoLA folder in GLUE's layout: headerless train/dev, test with an `index sentence` header."""
    root.mkdir()
    rows = [("src", "1", "", text) for text in POSITIVE] + [("src", "0", "*", text) for text in NEGATIVE]
    for name in ("train.tsv", "dev.tsv"):
        (root / name).write_text("".join("\t".join(r) + "\n" for r in rows * 2))
    (root / "test.tsv").write_text("index\tsentence\n0\tgreat plot\n1\tawful plot\n")
    return str(root)


def test_glue_preset_reads_headerless_cola_and_scores_mcc(tmp_path, tiny):
    out = tmp_path / "out"
    results = main(["--model_name_or_path", tiny, "--task_name", "cola", "--data_dir",
                    glue_cola_dir(tmp_path / "CoLA"), "--do_train", "--do_eval", "--do_predict",
                    "--num_train_epochs", "8", "--output_dir", str(out), *FAST])
    assert results["eval_matthews_correlation"] == 1.0 and "eval_accuracy" not in results
    assert AutoConfig.from_pretrained(out).id2label == {0: "unacceptable", 1: "acceptable"}
    assert (out / "predict_results.tsv").read_text().splitlines()[1:] == ["0\tacceptable", "1\tunacceptable"]


def test_glue_mrpc_pairs_from_shared_data(tmp_path, tiny, shared_data):
    results = main(["--model_name_or_path", tiny, "--task_name", "mrpc", "--data_dir",
                    str(shared_data / "glue" / "MRPC"), "--max_train_samples", "16", "--max_eval_samples", "24",
                    "--max_steps", "2", "--do_train", "--do_eval", "--output_dir", str(tmp_path), *FAST])
    # MRPC's official metrics (accuracy and binary F1) and their mean, on 24 real dev pairs.
    assert {"eval_accuracy", "eval_f1", "eval_combined_score"} <= set(results) and results["eval_samples"] == 24
    assert results["eval_combined_score"] == pytest.approx((results["eval_accuracy"] + results["eval_f1"]) / 2)


def test_regression_from_jsonl_config_file(tmp_path, tiny):
    records = [{"text": t, "score": 4.5 - i * 0.25} for i, t in enumerate(POSITIVE)]
    records += [{"text": t, "score": 0.5 + i * 0.25} for i, t in enumerate(NEGATIVE)]
    data = tmp_path / "scores.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "model_name_or_path": tiny, "train_files": [str(data)], "validation_files": [str(data)],
        "test_files": [str(data)],
        "label_column": "score", "do_train": True, "do_eval": True, "do_predict": True, "num_train_epochs": 20,
        "output_dir": str(tmp_path / "out"), "learning_rate": 3e-3, "lr_scheduler_type": "constant",
        "report_to": "none", "use_cpu": True,
        "save_strategy": "no", "per_device_train_batch_size": 8,
    }))
    results = main([str(config)])
    assert AutoConfig.from_pretrained(tmp_path / "out").problem_type == "regression"
    # Floats that are not all integers mean regression: Pearson/Spearman, not accuracy. Over seeds 1, 2, 3 and
    # 42 this run scored Pearson 0.86-0.91 and Spearman 0.87-0.91: the bars leave room for the seed.
    assert results["eval_pearsonr"] > 0.8 and results["eval_spearmanr"] > 0.8 and "eval_accuracy" not in results
    # The test file carries its scores, so predictions are scored too.
    assert results["predict_pearsonr"] == pytest.approx(results["eval_pearsonr"])
    predictions = (tmp_path / "out" / "predict_results.tsv").read_text().splitlines()
    assert len(predictions) == 17 and float(predictions[1].split("\t")[1]) > float(predictions[9].split("\t")[1])


def test_best_checkpoint_and_early_stopping(tmp_path, tiny):
    data = write_csv(tmp_path / "data.csv", sentiment_rows() * 2, header=("sentence", "label"))
    out = tmp_path / "out"
    fast = [a for a in FAST if a not in ("--save_strategy", "no")]
    fast[fast.index("--learning_rate") + 1] = "1e-2"  # perfect accuracy within ~16 steps
    results = main(["--model_name_or_path", tiny, "--train_files", data, "--validation_files", data, "--do_train",
                    "--do_eval", "--max_steps", "80", "--eval_strategy", "steps", "--eval_steps", "4",
                    "--save_steps", "4", "--load_best_model_at_end", "--metric_for_best_model", "accuracy",
                    "--early_stopping_patience", "4", "--output_dir", str(out), *fast])
    state = json.loads((out / "trainer_state.json").read_text())
    evaluations = {entry["step"]: entry for entry in state["log_history"] if "eval_accuracy" in entry}
    best_step = int(state["best_model_checkpoint"].rsplit("-", 1)[1])
    # The first step at 100% accuracy is the best checkpoint; four evaluations without improvement
    # later training stops, long before max_steps.
    assert state["best_metric"] == 1.0 and evaluations[best_step]["eval_accuracy"] == 1.0
    assert all(e["eval_accuracy"] < 1.0 for step, e in evaluations.items() if step < best_step)
    assert state["global_step"] == best_step + 4 * 4 < 80
    # The final evaluation scores the restored best checkpoint, not the last weights (whose loss is lower).
    assert results["eval_loss"] == pytest.approx(evaluations[best_step]["eval_loss"], rel=1e-5)
    assert evaluations[state["global_step"]]["eval_loss"] < evaluations[best_step]["eval_loss"]


def run_expecting_error(tmp_path, tiny, *args):
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        main(["--model_name_or_path", tiny, "--output_dir", str(tmp_path / "out"), *args, *FAST])
    return str(error.value)


def test_unknown_label_at_eval_time_names_file_row_and_label(tmp_path, tiny):
    train = write_csv(tmp_path / "train.csv", sentiment_rows(), header=("text", "label"))
    dev = write_csv(tmp_path / "dev.csv", [("so-so", "pos"), ("meh", "neutral")], header=("text", "label"))
    message = run_expecting_error(tmp_path, tiny, "--train_files", train, "--validation_files", dev, "--do_train",
                                  "--do_eval")
    assert "dev.csv row 1: label 'neutral' is not one of the training labels ['neg', 'pos']" in message


def test_empty_split_missing_column_and_missing_file_are_clear_errors(tmp_path, tiny):
    train = write_csv(tmp_path / "train.csv", sentiment_rows(), header=("text", "label"))
    empty = write_csv(tmp_path / "empty.csv", [], header=("text", "label"))
    message = run_expecting_error(tmp_path, tiny, "--train_files", train, "--validation_files", empty, "--do_train",
                                  "--do_eval")
    assert "empty.csv has no data rows (empty split)" in message
    message = run_expecting_error(tmp_path, tiny, "--train_files", train, "--text_column", "review", "--do_train")
    assert "train.csv: column 'review' (--text_column) not found; columns: text, label" in message
    message = run_expecting_error(tmp_path, tiny, "--train_files", train, "--label_column", "stars", "--do_train")
    assert "train.csv: label column 'stars' (--label_column) not found" in message
    message = run_expecting_error(tmp_path, tiny, "--train_files", train, "--do_train", "--do_eval")
    assert "pass --validation_files" in message
    message = run_expecting_error(tmp_path, tiny, "--train_files", str(tmp_path / "nope.tsv"), "--do_train")
    assert "no data file found for" in message and "nope.tsv" in message
    message = run_expecting_error(tmp_path, tiny, "--train_files", train, "--do_train",
                                  "--early_stopping_patience", "1")
    assert "--early_stopping_patience needs --load_best_model_at_end" in message


def test_every_option_has_help():
    for dataclass_type in (ModelArguments, ClassificationDataArguments):
        for option in fields(dataclass_type):
            assert len(option.metadata.get("help", "")) > 20, f"--{option.name} has no help text"


def test_defaults_bound_checkpoints_and_stay_out_of_the_working_directory(tmp_path, tiny, monkeypatch, recwarn):
    """Without --output_dir or save options: outputs/finetune-classification, a checkpoint per epoch, at most two
    kept; no pin_memory warning on a CPU."""
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "data.csv", sentiment_rows())
    main(["--model_name_or_path", tiny, "--train_files", data, "--validation_files", data, "--text_column", "review",
          "--label_column", "sentiment", "--do_train", "--do_eval", "--num_train_epochs", "3",
          "--per_device_train_batch_size", "8", "--report_to", "none", "--use_cpu"],
         command="finetune classification")
    out = tmp_path / "outputs" / "finetune-classification"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]  # 2 steps/epoch
    assert (out / "model.safetensors").is_file() and not (tmp_path / "trainer_output").exists()
    assert not [w for w in recwarn if "pin_memory" in str(w.message)]


def test_loading_a_pretraining_checkpoint_is_quiet_and_missing_encoder_weights_are_named(tmp_path, minilm_dir,
                                                                                        caplog):
    """A new task head and unused pretraining heads are what fine-tuning expects: no loading report. Encoder
    weights the checkpoint lacks are warned about by name."""
    from safetensors.torch import load_file, save_file

    from openbert import OpenBertConfig, OpenBertForPreTraining
    from openbert.training.classification.job import ClassificationJob

    OpenBertForPreTraining(OpenBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                          intermediate_size=64)).save_pretrained(tmp_path)
    job = ClassificationJob(ModelArguments(str(tmp_path)), ClassificationDataArguments())
    with caplog.at_level("INFO"):
        job.load_pretrained(num_labels=2)
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text
    assert "new OpenBertForSequenceClassification head: classifier.bias, classifier.weight" in caplog.text
    weights = load_file(tmp_path / "model.safetensors")
    del weights["bert.pooler.dense.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    caplog.clear()
    with caplog.at_level("INFO"):
        job.load_pretrained(num_labels=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 encoder parameters" in warnings[0] and "bert.pooler.dense.weight" in warnings[0]
