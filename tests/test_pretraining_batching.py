"""Token-budget batching (`TokenBudgetBatchSampler`): budgets respected, every row once per epoch, epochs
reshuffled, processes given disjoint batches, and the padding efficiency counted right."""

from __future__ import annotations

import random

import pytest

from openbert.training.pretraining.batching import TokenBudgetBatchSampler

LENGTHS = [random.Random(0).randint(8, 128) for _ in range(500)]


@pytest.mark.parametrize("max_tokens", [128, 1000, 4096])
def test_batches_respect_the_budget_and_cover_every_row_once(max_tokens):
    sampler = TokenBudgetBatchSampler(LENGTHS, max_tokens, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(len(LENGTHS)))
    totals = [sum(LENGTHS[i] for i in batch) for batch in batches]
    assert max(totals) <= max_tokens
    # Greedy filling: a batch was closed only because the next row did not fit.
    for batch, following in zip(batches, batches[1:], strict=False):
        assert sum(LENGTHS[i] for i in batch) + LENGTHS[following[0]] > max_tokens
    statistics = sampler.statistics()
    assert statistics.real_tokens == sum(LENGTHS) and statistics.batches == len(batches)
    padded = sum(len(batch) * max(LENGTHS[i] for i in batch) for batch in batches)
    assert statistics.padding_efficiency == pytest.approx(sum(LENGTHS) / padded)
    assert statistics.budget_use == pytest.approx(sum(totals) / (len(batches) * max_tokens))
    assert f"{statistics.padding_efficiency:.1%}" in statistics.describe()


def test_epochs_reshuffle_reproducibly_and_processes_share_the_batches():
    sampler = TokenBudgetBatchSampler(LENGTHS, 1000, seed=3)
    first = list(sampler)
    assert list(TokenBudgetBatchSampler(LENGTHS, 1000, seed=3)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    shards = [list(TokenBudgetBatchSampler(LENGTHS, 1000, seed=3, num_replicas=3, rank=rank)) for rank in range(3)]
    assert len({len(shard) for shard in shards}) == 1
    assert [batch for step in zip(*shards, strict=True) for batch in step] == first[: 3 * len(shards[0])]


def test_a_row_longer_than_the_budget_is_refused():
    with pytest.raises(ValueError, match="raise the budget"):
        TokenBudgetBatchSampler([10, 200], 128)
