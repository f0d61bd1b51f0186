"""PEFT out of the box: LoRA on an openbert model without `target_modules` adapts BERT's layers (query, value),
trains, saves, reloads through `AutoPeftModelFor...` and merges; in either import order, and `import openbert`
itself never imports peft."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from openbert.modeling import OpenBertConfig, OpenBertForSequenceClassification

peft = pytest.importorskip("peft", reason="needs the search extra")
from peft import AutoPeftModelForSequenceClassification, LoraConfig, get_peft_model  # noqa: E402

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, num_labels=2)
INPUTS = dict(input_ids=torch.tensor([[2, 17, 45, 9, 3, 0], [2, 60, 3, 71, 8, 3], [2, 5, 6, 7, 3, 0]]),
              attention_mask=torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]]))
LABELS = torch.tensor([0, 1, 1])


def logits(model: torch.nn.Module) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**INPUTS).logits


def test_lora_without_target_modules_trains_saves_reloads_and_merges(tmp_path):
    torch.manual_seed(0)
    OpenBertForSequenceClassification(OpenBertConfig(**TINY)).save_pretrained(tmp_path / "base")
    base = OpenBertForSequenceClassification.from_pretrained(tmp_path / "base")
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, init_lora_weights=False))
    assert model.peft_config["default"].target_modules == {"query", "value"}  # BERT's defaults
    adapted = sorted(name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")
                     and isinstance(module.lora_A, torch.nn.ModuleDict))
    assert adapted == ["query"] * 2 + ["value"] * 2  # two layers

    frozen = {name: p.clone() for name, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    losses = []
    for _ in range(20):
        model.train()
        loss = model(**INPUTS, labels=LABELS).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5, losses
    assert all(torch.equal(p, frozen[name]) for name, p in model.named_parameters() if name in frozen)
    trained = logits(model)

    model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert sorted(saved["target_modules"]) == ["query", "value"]
    reloaded = AutoPeftModelForSequenceClassification.from_pretrained(tmp_path / "adapter")
    assert isinstance(reloaded.get_base_model(), OpenBertForSequenceClassification)
    torch.testing.assert_close(logits(reloaded), trained)

    merged = reloaded.merge_and_unload()
    assert type(merged) is OpenBertForSequenceClassification
    torch.testing.assert_close(logits(merged), trained, rtol=1e-5, atol=1e-5)
    merged.save_pretrained(tmp_path / "merged")
    torch.testing.assert_close(logits(AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged")),
                               trained, rtol=1e-5, atol=1e-5)


# In a fresh process, `order` decides which of peft and openbert is imported first.
IMPORT_ORDER = textwrap.dedent("""
    import json, sys
    order = sys.argv[1].split(",")
    if order[0] == "openbert":
        import openbert
        assert "peft" not in sys.modules, "import openbert imported peft"
    for name in order:
        __import__(name)
    from openbert.modeling import OpenBertConfig, OpenBertModel
    from peft import LoraConfig, get_peft_model
    from peft.utils import constants
    model = OpenBertModel(OpenBertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=20))
    lora = get_peft_model(model, LoraConfig(r=2)).peft_config["default"].target_modules
    ia3 = constants.TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING["openbert"]
    print(json.dumps({"lora": sorted(lora), "ia3": ia3,
                      "bert": constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["bert"]}))
""")


@pytest.mark.parametrize("order", ["openbert,peft", "peft,openbert"])
def test_defaults_whatever_is_imported_first(order):
    done = subprocess.run([sys.executable, "-c", IMPORT_ORDER, order], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"lora": ["query", "value"], "ia3": ["key", "value", "output.dense"], "bert": ["query", "value"]}
