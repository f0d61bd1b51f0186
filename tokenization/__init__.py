"""openbert tokenization: BERT WordPiece tokenizers trained from raw text or loaded from a vocab.txt, the one reader
of data files that every job shares, and the command-line convention of every openbert command."""

from .data_files import iter_text_batches, read_text_files
from .wordpiece import (
    SPECIAL_TOKENS,
    build_bert_tokenizer,
    load_vocab_file,
    save_tokenizer,
    special_token_ids,
    tokenizer_from_vocab,
)
from .wordpiece_training import train_tokenizer

__all__ = [
    "SPECIAL_TOKENS",
    "build_bert_tokenizer",
    "iter_text_batches",
    "load_vocab_file",
    "read_text_files",
    "save_tokenizer",
    "special_token_ids",
    "tokenizer_from_vocab",
    "train_tokenizer",
]
