"""Streaming readers for raw-text corpora: plain text, gzip, JSON lines and 🤗 datasets.

Everything here is a generator, so a multi-GB corpus is read a line (or a dataset batch) at a time and
never sits in memory. Tokenizer training reads its corpus through them; they are public for any other
consumer of raw text.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeAlias

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from datasets import Dataset, IterableDataset

PathLike: TypeAlias = str | os.PathLike
# What `iter_text_batches` accepts; a string so `datasets` is imported only when a dataset is passed.
Corpus: TypeAlias = "PathLike | Sequence[PathLike] | Dataset | IterableDataset"

# Suffixes (before an optional ".gz") read as JSON lines; every other file is read as plain text.
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
# Progress is pushed to the bar every this many lines: per-line updates would cost more than the reading.
_PROGRESS_EVERY_LINES = 4096


def resolve_text_files(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Return `paths` as a list of `Path`s after checking that each one is an existing regular file.

    Raises `FileNotFoundError` naming every missing path, and `ValueError` for directories or an empty list,
    before any reading starts (so a typo in the 10th file does not surface an hour into training).
    """
    files = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(path) for path in paths]
    if not files:
        raise ValueError("no input files were given; pass at least one .txt/.txt.gz/.jsonl path")
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise FileNotFoundError(f"input file(s) not found: {', '.join(missing)}")
    directories = [str(path) for path in files if not path.is_file()]
    if directories:
        raise ValueError(
            f"input path(s) are not regular files: {', '.join(directories)}; pass the files themselves (e.g. DIR/*.txt)"
        )
    return files


def is_json_lines(path: PathLike) -> bool:
    """Whether `path` is read as JSON lines (by suffix, ignoring a trailing .gz)."""
    name = Path(path).name.lower().removesuffix(".gz")
    return name.endswith(JSON_LINES_SUFFIXES)


def read_text_files(
    paths: PathLike | Iterable[PathLike],
    *,
    text_field: str = "text",
    show_progress: bool = False,
    progress_desc: str = "Reading corpus",
) -> Iterator[str]:
    """Yield the texts of `paths`, one at a time, in file order.

    - Plain text files (any suffix, optionally gzip-compressed with `.gz`): one text per line, newline
      removed.
    - JSON lines (`.jsonl`, `.ndjson`, `.json`, optionally `.gz`): one JSON object per line, text taken from
      its `text_field` key.

    Blank texts (empty or whitespace-only) are skipped, and a UTF-8 byte-order mark at the start of a file
    is dropped. Bytes that are not valid UTF-8 are replaced with U+FFFD (which the BERT normalizer removes)
    and counted: a `UnicodeWarning` per file reports how many lines were affected. Raises `ValueError` when
    the files hold no text at all, so an empty corpus can never pass silently. With `show_progress`, a
    tqdm bar labelled `progress_desc` tracks the bytes read (compressed bytes for `.gz`).
    """
    files = resolve_text_files(paths)
    total_bytes = sum(path.stat().st_size for path in files)
    with tqdm(total=total_bytes, unit="B", unit_scale=True, desc=progress_desc, disable=not show_progress) as bar:
        description = f"the input file(s) {', '.join(map(str, files))}"
        yield from _require_text(
            (text for path in files for text in _read_one_file(path, text_field, bar)), description
        )


