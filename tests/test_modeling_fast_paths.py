"""Fast paths inside the layers: the side-by-side QKV projection's backward pass (same gradients as plain
autograd, without saving a concatenated weight), the fused dense + GELU of bfloat16 CPU inference (one oneDNN
call for the feed-forward's first half: taken where it applies, same outputs as the separate ops), and CPU
dropout (`cpu_dropout`: the right share dropped, the right scale and gradient; `fast_dropout` choosing it in
training only; attention that applies it as SDPA would)."""

from __future__ import annotations

import pytest
import torch

from openbert import modeling
from openbert.modeling import modeling_openbert, packed_tokens

needs_onednn_bf16 = pytest.mark.skipif(not modeling_openbert._MKLDNN_BF16,
                                       reason="needs torch with oneDNN and a CPU with its bfloat16 support")

INPUTS = dict(input_ids=torch.tensor([[2, 17, 45, 9, 3, 0, 0], [2, 60, 3, 71, 8, 3, 5]]),
              attention_mask=torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]))


def model(hidden_act: str = "gelu") -> modeling.OpenBertModel:
    torch.manual_seed(0)
    config = modeling.OpenBertConfig(vocab_size=99, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                     intermediate_size=256, hidden_act=hidden_act)
    return modeling.OpenBertModel(config).eval()


@pytest.fixture
def fused_calls(monkeypatch) -> list[torch.dtype]:
    calls, op = [], modeling_openbert._MKLDNN_LINEAR

    def counted(hidden_states, *args):
        calls.append(hidden_states.dtype)
        return op(hidden_states, *args)

    monkeypatch.setattr(modeling_openbert, "_MKLDNN_LINEAR", counted)
    return calls


@needs_onednn_bf16
def test_bfloat16_inference_fuses_dense_and_gelu_with_the_same_outputs(fused_calls):
    encoder = model().to(torch.bfloat16)
    real = INPUTS["attention_mask"].bool()
    separate = encoder(**INPUTS).last_hidden_state[real]  # grad enabled: the separate ops
    assert fused_calls == []
    with torch.no_grad():
        fused = encoder(**INPUTS).last_hidden_state[real]
    assert fused_calls == [torch.bfloat16] * 3  # once per layer
    # bfloat16 keeps 8 bits: the fused call rounds the product once where the separate ops round it twice.
    torch.testing.assert_close(fused, separate.detach(), rtol=0, atol=5e-2)
    assert fused.float().std() > 0.5


@needs_onednn_bf16
def test_float32_other_activations_and_training_keep_the_separate_ops(fused_calls):
    with torch.no_grad():
        model()(**INPUTS)
        model("gelu_new").to(torch.bfloat16)(**INPUTS)
    model().train()(**INPUTS).last_hidden_state.sum().backward()
    assert fused_calls == []


def test_side_by_side_projection_has_autograd_gradients_and_saves_no_weight_copy():
    torch.manual_seed(0)
    projections = tuple(torch.nn.Linear(8, 8, dtype=torch.float64) for _ in range(3))
    hidden_states = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    parameters = [p for projection in projections for p in (projection.weight, projection.bias)]

    def saved_copies(run) -> tuple[torch.Tensor, int]:
        """Elements of the tensors autograd saves for the backward pass that are not parameters or the input."""
        own = {t.data_ptr() for t in [*parameters, hidden_states]}
        copies = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: copies.append(t.numel()) or t
                                                      if t.data_ptr() not in own else t, lambda t: t):
            output = run()
        return output, sum(copies)

    fused, fused_copies = saved_copies(lambda: modeling_openbert._project(hidden_states, projections))
    plain, plain_copies = saved_copies(lambda: torch.cat([p(hidden_states) for p in projections], dim=-1))
    assert fused_copies == 0 and plain_copies == 0
    _, concatenated_copies = saved_copies(lambda: torch.nn.functional.linear(
        hidden_states, torch.cat([p.weight for p in projections]), torch.cat([p.bias for p in projections])))
    assert concatenated_copies == 3 * 8 * 8  # what plain autograd of the one-GEMM form keeps

    weights = torch.randn_like(plain)
    expected = torch.autograd.grad((plain * weights).sum(), [hidden_states, *parameters])
    actual = torch.autograd.grad((fused * weights).sum(), [hidden_states, *parameters])
    torch.testing.assert_close(fused, plain)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e)


