"""Checks that every training job runs before it reads data or builds a model: what a run is started from (a
checkpoint folder, or a Hub id), its config, and whether the sequence length fits the model's positions.

Each check raises with the option, the value and the fix, instead of what transformers would say much later
("Repo id must be in the form 'repo_name' or 'namespace/repo_name'" for a mistyped folder, an index error in
the position embeddings after the first long batch, or after a whole training when only the validation file holds
a long row).
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers import AutoConfig, PretrainedConfig


def check_model_source(option: str, value: str | None) -> None:
    """Raise unless `value` is an existing folder or could be a Hub id (NAME or NAMESPACE/NAME)."""
    if value is None or Path(value).is_dir():
        return
    path = Path(value)
    if path.exists():
        raise ValueError(f"{option} {value} is a file: pass the folder that holds config.json (what save_pretrained "
                         "or a training run wrote)")
    try:
        validate_repo_id(value)
        local_looking = str(path.parent) != "." and path.parent.is_dir()
    except HFValidationError:
        local_looking = True
    if local_looking:
        raise FileNotFoundError(f"{option} {value}: no such folder; pass the folder a training run or "
                                "save_pretrained wrote (or a Hub id NAMESPACE/NAME)")


def load_checkpoint_config(option: str, value: str, config_class: type = AutoConfig) -> PretrainedConfig:
    """The config of the checkpoint `value` (after `check_model_source`), its invalid fields named with the file."""
    check_model_source(option, value)
    try:
        return config_class.from_pretrained(value)
    except (ValueError, TypeError) as error:
        where = Path(value) / "config.json" if Path(value).is_dir() else f"the config of {value}"
        raise ValueError(f"{option} {value}: {where} is invalid: {error}") from error


def check_sequence_length(option: str, length: int, config: PretrainedConfig, source: str) -> None:
    """Raise when inputs of `length` tokens would not fit the model's position embeddings. Every split is cut to
    `length` tokens, so this one comparison covers rows that appear only in the validation or test files too."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and length > positions:
        raise ValueError(f"{option} {length} exceeds the max_position_embeddings={positions} of {source}: inputs "
                         f"that long have no position embedding; pass {option} {positions} or less")
