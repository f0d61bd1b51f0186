"""The output directory of a training run: who may write it, what a rerun does with what is there, and which of its
checkpoints can be resumed.

* A lock: one run at a time writes an output directory. The main process holds an exclusive `flock` on
  OUTPUT_DIR/.openbert-run.lock (which names its pid, host, start time and command) for the whole run; a second
  run fails at once naming the holder. The kernel drops the lock when the holder dies, so a killed run's lock is
  stale by construction: the next run takes it over and says so.
* Reruns behave as transformers' example scripts: training into a directory that holds checkpoints of an
  unfinished run resumes from the last complete one (logged); into a non-empty one without any, or one whose run
  finished, it stops and names --overwrite_output_dir (every command has a default OUTPUT_DIR, so running a
  command twice meets the first run's folder). `--resume_from_checkpoint PATH|last` picks a checkpoint explicitly
  (also to train a finished run on). --overwrite_output_dir starts from scratch and deletes the old checkpoint-N
  folders just before training starts (a later resume would pick them otherwise).
* A run is finished when OUTPUT_DIR/trainer_state.json exists: the run skeleton writes it after the final save
  and deletes a previous one when training starts, so a run killed on the way never leaves one.
* A checkpoint is complete when its trainer_state.json (the file `Trainer._save_checkpoint` writes last, after
  the model, optimizer, scheduler and RNG states) parses and names the folder's step, and its weights exist. A
  kill or a full disk during a save leaves no such file, so the folder is never picked, and a warning names it.
  (This marker needs no change to how the Trainer writes; `RunTrainer` only removes the marker of a folder it is
  about to write again, so a half-rewritten checkpoint is never mistaken for a complete one.)
* A save that fails for lack of space says so, naming the device's folder and the last complete checkpoint.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import torch
from transformers import TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .errors import OutOfSpace, OutputDirInUse, RunStopped

try:
    import fcntl
except ImportError:  # Windows: runs are not locked there
    fcntl = None

logger = logging.getLogger(__name__)

LOCK_NAME = ".openbert-run.lock"
CHECKPOINT_FOLDER = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
# What torch and safetensors say when a write fails on a full device (torch's C++ writer loses the errno).
OUT_OF_SPACE_MESSAGES = ("No space left on device", "StorageFull", "unexpected pos", "file write failed")
T = TypeVar("T")


@dataclass
class OpenBertTrainingArguments(TrainingArguments):
    """transformers' `TrainingArguments`, plus what transformers 5 dropped and its example scripts still offer."""

    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Train from scratch into a non-empty --output_dir; its old checkpoint-N folders are deleted when "
                "training starts. Without it, a run resumes from the last complete checkpoint of --output_dir, "
                "or stops when the folder holds files but no checkpoint."})
    compile_layers: bool = field(default=False, metadata={
        "help": "Compile the elementwise work of every openbert layer with torch.compile (model.compile_layers(): "
                "bias + GELU and dropout + residual + LayerNorm fuse around the matrix multiplications; attention "
                "stays eager, and batches of any length share one graph). Costs a one-off compile of tens of "
                "seconds on a CPU, at the first training steps and again at the first evaluation; whether it pays "
                "depends on the machine: measure with benchmarks/bench_compile.py --layers."})


def trainer_copy(args: TrainingArguments, **changes: Any) -> TrainingArguments:
    """A plain copy of `args` with `changes` (`args` is not changed): an instance of the first class it extends
    that is not openbert's (`TrainingArguments`, `Seq2SeqTrainingArguments`, sentence-transformers' own), because
    the Trainer pickles its arguments into every checkpoint (training_args.bin), which then loads without openbert."""
    plain = next(cls for cls in type(args).__mro__ if not cls.__module__.startswith("openbert."))
    values = {f.name: getattr(args, f.name) for f in fields(plain) if f.init}
    return plain(**{**values, **changes})


def overwrites(args: TrainingArguments) -> bool:
    return bool(getattr(args, "overwrite_output_dir", False))


# ---- checkpoints ------------------------------------------------------------------------------------------


def checkpoint_step(folder: Path) -> int | None:
    match = CHECKPOINT_FOLDER.match(folder.name)
    return int(match.group(1)) if match else None


def checkpoint_problem(folder: Path) -> str | None:
    """Why the checkpoint `folder` cannot be resumed from; None when it is complete."""
    state_file = folder / TRAINER_STATE_NAME
    if not state_file.is_file():
        return f"it has no {TRAINER_STATE_NAME}, which a save writes last: the save was interrupted"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"its {TRAINER_STATE_NAME} is cut short: the save was interrupted"
    step = checkpoint_step(folder)
    if step is not None and (not isinstance(state, dict) or state.get("global_step") != step):
        return f"its {TRAINER_STATE_NAME} does not describe step {step}"
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        return "it holds no model weights"
    return None


