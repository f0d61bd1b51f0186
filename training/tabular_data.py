"""Reading labelled text tables (CSV, TSV, JSON, JSON lines) into `datasets.Dataset`s with clear errors.

TSV files are read the way GLUE's own readers do: tab-separated with no quote handling, since GLUE text
contains unbalanced quotes. CSV files use standard CSV quoting. A UTF-8 byte-order mark (MRPC has one) is
dropped. Every error names the file (and the line, for a malformed row).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import datasets

TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")


def _read_delimited(path: Path, column_names: Sequence[str] | None) -> list[dict]:
    """Rows of a CSV/TSV file as dicts; `column_names` names the columns of a file without a header."""
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if path.suffix == ".tsv" else {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle, **dialect)
        header = list(column_names) if column_names else next(rows, None)
        if header is None:
            return []
        records = []
        for row in rows:
            if not row:  # a trailing blank line
                continue
            if len(row) != len(header):
                raise ValueError(f"{path} line {rows.line_num}: {len(row)} fields where the header has "
                                 f"{len(header)} ({', '.join(header)})")
            records.append(dict(zip(header, row, strict=True)))
    return records


def _read_json(path: Path) -> list[dict]:
    """Records of a JSON-lines file, or of a JSON file holding a list (or `{"data": [...]}`)."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".jsonl":
        records = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path} line {line_number}: not valid JSON ({error.msg})") from None
        return records
    content = json.loads(text)
    records = content.get("data") if isinstance(content, dict) else content
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records or {{\"data\": [...]}}")
    return records


def read_first_line(path: str | Path) -> list[str]:
    """The tab-separated fields of the first line of a TSV file (to tell a header from data)."""
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        return handle.readline().rstrip("\r\n").split("\t")


def read_table(path: str | Path, column_names: Sequence[str] | None = None) -> datasets.Dataset:
    """Read a table of records; raise when the file is missing, malformed or has no data rows.

    CSV/TSV cells stay strings (labels are interpreted later); JSON values keep their JSON types.
    """
    path = Path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    records = _read_json(path) if path.suffix in (".json", ".jsonl") else _read_delimited(path, column_names)
    if not records:
        raise ValueError(f"{path} has no data rows (empty split)")
    if not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{path}: every record must be an object with named fields")
    return datasets.Dataset.from_list(records)