def iter_text_batches(
    corpus: Corpus,
    *,
    batch_size: int = 1000,
    text_column: str = "text",
    show_progress: bool = False,
    progress_desc: str = "Reading corpus",
) -> Iterator[list[str]]:
    """Yield the texts of `corpus` in lists of at most `batch_size` (the last one may be shorter).

    `corpus` is a path or a list of paths (see `read_text_files`; for JSON lines `text_column` names the
    field), or a `datasets.Dataset` / `datasets.IterableDataset` whose `text_column` holds strings. A
    dataset is read in batches through `.iter()`, so a streamed dataset is never materialised. Blank and
    `None` texts are skipped. Raises `ValueError` for an empty corpus or a missing column. With
    `show_progress`, a tqdm bar labelled `progress_desc` counts bytes (files) or rows (datasets).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if _is_paths(corpus):
        texts = read_text_files(
            corpus, text_field=text_column, show_progress=show_progress, progress_desc=progress_desc
        )
    else:
        texts = _iter_dataset_texts(corpus, text_column, batch_size, show_progress, progress_desc)
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _is_paths(corpus: Any) -> bool:
    if isinstance(corpus, str | os.PathLike):
        return True
    return isinstance(corpus, list | tuple) and all(isinstance(item, str | os.PathLike) for item in corpus)


def _require_text(texts: Iterator[str], description: str) -> Iterator[str]:
    """Pass `texts` through, raising once they are exhausted if there was not a single one."""
    seen_any = False
    for text in texts:
        seen_any = True
        yield text
    if not seen_any:
        raise ValueError(f"the corpus is empty: {description} contain no non-blank text")


def iter_lines(path: PathLike, progress: tqdm | None = None) -> Iterator[str]:
    """Yield every line of the text file `path` (gzip-compressed when it ends in `.gz`), newline removed.

    A UTF-8 byte-order mark at the start is dropped. Bytes that are not valid UTF-8 never stop the read:
    they become U+FFFD, and a `UnicodeWarning` at the end of the file says how many lines were affected.
    `progress`, when given, advances by the bytes read (compressed bytes for `.gz`).
    """
    path = Path(path)
    undecodable_lines = first_undecodable = 0
    with open(path, "rb") as raw:
        # Binary line iteration + per-line decoding lets one bad byte cost one line's replacement instead
        # of aborting the whole file, and lets us count the damage.
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(".gz") else raw
        reported = 0
        for line_number, line_bytes in enumerate(stream, start=1):
            try:
                line = line_bytes.decode("utf-8")
            except UnicodeDecodeError:
                line = line_bytes.decode("utf-8", errors="replace")
                undecodable_lines += 1
                first_undecodable = first_undecodable or line_number
            if line_number == 1:
                line = line.removeprefix("\ufeff")
            yield line.rstrip("\r\n")
            if progress is not None and line_number % _PROGRESS_EVERY_LINES == 0:
                progress.update(raw.tell() - reported)
                reported = raw.tell()
        if progress is not None:
            progress.update(raw.tell() - reported)
    if undecodable_lines:
        warnings.warn(
            f"{path}: {undecodable_lines} line(s) contain bytes that are not valid UTF-8 (the first is line "
            f"{first_undecodable}); they were replaced with U+FFFD, which the BERT normalizer drops. Re-encode "
            "the file as UTF-8 to keep that text.",
            UnicodeWarning,
            stacklevel=2,
        )


def _read_one_file(path: Path, text_field: str, bar: tqdm) -> Iterator[str]:
    json_lines = is_json_lines(path)
    for line_number, line in enumerate(iter_lines(path, bar), start=1):
        text = _json_text(line, path, line_number, text_field) if json_lines else line
        if text and not text.isspace():
            yield text


def _json_text(line: str, path: Path, line_number: int, text_field: str) -> str | None:
    """The `text_field` string of one JSON line (None for a blank line or a null value)."""
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}:{line_number}: not valid JSON ({error.msg}); JSON-lines files need one object per line"
        ) from None
    if not isinstance(row, dict) or text_field not in row:
        fields = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise ValueError(f"{path}:{line_number}: JSON line has no {text_field!r} field (found {fields})")
    text = row[text_field]
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{path}:{line_number}: {text_field!r} must be a string, got {type(text).__name__}")
    return text


def _iter_dataset_texts(
    dataset: Any, text_column: str, batch_size: int, show_progress: bool, progress_desc: str
) -> Iterator[str]:
    from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

    if isinstance(dataset, DatasetDict | IterableDatasetDict):
        raise TypeError(f"got a dataset dictionary with splits {list(dataset)}; pass one split, e.g. corpus['train']")
    if not isinstance(dataset, Dataset | IterableDataset):
        raise TypeError(
            "corpus must be a path, a list of paths, a datasets.Dataset or a datasets.IterableDataset; "
            f"got {type(dataset).__name__}"
        )
    # A streamed dataset may not know its columns before the first row; then the check happens per batch.
    if dataset.column_names is not None and text_column not in dataset.column_names:
        raise ValueError(
            f"the dataset has no {text_column!r} column (columns: {dataset.column_names}); "
            "pass text_column=<the column holding the text>"
        )
    total = len(dataset) if isinstance(dataset, Dataset) else None
    with tqdm(total=total, unit=" rows", desc=progress_desc, disable=not show_progress) as bar:
        texts = _dataset_column(dataset.select_columns([text_column]), text_column, batch_size, bar)
        yield from _require_text(texts, f"the dataset column {text_column!r}")


def _dataset_column(dataset: Any, text_column: str, batch_size: int, bar: tqdm) -> Iterator[str]:
    for rows in dataset.iter(batch_size=batch_size):
        if text_column not in rows:
            raise ValueError(f"the dataset has no {text_column!r} column (columns: {list(rows)})")
        column = rows[text_column]
        for text in column:
            if text is None:
                continue
            if not isinstance(text, str):
                raise ValueError(f"dataset column {text_column!r} must hold strings, got {type(text).__name__}")
            if text and not text.isspace():
                yield text
        bar.update(len(column))