@dataclass
class Checkpoints:
    """The checkpoint-N folders of an output directory: the complete ones by step, the others with the reason."""

    complete: list[Path]
    incomplete: dict[Path, str]

    @property
    def last(self) -> Path | None:
        return self.complete[-1] if self.complete else None

    def warn_incomplete(self) -> None:
        for folder, problem in self.incomplete.items():
            logger.warning("Ignoring %s: %s. A run that reaches step %s writes it again.", folder, problem,
                           checkpoint_step(folder))


def find_checkpoints(output_dir: str | Path) -> Checkpoints:
    directory = Path(output_dir)
    folders = sorted((path for path in directory.iterdir() if path.is_dir() and checkpoint_step(path) is not None),
                     key=checkpoint_step) if directory.is_dir() else []
    problems = {folder: checkpoint_problem(folder) for folder in folders}
    return Checkpoints([f for f, problem in problems.items() if problem is None],
                       {f: problem for f, problem in problems.items() if problem is not None})


def resume_checkpoint(args: TrainingArguments) -> str | None:
    """The checkpoint a run resumes from: `--resume_from_checkpoint PATH|last`, else the last complete one of
    OUTPUT_DIR when its run is unfinished (unless --overwrite_output_dir). Raises for a missing or incomplete one,
    and for a non-empty OUTPUT_DIR with no checkpoint or a finished run, before anything is read or written."""
    wanted = args.resume_from_checkpoint
    if not args.do_train:
        if wanted is not None:
            raise ValueError(f"--resume_from_checkpoint {wanted} continues training and needs --do_train; to "
                             "evaluate a checkpoint, pass it as --model_name_or_path")
        return None
    if wanted is not None and str(wanted).lower() not in ("last", "true"):
        chosen = _explicit_checkpoint(Path(wanted))
    else:
        found = find_checkpoints(args.output_dir)
        found.warn_incomplete()
        chosen = _last_checkpoint(args, found) if wanted is not None else _rerun_checkpoint(args, found)
    if chosen is not None:
        logger.warning("Resuming from %s.", chosen)
    return str(chosen) if chosen is not None else None


def _last_checkpoint(args: TrainingArguments, found: Checkpoints) -> Path:
    """`--resume_from_checkpoint last`."""
    if found.last is None:
        raise ValueError(f"--resume_from_checkpoint {args.resume_from_checkpoint}: {args.output_dir} holds no "
                         f"complete {PREFIX_CHECKPOINT_DIR}-N folder{_incomplete_note(found)}")
    return found.last


def _rerun_checkpoint(args: TrainingArguments, found: Checkpoints) -> Path | None:
    """A run without --resume_from_checkpoint: what OUTPUT_DIR holds decides (see the module docstring)."""
    if overwrites(args):
        return None
    if found.last is not None and (Path(args.output_dir) / TRAINER_STATE_NAME).is_file():
        raise ValueError(f"--output_dir {args.output_dir} holds a finished run (its {TRAINER_STATE_NAME}; last "
                         f"checkpoint {found.last.name}): pass --overwrite_output_dir to train from scratch into it, "
                         "--resume_from_checkpoint last to train it on (with a larger --max_steps or "
                         "--num_train_epochs), or choose another --output_dir")
    if found.last is not None:
        logger.warning("%s holds the checkpoints of an unfinished run: training on from the last complete one (pass "
                       "--overwrite_output_dir to train from scratch instead).", args.output_dir)
        return found.last
    _refuse_leftovers(Path(args.output_dir), found)
    return None


def _explicit_checkpoint(folder: Path) -> Path:
    if not folder.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {folder}: no such folder; pass a checkpoint-N folder of "
                                "an earlier run, or 'last' for the last complete one in --output_dir")
    problem = checkpoint_problem(folder)
    if problem is not None:
        complete = find_checkpoints(folder.parent).last
        hint = f"; the last complete one beside it is {complete}" if complete else ""
        raise ValueError(f"--resume_from_checkpoint {folder}: cannot resume from it, {problem}{hint}")
    return folder


def _incomplete_note(found: Checkpoints) -> str:
    if not found.incomplete:
        return ""
    described = (f"{folder.name}, {problem}" for folder, problem in found.incomplete.items())
    return f" (incomplete: {'; '.join(described)})"


def _refuse_leftovers(output_dir: Path, found: Checkpoints) -> None:
    """A non-empty OUTPUT_DIR without a complete checkpoint: training into it would mix two runs' files."""
    leftovers = sorted(path.name for path in output_dir.iterdir() if path.name != LOCK_NAME) if output_dir.is_dir() \
        else []
    if leftovers:
        shown = ", ".join(leftovers[:5]) + (", ..." if len(leftovers) > 5 else "")
        raise ValueError(f"--output_dir {output_dir} is not empty ({shown}) and holds no complete checkpoint to "
                         f"resume from{_incomplete_note(found)}: pass --overwrite_output_dir to train from scratch "
                         "into it, or choose another --output_dir")


