"""Packed (padding-free) batches: every head gives, on one packed row, what it gives on the padded batch.

The packed row comes in both forms of transformers' `DataCollatorWithFlattening`: with `cu_seq_lens_q`/
`max_length_q` (`return_flash_attn_kwargs=True`, what openbert's pretraining collator emits) and with
`position_ids` restarting at 0 alone. Attention runs on the packed tokens (sdpa: length groups on a CPU, the
variable-length kernels on a GPU) or through transformers' interface with a per-sequence mask (eager). Outputs and
every parameter's gradient must match the padded batch's at real positions to 1e-5 in fp32 on a CPU (1e-4 relative
on a GPU, as in test_modeling_cuda.py; those cases are skipped without a CUDA device).
"""

from __future__ import annotations

import pytest
import torch
from transformers import DataCollatorWithFlattening

from openbert import modeling
from openbert.modeling import IGNORE_INDEX, OpenBertConfig
from openbert.modeling.packed_tokens import ATTENTION_CALL_COST, group_by_length
from openbert.training.pretraining.collator import pack_batch

HIDDEN = 32
# Different enough that length groups on a CPU make more than one attention call (checked below).
LENGTHS = [90, 12, 40, 5, 77, 38]
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs a CUDA device"))]
HEADS = ["OpenBertModel", "OpenBertForPreTraining", "OpenBertForMaskedLM", "OpenBertForNextSentencePrediction",
         "OpenBertForSequenceClassification", "OpenBertForTokenClassification"]


def tiny_config(attn_implementation: str) -> OpenBertConfig:
    config = OpenBertConfig(vocab_size=120, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0, num_labels=3)
    config._attn_implementation = attn_implementation
    return config


