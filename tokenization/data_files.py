"""The one reader of data, shared by tokenizer training, pretraining and fine-tuning.

Files are named by paths, folders (every non-hidden file inside, recursively) or glob patterns. Their format
comes from the suffix before an optional .gz, .bz2 or .xz:

* text (any other suffix): lines; for pretraining, documents separated by blank lines or, with a
  `document_start` regular expression, starting at every line it matches;
* JSON lines (.jsonl, .ndjson) and JSON (.json: JSON lines, a list of records, or `{"data": [...]}`);
* CSV (.csv, standard quoting) and TSV (.tsv, tab-separated without quoting, as GLUE's own readers do), with a
  header row unless `column_names` are given;
* Parquet (.parquet) and Arrow (.arrow), through pyarrow (which `datasets` brings).

`load_named_dataset` reads a `datasets` dataset instead: a folder written by `save_to_disk`, or a Hub name (which
needs the network). The readers stream a line, a record or a document at a time, so a multi-GB corpus never sits
in memory; `load_documents` (pretraining) and `load_records` (fine-tuning) turn them into `datasets.Dataset`s.

Bytes that are not UTF-8 never stop a read: they become U+FFFD, and a `UnicodeWarning` says how many lines of
which file were affected. A UTF-8 byte-order mark at the start of a file is dropped.
"""

from __future__ import annotations

import bz2
import csv
import glob
import gzip
import itertools
import json
import lzma
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeAlias

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from datasets import Dataset, IterableDataset

PathLike: TypeAlias = str | os.PathLike
Record: TypeAlias = dict[str, Any]
# What tokenizer training reads; a string so that `datasets` is imported only when a dataset is passed.
Corpus: TypeAlias = "PathLike | Sequence[PathLike] | Dataset | IterableDataset"

_DECOMPRESSORS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw), ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile,
}
_FORMATS = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv",
            ".parquet": "parquet", ".arrow": "arrow"}
# Progress is pushed to a bar every this many lines: per-line updates would cost more than the reading.
_PROGRESS_EVERY_LINES = 4096
# Bump when the documents read from the same files change, so that cached datasets are rebuilt.
_DOCUMENT_READER_VERSION = "3"
# The longest line a plain-text corpus may have. BERT reads 512 tokens (about 2 KB) at a time, and a corpus holds
# a sentence, a paragraph or at most a document per line; a longer line is a file without line breaks (one 10 MB
# line once took 3 minutes and 1 GB before failing). Reading stops there, so memory stays bounded.
MAX_TEXT_LINE_BYTES = 4 << 20


def expand_data_files(entries: PathLike | Iterable[PathLike]) -> list[Path]:
    """The files that `entries` (files, folders, glob patterns) name, each entry's sorted, in the order given.

    Raises `ValueError` for no entry at all and `FileNotFoundError` naming every entry that matches no file, before
    anything is read (so a typo in the tenth path does not surface an hour into a run).
    """
    entries = [entries] if isinstance(entries, str | os.PathLike) else list(entries)
    if not entries:
        raise ValueError("no data files were given: pass files, folders or glob patterns")
    found = {str(entry): _matching_files(str(entry)) for entry in entries}
    missing = [entry for entry, files in found.items() if not files]
    if missing:
        raise FileNotFoundError(f"no data file found for {', '.join(missing)}: pass existing files, folders or "
                                "glob patterns")
    return [file for files in found.values() for file in files]


def _matching_files(entry: str) -> list[Path]:
    if os.path.isdir(entry):
        return sorted(path for path in Path(entry).rglob("*")
                      if path.is_file() and not any(part.startswith(".") for part in path.relative_to(entry).parts))
    if glob.has_magic(entry):
        return sorted(Path(path) for path in glob.glob(entry, recursive=True) if os.path.isfile(path))
    return [Path(entry)] if os.path.isfile(entry) else []


def data_format(path: PathLike) -> str:
    """"text", "json", "csv", "tsv", "parquet" or "arrow", from the suffix before any compression suffix."""
    name = Path(path).name.lower()
    for suffix in _DECOMPRESSORS:
        name = name.removesuffix(suffix)
    return _FORMATS.get(os.path.splitext(name)[1], "text")


