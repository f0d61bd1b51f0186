"""openbert: BERT's bidirectional Transformer encoder and its task heads, as transformers models.

The encoder is BERT's (Devlin et al., 2019): token + position + segment embeddings, then post-LayerNorm
self-attention blocks. Parameter names are BERT's, so transformers' BERT checkpoints load unchanged.

One thing differs from transformers' BERT: inside the encoder, activations are a 2-D `(num_tokens, hidden)`
tensor (see `TokenLayout`). When a batch has padding, only the real tokens are in it, so the dense layers,
which do almost all of the work, never compute on padding. With `sdpa`, attention then runs on the packed
tokens too (`attend_packed`: one variable-length kernel call on GPUs, sequence by sequence on CPUs);
otherwise on the padded `(batch, heads, seq, head_dim)` layout through transformers' attention interface
(`eager`, which can return the probabilities, and any other implementation).

This file is copied next to every saved checkpoint (remote code), so it imports only transformers, torch
and its sibling configuration file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_openbert import OpenBertConfig

IGNORE_INDEX = -100  # label value that losses skip (transformers' convention)

# CPU attention runs sequence by sequence when the query-key pairs that the padded layout would compute
# for padding, per sequence, times the hidden size, reach this. Below it, one call per sequence (forward and
# backward) costs more than it saves. Measured on 2 cores, MiniLM-sized model (hidden 384), batch 32,
# training step per-sequence vs padded: lengths 18-26 (~185 wasted pairs) 0.94x, 14-28 (~320) 0.99x,
# 20-40 (~660) 1.02x, 10-40 (~900) 1.06x, 16-64 (~2,300) 1.08x, 32-128: 1.16x.
PER_SEQUENCE_ATTENTION_MIN_WORK = 200_000

# Auto class -> openbert class. Every saved checkpoint maps all of them (not only the class that saved it),
# so that e.g. a pretraining checkpoint loads into AutoModelForSequenceClassification through remote code.
AUTO_CLASS_NAMES = {
    "AutoModel": "OpenBertModel",
    "AutoModelForPreTraining": "OpenBertForPreTraining",
    "AutoModelForMaskedLM": "OpenBertForMaskedLM",
    "AutoModelForNextSentencePrediction": "OpenBertForNextSentencePrediction",
    "AutoModelForSequenceClassification": "OpenBertForSequenceClassification",
    "AutoModelForQuestionAnswering": "OpenBertForQuestionAnswering",
    "AutoModelForTokenClassification": "OpenBertForTokenClassification",
    "AutoModelForMultipleChoice": "OpenBertForMultipleChoice",
}


class TokenLayout:
    """Where the real tokens of a `(batch, seq)` batch are, so that dense layers can skip padding.

    Activations travel through the encoder as `(num_tokens, ...)`. Without padding (or with `unpad=False`)
    that is the batch flattened, `num_tokens = batch * seq`, and `pack`/`unpack` are reshapes. With padding,
    `num_tokens` counts real tokens only and `unpack` puts zeros at padded positions.
    """

    def __init__(self, attention_mask: torch.Tensor | None, batch_size: int, seq_len: int, unpad: bool,
                 packed_attention_min_pairs: float | None = None):
        self.batch_size, self.seq_len = batch_size, seq_len
        self.indices: torch.Tensor | None = None  # flat positions of the real tokens, (num_tokens,)
        # Set when attention runs on the packed tokens (`attend_packed`) instead of the padded layout: allowed
        # (`packed_attention_min_pairs` given) and worth it (the padded layout would compute at least that many
        # query-key pairs of padding per sequence). `lengths`: real tokens per sequence; `cu_seqlens`:
        # `(batch + 1,)` int32 offsets of each sequence's first token, the form varlen kernels take.
        self.lengths: list[int] | None = None
        self.cu_seqlens: torch.Tensor | None = None
        if not unpad or attention_mask is None:
            return
        lengths = attention_mask.count_nonzero(dim=1)
        counts = lengths.tolist()  # the layout's one device sync: the real tokens' count is known from here on
        if sum(counts) == batch_size * seq_len:
            return
        self.indices = torch.nonzero_static(attention_mask.flatten(), size=sum(counts)).squeeze(-1)
        mean_square = sum(count * count for count in counts) / batch_size
        if packed_attention_min_pairs is not None and seq_len**2 - mean_square >= packed_attention_min_pairs:
            self.lengths = counts
            self.cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """`(batch, seq, *rest)` -> `(num_tokens, *rest)`."""
        x = x.reshape(self.batch_size * self.seq_len, *x.shape[2:])
        return x if self.indices is None else x.index_select(0, self.indices)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """`(num_tokens, *rest)` -> `(batch, seq, *rest)`, zeros at padded positions."""
        if self.indices is not None:
            x = x.new_zeros(self.batch_size * self.seq_len, *x.shape[1:]).index_copy(0, self.indices, x)
        return x.view(self.batch_size, self.seq_len, *x.shape[1:])


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, so the probabilities can be returned.

    query/key/value: `(batch, heads, seq, head_dim)`; attention_mask: additive, broadcastable to
    `(batch, heads, seq, seq)`. Returns `(batch, seq, heads, head_dim)` and the `(batch, heads, seq, seq)`
    probabilities, as every function of transformers' attention interface does.
    """
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = F.dropout(scores.softmax(dim=-1), p=dropout, training=module.training)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


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


