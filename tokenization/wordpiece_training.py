"""Train a BERT WordPiece vocabulary from raw text.

The corpus is streamed twice. A cheap first pass collects its characters, which fixes the alphabet before
any merging: that makes the size check (alphabet + special tokens must fit in `vocab_size`) fail fast, and
makes training deterministic. tokenizers' WordPiece trainer creates the `##x` continuation tokens in
hash-map order, and their ids break ties between equally frequent merges, so the same corpus could give a
different vocabulary on each run (huggingface/tokenizers#1794). Handing the trainer every `##x` up front,
sorted, removes that randomness. The second pass is the trainer's own (normalize, pre-tokenize, count, merge).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator

from tokenizers import Tokenizer, trainers
from tokenizers.models import WordPiece
from transformers import BertTokenizer

from .data_files import Corpus, iter_text_batches
from .wordpiece import CONTINUING_SUBWORD_PREFIX, SPECIAL_TOKENS, build_bert_tokenizer, save_tokenizer


def train_tokenizer(
    corpus: Corpus, *, vocab_size: int = 30522, output_dir: str | os.PathLike | None = None, lowercase: bool = True,
    strip_accents: bool | None = None, min_frequency: int = 2, model_max_length: int = 512, text_column: str = "text",
    show_progress: bool = True,
) -> BertTokenizer:
    """Learn a WordPiece vocabulary of `vocab_size` tokens from `corpus` and return BERT's tokenizer over it.

    `corpus` is a path or list of paths (plain text, `.gz`, JSON lines with a `text_column` field) or a
    `datasets.Dataset` / `IterableDataset` with a `text_column` column; it is streamed in batches, twice
    (see the module docstring). The special tokens get ids `[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3,
    `[MASK]`=4. Text is normalized exactly as the returned tokenizer normalizes it (`lowercase`;
    `strip_accents=None` follows `lowercase`). Every character of the corpus gets a token, and so does its
    `##` continuation form when it can occur inside a word. Pairs seen fewer than `min_frequency` times are
    never merged. `model_max_length` should be the model's `max_position_embeddings`. With `output_dir`
    the tokenizer is also saved there (`save_tokenizer`). The same corpus always gives the same vocabulary.

    Raises `ValueError` when `vocab_size` cannot hold the alphabet plus the special tokens, when the corpus
    has no usable text, and for bad arguments. Warns when the corpus cannot fill `vocab_size` (the tokenizer
    is then smaller: size the model from `len(tokenizer)`).
    """
    _check_sizes(vocab_size, min_frequency)
    learner = _learner(lowercase, strip_accents, model_max_length)
    continuations = _continuations(learner, _corpus_characters(corpus, text_column, show_progress), vocab_size)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        # Listed after the special tokens, the sorted continuations get fixed ids 5, 6, ...
        special_tokens=[*SPECIAL_TOKENS.values(), *sorted(CONTINUING_SUBWORD_PREFIX + char for char in continuations)],
        continuing_subword_prefix=CONTINUING_SUBWORD_PREFIX,
        # Our own bar tracks reading (bytes or rows, with an ETA); the trainer's would fight it on stderr.
        show_progress=False,
    )
    batches = iter_text_batches(
        corpus, text_column=text_column, show_progress=show_progress, progress_desc="Counting words"
    )
    with warnings.catch_warnings():
        # Undecodable bytes were already counted and reported by the first pass.
        warnings.simplefilter("ignore", UnicodeWarning)
        learner.train_from_iterator(_announce_merges(batches, vocab_size) if show_progress else batches, trainer)

    vocab = learner.get_vocab(with_added_tokens=False)
    if len(vocab) < vocab_size:
        warnings.warn(
            f"the corpus supports only {len(vocab)} WordPiece tokens at min_frequency={min_frequency}, fewer "
            f"than vocab_size={vocab_size}; the tokenizer has {len(vocab)} tokens (size the model from "
            "len(tokenizer), or train on more text / lower min_frequency)",
            UserWarning,
            stacklevel=2,
        )
    tokenizer = build_bert_tokenizer(
        vocab, lowercase=lowercase, strip_accents=strip_accents, model_max_length=model_max_length
    )
    if output_dir is not None:
        save_tokenizer(tokenizer, output_dir)
    return tokenizer


def _check_sizes(vocab_size: int, min_frequency: int) -> None:
    if not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size must be an int larger than the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size!r}"
        )
    if not isinstance(min_frequency, int) or min_frequency < 0:
        raise ValueError(f"min_frequency must be a non-negative int, got {min_frequency!r}")


def _learner(lowercase: bool, strip_accents: bool | None, model_max_length: int) -> Tokenizer:
    """An empty WordPiece model behind the normalizer and pre-tokenizer of the tokenizer we will return, so the
    vocabulary is learnt on exactly the words it will later see.

    The special tokens are deliberately not registered as added tokens here: the trainer would then learn junk
    pieces ("[MAS", "##K]") from literal occurrences of them in the corpus.
    """
    specials = list(SPECIAL_TOKENS.values())
    pipeline = build_bert_tokenizer(
        dict(zip(specials, range(len(specials)), strict=True)),
        lowercase=lowercase,
        strip_accents=strip_accents,
        model_max_length=model_max_length,
    ).backend_tokenizer
    learner = Tokenizer(WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
    learner.normalizer = pipeline.normalizer
    learner.pre_tokenizer = pipeline.pre_tokenizer
    return learner


def _continuations(learner: Tokenizer, characters: set[str], vocab_size: int) -> set[str]:
    """The characters that can continue a word (each gets a `##` token); raises when the corpus has no usable
    text or when `vocab_size` cannot hold its alphabet."""
    alphabet, continuations = _alphabet(learner, characters)
    if not alphabet:
        raise ValueError(
            "the corpus has no text left after BERT normalization (it holds only control, zero-width or "
            "replacement characters)"
        )
    base_size = len(SPECIAL_TOKENS) + len(alphabet) + len(continuations)
    if vocab_size < base_size:
        raise ValueError(
            f"vocab_size={vocab_size} is too small for this corpus: its alphabet needs {len(alphabet)} "
            f"characters and {len(continuations)} '##' continuations, plus {len(SPECIAL_TOKENS)} special tokens; "
            f"use vocab_size >= {base_size} (BERT uses 30522)"
        )
    return continuations


def _corpus_characters(corpus: Corpus, text_column: str, show_progress: bool) -> set[str]:
    """Every distinct character of the raw corpus (first pass)."""
    characters: set[str] = set()
    batches = iter_text_batches(
        corpus, text_column=text_column, show_progress=show_progress, progress_desc="Scanning characters"
    )
    for batch in batches:
        for text in batch:
            characters.update(text)
    return characters


def _alphabet(pipeline: Tokenizer, characters: set[str]) -> tuple[set[str], set[str]]:
    """The characters the trainer will see in words, and those of them that can occur inside a word.

    BERT normalization acts on each character independently (lowercasing, accent stripping, control-character
    removal and CJK spacing are all per character), so normalizing the raw characters yields exactly the
    normalized alphabet. A character can continue a word unless the pipeline always splits it off on its
    own (whitespace, punctuation, CJK).
    """
    alphabet = {char for word in _words(pipeline, "".join(sorted(characters))) for char in word}
    # "x" + char stays one word exactly when char may follow a letter inside a word.
    continuations = {char for char in alphabet if _words(pipeline, "x" + char) == ["x" + char]}
    return alphabet, continuations


def _words(pipeline: Tokenizer, text: str) -> list[str]:
    """The words `pipeline` makes of `text`: normalized, then split by the pre-tokenizer."""
    return [word for word, _ in pipeline.pre_tokenizer.pre_tokenize_str(pipeline.normalizer.normalize_str(text))]


def _announce_merges(batches: Iterator[list[str]], vocab_size: int) -> Iterator[list[str]]:
    """Pass `batches` through, then say what happens next: merging runs after reading, with no bar of its own."""
    yield from batches
    print(f"Computing WordPiece merges up to {vocab_size} tokens...", file=sys.stderr, flush=True)
