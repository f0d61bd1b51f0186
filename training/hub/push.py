"""Push a trained openbert checkpoint to the Hugging Face Hub, in one commit.

    openbert push --model_name_or_path DIR --hub_model_id NAMESPACE/NAME [--hub_private_repo] [--hub_revision BRANCH]
        [--commit_message TEXT] [--hub_token TOKEN]

What goes up is what a user of the model needs and nothing else: the safetensors weights (never pickles), the
config with its `auto_map` and the modeling code it names (so `trust_remote_code=True` loads it anywhere), the
tokenizer files, the model card (README.md, with the repo id filled into its snippets), the run's curves
(*.png) and results (*results.json), and for a sentence-transformers model its modules (`modules.json`, their
configs and folders). Optimizer states, trainer state and intermediate checkpoints stay home.
Files already on the Hub with the same content are not sent again, and a push that changes nothing creates
no commit. The local checkpoint is only read, whatever happens.

The Hub is `HF_ENDPOINT` (default https://huggingface.co); the token comes from `--hub_token`, `HF_TOKEN` or
`hf auth login`. Training runs take `--push_to_hub --hub_model_id NAMESPACE/NAME` the same way: the run skeleton
(`training/job.py`) gets its `HubTarget` before any compute and pushes once the model, tokenizer and card are saved.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
from openbert.tokenization.command_line import parse_command_line

from ..errors import RunStopped

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt")
# A sentence-transformers model's pipeline: its modules in order, the model-level config (prompts, similarity) and
# the transformer module's (maximum length); the other modules' folders (pooling, dense, ...) go up whole.
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_*_config.json")
# Top-level file patterns that are pushed; everything else in a checkpoint directory stays local.
PUSHED_PATTERNS = ("config.json", "*.safetensors", "model.safetensors.index.json", "*.py", *TOKENIZER_FILES,
                   CARD_FILENAME, "*.png", "*results.json", *SENTENCE_TRANSFORMERS_FILES)
# Pickled files are never pushed (loading one runs arbitrary code), not even inside a module folder.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")


class PushError(RunStopped):
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
    files.update(_module_folder_files(directory))
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
                        "openbert.hub_cards.write_model_card(dir, ...) first")
    return files


def _module_folder_files(directory: Path) -> dict[str, Path]:
    """The files of the module folders a sentence-transformers `modules.json` names (none without one)."""
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        return {}
    folders = [directory / module["path"] for module in json.loads(modules_file.read_text()) if module.get("path")]
    return {path.relative_to(directory).as_posix(): path for folder in folders if folder.is_dir()
            for path in sorted(folder.rglob("*")) if path.is_file() and path.suffix not in PICKLE_SUFFIXES}


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
    user, repo_id = writable_repo(api, repo_id)  # fails fast, before any upload
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        operations = [CommitOperationAdd(name, _upload_content(name, path, repo_id)) for name, path in files.items()]
        info = api.create_commit(
            repo_id, operations, revision=branch,
            commit_message=commit_message or f"Upload {Path(checkpoint_dir).resolve().name} with openbert",
        )
    except (LocalTokenNotFoundError, httpx2.TransportError, ConnectionError, HfHubHTTPError) as e:
        raise _explained(e, repo_id, endpoint, user, branch) from e
    logger.info("pushed %s to %s (commit %s)", checkpoint_dir, info.commit_url, info.oid)
    return info


def writable_repo(api: HfApi, repo_id: str) -> tuple[str, str]:
    """(the token's user, `repo_id` with its namespace): a bare NAME is the user's NAME, resolved once so that the
    repo created and the repo committed to are the same. Raises `PushError` for a token the Hub rejects (or none),
    an unreachable Hub, a read-only token, or a namespace that is neither the user's nor one of their orgs'."""
    try:
        me = api.whoami()
    except (LocalTokenNotFoundError, httpx2.TransportError, HfHubHTTPError) as e:
        raise _explained(e, repo_id, api.endpoint, "the token's user", constants.DEFAULT_REVISION) from e
    user = me["name"]
    full_id = repo_id if "/" in repo_id else f"{user}/{repo_id}"
    namespace = full_id.split("/")[0]
    orgs = [org.get("name") for org in me.get("orgs") or []]
    if namespace != user and namespace not in orgs:
        raise PushError(f"{user} may not create or write to {full_id} at {api.endpoint}: the namespace {namespace!r} "
                        f"is neither the token's user nor one of its organizations ({', '.join(orgs) or 'none'})")
    if (me.get("auth", {}).get("accessToken") or {}).get("role") == "read":
        raise PushError(f"the token of {user} is read-only: pushing to {full_id} needs a token with write access "
                        "(--hub_token, HF_TOKEN or `hf auth login`)")
    return user, full_id


def _explained(error: Exception, repo_id: str, endpoint: str, user: str, branch: str) -> PushError:
    """The cause of a failed push, and its fix."""
    if isinstance(error, LocalTokenNotFoundError):
        return PushError("no Hugging Face token: pass --hub_token, set HF_TOKEN, or run `hf auth login`")
    if isinstance(error, httpx2.TransportError):
        return PushError(f"cannot reach the Hub at {endpoint} ({type(error).__name__}: {error}); check the network "
                         "connection and HF_ENDPOINT")
    if isinstance(error, ConnectionError):  # what hf_xet raises when its upload fails
        return PushError(f"uploading to {repo_id} at {endpoint} failed: {error}")
    if isinstance(error, RepositoryNotFoundError):
        return PushError(f"repository {repo_id} was not found at {endpoint} and could not be created by {user}: "
                         "check the namespace and that your token may write to it")
    if isinstance(error, RevisionNotFoundError):
        return PushError(f"branch {branch!r} of {repo_id} was not found at {endpoint}")
    status = error.response.status_code if error.response is not None else None
    if status == 401:
        return PushError(f"the Hub at {endpoint} rejected the token (401 Unauthorized): pass a valid token with "
                         "write access (--hub_token, HF_TOKEN or `hf auth login`)")
    if status == 403:
        return PushError(f"{user} may not create or write to {repo_id} at {endpoint} (403 Forbidden): the namespace "
                         "must be yours or an organization where your token has write access")
    return PushError(f"pushing to {repo_id} at {endpoint} failed: {error}")


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
    token: str | None = field(default=None, repr=False)  # in memory only: never logged, never written

    def push(self, checkpoint_dir: str | Path, commit_message: str | None = None) -> CommitInfo:
        return push_checkpoint(checkpoint_dir, self.repo_id, private=self.private, revision=self.revision,
                               commit_message=commit_message, token=self.token)

    def checked(self) -> HubTarget:
        """This target with its repo id in full (NAMESPACE/NAME), once the Hub confirmed that the token may write
        there: a run checks this before training, instead of failing at the push an hour later."""
        _, repo_id = writable_repo(HfApi(token=self.token), self.repo_id)
        return replace(self, repo_id=repo_id)


def hub_target_from_training_args(args: Any) -> HubTarget | None:
    """Where `--push_to_hub --hub_model_id ...` asks a run to push; None when it does not push.

    Called before any training time is spent, so that a missing or invalid `--hub_model_id` fails at once. The
    run pushes with `HubTarget.push(output_dir)` once the model, tokenizer and card are saved, instead of the
    Trainer, whose own push would upload every intermediate checkpoint with pickled optimizer states.
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
    return HubTarget(args.hub_model_id, bool(args.hub_private_repo), args.hub_revision, args.hub_token)


@dataclass
class PushArguments:
    model_name_or_path: str = field(metadata={"help": "The checkpoint folder to push (what a training run saved)."})
    hub_model_id: str = field(metadata={"help": "NAMESPACE/NAME of the model repo."})
    hub_private_repo: bool = field(default=False, metadata={"help": "Create the repo private (when it is new)."})
    hub_revision: str | None = field(default=None, metadata={
        "help": "Branch to commit to, created from main when missing (default: main)."})
    commit_message: str | None = field(default=None, metadata={
        "help": "Default: 'Upload <checkpoint folder name> with openbert'."})
    hub_token: str | None = field(default=None, metadata={
        "help": "Hub token (default: HF_TOKEN or `hf auth login`'s)."})


ARGUMENTS = (PushArguments,)
# Option names of openbert 0.1 (argparse), still accepted with a warning.
RENAMED_OPTIONS = {"checkpoint": "model_name_or_path", "repo_id": "hub_model_id", "private": "hub_private_repo",
                   "revision": "hub_revision", "token": "hub_token"}


def main(argv: Sequence[str] | None = None, command: str = "push") -> int:
    """`openbert push`: print the commit as JSON; exit status 1 with the reason when the push fails."""
    (args,) = parse_command_line(command, ARGUMENTS, argv, renamed=RENAMED_OPTIONS,
                                 description=__doc__)
    try:
        info = push_checkpoint(args.model_name_or_path, args.hub_model_id, private=args.hub_private_repo,
                               revision=args.hub_revision, commit_message=args.commit_message, token=args.hub_token)
    except PushError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"commit_url": info.commit_url, "oid": info.oid}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
