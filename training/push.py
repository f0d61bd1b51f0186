"""Push a trained openbert checkpoint to the Hugging Face Hub, in one commit.

    python -m training.push --checkpoint DIR --repo-id NAMESPACE/NAME [--private] [--revision BRANCH]
        [--commit-message TEXT] [--token TOKEN]

What goes up is what a user of the model needs and nothing else: the safetensors weights (never pickles), the
config with its `auto_map` and the modeling code it names (so `trust_remote_code=True` loads it anywhere), the
tokenizer files, the model card (README.md, with the repo id filled into its snippets), and the run's curves
(*.png) and results (*results.json). Optimizer states, trainer state and intermediate checkpoints stay home.
Files already on the Hub with the same content are not sent again, and a push that changes nothing creates
no commit. The local checkpoint is only read, whatever happens.

The Hub is `HF_ENDPOINT` (default https://huggingface.co); the token comes from `--token`, `HF_TOKEN` or
`hf auth login`. Training entry points call `hub_target_from_training_args` at start-up and
`HubTarget.push(output_dir)` at the end, so `--push_to_hub --hub_model_id NAMESPACE/NAME` works for them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, constants
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalTokenNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import HFValidationError, validate_repo_id

from openbert.hub_cards import CARD_FILENAME, REPO_ID_PLACEHOLDER

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt")
# Top-level file patterns that are pushed; everything else in a checkpoint directory stays local.
PUSHED_PATTERNS = ("config.json", "*.safetensors", "model.safetensors.index.json", "*.py", *TOKENIZER_FILES,
                   CARD_FILENAME, "*.png", "*results.json")


class PushError(RuntimeError):
    """A push failed for a reason the user can fix; the message says which and how."""


def files_to_push(checkpoint_dir: str | Path) -> dict[str, Path]:
    """The files of `checkpoint_dir` a push uploads, as `{path in repo: local path}`, after checking them.

    Raises `PushError` when the checkpoint cannot make a working Hub repo: no config, weights that are not
    safetensors, an `auto_map` naming code that is missing, no tokenizer, or no model card.
    """
    directory = Path(checkpoint_dir)
    if not directory.is_dir():
        raise PushError(f"checkpoint directory {directory} does not exist")
    files = {p.name: p for pattern in PUSHED_PATTERNS for p in sorted(directory.glob(pattern)) if p.is_file()}
    if "config.json" not in files:
        raise PushError(f"{directory} has no config.json: pass the directory model.save_pretrained() wrote")
    if not any(name.endswith(".safetensors") for name in files):
        found = "only pickled weights (pytorch_model.bin)" if (directory / "pytorch_model.bin").exists() else (
            "no weights")
        raise PushError(f"{directory} has {found}: the Hub copy is safetensors only; re-save the model with "
                        "model.save_pretrained(dir), which writes model.safetensors")
    _check_remote_code(directory, files)
    if "tokenizer_config.json" not in files or not {"tokenizer.json", "vocab.txt"} & files.keys():
        raise PushError(f"{directory} has no tokenizer (tokenizer_config.json + tokenizer.json or vocab.txt): "
                        "save it there with tokenizer.save_pretrained(dir)")
    if CARD_FILENAME not in files:
        raise PushError(f"{directory} has no model card ({CARD_FILENAME}): write it with "
                        "hub_cards.write_model_card(dir, ...) first")
    return files


def _check_remote_code(directory: Path, files: dict[str, Path]) -> None:
    """Every module an `auto_map` names must be pushed too, or `trust_remote_code` loading breaks on the Hub."""
    config = json.loads(files["config.json"].read_text())
    maps: dict[str, Any] = config.get("auto_map", {})
    if not maps and config.get("model_type") == "openbert":
        raise PushError(f"{directory}/config.json has no auto_map, so the Hub copy could not load without "
                        "openbert installed: save the model with openbert's save_pretrained")
    if "tokenizer_config.json" in files:
        maps = {**maps, **json.loads(files["tokenizer_config.json"].read_text()).get("auto_map", {})}
    for reference in maps.values():
        for target in reference if isinstance(reference, list) else [reference]:
            if target is None or "--" in target:  # no class, or code living in another repo
                continue
            module = target.rsplit(".", 1)[0] + ".py"
            if module not in files:
                raise PushError(f"auto_map in {directory} names {target} but {module} is not in the checkpoint: "
                                "save the model with save_pretrained, which copies its code")


def push_checkpoint(
    checkpoint_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Upload the checkpoint in `checkpoint_dir` to the model repo `repo_id` as one commit, creating the repo
    (and the `revision` branch) when needed.

    Returns the commit's info (`.oid`, `.commit_url`); when nothing changed, no commit is made and the info
    names the commit already at the head of the branch. Raises `PushError` with the cause and the fix for a
    bad checkpoint, a missing or rejected token, an unreachable Hub, or a repo that cannot be found or
    created. The checkpoint directory is never written to.
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PushError(f"invalid repo id {repo_id!r}: use NAMESPACE/NAME ({e})") from e
    files = files_to_push(checkpoint_dir)
    api = HfApi(token=token)
    endpoint = api.endpoint
    branch = revision or constants.DEFAULT_REVISION
    user = "the token's user"
    try:
        user = api.whoami()["name"]  # fails fast, before any upload, on a bad token or an unreachable Hub
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        operations = [CommitOperationAdd(name, _upload_content(name, path, repo_id)) for name, path in files.items()]
        info = api.create_commit(
            repo_id, operations, revision=branch,
            commit_message=commit_message or f"Upload {Path(checkpoint_dir).resolve().name} with openbert",
        )
    except LocalTokenNotFoundError as e:
        raise PushError("no Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login`") from e
    except httpx2.TransportError as e:
        raise PushError(f"cannot reach the Hub at {endpoint} ({type(e).__name__}: {e}); check the network "
                        "connection and HF_ENDPOINT") from e
    except ConnectionError as e:  # what hf_xet raises when its upload fails
        raise PushError(f"uploading to {repo_id} at {endpoint} failed: {e}") from e
    except RepositoryNotFoundError as e:
        raise PushError(f"repository {repo_id} was not found at {endpoint} and could not be created by "
                        f"{user}: check the namespace and that your token may write to it") from e
    except RevisionNotFoundError as e:
        raise PushError(f"branch {branch!r} of {repo_id} was not found at {endpoint}") from e
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise PushError(f"the Hub at {endpoint} rejected the token (401 Unauthorized): pass a valid token "
                            "with write access (--token, HF_TOKEN or `hf auth login`)") from e
        if status == 403:
            raise PushError(f"{user} may not create or write to {repo_id} at {endpoint} (403 Forbidden): the "
                            "namespace must be yours or an organization where your token has write access") from e
        raise PushError(f"pushing to {repo_id} at {endpoint} failed: {e}") from e
    logger.info("pushed %s to %s (commit %s)", checkpoint_dir, info.commit_url, info.oid)
    return info


def _upload_content(name: str, path: Path, repo_id: str) -> Path | bytes:
    """The bytes to upload for one file: the card gets the real repo id in its snippets, the rest as is."""
    if name != CARD_FILENAME:
        return path
    return path.read_text(encoding="utf-8").replace(REPO_ID_PLACEHOLDER, repo_id).encode("utf-8")


@dataclass(frozen=True)
class HubTarget:
    """Where a training run pushes its result, from `--push_to_hub --hub_model_id ...`."""

    repo_id: str
    private: bool = False
    revision: str | None = None
    token: str | None = None

    def push(self, checkpoint_dir: str | Path, commit_message: str | None = None) -> CommitInfo:
        return push_checkpoint(checkpoint_dir, self.repo_id, private=self.private, revision=self.revision,
                               commit_message=commit_message, token=self.token)


def hub_target_from_training_args(args: Any) -> HubTarget | None:
    """Take `--push_to_hub` over from the Trainer; None when the run does not push.

    The Trainer's own push would upload every intermediate checkpoint with pickled optimizer states and its
    own card, so this turns `args.push_to_hub` off and returns the target for `HubTarget.push(output_dir)`
    once the model, tokenizer and card are saved. Call it before building the Trainer; a missing or invalid
    `--hub_model_id` raises here, before any training time is spent.
    """
    if not args.push_to_hub:
        return None
    if not args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id NAMESPACE/NAME (the repo to push to)")
    if not (args.do_train and args.do_eval):
        raise ValueError("--push_to_hub needs --do_train and --do_eval: the pushed model card reports the "
                         "evaluation of the trained model")
    try:
        validate_repo_id(args.hub_model_id)
    except HFValidationError as e:
        raise ValueError(f"--hub_model_id {args.hub_model_id!r} is not a repo id: use NAMESPACE/NAME ({e})") from e
    args.push_to_hub = False
    return HubTarget(args.hub_model_id, bool(args.hub_private_repo), args.hub_revision, args.hub_token)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.push", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="the directory a training run saved")
    parser.add_argument("--repo-id", required=True, help="NAMESPACE/NAME of the model repo")
    parser.add_argument("--private", action="store_true", help="create the repo private (if it is new)")
    parser.add_argument("--revision", help="branch to commit to, created from main if missing (default main)")
    parser.add_argument("--commit-message", help="default: 'Upload <checkpoint name> with openbert'")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the `hf auth login` one)")
    args = parser.parse_args(argv)
    try:
        info = push_checkpoint(args.checkpoint, args.repo_id, private=args.private, revision=args.revision,
                               commit_message=args.commit_message, token=args.token)
    except PushError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"commit_url": info.commit_url, "oid": info.oid}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
