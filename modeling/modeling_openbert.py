"""openbert: BERT's bidirectional Transformer encoder and its task heads, as transformers models.

The encoder is BERT's (Devlin et al., 2019): token + position + segment embeddings, then post-LayerNorm
self-attention blocks. Parameter names are BERT's, so transformers' BERT checkpoints load unchanged, and a
call gives what transformers' `Bert*` class gives for the same call (same shapes, same values at real
positions, hidden states and attentions recorded the transformers 5 way).

Speed comes from two fast paths. When a batch has padding, the encoder runs on its real tokens only
(`packed_tokens.py`; `config.unpad_inputs`, on by default: padded positions of `last_hidden_state` then hold
zeros); a batch that arrives packed (transformers' `DataCollatorWithFlattening`: one `(1, total_tokens)` row,
`position_ids` restarting per sequence, `cu_seq_lens_q`/`max_length_q`) runs as it is, with no padding anywhere.
The masked-LM head can project only the labelled rows onto the vocabulary (`config.sparse_prediction`,
off by default because it changes the logits' shape; openbert's pretraining turns it on).

The same layers make BERT's decoder (`config.is_decoder`: causal self-attention with a key/value cache;
`config.add_cross_attention`: a cross-attention block over an encoder's output in each layer), as transformers'
`BertLMHeadModel` does: `OpenBertLMHeadModel` generates on its own or as the decoder of an `EncoderDecoderModel`
(BERT2BERT). Decoders run on the padded layout, the fast paths above serve encoders.

This file is copied next to every saved checkpoint (remote code), so it imports only transformers, torch and
its sibling files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MethodType
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import EncoderDecoderConfig, EncoderDecoderModel, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple, is_flash_attention_requested
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_openbert import OpenBertConfig, OpenBertEncoderDecoderConfig
from .packed_tokens import (
    PACKED_BATCH_KWARGS,
    PackedSequences,
    TokenLayout,
    attend_packed,
    choose_layout,
    fast_dropout,
    find_packed_sequences,
    is_tracing,
    packed_attention,
    packed_input_layout,
    same_sequence,
    softmax_attention,
)
from .quantization import OpenBertInt8Config  # noqa: F401  (registers the int8 method; copied with the checkpoint)

IGNORE_INDEX = -100  # label value that losses skip (transformers' convention); the one definition in openbert

logger = logging.get_logger(__name__)

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
    "AutoModelForCausalLM": "OpenBertLMHeadModel",
}


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
    context, probs = softmax_attention(query, key, value, attention_mask, scaling, dropout, module.training)
    return context.transpose(1, 2).contiguous(), probs


class OpenBertDropout(nn.Dropout):
    """`nn.Dropout` whose training mode on a CPU draws its mask faster (`fast_dropout`)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return fast_dropout(hidden_states, self.p, self.training)


class OpenBertEmbeddings(nn.Module):
    """Word + segment + position embeddings, LayerNorm, dropout; works on ids of any shape."""

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = OpenBertDropout(config.hidden_dropout_prob)

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


