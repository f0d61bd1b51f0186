"""`compile_layers()` and `--compile_layers`: regional `torch.compile` of each layer's elementwise blocks.

Compiled with the `aot_eager` backend (it traces forward and backward as inductor would, without building C++,
which takes minutes on 2 cores), so these tests check what compiling changes for callers: values, gradients,
recompiles, checkpoints, and that the training commands apply it when asked.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch._dynamo
from test_pretrain_entrypoint import tiny_args, write_corpus

from openbert.modeling import OpenBertConfig, OpenBertForPreTraining, OpenBertModel, OpenBertPreTrainedModel
from openbert.training.output_dir import OpenBertTrainingArguments
from openbert.training.pretraining import main as pretrain

BACKEND = "aot_eager"
CONFIG = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test starts with no compiled code: Dynamo's caches live on the functions' code, for the whole process."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield
    torch._dynamo.reset()


def eager_and_compiled(model_class=OpenBertModel) -> tuple[OpenBertPreTrainedModel, OpenBertPreTrainedModel]:
    eager = model_class(OpenBertConfig(**CONFIG)).train()
    compiled = copy.deepcopy(eager)
    compiled.compile_layers(backend=BACKEND)
    return eager, compiled


def is_compiled(model: OpenBertPreTrainedModel) -> bool:
    layers = model.base_model.encoder.layer
    return all("feed_forward" in layer.__dict__ and "forward" in layer.attention.output.__dict__ for layer in layers)


def padded_batch(lengths: list[int], holes: bool = False) -> dict[str, torch.Tensor]:
    seq = max(lengths)
    mask = (torch.arange(seq)[None] < torch.tensor(lengths)[:, None]).long()
    if holes:  # padding inside rows too, not only at their ends
        mask[:, 1::3] = 0
        mask[:, 0] = 1
    ids = torch.randint(1, CONFIG["vocab_size"], mask.shape) * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": (torch.arange(seq) >= seq // 2).long()
            .expand_as(mask) * mask}


def packed_batch(lengths: list[int]) -> dict[str, torch.Tensor]:
    """One row of sequences one after the other, position_ids restarting at 0 (DataCollatorWithFlattening's form)."""
    total = sum(lengths)
    return {"input_ids": torch.randint(1, CONFIG["vocab_size"], (1, total)),
            "position_ids": torch.cat([torch.arange(n) for n in lengths])[None]}


def outputs_and_gradients(model: OpenBertPreTrainedModel, batch: dict) -> tuple[list[torch.Tensor], dict]:
    model.zero_grad(set_to_none=True)
    output = model(**batch)
    (output.last_hidden_state.square().sum() + output.pooler_output.sum()).backward()
    return [output.last_hidden_state, output.pooler_output], {
        name: parameter.grad for name, parameter in model.named_parameters() if parameter.grad is not None}


@pytest.mark.parametrize("batch", [padded_batch([7, 3, 12, 5], holes=True), packed_batch([6, 11, 4])],
                         ids=["padded with holes", "packed"])
def test_compiled_outputs_and_gradients_equal_eager(batch):
    eager, compiled = eager_and_compiled()
    assert not is_compiled(eager) and is_compiled(compiled)
    (eager_outputs, eager_grads), (outputs, grads) = (outputs_and_gradients(m, batch) for m in (eager, compiled))
    for expected, got in zip(eager_outputs, outputs, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert grads.keys() == eager_grads.keys() and len(grads) == len(list(compiled.parameters()))
    for name, grad in grads.items():
        torch.testing.assert_close(grad, eager_grads[name], rtol=0, atol=1e-5, msg=name)


def test_batches_of_other_lengths_and_layouts_do_not_recompile():
    _, compiled = eager_and_compiled(OpenBertForPreTraining)
    compiled(**padded_batch([5, 9, 2])).prediction_logits.sum().backward()  # compiles forward and backward
    counts = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    batches = [padded_batch([13, 4, 8, 1]), padded_batch([20, 20]), padded_batch([3]), packed_batch([9, 14, 2]),
               padded_batch([31, 6], holes=True)]
    with torch._dynamo.config.patch(error_on_recompile=True):
        for batch in batches:  # packed (num_tokens, hidden), padded (batch, seq, hidden) and (1, total, hidden)
            compiled(**batch).prediction_logits.sum().backward()
    # Two regions (attention output, feed-forward), one graph each for every layer and every length.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == counts == 2


def test_saved_compiled_model_loads_with_the_same_weights_and_outputs(tmp_path):
    eager, compiled = eager_and_compiled(OpenBertForPreTraining)
    compiled.eval()
    batch = padded_batch([6, 10, 3])
    with torch.no_grad():
        expected = compiled(**batch).prediction_logits
    compiled.save_pretrained(tmp_path)
    loaded = OpenBertForPreTraining.from_pretrained(tmp_path).eval()
    assert list(compiled.state_dict()) == list(eager.state_dict()) == list(loaded.state_dict())
    assert not is_compiled(loaded)  # compiling is a choice of the process, not of the checkpoint
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).prediction_logits, expected, rtol=0, atol=1e-5)


def test_models_are_not_compiled_unless_asked():
    assert not is_compiled(OpenBertForPreTraining(OpenBertConfig(**CONFIG)))
    assert OpenBertTrainingArguments(output_dir="unused").compile_layers is False


def test_compile_layers_flag_compiles_the_trained_model(tmp_path, monkeypatch):
    compiled_models = []
    compile_layers = OpenBertPreTrainedModel.compile_layers

    def spy(model: OpenBertPreTrainedModel, **compile_kwargs) -> None:
        compiled_models.append(model)
        compile_layers(model, backend=BACKEND, **compile_kwargs)

    monkeypatch.setattr(OpenBertPreTrainedModel, "compile_layers", spy)
    write_corpus(tmp_path / "train.txt", 30, seed=0)
    write_corpus(tmp_path / "valid.txt", 5, seed=1)
    options = dict(vocab_size=120, max_steps=2, eval_strategy="no", save_steps=10, do_eval=None)
    results = pretrain([*tiny_args(tmp_path, "run", **options), "--compile_layers"])
    assert [type(model) for model in compiled_models] == [OpenBertForPreTraining]  # the outer model only, once
    assert is_compiled(compiled_models[0]) and results["train_loss"] > 0
    assert OpenBertForPreTraining.from_pretrained(tmp_path / "run").num_parameters() > 0
