"""Batches for MLM + NSP pretraining: padding plus dynamic masking, drawn anew for every batch.

`DataCollatorForPreTraining` takes rows of `input_ids`, `token_type_ids`, `next_sentence_label` (as
`openbert.training.pretraining.data` makes them) and returns the tensors `OpenBertForPreTraining` (or
transformers' `BertForPreTraining`) takes: `input_ids`, `attention_mask`, `token_type_ids`, `labels`
(-100 where no prediction is asked) and `next_sentence_label`.

Masking follows BERT: each maskable token is selected with probability `mlm_probability`; a selected
token becomes `[MASK]` with probability `mask_replace_prob`, a random token with probability
`random_replace_prob`, and stays as it is otherwise. Special tokens (`[CLS]`, `[SEP]`, `[PAD]`, ...)
and padding are never selected; `[UNK]` is, since it stands for real text. With `whole_word_mask`,
whole words are selected (a WordPiece token starting with `##` belongs to the word before it).

Randomness: with `seed` set (what `openbert pretrain` does), each batch's masks come from a generator
seeded by the seed, the epoch (`MaskingEpochCallback` keeps it current) and the batch's tokens. Masks
are then a function of the data order alone, so a run resumed from a checkpoint draws exactly the
masks of an uninterrupted run; torch's global RNG cannot promise that, because data loaders collate
the next batch before the checkpoint is written. Each epoch still gets new masks. Without `seed`,
`generator` (or torch's global RNG) is used.

Rows that already carry `labels` (a statically masked evaluation set, see `mask_dataset`) are only
padded, so evaluation sees the same masks every time and draws no random numbers.

With `padding_free`, a batch comes out packed instead (`pack_batch`): the real tokens of all rows in one
`(1, total_tokens)` row, in the form transformers' `DataCollatorWithFlattening(return_flash_attn_kwargs=True)`
gives (`position_ids` restarting at 0 per sequence, `cu_seq_lens_q`/`cu_seq_lens_k`, `max_length_q`/
`max_length_k`), which `OpenBertForPreTraining` runs with no padding at all. The batch is masked in its padded form
first, with the same random draws, so a packed batch holds exactly the tokens and labels of the padded one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets
import torch
import torch.nn.functional as F
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase, TrainerCallback

from openbert.modeling import IGNORE_INDEX

from .data import tokenizer_fingerprint


@dataclass
class DataCollatorForPreTraining:
    """Pad a list of rows and mask them for MLM; see the module docstring.

    Args:
        tokenizer: the tokenizer the rows were made with (special-token ids, vocabulary, `[MASK]`).
        mlm_probability: fraction of maskable tokens (or words) selected for prediction.
        mask_replace_prob: share of the selected tokens replaced by `[MASK]`.
        random_replace_prob: share of the selected tokens replaced by a random non-special token.
        whole_word_mask: select whole words instead of single WordPiece tokens.
        pad_to_multiple_of: round the padded length up to a multiple of this (8 suits tensor cores); padded
            batches only.
        seed: seed the masks of each batch from (seed, epoch, batch tokens); see the module docstring.
        epoch: the epoch being collated (with `seed`); `MaskingEpochCallback` sets it during training.
        generator: source of randomness when `seed` is None; None then means torch's global RNG.
        padding_free: return each batch packed into one row of real tokens (`pack_batch`) instead of padded.
    """

    tokenizer: PreTrainedTokenizerBase
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    whole_word_mask: bool = False
    pad_to_multiple_of: int | None = None
    seed: int | None = None
    epoch: int = 0
    generator: torch.Generator | None = None
    padding_free: bool = False
    _special_ids: torch.Tensor = field(init=False, repr=False)
    _random_ids: torch.Tensor = field(init=False, repr=False)
    _is_continuation: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability={self.mlm_probability} must be in (0, 1).")
        if self.mask_replace_prob < 0 or self.random_replace_prob < 0 \
                or self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError(f"mask_replace_prob={self.mask_replace_prob} and random_replace_prob="
                             f"{self.random_replace_prob} must be non-negative and sum to at most 1.")
        if self.tokenizer.mask_token_id is None or self.tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a [MASK] and a [PAD] token for MLM pretraining.")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of={self.pad_to_multiple_of} must be a positive integer or None.")
        vocab_size = len(self.tokenizer)
        special = set(self.tokenizer.all_special_ids) - {self.tokenizer.unk_token_id}
        self._special_ids = torch.tensor(sorted(special), dtype=torch.long)
        # Random replacements are real tokens: a random [CLS] or [PAD] in the middle of text teaches nothing.
        self._random_ids = torch.tensor([i for i in range(vocab_size) if i not in special], dtype=torch.long)
        vocab = self.tokenizer.get_vocab()
        self._is_continuation = torch.zeros(vocab_size, dtype=torch.bool)
        continuation_ids = [i for token, i in vocab.items() if token.startswith("##") and i < vocab_size]
        self._is_continuation[continuation_ids] = True
        if self.whole_word_mask and not continuation_ids:
            raise ValueError("whole_word_mask needs a WordPiece vocabulary (tokens continuing a word start with "
                             "'##'); this tokenizer has none. Turn whole_word_mask off.")

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad `features` to one length and, unless they carry `labels` already, mask them.

        Returns `input_ids`, `attention_mask`, `token_type_ids`, `labels` (all `(batch, seq)`, long) and,
        when the rows have it, `next_sentence_label` `(batch,)`; with `padding_free`, that batch packed
        (`pack_batch`).
        """
        lengths = torch.tensor([len(f["input_ids"]) for f in features])
        longest = int(lengths.max())
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = pad_rows([f["input_ids"] for f in features], longest, self.tokenizer.pad_token_id)
        # Rows without token_type_ids are single segments: all zeros.
        token_type_ids = pad_rows([f.get("token_type_ids", ()) for f in features], longest, 0)
        attention_mask = (torch.arange(longest) < lengths[:, None]).long()
        if "labels" in features[0]:
            labels = pad_rows([f["labels"] for f in features], longest, IGNORE_INDEX)
        else:
            input_ids, labels = self.mask_tokens(input_ids, attention_mask, self._batch_generator(input_ids))
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "labels": labels}
        if "next_sentence_label" in features[0]:
            batch["next_sentence_label"] = torch.tensor([int(f["next_sentence_label"]) for f in features])
        return pack_batch(batch) if self.padding_free else batch

    def _batch_generator(self, input_ids: torch.Tensor) -> torch.Generator | None:
        """With `seed`: a generator seeded by (seed, epoch, the padded batch's tokens); else None."""
        if self.seed is None:
            return None
        digest = hashlib.blake2b(input_ids.numpy().tobytes(), digest_size=8,
                                 key=f"{self.seed}/{self.epoch}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest, "little"))

    def maskable(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`(batch, seq)` bool: real tokens that may be selected (not padding, not special)."""
        return attention_mask.bool() & ~torch.isin(input_ids, self._special_ids)

    def select(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """`(batch, seq)` bool: the positions to predict, tokens or whole words with `mlm_probability`."""
        maskable = self.maskable(input_ids, attention_mask)
        generator = generator if generator is not None else self.generator
        draws = torch.rand(input_ids.shape, generator=generator) < self.mlm_probability
        if not self.whole_word_mask:
            return maskable & draws
        # A word starts at a maskable token that is not a '##' piece, or at a '##' piece whose left
        # neighbour cannot be masked (B truncated mid-word starts with one). Every token then takes the
        # draw made at the start of its word: cummax of (position if word start else 0) finds that start.
        previous_maskable = torch.nn.functional.pad(maskable[:, :-1], (1, 0), value=False)
        word_start = maskable & (~self._is_continuation[input_ids] | ~previous_maskable)
        positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        start_of_word = torch.where(word_start, positions, 0).cummax(dim=1).values
        return maskable & draws.gather(1, start_of_word)

    def mask_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(masked input_ids, labels)` for a padded batch; `input_ids` is not modified.

        `labels` holds the original token at selected positions and -100 elsewhere. `generator`
        overrides the collator's source of randomness for this call.
        """
        generator = generator if generator is not None else self.generator
        selected = self.select(input_ids, attention_mask, generator)
        labels = torch.where(selected, input_ids, IGNORE_INDEX)
        how = torch.rand(input_ids.shape, generator=generator)
        to_mask = selected & (how < self.mask_replace_prob)
        to_random = selected & (how >= self.mask_replace_prob) \
            & (how < self.mask_replace_prob + self.random_replace_prob)
        masked = torch.where(to_mask, self.tokenizer.mask_token_id, input_ids)
        random_ids = self._random_ids[torch.randint(len(self._random_ids), input_ids.shape, generator=generator)]
        return torch.where(to_random, random_ids, masked), labels


class MaskingEpochCallback(TrainerCallback):
    """Keeps `collator.epoch` equal to the Trainer's epoch, so that a seeded collator masks every epoch
    differently (also after resuming mid-epoch). Data-loader workers get a copy of the collator when an
    epoch's iterator starts, after this runs; `dataloader_persistent_workers` would keep stale copies."""

    def __init__(self, collator: DataCollatorForPreTraining):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is a float: an integer at an epoch boundary, fractional when resuming mid-epoch.
        self.collator.epoch = math.floor((state.epoch or 0) + 1e-6)


def pack_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | int]:
    """A padded batch's real tokens as one packed row, in `DataCollatorWithFlattening`'s form.

    `input_ids`, `token_type_ids`, `labels` and `position_ids` (0, 1, ... within each sequence) become
    `(1, total_tokens)`: row 0's real tokens, then row 1's, ...; `cu_seq_lens_q` = `cu_seq_lens_k`
    `(batch + 1,)` int32 are the offsets where each sequence starts, then `total_tokens`; `max_length_q` =
    `max_length_k` (Python ints) the longest sequence. `attention_mask` is dropped (there is no padding) and
    `next_sentence_label` `(batch,)` is kept: one label per sequence.
    """
    real = batch["attention_mask"].bool()
    lengths = real.sum(dim=1)
    positions = torch.arange(real.shape[1]).expand_as(real)
    packed: dict[str, torch.Tensor | int] = {name: batch[name][real][None]
                                             for name in ("input_ids", "token_type_ids", "labels")}
    packed["position_ids"] = positions[real][None]
    cu_seqlens = F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)  # int32: the varlen kernels' type, as transformers'
    longest = int(lengths.max())
    packed.update(cu_seq_lens_q=cu_seqlens, cu_seq_lens_k=cu_seqlens, max_length_q=longest, max_length_k=longest)
    if "next_sentence_label" in batch:
        packed["next_sentence_label"] = batch["next_sentence_label"]
    return packed