def test_cpu_dropout_drops_p_and_scales_the_rest():
    torch.manual_seed(0)
    hidden_states = torch.rand(1000, 1000) + 1.0  # no zeros of its own
    dropped = packed_tokens.cpu_dropout(hidden_states, 0.1)
    zero = dropped == 0
    # 1e6 draws: the share is within 5 standard deviations (3e-4 each) of 0.1.
    assert abs(zero.float().mean().item() - 0.1) < 0.0015
    torch.testing.assert_close(dropped[~zero], hidden_states[~zero] * (1 / 0.9), rtol=0, atol=0)
    # Rows see different masks (the draws are not repeated), and the same seed gives the same mask.
    assert not torch.equal(zero[0], zero[1])
    torch.manual_seed(0)
    torch.rand(1000, 1000)
    assert torch.equal(packed_tokens.cpu_dropout(hidden_states, 0.1) == 0, zero)
    assert torch.equal(packed_tokens.fast_dropout(hidden_states, 1.0), torch.zeros_like(hidden_states))


def test_cpu_dropout_gradient_is_the_mask_times_the_scale_and_keeps_two_bytes_per_element():
    torch.manual_seed(0)
    hidden_states = torch.randn(64, 32, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        dropped = packed_tokens.cpu_dropout(hidden_states, 0.25)
    # What the backward pass keeps: the 16-bit uniforms, two bytes per element.
    assert [(t.dtype, t.numel()) for t in saved] == [(torch.int16, 64 * 32)]
    dropped.sum().backward()
    kept = (dropped != 0).float()
    torch.testing.assert_close(hidden_states.grad, kept / 0.75, rtol=0, atol=0)


def test_dropout_modules_and_eager_attention_use_cpu_dropout_in_training_only(monkeypatch):
    calls = []
    monkeypatch.setattr(packed_tokens, "cpu_dropout", lambda x, p: calls.append(p) or x)
    dropout = modeling_openbert.OpenBertDropout(0.1)
    hidden_states = torch.randn(4, 8)
    assert torch.equal(dropout.eval()(hidden_states), hidden_states)
    dropout.train()(hidden_states)
    assert calls == [0.1]
    assert isinstance(dropout, torch.nn.Dropout)
    # Eager attention (the padded layout's written-out softmax) draws its dropout the same way.
    query = torch.randn(2, 4, 5, 8)
    modeling_openbert.eager_attention_forward(dropout, query, query, query, None, dropout=0.2)
    assert calls == [0.1, 0.2]


def test_packed_attention_with_dropout_computes_what_sdpa_does(monkeypatch):
    """The CPU path that applies attention dropout itself: with dropout drawing nothing, SDPA's outputs."""
    calls = []
    monkeypatch.setattr(packed_tokens, "cpu_dropout", lambda probs, p: calls.append(p) or probs)
    monkeypatch.setattr(packed_tokens, "ATTENTION_CALL_COST", 1)  # a group per length: attention on packed tokens
    torch.manual_seed(0)
    encoder = model().train()
    for layer in encoder.encoder.layer:  # attention dropout only, so that the two runs can agree
        layer.attention.output.dropout.p = layer.output.dropout.p = 0.0
    encoder.embeddings.dropout.p = 0.0
    lengths = torch.tensor([3, 20, 21, 40, 7, 40])
    mask = (torch.arange(40)[None] < lengths[:, None]).long()
    input_ids = torch.randint(5, 99, (6, 40)) * mask
    with_dropout = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
    assert calls == [0.1] * 3 * 5  # each layer, each group (lengths 3, 7, 20, 21, 40)
    for layer in encoder.encoder.layer:
        layer.attention.self.dropout_prob = 0.0
    without = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(with_dropout, without, rtol=0, atol=1e-5)
