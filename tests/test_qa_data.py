"""Reading SQuAD-format data: official and flat layouts, and what happens to bad records."""

import json
import logging

import pytest

from openbert.training.qa.data import read_qa_files, validate_qa_examples

CONTEXT = "Paris is the capital of France. Lyon is smaller."


def _official(path, qas, version="v2.0"):
    path.write_text(json.dumps({"version": version, "data": [
        {"title": "Cities", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return path


def test_official_layout_with_unanswerable_questions(tmp_path):
    path = _official(tmp_path / "squad.json", [
        {"id": "a", "question": "Capital?", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "b", "question": "Capital of Mars?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Lyon", "answer_start": 32}]},
    ])
    records = read_qa_files(path)
    assert [r["id"] for r in records] == ["a", "b"] and records[0]["title"] == "Cities"
    # plausible_answers are not gold answers.
    assert records[1]["answers"] == {"text": [], "answer_start": []}
    v2 = validate_qa_examples(records, str(path), version_2_with_negative=True)
    assert len(v2.dataset) == 2 and v2.skipped_unanswerable == 0
    v1 = validate_qa_examples(records, str(path), version_2_with_negative=False)
    assert v1.dataset["id"] == ["a"] and v1.skipped_unanswerable == 1


def test_flat_json_and_jsonl(tmp_path):
    record = {"id": 7, "question": "Smaller?", "context": CONTEXT,
              "answers": {"text": ["Lyon"], "answer_start": [32]}}
    (tmp_path / "flat.json").write_text(json.dumps({"version": "x", "data": [record]}))
    (tmp_path / "flat.jsonl").write_text(json.dumps(record) + "\n\n")
    for name in ("flat.json", "flat.jsonl"):
        examples = validate_qa_examples(read_qa_files(tmp_path / name), name, False).dataset
        # Ids become strings, a missing title becomes "".
        assert examples[0]["id"] == "7" and examples[0]["title"] == "" and examples[0]["answers"]["text"] == ["Lyon"]


def test_misaligned_answer_start_is_counted_and_skipped_with_a_warning(tmp_path, caplog):
    path = _official(tmp_path / "bad.json", [
        {"id": "ok", "question": "Capital?", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "off_by_one", "question": "Capital?", "answers": [{"text": "Paris", "answer_start": 1}]},
        {"id": "second_bad", "question": "Country?", "answers": [{"text": "France", "answer_start": 24},
                                                                 {"text": "France", "answer_start": 99}]},
    ])
    with caplog.at_level(logging.WARNING, logger="openbert.training.qa.data"):
        examples = validate_qa_examples(read_qa_files(path), str(path), version_2_with_negative=False)
    assert examples.dataset["id"] == ["ok"] and examples.skipped_misaligned == 2
    assert "skipped 2 question(s) whose answer_start does not match" in caplog.text and str(path) in caplog.text


def test_missing_field_empty_split_and_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"lacks the field\(s\) context"):
        validate_qa_examples([{"id": "x", "question": "q", "answers": {"text": [], "answer_start": []}}],
                             "train.jsonl", True)
    with pytest.raises(ValueError, match="empty.json: no usable question-answer examples"):
        validate_qa_examples(read_qa_files(_official(tmp_path / "empty.json", [])), str(tmp_path / "empty.json"),
                             True)
    with pytest.raises(FileNotFoundError, match="no data file found for .*nope.json"):
        read_qa_files(str(tmp_path / "nope.json"))
    (tmp_path / "questions.txt").write_text("Capital?\n")
    with pytest.raises(ValueError, match="questions.txt is read as plain text, not as records"):
        read_qa_files(str(tmp_path / "questions.txt"))


def test_shared_squad_files_are_clean(shared_data):
    squad = shared_data / "squad"
    xquad = validate_qa_examples(read_qa_files(squad / "xquad.en.json"), "xquad", False)
    assert len(xquad.dataset) == 1190 and xquad.skipped_misaligned == 0
    small = validate_qa_examples(read_qa_files(squad / "squad-v2.0-dev-small.json"), "small", True)
    assert len(small.dataset) == 626 and sum(not a["text"] for a in small.dataset["answers"]) == 333
