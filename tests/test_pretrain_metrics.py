"""Pretraining eval metrics from per-batch reductions equal those from the full logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import EvalPrediction
from transformers.trainer_pt_utils import nested_concat

from openbert.modeling import IGNORE_INDEX
from openbert.training.pretraining.metrics import compute_pretraining_metrics, reduce_pretraining_logits


def random_batch(generator: torch.Generator, batch: int, seq: int, vocab: int):
    labels = torch.randint(vocab, (batch, seq), generator=generator)
    labels[torch.rand(batch, seq, generator=generator) > 0.3] = IGNORE_INDEX
    labels[0, 1] = 7  # at least one masked token per batch
    full = torch.randn(batch, seq, vocab, generator=generator) * 3
    nsp_labels = torch.randint(2, (batch,), generator=generator)
    return full, torch.randn(batch, 2, generator=generator), labels, nsp_labels


def test_reduced_batches_give_the_metrics_of_the_full_logits():
    generator = torch.Generator().manual_seed(0)
    vocab = 50
    batches = [random_batch(generator, b, s, vocab) for b, s in ((4, 9), (3, 13), (5, 6))]
    predictions = labels = None
    for full, nsp, mlm_labels, nsp_labels in batches:
        sparse = full[mlm_labels != IGNORE_INDEX]  # what openbert returns with labels
        reduced = reduce_pretraining_logits((sparse, nsp), (mlm_labels, nsp_labels))
        # Full transformers-style logits reduce to the same values.
        for a, b in zip(reduced, reduce_pretraining_logits((full, nsp), (mlm_labels, nsp_labels)), strict=True):
            assert torch.allclose(a, b)
        # The Trainer pads the (batch, seq) outputs with IGNORE_INDEX and concatenates batches.
        predictions = (reduced if predictions is None
                       else nested_concat(predictions, reduced, padding_index=IGNORE_INDEX))
        pair = (mlm_labels, nsp_labels)
        labels = pair if labels is None else nested_concat(labels, pair, padding_index=IGNORE_INDEX)
    metrics = compute_pretraining_metrics(EvalPrediction(
        predictions=tuple(p.numpy() for p in predictions), label_ids=tuple(x.numpy() for x in labels)))

    scores = torch.cat([full[mlm_labels != IGNORE_INDEX] for full, _, mlm_labels, _ in batches])
    targets = torch.cat([mlm_labels[mlm_labels != IGNORE_INDEX] for _, _, mlm_labels, _ in batches])
    nsp_scores = torch.cat([nsp for _, nsp, _, _ in batches])
    nsp_targets = torch.cat([n for *_, n in batches])
    expected_mlm = F.cross_entropy(scores, targets).item()
    assert math.isclose(metrics["mlm_loss"], expected_mlm, rel_tol=1e-5)
    assert math.isclose(metrics["perplexity"], math.exp(expected_mlm), rel_tol=1e-5)
    assert metrics["mlm_accuracy"] == (scores.argmax(-1) == targets).double().mean().item()
    assert math.isclose(metrics["nsp_loss"], F.cross_entropy(nsp_scores, nsp_targets).item(), rel_tol=1e-5)
    assert metrics["nsp_accuracy"] == (nsp_scores.argmax(-1) == nsp_targets).double().mean().item()


def test_an_eval_set_without_masked_tokens_is_an_error():
    labels = np.full((2, 4), IGNORE_INDEX)
    prediction = EvalPrediction(predictions=(labels, np.zeros(2), np.zeros(2), np.zeros(2)),
                                label_ids=(labels, np.zeros(2)))
    with pytest.raises(ValueError, match="no masked token"):
        compute_pretraining_metrics(prediction)
