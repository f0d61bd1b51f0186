"""Checkpoints: save -> load round trips, remote code in a process that cannot import openbert, and
conversion to and from transformers' BERT."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import transformers

from openbert import modeling
from openbert.modeling import convert
from openbert.modeling.modeling_openbert import AUTO_CLASS_NAMES

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, num_labels=3)
HEADS = {name: getattr(modeling, class_name) for name, class_name in AUTO_CLASS_NAMES.items()}
INPUTS = dict(
    input_ids=torch.tensor([[2, 17, 45, 9, 3, 0], [2, 60, 3, 71, 8, 3]]),
    attention_mask=torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]),
    token_type_ids=torch.tensor([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]]),
)


def inputs_for(auto_name: str) -> dict[str, torch.Tensor]:
    if auto_name == "AutoModelForMultipleChoice":  # (batch, num_choices, seq)
        return {k: v.unsqueeze(0) for k, v in INPUTS.items()}
    return INPUTS


def outputs_of(model, auto_name: str) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        output = model(**inputs_for(auto_name))
    return {k: v for k, v in output.items() if isinstance(v, torch.Tensor)}


@pytest.fixture(scope="module")
def saved_heads(tmp_path_factory) -> dict[str, tuple[Path, dict[str, torch.Tensor]]]:
    """Every head, randomly initialised, saved; with its outputs on INPUTS."""
    root = tmp_path_factory.mktemp("heads")
    saved = {}
    for auto_name, model_class in HEADS.items():
        torch.manual_seed(0)
        num_labels = 2 if auto_name == "AutoModelForQuestionAnswering" else 3  # QA scores start and end
        model = model_class(modeling.OpenBertConfig(**{**TINY, "num_labels": num_labels})).eval()
        model.save_pretrained(root / auto_name)
        saved[auto_name] = (root / auto_name, outputs_of(model, auto_name))
    return saved


def test_save_writes_code_and_full_auto_map(saved_heads):
    directory, _ = saved_heads["AutoModelForMaskedLM"]
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "openbert"
    assert config["auto_map"]["AutoConfig"] == "configuration_openbert.OpenBertConfig"
    for auto_name, class_name in AUTO_CLASS_NAMES.items():
        assert config["auto_map"][auto_name] == f"modeling_openbert.{class_name}"
    # The modeling file and the files it imports (relative imports are copied along, recursively).
    for code in ("modeling_openbert.py", "packed_tokens.py", "configuration_openbert.py"):
        assert (directory / code).is_file(), code
    assert (directory / "model.safetensors").is_file()


@pytest.mark.parametrize("auto_name", list(AUTO_CLASS_NAMES))
def test_local_round_trip(saved_heads, auto_name):
    directory, expected = saved_heads[auto_name]
    model = getattr(transformers, auto_name).from_pretrained(directory).eval()
    assert type(model) is HEADS[auto_name]
    actual = outputs_of(model, auto_name)
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)


def test_remote_code_in_a_process_without_openbert(saved_heads, tmp_path):
    """Every head loads through `trust_remote_code` where `import openbert` is impossible, same outputs."""
    cases = {auto_name: str(directory) for auto_name, (directory, _) in saved_heads.items()}
    torch.save({"inputs": INPUTS, "cases": cases}, tmp_path / "job.pt")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["openbert"] = None  # make the installed package unimportable
        import torch, transformers
        job = torch.load({str(tmp_path / "job.pt")!r})
        results = {{}}
        for auto_name, directory in job["cases"].items():
            model = getattr(transformers, auto_name).from_pretrained(directory, trust_remote_code=True).eval()
            assert not type(model).__module__.startswith("openbert"), type(model).__module__
            inputs = job["inputs"]
            if auto_name == "AutoModelForMultipleChoice":
                inputs = {{k: v.unsqueeze(0) for k, v in inputs.items()}}
            with torch.no_grad():
                output = model(**inputs)
            results[auto_name] = (type(model).__name__, type(model).__module__,
                                  {{k: v for k, v in output.items() if isinstance(v, torch.Tensor)}})
        torch.save(results, {str(tmp_path / "results.pt")!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=300)
    results = torch.load(tmp_path / "results.pt")
    for auto_name, (_, expected) in saved_heads.items():
        class_name, module, actual = results[auto_name]
        assert class_name == AUTO_CLASS_NAMES[auto_name]
        assert module.startswith("transformers_modules"), module
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)


def test_pretraining_checkpoint_fine_tunes_as_any_head(saved_heads):
    """A pretraining checkpoint loads into a classification head: encoder kept, new head reported missing."""
    directory, _ = saved_heads["AutoModelForPreTraining"]
    model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        directory, num_labels=2, output_loading_info=True
    )
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    source = modeling.OpenBertForPreTraining.from_pretrained(directory)
    torch.testing.assert_close(model.bert.pooler.dense.weight, source.bert.pooler.dense.weight)


@pytest.mark.parametrize("auto_name", ["AutoModelForPreTraining", "AutoModelForSequenceClassification",
                                       "AutoModelForQuestionAnswering", "AutoModelForMultipleChoice"])
def test_convert_to_transformers_and_back(saved_heads, tmp_path, auto_name):
    directory, expected = saved_heads[auto_name]
    bert_dir = convert.to_transformers(directory, tmp_path / "bert")
    config = json.loads((bert_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and "auto_map" not in config and "unpad_inputs" not in config
    bert = getattr(transformers, auto_name).from_pretrained(bert_dir).eval()
    assert type(bert).__name__ == AUTO_CLASS_NAMES[auto_name].replace("OpenBert", "Bert")
    for key, value in outputs_of(bert, auto_name).items():
        real = INPUTS["attention_mask"].bool()
        if value.dim() >= 2 and value.shape[:2] == real.shape:  # per-token outputs: padding differs by design
            value, reference = value[real], expected[key][real]
        else:
            reference = expected[key]
        torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-5)
    back = convert.from_transformers(bert_dir, tmp_path / "back")
    model = getattr(transformers, auto_name).from_pretrained(back).eval()
    assert type(model) is HEADS[auto_name]
    for key, value in outputs_of(model, auto_name).items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_convert_cli_carries_the_tokenizer(minilm_dir, tmp_path):
    subprocess.run([sys.executable, "-m", "modeling.convert", "--from-transformers", str(minilm_dir),
                    str(tmp_path / "minilm")], check=True, timeout=300)
    config = json.loads((tmp_path / "minilm" / "config.json").read_text())
    assert config["model_type"] == "openbert" and config["num_hidden_layers"] == 6
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "minilm")
    assert len(tokenizer) == 30522
    with pytest.raises(FileExistsError, match="not empty"):
        convert.from_transformers(minilm_dir, tmp_path / "minilm")
    with pytest.raises(FileNotFoundError, match="config.json"):
        convert.to_transformers(tmp_path / "missing", tmp_path / "out")


def test_from_pretrained_dtype_and_attention_implementation(saved_heads):
    directory, expected = saved_heads["AutoModel"]
    model = modeling.OpenBertModel.from_pretrained(directory, dtype=torch.bfloat16, attn_implementation="eager")
    assert model.dtype == torch.bfloat16 and model.config._attn_implementation == "eager"
    with torch.no_grad():
        hidden = model(**INPUTS).last_hidden_state
    assert hidden.dtype == torch.bfloat16
    real = INPUTS["attention_mask"].bool()
    torch.testing.assert_close(hidden.float()[real], expected["last_hidden_state"][real], rtol=0.05, atol=0.05)


class _Payload:
    """Unpickling this runs code; a checkpoint loader with weights_only=True must refuse it."""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))

    def __init__(self, marker: str):
        self.marker = marker


def test_pytorch_bin_checkpoints_load_with_weights_only(tmp_path):
    torch.manual_seed(0)
    bert = transformers.BertForMaskedLM(transformers.BertConfig(**TINY))
    bert.config.save_pretrained(tmp_path / "plain")
    torch.save(bert.state_dict(), tmp_path / "plain" / "pytorch_model.bin")
    model = modeling.OpenBertForMaskedLM.from_pretrained(tmp_path / "plain")
    loaded, saved = model.cls.predictions.transform.dense.weight, bert.cls.predictions.transform.dense.weight
    torch.testing.assert_close(loaded, saved)

    marker = tmp_path / "code-ran"
    bert.config.save_pretrained(tmp_path / "evil")
    torch.save({**bert.state_dict(), "payload": _Payload(str(marker))}, tmp_path / "evil" / "pytorch_model.bin")
    with pytest.raises(Exception, match="(?i)weights_only|unpickl"):
        modeling.OpenBertForMaskedLM.from_pretrained(tmp_path / "evil")
    assert not marker.exists()


def test_missing_mlm_head_is_initialised_on_load(minilm_dir):
    """MiniLM has no MLM head: the new head (its bias included) is created on load, tied, and usable."""
    model, info = modeling.OpenBertForPreTraining.from_pretrained(minilm_dir, output_loading_info=True)
    assert "cls.predictions.bias" in info["missing_keys"]
    head = model.cls.predictions
    assert head.bias.device.type == "cpu" and torch.count_nonzero(head.bias) == 0
    assert head.decoder.bias is head.bias
    assert head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    output = model(input_ids=torch.tensor([[101, 2023, 103, 102]]), labels=torch.tensor([[-100, -100, 2003, -100]]))
    assert torch.isfinite(output.loss)