def iter_lines(path: PathLike, progress: tqdm | None = None, keep_ends: bool = False,
               max_line_bytes: int | None = None) -> Iterator[str]:
    """Every line of the text file `path` (decompressed by its suffix), line break removed unless `keep_ends`.

    `progress`, when given, advances by the bytes read (compressed bytes for a compressed file). A line longer
    than `max_line_bytes` raises `ValueError` once that many bytes are read (memory stays bounded).
    """
    path = Path(path)
    damage = [0, 0]  # lines with undecodable bytes, the first of them
    try:
        yield from _decoded_lines(path, progress, keep_ends, max_line_bytes, damage)
    finally:
        # Also when the reader stops early (a one-line JSON document is parsed from its first line): the warning
        # must not depend on the file being read to its end.
        if damage[0]:
            warnings.warn(
                f"{path}: {damage[0]} line(s) contain bytes that are not valid UTF-8 (the first is line "
                f"{damage[1]}); they were replaced with U+FFFD, which the BERT normalizer drops. Re-encode "
                "the file as UTF-8 to keep that text.",
                UnicodeWarning,
                stacklevel=2,
            )


def _decoded_lines(path: Path, progress: tqdm | None, keep_ends: bool, max_line_bytes: int | None,
                   damage: list[int]) -> Iterator[str]:
    reported = 0
    with open(path, "rb") as raw:
        decompress = _DECOMPRESSORS.get(path.suffix.lower())
        stream = decompress(raw) if decompress else raw
        # Binary line iteration + per-line decoding lets one bad byte cost one line's replacement instead of
        # aborting the whole file, and lets us count the damage.
        for line_number, line_bytes in enumerate(_bounded_lines(stream, path, max_line_bytes), start=1):
            try:
                line = line_bytes.decode("utf-8")
            except UnicodeDecodeError:
                line = line_bytes.decode("utf-8", errors="replace")
                damage[0] += 1
                damage[1] = damage[1] or line_number
            if line_number == 1:
                line = line.removeprefix("\ufeff")
            yield line if keep_ends else line.rstrip("\r\n")
            if progress is not None and line_number % _PROGRESS_EVERY_LINES == 0:
                progress.update(raw.tell() - reported)
                reported = raw.tell()
        if progress is not None:
            progress.update(raw.tell() - reported)


def _bounded_lines(stream: BinaryIO, path: Path, max_line_bytes: int | None) -> Iterator[bytes]:
    if max_line_bytes is None:
        yield from stream
        return
    line_number = 0
    while line := stream.readline(max_line_bytes + 1):
        line_number += 1
        if len(line) > max_line_bytes:
            raise ValueError(_long_line_message(path, line_number, line, max_line_bytes))
        yield line


def _long_line_message(path: Path, line_number: int, start: bytes, limit: int) -> str:
    returns = start.count(b"\r")
    cause = (f"it holds {returns} carriage returns: the file has old Mac line ends; convert them with "
             f"`tr '\\r' '\\n' < {path.name}`" if returns > 1 else
             "plain text needs a line break at least after every paragraph (or document)")
    return (f"{path} line {line_number} is longer than {limit >> 20} MiB; {cause}. Documents too long for one "
            "line go in a JSON lines file, one {\"text\": ...} record per document.")


def iter_documents(path: PathLike, document_start: re.Pattern[str] | None = None) -> Iterator[str]:
    """The documents of a text file, their non-blank lines stripped and joined by newlines.

    Documents are blank-line-separated blocks or, with `document_start`, run from one line it matches to the next.
    """
    block: list[str] = []
    for line in iter_lines(path, max_line_bytes=MAX_TEXT_LINE_BYTES):
        starts_document = document_start.search(line) if document_start else not line.strip()
        if starts_document and block:
            yield "\n".join(block)
            block = []
        if line.strip():
            block.append(line.strip())
    if block:
        yield "\n".join(block)


def iter_records(path: PathLike, column_names: Sequence[str] | None = None,
                 progress: tqdm | None = None) -> Iterator[Record]:
    """The records of a structured file (see the module docstring); errors name the file and the line or row.

    `column_names` names the columns of a CSV/TSV file without a header row. CSV/TSV cells stay strings; JSON,
    Parquet and Arrow values keep their types.
    """
    kind = data_format(path)
    if kind == "json":
        yield from _json_records(Path(path), progress)
    elif kind in ("csv", "tsv"):
        yield from _delimited_records(Path(path), kind, column_names, progress)
    elif kind in ("parquet", "arrow"):
        yield from _columnar_records(Path(path), kind)
    else:
        raise ValueError(f"{path} is read as plain text, not as records: records come from "
                         ".jsonl, .json, .csv, .tsv, .parquet or .arrow files")


