"""Command line: train a BERT WordPiece tokenizer and save it for `AutoTokenizer.from_pretrained`.

python -m tokenization.train --input wiki.train.raw more.jsonl.gz --vocab-size 30522 --output tok/
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .trainer import train_tokenizer
from .wordpiece import special_token_ids


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tokenization.train",
        description="Train a BERT WordPiece vocabulary from raw text and save it as a transformers tokenizer.",
    )
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="PATH",
        help="text files (one text per line), .gz-compressed ones, or JSON lines (.jsonl) with a text field",
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="directory to save the tokenizer to")
    parser.add_argument("--vocab-size", type=int, default=30522, help="number of tokens (default: 30522)")
    parser.add_argument(
        "--lowercase", action=argparse.BooleanOptionalAction, default=True, help="lowercase text (default: yes)"
    )
    parser.add_argument(
        "--strip-accents",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="strip accents (default: same as --lowercase, as in BERT)",
    )
    parser.add_argument("--min-frequency", type=int, default=2, help="never merge pairs seen fewer times (default: 2)")
    parser.add_argument(
        "--model-max-length",
        type=int,
        default=512,
        help="longest sequence the model accepts: its max_position_embeddings (default: 512)",
    )
    parser.add_argument("--text-column", default="text", help="field holding the text in JSON lines")
    parser.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `argv` (default: the command line), train, save, and print a one-line summary."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        tokenizer = train_tokenizer(
            args.input,
            vocab_size=args.vocab_size,
            output_dir=args.output,
            lowercase=args.lowercase,
            strip_accents=args.strip_accents,
            min_frequency=args.min_frequency,
            model_max_length=args.model_max_length,
            text_column=args.text_column,
            show_progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    ids = ", ".join(f"{name}={value}" for name, value in special_token_ids(tokenizer).items())
    print(f"Saved a {len(tokenizer)}-token WordPiece tokenizer to {args.output} ({ids})")


if __name__ == "__main__":
    main()
