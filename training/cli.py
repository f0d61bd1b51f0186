"""The `openbert` command: one entry point with a subcommand for every job.

    openbert tokenizer train ...        python -m tokenization.train ...
    openbert pretrain ...               python -m training.pretrain ...
    openbert finetune classification    python -m training.finetune_classification ...
    openbert finetune qa ...            python -m training.finetune_qa ...
    openbert evaluate classification    the fine-tuning entry point with --do_eval only
    openbert evaluate qa ...            (likewise for QA)
    openbert push ...                   python -m training.push ...
    openbert convert ...                python -m modeling.convert ...
    openbert quickstart ...             python -m training.quickstart ...

Each subcommand hands the rest of the command line to the module's own parser, so `--help` there
explains every option and the `python -m` forms keep working unchanged.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    summary: str
    extra_args: tuple[str, ...] = ()


COMMANDS: dict[tuple[str, ...], Command] = {
    ("tokenizer", "train"): Command("openbert.tokenization.train", "train a BERT WordPiece tokenizer on raw text"),
    ("pretrain",): Command("openbert.training.pretrain", "pretrain with masked-LM + next-sentence prediction"),
    ("finetune", "classification"): Command(
        "openbert.training.finetune_classification", "fine-tune for sequence classification (sentiment, GLUE)"),
    ("finetune", "qa"): Command("openbert.training.finetune_qa", "fine-tune for extractive question answering (SQuAD)"),
    ("evaluate", "classification"): Command(
        "openbert.training.finetune_classification", "evaluate a classifier on labelled data", ("--do_eval",)),
    ("evaluate", "qa"): Command(
        "openbert.training.finetune_qa", "evaluate a QA model on SQuAD-format data", ("--do_eval",)),
    ("push",): Command("openbert.training.push", "push a checkpoint (weights, code, tokenizer, card) to the Hub"),
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
            # A `--help` anywhere goes to the module's parser; the program name reads as the subcommand.
            sys.argv = [f"openbert {' '.join(words)}", *command.extra_args, *rest]
            result = importlib.import_module(command.module).main([*command.extra_args, *rest])
            if isinstance(result, int) and not isinstance(result, bool):
                raise SystemExit(result)
            return
    prefix = tuple(word for word in argv[:1] if any(word == words[0] for words in COMMANDS))
    if argv and argv[0] not in ("-h", "--help") and not prefix:
        print(f"openbert: unknown command {argv[0]!r}\n", file=sys.stderr)
        print(usage(), file=sys.stderr)
        raise SystemExit(2)
    print(usage(prefix))


if __name__ == "__main__":
    main()
