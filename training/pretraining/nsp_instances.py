"""Next-sentence-prediction instances from tokenised documents, as in BERT's reference implementation.

A document is a list of sentences, each a list of token ids (no special tokens). Per document,
sentences are accumulated until a target length is reached; the chunk is cut at a random sentence
boundary into segment A and segment B; with probability `random_next_prob` B is replaced by a span of
sentences from another document (and the unused sentences of the chunk go back to the queue); finally
the longer segment is trimmed, one token at a time from a random end, until the pair fits.

Differences from the reference, on purpose:

* the short target length (probability `short_seq_prob`) is drawn for every chunk, not once per
  document, which is what the reference's comment intends ("10% of the time" per sequence);
* a chunk of a single sentence in a multi-sentence document (the document's tail, or one sentence that
  alone fills the target) is a random pair with probability `random_next_prob` only; otherwise it is
  paired with its neighbours (as B after the sentences before it; at the document start, as A before
  the sentences after it). The reference always makes such chunks random pairs, which tilts the labels
  towards "random": to 57% on documents of ~10 sentences and 75% on documents of ~5. Only one-sentence
  documents always give random pairs;
* a random B never comes from the same document (the reference gives up after 10 tries);
* the randomness of each document comes from its own generator, seeded by `(seed, pass, document)`, so
  the output does not depend on batching, worker count or the order documents are processed in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

Sentence = Sequence[int]
Document = Sequence[Sentence]

# Transformers' convention for `next_sentence_label`.
IS_NEXT = 0
IS_RANDOM = 1


@dataclass(frozen=True)
class NspInstance:
    """One sentence pair before special tokens: `[CLS] tokens_a [SEP] tokens_b [SEP]` once built."""

    tokens_a: list[int]
    tokens_b: list[int]
    is_random_next: bool


def document_rng(seed: int, pass_index: int, document_index: int) -> random.Random:
    """The generator for one document in one pass (see module docstring); stable across processes."""
    return random.Random(f"openbert-nsp/{seed}/{pass_index}/{document_index}")


def truncate_seq_pair(tokens_a: list[int], tokens_b: list[int], max_num_tokens: int,
                      rng: random.Random) -> tuple[list[int], list[int]]:
    """Trim the longer of A and B by one token at a time, from the front or back at random, until
    `len(a) + len(b) <= max_num_tokens`. Returns new lists; the inputs are left untouched."""
    # Count the cuts first and slice once: popping from the front of a list one token at a time is
    # quadratic, and documents of thousands of tokens are common.
    a_front = a_back = b_front = b_back = 0
    len_a, len_b = len(tokens_a), len(tokens_b)
    while len_a + len_b > max_num_tokens:
        if len_a > len_b:
            len_a -= 1
            if rng.random() < 0.5:
                a_front += 1
            else:
                a_back += 1
        else:
            len_b -= 1
            if rng.random() < 0.5:
                b_front += 1
            else:
                b_back += 1
    return (tokens_a[a_front:len(tokens_a) - a_back], tokens_b[b_front:len(tokens_b) - b_back])


def _random_other_index(rng: random.Random, num_documents: int, document_index: int) -> int:
    """A uniformly random index in `range(num_documents)` other than `document_index`."""
    other = rng.randrange(num_documents - 1)
    return other + 1 if other >= document_index else other


def create_instances_from_document(
    documents: Sequence[Document],
    document_index: int,
    *,
    max_num_tokens: int,
    rng: random.Random,
    short_seq_prob: float = 0.1,
    random_next_prob: float = 0.5,
    document: Document | None = None,
) -> list[NspInstance]:
    """All NSP instances of `documents[document_index]`; other documents only supply random B segments.

    `document` may pass that document's sentences when the caller holds them already (saves a lookup in
    a memory-mapped corpus).

    `max_num_tokens` is the room for A and B together (`max_seq_length - 3` for `[CLS]`, `[SEP]`,
    `[SEP]`). Sentences must be non-empty and there must be at least two documents. A one-sentence
    document has no boundary to cut at, so it always forms a random-next instance.
    """
    if max_num_tokens < 2:
        raise ValueError(f"max_num_tokens={max_num_tokens}: A and B need at least one token each.")
    if len(documents) < 2:
        raise ValueError("NSP needs at least two documents: random next segments come from another document.")
    if document is None:
        document = documents[document_index]
    instances: list[NspInstance] = []
    chunk: list[Sentence] = []
    chunk_length = 0
    target_length = _draw_target_length(rng, max_num_tokens, short_seq_prob)
    i = 0
    while i < len(document):
        chunk.append(document[i])
        chunk_length += len(document[i])
        if i == len(document) - 1 or chunk_length >= target_length:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            is_random_next = len(document) == 1 or rng.random() < random_next_prob
            tokens_a = [token for sentence in chunk[:a_end] for token in sentence]
            if is_random_next:
                tokens_b = _random_span(documents, document_index, target_length - len(tokens_a), rng)
                # The sentences after A were not used: give them back so that they start the next chunk.
                i -= len(chunk) - a_end
            elif len(chunk) >= 2:
                tokens_b = [token for sentence in chunk[a_end:] for token in sentence]
            else:
                tokens_a, tokens_b = _pair_with_neighbours(document, i, target_length)
            tokens_a, tokens_b = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            instances.append(NspInstance(tokens_a, tokens_b, is_random_next))
            chunk = []
            chunk_length = 0
            target_length = _draw_target_length(rng, max_num_tokens, short_seq_prob)
        i += 1
    return instances


def _pair_with_neighbours(document: Document, index: int, target_length: int) -> tuple[list[int], list[int]]:
    """A real (A, B) pair around the lone sentence `document[index]`: it is B after the sentences before
    it, or (at the start of the document) A before the sentences after it; the other side takes whole
    sentences until the pair reaches `target_length` tokens (at least one sentence)."""
    lone = list(document[index])
    neighbours = range(index - 1, -1, -1) if index > 0 else range(1, len(document))
    taken: list[int] = []
    length = len(lone)
    for j in neighbours:
        taken.append(j)
        length += len(document[j])
        if length >= target_length:
            break
    other = [token for k in sorted(taken) for token in document[k]]
    return (other, lone) if index > 0 else (lone, other)


def _draw_target_length(rng: random.Random, max_num_tokens: int, short_seq_prob: float) -> int:
    """`max_num_tokens`, or with probability `short_seq_prob` a uniform length in [2, max_num_tokens]:
    short pairs at pretraining reduce the mismatch with short fine-tuning inputs."""
    return rng.randint(2, max_num_tokens) if rng.random() < short_seq_prob else max_num_tokens


def _random_span(documents: Sequence[Document], document_index: int, target_length: int,
                 rng: random.Random) -> list[int]:
    """Consecutive sentences of another random document, from a random start, until `target_length`
    tokens are collected (at least one sentence, even when the target is already met)."""
    other = documents[_random_other_index(rng, len(documents), document_index)]
    start = rng.randint(0, len(other) - 1)
    tokens: list[int] = []
    for sentence in other[start:]:
        tokens.extend(sentence)
        if len(tokens) >= target_length:
            break
    return tokens