def clear_for_training(args: TrainingArguments, resume: str | None) -> None:
    """What a run that starts training removes from OUTPUT_DIR (main process, once every check passed): the
    finished-run record of an earlier run, and with --overwrite_output_dir (not resuming) the old checkpoints."""
    (Path(args.output_dir) / TRAINER_STATE_NAME).unlink(missing_ok=True)
    if resume is None and overwrites(args):
        remove_old_checkpoints(args.output_dir)


def remove_old_checkpoints(output_dir: str | Path) -> None:
    """Delete the checkpoint-N folders a run started with --overwrite_output_dir replaces."""
    found = find_checkpoints(output_dir)
    for folder in [*found.complete, *found.incomplete]:
        logger.warning("--overwrite_output_dir: deleting %s of the previous run", folder)
        shutil.rmtree(folder)


# ---- the lock ---------------------------------------------------------------------------------------------


class OutputDirLock:
    """An exclusive lock on an output directory for one run (see the module docstring)."""

    def __init__(self, output_dir: str | Path) -> None:
        self.path = Path(output_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise OutputDirInUse(f"{self.path.parent} is in use by another run ({holder}): wait for it to end "
                                     "(or stop it), or pass another --output_dir") from None
            # The holder before us removes the file when it ends: a lock taken on the removed file is no lock.
            if os.path.exists(self.path) and os.path.samestat(os.fstat(fd), os.stat(self.path)):
                break
            os.close(fd)
        previous = _holder(fd)
        if previous:
            logger.warning("%s was left by a run that ended without releasing it (%s); that run is not running any "
                           "more, so this one takes over the folder.", self.path, previous)
        _write_holder(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked, so no other run can lock this file meanwhile
        finally:
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str:
    """Who holds (or held) the lock, as the lock file says: 'pid 12, host h, started 2026-12-01T10:00:00: cmd'."""
    raw = os.pread(fd, 65536, 0)
    try:
        info = json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError:
        info = None
    if not isinstance(info, dict):
        return "unknown holder" if raw.strip() else ""
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: {info.get('command')}"


def _write_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:500]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


# ---- the run's claim on its output directory ------------------------------------------------------------------


def on_main_process(args: TrainingArguments, work: Callable[[], T]) -> T:
    """`work()` run by the main process only, its result (or failure) shared with every process: a failure there
    must not leave the others waiting at their first collective call. Results must pickle."""
    if args.world_size <= 1 or not torch.distributed.is_initialized():
        return work()
    outcome: list[Any] = [None, None]
    error: BaseException | None = None
    if args.process_index == 0:
        try:
            outcome[0] = work()
        except Exception as failure:  # shared below, then raised on every process
            error, outcome[1] = failure, str(failure)
    torch.distributed.broadcast_object_list(outcome, src=0)
    if error is not None:
        raise error
    if outcome[1] is not None:
        raise RunStopped(f"the main process stopped the run: {outcome[1]}")
    return outcome[0]


@contextmanager
def claimed_output_dir(args: TrainingArguments, claim: Callable[[], T]) -> Iterator[T]:
    """Lock OUTPUT_DIR for the run (main process), then run `claim()` there (resume decision, checks); every process
    gets its result. The lock is released when the block ends, however it ends."""
    lock = OutputDirLock(args.output_dir) if args.process_index == 0 else None

    def lock_and_claim() -> T:
        lock.acquire()
        try:
            return claim()
        except BaseException:
            lock.release()
            raise

    result = on_main_process(args, lock_and_claim if lock is not None else claim)
    try:
        yield result
    finally:
        if lock is not None:
            lock.release()


# ---- full devices -----------------------------------------------------------------------------------------


def is_out_of_space(error: BaseException) -> bool:
    """Whether `error` (or one it came from) is a write that failed because the device is full."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(message in str(seen) for message in OUT_OF_SPACE_MESSAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def explained_save_errors(output_dir: str | Path) -> Iterator[None]:
    """Turn a save that failed on a full device into `OutOfSpace`, naming the last complete checkpoint."""
    try:
        yield
    except Exception as error:
        if not is_out_of_space(error):
            raise
        directory = Path(output_dir)
        existing = next(parent for parent in [directory, *directory.parents] if parent.exists())
        free = shutil.disk_usage(existing).free
        last = find_checkpoints(directory).last
        kept = (f"The last complete checkpoint, {last}, is intact: free some space, then run the same command again "
                "to resume from it." if last else "No complete checkpoint was saved: free some space and run the "
                "command again.")
        raise OutOfSpace(f"no space left on the device holding {directory} ({free / 1e6:.0f} MB free): a save "
                         f"failed ({type(error).__name__}: {str(error).splitlines()[0][:200]}). {kept}") from error