def padded_batch(head: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random sequences of `LENGTHS`, two segments each, padded; with the head's labels."""
    lengths = torch.tensor(LENGTHS)
    real = torch.arange(max(LENGTHS)) < lengths[:, None]
    batch = {"input_ids": torch.randint(5, 120, real.shape, generator=generator) * real,
             "attention_mask": real.long(),
             "token_type_ids": (torch.arange(max(LENGTHS)) >= lengths[:, None] // 2).long() * real}
    sequences = len(LENGTHS)
    token_labels = torch.where(real & (torch.rand(real.shape, generator=generator) < 0.3),
                               torch.randint(0, 120, real.shape, generator=generator), IGNORE_INDEX)
    labels = {
        "OpenBertModel": {},
        "OpenBertForPreTraining": {"labels": token_labels,
                                   "next_sentence_label": torch.randint(0, 2, (sequences,), generator=generator)},
        "OpenBertForMaskedLM": {"labels": token_labels},
        "OpenBertForNextSentencePrediction": {"labels": torch.randint(0, 2, (sequences,), generator=generator)},
        "OpenBertForSequenceClassification": {"labels": torch.randint(0, 3, (sequences,), generator=generator)},
        "OpenBertForTokenClassification": {"labels": torch.where(real, token_labels.clamp(0, 2), IGNORE_INDEX)},
    }[head]
    return {**batch, **labels}


def packed_form(padded: dict[str, torch.Tensor], form: str) -> dict[str, torch.Tensor]:
    """The padded batch as one packed row (labels of sequences, e.g. NSP's, stay one per sequence)."""
    per_sequence = {name: value for name, value in padded.items() if value.dim() == 1}
    token_labels = "labels" in padded and "labels" not in per_sequence
    packed = pack_batch({**padded, "labels": padded["labels"] if token_labels else padded["input_ids"]})
    if not token_labels:
        packed.pop("labels")
    packed.pop("next_sentence_label", None)
    if form == "position_ids":
        for name in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"):
            packed.pop(name)
    return {**packed, **per_sequence}


def run(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """Outputs and the gradient of every parameter of one forward + backward."""
    model.zero_grad()
    outputs = model(**inputs, output_hidden_states=isinstance(model, modeling.OpenBertModel))
    # The bare encoder: a loss over the real tokens, normalised as the heads' losses are (padded positions are 0).
    loss = outputs.loss if outputs.get("loss") is not None else \
        outputs.last_hidden_state.square().sum() / sum(LENGTHS) + outputs.pooler_output.mean()
    loss.backward()
    return outputs, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def at_real_positions(padded: torch.Tensor, packed: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Token-level outputs, `(batch, seq, ...)` padded and `(1, total_tokens, ...)` packed, as the same rows."""
    total = int(mask.sum())
    if packed.dim() >= 2 and packed.shape[:2] == (1, total):
        return padded[mask.bool()], packed[0]
    return padded, packed


def test_the_lengths_make_several_attention_groups():
    assert len(group_by_length(LENGTHS, ATTENTION_CALL_COST / HIDDEN)) > 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("form", ["cu_seq_lens", "position_ids"])
@pytest.mark.parametrize("head", HEADS)
def test_packed_batch_matches_padded_batch(head, form, attn_implementation, device):
    config = tiny_config(attn_implementation)
    config.sparse_prediction = head == "OpenBertForPreTraining"  # as pretraining runs it; MaskedLM: full logits
    torch.manual_seed(0)
    model = getattr(modeling, head)(config).train().to(device)  # no dropout: train mode, deterministic
    padded = {name: value.to(device) for name, value in padded_batch(head, torch.Generator().manual_seed(1)).items()}
    packed = {name: value.to(device) if isinstance(value, torch.Tensor) else value
              for name, value in packed_form(padded_batch(head, torch.Generator().manual_seed(1)), form).items()}
    assert "attention_mask" not in packed and packed["input_ids"].shape == (1, sum(LENGTHS))
    padded_out, padded_grads = run(model, padded)
    packed_out, packed_grads = run(model, packed)
    tolerance = TOLERANCE if device == "cpu" else {"atol": 1e-5, "rtol": 1e-4}
    compared = 0
    for name, value in padded_out.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(*at_real_positions(value, packed_out[name], padded["attention_mask"]),
                                       **tolerance, msg=lambda m, name=name: f"{name}: {m}")
            compared += 1
    for index, (a, b) in enumerate(zip(padded_out.get("hidden_states") or (), packed_out.get("hidden_states") or (),
                                       strict=True)):
        torch.testing.assert_close(*at_real_positions(a, b, padded["attention_mask"]), **tolerance,
                                   msg=lambda m, index=index: f"hidden_states[{index}]: {m}")
    assert compared >= 2 and padded_grads.keys() == packed_grads.keys() and len(padded_grads) > 10
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, **tolerance, msg=lambda m, name=name: f"{name}.grad: {m}")


def test_pooled_output_has_one_row_per_packed_sequence():
    model = modeling.OpenBertModel(tiny_config("sdpa")).eval()
    packed = packed_form(padded_batch("OpenBertModel", torch.Generator().manual_seed(2)), "cu_seq_lens")
    with torch.no_grad():
        outputs = model(**packed)
    assert outputs.last_hidden_state.shape == (1, sum(LENGTHS), HIDDEN)
    assert outputs.pooler_output.shape == (len(LENGTHS), HIDDEN)


@pytest.mark.parametrize("return_flash_attn_kwargs", [True, False])
def test_transformers_flattening_collator_feeds_the_model(return_flash_attn_kwargs):
    """transformers' own DataCollatorWithFlattening (single segments: it carries no token_type_ids)."""
    model = modeling.OpenBertForMaskedLM(tiny_config("sdpa")).eval()
    generator = torch.Generator().manual_seed(3)
    rows = [torch.randint(5, 120, (n,), generator=generator).tolist() for n in LENGTHS]
    packed = DataCollatorWithFlattening(return_flash_attn_kwargs=return_flash_attn_kwargs)(
        [{"input_ids": row} for row in rows])
    packed.pop("labels")  # shifted for causal LMs
    padded = torch.nn.utils.rnn.pad_sequence([torch.tensor(row) for row in rows], batch_first=True)
    mask = (torch.arange(padded.shape[1]) < torch.tensor(LENGTHS)[:, None]).long()
    with torch.no_grad():
        expected = model(input_ids=padded, attention_mask=mask).logits
        got = model(**packed).logits
    torch.testing.assert_close(got[0], expected[mask.bool()], **TOLERANCE)


@pytest.mark.parametrize("head", ["OpenBertForQuestionAnswering", "OpenBertForMultipleChoice"])
@pytest.mark.parametrize("form", ["cu_seq_lens", "position_ids"])
def test_heads_of_padded_rows_refuse_packed_batches(head, form):
    config = tiny_config("sdpa")
    config.num_labels = 2
    model = getattr(modeling, head)(config)
    packed = packed_form(padded_batch("OpenBertModel", torch.Generator().manual_seed(4)), form)
    with pytest.raises(ValueError, match="padded .* batches, not packed ones.*DataCollatorWithPadding"):
        model(**packed)


def test_bad_packed_batches_fail_with_clear_errors():
    model = modeling.OpenBertModel(tiny_config("sdpa"))
    padded = padded_batch("OpenBertModel", torch.Generator().manual_seed(5))
    packed = packed_form(padded, "cu_seq_lens")
    with pytest.raises(ValueError, match=r"one row of shape \(1, total_tokens\)"):
        model(input_ids=padded["input_ids"], cu_seq_lens_q=packed["cu_seq_lens_q"])
    with pytest.raises(ValueError, match="drop attention_mask"):
        model(**packed, attention_mask=torch.ones_like(packed["input_ids"]))
    with pytest.raises(ValueError, match="must start at 0, increase, and end"):
        model(**{**packed, "cu_seq_lens_q": packed["cu_seq_lens_q"][:-1]})
    # Each sequence must fit the positions; the packed row itself may be longer than max_position_embeddings.
    assert sum(LENGTHS) > model.config.max_position_embeddings
    too_long = torch.tensor([0, 129, sum(LENGTHS)], dtype=torch.int32)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(input_ids=packed["input_ids"], cu_seq_lens_q=too_long, max_length_q=129)
