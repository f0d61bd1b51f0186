"""int8: torch.ao's dynamic quantization on openbert models, and openbert's weight-only int8 checkpoints
(`OpenBertInt8Config`: int8 matrices with one scale per row on disk, bfloat16 in memory)."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from openbert import modeling

TINY = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
INPUTS = dict(input_ids=torch.tensor([[2, 17, 45, 9, 3, 0], [2, 60, 3, 71, 8, 3]]),
              attention_mask=torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]))


def test_dynamic_int8_quantization_runs_and_tracks_fp32():
    """torch.ao's dynamic quantization swaps every nn.Linear (the QKV projections included, which then run
    one by one instead of fused): the int8 encoder runs, on a padded batch, and its LayerNorm-scaled hidden
    states stay close to fp32's without being equal to them."""
    from torch.ao.quantization import quantize_dynamic

    torch.manual_seed(0)
    config = modeling.OpenBertConfig(**TINY)
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


def saved_tensors(directory) -> dict[str, torch.Tensor]:
    with safe_open(str(directory / "model.safetensors"), "pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}


@pytest.fixture(scope="module")
def int8_classifier(tmp_path_factory):
    """A tiny fp32 classifier saved; loaded with `OpenBertInt8Config` (rounded to int8, bf16) and saved again."""
    root = tmp_path_factory.mktemp("int8")
    torch.manual_seed(0)
    modeling.OpenBertForSequenceClassification(modeling.OpenBertConfig(**TINY)).eval().save_pretrained(root / "fp32")
    quantized = AutoModelForSequenceClassification.from_pretrained(
        root / "fp32", quantization_config=modeling.OpenBertInt8Config()).eval()
    quantized.save_pretrained(root / "int8")
    return root, quantized


def test_int8_checkpoint_stores_int8_rows_and_loads_back_bit_for_bit(int8_classifier):
    root, quantized = int8_classifier
    fp32, saved = saved_tensors(root / "fp32"), saved_tensors(root / "int8")
    matrices = [name for name, tensor in fp32.items() if tensor.dim() == 2]
    assert len(matrices) == 3 + 2 * 6 + 2  # embeddings, 6 per layer (q, k, v, 3 dense), pooler, classifier
    for name in matrices:
        assert saved[name].dtype == torch.int8, name
        assert saved[name + "_scale"].shape == (fp32[name].shape[0], 1), name
        # Each row is its int8 rounding: within half a step of the original.
        step = saved[name + "_scale"]
        assert ((saved[name] * step - fp32[name]).abs() <= step / 2 + 1e-7).all(), name
    assert all(saved[name].is_floating_point() for name in fp32 if name not in matrices)  # biases, LayerNorms
    size = (root / "int8" / "model.safetensors").stat().st_size
    assert size <= 0.45 * (root / "fp32" / "model.safetensors").stat().st_size

    loaded = AutoModelForSequenceClassification.from_pretrained(root / "int8").eval()
    assert loaded.dtype == quantized.dtype == torch.bfloat16
    assert not hasattr(loaded.config, "quantization_config")  # a plain model once loaded
    for name, tensor in quantized.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with torch.no_grad():
        torch.testing.assert_close(loaded(**INPUTS).logits, quantized(**INPUTS).logits, rtol=0, atol=0)


def test_int8_weights_track_fp32_outputs(int8_classifier):
    root, quantized = int8_classifier
    fp32 = AutoModelForSequenceClassification.from_pretrained(root / "fp32").eval()
    with torch.no_grad():
        expected = fp32.bert(**INPUTS).last_hidden_state[INPUTS["attention_mask"].bool()]
        actual = quantized.bert(**INPUTS).last_hidden_state[INPUTS["attention_mask"].bool()].float()
    assert expected.std() > 0.5
    error = (actual - expected).abs().max()
    assert 0 < error < 0.15, f"max abs error {error}"


def test_int8_tied_embeddings_saved_once_and_modules_kept_in_float(tmp_path):
    torch.manual_seed(0)
    modeling.OpenBertForMaskedLM(modeling.OpenBertConfig(**TINY)).save_pretrained(tmp_path / "fp32")
    config = modeling.OpenBertInt8Config(compute_dtype="float32", modules_to_not_convert=["bert.encoder.layer.1"])
    AutoModelForMaskedLM.from_pretrained(tmp_path / "fp32", quantization_config=config).save_pretrained(
        tmp_path / "int8")
    saved = saved_tensors(tmp_path / "int8")
    assert saved["bert.embeddings.word_embeddings.weight"].dtype == torch.int8
    assert "cls.predictions.decoder.weight" not in saved  # tied to the word embeddings
    assert saved["bert.encoder.layer.0.output.dense.weight"].dtype == torch.int8
    assert saved["bert.encoder.layer.1.output.dense.weight"].dtype == torch.float32
    assert "bert.encoder.layer.1.output.dense.weight_scale" not in saved
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path / "int8")
    assert loaded.dtype == torch.float32
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight


def test_int8_config_refuses_an_unknown_compute_dtype():
    with pytest.raises(ValueError, match="compute_dtype must be 'bfloat16' or 'float32'"):
        modeling.OpenBertInt8Config(compute_dtype="float16")


def test_int8_checkpoint_loads_as_remote_code_without_openbert(int8_classifier, tmp_path):
    """The checkpoint carries the quantization method's code: it loads where `import openbert` is impossible."""
    root, quantized = int8_classifier
    script = textwrap.dedent(f"""
        import sys
        sys.modules["openbert"] = None
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(root / "int8")!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            torch.save(model.eval()(**torch.load({str(tmp_path / "inputs.pt")!r})).logits, {str(tmp_path / "out.pt")!r})
        """)
    torch.save(INPUTS, tmp_path / "inputs.pt")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=300)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "out.pt"), quantized(**INPUTS).logits, rtol=0, atol=0)
