"""The one reader of data files: text, gzip, JSON (lines), CSV/TSV, Parquet, Arrow, folders and 🤗 datasets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from datasets import Dataset, IterableDataset

from openbert.tokenization import iter_text_batches, read_text_files
from openbert.tokenization.data_files import iter_records, load_documents

TEXTS = ["First line.", "  indented second line", "Ünïcödé 中文 🤗", "last\twith\ttabs"]


def write_formats(directory: Path) -> dict[str, Path]:
    """The same texts as plain text (with a BOM, CRLF endings and blank lines), gzip and JSON lines."""
    plain = "\ufeff" + "\r\n".join([TEXTS[0], "", TEXTS[1], "   ", TEXTS[2], TEXTS[3]]) + "\r\n"
    jsonl = "".join(json.dumps({"id": index, "text": text}) + "\n" for index, text in enumerate(TEXTS))
    jsonl += json.dumps({"id": 9, "text": None}) + "\n\n"  # null text and blank line are skipped
    paths = {
        "txt": directory / "corpus.txt",
        "txt.gz": directory / "corpus.txt.gz",
        "jsonl": directory / "corpus.jsonl",
        "jsonl.gz": directory / "corpus.jsonl.gz",
    }
    paths["txt"].write_bytes(plain.encode("utf-8"))
    paths["txt.gz"].write_bytes(gzip.compress(plain.encode("utf-8")))
    paths["jsonl"].write_text(jsonl, encoding="utf-8")
    paths["jsonl.gz"].write_bytes(gzip.compress(jsonl.encode("utf-8")))
    return paths


@pytest.mark.parametrize("kind", ["txt", "txt.gz", "jsonl", "jsonl.gz"])
def test_every_format_yields_the_same_texts(tmp_path: Path, kind: str) -> None:
    path = write_formats(tmp_path)[kind]
    assert list(read_text_files(path)) == TEXTS
    assert list(read_text_files(str(path))) == TEXTS


def test_several_files_are_read_in_order_with_a_byte_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_formats(tmp_path)
    texts = list(read_text_files([paths["jsonl.gz"], paths["txt"]], show_progress=True, progress_desc="Reading"))
    assert texts == TEXTS + TEXTS
    total = paths["jsonl.gz"].stat().st_size + paths["txt"].stat().st_size
    assert f"Reading: 100%|██████████| {total}/{total}" in capsys.readouterr().err


def test_json_lines_field_name_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text('{"body": "alpha"}\n{"body": "beta"}\n', encoding="utf-8")
    assert list(read_text_files(path, text_column="body")) == ["alpha", "beta"]


def test_batches_have_the_requested_size(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"line {index}\n" for index in range(2500)), encoding="utf-8")
    batches = list(iter_text_batches(path, batch_size=1000))
    assert [len(batch) for batch in batches] == [1000, 1000, 500]
    assert batches[2][-1] == "line 2499"


def test_dataset_column_is_read_in_batches_skipping_blank_and_missing_texts() -> None:
    dataset = Dataset.from_dict({"label": [0, 1, 2, 3, 4], "sentence": ["a b", None, "", "c", " d "]})
    assert list(iter_text_batches(dataset, batch_size=2, text_column="sentence")) == [["a b", "c"], [" d "]]


def test_iterable_dataset_is_streamed_not_materialised() -> None:
    produced: list[int] = []

    def rows():
        for index in range(100_000):
            produced.append(index)
            yield {"text": f"row {index}"}

    streamed = IterableDataset.from_generator(rows)
    batches = iter_text_batches(streamed, batch_size=100)
    assert next(batches) == [f"row {index}" for index in range(100)]
    assert len(produced) < 10_000  # only what the first batches needed was generated


def write_record_formats(directory: Path, rows: list[dict]) -> list[Path]:
    """The same records as JSON lines (plain and gzipped), a JSON list (one line and pretty-printed),
    `{"data": [...]}`, CSV, TSV, Parquet and Arrow (both IPC layouts)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = "".join(json.dumps(row) + "\n" for row in rows)
    texts = {"rows.jsonl": lines, "rows.json": json.dumps(rows), "pretty.json": json.dumps(rows, indent=2),
             "wrapped.json": json.dumps({"version": "1", "data": rows}),
             "rows.csv": "text,label\n" + "".join(f'"{r["text"]}",{r["label"]}\n' for r in rows),
             "rows.tsv": "text\tlabel\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in rows)}
    for name, text in texts.items():
        (directory / name).write_text(text, encoding="utf-8")
    (directory / "rows.ndjson.gz").write_bytes(gzip.compress(lines.encode("utf-8")))
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, directory / "rows.parquet")
    for name, new in (("stream.arrow", pa.ipc.new_stream), ("file.arrow", pa.ipc.new_file)):
        with new(directory / name, table.schema) as writer:
            writer.write_table(table)
    return sorted(directory.iterdir())


def test_one_reader_for_every_record_format(tmp_path: Path) -> None:
    rows = [{"text": "first, with a comma", "label": "a"}, {"text": "second row", "label": "b"}]
    paths = write_record_formats(tmp_path, rows)
    assert len(paths) == 10
    for path in paths:
        assert list(iter_records(path)) == rows, path.name
    # Every file as raw text (tokenizer training), and as pretraining documents, from a folder.
    assert list(read_text_files(tmp_path)) == [row["text"] for row in rows] * len(paths)
    documents = load_documents(str(tmp_path), cache_dir=str(tmp_path.parent / "cache"))
    assert documents["text"] == [row["text"] for row in rows] * len(paths)
