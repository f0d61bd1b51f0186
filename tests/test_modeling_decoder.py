"""BERT as a decoder: `OpenBertLMHeadModel` (causal self-attention, cross-attention, key/value cache) against
transformers' `BertLMHeadModel` on identical weights, and the decoder's own contracts.

Each transformers model is saved and loaded into the openbert class through `from_pretrained`, so these tests
also cover loading transformers' `BertLMHeadModel` checkpoints.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from test_modeling_parity import IMPLS, TINY, close
from transformers import BertConfig
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from openbert import modeling

BATCH, SEQ, SOURCE = 3, 9, 7


def decoder_pair(tmp_path, impl: str, cross_attention: bool = True):
    """A randomly initialised `BertLMHeadModel` decoder (weights moved off their init), loaded into both."""
    torch.manual_seed(0)
    config = BertConfig(**TINY, is_decoder=True, add_cross_attention=cross_attention)
    hf_model = transformers.BertLMHeadModel(config)
    with torch.no_grad():
        for param in hf_model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    hf_model.save_pretrained(tmp_path)
    hf_model = transformers.BertLMHeadModel.from_pretrained(tmp_path, attn_implementation=impl).eval()
    ob_model = modeling.OpenBertLMHeadModel.from_pretrained(tmp_path, attn_implementation=impl).eval()
    return hf_model, ob_model


def decoder_inputs(cross_attention: bool = True) -> dict[str, torch.Tensor]:
    """Right-padded decoder inputs (and padded encoder states for cross-attention)."""
    generator = torch.Generator().manual_seed(1)
    attention_mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    attention_mask[1, 6:] = 0
    input_ids = torch.randint(1, TINY["vocab_size"], (BATCH, SEQ), generator=generator) * attention_mask
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask)
    if cross_attention:
        encoder_attention_mask = torch.ones(BATCH, SOURCE, dtype=torch.long)
        encoder_attention_mask[2, 4:] = 0
        inputs.update(encoder_hidden_states=torch.randn(BATCH, SOURCE, TINY["hidden_size"], generator=generator),
                      encoder_attention_mask=encoder_attention_mask)
    return inputs


@pytest.mark.parametrize("impl", IMPLS)
def test_lm_head_parity_with_cross_attention(tmp_path, impl):
    """Causal LM loss, logits at every position, hidden states, and (eager) self- and cross-attentions equal
    transformers' on a padded batch with padded encoder states."""
    hf_model, ob_model = decoder_pair(tmp_path, impl)
    inputs = decoder_inputs()
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    with torch.no_grad():
        expected = hf_model(**inputs, labels=labels, output_hidden_states=True, output_attentions=True)
        actual = ob_model(**inputs, labels=labels, output_hidden_states=True, output_attentions=True)
    close(actual.loss, expected.loss)
    assert actual.logits.shape == (BATCH, SEQ, TINY["vocab_size"])
    close(actual.logits, expected.logits)  # decoders compute padded positions as transformers does
    assert len(actual.hidden_states) == TINY["num_hidden_layers"] + 1
    for mine, other in zip(actual.hidden_states, expected.hidden_states, strict=True):
        close(mine, other)
    recorded = TINY["num_hidden_layers"] if impl == "eager" else 0  # sdpa returns no probabilities
    assert len(actual.attentions) == len(actual.cross_attentions) == recorded
    for name in ("attentions", "cross_attentions"):
        for mine, other in zip(getattr(actual, name), getattr(expected, name), strict=True):
            close(mine, other)
    if impl == "eager":
        assert actual.cross_attentions[0].shape == (BATCH, TINY["num_attention_heads"], SEQ, SOURCE)
        # Causal: no probability on later tokens. Cross-attention: none on padded encoder tokens.
        assert torch.count_nonzero(actual.attentions[0].triu(diagonal=1)) == 0
        assert torch.count_nonzero(actual.cross_attentions[0][2, :, :, 4:]) == 0


def test_causal_lm_parity_without_cross_attention(tmp_path):
    """A decoder-only model (no encoder): loss and logits equal transformers'."""
    hf_model, ob_model = decoder_pair(tmp_path, "sdpa", cross_attention=False)
    inputs = decoder_inputs(cross_attention=False)
    with torch.no_grad():
        expected = hf_model(**inputs, labels=inputs["input_ids"])
        actual = ob_model(**inputs, labels=inputs["input_ids"])
    close(actual.loss, expected.loss)
    close(actual.logits, expected.logits)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cross_attention", [True, False])
def test_logits_with_cache_equal_logits_without(tmp_path, impl, cross_attention):
    """Decoding a prefix, then one token at a time from the cache, gives the full forward pass's logits, and
    transformers' logits for the same cached steps; the cache holds every token."""
    hf_model, ob_model = decoder_pair(tmp_path, impl, cross_attention)
    inputs = decoder_inputs(cross_attention)
    inputs["attention_mask"] = torch.ones_like(inputs["attention_mask"])  # a causal prefix has no right padding
    encoder = {k: v for k, v in inputs.items() if k.startswith("encoder")}
    with torch.no_grad():
        full = ob_model(**inputs).logits
        stepwise = {}
        for name, model in (("ours", ob_model), ("theirs", hf_model)):
            output = model(input_ids=inputs["input_ids"][:, :4], **encoder, use_cache=True)
            logits, cache = [output.logits], output.cache
            for position in range(4, SEQ):
                output = model(input_ids=inputs["input_ids"][:, position:position + 1],
                               attention_mask=torch.ones(BATCH, position + 1, dtype=torch.long), **encoder,
                               cache=cache)
                logits.append(output.logits)
            stepwise[name] = (torch.cat(logits, dim=1), cache)
    ours, cache = stepwise["ours"]
    assert isinstance(cache, EncoderDecoderCache if cross_attention else DynamicCache)
    assert cache.get_seq_length() == SEQ
    close(ours, full)
    close(ours, stepwise["theirs"][0])