def _json_records(path: Path, progress: tqdm | None) -> Iterator[Record]:
    numbered = ((number, line) for number, line in enumerate(iter_lines(path, progress), start=1) if line.strip())
    first = next(numbered, None)
    if first is None:
        return
    head = _json_value(first[1])
    if isinstance(head, dict) and not isinstance(head.get("data"), list):  # JSON lines: an object per line
        for number, line in itertools.chain([first], numbered):
            yield _json_line(path, number, line)
        return
    # One JSON document (a list, or {"data": [...]}), on the first line or spread over the file.
    content = head if head is not None else _json_document(path, first[1], numbered)
    records = content.get("data") if isinstance(content, dict) else content
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected JSON lines, a JSON list of records or {{\"data\": [...]}}")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"{path}: record {index} is a {type(record).__name__}, not an object with named fields")
        yield record


def _json_value(text: str) -> Any:
    """`text` parsed as JSON, or None when it is not a complete JSON value on its own."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _json_document(path: Path, first_line: str, rest: Iterator[tuple[int, str]]) -> Any:
    try:
        return json.loads("\n".join([first_line, *(line for _, line in rest)]))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None


def _json_line(path: Path, number: int, line: str) -> Record:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}); JSON lines need one object per "
                         "line") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}:{number}: a JSON line must be an object with named fields, got "
                         f"{type(record).__name__}")
    return record


def _delimited_records(path: Path, kind: str, column_names: Sequence[str] | None,
                       progress: tqdm | None) -> Iterator[Record]:
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if kind == "tsv" else {}
    rows = csv.reader(iter_lines(path, progress, keep_ends=True), **dialect)
    header = list(column_names) if column_names else next(rows, None)
    for row in rows if header is not None else ():
        if not row:  # a blank line
            continue
        if len(row) != len(header):
            raise ValueError(f"{path} line {rows.line_num}: {len(row)} fields where the header has "
                             f"{len(header)} ({', '.join(header)})")
        yield dict(zip(header, row, strict=True))


def _columnar_records(path: Path, kind: str) -> Iterator[Record]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(f"reading {path} needs pyarrow: pip install 'openbert[training]'") from error
    if kind == "parquet":
        batches = pq.ParquetFile(path).iter_batches()
    else:
        source = pa.memory_map(str(path))
        try:
            batches = pa.ipc.open_stream(source)  # the layout `datasets` writes
        except pa.ArrowInvalid:  # the other Arrow IPC layout
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(index) for index in range(reader.num_record_batches))
    for batch in batches:
        yield from batch.to_pylist()


def record_text(record: Record, text_column: str, where: str) -> str | None:
    """The text a record holds in `text_column` (None for a null); raises naming `where` when it has none."""
    if text_column not in record:
        raise ValueError(f"{where}: no {text_column!r} field (found {sorted(record)}); pass --text_column with the "
                         "column that holds the text")
    text = record[text_column]
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: {text_column!r} must be a string, got {type(text).__name__}")
    return text


def read_text_files(paths: PathLike | Iterable[PathLike], *, text_column: str = "text", show_progress: bool = False,
                    progress_desc: str = "Reading corpus") -> Iterator[str]:
    """The texts of `paths` (files, folders, globs), one at a time in file order: every line of a text file, the
    `text_column` of every record of the others. Blank texts are skipped.

    Raises `ValueError` when the files hold no text at all, so an empty corpus never passes silently. With
    `show_progress`, a tqdm bar labelled `progress_desc` tracks the bytes read.
    """
    files = expand_data_files(paths)
    with tqdm(total=sum(path.stat().st_size for path in files), unit="B", unit_scale=True, desc=progress_desc,
              disable=not show_progress) as bar:
        texts = (text for path in files for text in _file_texts(path, text_column, bar) if text and not text.isspace())
        yield from _require_text(texts, f"the data file(s) {', '.join(map(str, files))}")


def _file_texts(path: Path, text_column: str, bar: tqdm) -> Iterator[str | None]:
    if data_format(path) == "text":
        yield from iter_lines(path, bar, max_line_bytes=MAX_TEXT_LINE_BYTES)
        return
    for row, record in enumerate(iter_records(path, progress=bar), start=1):
        yield record_text(record, text_column, f"{path} row {row}")
    if data_format(path) in ("parquet", "arrow"):
        bar.update(path.stat().st_size)


def iter_text_batches(corpus: Corpus, *, batch_size: int = 1000,
                      text_column: str = "text", show_progress: bool = False,
                      progress_desc: str = "Reading corpus") -> Iterator[list[str]]:
    """The texts of `corpus` in lists of at most `batch_size` (the last one may be shorter).

    `corpus` is what `read_text_files` reads, or a `datasets.Dataset` / `IterableDataset` whose `text_column` holds
    strings, read in batches through `.iter()` (a streamed dataset is never materialised). Blank and `None` texts
    are skipped. Raises `ValueError` for an empty corpus or a missing column.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(corpus, str | os.PathLike) or (
            isinstance(corpus, list | tuple) and all(isinstance(item, str | os.PathLike) for item in corpus)):
        texts = read_text_files(corpus, text_column=text_column, show_progress=show_progress,
                                progress_desc=progress_desc)
    else:
        texts = _dataset_texts(corpus, text_column, batch_size, show_progress, progress_desc)
    while batch := list(itertools.islice(texts, batch_size)):
        yield batch


