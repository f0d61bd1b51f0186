"""Same math: OpenBertForPreTraining and transformers' BertForPreTraining train identically.

From identical weights, on the same batches from our data pipeline and collator, 20 AdamW steps in
fp32 with dropout off give the same MLM + NSP loss at every step; also when openbert trains on the collator's
packed (padding-free) form of each batch, which transformers' BERT cannot run.
"""

from __future__ import annotations

import random

import datasets
import pytest
import torch
from transformers import BertConfig, BertForPreTraining, BertTokenizer

from openbert.modeling import OpenBertForPreTraining
from openbert.training.pretraining.collator import DataCollatorForPreTraining
from openbert.training.pretraining.data import NspOptions, prepare_pretraining_dataset

STEPS = 20
BATCH_SIZE = 8
WORDS = "alpha bravo delta echo golf hotel india kilo lima mike oscar papa romeo sierra tango".split()


def small_tokenizer() -> BertTokenizer:
    """A word-level BERT tokenizer over the corpus' words: a small vocabulary keeps the test fast."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(tokens)})
    assert len(tokenizer) == len(tokens)
    return tokenizer


def training_batches(tokenizer, padding_free: bool = False) -> list[dict[str, torch.Tensor]]:
    rng = random.Random(0)
    words = WORDS
    documents = [" ".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))).capitalize() + "."
                          for _ in range(rng.randint(2, 8))) for _ in range(80)]
    pairs = prepare_pretraining_dataset(datasets.Dataset.from_dict({"text": documents}), tokenizer,
                                        NspOptions(max_seq_length=48, dupe_factor=2, seed=0)).shuffle(seed=0)
    assert len(pairs) >= STEPS * BATCH_SIZE
    collator = DataCollatorForPreTraining(tokenizer, generator=torch.Generator().manual_seed(0),
                                          padding_free=padding_free)
    return [collator([pairs[i] for i in range(s * BATCH_SIZE, (s + 1) * BATCH_SIZE)]) for s in range(STEPS)]


def train(model: torch.nn.Module, batches) -> list[float]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    losses = []
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "packed"])
def test_twenty_optimizer_steps_give_the_same_losses(tmp_path, padding_free):
    tokenizer = small_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    reference = BertForPreTraining(config)
    reference.save_pretrained(tmp_path)
    ours = OpenBertForPreTraining.from_pretrained(tmp_path)
    theirs = reference.state_dict()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, theirs[name]), f"{name} differs after loading"
    batches = training_batches(tokenizer)
    assert all(b["attention_mask"].eq(0).any() for b in batches[:3]), "batches should exercise padding"
    expected = train(reference, batches)
    if padding_free:
        batches = training_batches(tokenizer, padding_free=True)
        assert all(b["input_ids"].shape[0] == 1 and "attention_mask" not in b for b in batches)
    got = train(ours, batches)
    assert expected[-1] < expected[0] - 0.2, "the reference did not learn; the comparison would be weak"
    for step, (a, b) in enumerate(zip(got, expected, strict=True), start=1):
        assert abs(a - b) <= 1e-4, f"step {step}: openbert loss {a:.6f} vs transformers {b:.6f}"