def test_causal_self_attention_ignores_later_tokens():
    """Changing a token changes no logit before it, and changes the logits from it on."""
    torch.manual_seed(0)
    model = modeling.OpenBertLMHeadModel(modeling.OpenBertConfig(**TINY, is_decoder=True)).eval()
    input_ids = decoder_inputs(cross_attention=False)["input_ids"][:1]
    changed = input_ids.clone()
    changed[0, 5] = (changed[0, 5] + 1) % TINY["vocab_size"]
    with torch.no_grad():
        before, after = model(input_ids=input_ids).logits, model(input_ids=changed).logits
    close(after[:, :5], before[:, :5])
    assert not torch.allclose(after[:, 5:], before[:, 5:])


def test_generation_from_cache_equals_generation_without(tmp_path):
    """Greedy and beam-search continuations of a decoder-only model: the same with and without the cache, and
    the same as transformers' BertLMHeadModel's."""
    hf_model, ob_model = decoder_pair(tmp_path, "sdpa", cross_attention=False)
    prompt = decoder_inputs(cross_attention=False)["input_ids"][:, :3]
    settings = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    for beams in (1, 3):
        with torch.no_grad():
            cached = ob_model.generate(prompt, num_beams=beams, use_cache=True, **settings)
            uncached = ob_model.generate(prompt, num_beams=beams, use_cache=False, **settings)
            theirs = hf_model.generate(prompt, num_beams=beams, **settings)
        assert cached.shape == (BATCH, 3 + 6)
        assert torch.equal(cached, uncached) and torch.equal(cached, theirs)
        assert len({tuple(row) for row in cached[:, 3:].tolist()}) > 1  # rows differ: the comparison means something


def test_encoder_checkpoint_loads_into_decoder(tmp_path):
    """An openbert encoder checkpoint loads into the decoder: its weights kept, cross-attention and the LM
    head's transform created new and reported missing, the decoder tied to the word embeddings."""
    torch.manual_seed(0)
    encoder = modeling.OpenBertModel(modeling.OpenBertConfig(**TINY))
    encoder.save_pretrained(tmp_path)
    decoder, info = modeling.OpenBertLMHeadModel.from_pretrained(
        tmp_path, is_decoder=True, add_cross_attention=True, output_loading_info=True
    )
    missing = set(info["missing_keys"])
    assert {k for k in missing if "crossattention" in k} == {
        f"bert.encoder.layer.{i}.crossattention.{part}"
        for i in range(TINY["num_hidden_layers"])
        for part in ("self.query.weight", "self.query.bias", "self.key.weight", "self.key.bias", "self.value.weight",
                     "self.value.bias", "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight",
                     "output.LayerNorm.bias")
    }
    assert all(k.startswith(("bert.encoder.layer", "cls.predictions")) for k in missing)
    close(decoder.bert.encoder.layer[1].attention.self.key.weight, encoder.encoder.layer[1].attention.self.key.weight)
    assert decoder.cls.predictions.decoder.weight is decoder.bert.embeddings.word_embeddings.weight


def test_gradient_checkpointing_gives_the_same_gradients():
    """Training a decoder with gradient checkpointing (which drops the cache) gives the same gradients."""
    torch.manual_seed(0)
    config = modeling.OpenBertConfig(**TINY, is_decoder=True, add_cross_attention=True, hidden_dropout_prob=0,
                                     attention_probs_dropout_prob=0)
    model = modeling.OpenBertLMHeadModel(config).train()
    inputs = decoder_inputs()
    inputs["encoder_hidden_states"].requires_grad_(True)
    grads = []
    for checkpointing in (False, True):
        if checkpointing:
            model.activation_checkpointing_enable()
        model.zero_grad()
        inputs["encoder_hidden_states"].grad = None
        model(**inputs, labels=inputs["input_ids"]).loss.backward()
        grads.append([inputs["encoder_hidden_states"].grad] + [p.grad for p in model.parameters()])
    for plain, checkpointed in zip(*grads, strict=True):
        close(checkpointed, plain)
    assert torch.count_nonzero(grads[1][0]) > 0  # gradients reach the encoder's output through cross-attention


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="add_cross_attention=True needs is_decoder=True"):
        modeling.OpenBertConfig(**TINY, add_cross_attention=True)
    model = modeling.OpenBertLMHeadModel(modeling.OpenBertConfig(**TINY, is_decoder=True))
    inputs = decoder_inputs()
    with pytest.raises(ValueError, match="without cross-attention"):
        model(**inputs)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"][:, :4])
