"""Raw pretraining corpora as `datasets` datasets with one document per row (a `"text"` column).

Accepted inputs:

* plain-text files (any suffix, optionally `.gz`): documents are separated by blank (or whitespace-only)
  lines, so both BERT's original format (one sentence per line) and one paragraph per line work; or,
  with `document_start` (a regular expression), every line it matches starts a new document and blank
  lines are mere paragraph breaks (WikiText: `^ = [^=].* = $` matches the article titles);
* JSON lines / JSON / CSV / Parquet / Arrow files, `save_to_disk` folders and hub datasets: one
  document per row, read from `text_column`.

Bytes that are not UTF-8 never stop a run: they become U+FFFD and a `UnicodeWarning` says how many lines
of which file were affected (`tokenization.corpus.iter_lines` reads the lines of every text file).
"""

from __future__ import annotations

import glob
import gzip
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
from datasets.fingerprint import Hasher

from openbert.tokenization.corpus import iter_lines

# Suffixes (before an optional .gz/.bz2/.xz/.zst) that `datasets` reads with a builder of the same name.
_TABULAR_BUILDERS = {
    ".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow",
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
# Bump when the text reader's output changes, so that cached datasets are rebuilt.
_TEXT_READER_VERSION = "2"


def expand_data_files(data_files: str | Sequence[str]) -> list[str]:
    """Resolve files, folders (every non-hidden file inside, recursively) and glob patterns to sorted paths.

    Raises FileNotFoundError naming every entry that matches nothing.
    """
    entries = [data_files] if isinstance(data_files, str | os.PathLike) else list(data_files)
    files: list[str] = []
    missing: list[str] = []
    for entry in map(str, entries):
        if os.path.isdir(entry):
            found = sorted(
                str(p) for p in Path(entry).rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(entry).parts)
            )
        elif glob.has_magic(entry):
            found = sorted(p for p in glob.glob(entry, recursive=True) if os.path.isfile(p))
        else:
            found = [entry] if os.path.isfile(entry) else []
        if found:
            files.extend(found)
        else:
            missing.append(entry)
    if missing:
        raise FileNotFoundError(
            f"no corpus file found for {missing}: pass existing files, folders or glob patterns "
            "(plain text, .gz, .jsonl, .csv, .parquet)."
        )
    return files


def _builder_for(path: str) -> str:
    """`"text"` for plain text, otherwise the name of the `datasets` builder that reads `path`."""
    stem = path
    for suffix in _COMPRESSION_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return _TABULAR_BUILDERS.get(os.path.splitext(stem)[1].lower(), "text")


def _holds_text(path: str) -> bool:
    """True when the (possibly gzipped) file has a non-whitespace byte; stops at the first one."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return True
    return False


def read_text_documents(files: list[tuple[str, int, int]], document_start: str | None = None
                        ) -> Iterator[dict[str, str]]:
    """Yield `{"text": document}` for each document of the given text files, lines joined by newlines.

    Documents are blank-line-separated blocks or, with `document_start`, run from one line matching
    that regular expression to the next (a file never continues the previous file's document).
    `files` holds `(path, size, mtime_ns)`: only the path is read; size and mtime are there so that the
    `datasets` fingerprint (and so its cache) changes when a file does.
    """
    starts = re.compile(document_start) if document_start else None
    for path, _, _ in files:
        block: list[str] = []
        for line in iter_lines(path):
            starts_document = starts.search(line) if starts else not line.strip()
            if starts_document and block:
                yield {"text": "\n".join(block)}
                block = []
            if line.strip():
                block.append(line.strip())
        if block:
            yield {"text": "\n".join(block)}


def _select_text_column(dataset: datasets.Dataset | datasets.IterableDataset, text_column: str, source: str):
    """Keep only `text_column`, renamed to `"text"`; raise naming the available columns when it is missing."""
    columns = dataset.column_names
    if columns is not None and text_column not in columns:
        raise ValueError(
            f"{source} has no column {text_column!r} (columns: {columns}); pass --text_column with the "
            "column that holds the documents."
        )
    if columns is not None:
        dataset = dataset.select_columns([text_column])
    return dataset.rename_column(text_column, "text") if text_column != "text" else dataset


def load_documents(
    data_files: str | Sequence[str] | None = None,
    *,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    split: str = "train",
    text_column: str = "text",
    document_start: str | None = None,
    streaming: bool = False,
    cache_dir: str | None = None,
    num_proc: int | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """Load a corpus as one document per row in a `"text"` column.

    Give either `data_files` (files, folders or globs; all of one kind) or `dataset_name` (a hub dataset,
    or a folder written by `Dataset.save_to_disk`). `document_start` applies to plain-text files (see the
    module docstring); an invalid expression raises ValueError. With `streaming=True` an `IterableDataset` is
    returned and nothing is materialised. A map-style result that holds no document raises ValueError.
    """
    if (data_files is None) == (dataset_name is None):
        raise ValueError(
            "pass exactly one of data_files (local files) or dataset_name (hub or save_to_disk folder)."
        )
    if dataset_name is not None:
        if os.path.isdir(dataset_name) and os.path.exists(os.path.join(dataset_name, "state.json")):
            loaded = datasets.load_from_disk(dataset_name)
            if isinstance(loaded, datasets.DatasetDict):
                loaded = loaded[split]
            dataset = loaded.to_iterable_dataset() if streaming else loaded
        else:
            dataset = datasets.load_dataset(
                dataset_name, dataset_config_name, split=split, streaming=streaming, cache_dir=cache_dir
            )
        dataset = _select_text_column(dataset, text_column, f"dataset {dataset_name!r}")
        source = dataset_name
    else:
        files = expand_data_files(data_files)
        builders = {_builder_for(f) for f in files}
        if len(builders) > 1:
            raise ValueError(f"corpus files mix formats {sorted(builders)}: pass files of one kind per run.")
        builder = builders.pop()
        source = ", ".join(files)
        if builder == "text":
            if document_start:
                try:
                    re.compile(document_start)
                except re.error as error:
                    raise ValueError(f"document_start={document_start!r} is not a valid regular expression: "
                                     f"{error}") from error
            if not any(_holds_text(f) for f in files):
                raise ValueError(f"no documents in {source}: the files are empty (or hold only blank lines).")
            stats = [(f, os.path.getsize(f), os.stat(f).st_mtime_ns) for f in files]
            gen_kwargs = {"files": stats, "document_start": document_start}
            features = datasets.Features({"text": datasets.Value("string")})
            if streaming:
                dataset = datasets.IterableDataset.from_generator(
                    read_text_documents, features=features, gen_kwargs=gen_kwargs
                )
            else:
                dataset = datasets.Dataset.from_generator(
                    read_text_documents, features=features, gen_kwargs=gen_kwargs, cache_dir=cache_dir,
                    num_proc=num_proc if num_proc and len(files) > 1 else None,
                    fingerprint=Hasher.hash(["openbert-text-documents", _TEXT_READER_VERSION, gen_kwargs]),
                )
        else:
            dataset = datasets.load_dataset(
                builder, data_files=files, split="train", streaming=streaming, cache_dir=cache_dir
            )
            dataset = _select_text_column(dataset, text_column, source)
    if not streaming and len(dataset) == 0:
        raise ValueError(f"no documents in {source}: the input is empty (or only blank lines).")
    return dataset
