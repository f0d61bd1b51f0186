"""openbert's fast path: run the encoder on the real tokens of a padded batch only.

A `(batch, seq)` batch with padding is *packed* into `(num_tokens, hidden)`: the real tokens of sequence 0,
then of sequence 1, ... The dense layers, which do almost all of the work, then never compute on padding.
Attention either runs on the packed tokens too (`attend_packed`: one variable-length kernel call on GPUs; on
CPUs, one SDPA call per group of sequences of similar length, `LengthGroups`) or moves the projections back to
the padded layout for one call of transformers' attention interface.

`choose_layout` decides per batch. It keeps the padded `(batch, seq, hidden)` layout of transformers' BERT
whenever packing cannot pay or is not allowed:
- no padding in the batch, or `config.unpad_inputs=False`;
- hidden states or attention probabilities are recorded: each returned hidden state must be the tensor the
  next layer consumes, so that gradients reach it (`hidden_states[i].retain_grad()`);
- torch is tracing (`torch.compile`, `torch.export`, ONNX export): packing needs the number of real tokens
  as a Python int, which a traced graph cannot branch on, while the padded layout traces to one graph for
  every batch shape.
The padded layout then zeros the padded positions of its output (`TokenLayout.output`), so a call returns
the same `last_hidden_state` whichever layout ran.

A batch can also arrive packed (`find_packed_sequences`): one `(1, total_tokens)` row holding the sequences one
after the other, as transformers' `DataCollatorWithFlattening` makes it, with `cu_seq_lens_q` or `position_ids`
restarting at 0 telling where each sequence starts. Its tokens are already the packed layout's, so nothing is
gathered or scattered (`packed_input_layout`); attention runs per sequence as above, or, where it cannot run on
packed tokens, through transformers' attention interface with a mask that keeps each sequence to itself.

This file is copied next to every saved checkpoint (remote code) with the modeling file that imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F
from transformers.utils.generic import is_flash_attention_requested

# On CPUs, what one more attention call costs, in wasted work (query-key pairs x hidden size): a sequence joins
# the group of longer sequences before it when padding it to the group's longest costs less than that, and
# starts a group of its own otherwise (`group_by_length`). One group means the padded layout. The value is the
# break-even of one call per sequence measured on 2 cores (MiniLM-sized training step, batch 32, per-sequence vs
# padded: lengths 18-26 0.94x, 10-40 1.06x, 32-128 1.16x); benchmarks/bench_attention_groups.py sweeps it.
ATTENTION_CALL_COST = 200_000


def fast_dropout(hidden_states: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`F.dropout`, with the mask drawn by `cpu_dropout` where that applies: training on a CPU with 0 < p < 1,
    outside compile and export (which see torch's op)."""
    if training and 0 < p < 1 and hidden_states.device.type == "cpu" and not is_tracing():
        return cpu_dropout(hidden_states, p)
    return F.dropout(hidden_states, p, training)


