"""Weight-only int8 checkpoints: every weight matrix saved as int8 with one scale per row, computed in bfloat16.

A quarter of an fp32 checkpoint on disk, and as fast as bfloat16 where the CPU has bfloat16 matrix units (AMX,
AVX512-BF16) or on a GPU. It is a transformers quantization method (`quant_method: "openbert_int8"`), so the
standard calls do the work:

    model = AutoModelForSequenceClassification.from_pretrained("sst2-model", quantization_config=OpenBertInt8Config())
    model.save_pretrained("sst2-int8")                      # int8 matrices + one scale per row, ~25% of fp32
    model = AutoModelForSequenceClassification.from_pretrained("sst2-int8")   # bf16 weights, ready to serve

Quantizing rounds each row `w` of every matrix (linear layers and embeddings) to `round(w / s) * s` with
`s = max|w| / 127`; the loaded model then computes with those values in `compute_dtype`. The arithmetic is
bfloat16, not int8: on CPUs with bfloat16 matrix units it was faster than torch's dynamic int8 matrix products
and lost less accuracy (benchmarks/README.md). Biases and LayerNorms stay in floating point.

This file is copied next to every saved checkpoint (remote code): importing it registers the method with
transformers, so a checkpoint loads with `trust_remote_code=True` where openbert is not installed.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.core_model_loading import ConversionOps
from transformers.quantizers import HfQuantizer
from transformers.quantizers.auto import AUTO_QUANTIZATION_CONFIG_MAPPING, AUTO_QUANTIZER_MAPPING
from transformers.utils.quantization_config import QuantizationConfigMixin

QUANT_METHOD = "openbert_int8"
SCALE_SUFFIX = "_scale"  # `...weight` -> `...weight_scale`: one scale per row, `(rows, 1)`


def row_scales(weight: torch.Tensor) -> torch.Tensor:
    """`(rows, columns)` -> fp32 scales `(rows, 1)`, `max|row| / 127` (symmetric, one per row: rows of very
    different magnitude, as in BERT's feed-forward output layers, keep their precision)."""
    return weight.float().abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny) / 127


def to_int8(weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """`weight / scale` rounded to int8, `(rows, columns)`."""
    return (weight.float() / scale).round().clamp(-127, 127).to(torch.int8)


class OpenBertInt8Config(QuantizationConfigMixin):
    """Weight-only int8 with one scale per row (see the module's docstring).

    Args:
        compute_dtype: the dtype the loaded weights and the computation take, `"bfloat16"` (default) or
            `"float32"` (for CPUs without bfloat16 matrix units, where bfloat16 is slower than fp32).
        modules_to_not_convert: names of modules whose weights stay in floating point (exact names or prefixes,
            e.g. `["classifier"]`).
    """

    def __init__(self, compute_dtype: str = "bfloat16", modules_to_not_convert: list[str] | None = None,
                 **kwargs: Any):
        if compute_dtype not in ("bfloat16", "float32"):
            raise ValueError(f"compute_dtype must be 'bfloat16' or 'float32', not {compute_dtype!r}")
        self.quant_method = QUANT_METHOD
        self.compute_dtype = compute_dtype
        self.modules_to_not_convert = list(modules_to_not_convert or [])
        # transformers' switch for "load the quantized weights as plain floating-point ones": always the case here.
        self.dequantize = True


class Int8RowsDequantize(ConversionOps):
    """Loading: a weight and its `weight_scale` -> the weight in the model's dtype (`int8 * scale`); a weight saved
    without a scale (LayerNorms, modules not converted) is only cast."""

    def __init__(self, hf_quantizer: HfQuantizer):
        self.hf_quantizer = hf_quantizer

    def convert(self, input_dict: dict[str, Any], full_layer_name: str | None = None,
                model: torch.nn.Module | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        def first(value: Any) -> torch.Tensor:
            return value[0] if isinstance(value, list) else value

        weight = first(input_dict["weight"])
        dtype = getattr(torch, self.hf_quantizer.quantization_config.compute_dtype)
        if "weight" + SCALE_SUFFIX in input_dict:
            weight = weight.float() * first(input_dict["weight" + SCALE_SUFFIX]).float()
        return {full_layer_name or "weight": weight.to(dtype)}


class OpenBertInt8Quantizer(HfQuantizer):
    """transformers' side of `OpenBertInt8Config`: `from_pretrained` of an fp32 checkpoint with the config rounds
    the weights to int8 and `save_pretrained` writes them as int8; `from_pretrained` of an int8 checkpoint loads
    them dequantized. Either way the model in memory is a plain model in `compute_dtype`."""

    serialized_names = {"weight": ["weight", "weight" + SCALE_SUFFIX]}

    def update_dtype(self, dtype: torch.dtype) -> torch.dtype:
        # Quantizing starts from full precision (rounding bf16 weights would round twice); the weights are cast
        # to compute_dtype once rounded.
        return torch.float32 if not self.pre_quantized else getattr(torch, self.quantization_config.compute_dtype)

    def get_load_operations(self) -> dict:
        return {"dequantize": Int8RowsDequantize}

    def _converted_weights(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """name -> weight of every 2-D weight to quantize, tied weights once (under their first name)."""
        skip = tuple(self.quantization_config.modules_to_not_convert)
        seen, weights = set(), {}
        for name, weight in model.named_parameters(remove_duplicate=False):
            module = name.rpartition(".")[0]
            if not name.endswith("weight") or weight.dim() != 2 or id(weight) in seen:
                continue
            seen.add(id(weight))
            if not any(module == s or module.startswith(s + ".") for s in skip):
                weights[name] = weight
        return weights

    def _process_model_after_weight_loading(self, model: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
        if not self.pre_quantized:
            # The scales are kept for saving: the integers can be read back from the rounded weights exactly
            # (bfloat16 keeps them within a quarter of a step), their scales not.
            self.scales = {}
            with torch.no_grad():
                for name, weight in self._converted_weights(model).items():
                    self.scales[name] = scale = row_scales(weight)
                    weight.copy_(to_int8(weight, scale) * scale)
            model.to(getattr(torch, self.quantization_config.compute_dtype))
        return model

    def get_state_dict_and_metadata(self, model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict]:
        """The state dict `save_pretrained` writes: each converted weight as int8 plus its `weight_scale`, the
        integers and scales that `from_pretrained` rounded the weights to (loading them back gives the same
        weights, bit for bit)."""
        state_dict, converted = model.state_dict(), self._converted_weights(model)
        tied = {id(weight) for weight in converted.values()}
        for name, weight in model.named_parameters(remove_duplicate=False):
            if id(weight) in tied and name not in converted:
                del state_dict[name]  # a tied copy (the masked-LM decoder of the word embeddings): loading reties it
        for name, weight in converted.items():
            scale = self.scales[name]
            state_dict[name], state_dict[name + SCALE_SUFFIX] = to_int8(weight, scale), scale
        return state_dict, {}

    def is_serializable(self) -> bool:
        return True

    @property
    def is_trainable(self) -> bool:
        return False


# Registered once per process: by openbert, or by a checkpoint's copy of this file under remote code.
if QUANT_METHOD not in AUTO_QUANTIZATION_CONFIG_MAPPING:
    AUTO_QUANTIZATION_CONFIG_MAPPING[QUANT_METHOD] = OpenBertInt8Config
if QUANT_METHOD not in AUTO_QUANTIZER_MAPPING:
    AUTO_QUANTIZER_MAPPING[QUANT_METHOD] = OpenBertInt8Quantizer
