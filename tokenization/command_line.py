"""The command-line convention every openbert command follows.

* Options are dataclass fields parsed by transformers' `HfArgumentParser`: `--output_dir` and `--output-dir` both
  work, `--help` lists every option with its default, and where the Trainer runs every `TrainingArguments` flag
  works too.
* A single argument ending in .json, .yaml or .yml is a config file holding the options by their field names.
* A concept has one name in every command (`--train_files`, `--output_dir`, `--model_name_or_path`,
  `--hub_model_id`, ...). Names a command used before keep working for one release: they are rewritten to
  today's name, with a `FutureWarning` that says so.
* Usage lines name the command as it is typed: `usage: openbert tokenizer train ...`.

This lives in tokenization, the lowest room with a command of its own, so that training's commands share it
without importing upwards; modeling/convert.py, which imports nothing of ours, follows the same rules with
`HfArgumentParser` directly.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
# Old option names keep working until this release.
OLD_NAMES_REMOVED_IN = "0.3"


def parse_command_line(command: str, dataclass_types: Sequence[type], argv: Sequence[str] | None = None, *,
                       renamed: Mapping[str, str] | None = None, description: str | None = None,
                       defaults: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
    """Parse `argv` (default: `sys.argv[1:]`) of `openbert <command>` into one instance per dataclass type.

    `renamed` maps an old option name (without dashes; the dashed spelling matches too) to today's option as
    typed after `--`, e.g. `{"input": "train_files", "no_strip_accents": "strip_accents=false"}`. The first
    paragraph of `description` (the command module's docstring) heads `--help`. `defaults` replace the
    dataclasses' own defaults for this command (shown by `--help`, and used by config files too).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(list(dataclass_types), prog=f"openbert {command}",
                              description=description.split("\n\n")[0] if description else None)
    parser.set_defaults(**(defaults or {}))
    if len(argv) == 1 and argv[0].endswith(CONFIG_SUFFIXES):
        return parse_config_file(parser, Path(argv[0]), defaults or {})
    return parser.parse_args_into_dataclasses(args=rename_old_options(argv, renamed or {}, command))


def parse_config_file(parser: HfArgumentParser, path: Path, defaults: Mapping[str, Any]) -> tuple[Any, ...]:
    """The dataclasses of `parser` filled from a JSON or YAML file of `{option: value}` (and `defaults` for the
    options it does not set)."""
    return parser.parse_dict({**defaults, **read_config_file(path)})


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; pass an existing .json/.yaml file")
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    import yaml  # the `training` extra's: only YAML config files need it

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def given_options(argv: Sequence[str]) -> dict[str, str]:
    """The options `argv` sets explicitly, by field name, with their values as typed ("true" for a bare flag);
    a config file's options when `argv` is one. For defaults that depend on what the user chose."""
    if len(argv) == 1 and argv[0].endswith(CONFIG_SUFFIXES):
        return {name: str(value) for name, value in read_config_file(Path(argv[0])).items()}
    given = {}
    for index, argument in enumerate(argv):
        if argument.startswith("--"):
            flag, equals, value = argument.partition("=")
            following = argv[index + 1] if index + 1 < len(argv) else "--"
            given[flag[2:].replace("-", "_")] = value if equals else (following if not following.startswith("--")
                                                                       else "true")
    return given


def rename_old_options(argv: Sequence[str], renamed: Mapping[str, str], command: str) -> list[str]:
    """`argv` with each old option name replaced by today's, with a `FutureWarning` per replacement."""
    result = []
    for argument in argv:
        flag, equals, value = argument.partition("=")
        new = renamed.get(flag[2:].replace("-", "_")) if flag.startswith("--") else None
        if new is not None:
            warnings.warn(f"`openbert {command} {flag}` is deprecated and stops working in openbert "
                          f"{OLD_NAMES_REMOVED_IN}: use --{new.partition('=')[0]}", FutureWarning, stacklevel=3)
            argument = f"--{new}{equals}{value}"
        result.append(argument)
    return result
