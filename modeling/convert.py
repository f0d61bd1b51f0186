"""`openbert convert`: convert checkpoints between openbert and transformers' BERT.

    openbert convert --to transformers --model_name_or_path OPENBERT_DIR --output_dir OUT_DIR   # for Bert* classes
    openbert convert --to openbert --model_name_or_path BERT_DIR --output_dir OUT_DIR  # an openbert one with its code

The weights are the same tensors under the same names; only the config's model_type, the class and the
remote code differ. The tokenizer, when the source has one, is copied along. The output directory is
written to a temporary sibling first and renamed into place, so a failed conversion leaves nothing behind.

A sentence-transformers checkpoint (one with a `modules.json`) keeps its pipeline: its transformer module is
converted in place and every other module (pooling, normalize, dense, ...) is copied as is, with the files that
hold the maximum length and the prompts (`sentence_bert_config.json`, `config_sentence_transformers.json`), so
`SentenceTransformer(output)` gives the source's embeddings. Without them sentence-transformers would silently
build transformer + mean pooling, without the normalisation. An openbert one loads with
`SentenceTransformer(output, trust_remote_code=True)` where openbert is not imported.

The command follows the convention of every openbert command (`openbert.tokenization.command_line`) with
transformers' parser directly, since modeling/ imports nothing of ours: `--name` or `--na-me`, one JSON/YAML file
holding every option, and the 0.1 form `--to-transformers SOURCE DEST` still accepted with a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import transformers
from transformers import AutoTokenizer, BertConfig, HfArgumentParser, PreTrainedModel

from . import modeling_openbert

# Config fields that only openbert knows; transformers' BertConfig would carry them along as clutter.
OPENBERT_ONLY_FIELDS = (
    "unpad_inputs", "sparse_prediction", "auto_map", "architectures", "model_type", "transformers_version"
)
# The file that makes a folder a sentence-transformers model: its modules in order, each with its folder.
SENTENCE_TRANSFORMERS_MODULES = "modules.json"


def _architecture(checkpoint: Path, prefix: str) -> str:
    """The head class name recorded in the checkpoint's config (`prefix` + "Model" when none is)."""
    config_file = checkpoint / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} does not exist: pass a directory written by save_pretrained().")
    architectures = json.loads(config_file.read_text()).get("architectures") or [f"{prefix}Model"]
    name = architectures[0]
    if not name.startswith(prefix):
        raise ValueError(f"{checkpoint} holds a {name}, not a {prefix}* checkpoint; use the other direction.")
    return name


def _load_exactly(model_class: type, checkpoint: Path):
    """The model in `checkpoint`, refused when its weights do not fill the architecture its config names:
    `from_pretrained` would start the missing ones at random and only log it, and the conversion would write a
    random model."""
    model, info = model_class.from_pretrained(checkpoint, output_loading_info=True)
    missing = sorted(info["missing_keys"])
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise ValueError(f"{checkpoint} does not hold the weights of the {model_class.__name__} its config.json "
                         f"names: {len(missing)} are missing ({shown}); converting would write random values in "
                         "their place. Pass a checkpoint saved with save_pretrained by that model.")
    return model


