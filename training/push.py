"""`python -m training.push` of openbert 0.1, kept for one release: the command is now
`openbert push`."""

from openbert.training.cli import run_moved_module

if __name__ == "__main__":
    run_moved_module("training.push", ("push",))
