"""Bad input gives a clear error (or, for undecodable bytes, a counted warning), never a silent empty vocabulary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from tokenizers import Tokenizer
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from openbert.tokenization import (
    build_bert_tokenizer,
    iter_text_batches,
    read_text_files,
    save_tokenizer,
    tokenizer_from_vocab,
    train_tokenizer,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SENTENCES = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n" * 20


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_missing_files_are_all_named_before_reading(tmp_path: Path) -> None:
    present = write(tmp_path / "present.txt", SENTENCES)
    with pytest.raises(FileNotFoundError, match=r"no data file found for .*missing1\.txt, .*missing2\.txt"):
        train_tokenizer([present, tmp_path / "missing1.txt", tmp_path / "missing2.txt"], show_progress=False)


def test_folders_and_globs_are_read_empty_ones_and_empty_lists_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="no data file found for .*corpus"):
        list(read_text_files(folder))
    write(folder / "b.txt", "second\n")
    write(folder / "a.txt", "first\n")
    write(folder / ".hidden.txt", "not read\n")
    assert list(read_text_files(folder)) == list(read_text_files(str(folder / "*.txt"))) == ["first", "second"]
    with pytest.raises(ValueError, match="no data files were given"):
        list(read_text_files([]))


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.txt", ""), ("blank.txt", "\n  \n\t\n"), ("empty.jsonl", '{"text": ""}\n{"text": null}\n')],
)
def test_empty_corpus_is_an_error(tmp_path: Path, name: str, content: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match="the corpus is empty"):
        train_tokenizer(path, show_progress=False)


def test_empty_dataset_is_an_error() -> None:
    with pytest.raises(ValueError, match="the corpus is empty: the dataset column 'text'"):
        train_tokenizer(Dataset.from_dict({"text": ["", "   "]}), show_progress=False)


def test_text_that_normalizes_to_nothing_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "control.txt", "\x00\x01\u200b\n\ufeff\x7f\ufffd\n")
    with pytest.raises(ValueError, match="no text left after BERT normalization"):
        train_tokenizer(path, show_progress=False)


def test_undecodable_bytes_are_counted_and_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.txt", SENTENCES.encode() + b"caf\xe9 au lait\n\xff\xfe broken\nclean line\n")
    with pytest.warns(UnicodeWarning, match=r"latin1\.txt: 2 line\(s\) contain bytes that are not valid UTF-8"):
        texts = list(read_text_files(path))
    assert texts[-3:] == ["caf\ufffd au lait", "\ufffd\ufffd broken", "clean line"]
    with pytest.warns(UnicodeWarning, match="2 line") as record:
        tokenizer = train_tokenizer(path, vocab_size=60, min_frequency=1, show_progress=False)
    assert [warning.category for warning in record] == [UnicodeWarning]  # once, though the corpus is read twice
    assert not any("\ufffd" in token for token in tokenizer.get_vocab())
    assert "[UNK]" not in tokenizer.tokenize("caf au lait broken clean line")


def test_vocab_size_below_the_alphabet_is_an_error_naming_the_minimum(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.txt", SENTENCES)
    with pytest.raises(ValueError, match="vocab_size=20 is too small") as error:
        train_tokenizer(path, vocab_size=20, show_progress=False)
    minimum = int(re.search(r"use vocab_size >= (\d+)", str(error.value)).group(1))
    # The minimum is exact: 5 special tokens + the alphabet + its "##" continuations fit, one less does not.
    with pytest.raises(ValueError, match="too small"):
        train_tokenizer(path, vocab_size=minimum - 1, show_progress=False)
    tokenizer = train_tokenizer(path, vocab_size=minimum, show_progress=False)
    assert len(tokenizer) == minimum
    assert all(len(token.removeprefix("##")) == 1 for token in tokenizer.get_vocab() if token not in SPECIALS)


def test_corpus_too_small_for_vocab_size_warns_and_reports_the_real_size(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.txt", SENTENCES)
    with pytest.warns(UserWarning, match=r"supports only (\d+) WordPiece tokens.*fewer than vocab_size=30522"):
        tokenizer = train_tokenizer(path, vocab_size=30522, show_progress=False)
    assert 5 < len(tokenizer) < 100 and "cat" in tokenizer.get_vocab()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"vocab_size": 5}, "vocab_size must be an int larger than the 5 special tokens"),
        ({"vocab_size": 1000.0}, "vocab_size must be an int"),
        ({"min_frequency": -1}, "min_frequency must be a non-negative int"),
        ({"model_max_length": 0}, "model_max_length must be a positive int"),
    ],
)
def test_bad_training_arguments(tmp_path: Path, arguments: dict, message: str) -> None:
    path = write(tmp_path / "corpus.txt", SENTENCES)
    with pytest.raises(ValueError, match=message):
        train_tokenizer(path, show_progress=False, **arguments)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"rows\.jsonl:2: not valid JSON"),
        ('{"body": "x"}', r"rows\.jsonl row 2: no 'text' field \(found \['body'\]\)"),
        ('["a list"]', r"rows\.jsonl:2: a JSON line must be an object with named fields, got list"),
        ('{"text": 3}', r"rows\.jsonl row 2: 'text' must be a string, got int"),
    ],
)
def test_malformed_json_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "rows.jsonl", '{"text": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        list(read_text_files(path))


def test_bad_datasets(tmp_path: Path) -> None:
    dataset = Dataset.from_dict({"sentence": ["a"], "label": [1]})
    with pytest.raises(ValueError, match=r"no 'text' column \(columns: \['sentence', 'label'\]\)"):
        list(iter_text_batches(dataset))
    with pytest.raises(ValueError, match="must hold strings, got int"):
        list(iter_text_batches(dataset, text_column="label"))
    with pytest.raises(TypeError, match=r"splits \['train'\]; pass one split"):
        list(iter_text_batches(DatasetDict({"train": dataset})))
    with pytest.raises(TypeError, match="got dict"):
        list(iter_text_batches({"text": ["a"]}))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(iter_text_batches(dataset, batch_size=0))


def test_bad_vocab_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.txt not found"):
        tokenizer_from_vocab(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \['\[MASK\]'\]"):
        tokenizer_from_vocab(write(tmp_path / "no_mask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n"))
    with pytest.raises(ValueError, match="'hello' appears on line 6 and again on line 8"):
        tokenizer_from_vocab(write(tmp_path / "dup.txt", "\n".join([*SPECIALS, "hello", "world", "hello"]) + "\n"))
    with pytest.raises(ValueError, match="lacks the special token"):
        tokenizer_from_vocab(write(tmp_path / "empty.txt", ""))


def test_bad_vocabularies_and_tokenizers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must use each id 0\.\.5 exactly once"):
        build_bert_tokenizer({**dict(zip(SPECIALS, range(5), strict=True)), "gap": 7})
    with pytest.raises(ValueError, match="line breaks"):
        build_bert_tokenizer({**dict(zip(SPECIALS, range(5), strict=True)), "a\nb": 5})
    bpe = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(BPE()))
    with pytest.raises(TypeError, match="needs a WordPiece"):
        save_tokenizer(bpe, tmp_path)
