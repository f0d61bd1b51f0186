"""BERT's WordPiece tokenizer as a stock transformers `BertTokenizer`, built from a vocabulary.

One construction path serves both a freshly trained vocabulary and an existing BERT `vocab.txt`, so a
trained tokenizer and, say, bert-base-uncased's behave identically apart from their vocabularies. The
pipeline is BERT's: `BertNormalizer` (clean text, CJK characters split out, optional lowercasing and accent
stripping), `BertPreTokenizer` (whitespace + punctuation), WordPiece with `##` continuations and words of
more than 100 characters mapped to `[UNK]`, the `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` template with
token_type_ids 0/1, and the WordPiece decoder.

Because the class is transformers' own `BertTokenizer`, `AutoTokenizer.from_pretrained(dir)` loads a saved
tokenizer without `trust_remote_code`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from transformers import BertTokenizer, PreTrainedTokenizerBase

# BERT's special tokens, keyed by their transformers attribute names. A trained vocabulary puts them at
# ids 0..4 in this order; a loaded vocab.txt keeps its own ids (bert-base-uncased: 0, 100, 101, 102, 103).
SPECIAL_TOKENS: dict[str, str] = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
CONTINUING_SUBWORD_PREFIX = "##"
VOCAB_FILE_NAME = "vocab.txt"


def load_vocab_file(vocab_file: str | os.PathLike) -> dict[str, int]:
    """Read a BERT `vocab.txt` (one token per line, id = line index) into `{token: id}`.

    Only the line terminator is stripped, as BERT does: a token may contain other whitespace. `vocab_file`
    may also be a directory holding `vocab.txt`. Raises `FileNotFoundError` for a missing file and
    `ValueError` for a token listed twice (its ids would be ambiguous).
    """
    path = Path(vocab_file)
    if path.is_dir():
        path = path / VOCAB_FILE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file {path} not found; pass a BERT vocab.txt or its directory")
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            token = line.rstrip("\n")
            if token in vocab:
                raise ValueError(
                    f"{path}: token {token!r} appears on line {vocab[token] + 1} and again on line {index + 1}; "
                    "each token must be listed once"
                )
            vocab[token] = index
    return vocab


def build_bert_tokenizer(
    vocab: Mapping[str, int],
    *,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    model_max_length: int = 512,
) -> BertTokenizer:
    """Make BERT's WordPiece tokenizer over `vocab` (`{token: id}` with ids 0..len-1).

    `strip_accents=None` follows `lowercase`, as in the original BERT. `model_max_length` is the longest
    sequence the model accepts (its `max_position_embeddings`); `truncation=True` cuts to it.
    """
    _validate_vocab(vocab, source="the vocabulary")
    if not isinstance(model_max_length, int) or model_max_length < 1:
        raise ValueError(
            f"model_max_length must be a positive int (the model's max_position_embeddings), got {model_max_length!r}"
        )
    return BertTokenizer(
        vocab=dict(vocab),
        do_lower_case=lowercase,
        strip_accents=strip_accents,
        tokenize_chinese_chars=True,
        model_max_length=model_max_length,
        **SPECIAL_TOKENS,
    )


def tokenizer_from_vocab(
    vocab_file: str | os.PathLike,
    *,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    model_max_length: int = 512,
) -> BertTokenizer:
    """Load an existing BERT `vocab.txt` (or a directory holding one) as a tokenizer.

    The result encodes exactly like transformers' `BertTokenizer` built from the same file with the same
    casing options. See `build_bert_tokenizer` for the arguments.
    """
    return build_bert_tokenizer(
        load_vocab_file(vocab_file),
        lowercase=lowercase,
        strip_accents=strip_accents,
        model_max_length=model_max_length,
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, output_dir: str | os.PathLike) -> list[Path]:
    """Save `tokenizer` to `output_dir` and return the files written.

    Writes transformers' `tokenizer.json` and `tokenizer_config.json` (class `BertTokenizer`, so
    `AutoTokenizer.from_pretrained(output_dir)` needs no remote code) plus BERT's `vocab.txt` for tools that
    read it. Raises `TypeError` for a tokenizer that is not WordPiece-based.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(backend.model).__name__ != "WordPiece":
        raise TypeError(f"save_tokenizer needs a WordPiece (BERT) tokenizer, got {type(tokenizer).__name__}")
    vocab = backend.get_vocab(with_added_tokens=False)
    _validate_vocab(vocab, source=f"{type(tokenizer).__name__}'s vocabulary")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [Path(path) for path in tokenizer.save_pretrained(output_dir)]
    vocab_path = output_dir / VOCAB_FILE_NAME
    tokens = sorted(vocab, key=vocab.__getitem__)
    vocab_path.write_text("".join(f"{token}\n" for token in tokens), encoding="utf-8")
    return [*written, vocab_path]


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The special-token ids a model config must agree with: `{"pad_token_id": ..., "mask_token_id": ...}`."""
    return {f"{name}_id": getattr(tokenizer, f"{name}_id") for name in SPECIAL_TOKENS}


def _validate_vocab(vocab: Mapping[str, int], *, source: str) -> None:
    """Check what BERT and `vocab.txt` need: every special token, ids 0..n-1, no line breaks in tokens."""
    missing = [token for token in SPECIAL_TOKENS.values() if token not in vocab]
    if missing:
        raise ValueError(
            f"{source} lacks the special token(s) {missing}; a BERT vocabulary needs all of "
            f"{list(SPECIAL_TOKENS.values())}"
        )
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(f"{source} must use each id 0..{len(vocab) - 1} exactly once (ids are vocab.txt lines)")
    broken = [token for token in vocab if "\n" in token or "\r" in token]
    if broken:
        raise ValueError(f"{source} has tokens containing line breaks, which vocab.txt cannot hold: {broken[:5]}")
