"""A Trainer that scores extractive QA by answers, not by loss.

Evaluation windows carry no labels, so the stock Trainer would neither gather their logits for metrics
nor know how to turn them into answers. `QuestionAnsweringTrainer` hooks its evaluation loop: for a
metric prefix ("eval", "predict") that has a `QAScorer`, the start/end logits of every window are
postprocessed into one answer per example and scored with the bundled SQuAD metric. Everything else
(logging, callbacks, best-checkpoint selection on e.g. `eval_f1`, early stopping) stays the Trainer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets
import numpy as np
from torch.utils.data import DataLoader
from transformers.trainer_utils import EvalLoopOutput

from ..metrics import load_metric
from ..run_trainer import RunTrainer
from .processing import QAPredictions, postprocess_qa_predictions


@dataclass
class QAScorer:
    """Turns the logits of one split's windows into answers and (when `scored`) SQuAD scores."""

    examples: datasets.Dataset
    # Windows from `prepare_eval_features` (with example_id, cls_index, offset_mapping), in model order.
    features: datasets.Dataset
    version_2_with_negative: bool = False
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    # False for data without gold answers: predictions only.
    scored: bool = True
    metric: object = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.metric = load_metric("squad_v2" if self.version_2_with_negative else "squad") if self.scored else None

    def __call__(self, start_logits: np.ndarray, end_logits: np.ndarray) -> tuple[QAPredictions, dict[str, float]]:
        """Answers for every example, and their scores (SQuAD v1.1 EM/F1, or the v2.0 set) when `scored`."""
        result = postprocess_qa_predictions(
            self.examples, self.features, start_logits, end_logits,
            version_2_with_negative=self.version_2_with_negative, n_best_size=self.n_best_size,
            max_answer_length=self.max_answer_length, null_score_diff_threshold=self.null_score_diff_threshold,
        )
        if not self.scored:
            return result, {}
        # The null-score threshold already decided "no answer"; a probability of 0 keeps that decision.
        extra = {"no_answer_probability": 0.0} if self.version_2_with_negative else {}
        predictions = [{"id": qid, "prediction_text": text, **extra} for qid, text in result.predictions.items()]
        references = [{"id": qid, "answers": answers}
                      for qid, answers in zip(self.examples["id"], self.examples["answers"], strict=True)]
        return result, self.metric.compute(predictions=predictions, references=references)


class QuestionAnsweringTrainer(RunTrainer):
    """`Trainer` whose evaluate/predict report answer scores for the prefixes in `qa_scorers`.

    The latest answers per prefix are kept in `qa_predictions` (for writing prediction files).
    """

    def __init__(self, *args, qa_scorers: dict[str, QAScorer] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.qa_scorers = dict(qa_scorers or {})
        self.qa_predictions: dict[str, QAPredictions] = {}

    def evaluation_loop(
        self, dataloader: DataLoader, description: str, prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        scorer = self.qa_scorers.get(metric_key_prefix)
        if scorer is None:
            return super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys,
                                           metric_key_prefix)
        # Logits are needed even without compute_metrics (which is what would normally ask for them).
        output = super().evaluation_loop(dataloader, description, False, ignore_keys, metric_key_prefix)
        start_logits, end_logits = output.predictions[:2]
        result, scores = scorer(start_logits, end_logits)
        self.qa_predictions[metric_key_prefix] = result
        output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in scores.items()})
        return output