class OpenBertEmbeddings(nn.Module):
    """Word + segment + position embeddings, LayerNorm, dropout; works on ids of any shape."""

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ids: `(*shape)`; inputs_embeds (instead of input_ids): `(*shape, hidden)`. Returns `(*shape, hidden)`."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class OpenBertSelfAttention(nn.Module):
    """Multi-head self-attention: projections on packed tokens; attention per sequence or on the padded layout."""

    is_causal = False  # read by transformers' sdpa function: BERT attends in both directions

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def forward(
        self, hidden_states: torch.Tensor, layout: TokenLayout, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states: `(num_tokens, hidden)` -> `(num_tokens, hidden)` and the attention probabilities
        `(batch, heads, seq, seq)` (eager only; None otherwise)."""

        projections = (self.query, self.key, self.value)
        if all(type(projection) is nn.Linear for projection in projections):
            # One projection for query, key and value: a single GEMM and a single move between layouts
            # instead of three (the weights stay three modules, under BERT's checkpoint names).
            weight = torch.cat([projection.weight for projection in projections])
            bias = torch.cat([projection.bias for projection in projections])
            qkv = F.linear(hidden_states, weight, bias)
        else:  # swapped for other modules, e.g. by torch.ao's dynamic int8 quantization: run them as they are
            qkv = torch.cat([projection(hidden_states) for projection in projections], dim=-1)
        dropout = self.dropout_prob if self.training else 0.0
        if layout.lengths is not None:
            qkv = qkv.view(-1, 3, self.num_heads, self.head_dim)
            return attend_packed(qkv, layout, dropout, self.scaling), None
        qkv = layout.unpack(qkv)
        qkv = qkv.view(layout.batch_size, layout.seq_len, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)  # each (batch, heads, seq, head_dim)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        context, probs = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=self.scaling,
        )
        return layout.pack(context.reshape(layout.batch_size, layout.seq_len, -1)), probs


class OpenBertResidualOutput(nn.Module):
    """Projection, dropout, residual add and post-LayerNorm: closes both halves of an encoder layer."""

    def __init__(self, config: OpenBertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class OpenBertAttention(nn.Module):
    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.self = OpenBertSelfAttention(config)  # `attention.self.*`: BERT's checkpoint names
        self.output = OpenBertResidualOutput(config, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, layout: TokenLayout, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = self.self(hidden_states, layout, attention_mask)
        return self.output(context, hidden_states), probs


class OpenBertIntermediate(nn.Module):
    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class OpenBertLayer(GradientCheckpointingLayer):
    """One post-LN encoder layer: self-attention block, then feed-forward block, on `(num_tokens, hidden)`."""

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.attention = OpenBertAttention(config)
        self.intermediate = OpenBertIntermediate(config)
        self.output = OpenBertResidualOutput(config, config.intermediate_size)

    def forward(
        self, hidden_states: torch.Tensor, layout: TokenLayout, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, probs = self.attention(hidden_states, layout, attention_mask)
        return self.output(self.intermediate(attended), attended), probs


class OpenBertEncoder(nn.Module):
    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.layer = nn.ModuleList(OpenBertLayer(config) for _ in range(config.num_hidden_layers))


class OpenBertPooler(nn.Module):
    """tanh(dense(first token)): the `[CLS]` summary used by NSP and sentence-level heads."""

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        """`(batch, seq, hidden)` -> `(batch, hidden)`."""
        return self.activation(self.dense(sequence_output[:, 0]))


class OpenBertPredictionHeadTransform(nn.Module):
    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class OpenBertLMPredictionHead(nn.Module):
    """Masked-LM head: transform, then a decoder whose weight is tied to the word embeddings."""

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.transform = OpenBertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        # The decoder's bias is tied to this one (`_tied_weights_keys`), BERT's checkpoint name for it.
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`(*rows, hidden)` -> `(*rows, vocab_size)`."""
        return self.decoder(self.transform(hidden_states))


class OpenBertPreTrainingHeads(nn.Module):
    """BERT's `cls` module: the masked-LM head, the next-sentence head, or both."""

    def __init__(self, config: OpenBertConfig, mlm: bool, nsp: bool):
        super().__init__()
        if mlm:
            self.predictions = OpenBertLMPredictionHead(config)
        if nsp:
            self.seq_relationship = nn.Linear(config.hidden_size, 2)


@dataclass
class OpenBertForPreTrainingOutput(ModelOutput):
    """Output of `OpenBertForPreTraining`.

    Args:
        loss: MLM loss + NSP loss when both label sets are given, else the one that is.
        prediction_logits: MLM scores. Without `labels`, `(batch, seq, vocab_size)`; with `labels`, only the
            labelled rows, `(num_labelled, vocab_size)`, in row-major order of `labels != -100`.
        seq_relationship_logits: `(batch, 2)` next-sentence scores (0 = B follows A, 1 = B is random).
        mlm_loss, nsp_loss: the two parts of `loss`, when their labels are given.
        hidden_states: embeddings + every layer's output, each `(batch, seq, hidden)`.
        attentions: every layer's attention probabilities, each `(batch, heads, seq, seq)` (eager only).
    """

    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def _check_id_ranges(*checks: tuple[str, torch.Tensor | None, int, str]) -> None:
    """Raise a ValueError (instead of an IndexError or a native crash) for ids outside [0, limit).

    Each check is `(name, ids or None, limit, how to fix it)`. All of them cost one device sync together,
    which on GPUs stalls the queue of launched kernels.
    """
    checks = tuple(check for check in checks if check[1] is not None and check[1].numel() > 0)
    if not checks or torch.compiler.is_compiling():
        return
    bounds = torch.stack([bound.long() for _, ids, _, _ in checks for bound in torch.aminmax(ids)]).tolist()
    for (name, _, limit, fix), low, high in zip(checks, bounds[::2], bounds[1::2], strict=True):
        if low < 0 or high >= limit:
            raise ValueError(
                f"{name} contains {low if low < 0 else high}, outside the valid range [0, {limit}): {fix}"
            )


class OpenBertPreTrainedModel(PreTrainedModel):
    config_class = OpenBertConfig
    config: OpenBertConfig
    base_model_prefix = "bert"  # BERT's: checkpoints load with or without the `bert.` prefix
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["OpenBertEmbeddings", "OpenBertLayer"]
    # Older BERT checkpoints saved the position-id buffer; it is derived, not learned.
    _keys_to_ignore_on_load_unexpected = [r"embeddings\.position_ids"]

    def _init_weights(self, module: nn.Module) -> None:
        """Normal(0, initializer_range) weights, zero biases, unit LayerNorms (the default), zero MLM bias."""
        super()._init_weights(module)
        if isinstance(module, OpenBertLMPredictionHead):
            init.zeros_(module.bias)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' `save_pretrained`, with an `auto_map` that names every openbert Auto class."""
        module = __name__.rsplit(".", 1)[-1]
        auto_map = {"AutoConfig": f"{self.config.__module__.rsplit('.', 1)[-1]}.{type(self.config).__name__}"}
        auto_map.update({auto: f"{module}.{name}" for auto, name in AUTO_CLASS_NAMES.items()})
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _return(self, output: ModelOutput, return_dict: bool | None) -> ModelOutput | tuple:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()


class OpenBertModel(OpenBertPreTrainedModel):
    """The bare encoder: `last_hidden_state` `(batch, seq, hidden)` and `pooler_output` `(batch, hidden)`."""

    def __init__(self, config: OpenBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = OpenBertEmbeddings(config)
        self.encoder = OpenBertEncoder(config)
        self.pooler = OpenBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling | tuple:
        """Encode a batch.

        Args:
            input_ids: `(batch, seq)` token ids in `[0, vocab_size)`; or `inputs_embeds` `(batch, seq, hidden)`.
            attention_mask: `(batch, seq)`, 1 for real tokens and 0 for padding.
            token_type_ids: `(batch, seq)` segment ids in `[0, type_vocab_size)`; default all 0.
            position_ids: `(batch, seq)` or `(seq,)` in `[0, max_position_embeddings)`; default 0..seq-1.
        """
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = (
            config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        batch_size, seq_len = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        device = (input_ids if input_ids is not None else inputs_embeds).device
        max_len = config.max_position_embeddings
        if seq_len > max_len:
            raise ValueError(
                f"The sequence length {seq_len} exceeds max_position_embeddings={max_len}; "
                f"truncate the inputs, e.g. tokenizer(..., truncation=True, max_length={max_len})."
            )
        if attention_mask is not None and attention_mask.shape != (batch_size, seq_len):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected (batch, seq) = "
                f"{(batch_size, seq_len)}: 1 for real tokens, 0 for padding."
            )
        if output_attentions and config._attn_implementation != "eager":
            raise ValueError(
                f"output_attentions=True needs attn_implementation='eager' (this model uses "
                f"{config._attn_implementation!r}); load it with from_pretrained(..., attn_implementation='eager')."
            )
        _check_id_ranges(
            ("input_ids", input_ids, self.embeddings.word_embeddings.num_embeddings,
             "use this model's tokenizer, or call resize_token_embeddings() after adding tokens."),
            ("token_type_ids", token_type_ids, config.type_vocab_size,
             f"segment ids must be below config.type_vocab_size={config.type_vocab_size}."),
            ("position_ids", position_ids, config.max_position_embeddings,
             f"positions must be below config.max_position_embeddings={config.max_position_embeddings}."),
        )
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=device)
        position_ids = position_ids.expand(batch_size, seq_len)

        # sdpa attends on the packed tokens (`attend_packed`): on GPUs whenever there is padding, on CPUs when
        # enough of it (PER_SEQUENCE_ATTENTION_MIN_WORK); never under torch.compile, which would trace one graph
        # per pattern of sequence lengths.
        min_pairs = None
        if config._attn_implementation == "sdpa" and not torch.compiler.is_compiling():
            head_dim = config.hidden_size // config.num_attention_heads
            # Head sizes that flash attention takes as they are (tested on an H200); for others, the padded
            # layout lets SDPA choose a kernel.
            if device.type == "cuda" and head_dim % 8 == 0 and head_dim <= 256:
                min_pairs = 0.0
            elif device.type == "cpu":
                min_pairs = PER_SEQUENCE_ATTENTION_MIN_WORK / config.hidden_size
        layout = TokenLayout(attention_mask, batch_size, seq_len, config.unpad_inputs, min_pairs)
        hidden_states = self.embeddings(
            None if input_ids is None else layout.pack(input_ids),
            layout.pack(token_type_ids),
            layout.pack(position_ids),
            None if inputs_embeds is None else layout.pack(inputs_embeds),
        )
        # Only the padded attention layout needs the mask; `create_bidirectional_mask` builds the form the
        # chosen attention implementation expects (additive for eager, boolean or None for sdpa).
        mask = None if layout.lengths is not None else create_bidirectional_mask(
            config=config,
            inputs_embeds=hidden_states.new_empty(batch_size, seq_len, 0),
            attention_mask=attention_mask,
        )
        all_hidden_states = [layout.unpack(hidden_states)] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for layer in self.encoder.layer:
            hidden_states, probs = layer(hidden_states, layout, mask)
            if output_hidden_states:
                all_hidden_states.append(layout.unpack(hidden_states))
            if output_attentions:
                all_attentions.append(probs)

        sequence_output = all_hidden_states[-1] if output_hidden_states else layout.unpack(hidden_states)
        output = BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=self.pooler(sequence_output) if self.pooler is not None else None,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
        )
        return self._return(output, return_dict)


