"""The model trains: loss goes down, gradient checkpointing gives the same gradients, dropout is active."""

from __future__ import annotations

import torch

import modeling

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