class _SideBySideLinear(torch.autograd.Function):
    """`F.linear(x, cat(weights), cat(biases))` whose backward pass keeps the weights, not their concatenation.

    Plain autograd would save the concatenated weight for the input's gradient: one more copy of the QKV
    weights per layer alive from the forward to the backward pass (81 MiB for BERT-base). Here the backward
    concatenates them again, briefly.
    """

    @staticmethod
    def forward(ctx: Any, hidden_states: torch.Tensor, *parameters: torch.Tensor) -> torch.Tensor:
        weights, biases = parameters[: len(parameters) // 2], parameters[len(parameters) // 2:]
        ctx.save_for_backward(hidden_states, *weights)
        return F.linear(hidden_states, torch.cat(weights), torch.cat(biases))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden_states, *weights = ctx.saved_tensors
        sizes = [weight.shape[0] for weight in weights]
        grad_input = grad @ torch.cat(weights) if ctx.needs_input_grad[0] else None
        if not any(ctx.needs_input_grad[1:]):  # frozen projections
            return grad_input, *[None] * 2 * len(weights)
        flat_grad = grad.reshape(-1, grad.shape[-1])
        grad_weights = (flat_grad.t() @ hidden_states.reshape(-1, hidden_states.shape[-1])).split(sizes)
        return grad_input, *grad_weights, *flat_grad.sum(0).split(sizes)


def _project(hidden_states: torch.Tensor, projections: tuple[nn.Module, ...]) -> torch.Tensor:
    """`(*tokens, hidden)` -> `(*tokens, len(projections) * hidden)`: the projections side by side."""
    if all(type(projection) is nn.Linear for projection in projections):
        # One GEMM and one move between layouts instead of one per projection (the weights stay separate modules,
        # under BERT's checkpoint names).
        weights = [projection.weight for projection in projections]
        biases = [projection.bias for projection in projections]
        if torch.is_grad_enabled() and not is_tracing():  # compile and export differentiate the plain ops
            return _SideBySideLinear.apply(hidden_states, *weights, *biases)
        return F.linear(hidden_states, torch.cat(weights), torch.cat(biases))
    # Swapped for other modules, e.g. by torch.ao's dynamic int8 quantization: run them as they are.
    return torch.cat([projection(hidden_states) for projection in projections], dim=-1)


class OpenBertSelfAttention(nn.Module):
    """Multi-head attention: BERT's `attention.self`, and in decoders `crossattention.self`.

    Self-attention attends over the layer's own tokens: in both directions in an encoder, over the current and
    earlier tokens (those in the cache included) in a decoder. Cross-attention (`is_cross_attention`) takes its
    queries from the decoder and its keys and values from the encoder's output; with a cache it projects that
    output once per generated sequence. Attention runs on the packed tokens (encoders) or through transformers'
    attention interface on the padded layout.
    """

    def __init__(self, config: OpenBertConfig, layer_idx: int | None = None, is_cross_attention: bool = False):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx  # this layer's slot in a cache
        self.is_cross_attention = is_cross_attention
        # Read by transformers' sdpa and flash functions when no mask is given.
        self.is_causal = config.is_decoder and not is_cross_attention
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def forward(
        self,
        hidden_states: torch.Tensor,
        layout: TokenLayout,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states in the layout's form, `(batch, seq, hidden)` or `(num_tokens, hidden)` -> the same form,
        and the attention probabilities `(batch, heads, seq, keys)` where the implementation returns them (eager);
        keys: the encoder's length for cross-attention, the cached and current tokens for self-attention.
        encoder_hidden_states: `(batch, source_seq, hidden)`, for cross-attention."""
        dropout = self.dropout_prob if self.training else 0.0
        if self.is_cross_attention:
            query, key, value = self._cross_attention_inputs(hidden_states, encoder_hidden_states, cache)
        else:
            qkv = _project(hidden_states, (self.query, self.key, self.value))
            if layout.attends_packed:
                qkv = qkv.view(-1, 3, self.num_heads, self.head_dim)
                # `(num_tokens, hidden)`, or `(1, total_tokens, hidden)` for a batch that arrived packed
                return attend_packed(qkv, layout, dropout, self.scaling).view(hidden_states.shape), None
            query, key, value = self._split_heads(layout.unpack(qkv), 3)
            if cache is not None:
                self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
                key, value = self_cache.update(key, value, self.layer_idx)  # all tokens so far, this call's last
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        context, probs = attention(
            self, query, key, value, attention_mask, dropout=dropout, scaling=self.scaling, **kwargs
        )
        return layout.pack(context.reshape(*context.shape[:2], -1)), probs

    def _split_heads(self, projected: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
        """`(batch, seq, count * hidden)` -> `count` tensors `(batch, heads, seq, head_dim)`."""
        batch_size, seq_len = projected.shape[:2]
        heads = projected.view(batch_size, seq_len, count, self.num_heads, self.head_dim)
        return heads.permute(2, 0, 3, 1, 4).unbind(0)

    def _cross_attention_inputs(
        self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, cache: Cache | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries from the decoder's `(batch, seq, hidden)`; keys and values from the encoder's output, or from
        the cache once this layer has put them there (the encoder's output does not change while generating)."""
        (query,) = self._split_heads(self.query(hidden_states), 1)
        if isinstance(cache, EncoderDecoderCache) and cache.is_updated.get(self.layer_idx):
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            return query, layer.keys, layer.values
        key, value = self._split_heads(_project(encoder_hidden_states, (self.key, self.value)), 2)
        if isinstance(cache, EncoderDecoderCache):
            key, value = cache.cross_attention_cache.update(key, value, self.layer_idx)
            cache.is_updated[self.layer_idx] = True
        return query, key, value


class OpenBertResidualOutput(nn.Module):
    """Projection, dropout, residual add and post-LayerNorm: closes both halves of an encoder layer."""

    def __init__(self, config: OpenBertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = OpenBertDropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class OpenBertAttention(nn.Module):
    """An attention block: attention, then projection, residual add and LayerNorm (self- or cross-attention)."""

    def __init__(self, config: OpenBertConfig, layer_idx: int | None = None, is_cross_attention: bool = False):
        super().__init__()
        # `attention.self.*` / `crossattention.self.*`: BERT's checkpoint names
        self.self = OpenBertSelfAttention(config, layer_idx, is_cross_attention)
        self.output = OpenBertResidualOutput(config, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        layout: TokenLayout,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        context, _ = self.self(hidden_states, layout, attention_mask, encoder_hidden_states, cache=cache, **kwargs)
        return self.output(context, hidden_states)


# oneDNN's matrix product with an activation applied to its output as it is written (the op inductor uses).
_MKLDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
_MKLDNN_BF16 = _MKLDNN_LINEAR is not None and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _fused_cpu_dense_gelu(dense: nn.Module, hidden_states: torch.Tensor) -> bool:
    """Whether `gelu(dense(hidden_states))` runs as one oneDNN call: bfloat16 inference on a CPU, outside compile
    and export, which see the plain ops. bfloat16's separate GELU is slow on CPUs: the fused call made bfloat16
    SST-2 inference 4-10% faster (benchmarks/README.md). In float32 it was no faster, so float32 keeps the
    separate ops."""
    return (
        _MKLDNN_BF16
        and hidden_states.dtype == torch.bfloat16
        and hidden_states.device.type == "cpu"
        and not torch.is_grad_enabled()
        and type(dense) is nn.Linear
        and not is_tracing()
    )


class OpenBertIntermediate(nn.Module):
    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]
        self.fuses_gelu = config.hidden_act == "gelu"  # the exact (erf) GELU, BERT's

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.fuses_gelu and _fused_cpu_dense_gelu(self.dense, hidden_states):
            return _MKLDNN_LINEAR(hidden_states, self.dense.weight, self.dense.bias, "gelu", [], "none")
        return self.intermediate_act_fn(self.dense(hidden_states))


class OpenBertLayer(GradientCheckpointingLayer):
    """One post-LN layer in the layout's form: self-attention block, cross-attention block (decoders with
    `config.add_cross_attention`, when given the encoder's output), then feed-forward block."""

    def __init__(self, config: OpenBertConfig, layer_idx: int | None = None):
        super().__init__()
        self.attention = OpenBertAttention(config, layer_idx)
        self.crossattention = (
            OpenBertAttention(config, layer_idx, is_cross_attention=True) if config.add_cross_attention else None
        )
        self.intermediate = OpenBertIntermediate(config)
        self.output = OpenBertResidualOutput(config, config.intermediate_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        layout: TokenLayout,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attended = self.attention(hidden_states, layout, attention_mask, cache=cache, **kwargs)
        if encoder_hidden_states is not None:
            if self.crossattention is None:
                raise ValueError(
                    "encoder_hidden_states were passed to a model without cross-attention: build the decoder with "
                    "is_decoder=True and add_cross_attention=True (EncoderDecoderModel sets both)."
                )
            attended = self.crossattention(attended, layout, encoder_attention_mask, encoder_hidden_states,
                                           cache=cache, **kwargs)
        return self.feed_forward(attended)

    def feed_forward(self, attended: torch.Tensor) -> torch.Tensor:
        """The feed-forward block, `(*tokens, hidden)` -> the same: dense, activation, dense, dropout, residual add,
        LayerNorm. A method of its own so that `compile_layers` can compile it as one region."""
        return self.output(self.intermediate(attended), attended)


class _CompiledTokenwiseBlock:
    """`function(module, *tensors)` compiled, for blocks that work on each token alone (dense layers, activation,
    dropout, residual add, LayerNorm) and take tensors `(*tokens, features)`.

    Called as a method of any module the function serves (`MethodType(block, module)`): the module is an argument
    of the compiled function, so one graph serves every layer (Dynamo lifts parameters to graph inputs), and a
    deep copy of the module rebinds the method to the copy's weights. The tokens are flattened to one dimension,
    marked dynamic: padded `(batch, seq, ...)`, packed `(num_tokens, ...)` and arrived-packed `(1, total, ...)`
    activations of any length then share that graph. Only the token dimension is dynamic: with `dynamic=True` (all
    dimensions), a first batch whose token count equals the hidden size recompiles at the next length.
    """

    def __init__(self, function: Callable[..., torch.Tensor], compile_kwargs: dict[str, Any]):
        self.function = function
        self.compiled = torch.compile(function, **compile_kwargs)

    def __call__(self, module: nn.Module, *tensors: torch.Tensor) -> torch.Tensor:
        if is_tracing():  # inside the caller's own compile or export: its graph takes the block as it is
            return self.function(module, *tensors)
        tokens = [tensor.reshape(-1, tensor.shape[-1]) for tensor in tensors]
        for flat in tokens:
            torch._dynamo.maybe_mark_dynamic(flat, 0)  # "maybe": a 1-token batch may specialise, not fail
        output = self.compiled(module, *tokens)
        return output.view(*tensors[0].shape[:-1], output.shape[-1])


class OpenBertEncoder(nn.Module):
    """The stack of layers (BERT's name, also in decoders)."""

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.layer = nn.ModuleList(OpenBertLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers))

    def forward(
        self,
        hidden_states: torch.Tensor,
        layout: TokenLayout,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        for layer in self.layer:
            # The encoder's output is positional: gradient checkpointing (reentrant) only passes gradients to
            # positional tensors. The cache is a keyword, which checkpointing drops (it cannot replay an update).
            hidden_states = layer(hidden_states, layout, attention_mask, encoder_hidden_states, encoder_attention_mask,
                                  cache=cache, **kwargs)
        return hidden_states


class OpenBertPooler(nn.Module):
    """tanh(dense(first token)): the `[CLS]` summary used by NSP and sentence-level heads."""

    def __init__(self, config: OpenBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, sequence_output: torch.Tensor, sequence_starts: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch, seq, hidden)` -> `(batch, hidden)`; a packed batch's `(1, total_tokens, hidden)` with its
        sequences' first tokens `sequence_starts` `(num_sequences,)` -> `(num_sequences, hidden)`."""
        if sequence_starts is None:
            first_tokens = sequence_output[:, 0]
        else:
            first_tokens = sequence_output[0].index_select(0, sequence_starts)
        return self.activation(self.dense(first_tokens))


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
        prediction_logits: MLM scores, `(batch, seq, vocab_size)`. With `config.sparse_prediction` and `labels`,
            only the labelled rows, `(num_labelled, vocab_size)`, in row-major order of `labels != -100`.
        seq_relationship_logits: `(batch, 2)` next-sentence scores (0 = B follows A, 1 = B is random).
        For a packed batch, batch is 1 and seq is total_tokens, except in `seq_relationship_logits`
        `(num_sequences, 2)`.
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
    which on GPUs stalls the queue of launched kernels; traced graphs skip them (they cannot branch on values).
    """
    checks = tuple(check for check in checks if check[1] is not None and check[1].numel() > 0)
    if not checks or is_tracing():
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
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # transformers 5 records these outputs with forward hooks (`capture_outputs`): each layer's output is a
    # hidden state, each attention module's second output its attention probabilities, under `attentions`
    # (`attention.self`) or `cross_attentions` (`crossattention.self`, decoders), told apart by module name.
    _can_record_outputs = {
        "hidden_states": OpenBertLayer,
        "attentions": OutputRecorder(OpenBertSelfAttention, index=1, layer_name="attention"),
        "cross_attentions": OutputRecorder(OpenBertSelfAttention, index=1, layer_name="crossattention"),
    }
    _no_split_modules = ["OpenBertEmbeddings", "OpenBertLayer"]
    # Older BERT checkpoints saved the position-id buffer; it is derived, not learned.
    _keys_to_ignore_on_load_unexpected = [r"embeddings\.position_ids"]
    # Every head's loss is a mean over its own batch, as BERT's is, so the Trainer must average over gradient
    # accumulation steps itself. (A `**kwargs` forward alone would tell it the loss was already normalised by
    # `num_items_in_batch`, which transformers' BERT declares without doing.)
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        """Normal(0, initializer_range) weights, zero biases, unit LayerNorms (the default), zero MLM bias."""
        super()._init_weights(module)
        if isinstance(module, OpenBertLMPredictionHead):
            init.zeros_(module.bias)

    def compile_layers(self, **compile_kwargs: Any) -> None:
        """Compile the elementwise work of every layer with `torch.compile` (regional compilation), in place.

        Compiled, in each `OpenBertLayer`: the attention output block (dense, dropout, residual add, LayerNorm; the
        cross-attention one too in decoders) and the feed-forward block (`feed_forward`: dense, activation, dense,
        dropout, residual add, LayerNorm) as one region, so that bias + GELU and dropout + residual + LayerNorm
        fuse around the matrix multiplications. Attention itself stays eager: it runs on packed tokens grouped by
        length (`packed_tokens.py`), Python values that a compiled layer would guard on and recompile for. Each
        block's graph is shared by all layers and has a dynamic token dimension, so variable-length batches,
        padded or packed, do not recompile (switching train/eval or grad modes compiles once more each).

        The first calls compile (tens of seconds on a CPU, once per process); weights, state_dict keys,
        `save_pretrained` and hooks are unchanged. `compile_kwargs` go to `torch.compile` (e.g.
        `backend="aot_eager"`, `mode="max-autotune-no-cudagraphs"`). Calling it again recompiles with the new ones.
        """
        residual_output = _CompiledTokenwiseBlock(OpenBertResidualOutput.forward, compile_kwargs)
        feed_forward = _CompiledTokenwiseBlock(OpenBertLayer.feed_forward, compile_kwargs)
        for layer in self.modules():
            if isinstance(layer, OpenBertLayer):
                layer.feed_forward = MethodType(feed_forward, layer)
                for attention in (layer.attention, layer.crossattention):
                    if attention is not None:
                        attention.output.forward = MethodType(residual_output, attention.output)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' `save_pretrained`, with an `auto_map` that names every openbert Auto class."""
        module = __name__.rsplit(".", 1)[-1]
        auto_map = {"AutoConfig": f"{self.config.__module__.rsplit('.', 1)[-1]}.{type(self.config).__name__}"}
        auto_map.update({auto: f"{module}.{name}" for auto, name in AUTO_CLASS_NAMES.items()})
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)


class OpenBertModel(OpenBertPreTrainedModel):
    """The bare encoder: `last_hidden_state` `(batch, seq, hidden)` and `pooler_output` `(batch, hidden)`; for a
    packed batch `(1, total_tokens, hidden)` and `(num_sequences, hidden)` (see `forward`)."""

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

    @capture_outputs
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")  # transformers 5's alias, as on BertModel
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPoolingAndCrossAttentions:
        """Encode a batch (or, with `config.is_decoder`, decode it left to right).

        Args:
            input_ids: `(batch, seq)` token ids in `[0, vocab_size)`; or `inputs_embeds` `(batch, seq, hidden)`.
            attention_mask: `(batch, seq)`, 1 for real tokens and 0 for padding; with a cache `(batch, past + seq)`.
            token_type_ids: `(batch, seq)`, `(1, seq)` or `(seq,)` segment ids in `[0, type_vocab_size)`; default 0.
            position_ids: `(batch, seq)`, `(1, seq)` or `(seq,)` in `[0, max_position_embeddings)`; default
                0..seq-1, after the cached tokens when there are some.
            encoder_hidden_states: `(batch, source_seq, hidden)` encoder output, read by cross-attention (decoders
                with `config.add_cross_attention`); encoder_attention_mask: `(batch, source_seq)`, 1 for real tokens.
            cache: a decoder's keys and values of earlier tokens (`DynamicCache`; `EncoderDecoderCache` with
                cross-attention), extended in place; created when `use_cache` (default `config.use_cache`) and
                returned as `cache`. Encoders have none.
            kwargs: transformers' keyword arguments, e.g. `output_hidden_states=True` (or a list of indices),
                `output_attentions=True` (eager only; other implementations warn and return none), `return_dict`.

        Packed batches (padding-free; encoders only), as transformers' `DataCollatorWithFlattening` makes them:
        `input_ids`, `token_type_ids` and `position_ids` `(1, total_tokens)`, the sequences one after the other,
        no `attention_mask`; where each sequence starts comes from `cu_seq_lens_q` `(num_sequences + 1,)` (0, then
        each sequence's end; `cu_seq_lens_k` is the same for self-attention) with `max_length_q` (its longest
        sequence), or, without them, from `position_ids` restarting at 0 (which costs a device sync on GPUs;
        `return_flash_attn_kwargs=True` avoids it). `position_ids` default to 0, 1, ... within each sequence.
        Returns `last_hidden_state` `(1, total_tokens, hidden)` and `pooler_output` `(num_sequences, hidden)`, the
        same values as the padded batch of the same sequences at its real positions.
        """
        cache, use_cache = self._decoder_cache(cache, use_cache, encoder_hidden_states)
        past_length = 0 if cache is None else cache.get_seq_length()
        packed = self._packed_sequences(input_ids, inputs_embeds, attention_mask, position_ids, kwargs)
        kwargs = {key: value for key, value in kwargs.items() if key not in PACKED_BATCH_KWARGS}  # read here only
        batch_size, seq_len = self._check_inputs(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                                                 past_length, packed)
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if token_type_ids is None:
            token_type_ids = torch.zeros(seq_len, dtype=torch.long, device=device)
        if position_ids is None:
            position_ids = torch.arange(past_length, past_length + seq_len, device=device) if packed is None \
                else packed.position_ids(seq_len, device)
        layout = self._choose_layout(attention_mask, batch_size, seq_len, device, kwargs, packed)
        pack = layout.pack
        hidden_states = self.embeddings(
            None if input_ids is None else pack(input_ids),
            pack(token_type_ids.expand(batch_size, seq_len)),
            pack(position_ids.expand(batch_size, seq_len)),
            None if inputs_embeds is None else pack(inputs_embeds),
        )
        mask, encoder_mask = self._attention_masks(layout, hidden_states, attention_mask, encoder_hidden_states,
                                                   encoder_attention_mask, cache)
        sequence_output = layout.output(
            self.encoder(hidden_states, layout, mask, encoder_hidden_states, encoder_mask, cache=cache, **kwargs)
        )
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=self.pooler(sequence_output, layout.sequence_starts) if self.pooler is not None else None,
            cache=cache if use_cache else None,
        )

    def _decoder_cache(
        self, cache: Cache | None, use_cache: bool | None, encoder_hidden_states: torch.Tensor | None
    ) -> tuple[Cache | None, bool]:
        """The cache this call reads and extends, and whether to return it. Encoders have none; a decoder creates
        one when `use_cache` (default `config.use_cache`) and none is passed, as transformers' BERT does."""
        if not self.config.is_decoder:
            return None, False
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None:
            if encoder_hidden_states is not None or self.config.is_encoder_decoder:
                cache = EncoderDecoderCache(DynamicCache(config=self.config), DynamicCache(config=self.config))
            else:
                cache = DynamicCache(config=self.config)
        return cache, use_cache

    def _attention_masks(
        self,
        layout: TokenLayout,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        cache: Cache | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The self-attention mask and the cross-attention mask, in the form the attention implementation expects
        (additive for eager, boolean or None for sdpa, a block mask for flex). Attention on packed tokens needs
        none; a decoder's self-attention mask is causal, over the cached tokens too."""
        if layout.attends_packed:
            return None, None
        shape = hidden_states.new_empty(layout.batch_size, layout.seq_len, 0)  # batch, query length, dtype, device
        if layout.sequence_ids is not None:  # a packed row: each sequence attends to itself only
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=shape, attention_mask=None,
                                             and_mask_function=same_sequence(layout.sequence_ids))
            return mask, None
        if not self.config.is_decoder:
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=shape, attention_mask=attention_mask)
            return mask, None
        mask = create_causal_mask(config=self.config, inputs_embeds=shape, attention_mask=attention_mask, cache=cache)
        encoder_mask = None if encoder_attention_mask is None else create_bidirectional_mask(
            config=self.config, inputs_embeds=shape, attention_mask=encoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
        )
        return mask, encoder_mask

    def _check_inputs(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        past_length: int = 0,
        packed: PackedSequences | None = None,
    ) -> tuple[int, int]:
        """`(batch, seq)` of the inputs; a ValueError naming the problem and the fix for inputs that do not fit.
        `past_length`: tokens in a decoder's cache, which the attention mask covers too. `packed`: the inputs are
        one row of packed sequences, each of which must fit the positions (the row itself may be longer)."""
        config = self.config
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if input_ids is not None and input_ids.dim() != 2:
            raise ValueError(
                f"input_ids has shape {tuple(input_ids.shape)}, expected (batch, seq): for one sequence add the batch "
                "dimension (input_ids[None], or tokenizer(..., return_tensors='pt'))."
            )
        if inputs_embeds is not None and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != config.hidden_size):
            raise ValueError(
                f"inputs_embeds has shape {tuple(inputs_embeds.shape)}, expected (batch, seq, hidden_size="
                f"{config.hidden_size})."
            )
        batch_size, seq_len = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        max_len, total_len = config.max_position_embeddings, past_length + seq_len
        if packed is not None:
            total_len = packed.max_len or 0  # unknown only while tracing, where nothing is checked
        if total_len > max_len:
            raise ValueError(
                f"The sequence length {total_len} exceeds max_position_embeddings={max_len}; truncate the inputs, "
                f"e.g. tokenizer(..., truncation=True, max_length={max_len}) (when generating: a shorter max_length)."
            )
        if attention_mask is not None and attention_mask.shape != (batch_size, total_len):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected (batch, seq) = "
                f"{(batch_size, total_len)}: 1 for real tokens, 0 for padding"
                + (f" (with {past_length} cached tokens first)." if past_length else ".")
            )
        for name, ids in (("token_type_ids", token_type_ids), ("position_ids", position_ids)):
            if ids is not None and ids.shape not in ((batch_size, seq_len), (1, seq_len), (seq_len,)):
                raise ValueError(
                    f"{name} has shape {tuple(ids.shape)}, expected (batch, seq) = {(batch_size, seq_len)}, "
                    f"(1, {seq_len}) or ({seq_len},) like input_ids."
                )
        _check_id_ranges(
            ("input_ids", input_ids, self.embeddings.word_embeddings.num_embeddings,
             "use this model's tokenizer, or call resize_token_embeddings() after adding tokens."),
            ("token_type_ids", token_type_ids, config.type_vocab_size,
             f"segment ids must be below config.type_vocab_size={config.type_vocab_size}."),
            ("position_ids", position_ids, config.max_position_embeddings,
             f"positions must be below config.max_position_embeddings={config.max_position_embeddings}."),
        )
        return batch_size, seq_len

    def _packed_sequences(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None, kwargs: dict,
    ) -> PackedSequences | None:
        """The sequences of a packed batch (`find_packed_sequences`), or None. Decoders take padded batches: their
        cache and causal mask are per row."""
        inputs = input_ids if input_ids is not None else inputs_embeds
        if inputs is None:
            return None  # _check_inputs says what is missing
        if not self.config.is_decoder:
            return find_packed_sequences(tuple(inputs.shape[:2]), attention_mask, position_ids, kwargs)
        if any(kwargs.get(key) is not None for key in PACKED_BATCH_KWARGS):
            raise ValueError("decoders (config.is_decoder) take padded (batch, seq) batches: drop cu_seq_lens_* / "
                             "max_length_* and pass attention_mask.")
        return None

    def _choose_layout(
        self, attention_mask: torch.Tensor | None, batch_size: int, seq_len: int, device: torch.device, kwargs: dict,
        packed: PackedSequences | None = None,
    ) -> TokenLayout:
        """Packed tokens when the batch has padding and nothing needs the padded layout (see packed_tokens); a
        batch that arrives packed keeps its row."""
        config = self.config
        if is_flash_attention_requested(config) and device.type != "cuda":
            raise ValueError(
                f"attn_implementation={config._attn_implementation!r} runs on CUDA GPUs only; on the CPU use "
                "model.set_attn_implementation('sdpa') (or load with attn_implementation='sdpa')."
            )
        head_dim = config.hidden_size // config.num_attention_heads
        if packed is not None:
            # Recording outputs needs no other layout here: the row is what every layer consumes.
            how = None if is_tracing() else packed_attention(config._attn_implementation, device, head_dim)
            if how is None and is_flash_attention_requested(config):
                raise ValueError(f"flash attention cannot run packed sequences of head size {head_dim} (it takes "
                                 "multiples of 8 up to 256); use attn_implementation='sdpa'.")
            return packed_input_layout(packed, seq_len, device, packed_attention=how, hidden_size=config.hidden_size)
        if config.is_decoder:
            # Causal masks, caches (whose keys keep the padded layout across calls) and cross-attention all work
            # on the padded layout; decoders compute padded positions as transformers' BERT does.
            return TokenLayout(batch_size, seq_len)
        # The same reading of the flags as `capture_outputs`: an argument, else the config's default.
        records = any(kwargs.get(name, getattr(config, name, False)) for name in ("output_hidden_states",
                                                                                 "output_attentions"))
        how = packed_attention(config._attn_implementation, device, head_dim)
        return choose_layout(attention_mask, batch_size, seq_len, unpad=config.unpad_inputs,
                             may_pack=not records and not is_tracing(), packed_attention=how,
                             hidden_size=config.hidden_size)


def _masked_lm(
    head: OpenBertLMPredictionHead, sequence_output: torch.Tensor, labels: torch.Tensor | None, sparse: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """MLM logits and loss (cross-entropy over positions whose label is not -100).

    Logits are `(batch, seq, vocab_size)`, as transformers' BERT returns them; with `sparse` and labels, the head
    runs on the labelled rows only: `(num_labelled, vocab_size)` in row-major order of `labels != -100` (the
    vocabulary projection of the other rows is wasted work in training). A sparse batch without any label has
    loss 0 rather than NaN, so it adds nothing to a training run.
    """
    if labels is None:
        return head(sequence_output), None
    vocab_size = head.decoder.out_features
    _check_id_ranges(("labels", labels.masked_fill(labels == IGNORE_INDEX, 0), vocab_size,
                      "MLM labels are token ids, or -100 for positions to ignore."))
    if not sparse:
        logits = head(sequence_output)
        return logits, F.cross_entropy(logits.view(-1, vocab_size), labels.view(-1), ignore_index=IGNORE_INDEX)
    selected = labels != IGNORE_INDEX
    targets = labels[selected]
    logits = head(sequence_output[selected])
    if targets.numel() == 0:
        return logits, logits.sum()  # zero, and still connected to the graph (every process backpropagates)
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

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> OpenBertForPreTrainingOutput:
        """labels: `(batch, seq)` token ids at masked positions, -100 elsewhere.
        next_sentence_label: `(batch,)`, 0 when B follows A, 1 when B is random.
        A packed batch (see `OpenBertModel.forward`): labels `(1, total_tokens)`, next_sentence_label
        `(num_sequences,)`; `seq_relationship_logits` are then `(num_sequences, 2)`, and `prediction_logits`
        `(1, total_tokens, vocab_size)` (or the labelled rows, with `config.sparse_prediction`)."""
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                            return_dict=True, **kwargs)
        prediction_logits, mlm_loss = _masked_lm(
            self.cls.predictions, outputs.last_hidden_state, labels, self.config.sparse_prediction
        )
        seq_relationship_logits = self.cls.seq_relationship(outputs.pooler_output)
        nsp_loss = None
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(seq_relationship_logits, next_sentence_label.view(-1))
        parts = [part for part in (mlm_loss, nsp_loss) if part is not None]
        return OpenBertForPreTrainingOutput(
            loss=sum(parts) if parts else None,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            mlm_loss=mlm_loss,
            nsp_loss=nsp_loss,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class OpenBertForMaskedLM(_TiedMaskedLMMixin, OpenBertPreTrainedModel):
    """Encoder with the masked-LM head (fill-mask): `logits` `(batch, seq, vocab_size)`. With
    `config.sparse_prediction` and `labels`, only the labelled rows: `(num_labelled, vocab_size)` in row-major
    order of `labels != -100`. A packed batch (see `OpenBertModel.forward`): batch 1, seq total_tokens."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.bert = OpenBertModel(config, add_pooling_layer=False)
        self.cls = OpenBertPreTrainingHeads(config, mlm=True, nsp=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MaskedLMOutput:
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                            return_dict=True, **kwargs)
        sparse = self.config.sparse_prediction
        logits, loss = _masked_lm(self.cls.predictions, outputs.last_hidden_state, labels, sparse)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                              attentions=outputs.attentions)


class OpenBertLMHeadModel(_TiedMaskedLMMixin, OpenBertPreTrainedModel, GenerationMixin):
    """BERT as a left-to-right language model (transformers' `BertLMHeadModel`): `config.is_decoder` makes
    self-attention causal, `config.add_cross_attention` adds attention over an encoder's output (the decoder of
    an `EncoderDecoderModel`). Logits `(batch, seq, vocab_size)` score the next token at every position; the
    prediction head is BERT's masked-LM head, so encoder checkpoints load into it (cross-attention weights,
    absent from them, start from the initialisation and are reported missing)."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        if not config.is_decoder:
            logger.warning("OpenBertLMHeadModel attends in both directions unless config.is_decoder=True; set it to "
                           "use the model as a left-to-right language model.")
        self.bert = OpenBertModel(config, add_pooling_layer=False)
        self.cls = OpenBertPreTrainingHeads(config, mlm=True, nsp=False)
        self.post_init()

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithCrossAttentions:
        """labels: `(batch, seq)`, the inputs themselves (shifted inside: position i predicts token i + 1), -100
        where no loss is wanted. logits_to_keep: score only the last so many positions (0: all), as `generate`
        asks. The other arguments are `OpenBertModel.forward`'s."""
        if labels is not None:
            use_cache = False  # a training step has no next call to cache for
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                            encoder_hidden_states, encoder_attention_mask, cache=cache, use_cache=use_cache,
                            return_dict=True, **kwargs)
        logits = self.cls.predictions(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithCrossAttentions(loss=loss, logits=logits, cache=outputs.cache,
                                                 hidden_states=outputs.hidden_states, attentions=outputs.attentions,
                                                 cross_attentions=outputs.cross_attentions)


class OpenBertForNextSentencePrediction(OpenBertPreTrainedModel):
    """Encoder with the next-sentence head: `logits` `(batch, 2)`, 0 = B follows A, 1 = B is random; labels
    `(batch,)`. A packed batch (see `OpenBertModel.forward`) is scored per sequence: `(num_sequences, 2)`."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.bert = OpenBertModel(config)
        self.cls = OpenBertPreTrainingHeads(config, mlm=False, nsp=True)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> NextSentencePredictorOutput:
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                            return_dict=True, **kwargs)
        logits = self.cls.seq_relationship(outputs.pooler_output)
        loss = None if labels is None else F.cross_entropy(logits, labels.view(-1))
        return NextSentencePredictorOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                           attentions=outputs.attentions)


def _classifier_dropout(config: OpenBertConfig) -> nn.Dropout:
    return OpenBertDropout(config.hidden_dropout_prob if config.classifier_dropout is None
                           else config.classifier_dropout)


def _reject_packed_batch(head: str, inputs: torch.Tensor | None, attention_mask: torch.Tensor | None,
                         position_ids: torch.Tensor | None, kwargs: dict) -> None:
    """A ValueError for a packed batch given to a head whose outputs are per padded row: QA's span logits are a
    softmax over one sequence's positions, multiple choice scores rows of choices."""
    packed = any(kwargs.get(key) is not None for key in PACKED_BATCH_KWARGS) or (
        inputs is not None and find_packed_sequences(tuple(inputs.shape[:2]), attention_mask, position_ids, {}))
    if packed:
        raise ValueError(f"{head} takes padded (batch, seq) batches, not packed ones (cu_seq_lens_*, or position_ids "
                         "restarting at 0 within one row): collate with padding, e.g. DataCollatorWithPadding, "
                         "instead of DataCollatorWithFlattening.")


class OpenBertForSequenceClassification(OpenBertPreTrainedModel):
    """Pooled `[CLS]` -> dropout -> linear: `logits` `(batch, num_labels)`.

    The loss follows `config.problem_type`, inferred on first use as transformers does: one label means
    regression (MSE), integer labels single-label classification (cross-entropy), float labels of shape
    `(batch, num_labels)` multi-label classification (BCE with logits). A packed batch (see
    `OpenBertModel.forward`) is classified per sequence: batch is then num_sequences, for logits and labels.
    """

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = OpenBertModel(config)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                            return_dict=True, **kwargs)
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None if labels is None else self._loss(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)

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
    """Per-token dropout -> linear: `logits` `(batch, seq, num_labels)`; labels -100 are ignored. A packed batch
    (see `OpenBertModel.forward`): logits `(1, total_tokens, num_labels)`, labels `(1, total_tokens)`."""

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = OpenBertModel(config, add_pooling_layer=False)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TokenClassifierOutput:
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                            return_dict=True, **kwargs)
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                     attentions=outputs.attentions)


class OpenBertForQuestionAnswering(OpenBertPreTrainedModel):
    """Extractive QA: `start_logits` and `end_logits` `(batch, seq)` over the tokens.

    Padded positions get the lowest logit of the dtype, so the loss is a softmax over real tokens only.
    Positions outside the sequence are clamped to `seq` and ignored by the loss, as in transformers.
    Packed batches are refused (a ValueError): spans are positions within a padded row.
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

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> QuestionAnsweringModelOutput:
        _reject_packed_batch(type(self).__name__, input_ids if input_ids is not None else inputs_embeds,
                             attention_mask, position_ids, kwargs)
        outputs = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                            return_dict=True, **kwargs)
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
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class OpenBertForMultipleChoice(OpenBertPreTrainedModel):
    """Scores each of `num_choices` sequences with pooled `[CLS]` -> linear: `logits` `(batch, num_choices)`.

    Inputs are `(batch, num_choices, seq)` (`inputs_embeds`: `(batch, num_choices, seq, hidden)`); hidden states
    and attentions come back with choices folded into the batch, `(batch * num_choices, ...)`, as in transformers.
    Packed batches are refused (a ValueError): choices are rows.
    """

    def __init__(self, config: OpenBertConfig):
        super().__init__(config)
        self.bert = OpenBertModel(config)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MultipleChoiceModelOutput:
        _reject_packed_batch(type(self).__name__, input_ids if input_ids is not None else inputs_embeds,
                             attention_mask, position_ids, kwargs)
        num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[1]

        def flat(x: torch.Tensor | None, dims: int) -> torch.Tensor | None:  # fold choices into the batch
            return None if x is None else x.reshape(-1, *x.shape[-dims:])

        outputs = self.bert(flat(input_ids, 1), flat(attention_mask, 1), flat(token_type_ids, 1),
                            flat(position_ids, 1), flat(inputs_embeds, 2), return_dict=True, **kwargs)
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels.view(-1))
        return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                         attentions=outputs.attentions)


class OpenBertEncoderDecoderModel(EncoderDecoderModel):
    """transformers' `EncoderDecoderModel` (BERT2BERT) with openbert on both sides, saved with its code.

    `EncoderDecoderModel.from_encoder_decoder_pretrained(a, b)` already gives openbert halves for openbert
    checkpoints. This class adds two things: `from_encoder_decoder_pretrained` makes openbert halves from
    transformers' BERT checkpoints too, and `save_pretrained` writes openbert's code and an `auto_map` beside the
    weights, so that `AutoModelForSeq2SeqLM.from_pretrained(directory, trust_remote_code=True)` loads the model
    where openbert is not installed. Everything else (forward, loss, `generate`) is transformers'.
    """

    config_class = OpenBertEncoderDecoderConfig

    def __init__(
        self,
        config: EncoderDecoderConfig | None = None,
        encoder: PreTrainedModel | None = None,
        decoder: PreTrainedModel | None = None,
    ):
        if config is None and encoder is not None and decoder is not None:
            config = OpenBertEncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config)
        elif config is not None and not isinstance(config, OpenBertEncoderDecoderConfig):
            # transformers' from_encoder_decoder_pretrained builds a plain EncoderDecoderConfig.
            config = OpenBertEncoderDecoderConfig.from_dict(config.to_dict())
        if config is not None:
            # openbert's classes directly: the Auto classes only know them where openbert is registered.
            encoder = OpenBertModel(config.encoder) if encoder is None else encoder
            decoder = OpenBertLMHeadModel(config.decoder) if decoder is None else decoder
        super().__init__(config, encoder, decoder)

    @classmethod
    def from_encoder_decoder_pretrained(
        cls, encoder_pretrained_model_name_or_path: str | None = None,
        decoder_pretrained_model_name_or_path: str | None = None, *model_args, **kwargs
    ) -> OpenBertEncoderDecoderModel:
        """transformers' method (same arguments; `encoder_*`/`decoder_*` keywords go to one half), reading each
        checkpoint's config as an `OpenBertConfig`, so that BERT checkpoints become openbert halves too. The
        decoder's cross-attention is new (reported missing); the encoder's pooler is loaded and unused."""
        for side, path in (("encoder", encoder_pretrained_model_name_or_path),
                           ("decoder", decoder_pretrained_model_name_or_path)):
            if path is not None and f"{side}_config" not in kwargs and f"{side}_model" not in kwargs:
                config = OpenBertConfig.from_pretrained(path)
                if side == "encoder":  # e.g. the decoder of an earlier seq2seq model, used as an encoder
                    config.is_decoder = config.add_cross_attention = False
                kwargs[f"{side}_config"] = config
        return super().from_encoder_decoder_pretrained(
            encoder_pretrained_model_name_or_path, decoder_pretrained_model_name_or_path, *model_args, **kwargs
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' `save_pretrained`, with openbert's code and an `auto_map` for remote code."""
        module = __name__.rsplit(".", 1)[-1]
        self.config.auto_map = {
            "AutoConfig": f"{OpenBertEncoderDecoderConfig.__module__.rsplit('.', 1)[-1]}.OpenBertEncoderDecoderConfig",
            "AutoModelForSeq2SeqLM": f"{module}.{type(self).__name__}",
        }
        return super().save_pretrained(save_directory, *args, **kwargs)


__all__ = [
    "IGNORE_INDEX",
    "OpenBertEncoderDecoderModel",
    "OpenBertForMaskedLM",
    "OpenBertForMultipleChoice",
    "OpenBertForNextSentencePrediction",
    "OpenBertForPreTraining",
    "OpenBertForQuestionAnswering",
    "OpenBertForSequenceClassification",
    "OpenBertForTokenClassification",
    "OpenBertLMHeadModel",
    "OpenBertModel",
    "OpenBertPreTrainedModel",
]
