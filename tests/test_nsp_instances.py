"""NSP instance creation on hand-checkable documents.

Token ids encode where they come from: id = 10_000 * document + 100 * sentence + position, so every
token of an instance can be traced back to its document and sentence.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbert.training.pretraining.nsp_instances import (
    NspInstance,
    _pair_with_neighbours,
    create_instances_from_document,
    document_rng,
    truncate_seq_pair,
)


def make_documents(sentence_counts: list[int], sentence_length=lambda d, s: 3 + (d + s) % 5):
    """Documents of traceable tokens: `sentence_counts[d]` sentences in document d."""
    return [
        [[10_000 * d + 100 * s + p for p in range(sentence_length(d, s))] for s in range(count)]
        for d, count in enumerate(sentence_counts)
    ]


def origin(token: int) -> tuple[int, int, int]:
    return token // 10_000, token % 10_000 // 100, token % 100


def all_instances(documents, *, max_num_tokens=1000, seed=0, **options) -> list[tuple[int, NspInstance]]:
    out = []
    for index in range(len(documents)):
        for instance in create_instances_from_document(
            documents, index, max_num_tokens=max_num_tokens, rng=document_rng(seed, 0, index), **options
        ):
            out.append((index, instance))
    return out


def whole_sentence_run(tokens: list[int], documents) -> tuple[int, int, int]:
    """(document, first sentence, last sentence) when `tokens` is exactly consecutive whole sentences of
    one document; fails the test otherwise."""
    doc, first, position = origin(tokens[0])
    assert position == 0, "segment does not start at a sentence boundary"
    expected = [t for s in documents[doc][first:] for t in s][: len(tokens)]
    assert tokens == expected, "segment is not a run of consecutive sentences"
    last = origin(tokens[-1])[1]
    assert origin(tokens[-1])[2] == len(documents[doc][last]) - 1, "segment does not end at a sentence boundary"
    return doc, first, last


def test_segments_are_whole_consecutive_sentences_and_labels_are_right():
    """With room for every chunk (no truncation), A and B are runs of whole sentences, B continues A
    when it is the real next segment, and a random B comes from another document."""
    documents = make_documents([12, 7, 9, 15, 4, 10])
    instances = all_instances(documents, max_num_tokens=10_000, short_seq_prob=0.5)
    assert sum(i.is_random_next for _, i in instances) and sum(not i.is_random_next for _, i in instances)
    for doc, instance in instances:
        a_doc, _, a_last = whole_sentence_run(instance.tokens_a, documents)
        b_doc, b_first, _ = whole_sentence_run(instance.tokens_b, documents)
        assert a_doc == doc
        if instance.is_random_next:
            assert b_doc != doc, "a random next segment came from the same document"
        else:
            assert (b_doc, b_first) == (doc, a_last + 1), "B does not directly follow A"


def test_every_sentence_of_a_document_is_used_as_a_segment():
    """Unused sentences go back to the queue: with a huge target each chunk is the rest of the document,
    and every sentence still ends up in some A (or actual B)."""
    documents = make_documents([9, 8, 11, 6])
    for doc, count in enumerate([9, 8, 11, 6]):
        used = set()
        for instance in create_instances_from_document(documents, doc, max_num_tokens=10_000,
                                                       rng=document_rng(1, 0, doc)):
            used.update(origin(t)[1] for t in instance.tokens_a)
            if not instance.is_random_next:
                used.update(origin(t)[1] for t in instance.tokens_b)
        assert used == set(range(count))


def test_lengths_never_exceed_the_limit_even_with_long_sentences():
    documents = make_documents([5, 3, 6, 4], sentence_length=lambda d, s: 5 + 17 * ((d + s) % 4))
    for max_num_tokens in (2, 3, 7, 25, 61):
        for _, instance in all_instances(documents, max_num_tokens=max_num_tokens, short_seq_prob=0.3):
            assert len(instance.tokens_a) >= 1 and len(instance.tokens_b) >= 1
            assert len(instance.tokens_a) + len(instance.tokens_b) <= max_num_tokens


@pytest.mark.parametrize("sentence_counts", [
    [40 + (7 * d) % 41 for d in range(80)],  # long documents: many chunks each
    [2 + d % 6 for d in range(600)],  # short ones: most chunks are a document's tail
])
def test_label_balance_is_about_half_random(sentence_counts):
    """Every chunk of a multi-sentence document is a fair coin flip, its tail included (the reference
    forces a one-sentence tail to be random: 57% / 75% random on these two corpora)."""
    documents = make_documents(sentence_counts)
    labels = [instance.is_random_next for _, instance in all_instances(documents, max_num_tokens=30)]
    assert len(labels) > 1000
    assert abs(sum(labels) / len(labels) - 0.5) < 0.03


def test_only_one_sentence_documents_are_always_random():
    documents = make_documents([9, 1, 14, 3, 11, 1, 2])
    pairs = all_instances(documents, max_num_tokens=25, random_next_prob=0.0)
    assert {doc for doc, instance in pairs if instance.is_random_next} == {1, 5}
    assert all(i.is_random_next for _, i in all_instances(documents, max_num_tokens=25, random_next_prob=1.0))


def test_a_lone_sentence_is_paired_with_its_neighbours():
    """A one-sentence chunk of a longer document (its tail, or a sentence that alone fills the target) is
    B after the sentences before it, or, at the document start, A before the sentences after it."""
    document = make_documents([1, 6], sentence_length=lambda d, s: 4)[1]
    sentences = lambda tokens: sorted({origin(t)[1] for t in tokens})  # noqa: E731
    a, b = _pair_with_neighbours(document, 5, target_length=13)
    assert (sentences(a), sentences(b)) == ([2, 3, 4], [5])
    a, b = _pair_with_neighbours(document, 0, target_length=9)
    assert (sentences(a), sentences(b)) == ([0], [1, 2])
    a, b = _pair_with_neighbours(document, 3, target_length=2)  # at least one neighbour
    assert (sentences(a), sentences(b)) == ([2], [3])
    # Through the public function: the tail sentence 5 is paired as B (no random pairs at prob 0).
    documents = make_documents([1, 6], sentence_length=lambda d, s: 4)
    tails = [i for i in create_instances_from_document(documents, 1, max_num_tokens=8, rng=document_rng(0, 0, 1),
                                                       short_seq_prob=0.0, random_next_prob=0.0)
             if sentences(i.tokens_b) == [5]]
    assert tails and not any(i.is_random_next for i in tails)


def test_short_seq_prob_makes_shorter_pairs():
    documents = make_documents([40] * 30)
    def mean_length(prob):
        pairs = all_instances(documents, max_num_tokens=60, short_seq_prob=prob)
        return sum(len(i.tokens_a) + len(i.tokens_b) for _, i in pairs) / len(pairs)
    assert mean_length(1.0) < 0.75 * mean_length(0.0)


def test_single_sentence_documents_form_random_next_pairs():
    documents = make_documents([1, 5, 1, 4])
    for doc in (0, 2):
        instances = create_instances_from_document(documents, doc, max_num_tokens=100, rng=document_rng(0, 0, doc))
        assert len(instances) == 1
        assert instances[0].is_random_next and instances[0].tokens_a == documents[doc][0]
        assert origin(instances[0].tokens_b[0])[0] != doc


def test_deterministic_for_a_seed_and_different_across_seeds():
    documents = make_documents([8, 9, 10, 7, 12])
    first = all_instances(documents, max_num_tokens=30, seed=3)
    assert first == all_instances(documents, max_num_tokens=30, seed=3)
    assert first != all_instances(documents, max_num_tokens=30, seed=4)


def test_needs_two_documents_and_room_for_two_tokens():
    with pytest.raises(ValueError, match="two documents"):
        create_instances_from_document(make_documents([5]), 0, max_num_tokens=10, rng=random.Random(0))
    with pytest.raises(ValueError, match="max_num_tokens"):
        create_instances_from_document(make_documents([5, 5]), 0, max_num_tokens=1, rng=random.Random(0))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(2, 80), st.integers(0, 2**32 - 1))
def test_truncate_seq_pair_trims_the_longer_side_to_contiguous_slices(len_a, len_b, max_num_tokens, seed):
    a, b = list(range(len_a)), list(range(100, 100 + len_b))
    new_a, new_b = truncate_seq_pair(a, b, max_num_tokens, random.Random(seed))
    assert len(new_a) + len(new_b) == min(len_a + len_b, max_num_tokens)
    assert new_a and new_b
    # Contiguous slices of the originals.
    assert new_a == a[new_a[0]: new_a[0] + len(new_a)]
    assert new_b == b[new_b[0] - 100: new_b[0] - 100 + len(new_b)]
    # Only the longer side shrinks until the two are level, then they shrink in turn.
    if len_a + len_b > max_num_tokens:
        assert abs(len(new_a) - len(new_b)) <= max(1, abs(len_a - len_b) - (len_a + len_b - max_num_tokens))