def cpu_dropout(hidden_states: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout for CPU tensors, 0 < p < 1: each element zeroed with probability `p` (to 1/65536),
    the others scaled by `1 / (1 - p)`; any shape.

    torch's CPU dropout draws one random number per element, and those draws were 14% of a small model's
    pretraining step (benchmarks/README.md); here each 64-bit draw makes four 16-bit uniforms.
    """
    return _CpuDropout.apply(hidden_states, p)


class _CpuDropout(torch.autograd.Function):
    """`cpu_dropout`'s forward and backward: both multiply by the scaled mask, which the backward pass rebuilds
    from the saved 16-bit uniforms (two bytes per element, where a float mask would take four)."""

    @staticmethod
    def forward(ctx, hidden_states: torch.Tensor, p: float) -> torch.Tensor:
        count = hidden_states.numel()
        draws = torch.randint(-(2**63), 2**63 - 1, ((count + 3) // 4,), dtype=torch.int64,
                              device=hidden_states.device)
        uniform = draws.view(torch.int16)[:count].view(hidden_states.shape)  # uniform over [-32768, 32767]
        ctx.save_for_backward(uniform)
        ctx.p = p
        return hidden_states * _scaled_keep_mask(uniform, p, hidden_states.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (uniform,) = ctx.saved_tensors
        return grad_output * _scaled_keep_mask(uniform, ctx.p, grad_output.dtype), None


def _scaled_keep_mask(uniform: torch.Tensor, p: float, dtype: torch.dtype) -> torch.Tensor:
    """`1 / (1 - p)` where the int16 `uniform` keeps its element (at or above the p-quantile), else 0, in `dtype`.

    In float32 arithmetic on purpose: comparing, `torch.where` and multiplying by a bool mask run several times
    slower on a CPU than vectorised float ops (1.2 ms vs 0.1 ms for 300k elements on 2 cores). The uniforms are
    integers, so the distance to the quantile clamped to [0, 1] is exactly the keep mask.
    """
    threshold = round(p * 65536) - 32768
    mask = uniform.to(torch.float32).sub_(threshold - 1).clamp_(0, 1).mul_(1 / (1 - p))
    return mask.to(dtype)


def softmax_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                      scaling: float, dropout: float, training: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, with `fast_dropout` on the probabilities.

    query: `(*batch, queries, head_dim)`; key/value: `(*batch, keys, head_dim)`; mask: broadcastable to
    `(*batch, queries, keys)`, bool (True: attend) or additive. Returns the context `(*batch, queries, head_dim)`
    and the probabilities (after dropout) `(*batch, queries, keys)`.
    """
    scores = query @ key.transpose(-1, -2) * scaling
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = fast_dropout(scores.softmax(dim=-1), dropout, training)
    return probs @ value, probs


def is_tracing() -> bool:
    """True under torch.compile, torch.export and ONNX export (dynamo or the legacy TorchScript tracer)."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


class TokenLayout:
    """How the tokens of a `(batch, seq)` batch are laid out inside the encoder.

    Padded (`indices is None`): activations are `(batch, seq, hidden)`, as in transformers' BERT, and
    `pack`/`unpack` return their input. Packed: activations are `(num_tokens, hidden)`, real tokens only;
    `pack` gathers them and `unpack` scatters them back with zeros at padded positions. Attention runs on the
    packed tokens (`attend_packed`) when `cu_seqlens` (GPUs) or `groups` (CPUs) are set. `padding_mask` is set
    on a padded layout whose output must still hold zeros at padded positions, as a packed run's does (`output`).
    A batch that arrives packed keeps its `(1, total_tokens)` form, `pack`/`unpack` included, and sets
    `sequence_starts` (see `packed_input_layout`).
    """

    def __init__(self, batch_size: int, seq_len: int, indices: torch.Tensor | None = None,
                 cu_seqlens: torch.Tensor | None = None, max_len: int = 0, groups: LengthGroups | None = None,
                 padding_mask: torch.Tensor | None = None, sequence_starts: torch.Tensor | None = None,
                 sequence_ids: torch.Tensor | None = None):
        self.batch_size, self.seq_len = batch_size, seq_len
        self.indices = indices  # flat positions of the real tokens, (num_tokens,)
        self.cu_seqlens = cu_seqlens  # (batch + 1,) int32 offsets of each sequence's first token: varlen kernels' form
        self.max_len = max_len  # the longest sequence's real tokens, with cu_seqlens
        self.groups = groups
        self.padding_mask = padding_mask  # (batch, seq), 1 for real tokens
        # Packed inputs (`packed_input_layout`): each sequence's first token, (num_sequences,), for the pooler; and,
        # when attention runs through the interface on the `(1, total_tokens)` row, each token's sequence.
        self.sequence_starts = sequence_starts
        self.sequence_ids = sequence_ids

    @property
    def attends_packed(self) -> bool:
        return self.cu_seqlens is not None or self.groups is not None

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """`(batch, seq, *rest)` -> the layout's form."""
        if self.indices is None:
            return x
        return x.reshape(self.batch_size * self.seq_len, *x.shape[2:]).index_select(0, self.indices)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """The layout's form -> `(batch, seq, *rest)`, zeros at padded positions."""
        if self.indices is None:
            return x
        full = x.new_zeros(self.batch_size * self.seq_len, *x.shape[1:]).index_copy(0, self.indices, x)
        return full.view(self.batch_size, self.seq_len, *x.shape[1:])

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output as `(batch, seq, hidden)`, zeros at padded positions in either layout when
        unpadding is on, so that a call returns the same whichever layout ran (eager, recorded or traced)."""
        if self.padding_mask is not None:
            return x * self.padding_mask.unsqueeze(-1).to(x.dtype)
        return self.unpack(x)


def choose_layout(attention_mask: torch.Tensor | None, batch_size: int, seq_len: int, *, unpad: bool,
                  may_pack: bool, packed_attention: str | None, hidden_size: int) -> TokenLayout:
    """The layout for this batch: packed when `unpad` is on, `may_pack` and the mask has padding, else padded.

    `may_pack` is False when recording outputs or tracing: the padded layout then zeros padded positions of
    its output instead (when `unpad` is on). `packed_attention` (see `packed_attention`): how attention runs on
    the packed tokens, "varlen" or "groups" (when the lengths make more than one group; else on the padded
    layout), or None: on the padded layout. Packing costs one device sync (the real tokens per sequence).
    """
    if not unpad or attention_mask is None:
        return TokenLayout(batch_size, seq_len)
    if not may_pack:
        return TokenLayout(batch_size, seq_len, padding_mask=attention_mask)
    lengths = attention_mask.count_nonzero(dim=1)
    counts = lengths.tolist()  # the layout's one device sync: the real tokens' count is known from here on
    num_tokens = sum(counts)
    if num_tokens == batch_size * seq_len:
        return TokenLayout(batch_size, seq_len)
    indices = torch.nonzero_static(attention_mask.flatten(), size=num_tokens).squeeze(-1)
    if packed_attention == "varlen":
        cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
        return TokenLayout(batch_size, seq_len, indices, cu_seqlens=cu_seqlens, max_len=max(counts))
    if packed_attention == "groups":
        boundaries = group_by_length(counts, ATTENTION_CALL_COST / hidden_size)
        if len(boundaries) > 1:
            return TokenLayout(batch_size, seq_len, indices, groups=LengthGroups(lengths, boundaries))
    return TokenLayout(batch_size, seq_len, indices)


# The keyword arguments that describe a packed batch: transformers' `FlashAttentionKwargs`, which
# `DataCollatorWithFlattening(return_flash_attn_kwargs=True)` returns and every transformers 5 model accepts.
PACKED_BATCH_KWARGS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


@dataclass
class PackedSequences:
    """Where the sequences of a packed `(1, total_tokens)` batch start.

    cu_seqlens: `(num_sequences + 1,)` long, each sequence's first token, then `total_tokens`.
    max_len: the longest sequence's length; None only while tracing (reading it from `cu_seqlens` is data-dependent).
    """

    cu_seqlens: torch.Tensor
    max_len: int | None

    def sequence_ids(self, total_tokens: int, device: torch.device) -> torch.Tensor:
        """`(total_tokens,)`: the sequence each token belongs to (traceable: no data-dependent shape)."""
        tokens = torch.arange(total_tokens, device=device)
        return torch.searchsorted(self.cu_seqlens[1:].to(device), tokens, right=True)

    def position_ids(self, total_tokens: int, device: torch.device) -> torch.Tensor:
        """`(1, total_tokens)`: positions restarting at 0 with every sequence."""
        tokens = torch.arange(total_tokens, device=device)
        return (tokens - self.cu_seqlens.to(device)[self.sequence_ids(total_tokens, device)])[None]


def find_packed_sequences(input_shape: tuple[int, ...], attention_mask: torch.Tensor | None,
                          position_ids: torch.Tensor | None, kwargs: Mapping[str, Any]) -> PackedSequences | None:
    """The sequences of a packed batch, or None for an ordinary `(batch, seq)` batch.

    A batch is packed when it carries `cu_seq_lens_q` (or `cu_seq_lens_k`; with `max_length_q`/`max_length_k`,
    else the longest is read from them), or, without them, when it is one row without `attention_mask` whose
    `position_ids` restart at 0 after its first token: the two forms of transformers' `DataCollatorWithFlattening`
    (with and without `return_flash_attn_kwargs`). Finding the starts from `position_ids` reads them, a device
    sync on GPUs (so do reading the longest length from `cu_seq_lens_*` without `max_length_*`); it is skipped
    while tracing, where only `cu_seq_lens_*` mark a batch as packed.
    """
    cu_seqlens = next((kwargs[key] for key in PACKED_BATCH_KWARGS[:2] if kwargs.get(key) is not None), None)
    if cu_seqlens is None:
        return _packed_from_positions(input_shape, attention_mask, position_ids)
    if len(input_shape) != 2 or input_shape[0] != 1:
        raise ValueError(f"cu_seq_lens_q/cu_seq_lens_k describe a packed batch, one row of shape (1, total_tokens); "
                         f"the inputs have shape {tuple(input_shape)}. Concatenate the sequences into one row "
                         "(transformers' DataCollatorWithFlattening), or drop cu_seq_lens_* for a padded batch.")
    if attention_mask is not None:
        raise ValueError("a packed batch (cu_seq_lens_q/cu_seq_lens_k) has no padding: drop attention_mask.")
    cu_seqlens = torch.as_tensor(cu_seqlens).long()
    _check_cu_seqlens(cu_seqlens, input_shape[1])
    max_len = next((kwargs[key] for key in PACKED_BATCH_KWARGS[2:] if kwargs.get(key) is not None), None)
    if max_len is None and not is_tracing():
        max_len = int(cu_seqlens.diff().max())
    return PackedSequences(cu_seqlens, None if max_len is None else int(max_len))


def _packed_from_positions(input_shape: tuple[int, ...], attention_mask: torch.Tensor | None,
                           position_ids: torch.Tensor | None) -> PackedSequences | None:
    """Sequence starts where one row's `position_ids` restart at 0 (`find_packed_sequences`), or None."""
    if (len(input_shape) != 2 or input_shape[0] != 1 or attention_mask is not None or position_ids is None
            or position_ids.shape != tuple(input_shape) or is_tracing()):
        return None
    restarts = torch.nonzero(position_ids[0, 1:] == 0).squeeze(-1) + 1  # host ints on CPUs: no device to wait for
    if restarts.numel() == 0:
        return None
    ends = torch.tensor([0, input_shape[1]], device=restarts.device)
    cu_seqlens = torch.cat([ends[:1], restarts, ends[1:]]).long()
    return PackedSequences(cu_seqlens, int(cu_seqlens.diff().max()))


def _check_cu_seqlens(cu_seqlens: torch.Tensor, total_tokens: int) -> None:
    """A ValueError for offsets that do not cut the row into non-empty sequences. Checked where it costs no device
    sync: on host tensors (the collator's), not on a GPU's, and not while tracing."""
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2:
        raise ValueError(f"cu_seq_lens_q has shape {tuple(cu_seqlens.shape)}, expected (num_sequences + 1,): 0, "
                         "then the end of each sequence.")
    if cu_seqlens.device.type != "cpu" or is_tracing():
        return
    if cu_seqlens[0] != 0 or cu_seqlens[-1] != total_tokens or (cu_seqlens.diff() <= 0).any():
        raise ValueError(f"cu_seq_lens_q = {cu_seqlens.tolist()} must start at 0, increase, and end at the row's "
                         f"{total_tokens} tokens (one offset per sequence start, then the total).")


def packed_input_layout(packed: PackedSequences, total_tokens: int, device: torch.device, *,
                        packed_attention: str | None, hidden_size: int) -> TokenLayout:
    """The layout of a batch that arrives packed: its `(1, total_tokens)` row as it is (no gather, no scatter).

    Attention runs on the packed tokens as in `choose_layout` ("varlen": `cu_seqlens` straight from the batch;
    "groups": `LengthGroups` of its lengths, even when they make one group, for the padded alternative here
    would attend over all total_tokens**2 pairs), or, with `packed_attention=None`, through transformers'
    attention interface on the row with a mask keeping every sequence to itself (`sequence_ids`).
    """
    starts = packed.cu_seqlens[:-1].to(device)
    if packed_attention == "varlen":
        return TokenLayout(1, total_tokens, cu_seqlens=packed.cu_seqlens.to(device, torch.int32),
                           max_len=packed.max_len, sequence_starts=starts)
    if packed_attention == "groups":
        lengths = packed.cu_seqlens.diff()
        groups = group_by_length(lengths.tolist(), ATTENTION_CALL_COST / hidden_size)
        return TokenLayout(1, total_tokens, groups=LengthGroups(lengths.to(device), groups), sequence_starts=starts)
    return TokenLayout(1, total_tokens, sequence_starts=starts,
                       sequence_ids=packed.sequence_ids(total_tokens, device)[None])


def same_sequence(sequence_ids: torch.Tensor) -> Callable:
    """transformers' mask-function form (`and_mask_function` of `create_bidirectional_mask`): query and key
    attend to each other only within one sequence. sequence_ids: `(batch, seq)`."""
    def mask(batch_idx: torch.Tensor, head_idx: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor):
        return sequence_ids[batch_idx, q_idx] == sequence_ids[batch_idx, kv_idx]
    return mask


def packed_attention(attn_implementation: str, device: torch.device, head_dim: int) -> str | None:
    """How attention runs on packed tokens on this device: "varlen", "groups" or None (the padded layout).

    GPUs (sdpa, or any flash attention: `flash_attention_2` and transformers' kernels of it): one variable-length
    kernel call, for the head sizes flash attention takes as they are (tested on an H200); other head sizes keep
    the padded layout, where the implementation runs as transformers runs it. CPUs (sdpa): one SDPA call per
    group of similar lengths (`group_by_length`). eager and flex attention always run on the padded layout
    through transformers' attention interface.
    """
    flash = is_flash_attention_requested(requested_attention_implementation=attn_implementation)
    if device.type == "cuda" and (attn_implementation == "sdpa" or flash):
        return "varlen" if head_dim % 8 == 0 and head_dim <= 256 else None
    if device.type == "cpu" and attn_implementation == "sdpa":
        return "groups"
    return None


def group_by_length(lengths: list[int], max_waste: float) -> list[list[int]]:
    """The sequences (indices into `lengths`), longest first, cut into groups: a sequence joins the group before
    it when padding it to that group's longest wastes fewer than `max_waste` query-key pairs, else it starts a
    group. Sequences of equal length always share one (nothing is wasted)."""
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    groups = [[order[0]]]
    for index in order[1:]:
        longest = lengths[groups[-1][0]]
        if longest**2 - lengths[index] ** 2 < max_waste or lengths[index] == longest:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


class LengthGroups:
    """Sequences of a packed batch regrouped for attention on a CPU: one padded `(size, longest)` block per group.

    A CPU has no variable-length attention kernel; one SDPA call per sequence costs more in calls than it saves
    on short ones, one padded call for the batch computes every padded pair. A few calls, each over sequences of
    similar length, keep both costs small. Built once per forward pass, used by every layer.
    """

    def __init__(self, lengths: torch.Tensor, groups: list[list[int]]):
        starts = F.pad(lengths.cumsum(0), (1, 0))[:-1]  # each sequence's first packed token
        self.shapes, gathers, masks, block_rows = [], [], [], torch.empty_like(lengths)
        offset = 0
        for members in groups:
            index = torch.tensor(members, device=lengths.device)
            member_lengths, longest = lengths[index], int(lengths[members[0]])
            positions = torch.arange(longest, device=lengths.device)
            # Slots past a sequence's end repeat its last token: masked as keys, their outputs never read.
            gathers.append((starts[index, None] + torch.minimum(positions, member_lengths[:, None] - 1)).flatten())
            uneven = bool((member_lengths != longest).any())
            masks.append((positions < member_lengths[:, None])[:, None, None, :] if uneven else None)
            block_rows[index] = offset + torch.arange(len(members), device=lengths.device) * longest
            self.shapes.append((len(members), longest))
            offset += len(members) * longest
        self.gather = torch.cat(gathers)  # (sum of size * longest,): packed token of every slot, group by group
        self.key_masks = masks  # per group (size, 1, 1, longest) True for real keys, or None when all are full
        # Row of the stacked blocks' output holding each packed token: sequence's first row + position.
        token_sequence = torch.repeat_interleave(lengths)
        self.rows = block_rows[token_sequence] + torch.arange(len(token_sequence), device=lengths.device) \
            - starts[token_sequence]


def attend_packed(qkv: torch.Tensor, layout: TokenLayout, dropout: float, scaling: float) -> torch.Tensor:
    """Attention of each sequence over its own real tokens, straight from the packed layout.

    qkv: `(num_tokens, 3, heads, head_dim)`, the tokens of sequence 0, then sequence 1, ...
    Returns `(num_tokens, heads * head_dim)`, same order.

    Why: nothing is computed for padded keys or queries, and the two copies between the packed and the padded
    layout disappear. GPUs do it in one variable-length kernel call; CPUs, which have none, in one SDPA call per
    group of similar lengths (`LengthGroups`; on GPUs such a Python loop would be launch-bound).
    """
    if layout.cu_seqlens is not None:
        return varlen_attention_cuda(qkv, layout.cu_seqlens, layout.max_len, dropout, scaling)
    groups, heads, head_dim = layout.groups, qkv.shape[2], qkv.shape[3]
    blocks = qkv.index_select(0, groups.gather).split([size * longest for size, longest in groups.shapes])
    outputs = []
    for block, (size, longest), key_mask in zip(blocks, groups.shapes, groups.key_masks, strict=True):
        # (size, heads, longest, head_dim) each: CPU's fused (flash) kernel takes 4-D inputs.
        query, key, value = block.view(size, longest, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if dropout:
            # What SDPA computes with dropout on a CPU (its math path: no fused kernel takes dropout there), with
            # the faster dropout.
            context = softmax_attention(query, key, value, key_mask, scaling, dropout)[0]
        else:
            context = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask, scale=scaling)
        outputs.append(context.transpose(1, 2).reshape(size * longest, heads * head_dim))
    return torch.cat(outputs).index_select(0, groups.rows)


@functools.lru_cache
def _cuda_capability(device_index: int) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device_index)


