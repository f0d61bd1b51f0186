"""Token-budget batching: batches of about the same number of real tokens instead of the same number of sequences.

With a fixed number of sequences, a batch of short pairs does a fraction of the work (and gets the same weight in
the update) as a batch of long ones, and its step leaves the device underused. `TokenBudgetBatchSampler` fills
each batch with sequences until the next one would exceed `max_tokens` real tokens, so every step processes
nearly the same amount of text; with packed batches (`DataCollatorForPreTraining(padding_free=True)`) that is
also exactly what the model computes, since there is no padding.

`BatchStatistics` says how well the budget is used and how much padding the same batches would carry if they
were padded to their longest sequence (the padding efficiency), which `openbert pretrain --max_tokens_per_batch`
logs when training starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler


@dataclass(frozen=True)
class BatchStatistics:
    """What a list of batches holds: `batches`, `real_tokens`, the positions they would take `padded` to each
    batch's longest sequence, and the `max_tokens` budget."""

    batches: int
    real_tokens: int
    padded: int
    max_tokens: int

    @property
    def budget_use(self) -> float:
        """Mean real tokens per batch over the budget."""
        return self.real_tokens / (self.batches * self.max_tokens)

    @property
    def padding_efficiency(self) -> float:
        """Real tokens over the positions of the padded batches (1.0 for packed ones)."""
        return self.real_tokens / self.padded

    def describe(self) -> str:
        mean = self.real_tokens / self.batches
        return (f"{self.batches} batches of at most {self.max_tokens} real tokens, {mean:,.0f} on average "
                f"({self.budget_use:.1%} of the budget); padding efficiency: {self.padding_efficiency:.1%} of the "
                "positions are real tokens when padded to each batch's longest, 100% when packed.")


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Batches of row indices holding at most `max_tokens` real tokens each (a `DataLoader`'s `batch_sampler`).

    Rows are taken in a random order drawn from (`seed`, epoch) (or in order, `shuffle=False`); a batch is closed
    when the next row would overflow the budget. The Trainer calls `set_epoch` so that every epoch is reshuffled,
    and a run resumed mid-epoch sees the same batches. With `num_replicas` processes, every process draws the same
    batches and takes every `num_replicas`-th one (after dropping the few that would leave processes unequal).

    Args:
        lengths: real tokens of each row.
        max_tokens: the budget per batch; every row must fit in it.
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int = 0, shuffle: bool = True,
                 num_replicas: int = 1, rank: int = 0):
        super().__init__()
        if max_tokens < 1:
            raise ValueError(f"max_tokens={max_tokens} must be a positive number of tokens.")
        if len(lengths) and max(lengths) > max_tokens:
            raise ValueError(f"a row has {max(lengths)} tokens, more than the budget of max_tokens={max_tokens} per "
                             "batch: raise the budget to at least the longest sequence (--max_seq_length).")
        self.lengths, self.max_tokens, self.seed, self.shuffle = list(lengths), max_tokens, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self._cached: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def all_batches(self) -> list[list[int]]:
        """This epoch's batches, of all processes."""
        if self._cached is not None and self._cached[0] == self.epoch:
            return self._cached[1]
        if self.shuffle:
            order = torch.randperm(len(self.lengths), generator=torch.Generator().manual_seed(self.seed + self.epoch))
            order = order.tolist()
        else:
            order = range(len(self.lengths))
        batches, current, tokens = [], [], 0
        for index in order:
            if current and tokens + self.lengths[index] > self.max_tokens:
                batches.append(current)
                current, tokens = [], 0
            current.append(index)
            tokens += self.lengths[index]
        if current:
            batches.append(current)
        self._cached = (self.epoch, batches)
        return batches

    def _own_batches(self) -> list[list[int]]:
        batches = self.all_batches()
        return batches[: len(batches) - len(batches) % self.num_replicas][self.rank:: self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._own_batches())

    def __len__(self) -> int:
        return len(self._own_batches())

    def statistics(self) -> BatchStatistics:
        """This epoch's batches (all processes'), counted."""
        batches = self.all_batches()
        real = sum(self.lengths[i] for batch in batches for i in batch)
        padded = sum(len(batch) * max(self.lengths[i] for i in batch) for batch in batches)
        return BatchStatistics(len(batches), real, padded, self.max_tokens)
