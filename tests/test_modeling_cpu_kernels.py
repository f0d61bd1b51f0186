"""The fused dense + GELU of bfloat16 CPU inference (one oneDNN call for the feed-forward's first half): taken
where it applies, and the same outputs as the separate ops."""

from __future__ import annotations

import pytest
import torch

from openbert import modeling
from openbert.modeling import modeling_openbert

pytestmark = pytest.mark.skipif(not modeling_openbert._MKLDNN_BF16,
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


def test_float32_other_activations_and_training_keep_the_separate_ops(fused_calls):
    with torch.no_grad():
        model()(**INPUTS)
        model("gelu_new").to(torch.bfloat16)(**INPUTS)
    model().train()(**INPUTS).last_hidden_state.sum().backward()
    assert fused_calls == []
