"""Why a run stopped, when it is not the user's input: the `openbert` command prints the message alone (no
traceback) and exits with status 1. Bad input (`ValueError`, `FileNotFoundError`, ...) exits with status 2."""

from __future__ import annotations


class RunStopped(RuntimeError):
    """A run stopped for a reason its message explains, with what was kept and what to do next."""


class TrainingDiverged(RunStopped):
    """A non-finite loss, gradient, weight or metric: the run stops before it spreads to a checkpoint or a card."""


class OutputDirInUse(RunStopped):
    """Another live run holds the output directory's lock."""


class OutOfSpace(RunStopped):
    """A save failed because the device holding the output directory is full."""
