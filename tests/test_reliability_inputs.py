"""Bad input, one test per case: each runs the `openbert` command as a user types it (in this process) and asserts
the message (which file, line, field or option, and the fix), the exit status (2: bad input, 1: the run could not
go on), that training never started, and that the output directory of an earlier run is exactly as it was.

Cases of the model's own inputs (1-D/3-D input_ids, mismatched token_type_ids or labels) are in
test_modeling_errors.py; reruns, kills, locks and divergence in test_reliability_faults.py.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hub_server import LocalHub
from reliability_runs import CLASSIFY, classification_args, fingerprint, openbert, sentiment_rows, write_csv
from safetensors.torch import load_file, save_file
from tiny_checkpoint import save_tiny_checkpoint

from openbert.training.hub.push import HubTarget

QA = ("finetune", "qa")
TOKEN = "hf_tester_write_token"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, minilm_dir) -> tuple[str, str, Path]:
    """The tiny checkpoint, its training data, and the output directory of a finished run with two checkpoints."""
    root = tmp_path_factory.mktemp("inputs")
    tiny = str(save_tiny_checkpoint(root / "tiny", minilm_dir))
    data = write_csv(root / "data.csv", sentiment_rows())
    assert openbert(*CLASSIFY, *classification_args(tiny, data, root / "previous")) == 0
    return tiny, data, root / "previous"


@pytest.fixture
def previous(setup, tmp_path) -> Path:
    """A copy of the earlier run's output directory as an unfinished run leaves it (its checkpoints, without the
    finished-run record trainer_state.json), for a bad run, which would resume from it, to leave alone."""
    copy = Path(shutil.copytree(setup[2], tmp_path / "previous"))
    (copy / "trainer_state.json").unlink()
    return copy


def fails(argv: list[str], status: int, message: str, capsys, training_spy, untouched: Path | None) -> str:
    """Run `openbert ARGV`; check its status, its one-line message, that it never trained, and `untouched`."""
    before = fingerprint(untouched) if untouched is not None and untouched.exists() else None
    start = time.monotonic()
    assert openbert(*argv) == status
    error = capsys.readouterr().err
    assert message in error, error[-2000:]
    assert "Traceback" not in error and training_spy == []
    assert time.monotonic() - start < 60
    if untouched is not None:
        assert (fingerprint(untouched) if untouched.exists() else None) == before
    return error


# ---- fine-tuning: data and options ------------------------------------------------------------------------


def with_rows(rows: list[tuple[str, str]], header=("text", "label")) -> Callable[[Path], str]:
    return lambda folder: write_csv(folder / "bad.csv", rows, header)


CLASSIFICATION_CASES = {
    "max_seq_length beyond the positions": (
        None, ["--max_seq_length", "256"],
        "--max_seq_length 256 exceeds the max_position_embeddings=128 of "),
    "empty label cell": (
        with_rows([*sentiment_rows(), ("so-so", "")]), [],
        "bad.csv row 16: the label cell is empty (1 row(s) without a label)"),
    "regression target that is not a number": (
        with_rows([("fine", "3.5"), ("bad", "0.5"), ("odd", "nan")]), [],
        "bad.csv row 2: label 'nan' is not a finite number (regression task)"),
    "non-existent local model": (
        None, ["--model_name_or_path", "/no/such/model"], "--model_name_or_path /no/such/model: no such folder"),
    "missing checkpoint to resume from": (
        None, ["--resume_from_checkpoint", "/no/such/checkpoint-3"],
        "--resume_from_checkpoint /no/such/checkpoint-3: no such folder"),
    "resume without training": (
        None, ["--resume_from_checkpoint", "last", "--do_train", "false"],
        "--resume_from_checkpoint last continues training and needs --do_train"),
    "unparsable option value": (None, ["--max_steps", "many"], "--max_steps/--max-steps: invalid int value: 'many'"),
}


@pytest.mark.parametrize("case", CLASSIFICATION_CASES)
def test_classification_input(case, setup, previous, capsys, training_spy):
    tiny, data, _ = setup
    write, extra, message = CLASSIFICATION_CASES[case]
    data = write(previous.parent) if write else data
    fails([*CLASSIFY, *classification_args(tiny, data, previous), *extra], 2, message, capsys, training_spy, previous)


def test_config_value_of_the_wrong_type_names_the_file_and_field(setup, previous, tmp_path, capsys, training_spy):
    tiny = Path(shutil.copytree(setup[0], tmp_path / "typed"))
    config = json.loads((tiny / "config.json").read_text())
    (tiny / "config.json").write_text(json.dumps({**config, "hidden_size": "32"}))
    fails([*CLASSIFY, *classification_args(str(tiny), setup[1], previous)], 2,
          f"{tiny / 'config.json'} is invalid: OpenBertConfig.hidden_size='32' is a str, not an integer", capsys,
          training_spy, previous)


def test_incomplete_checkpoint_is_refused_by_name(setup, previous, capsys, training_spy):
    (previous / "checkpoint-3" / "trainer_state.json").unlink()
    fails([*CLASSIFY, *classification_args(setup[0], setup[1], previous, "--resume_from_checkpoint",
                                          str(previous / "checkpoint-3"))], 2,
          f"--resume_from_checkpoint {previous / 'checkpoint-3'}: cannot resume from it, it has no trainer_state.json",
          capsys, training_spy, previous)


def test_a_non_empty_output_dir_without_checkpoints_is_not_trained_into(setup, tmp_path, capsys, training_spy):
    output = tmp_path / "notes"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    fails([*CLASSIFY, *classification_args(setup[0], setup[1], output)], 2,
          f"--output_dir {output} is not empty (notes.txt) and holds no complete checkpoint to resume from: pass "
          "--overwrite_output_dir", capsys, training_spy, output)


def test_a_finished_run_is_not_trained_into_again(setup, tmp_path, capsys, training_spy):
    """Every command has a default --output_dir, so running one twice meets the first run's folder: a finished run
    there is neither resumed nor overwritten without being asked."""
    finished = Path(shutil.copytree(setup[2], tmp_path / "finished"))
    fails([*CLASSIFY, *classification_args(setup[0], setup[1], finished)], 2,
          f"--output_dir {finished} holds a finished run (its trainer_state.json; last checkpoint checkpoint-6): pass "
          "--overwrite_output_dir to train from scratch into it, --resume_from_checkpoint last to train it on",
          capsys, training_spy, finished)


def test_overwrite_output_dir_starts_over(setup, previous, capsys):
    assert openbert(*CLASSIFY, *classification_args(setup[0], setup[1], previous, "--max_steps", "2",
                                                     "--save_steps", "2", "--overwrite_output_dir")) == 0
    # The old checkpoint-3 and -6 are gone: a later rerun would otherwise resume from the previous run's.
    assert sorted(path.name for path in previous.glob("checkpoint-*")) == ["checkpoint-2"]
    assert json.loads((previous / "trainer_state.json").read_text())["global_step"] == 2


def text_file(name: str, text: str) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        (folder / name).write_text(text)
        return str(folder / name)
    return write


def squad(path: Path, questions: list[dict]) -> str:
    context = "In spring Ada travelled to Paris by train."
    path.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": context, "qas": questions}]}]}))
    return str(path)


ANSWER = {"text": "Paris", "answer_start": 27}
QA_CASES = {
    "duplicate question ids in the evaluation file": (
        lambda folder: squad(folder / "dev.json", [{"id": "q1", "question": "Where?", "answers": [ANSWER]},
                                                   {"id": "q1", "question": "How?", "answers": [ANSWER]}]),
        "dev.json: records 0 and 1 share the id 'q1'"),
    "answer without text": (
        lambda folder: squad(folder / "dev.json", [{"id": "q1", "question": "Where?", "answers": [
            {"answer_start": 27}]}]),
        "dev.json: an answer of question 'q1' lacks text"),
    "invalid JSON": (text_file("dev.json", '{"data": [{"title": "T",\n "paragraphs": [}'),
                     "dev.json: not valid JSON (Expecting value, line 2)"),
    "empty JSON file": (text_file("dev.json", ""), "dev.json: no usable question-answer examples"),
}


@pytest.mark.parametrize("case", QA_CASES)
def test_question_answering_input(case, setup, previous, capsys, training_spy):
    write, message = QA_CASES[case]
    good = squad(previous.parent / "train.json", [{"id": "t1", "question": "Where?", "answers": [ANSWER]}])
    fails([*QA, "--model_name_or_path", setup[0], "--train_files", good, "--validation_files",
           write(previous.parent), "--do_train", "--do_eval", "--max_seq_length", "48", "--doc_stride", "16",
           "--output_dir", str(previous), "--report_to", "none", "--use_cpu"], 2, message, capsys, training_spy,
          previous)


def test_bytes_that_are_not_utf8_are_named_by_file_and_line(tmp_path):
    """A Latin-1 CSV or QA JSON used to fail with a bare UnicodeDecodeError (no file, no line); the one reader
    replaces the undecodable bytes and warns with the file, the first line and the fix."""
    from openbert.tokenization.data_files import iter_records
    from openbert.training.qa.data import read_qa_files

    table = tmp_path / "latin1.csv"
    table.write_bytes("text,label\nfine,pos\ncaf\xe9 au lait,neg\n".encode("latin-1"))
    with pytest.warns(UnicodeWarning, match=r"latin1\.csv: 1 line\(s\) contain bytes that are not valid UTF-8 "
                                            r"\(the first is line 3\).*Re-encode the file as UTF-8"):
        assert [record["text"] for record in iter_records(table)] == ["fine", "caf\ufffd au lait"]
    questions = tmp_path / "dev.json"
    squad(questions, [{"id": "q1", "question": "Où?", "answers": [ANSWER]}])
    questions.write_bytes(questions.read_text().encode("utf-8").replace(b"\\u00f9", "\xf9".encode("latin-1")))
    with pytest.warns(UnicodeWarning, match=r"dev\.json: 1 line\(s\) .*the first is line 1"):
        assert read_qa_files(str(questions))[0]["question"] == "O\ufffd?"


# ---- pretraining: corpus and config -----------------------------------------------------------------------


def pretrain_args(folder: Path, corpus: str, *extra: str) -> list[str]:
    return ["pretrain", "--train_files", corpus, "--model_size", "tiny", "--vocab_size", "200", "--max_seq_length",
            "48", "--do_train", "--max_steps", "2", "--output_dir", str(folder / "out"), "--cache_dir",
            str(folder / "cache"), "--report_to", "none", "--use_cpu", *extra]


PRETRAINING_CASES = {
    "zero layers": (["--config_overrides", "num_hidden_layers=0"],
                    "--config_overrides 'num_hidden_layers=0': OpenBertConfig.num_hidden_layers=0 is invalid"),
    "hidden size that heads cannot share": (
        ["--config_overrides", "hidden_size=33"], "OpenBertConfig.hidden_size=33 is not divisible by "
                                                  "num_attention_heads=2"),
    "override of the wrong type": (["--config_overrides", "hidden_size=abc"], "--config_overrides 'hidden_size=abc'"),
    "vocabulary multiple below one": (["--pad_vocab_size_to_multiple_of", "0"],
                                      "--pad_vocab_size_to_multiple_of 0: pass a positive number"),
    "max_seq_length beyond the positions": (
        ["--max_seq_length", "1024"], "--max_seq_length 1024 exceeds the max_position_embeddings=512 of the tiny "
                                      "model"),
}


@pytest.mark.parametrize("case", PRETRAINING_CASES)
def test_pretraining_options(case, tmp_path, capsys, training_spy):
    extra, message = PRETRAINING_CASES[case]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("One sentence here. Another one.\n\nA second document. With two sentences.\n")
    fails(pretrain_args(tmp_path, str(corpus), *extra), 2, message, capsys, training_spy, None)
    assert not (tmp_path / "out" / "tokenizer").exists()  # failed before a tokenizer was trained


def test_a_ten_megabyte_line_fails_fast_with_bounded_memory(tmp_path, capsys, training_spy):
    corpus = tmp_path / "one_line.txt"
    corpus.write_bytes(b"word " * 2_000_000)
    start = time.monotonic()
    fails(pretrain_args(tmp_path, str(corpus)), 2, f"{corpus} line 1 is longer than 4 MiB", capsys, training_spy,
          None)
    assert time.monotonic() - start < 10
    fails(["tokenizer", "train", "--train_files", str(corpus), "--output_dir", str(tmp_path / "tok")], 2,
          "line 1 is longer than 4 MiB", capsys, training_spy, None)


def test_a_single_document_fails_before_it_is_tokenized(tmp_path, capsys, training_spy):
    corpus = tmp_path / "one_document.txt"
    corpus.write_text("A first sentence. " * 1000 + "\n")
    fails(pretrain_args(tmp_path, str(corpus)), 2, "the training corpus holds 1 document(s); NSP needs two or more",
          capsys, training_spy, None)


# ---- pushing: the token and the repo are checked before any compute ----------------------------------------


@pytest.fixture(scope="module")
def hub():
    with LocalHub(tokens={TOKEN: "tester"}) as server:
        yield server


@pytest.mark.parametrize(("token", "repo_id", "message"), [
    ("hf_wrong", "tester/run", "rejected the token (401 Unauthorized)"),
    (TOKEN, "other/run", "tester may not create or write to other/run"),
])
def test_push_target_is_checked_before_training(setup, previous, hub, monkeypatch, capsys, training_spy, token,
                                                repo_id, message):
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.url)
    fails([*CLASSIFY, *classification_args(setup[0], setup[1], previous, "--push_to_hub", "--hub_model_id", repo_id,
                                          "--hub_token", token)], 1, message, capsys, training_spy, previous)
    assert hub.repos == {}
    hub.assert_all_served()


def test_unreachable_hub_is_named_before_training(setup, previous, monkeypatch, capsys, training_spy):
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")
    fails([*CLASSIFY, *classification_args(setup[0], setup[1], previous, "--push_to_hub", "--hub_model_id",
                                          "tester/run", "--hub_token", TOKEN)], 1,
          "cannot reach the Hub at http://127.0.0.1:9", capsys, training_spy, previous)


def test_a_bare_repo_name_is_resolved_once_to_the_users(hub, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.url)
    assert HubTarget("justname", token=TOKEN).checked() == HubTarget("tester/justname", token=TOKEN)
    assert TOKEN not in repr(HubTarget("tester/justname", token=TOKEN))


# ---- other commands ---------------------------------------------------------------------------------------


def test_convert_refuses_a_checkpoint_without_its_encoder_weights(setup, tmp_path, capsys, training_spy):
    source = Path(shutil.copytree(setup[0], tmp_path / "no_encoder"))
    weights = load_file(source / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("encoder.")}, source / "model.safetensors",
              metadata={"format": "pt"})
    fails(["convert", "--to", "transformers", "--model_name_or_path", str(source), "--output_dir",
           str(tmp_path / "converted")], 2,
          f"{source} does not hold the weights of the OpenBertModel its config.json names: ", capsys, training_spy,
          None)
    assert not (tmp_path / "converted").exists()


def test_a_command_group_without_its_subcommand_is_an_error(capsys, training_spy):
    fails(["finetune"], 2, "openbert finetune: name the subcommand", capsys, training_spy, None)
