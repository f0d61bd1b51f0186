"""Configuration of openbert models: BERT's field names and bert-base defaults."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import EncoderDecoderConfig, PreTrainedConfig
from transformers.activations import ACT2FN
from transformers.configuration_utils import SubConfigSpec


@strict
class OpenBertConfig(PreTrainedConfig):
    r"""Configuration of an openbert model (model_type `openbert`).

    The fields and their defaults are those of BERT (bert-base-uncased), so a BERT `config.json` loads as is.

    Args:
        vocab_size: number of token ids the word embedding holds.
        hidden_size: width of the encoder (d_model).
        num_hidden_layers: number of Transformer encoder layers.
        num_attention_heads: attention heads per layer; must divide `hidden_size`.
        intermediate_size: width of the feed-forward block.
        hidden_act: activation of the feed-forward block and the MLM transform (a key of `ACT2FN`).
        hidden_dropout_prob: dropout on embeddings and on every residual branch.
        attention_probs_dropout_prob: dropout on attention probabilities.
        max_position_embeddings: longest sequence the model accepts.
        type_vocab_size: number of segment (token type) ids; 2 for sentence pairs.
        initializer_range: standard deviation of the normal initialisation of weights.
        layer_norm_eps: epsilon of every LayerNorm.
        pad_token_id: id of the padding token (its embedding row starts at zero).
        classifier_dropout: dropout before classification heads; `None` means `hidden_dropout_prob`.
        position_embedding_type: only `"absolute"` (learned positions), as in BERT; present so that BERT
            configs that spell it out load.
        unpad_inputs: run the encoder on real tokens only when a batch has padding (same values at real
            positions; padded positions of `last_hidden_state` then hold zeros). Set `False` to compute padded
            positions the way transformers' BERT does. Calls that record hidden states or attentions, and
            traced graphs (torch.compile, torch.export, ONNX), always use the padded layout.
        sparse_prediction: with masked-LM `labels`, project only the labelled positions onto the vocabulary:
            `logits` become `(num_labelled, vocab_size)` instead of `(batch, seq, vocab_size)` (the name
            ModernBERT uses for the same option). Saves most of the MLM head's work in pretraining, which
            turns it on; off by default, so logits keep transformers' shape.
        is_decoder: causal self-attention (each token attends to itself and earlier tokens), as a decoder or a
            left-to-right language model (`OpenBertLMHeadModel`). Decoders always run on the padded layout.
        add_cross_attention: give each layer a cross-attention block over an encoder's output (BERT's
            `crossattention.*` weights), as the decoder of an `EncoderDecoderModel`; needs `is_decoder`.
        use_cache: a decoder returns its attention keys and values (`cache`) so that generation computes each
            new token only; ignored by encoders.
        bos_token_id, eos_token_id: token ids that start and end a generated sequence (BERT's config fields).
    """

    model_type = "openbert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    classifier_dropout: float | int | None = None
    position_embedding_type: str = "absolute"
    unpad_inputs: bool = True
    sparse_prediction: bool = False
    tie_word_embeddings: bool = True
    # BERT's decoder fields (transformers' PreTrainedConfig no longer declares them): EncoderDecoderModel reads
    # `is_decoder`/`add_cross_attention` and sets them on the decoder's config only when they are declared False.
    is_decoder: bool = False
    add_cross_attention: bool = False
    use_cache: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    @classmethod
    def get_config_dict(cls, *args, **kwargs) -> tuple[dict, dict]:
        config_dict, kwargs = super().get_config_dict(*args, **kwargs)
        # A BERT config is an openbert config by design (same fields), so BERT checkpoints load without
        # transformers' warning that a different model type "can yield errors".
        if config_dict.get("model_type") == "bert":
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs

    def __post_init__(self, **kwargs):
        self._check_fields()
        super().__post_init__(**kwargs)

    def _check_fields(self) -> None:
        """Raise a ValueError naming the field, its value and what is allowed."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = _number(name, getattr(self, name), integer=True)
            if value <= 0:
                raise ValueError(f"OpenBertConfig.{name}={value} is invalid: it must be a positive integer.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"OpenBertConfig.hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}: each head gets hidden_size / num_attention_heads "
                "dimensions, so pick a hidden_size that is a multiple of num_attention_heads."
            )
        if self.hidden_act not in ACT2FN:
            raise ValueError(
                f"OpenBertConfig.hidden_act={self.hidden_act!r} is not a known activation; "
                f"use one of {sorted(ACT2FN)}."
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= _number(name, value) < 1:
                raise ValueError(f"OpenBertConfig.{name}={value} is invalid: a dropout probability is in [0, 1).")
        for name in ("initializer_range", "layer_norm_eps"):
            if _number(name, getattr(self, name)) <= 0:
                raise ValueError(f"OpenBertConfig.{name}={getattr(self, name)} is invalid: it must be positive.")
        if self.position_embedding_type != "absolute":
            raise ValueError(
                f"OpenBertConfig.position_embedding_type={self.position_embedding_type!r} is not supported: "
                "openbert uses learned absolute positions, set it to 'absolute'."
            )
        if self.add_cross_attention and not self.is_decoder:
            raise ValueError(
                "OpenBertConfig.add_cross_attention=True needs is_decoder=True: cross-attention reads an encoder's "
                "output from a decoder; set is_decoder=True as well (EncoderDecoderModel sets both)."
            )
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"OpenBertConfig.pad_token_id={self.pad_token_id} is outside the vocabulary "
                f"[0, {self.vocab_size}); set it to the tokenizer's pad_token_id or None."
            )


def _number(name: str, value: object, integer: bool = False) -> int | float:
    """`value`, when it is a number (an integer if `integer`); else a ValueError naming the field. A "128" written
    in quotes in a hand-edited config.json would otherwise fail as `'<=' not supported between 'str' and 'int'`."""
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        wanted = "an integer" if integer else "a number"
        raise ValueError(f"OpenBertConfig.{name}={value!r} is a {type(value).__name__}, not {wanted}: write it "
                         "without quotes in config.json.")
    return value


@strict
class OpenBertEncoderDecoderConfig(EncoderDecoderConfig):
    """transformers' `EncoderDecoderConfig` whose two halves are always `OpenBertConfig`s.

    transformers builds the halves of an `EncoderDecoderConfig` by model type, which must be registered with
    `AutoConfig`: where openbert is not installed (a checkpoint loaded through remote code) "openbert" is not, so
    this class names the config class itself. Same `model_type` and fields, so either class reads the other's
    `config.json`.
    """

    sub_configs_defaults = {
        "encoder": SubConfigSpec(config_class=OpenBertConfig),
        "decoder": SubConfigSpec(config_class=OpenBertConfig,
                                 init_kwargs={"is_decoder": True, "add_cross_attention": True}),
    }


__all__ = ["OpenBertConfig", "OpenBertEncoderDecoderConfig"]
