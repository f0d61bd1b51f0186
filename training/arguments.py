"""Command-line parsing shared by every training entry point.

Each entry point declares its options as dataclasses; this module turns either the command line or a
single JSON/YAML file into instances of them, the way transformers' example scripts do.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def parse_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """Parse `argv` (default: `sys.argv[1:]`) into one instance per dataclass type.

    A lone argument ending in .json/.yaml/.yml is read as a config file holding every option;
    anything else is parsed as `--flag value` pairs (all `TrainingArguments` flags included).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(list(dataclass_types))
    if len(argv) == 1 and argv[0].endswith(CONFIG_SUFFIXES):
        path = Path(argv[0])
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist; pass an existing .json/.yaml file")
        if path.suffix == ".json":
            return parser.parse_json_file(str(path.resolve()))
        return parser.parse_yaml_file(str(path.resolve()))
    return parser.parse_args_into_dataclasses(args=argv)
