"""openbert's fast path: run the encoder on the real tokens of a padded batch only.

A `(batch, seq)` batch with padding is *packed* into `(num_tokens, hidden)`: the real tokens of sequence 0,
then of sequence 1, ... The dense layers, which do almost all of the work, then never compute on padding.
Attention either runs on the packed tokens too (`attend_packed`: one variable-length kernel call on GPUs,
sequence by sequence on CPUs) or moves the projections back to the padded layout for one call of
transformers' attention interface.

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

This file is copied next to every saved checkpoint (remote code) with the modeling file that imports it.
"""

from __future__ import annotations

import functools

import torch
from torch.nn import functional as F
from transformers.utils.generic import is_flash_attention_requested

# CPU attention runs sequence by sequence when the query-key pairs that the padded layout would compute
# for padding, per sequence, times the hidden size, reach this. Below it, one call per sequence (forward and
# backward) costs more than it saves. Measured on 2 cores, MiniLM-sized model (hidden 384), batch 32,
# training step per-sequence vs padded: lengths 18-26 (~185 wasted pairs) 0.94x, 14-28 (~320) 0.99x,
# 20-40 (~660) 1.02x, 10-40 (~900) 1.06x, 16-64 (~2,300) 1.08x, 32-128: 1.16x.
PER_SEQUENCE_ATTENTION_MIN_WORK = 200_000


def is_tracing() -> bool:
    """True under torch.compile, torch.export and ONNX export (dynamo or the legacy TorchScript tracer)."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


class TokenLayout:
    """How the tokens of a `(batch, seq)` batch are laid out inside the encoder.

    Padded (`indices is None`): activations are `(batch, seq, hidden)`, as in transformers' BERT, and
    `pack`/`unpack` return their input. Packed: activations are `(num_tokens, hidden)`, real tokens only;
    `pack` gathers them and `unpack` scatters them back with zeros at padded positions. `lengths` and
    `cu_seqlens` are set when attention runs on the packed tokens (`attend_packed`). `padding_mask` is set on a
    padded layout whose output must still hold zeros at padded positions, as a packed run's does (`output`).
    """

    def __init__(self, batch_size: int, seq_len: int, indices: torch.Tensor | None = None,
                 lengths: list[int] | None = None, cu_seqlens: torch.Tensor | None = None,
                 padding_mask: torch.Tensor | None = None):
        self.batch_size, self.seq_len = batch_size, seq_len
        self.indices = indices  # flat positions of the real tokens, (num_tokens,)
        self.lengths = lengths  # real tokens per sequence
        self.cu_seqlens = cu_seqlens  # (batch + 1,) int32 offsets of each sequence's first token: varlen kernels' form
        self.padding_mask = padding_mask  # (batch, seq), 1 for real tokens

    @property
    def attends_packed(self) -> bool:
        return self.lengths is not None

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
                  may_pack: bool, packed_attention_min_pairs: float | None) -> TokenLayout:
    """The layout for this batch: packed when `unpad` is on, `may_pack` and the mask has padding, else padded.

    `may_pack` is False when recording outputs or tracing: the padded layout then zeros padded positions of
    its output instead (when `unpad` is on). `packed_attention_min_pairs`: attention runs on the packed tokens
    when the padded layout would compute at least this many query-key pairs of padding per sequence (None:
    never; see `packed_attention_min_pairs`). Packing costs one device sync (the real tokens per sequence).
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
    mean_square = sum(count * count for count in counts) / batch_size
    if packed_attention_min_pairs is None or seq_len**2 - mean_square < packed_attention_min_pairs:
        return TokenLayout(batch_size, seq_len, indices)
    cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
    return TokenLayout(batch_size, seq_len, indices, counts, cu_seqlens)


def packed_attention_min_pairs(attn_implementation: str, device: torch.device, hidden_size: int,
                               head_dim: int) -> float | None:
    """Wasted query-key pairs per sequence from which attention on packed tokens pays; None: never.

    GPUs (sdpa, or any flash attention: `flash_attention_2` and transformers' kernels of it): always, for the
    head sizes flash attention takes as they are (tested on an H200); other head sizes keep the padded layout,
    where the implementation runs as transformers runs it. CPUs (sdpa): when padding wastes enough work
    (PER_SEQUENCE_ATTENTION_MIN_WORK). eager and flex attention always run on the padded layout through
    transformers' attention interface.
    """
    flash = is_flash_attention_requested(requested_attention_implementation=attn_implementation)
    if device.type == "cuda" and (attn_implementation == "sdpa" or flash):
        return 0.0 if head_dim % 8 == 0 and head_dim <= 256 else None
    if device.type == "cpu" and attn_implementation == "sdpa":
        return PER_SEQUENCE_ATTENTION_MIN_WORK / hidden_size
    return None


def attend_packed(qkv: torch.Tensor, layout: TokenLayout, dropout: float, scaling: float) -> torch.Tensor:
    """Attention of each sequence over its own real tokens, straight from the packed layout.

    qkv: `(num_tokens, 3, heads, head_dim)`, the tokens of sequence 0, then sequence 1, ... (`layout.lengths`).
    Returns `(num_tokens, heads * head_dim)`, same order.

    Why: nothing is computed for padded keys or queries, and the two copies between the packed and the padded
    layout disappear. GPUs do it in one variable-length kernel call; CPUs, which have none, in one unmasked SDPA
    call per sequence (on GPUs such a Python loop would be launch-bound).
    """
    if qkv.device.type == "cuda":
        return varlen_attention_cuda(qkv, layout.cu_seqlens, max(layout.lengths), dropout, scaling)
    outputs = []
    for sequence in qkv.split(layout.lengths):
        # Each (1, heads, length, head_dim): CPU's fused (flash) kernel takes 4-D inputs only.
        query, key, value = sequence.permute(1, 2, 0, 3).unsqueeze(1).unbind(0)
        context = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling)
        outputs.append(context[0].transpose(0, 1).flatten(1))
    return torch.cat(outputs)


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