def _masked_lm(
    head: OpenBertLMPredictionHead, sequence_output: torch.Tensor, labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """MLM logits and loss. With labels, the head runs on labelled rows only: `(num_labelled, vocab)` logits
    in row-major order of `labels != -100` (the 30522-way projection of unlabelled rows is wasted work)."""
    if labels is None:
        return head(sequence_output), None
    vocab_size = head.decoder.out_features
    selected = labels != IGNORE_INDEX
    targets = labels[selected]
    _check_id_ranges(("labels", targets, vocab_size, "MLM labels are token ids, or -100 for positions to ignore."))
    logits = head(sequence_output[selected])
    return logits, F.cross_entropy(logits, targets)


class _TiedMaskedLMMixin:
    """Decoder weight tied to the word embeddings, decoder bias tied to `cls.predictions.bias`."""

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias


class OpenBertForPreTraining(_TiedMaskedLMMixin, OpenBertPreTrainedModel):
    """Encoder with BERT's two pretraining heads: masked-LM and next-sentence prediction."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.bert = OpenBertModel(config)
        self.cls = OpenBertPreTrainingHeads(config, mlm=True, nsp=True)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> OpenBertForPreTrainingOutput | tuple:
        """labels: `(batch, seq)` token ids at masked positions, -100 elsewhere.
        next_sentence_label: `(batch,)`, 0 when B follows A, 1 when B is random."""
        outputs = self.bert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states, return_dict=True,
        )
        prediction_logits, mlm_loss = _masked_lm(self.cls.predictions, outputs.last_hidden_state, labels)
        seq_relationship_logits = self.cls.seq_relationship(outputs.pooler_output)
        nsp_loss = None
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(seq_relationship_logits, next_sentence_label.view(-1))
        parts = [part for part in (mlm_loss, nsp_loss) if part is not None]
        output = OpenBertForPreTrainingOutput(
            loss=sum(parts) if parts else None,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            mlm_loss=mlm_loss,
            nsp_loss=nsp_loss,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return self._return(output, return_dict)


class OpenBertForMaskedLM(_TiedMaskedLMMixin, OpenBertPreTrainedModel):
    """Encoder with the masked-LM head (fill-mask). With `labels`, `logits` holds the labelled rows only,
    `(num_labelled, vocab_size)` in row-major order of `labels != -100`; without, `(batch, seq, vocab_size)`."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.bert = OpenBertModel(config, add_pooling_layer=False)
        self.cls = OpenBertPreTrainingHeads(config, mlm=True, nsp=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MaskedLMOutput | tuple:
        outputs = self.bert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states, return_dict=True,
        )
        logits, loss = _masked_lm(self.cls.predictions, outputs.last_hidden_state, labels)
        output = MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return self._return(output, return_dict)


class OpenBertForNextSentencePrediction(OpenBertPreTrainedModel):
    """Encoder with the next-sentence head: `logits` `(batch, 2)`, 0 = B follows A, 1 = B is random."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.bert = OpenBertModel(config)
        self.cls = OpenBertPreTrainingHeads(config, mlm=False, nsp=True)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> NextSentencePredictorOutput | tuple:
        outputs = self.bert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states, return_dict=True,
        )
        logits = self.cls.seq_relationship(outputs.pooler_output)
        loss = None if labels is None else F.cross_entropy(logits, labels.view(-1))
        output = NextSentencePredictorOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return self._return(output, return_dict)


def _classifier_dropout(config: OpenBertConfig) -> nn.Dropout:
    return nn.Dropout(config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout)


class OpenBertForSequenceClassification(OpenBertPreTrainedModel):
    """Pooled `[CLS]` -> dropout -> linear: `logits` `(batch, num_labels)`.

    The loss follows `config.problem_type`, inferred on first use as transformers does: one label means
    regression (MSE), integer labels single-label classification (cross-entropy), float labels of shape
    `(batch, num_labels)` multi-label classification (BCE with logits).
    """

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = OpenBertModel(config)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        outputs = self.bert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states, return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None if labels is None else self._loss(logits, labels)
        output = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return self._return(output, return_dict)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
        if self.config.problem_type == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class OpenBertForTokenClassification(OpenBertPreTrainedModel):
    """Per-token dropout -> linear: `logits` `(batch, seq, num_labels)`; labels -100 are ignored."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = OpenBertModel(config, add_pooling_layer=False)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> TokenClassifierOutput | tuple:
        outputs = self.bert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states, return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        output = TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return self._return(output, return_dict)


class OpenBertForQuestionAnswering(OpenBertPreTrainedModel):
    """Extractive QA: `start_logits` and `end_logits` `(batch, seq)` over the tokens.

    Padded positions get the lowest logit of the dtype, so the loss is a softmax over real tokens only.
    Positions outside the sequence are clamped to `seq` and ignored by the loss, as in transformers.
    """

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        if config.num_labels != 2:
            raise ValueError(
                f"OpenBertForQuestionAnswering scores each token as answer start and end, so config.num_labels "
                f"must be 2 (got {config.num_labels}); drop num_labels from the config or set it to 2."
            )
        self.bert = OpenBertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> QuestionAnsweringModelOutput | tuple:
        outputs = self.bert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states, return_dict=True,
        )
        logits = self.qa_outputs(outputs.last_hidden_state)
        if attention_mask is not None:
            # Padding can never be the answer, so it stays out of the softmax. (transformers' BERT lets the
            # arbitrary logits of padded positions in, which makes its loss depend on how a batch is padded.)
            logits = logits.masked_fill(attention_mask.unsqueeze(-1) == 0, torch.finfo(logits.dtype).min)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.size(1)
            losses = [
                F.cross_entropy(logits, positions.view(-1).clamp(0, ignored), ignore_index=ignored)
                for logits, positions in ((start_logits, start_positions), (end_logits, end_positions))
            ]
            loss = (losses[0] + losses[1]) / 2
        output = QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return self._return(output, return_dict)