def varlen_attention_cuda(
    qkv: torch.Tensor, cu_seqlens: torch.Tensor, max_len: int, dropout: float, scaling: float
) -> torch.Tensor:
    """`attend_packed` on a CUDA device: the variable-length kernels that SDPA itself dispatches to.

    Flash attention for half precision on Ampere or newer, the memory-efficient kernel otherwise (it also takes
    float32). They are called through `torch.ops.aten` because the public `torch.nn.attention.varlen.varlen_attn`
    has no dropout, which BERT training uses. Both ops have autograd formulas, so training works as with SDPA.
    """
    query, key, value = qkv.unbind(1)  # each (num_tokens, heads, head_dim), rows strided: the kernels take that
    if qkv.dtype in (torch.float16, torch.bfloat16) and _cuda_capability(qkv.device.index) >= (8, 0):
        context = torch.ops.aten._flash_attention_forward(
            query, key, value, cu_seqlens, cu_seqlens, max_len, max_len, dropout, False, False, scale=scaling
        )[0]
    else:
        # The backward pass needs the log-sum-exp; only compute it when there will be one.
        with_lse = torch.is_grad_enabled() and qkv.requires_grad
        context = torch.ops.aten._efficient_attention_forward(
            query[None], key[None], value[None], None, cu_seqlens, cu_seqlens, max_len, max_len, dropout, 0,
            with_lse, scale=scaling,
        )[0][0]
    return context.flatten(1)
