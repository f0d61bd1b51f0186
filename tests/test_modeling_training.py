"""The model trains: loss goes down, gradient checkpointing gives the same gradients, dropout is active."""

from __future__ import annotations

import pytest
import torch

from openbert import modeling
from openbert.modeling import modeling_openbert, packed_tokens

TINY = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=32)


def pretraining_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(5, 64, (8, 16), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[::2, 11:] = 0
    labels = torch.full_like(input_ids, -100)
    chosen = (torch.rand(input_ids.shape, generator=generator) < 0.3) & attention_mask.bool()
    labels[chosen] = input_ids[chosen]
    input_ids = input_ids.masked_fill(chosen, 4)  # 4 plays [MASK]
    return dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                next_sentence_label=torch.randint(0, 2, (8,), generator=generator))


def test_a_few_steps_lower_the_pretraining_loss():
    model = modeling.OpenBertForPreTraining(modeling.OpenBertConfig(**TINY))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = pretraining_batch()
    losses = []
    for _ in range(30):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def gradients(model: modeling.OpenBertForPreTraining) -> dict[str, torch.Tensor]:
    model.zero_grad()
    model(**pretraining_batch()).loss.backward()
    return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients():
    config = modeling.OpenBertConfig(**TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = modeling.OpenBertForPreTraining(config).train()
    plain = gradients(model)
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.bert.encoder.layer)
    checkpointed = gradients(model)
    assert plain.keys() == checkpointed.keys() and len(plain) > 30
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)


def test_dropout_is_active_in_training_only():
    model = modeling.OpenBertModel(modeling.OpenBertConfig(**TINY))
    input_ids = torch.tensor([[2, 7, 9, 11, 3]])
    model.train()
    assert not torch.equal(model(input_ids).last_hidden_state, model(input_ids).last_hidden_state)
    model.eval()
    assert torch.equal(model(input_ids).last_hidden_state, model(input_ids).last_hidden_state)


@pytest.mark.parametrize("path", [
    "padded",
    "packed",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
])
def test_attention_dropout_is_active_in_training_only(monkeypatch, path):
    """Attention dropout alone (hidden dropout off) changes training outputs, on the padded layout and on the
    packed tokens (CPU's SDPA per group of lengths; CUDA's variable-length kernel, whose dropout is its own)."""
    monkeypatch.setattr(packed_tokens, "ATTENTION_CALL_COST", 1e12 if path == "padded" else 0)
    packed_calls, attend = [], modeling_openbert.attend_packed
    monkeypatch.setattr(modeling_openbert, "attend_packed", lambda *args: packed_calls.append(1) or attend(*args))
    config = modeling.OpenBertConfig(**TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.5)
    device = torch.device("cuda" if path == "cuda" else "cpu")
    model = modeling.OpenBertModel(config).to(device)
    batch = {k: v.to(device) for k, v in pretraining_batch().items() if k in ("input_ids", "attention_mask")}
    model.train()
    assert not torch.equal(model(**batch).last_hidden_state, model(**batch).last_hidden_state)
    model.eval()
    assert torch.equal(model(**batch).last_hidden_state, model(**batch).last_hidden_state)
    assert len(packed_calls) == (0 if path == "padded" else 4 * config.num_hidden_layers)


class _Batches(torch.utils.data.Dataset):
    """The same pretraining batch, row by row, so the Trainer's collator rebuilds it."""

    def __init__(self):
        self.rows = [{k: v[i] for k, v in pretraining_batch().items()} for i in range(8)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.rows[index]


def _trainer_losses(tmp_path, **compile_args) -> list[float]:
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(0)
    config = modeling.OpenBertConfig(**TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=4, learning_rate=3e-3,
                             logging_steps=1, report_to="none", save_strategy="no", use_cpu=True,
                             disable_tqdm=True, **compile_args)
    trainer = Trainer(model=modeling.OpenBertForPreTraining(config), args=args, train_dataset=_Batches())
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_trainer_torch_compile_trains_like_eager(tmp_path):
    """`TrainingArguments(torch_compile=True)` works on padded batches and follows the eager run's losses
    (aot_eager: dynamo's tracing and autograd, without the minutes a C++ build of inductor takes here)."""
    eager = _trainer_losses(tmp_path / "eager")
    compiled = _trainer_losses(tmp_path / "compiled", torch_compile=True, torch_compile_backend="aot_eager")
    assert len(eager) == 4 and eager[-1] < eager[0]
    assert compiled == pytest.approx(eager, rel=1e-4)


def _first_update(tmp_path, model_class, batch_size: int, accumulation: int) -> torch.Tensor:
    """The classifier weight's change after one SGD step of the Trainer (plain SGD: the update is the gradient)."""
    from transformers import BertConfig, Trainer, TrainingArguments

    torch.manual_seed(0)
    config_class = modeling.OpenBertConfig if model_class is modeling.OpenBertForSequenceClassification else BertConfig
    model = model_class(config_class(**TINY, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    before = model.classifier.weight.detach().clone()
    generator = torch.Generator().manual_seed(5)
    rows = [{"input_ids": torch.randint(5, 64, (10,), generator=generator), "labels": torch.tensor(i % 3)}
            for i in range(8)]
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=batch_size, max_steps=1,
                             gradient_accumulation_steps=accumulation, learning_rate=1.0, optim="sgd",
                             lr_scheduler_type="constant", report_to="none", save_strategy="no", use_cpu=True,
                             disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=rows).train()
    return model.classifier.weight.detach() - before


def test_gradient_accumulation_averages_like_one_big_batch(tmp_path):
    """Two accumulated batches of 4 update the weights as one batch of 8 does (the README's difference from
    transformers' BERT, whose update grows with the accumulation steps; checked here too)."""
    from transformers import BertForSequenceClassification

    ours = _first_update(tmp_path / "a", modeling.OpenBertForSequenceClassification, 4, 2)
    torch.testing.assert_close(ours, _first_update(tmp_path / "b", modeling.OpenBertForSequenceClassification, 8, 1))
    theirs = _first_update(tmp_path / "c", BertForSequenceClassification, 4, 2)
    torch.testing.assert_close(theirs, 2 * _first_update(tmp_path / "d", BertForSequenceClassification, 8, 1))