def pad_rows(rows: Sequence[Sequence[int]], length: int, value: int) -> torch.Tensor:
    """`(len(rows), length)` long tensor: each row left-aligned, right-padded with `value`."""
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def mask_dataset(dataset: datasets.Dataset, collator: DataCollatorForPreTraining, seed: int,
                 batch_size: int = 1000) -> datasets.Dataset:
    """Mask `dataset` once, reproducibly (for evaluation): adds `labels` and masks `input_ids`.

    The masks depend only on `seed`, the collator's options and the rows (each batch of `batch_size`
    rows gets its own seeded generator), so two runs, or two evaluations, score the same predictions.
    """
    def mask_batch(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + indices[0])
        lengths = torch.tensor([len(ids) for ids in batch["input_ids"]])
        padded = pad_rows(batch["input_ids"], int(lengths.max()), collator.tokenizer.pad_token_id)
        attention_mask = (torch.arange(padded.shape[1]) < lengths[:, None]).long()
        masked, labels = collator.mask_tokens(padded, attention_mask, generator)
        return {"input_ids": [row[:n].tolist() for row, n in zip(masked, lengths, strict=True)],
                "labels": [row[:n].tolist() for row, n in zip(labels, lengths, strict=True)]}

    features = dataset.features.copy()
    features["labels"] = datasets.List(datasets.Value("int32"))
    options = [collator.mlm_probability, collator.mask_replace_prob, collator.random_replace_prob,
               collator.whole_word_mask]
    return dataset.map(
        mask_batch, batched=True, batch_size=batch_size, with_indices=True, features=features,
        desc="Masking the evaluation set",
        new_fingerprint=Hasher.hash(["mask", dataset._fingerprint, seed, batch_size, options,
                                     tokenizer_fingerprint(collator.tokenizer)]),
    )
