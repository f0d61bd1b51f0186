"""The default openbert model behaves as transformers' BERT does for the same call: what users write for a
`Bert*` model (Trainer metric code, recorded hidden states and attentions, gradients through hidden states,
other attention implementations) works unchanged and gives the same numbers."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import transformers
from test_modeling_parity import BATCH, IMPLS, SEQ, TINY, close, load_pair, make_inputs, real

from openbert import modeling
from openbert.modeling import packed_tokens


def assert_same_hidden_states(ours: tuple, theirs: tuple, inputs: dict[str, torch.Tensor]) -> None:
    """Equal at every position, except that openbert's last one (`last_hidden_state`) holds zeros at padded
    positions (the documented difference, whichever layout ran)."""
    assert len(ours) == len(theirs)
    for mine, other in zip(ours[:-1], theirs[:-1], strict=True):
        assert (mine is None) == (other is None)
        if other is not None:
            close(mine, other)
    if theirs[-1] is not None:
        close(real(ours[-1], inputs), real(theirs[-1], inputs))
        assert torch.count_nonzero(ours[-1][inputs["attention_mask"] == 0]) == 0


class _Rows(torch.utils.data.Dataset):
    def __init__(self, columns: dict[str, torch.Tensor]):
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: column[index] for name, column in self.columns.items()}


def _run_mlm_accuracy(model, dataset, output_dir) -> float:
    """Evaluation written as transformers' examples/pytorch/language-modeling/run_mlm.py writes it."""

    def preprocess_logits_for_metrics(logits, labels):
        if isinstance(logits, tuple):
            logits = logits[0]
        return logits.argmax(dim=-1)

    def compute_metrics(eval_preds):
        preds, labels = eval_preds
        labels = labels.reshape(-1)
        preds = preds.reshape(-1)
        mask = labels != -100
        return {"accuracy": float(np.mean(preds[mask] == labels[mask]))}

    args = transformers.TrainingArguments(output_dir=str(output_dir), per_device_eval_batch_size=4, report_to="none",
                                          use_cpu=True, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, eval_dataset=dataset, compute_metrics=compute_metrics,
                                   preprocess_logits_for_metrics=preprocess_logits_for_metrics)
    return trainer.evaluate()["eval_accuracy"]


def test_run_mlm_metric_code_gives_transformers_accuracy(tmp_path):
    hf_model, ob_model = load_pair(tmp_path / "ckpt", transformers.BertForMaskedLM, modeling.OpenBertForMaskedLM,
                                   "sdpa")
    generator = torch.Generator().manual_seed(4)
    input_ids = torch.randint(1, TINY["vocab_size"], (12, SEQ), generator=generator)
    attention_mask = (torch.arange(SEQ) < torch.randint(3, SEQ + 1, (12, 1), generator=generator)).long()
    with torch.no_grad():
        predicted = hf_model(input_ids=input_ids, attention_mask=attention_mask).logits.argmax(-1)
    # Labels at a third of the real positions: half of them what transformers' model predicts, half not, so the
    # expected accuracy is known (0.5) and any difference in logits shows.
    chosen = (torch.rand(input_ids.shape, generator=generator) < 0.33) & attention_mask.bool()
    agree = torch.rand(input_ids.shape, generator=generator) < 0.5
    labels = torch.where(agree, predicted, (predicted + 1) % TINY["vocab_size"]).masked_fill(~chosen, -100)
    dataset = _Rows(dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels))
    theirs = _run_mlm_accuracy(hf_model, dataset, tmp_path / "theirs")
    ours = _run_mlm_accuracy(ob_model, dataset, tmp_path / "ours")
    assert ours == theirs == pytest.approx(float(agree[chosen].float().mean()))


def _sdpa_warning_emitted(caplog) -> bool:
    return any("`sdpa` attention does not support `output_attentions=True`" in r.message for r in caplog.records)


