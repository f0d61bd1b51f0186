"""The GPU path: with padding, `sdpa` attends on the packed tokens through CUDA's variable-length kernels
(memory-efficient in float32, flash in bfloat16). Skipped without a CUDA device (CI has none); run on a GPU
machine with `python -m pytest tests/test_modeling_cuda.py`."""

from __future__ import annotations

import pytest
import torch
import transformers
from test_modeling_parity import load_pair, make_inputs, mlm_labels, real

from openbert import modeling
from openbert.modeling import packed_tokens

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def holes_inputs() -> dict[str, torch.Tensor]:
    """Left padding, holes in the mask and a row with one real token."""
    inputs = make_inputs()
    inputs["attention_mask"] = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                                             [1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0],
                                             [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    return {name: value.to(CUDA) for name, value in inputs.items()}


@pytest.fixture
def varlen_calls(monkeypatch) -> list[torch.dtype]:
    """Records the dtype of every call of the CUDA variable-length attention."""
    calls, attend = [], packed_tokens.varlen_attention_cuda
    monkeypatch.setattr(packed_tokens, "varlen_attention_cuda",
                        lambda qkv, *args: calls.append(qkv.dtype) or attend(qkv, *args))
    return calls


def outputs_and_grads(model, inputs, autocast_dtype: torch.dtype | None = None):
    """Hidden states at real positions and the gradients of a loss on them."""
    model.zero_grad()
    with torch.autocast("cuda", dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        hidden = real(model(**inputs).last_hidden_state, inputs)
    hidden.float().square().mean().backward()
    grads = {name: param.grad.float() for name, param in model.named_parameters() if param.grad is not None}
    return hidden.detach().float(), grads


def test_float32_packed_attention_matches_transformers(tmp_path, varlen_calls):
    hf_model, ob_model = (m.to(CUDA) for m in load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel,
                                                           "sdpa"))
    inputs = holes_inputs()
    ours, our_grads = outputs_and_grads(ob_model, inputs)
    theirs, their_grads = outputs_and_grads(hf_model, inputs)
    assert varlen_calls == [torch.float32] * ob_model.config.num_hidden_layers
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert our_grads.keys() == their_grads.keys() and len(our_grads) > 0
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, their_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_full_length_batch_keeps_padded_layout(tmp_path, varlen_calls):
    hf_model, ob_model = (m.to(CUDA) for m in load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel,
                                                           "sdpa"))
    inputs = {name: value.to(CUDA) for name, value in make_inputs().items()}
    inputs["attention_mask"] = torch.ones_like(inputs["attention_mask"])
    with torch.no_grad():
        torch.testing.assert_close(ob_model(**inputs).last_hidden_state, hf_model(**inputs).last_hidden_state,
                                   rtol=1e-4, atol=1e-5)
    assert varlen_calls == []  # nothing to skip: SDPA on the padded layout, no mask


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def test_bfloat16_autocast_is_as_accurate_as_transformers(tmp_path, varlen_calls):
    """bfloat16 rounding makes both libraries differ from float32; ours (flash, packed) must not differ more
    than transformers' (efficient kernel, padded with a mask), in outputs and in gradients."""
    hf_model, ob_model = (m.to(CUDA) for m in load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel,
                                                           "sdpa"))
    inputs = holes_inputs()
    reference, reference_grads = outputs_and_grads(hf_model, inputs)
    varlen_calls.clear()
    ours, our_grads = outputs_and_grads(ob_model, inputs, torch.bfloat16)
    assert varlen_calls == [torch.bfloat16] * ob_model.config.num_hidden_layers
    theirs, their_grads = outputs_and_grads(hf_model, inputs, torch.bfloat16)
    our_error, their_error = relative_error(ours, reference), relative_error(theirs, reference)
    assert 0 < their_error < 0.05 and our_error <= 2 * their_error, (our_error, their_error)
    for name, grad in our_grads.items():
        our_error = relative_error(grad, reference_grads[name])
        their_error = relative_error(their_grads[name], reference_grads[name])
        assert our_error <= 2 * their_error + 1e-3, (name, our_error, their_error)


def test_bfloat16_weights_inference(tmp_path, varlen_calls):
    """Half-precision weights (the usual GPU inference setup) take the flash kernel too."""
    hf_model, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, "sdpa")
    reference = hf_model.to(CUDA)
    inputs = holes_inputs()
    with torch.no_grad():
        expected = real(reference(**inputs).last_hidden_state, inputs)
        actual = real(ob_model.to(CUDA, torch.bfloat16)(**inputs).last_hidden_state, inputs)
    assert actual.dtype == torch.bfloat16 and varlen_calls == [torch.bfloat16] * ob_model.config.num_hidden_layers
    assert relative_error(actual.float(), expected) < 0.05


def test_pretraining_with_dropout_learns_on_gpu(tmp_path, varlen_calls):
    """Mixed-precision pretraining steps with attention dropout (flash's own dropout) lower the loss."""
    _, model = load_pair(tmp_path, transformers.BertForPreTraining, modeling.OpenBertForPreTraining, "sdpa")
    model.to(CUDA).train()
    assert model.config.attention_probs_dropout_prob > 0
    inputs = holes_inputs()
    inputs["labels"] = mlm_labels(inputs).to(CUDA)
    inputs["next_sentence_label"] = torch.tensor([0, 1, 0], device=CUDA)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    # Measured on an H200: the mean of the last five losses is 0.60 of the first five's.
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5, losses
    assert set(varlen_calls) == {torch.bfloat16}


def test_flash_attention_2_runs_on_packed_tokens(tmp_path, varlen_calls):
    """`flash_attention_2` on a padded batch takes PyTorch's own variable-length flash kernel on the packed
    tokens (no flash_attn package involved), with sdpa's outputs. Set after loading: loading through
    `attn_implementation="flash_attention_2"` is transformers' business (it asks for the flash_attn package)."""
    _, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, "sdpa")
    ob_model.to(CUDA, torch.bfloat16)
    inputs = holes_inputs()
    with torch.no_grad():
        expected = real(ob_model(**inputs).last_hidden_state, inputs)
        varlen_calls.clear()
        ob_model.config._attn_implementation = "flash_attention_2"
        actual = real(ob_model(**inputs).last_hidden_state, inputs)
    assert varlen_calls == [torch.bfloat16] * ob_model.config.num_hidden_layers
    torch.testing.assert_close(actual, expected)
