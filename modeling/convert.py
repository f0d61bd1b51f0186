"""Convert checkpoints between openbert and transformers' BERT.

    python -m modeling.convert --to-transformers OPENBERT_DIR OUT_DIR   # loads in transformers' Bert* classes
    python -m modeling.convert --from-transformers BERT_DIR OUT_DIR     # an openbert checkpoint with its code

The weights are the same tensors under the same names; only the config's model_type, the class and the
remote code differ. The tokenizer, when the source has one, is copied along. The output directory is
written to a temporary sibling first and renamed into place, so a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import transformers
from transformers import AutoTokenizer, BertConfig

from . import modeling_openbert

# Config fields that only openbert knows; transformers' BertConfig would carry them along as clutter.
OPENBERT_ONLY_FIELDS = (
    "unpad_inputs", "sparse_prediction", "auto_map", "architectures", "model_type", "transformers_version"
)


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


def to_transformers(source: str | Path, destination: str | Path) -> Path:
    """Write the openbert checkpoint `source` as a transformers BERT checkpoint in `destination`."""
    source, destination = Path(source), Path(destination)
    name = _architecture(source, "OpenBert")
    model = getattr(modeling_openbert, name).from_pretrained(source)
    fields = {k: v for k, v in model.config.to_dict().items() if k not in OPENBERT_ONLY_FIELDS}
    bert = getattr(transformers, name.replace("OpenBert", "Bert"))(BertConfig(**fields))
    bert.load_state_dict(model.state_dict(), strict=True)

    def write(staging: Path) -> None:
        bert.save_pretrained(staging)
        _copy_tokenizer(source, staging)

    return _write_atomically(destination, write)


def from_transformers(source: str | Path, destination: str | Path) -> Path:
    """Write the transformers BERT checkpoint `source` as an openbert checkpoint (with its code)."""
    source, destination = Path(source), Path(destination)
    name = _architecture(source, "Bert").replace("Bert", "OpenBert", 1)
    model_class = getattr(modeling_openbert, name, None)
    if model_class is None:
        raise ValueError(f"openbert has no {name}; supported heads: {sorted(modeling_openbert.__all__)}")
    model = model_class.from_pretrained(source)

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        _copy_tokenizer(source, staging)

    return _write_atomically(destination, write)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m modeling.convert",
        description="Convert a checkpoint between openbert and transformers' BERT (same weights, same names).",
    )
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--to-transformers", action="store_true",
                           help="SOURCE is an openbert checkpoint; write one that transformers' Bert* classes load")
    direction.add_argument("--from-transformers", action="store_true",
                           help="SOURCE is a transformers BERT checkpoint; write an openbert one with its code")
    parser.add_argument("source", type=Path, help="checkpoint directory to read")
    parser.add_argument("destination", type=Path, help="new (or empty) directory to write")
    args = parser.parse_args(argv)
    convert = to_transformers if args.to_transformers else from_transformers
    written = convert(args.source, args.destination)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
