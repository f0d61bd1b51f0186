"""`openbert tokenizer train`: learn a BERT WordPiece vocabulary from raw text and save it for `AutoTokenizer`.

    openbert tokenizer train --train_files wiki.train.raw more.jsonl.gz --vocab_size 30522 --output_dir tok/
    openbert tokenizer train --dataset_name wikitext --dataset_config_name wikitext-103-raw-v1 --output_dir tok/
    openbert tokenizer train tokenizer.yaml            # every option in one JSON/YAML file

`python -m openbert.tokenization.train` is the same command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from .command_line import parse_command_line
from .data_files import load_named_dataset
from .wordpiece import special_token_ids
from .wordpiece_training import train_tokenizer

COMMAND = "tokenizer train"
# Option names of openbert 0.1 (argparse), still accepted with a warning.
RENAMED_OPTIONS = {"input": "train_files", "output": "output_dir", "no_progress": "disable_tqdm",
                   "no_strip_accents": "strip_accents=false"}


@dataclass
class CorpusArguments:
    """Where raw text comes from: local files, or a `datasets` dataset."""

    train_files: list[str] | None = field(default=None, metadata={
        "help": "Text to learn from: files, folders or glob patterns; plain text (.gz/.bz2/.xz too), JSON lines, "
                "JSON, CSV/TSV, Parquet or Arrow (the --text_column of each record)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "Instead of files: a folder written by Dataset.save_to_disk, or a Hub dataset (needs the network)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset_name to read."})
    text_column: str = field(default="text", metadata={
        "help": "Column holding the text in record files (JSON, CSV/TSV, Parquet, Arrow) and datasets."})


@dataclass
class TokenizerArguments:
    """The WordPiece vocabulary to learn (also the options of the tokenizer `openbert pretrain` trains)."""

    vocab_size: int = field(default=30522, metadata={
        "help": "Number of tokens, special ones included (BERT: 30522; a small corpus supports fewer)."})
    lowercase: bool = field(default=True, metadata={
        "help": "Lowercase the text; --no_lowercase for a cased model."})
    strip_accents: bool | None = field(default=None, metadata={
        "help": "Strip accents (default: the same as --lowercase, as in BERT).", "nargs": "?", "const": True})
    min_frequency: int = field(default=2, metadata={"help": "Pairs seen fewer times are never merged."})


@dataclass
class TokenizerOutputArguments:
    output_dir: str = field(metadata={"help": "Folder to save the tokenizer to."})
    model_max_length: int = field(default=512, metadata={
        "help": "Longest sequence the model accepts: its max_position_embeddings."})
    disable_tqdm: bool = field(default=False, metadata={"help": "Show no progress bars."})


ARGUMENTS = (CorpusArguments, TokenizerArguments, TokenizerOutputArguments)


def corpus_of(arguments: CorpusArguments):
    """The files, or the streamed dataset split, that `arguments` name."""
    if (arguments.train_files is None) == (arguments.dataset_name is None):
        raise ValueError("pass either --train_files FILE... or --dataset_name NAME")
    if arguments.train_files is not None:
        return arguments.train_files
    return load_named_dataset(arguments.dataset_name, arguments.dataset_config_name, split=arguments.train_split,
                              streaming=True)


def main(argv: Sequence[str] | None = None, command: str = COMMAND) -> None:
    """Parse `argv` (default: the command line), train, save, and print a one-line summary."""
    corpus, vocabulary, output = parse_command_line(command, ARGUMENTS, argv, renamed=RENAMED_OPTIONS,
                                                    description=__doc__)
    try:
        tokenizer = train_tokenizer(
            corpus_of(corpus), vocab_size=vocabulary.vocab_size, output_dir=output.output_dir,
            lowercase=vocabulary.lowercase, strip_accents=vocabulary.strip_accents,
            min_frequency=vocabulary.min_frequency, model_max_length=output.model_max_length,
            text_column=corpus.text_column, show_progress=not output.disable_tqdm,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"openbert {command}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    ids = ", ".join(f"{name}={value}" for name, value in special_token_ids(tokenizer).items())
    print(f"Saved a {len(tokenizer)}-token WordPiece tokenizer to {output.output_dir} ({ids})")


if __name__ == "__main__":
    main()
