"""Evaluation metrics of MLM + NSP pretraining, computed without holding vocabulary-sized logits.

`Trainer` keeps every batch's predictions until the end of evaluation; for MLM that would be
`(eval tokens, vocab_size)` floats (gigabytes). `reduce_pretraining_logits` (the Trainer's
`preprocess_logits_for_metrics`) shrinks each batch right away to what the metrics need, per example,
so that `Trainer` can pad, gather across processes and drop duplicated samples as it does for any
per-example output:

* `(batch, seq)` predicted token ids at masked positions (-100 elsewhere),
* `(batch,)` summed MLM negative log-likelihood of each example's masked tokens,
* `(batch,)` predicted NSP class and `(batch,)` NSP negative log-likelihood.

`compute_pretraining_metrics` turns those into `mlm_loss` (mean over masked tokens), `perplexity`
(`exp(mlm_loss)`), `mlm_accuracy` (over masked tokens), `nsp_loss`, `nsp_accuracy`, and
`nsp_majority_accuracy`: the accuracy of always answering the more frequent NSP label, the bar `nsp_accuracy`
must clear to mean anything.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from transformers import EvalPrediction

from openbert.modeling import IGNORE_INDEX


def reduce_pretraining_logits(logits: tuple[torch.Tensor, ...], labels: tuple[torch.Tensor, torch.Tensor]
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example reductions of one evaluation batch (see the module docstring).

    `logits` starts with the MLM scores, either openbert's `(num_masked, vocab)` rows (row-major order of
    `labels != -100`) or full `(batch, seq, vocab)` ones (transformers' BERT), then the NSP scores
    `(batch, 2)`. `labels` is `(mlm labels (batch, seq), next_sentence_label (batch,))`.
    """
    mlm_scores, nsp_scores = logits[0], logits[1]
    mlm_labels, nsp_labels = labels
    masked = mlm_labels != IGNORE_INDEX
    if mlm_scores.dim() == 3:
        mlm_scores = mlm_scores[masked]
    targets = mlm_labels[masked]
    predicted = torch.full_like(mlm_labels, IGNORE_INDEX)
    predicted[masked] = mlm_scores.argmax(dim=-1)
    token_nll = torch.zeros(mlm_labels.shape, dtype=torch.float32, device=mlm_labels.device)
    token_nll[masked] = F.cross_entropy(mlm_scores.float(), targets, reduction="none")
    nsp_scores = nsp_scores.float()
    return (predicted, token_nll.sum(dim=1), nsp_scores.argmax(dim=-1),
            F.cross_entropy(nsp_scores, nsp_labels.view(-1), reduction="none"))


def compute_pretraining_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """MLM loss/accuracy/perplexity over all masked tokens and NSP loss/accuracy over all examples."""
    predicted, mlm_nll, nsp_predicted, nsp_nll = prediction.predictions
    mlm_labels, nsp_labels = prediction.label_ids
    masked = mlm_labels != IGNORE_INDEX
    num_masked = int(masked.sum())
    if num_masked == 0:
        raise ValueError("the evaluation set has no masked token; it needs rows with MLM labels.")
    mlm_loss = float(np.sum(mlm_nll, dtype=np.float64)) / num_masked
    return {
        "mlm_loss": mlm_loss,
        "perplexity": math.exp(min(mlm_loss, 700.0)),  # exp overflows a float beyond ~709
        "mlm_accuracy": float(np.mean(predicted[masked] == mlm_labels[masked])),
        "nsp_loss": float(np.mean(nsp_nll, dtype=np.float64)),
        "nsp_accuracy": float(np.mean(nsp_predicted == nsp_labels.reshape(-1))),
        "nsp_majority_accuracy": max(random_share := float(np.mean(nsp_labels)), 1 - random_share),
    }