@pytest.mark.parametrize("impl", IMPLS)
def test_recorded_outputs_match_transformers(tmp_path, caplog, monkeypatch, impl):
    """`output_hidden_states=True` and `output_attentions=True` give transformers' tuples: hidden states equal
    at every position; eager attentions equal, sdpa none (with transformers' warning), even where openbert would
    otherwise attend on packed tokens."""
    monkeypatch.setattr(packed_tokens, "ATTENTION_CALL_COST", 0)
    hf_model, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, impl)
    inputs = make_inputs()
    outputs = {}
    for name, model in (("ours", ob_model), ("theirs", hf_model)):
        logging.Logger.warning_once.cache_clear()  # transformers warns once per process
        caplog.clear()
        with torch.no_grad(), caplog.at_level(logging.WARNING):
            outputs[name] = model(**inputs, output_hidden_states=True, output_attentions=True)
        outputs[name, "warned"] = _sdpa_warning_emitted(caplog)
    ours, theirs = outputs["ours"], outputs["theirs"]
    assert len(ours.hidden_states) == TINY["num_hidden_layers"] + 1
    assert_same_hidden_states(ours.hidden_states, theirs.hidden_states, inputs)
    assert ours.hidden_states[-1] is ours.last_hidden_state
    assert len(ours.attentions) == len(theirs.attentions) == (TINY["num_hidden_layers"] if impl == "eager" else 0)
    for mine, other in zip(ours.attentions, theirs.attentions, strict=True):
        assert mine.shape == (BATCH, TINY["num_attention_heads"], SEQ, SEQ)
        close(mine, other)
    assert outputs["ours", "warned"] == outputs["theirs", "warned"] == (impl == "sdpa")


@pytest.mark.parametrize("selection", [[0, 2, -1], [1], -1, [0]])
def test_hidden_state_selection_matches_transformers(tmp_path, selection):
    """transformers 5's layer selection: unselected entries are None, negative indices count from the end."""
    hf_model, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, "sdpa")
    inputs = make_inputs()
    with torch.no_grad():
        ours = ob_model(**inputs, output_hidden_states=selection).hidden_states
        theirs = hf_model(**inputs, output_hidden_states=selection).hidden_states
    wanted = {i % (TINY["num_hidden_layers"] + 1) for i in (selection if isinstance(selection, list) else [selection])}
    assert {i for i, h in enumerate(ours) if h is not None} == wanted
    assert_same_hidden_states(ours, theirs, inputs)


def test_hidden_states_in_tuple_outputs(tmp_path):
    """`return_dict=False` puts the recorded outputs in the tuple, after the head's own outputs."""
    hf_model, ob_model = load_pair(tmp_path, transformers.BertForSequenceClassification,
                                   modeling.OpenBertForSequenceClassification, "eager", num_labels=3)
    inputs = make_inputs()
    with torch.no_grad():
        ours = ob_model(**inputs, output_hidden_states=True, output_attentions=True, return_dict=False)
        theirs = hf_model(**inputs, output_hidden_states=True, output_attentions=True, return_dict=False)
    assert len(ours) == len(theirs) == 3  # logits, hidden states, attentions
    close(ours[0], theirs[0])
    assert_same_hidden_states(ours[1], theirs[1], inputs)
    for mine, other in zip(ours[2], theirs[2], strict=True):
        close(mine, other)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("per_sequence", [True, False])
def test_gradients_reach_every_hidden_state(tmp_path, monkeypatch, impl, per_sequence):
    """Every returned hidden state is the tensor the next layer reads: `torch.autograd.grad` through each gives
    transformers' gradient, and `retain_grad()` fills `.grad` (attribution and probing work)."""
    monkeypatch.setattr(packed_tokens, "ATTENTION_CALL_COST", 0 if per_sequence else 1e12)
    hf_model, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, impl)
    inputs = make_inputs()
    grads = {}
    for name, model in (("ours", ob_model), ("theirs", hf_model)):
        output = model(**inputs, output_hidden_states=True)
        loss = real(output.last_hidden_state, inputs).square().sum() + output.pooler_output.sum()
        grads[name] = torch.autograd.grad(loss, output.hidden_states)
    for mine, other in zip(grads["ours"], grads["theirs"], strict=True):
        assert torch.count_nonzero(mine) > 0
        close(mine, other)

    output = ob_model(**inputs, output_hidden_states=True)
    for hidden in output.hidden_states:
        hidden.retain_grad()
    real(output.last_hidden_state, inputs).sum().backward()
    assert all(hidden.grad is not None and torch.count_nonzero(hidden.grad) > 0 for hidden in output.hidden_states)


def test_flex_attention_matches_transformers(tmp_path):
    """Declared and working: flex attention on the padded layout (packed dense layers), recorded or not.
    One test because flex attention compiles its kernel on first use (tens of seconds on 2 cores)."""
    hf_model, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, "flex_attention")
    assert ob_model.config._attn_implementation == "flex_attention"
    inputs = make_inputs()
    with torch.no_grad():
        theirs = hf_model(**inputs, output_hidden_states=True)
        ours = ob_model(**inputs, output_hidden_states=True)
        ours_packed = ob_model(**inputs)
    assert_same_hidden_states(ours.hidden_states, theirs.hidden_states, inputs)
    close(ours_packed.last_hidden_state, ours.last_hidden_state)