def _write_atomically(destination: Path, write) -> Path:
    if destination.exists() and any(destination.iterdir()):
        raise FileExistsError(f"{destination} exists and is not empty; choose a new output directory.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        write(staging)
        if destination.exists():
            destination.rmdir()
        os.replace(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _copy_tokenizer(source: Path, staging: Path) -> None:
    if (source / "tokenizer.json").is_file() or (source / "vocab.txt").is_file():
        AutoTokenizer.from_pretrained(source).save_pretrained(staging)


def sentence_transformer_folder(checkpoint: Path) -> str | None:
    """The folder of a sentence-transformers checkpoint's transformer module, relative to the checkpoint ("" for
    the checkpoint itself, the layout of sentence-transformers >= 2); None when `checkpoint` has no `modules.json`."""
    modules_file = checkpoint / SENTENCE_TRANSFORMERS_MODULES
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text())
    transformers_modules = [module for module in modules if module["type"].rsplit(".", 1)[-1] == "Transformer"]
    if len(transformers_modules) != 1:
        raise ValueError(f"{modules_file} lists {len(transformers_modules)} Transformer modules; conversion "
                         "handles sentence-transformers models with exactly one")
    return transformers_modules[0]["path"]


def _copy_sentence_transformer_modules(source: Path, staging: Path, transformer_folder: str) -> None:
    """Copy everything of a sentence-transformers checkpoint but the transformer: `modules.json`, the model-level
    config (prompts, similarity function), every other module's folder, and the transformer's own module config
    (maximum length, lower-casing)."""
    for name in (SENTENCE_TRANSFORMERS_MODULES, "config_sentence_transformers.json"):
        if (source / name).is_file():
            shutil.copy2(source / name, staging / name)
    for module in json.loads((source / SENTENCE_TRANSFORMERS_MODULES).read_text()):
        folder = module["path"]
        if folder != transformer_folder and folder and (source / folder).is_dir():
            shutil.copytree(source / folder, staging / folder)
    for module_config in (source / transformer_folder).glob("sentence_*_config.json"):
        shutil.copy2(module_config, staging / transformer_folder / module_config.name)


def _convert(source: str | Path, destination: str | Path, load: Callable[[Path], PreTrainedModel]) -> Path:
    """Write `load(folder)` (the model converted) with the tokenizer of `folder`, where `folder` is `source` or,
    for a sentence-transformers checkpoint, its transformer module's folder; the other modules come along."""
    source, destination = Path(source), Path(destination)
    transformer_folder = sentence_transformer_folder(source)
    model_folder = source / (transformer_folder or "")
    model = load(model_folder)

    def write(staging: Path) -> None:
        model.save_pretrained(staging / (transformer_folder or ""))
        _copy_tokenizer(model_folder, staging / (transformer_folder or ""))
        if transformer_folder is not None:
            _copy_sentence_transformer_modules(source, staging, transformer_folder)

    return _write_atomically(destination, write)


def _load_as_bert(folder: Path) -> PreTrainedModel:
    """The openbert checkpoint in `folder` as the transformers `Bert*` class of the same head and weights."""
    name = _architecture(folder, "OpenBert")
    model = _load_exactly(getattr(modeling_openbert, name), folder)
    fields = {k: v for k, v in model.config.to_dict().items() if k not in OPENBERT_ONLY_FIELDS}
    bert = getattr(transformers, name.replace("OpenBert", "Bert"))(BertConfig(**fields))
    bert.load_state_dict(model.state_dict(), strict=True)
    return bert


def _load_as_openbert(folder: Path) -> PreTrainedModel:
    """The transformers BERT checkpoint in `folder` as the openbert class of the same head."""
    name = _architecture(folder, "Bert").replace("Bert", "OpenBert", 1)
    model_class = getattr(modeling_openbert, name, None)
    if model_class is None:
        raise ValueError(f"openbert has no {name}; supported heads: {sorted(modeling_openbert.__all__)}")
    return _load_exactly(model_class, folder)


def to_transformers(source: str | Path, destination: str | Path) -> Path:
    """Write the openbert checkpoint `source` as a transformers BERT checkpoint in `destination`."""
    return _convert(source, destination, _load_as_bert)


def from_transformers(source: str | Path, destination: str | Path) -> Path:
    """Write the transformers BERT checkpoint `source` as an openbert checkpoint (with its code)."""
    return _convert(source, destination, _load_as_openbert)


@dataclass
class ConvertArguments:
    to: Literal["openbert", "transformers"] = field(metadata={
        "help": "transformers: write an openbert checkpoint as one transformers' Bert* classes load; openbert: "
                "write a transformers BERT checkpoint as an openbert one, with its modeling code."})
    model_name_or_path: str = field(metadata={"help": "The checkpoint folder to read."})
    output_dir: str = field(metadata={"help": "A new (or empty) folder to write."})


# The 0.1 form `--to-transformers SOURCE DEST`: the old flag and the direction it means.
OLD_DIRECTIONS = {"--to-transformers": "transformers", "--from-transformers": "openbert"}


def _rewrite_old_form(argv: list[str], command: str) -> list[str]:
    """`argv`, with the 0.1 form `--to-transformers|--from-transformers SOURCE DEST` rewritten to today's options."""
    old = [argument for argument in argv if argument in OLD_DIRECTIONS]
    paths = [argument for argument in argv if not argument.startswith("-")]
    if len(old) != 1 or len(paths) != 2 or len(argv) != 3:
        return argv
    to = OLD_DIRECTIONS[old[0]]
    warnings.warn(f"`openbert {command} {old[0]} SOURCE DEST` is deprecated and stops working in openbert 0.3: use "
                  f"--to {to} --model_name_or_path SOURCE --output_dir DEST", FutureWarning, stacklevel=3)
    return ["--to", to, "--model_name_or_path", paths[0], "--output_dir", paths[1]]


def main(argv: Sequence[str] | None = None, command: str = "convert") -> None:
    argv = _rewrite_old_form(list(sys.argv[1:] if argv is None else argv), command)
    parser = HfArgumentParser(ConvertArguments, prog=f"openbert {command}",
                              description=__doc__.split("\n\n")[0])
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        (args,) = parser.parse_json_file(argv[0]) if argv[0].endswith(".json") else parser.parse_yaml_file(argv[0])
    else:
        (args,) = parser.parse_args_into_dataclasses(args=argv)
    convert = to_transformers if args.to == "transformers" else from_transformers
    print(f"wrote {convert(args.model_name_or_path, args.output_dir)}")


if __name__ == "__main__":
    main()
