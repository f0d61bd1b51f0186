"""CPU inference with dynamic int8 quantization (torch.ao), which replaces the model's nn.Linear modules."""

from __future__ import annotations

import copy

import torch

import modeling


def test_dynamic_int8_quantization_runs_and_tracks_fp32():
    """torch.ao's dynamic quantization swaps every nn.Linear (the QKV projections included, which then run
    one by one instead of fused): the int8 classifier runs and stays close to the fp32 one."""
    from torch.ao.quantization import quantize_dynamic

    torch.manual_seed(0)
    config = modeling.OpenBertConfig(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, num_labels=3)
    fp32 = modeling.OpenBertForSequenceClassification(config).eval()
    int8 = quantize_dynamic(copy.deepcopy(fp32), {torch.nn.Linear}, dtype=torch.qint8)
    assert type(int8.bert.encoder.layer[0].attention.self.query) is not torch.nn.Linear
    input_ids = torch.randint(1, 120, (4, 10))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    with torch.no_grad():
        expected = fp32(input_ids=input_ids, attention_mask=attention_mask).logits
        actual = int8(input_ids=input_ids, attention_mask=attention_mask).logits
    assert actual.shape == expected.shape == (4, 3)
    torch.testing.assert_close(actual, expected, atol=0.05, rtol=0.0)
