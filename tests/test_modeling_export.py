"""Export and compile work on the default config, for the encoder and every head: `torch.export` with dynamic
batch and sequence dimensions, ONNX (torch's dynamo exporter) run by ONNX Runtime, and
`torch.compile(fullgraph=True)` without graph breaks. Traced graphs use the padded layout, and their outputs
equal the eager model's (which packs padded batches) on right-padded, left-padded and one-token batches."""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

from openbert import modeling

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)
HEADS = [modeling.OpenBertModel, modeling.OpenBertForPreTraining, modeling.OpenBertForMaskedLM,
         modeling.OpenBertForNextSentencePrediction, modeling.OpenBertForSequenceClassification,
         modeling.OpenBertForQuestionAnswering, modeling.OpenBertForTokenClassification,
         modeling.OpenBertForMultipleChoice]
NUM_CHOICES = 2


def batch(mask: list[list[int]], seed: int, multiple_choice: bool) -> dict[str, torch.Tensor]:
    attention_mask = torch.tensor(mask)
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, TINY["vocab_size"], attention_mask.shape, generator=generator) * attention_mask
    token_type_ids = (torch.arange(attention_mask.shape[1]) >= attention_mask.shape[1] // 2).long() * attention_mask
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    if multiple_choice:  # rows pair up into (batch, NUM_CHOICES, seq)
        inputs = {name: value.view(-1, NUM_CHOICES, value.shape[-1]) for name, value in inputs.items()}
    return inputs


def batches(multiple_choice: bool) -> dict[str, dict[str, torch.Tensor]]:
    """The batch to trace with, and three others of other shapes: left padding with holes, one token."""
    return {
        "traced": batch([[1] * 9, [1] * 6 + [0] * 3, [1] * 3 + [0] * 6, [1] * 8 + [0]], 0, multiple_choice),
        "right-padded": batch([[1] * 12, [1] * 5 + [0] * 7], 1, multiple_choice),
        "left-padded": batch([[0, 0, 0] + [1] * 4, [1, 1, 0, 1, 1, 1, 0], [0] * 6 + [1], [1] * 7,
                              [0, 1, 1, 1, 1, 1, 1], [1] * 3 + [0] * 4], 2, multiple_choice),
        "one token": batch([[1], [1]], 3, multiple_choice),
    }


def make_model(head: type) -> torch.nn.Module:
    torch.manual_seed(0)
    return head(modeling.OpenBertConfig(**TINY)).eval()


def flat_outputs(output) -> list[torch.Tensor]:
    return [value for value in output.values() if isinstance(value, torch.Tensor)]


def assert_matches_eager(model: torch.nn.Module, run, multiple_choice: bool, names: tuple[str, ...] = ()) -> None:
    """`run(inputs)` gives the eager model's outputs on every batch (or on the batches `names`)."""
    for name, inputs in batches(multiple_choice).items():
        if names and name not in names:
            continue
        with torch.no_grad():
            expected = flat_outputs(model(**inputs))
        actual = run(inputs)
        assert len(actual) == len(expected), name
        for got, want in zip(actual, expected, strict=True):
            torch.testing.assert_close(torch.as_tensor(got), want, rtol=1e-5, atol=1e-5, msg=name)


def dynamic_shapes(multiple_choice: bool) -> dict[str, dict[int, Dim]]:
    dims = {0: Dim("batch"), 1 + multiple_choice: Dim("seq", max=TINY["max_position_embeddings"])}
    return {name: dims for name in ("input_ids", "attention_mask", "token_type_ids")}


@pytest.mark.parametrize("head", HEADS, ids=lambda head: head.__name__)
def test_torch_export_with_dynamic_batch_and_sequence(head):
    model, multiple_choice = make_model(head), head is modeling.OpenBertForMultipleChoice
    traced = batches(multiple_choice)["traced"]
    program = torch.export.export(model, (), traced, dynamic_shapes=dynamic_shapes(multiple_choice))
    exported = program.module()
    assert_matches_eager(model, lambda inputs: flat_outputs(exported(**inputs)), multiple_choice)


def test_compile_without_graph_breaks():
    model = make_model(modeling.OpenBertForPreTraining)
    explanation = torch._dynamo.explain(model)(**batches(False)["traced"])
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons


@pytest.mark.parametrize("head", HEADS, ids=lambda head: head.__name__)
def test_compile_fullgraph(head):
    """`fullgraph=True` fails on any graph break. `backend="eager"`: dynamo's tracing, without the minutes
    inductor's C++ build takes on 2 cores. Two batches: each new shape pattern costs a trace."""
    model, multiple_choice = make_model(head), head is modeling.OpenBertForMultipleChoice
    compiled = torch.compile(model, fullgraph=True, backend="eager", dynamic=True)
    assert_matches_eager(model, lambda inputs: flat_outputs(compiled(**inputs)), multiple_choice,
                         names=("traced", "left-padded"))


@pytest.mark.parametrize("head", [modeling.OpenBertForPreTraining, modeling.OpenBertForMultipleChoice],
                         ids=lambda head: head.__name__)
def test_onnx_export_runs_in_onnxruntime(tmp_path, head):
    """Two heads (each export takes ~10 s here): the encoder with both pretraining heads, and 3-D inputs."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="ONNX Runtime is a test extra: pip install -e .[test]")
    pytest.importorskip("onnxscript", reason="torch's ONNX exporter needs onnxscript: pip install -e .[test]")
    model, multiple_choice = make_model(head), head is modeling.OpenBertForMultipleChoice
    traced = batches(multiple_choice)["traced"]
    program = torch.onnx.export(model, (), kwargs=traced, dynamic_shapes=dynamic_shapes(multiple_choice),
                                dynamo=True, verbose=False)
    program.save(str(tmp_path / "model.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    assert_matches_eager(
        model, lambda inputs: session.run(None, {name: value.numpy() for name, value in inputs.items()}),
        multiple_choice,
    )