def _require_text(texts: Iterator[str], description: str) -> Iterator[str]:
    """Pass `texts` through, raising once they are exhausted if there was not a single one."""
    seen_any = False
    for text in texts:
        seen_any = True
        yield text
    if not seen_any:
        raise ValueError(f"the corpus is empty: {description} contain no non-blank text")


def _dataset_texts(dataset: Any, text_column: str, batch_size: int, show_progress: bool,
                   progress_desc: str) -> Iterator[str]:
    from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

    if isinstance(dataset, DatasetDict | IterableDatasetDict):
        raise TypeError(f"got a dataset dictionary with splits {list(dataset)}; pass one split, e.g. corpus['train']")
    if not isinstance(dataset, Dataset | IterableDataset):
        raise TypeError("corpus must be a path, a list of paths, a datasets.Dataset or a datasets.IterableDataset; "
                        f"got {type(dataset).__name__}")
    # A streamed dataset may not know its columns before the first row; then the check happens per batch.
    if dataset.column_names is not None and text_column not in dataset.column_names:
        raise ValueError(f"the dataset has no {text_column!r} column (columns: {dataset.column_names}); "
                         "pass text_column=<the column holding the text>")
    total = len(dataset) if isinstance(dataset, Dataset) else None
    with tqdm(total=total, unit=" rows", desc=progress_desc, disable=not show_progress) as bar:
        texts = _dataset_column(dataset.select_columns([text_column]), text_column, batch_size, bar)
        yield from _require_text(texts, f"the dataset column {text_column!r}")


def _dataset_column(dataset: Any, text_column: str, batch_size: int, bar: tqdm) -> Iterator[str]:
    for rows in dataset.iter(batch_size=batch_size):
        if text_column not in rows:
            raise ValueError(f"the dataset has no {text_column!r} column (columns: {list(rows)})")
        for text in rows[text_column]:
            if text is not None and not isinstance(text, str):
                raise ValueError(f"dataset column {text_column!r} must hold strings, got {type(text).__name__}")
            if text and not text.isspace():
                yield text
        bar.update(len(rows[text_column]))


def load_named_dataset(name: str, config_name: str | None = None, *, split: str | None = None,
                       streaming: bool = False, cache_dir: str | None = None) -> Any:
    """A `datasets` dataset by name: a `save_to_disk` folder, else a Hub dataset (which needs the network).

    With `split`, that split (a folder holding a single split is that split); a missing or empty split raises
    naming the dataset. Without, every split (a `DatasetDict`).
    """
    import datasets

    if not Path(name).is_dir():
        return datasets.load_dataset(name, config_name, split=split, streaming=streaming, cache_dir=cache_dir)
    loaded = datasets.load_from_disk(name)
    if split is not None and isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise ValueError(f"dataset {name} has no {split!r} split (it has {', '.join(loaded)})")
        loaded = loaded[split]
    if isinstance(loaded, datasets.Dataset) and len(loaded) == 0:
        raise ValueError(f"dataset {name} split {split!r} is empty")
    return loaded.to_iterable_dataset() if streaming and isinstance(loaded, datasets.Dataset) else loaded


def load_records(entries: PathLike | Iterable[PathLike], column_names: Sequence[str] | None = None) -> Dataset:
    """The records of every file `entries` name, as one in-memory `datasets.Dataset` (a fine-tuning split).

    Raises when a file is missing, malformed or plain text, or when there is no record at all.
    """
    import datasets

    files = expand_data_files(entries)
    records = [record for path in files for record in iter_records(path, column_names)]
    if not records:
        raise ValueError(f"{', '.join(map(str, files))} has no data rows (empty split)")
    return datasets.Dataset.from_list(records)