class OpenBertForMultipleChoice(OpenBertPreTrainedModel):
    """Scores each of `num_choices` sequences with pooled `[CLS]` -> linear: `logits` `(batch, num_choices)`.

    Inputs are `(batch, num_choices, seq)` (`inputs_embeds`: `(batch, num_choices, seq, hidden)`).
    """

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.bert = OpenBertModel(config)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MultipleChoiceModelOutput | tuple:
        num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[1]

        def flat(x: torch.Tensor | None, dims: int) -> torch.Tensor | None:  # fold choices into the batch
            return None if x is None else x.reshape(-1, *x.shape[-dims:])

        outputs = self.bert(
            flat(input_ids, 1), flat(attention_mask, 1), flat(token_type_ids, 1), flat(position_ids, 1),
            flat(inputs_embeds, 2), output_attentions, output_hidden_states, return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels.view(-1))
        output = MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return self._return(output, return_dict)


__all__ = [
    "OpenBertForMaskedLM",
    "OpenBertForMultipleChoice",
    "OpenBertForNextSentencePrediction",
    "OpenBertForPreTraining",
    "OpenBertForQuestionAnswering",
    "OpenBertForSequenceClassification",
    "OpenBertForTokenClassification",
    "OpenBertModel",
    "OpenBertPreTrainedModel",
]
