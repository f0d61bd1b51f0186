"""The `openbert` command: one entry point with a subcommand for every job.

    openbert tokenizer train ...        python -m openbert.tokenization.train ...
    openbert pretrain ...               python -m openbert.training.pretraining ...
    openbert finetune classification    python -m openbert.training.classification ...
    openbert finetune qa ...            python -m openbert.training.qa ...
    openbert finetune embeddings ...    sentence embeddings (sentence-transformers bi-encoder)
    openbert finetune reranker ...      a cross-encoder re-ranker
    openbert finetune seq2seq ...       python -m openbert.training.seq2seq ...
    openbert evaluate classification    the fine-tuning command with --do_eval only
    openbert evaluate qa ...            (likewise for QA, embeddings, reranker)
    openbert search index ...           embed a folder of documents into an index saved next to the model
    openbert search query ...           the documents of an index that best match a query
    openbert push ...                   python -m openbert.training.hub.push ...
    openbert convert ...                python -m openbert.modeling.convert ...
    openbert quickstart ...             python -m openbert.training.quickstart ...

Each subcommand hands the rest of the command line to its module's `main`, whose parser follows the one
convention of `openbert.tokenization.command_line`; `openbert COMMAND --help` explains every option.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openbert.tokenization.command_line import OLD_NAMES_REMOVED_IN

from .errors import RunStopped

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    module: str
    summary: str
    extra_args: tuple[str, ...] = ()


COMMANDS: dict[tuple[str, ...], Command] = {
    ("tokenizer", "train"): Command("openbert.tokenization.train", "train a BERT WordPiece tokenizer on raw text"),
    ("pretrain",): Command("openbert.training.pretraining", "pretrain with masked-LM + next-sentence prediction"),
    ("finetune", "classification"): Command(
        "openbert.training.classification", "fine-tune for sequence classification (sentiment, GLUE)"),
    ("finetune", "qa"): Command("openbert.training.qa", "fine-tune for extractive question answering (SQuAD)"),
    ("finetune", "embeddings"): Command(
        "openbert.training.search.embeddings", "train sentence embeddings (pairs, triplets, scored pairs)"),
    ("finetune", "reranker"): Command(
        "openbert.training.search.reranker", "train a cross-encoder that re-ranks a retriever's top documents"),
    ("finetune", "seq2seq"): Command(
        "openbert.training.seq2seq", "fine-tune a BERT2BERT encoder-decoder (question generation, translation)"),
    ("evaluate", "classification"): Command(
        "openbert.training.classification", "evaluate a classifier on labelled data", ("--do_eval",)),
    ("evaluate", "qa"): Command("openbert.training.qa", "evaluate a QA model on SQuAD-format data", ("--do_eval",)),
    ("evaluate", "embeddings"): Command(
        "openbert.training.search.embeddings", "evaluate embeddings on similarity or retrieval", ("--do_eval",)),
    ("evaluate", "reranker"): Command(
        "openbert.training.search.reranker", "evaluate a re-ranker on a retriever's top documents", ("--do_eval",)),
    ("search", "index"): Command("openbert.training.search.index", "embed documents into a search index"),
    ("search", "query"): Command("openbert.training.search.query", "search an index (optionally re-ranked)"),
    ("push",): Command("openbert.training.hub.push", "push a checkpoint (weights, code, tokenizer, card) to the Hub"),
    ("convert",): Command("openbert.modeling.convert", "convert checkpoints between openbert and transformers' BERT"),
    ("quickstart",): Command("openbert.training.quickstart", "run the main job end to end on built-in data"),
}


def usage(prefix: tuple[str, ...] = ()) -> str:
    lines = [f"usage: openbert {' '.join(prefix) + ' ' if prefix else ''}COMMAND [OPTIONS]", "", "commands:"]
    for words, command in COMMANDS.items():
        if words[: len(prefix)] == prefix:
            lines.append(f"  {' '.join(words):<26} {command.summary}")
    lines += ["", "`openbert COMMAND --help` explains each command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    for words, command in COMMANDS.items():
        if tuple(argv[: len(words)]) == words:
            rest = argv[len(words):]
            module = importlib.import_module(command.module)
            result = run_reporting_errors(" ".join(words), module.main, [*command.extra_args, *rest])
            if isinstance(result, int) and not isinstance(result, bool):
                raise SystemExit(result)
            return
    prefix = tuple(word for word in argv[:1] if any(word == words[0] for words in COMMANDS))
    if argv[len(prefix):] in (["-h"], ["--help"]):
        print(usage(prefix))
        return
    # No command, an unknown one, or a group without its subcommand (`openbert finetune`): nothing ran.
    if not argv:
        problem = "openbert: name a command"
    elif not prefix:
        problem = f"openbert: unknown command {argv[0]!r}"
    elif argv[1:]:
        problem = f"openbert {prefix[0]}: unknown subcommand {argv[1]!r}"
    else:
        problem = f"openbert {prefix[0]}: name the subcommand"
    print(f"{problem}\n\n{usage(prefix)}", file=sys.stderr)
    raise SystemExit(2)


def run_reporting_errors(command: str, main: Callable[..., Any], argv: list[str]) -> Any:
    """`main(argv, command=command)`, its failures reported as one line on stderr and an exit status: 2 for bad
    input or options (what `ValueError` and `OSError` say: which file, line or option, and the fix), 1 for a run
    that stopped (`RunStopped`: divergence, a busy or full output directory, a failed push), 130 for Ctrl-C.
    Other exceptions are bugs and keep their traceback; `--log_level debug` shows the traceback of all."""
    try:
        return main(argv, command=command)
    except KeyboardInterrupt:
        print(f"openbert {command}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except (RunStopped, ValueError, OSError) as error:
        logger.debug("openbert %s failed", command, exc_info=True)
        print(f"openbert {command}: error: {error}", file=sys.stderr)
        raise SystemExit(1 if isinstance(error, RunStopped) else 2) from None


def run_moved_module(old_module: str, words: tuple[str, ...]) -> None:
    """`python -m <old_module>` of openbert 0.1: say where the command went, then run it with the same options."""
    warnings.warn(f"`python -m {old_module}` is deprecated and stops working in openbert {OLD_NAMES_REMOVED_IN}: "
                  f"use `openbert {' '.join(words)}`", FutureWarning, stacklevel=2)
    main([*words, *sys.argv[1:]])


if __name__ == "__main__":
    main()