def load_documents(
    data_files: PathLike | Sequence[PathLike] | None = None,
    *,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    split: str = "train",
    text_column: str = "text",
    document_start: str | None = None,
    streaming: bool = False,
    cache_dir: str | None = None,
    num_proc: int | None = None,
) -> Dataset | IterableDataset:
    """A corpus as one document per row in a `"text"` column (a pretraining corpus).

    Give either `data_files` (files, folders, globs): text files give their documents (see `iter_documents`),
    record files the `text_column` of each record; or `dataset_name` (see `load_named_dataset`), its
    `text_column`. Read files are cached by `datasets` (keyed by their size and modification time); with
    `streaming=True` an `IterableDataset` is returned and nothing is materialised. A corpus with no document
    raises `ValueError`, as does an invalid `document_start`.
    """
    import datasets
    from datasets.fingerprint import Hasher

    if (data_files is None) == (dataset_name is None):
        raise ValueError("pass exactly one of data_files (local files) or dataset_name (hub or save_to_disk folder).")
    if dataset_name is not None:
        loaded = load_named_dataset(dataset_name, dataset_config_name, split=split, streaming=streaming,
                                    cache_dir=cache_dir)
        return _text_column_only(loaded, text_column, f"dataset {dataset_name!r}")
    files = expand_data_files(data_files)
    _check_corpus(files, text_column, document_start)
    gen_kwargs = {"files": [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files],
                  "text_column": text_column, "document_start": document_start}
    features = datasets.Features({"text": datasets.Value("string")})
    if streaming:
        return datasets.IterableDataset.from_generator(_document_rows, features=features, gen_kwargs=gen_kwargs)
    documents = datasets.Dataset.from_generator(
        _document_rows, features=features, gen_kwargs=gen_kwargs, cache_dir=cache_dir,
        num_proc=num_proc if num_proc and len(files) > 1 else None,
        fingerprint=Hasher.hash(["openbert-documents", _DOCUMENT_READER_VERSION, gen_kwargs]),
    )
    if len(documents) == 0:
        raise ValueError(f"no documents in {', '.join(map(str, files))}: the input is empty (or only blank lines).")
    return documents


def _check_corpus(files: list[Path], text_column: str, document_start: str | None) -> None:
    """Fail before any reading job starts: a bad expression, only empty text files, a missing text column."""
    if document_start:
        try:
            re.compile(document_start)
        except re.error as error:
            raise ValueError(f"document_start={document_start!r} is not a valid regular expression: {error}") from error
    if all(data_format(path) == "text" and not any(line.strip() for line in iter_lines(
            path, max_line_bytes=MAX_TEXT_LINE_BYTES)) for path in files):
        raise ValueError(f"no documents in {', '.join(map(str, files))}: the files are empty (or hold only blank "
                         "lines).")
    for path in files:
        first = next(iter_records(path), None) if data_format(path) != "text" else None
        if first is not None and text_column not in first:
            raise ValueError(f"{path} has no column {text_column!r} (columns: {list(first)}); pass --text_column with "
                             "the column that holds the documents.")


def _document_rows(files: list[tuple[str, int, int]], text_column: str,
                   document_start: str | None) -> Iterator[dict[str, str]]:
    """`{"text": document}` per document of `files`, given as `(path, size, mtime_ns)`: only the path is read;
    size and mtime are there so that the `datasets` fingerprint (and so its cache) changes when a file does."""
    starts = re.compile(document_start) if document_start else None
    for path, _, _ in files:
        if data_format(path) == "text":
            texts = iter_documents(path, starts)
        else:
            texts = (record_text(record, text_column, f"{path} row {row}")
                     for row, record in enumerate(iter_records(path), start=1))
        yield from ({"text": text} for text in texts if text and text.strip())


def _text_column_only(dataset: Any, text_column: str, source: str) -> Any:
    """Keep only `text_column`, renamed to `"text"`; raise naming the available columns when it is missing."""
    columns = dataset.column_names
    if columns is not None and text_column not in columns:
        raise ValueError(f"{source} has no column {text_column!r} (columns: {columns}); pass --text_column with the "
                         "column that holds the documents.")
    if columns is not None:
        dataset = dataset.select_columns([text_column])
    return dataset.rename_column(text_column, "text") if text_column != "text" else dataset
