"""CPU inference with dynamic int8 quantization (torch.ao), which replaces the model's nn.Linear modules."""

from __future__ import annotations

import copy

import torch

from openbert import modeling


def test_dynamic_int8_quantization_runs_and_tracks_fp32():
    """torch.ao's dynamic quantization swaps every nn.Linear (the QKV projections included, which then run
    one by one instead of fused): the int8 encoder runs, on a padded batch, and its LayerNorm-scaled hidden
    states stay close to fp32's without being equal to them."""
    from torch.ao.quantization import quantize_dynamic

    torch.manual_seed(0)
    config = modeling.OpenBertConfig(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128)
    fp32 = modeling.OpenBertModel(config).eval()
    int8 = quantize_dynamic(copy.deepcopy(fp32), {torch.nn.Linear}, dtype=torch.qint8)
    assert type(int8.encoder.layer[0].attention.self.query) is not torch.nn.Linear
    input_ids = torch.randint(1, 120, (4, 10))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    real = attention_mask.bool()
    with torch.no_grad():
        expected = fp32(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[real]
        actual = int8(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[real]
    assert expected.std() > 0.5  # unit-scale values, so the tolerance below is a real bound
    error = (actual - expected).abs().max()
    assert 0 < error < 0.1, f"max abs error {error}"
