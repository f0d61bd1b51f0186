"""The BERT2BERT model of a run and how its generations are scored: shared by `openbert finetune seq2seq` and
`benchmarks/bench_seq2seq.py`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from transformers import AutoConfig, EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase

from openbert.modeling import OpenBertEncoderDecoderModel

from ..metrics import load_metric

logger = logging.getLogger(__name__)


def load_seq2seq_model(path: str, tie_encoder_decoder: bool = False, cross_attention_init: str = "random"
                       ) -> PreTrainedModel:
    """An existing sequence-to-sequence checkpoint as it is, or a new BERT2BERT whose encoder and decoder both
    start from the encoder checkpoint `path` (openbert or transformers' BERT); the decoder's cross-attention is
    new: random (`cross_attention_init="random"`, as transformers does) or a copy of each layer's self-attention
    (`"self_attention"`, see `init_cross_attention_from_self_attention`)."""
    if cross_attention_init not in ("random", "self_attention"):
        raise ValueError(f"--cross_attention_init is random or self_attention, not {cross_attention_init!r}")
    if AutoConfig.from_pretrained(path).is_encoder_decoder:
        for option, value in (("--tie_encoder_decoder", tie_encoder_decoder),
                              ("--cross_attention_init self_attention", cross_attention_init != "random")):
            if value:
                raise ValueError(f"{path} is already a sequence-to-sequence model: {option} applies only when a "
                                 "model is built from an encoder checkpoint")
        return OpenBertEncoderDecoderModel.from_pretrained(path)
    logger.info("BERT2BERT from %s: encoder and decoder warm-started, cross-attention new (%s)", path,
                cross_attention_init)
    model = OpenBertEncoderDecoderModel.from_encoder_decoder_pretrained(path, path,
                                                                        tie_encoder_decoder=tie_encoder_decoder)
    if cross_attention_init == "self_attention":
        init_cross_attention_from_self_attention(model.decoder)
    return model


def init_cross_attention_from_self_attention(decoder: torch.nn.Module) -> int:
    """Copy each layer's self-attention block (`attention.*`: query, key, value, output projection, LayerNorm)
    into its new cross-attention block (`crossattention.*`); returns the number of tensors copied.

    Random cross-attention adds noise to every decoder layer and has to learn from nothing how to read the
    encoder, which a few hundred steps on a small data set do not teach (the model writes the same question for
    every input). The copy attends from the first step with projections BERT learnt in pretraining; the encoder
    and decoder start from the same checkpoint, so the encoder's output lives in the space those projections were
    trained on. Works on openbert's and transformers' BERT decoders (same weight names).
    """
    parameters = dict(decoder.named_parameters())
    pairs = [(name, name.replace(".crossattention.", ".attention.")) for name in parameters
             if ".crossattention." in name]
    if not pairs:
        raise ValueError("the decoder has no cross-attention (crossattention.* weights) to initialise")
    with torch.no_grad():
        for target, source in pairs:
            parameters[target].copy_(parameters[source])
    return len(pairs)


def configure_generation(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_length: int,
                         num_beams: int = 1, no_repeat_ngram_size: int = 0) -> PreTrainedModel:
    """BERT's special tokens as the decoder's: it starts from [CLS], stops at [SEP], pads with [PAD]; saved with
    the model, so `generate` on the checkpoint needs no arguments."""
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.update(
        decoder_start_token_id=tokenizer.cls_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id, max_length=max_length,
        num_beams=num_beams, no_repeat_ngram_size=no_repeat_ngram_size)
    return model


def generation_scores(predictions: Sequence[str], references: Sequence[str], lowercase: bool = False
                      ) -> dict[str, float]:
    """BLEU (sacrebleu's definition, 0-100) and ROUGE-L (F-measure, 0-100) from openbert's offline metrics."""
    bleu = load_metric("bleu").compute(predictions=list(predictions), references=list(references),
                                       lowercase=lowercase)
    rouge = load_metric("rouge").compute(predictions=list(predictions), references=list(references))
    return {"bleu": round(bleu["bleu"], 2), "rougeL": round(rouge["rougeL"], 2)}


def decode(token_ids: np.ndarray, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Texts of generated ids or labels (the Trainer pads both with -100)."""
    token_ids = np.where(np.asarray(token_ids) < 0, tokenizer.pad_token_id, token_ids)
    return [text.strip() for text in tokenizer.batch_decode(token_ids, skip_special_tokens=True)]


def build_compute_metrics(tokenizer: PreTrainedTokenizerBase) -> Callable[[EvalPrediction], dict[str, float]]:
    """A Trainer `compute_metrics` for `predict_with_generate`: generated texts scored against the targets, both
    as the tokenizer writes them back (an uncased tokenizer's references are lower case, like its outputs)."""
    def compute(prediction: EvalPrediction) -> dict[str, float]:
        generated = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return generation_scores(decode(generated, tokenizer), decode(prediction.label_ids, tokenizer))

    return compute
