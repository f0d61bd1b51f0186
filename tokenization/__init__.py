"""openbert tokenization: BERT WordPiece tokenizers trained from raw text or loaded from a vocab.txt."""

from .corpus import iter_text_batches, read_text_files
from .trainer import train_tokenizer
from .wordpiece import (
    SPECIAL_TOKENS,
    build_bert_tokenizer,
    load_vocab_file,
    save_tokenizer,
    special_token_ids,
    tokenizer_from_vocab,
)

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
