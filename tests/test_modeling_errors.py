"""Invalid configs and inputs raise ValueErrors that name the problem and the fix."""

from __future__ import annotations

import pytest
import torch

from openbert import modeling

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20,
            max_position_embeddings=16, type_vocab_size=2)


def test_defaults_are_bert_base():
    config = modeling.OpenBertConfig()
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
            config.intermediate_size, config.hidden_act, config.hidden_dropout_prob,
            config.attention_probs_dropout_prob, config.max_position_embeddings, config.type_vocab_size,
            config.initializer_range, config.layer_norm_eps, config.pad_token_id) == (
        30522, 768, 12, 12, 3072, "gelu", 0.1, 0.1, 512, 2, 0.02, 1e-12, 0)
    assert config.model_type == "openbert"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_size=30, num_attention_heads=4), r"hidden_size=30 is not divisible by num_attention_heads=4"),
        (dict(hidden_act="swishy"), r"hidden_act='swishy' is not a known activation; use one of .*gelu"),
        (dict(num_hidden_layers=0), r"num_hidden_layers=0 is invalid: it must be a positive integer"),
        (dict(vocab_size=-5), r"vocab_size=-5 is invalid"),
        (dict(intermediate_size=0), r"intermediate_size=0 is invalid"),
        (dict(hidden_dropout_prob=1.0), r"hidden_dropout_prob=1.0 is invalid: a dropout probability is in \[0, 1\)"),
        (dict(attention_probs_dropout_prob=-0.1), r"attention_probs_dropout_prob=-0.1 is invalid"),
        (dict(classifier_dropout=1.5), r"classifier_dropout=1.5 is invalid"),
        (dict(layer_norm_eps=0.0), r"layer_norm_eps=0.0 is invalid: it must be positive"),
        (dict(position_embedding_type="relative_key"), r"position_embedding_type='relative_key' is not supported"),
        (dict(pad_token_id=50), r"pad_token_id=50 is outside the vocabulary \[0, 50\)"),
    ],
)
def test_invalid_config(overrides, message):
    with pytest.raises(ValueError, match=message):
        modeling.OpenBertConfig(**{**TINY, **overrides})


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels must be 2 \\(got 3\\)"):
        modeling.OpenBertForQuestionAnswering(modeling.OpenBertConfig(**TINY, num_labels=3))


@pytest.fixture(scope="module")
def model():
    return modeling.OpenBertForMaskedLM(modeling.OpenBertConfig(**TINY)).eval()


@pytest.mark.parametrize(
    "inputs, message",
    [
        (dict(input_ids=torch.tensor([[1, 50, 3]])), r"input_ids contains 50, outside the valid range \[0, 50\)"),
        (dict(input_ids=torch.tensor([[1, -1, 3]])), r"input_ids contains -1, outside the valid range \[0, 50\)"),
        (dict(input_ids=torch.tensor([[1, 2, 3]]), token_type_ids=torch.tensor([[0, 2, 1]])),
         r"token_type_ids contains 2, outside the valid range \[0, 2\).*type_vocab_size=2"),
        (dict(input_ids=torch.ones(1, 17, dtype=torch.long)),
         r"sequence length 17 exceeds max_position_embeddings=16; truncate"),
        (dict(input_ids=torch.tensor([[1, 2, 3]]), position_ids=torch.tensor([[0, 1, 16]])),
         r"position_ids contains 16, outside the valid range \[0, 16\)"),
        (dict(input_ids=torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 4)),
         r"attention_mask has shape \(1, 4\), expected \(batch, seq\) = \(1, 3\)"),
        (dict(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([[-100, 77, -100]])),
         r"labels contains 77, outside the valid range \[0, 50\)"),
        (dict(), r"Pass exactly one of input_ids or inputs_embeds"),
        (dict(input_ids=torch.tensor([1, 2, 3])),
         r"input_ids has shape \(3,\), expected \(batch, seq\).*input_ids\[None\]"),
        (dict(input_ids=torch.ones(1, 2, 3, dtype=torch.long)),
         r"input_ids has shape \(1, 2, 3\), expected \(batch, seq\)"),
        (dict(inputs_embeds=torch.ones(1, 3, 5)),
         r"inputs_embeds has shape \(1, 3, 5\), expected \(batch, seq, hidden_size=16\)"),
        (dict(input_ids=torch.tensor([[1, 2, 3]]), token_type_ids=torch.tensor([[0, 1]])),
         r"token_type_ids has shape \(1, 2\), expected \(batch, seq\) = \(1, 3\), \(1, 3\) or \(3,\)"),
        (dict(input_ids=torch.tensor([[1, 2, 3], [4, 5, 6]]), position_ids=torch.tensor([[0, 1, 2]] * 3)),
         r"position_ids has shape \(3, 3\), expected \(batch, seq\) = \(2, 3\)"),
    ],
)
def test_invalid_inputs(model, inputs, message):
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_segment_and_position_ids_broadcast_like_transformers(model):
    """`(1, seq)` and `(seq,)` ids apply to every row, as transformers' BERT broadcasts them."""
    input_ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    full = model(input_ids, token_type_ids=torch.tensor([[0, 1, 1]] * 2), position_ids=torch.tensor([[0, 1, 2]] * 2))
    for ids in (torch.tensor([[0, 1, 1]]), torch.tensor([0, 1, 1])):
        torch.testing.assert_close(model(input_ids, token_type_ids=ids).logits, full.logits)
    torch.testing.assert_close(model(input_ids, token_type_ids=torch.tensor([0, 1, 1]),
                                     position_ids=torch.tensor([0, 1, 2])).logits, full.logits)


def test_flash_attention_on_cpu_names_the_fix():
    model = modeling.OpenBertModel(modeling.OpenBertConfig(**TINY)).eval()
    model.config._attn_implementation = "flash_attention_2"  # as if loaded on a GPU, then moved to the CPU
    with pytest.raises(ValueError, match=r"flash_attention_2.*CUDA GPUs only.*set_attn_implementation\('sdpa'\)"):
        model(torch.tensor([[1, 2, 3]]))


def test_resized_embeddings_accept_new_ids(model):
    model = modeling.OpenBertForMaskedLM(modeling.OpenBertConfig(**TINY)).eval()
    model.resize_token_embeddings(60)
    assert model.config.vocab_size == 60
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.bias.shape == (60,)
    logits = model(input_ids=torch.tensor([[1, 59, 3]])).logits
    assert logits.shape == (1, 3, 60)
