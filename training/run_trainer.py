"""The Trainer every training job runs on, and the checks that keep a broken run from looking like a good one.

transformers' Trainer hides a NaN loss from its logs (`logging_nan_inf_filter`: a diverging run logs `loss 0`),
applies NaN gradients, saves NaN weights and reports success. `RunTrainer` looks at the loss of every batch and at
the gradient norm of every step (the Trainer computes it whether or not it clips) and stops the run with
`TrainingDiverged` *before* the optimizer applies a non-finite update, so the checkpoints on disk stay good and no
card is written or pushed. It also warns once when the loss climbs far above its first value (a learning rate of
1e4 trains to a finite loss of 1e9 without ever producing a NaN). `check_finite_weights` and
`check_finite_metrics` are the run skeleton's last line: a run whose weights or losses are not finite never ends
with success.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .errors import TrainingDiverged
from .output_dir import find_checkpoints

logger = logging.getLogger(__name__)

# A loss this many times its first value (or 1.0, whichever is larger: near-zero first losses of an already
# trained model would make any noise look like growth) means the run is diverging. Cross-entropy starts near
# ln(number of classes) and only falls in a healthy run.
LOSS_GROWTH_WARNING = 10.0
TOO_HIGH_A_LEARNING_RATE = ("a learning rate too high for this model (lower --learning_rate, add --warmup_steps, keep "
                            "--max_grad_norm above 0)")
LIKELY_CAUSES = (f"{TOO_HIGH_A_LEARNING_RATE}, fp16 overflow (train in bf16 or fp32), or a batch the loss is undefined "
                 "on (masked-LM labels that are all -100 give NaN without sparse_prediction)")


class RunTrainer(Trainer):
    """A `Trainer` that stops at the first non-finite loss or gradient norm (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first_loss: float | None = None
        self._nonfinite_loss: float | None = None
        self._warned_growth = False

    def training_step(self, model: torch.nn.Module, inputs: dict[str, Any],
                      num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        # One device sync per batch, which the Trainer's own NaN filter already costs.
        value = loss.item()
        if not math.isfinite(value):
            self._nonfinite_loss = value if self._nonfinite_loss is None else self._nonfinite_loss
        else:
            self._watch_growth(value)
        return loss

    def _get_grad_norm(self, model: torch.nn.Module, grad_norm: Any = None) -> Any:
        # Called once per optimizer step, after the last batch's backward pass and before optimizer.step().
        grad_norm = super()._get_grad_norm(model, grad_norm)
        self._stop_if_diverged(grad_norm)
        return grad_norm

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        # Saving into a folder that exists (a run resumed from an older checkpoint reaches this step again): remove
        # its completeness marker first, so that until the new trainer_state.json is written the folder counts as
        # incomplete instead of a mix of two saves that looks complete (see output_dir.py).
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            (folder / TRAINER_STATE_NAME).unlink(missing_ok=True)
        super()._save_checkpoint(model, trial)

    def _watch_growth(self, value: float) -> None:
        if self._first_loss is None:
            self._first_loss = value
            return
        limit = LOSS_GROWTH_WARNING * max(abs(self._first_loss), 1.0)
        if value > limit and not self._warned_growth and self.is_world_process_zero():
            self._warned_growth = True
            logger.warning("The training loss is %.4g at step %d, over %gx its first value (%.4g): the run is "
                           "diverging. Likely cause: %s.", value, self.state.global_step + 1, LOSS_GROWTH_WARNING,
                           self._first_loss, TOO_HIGH_A_LEARNING_RATE)

    def _stop_if_diverged(self, grad_norm: Any) -> None:
        norm = float(grad_norm) if grad_norm is not None else 0.0
        # With fp16 loss scaling, an overflowing gradient is normal: the scaler skips that step and scales down.
        bad_norm = not math.isfinite(norm) and self.accelerator.scaler is None
        diverged = self._nonfinite_loss is not None or bad_norm
        if self.args.world_size > 1:  # every process stops at the same step, or the others would wait forever
            flag = torch.tensor(float(diverged), device=self.args.device)
            diverged = bool(self.accelerator.reduce(flag, reduction="sum").item())
        if not diverged:
            return
        what = (f"the loss is {self._nonfinite_loss}" if self._nonfinite_loss is not None
                else f"the gradient norm is {norm}" if bad_norm else "the loss is not finite on another process")
        raise TrainingDiverged(divergence_message(f"at step {self.state.global_step + 1}, {what}",
                                                  self.args.output_dir, self._get_learning_rate()))


def divergence_message(what: str, output_dir: str, learning_rate: float | None = None) -> str:
    """Why the run stopped, what is kept, what likely caused it."""
    last = find_checkpoints(output_dir).last
    kept = f"The last complete checkpoint, {last}, is intact." if last else "No checkpoint was saved."
    rate = f" (--learning_rate {learning_rate:g} at that step)" if learning_rate is not None else ""
    return (f"training diverged: {what}{rate}. The run stopped before applying it: nothing more is saved, no model "
            f"card is written and nothing is pushed. {kept} Likely causes: {LIKELY_CAUSES}.")


def check_finite_weights(model: torch.nn.Module, output_dir: str) -> None:
    """Raise `TrainingDiverged` naming the first parameter that holds a NaN or an infinity."""
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter.detach()).all():
            raise TrainingDiverged(divergence_message(f"the trained weights hold non-finite values ({name})",
                                                      output_dir))


def check_finite_metrics(metrics: Mapping[str, Any], output_dir: str) -> None:
    """Raise `TrainingDiverged` for a non-finite loss (or perplexity); warn about other non-finite metrics, which
    degenerate predictions give legitimately (the correlation of constant scores is NaN)."""
    broken = {key: value for key, value in metrics.items()
              if isinstance(value, float) and not math.isfinite(value)}
    losses = {key: value for key, value in broken.items() if key.endswith(("loss", "perplexity"))}
    if losses:
        raise TrainingDiverged(divergence_message(f"{', '.join(f'{k}={v}' for k, v in losses.items())}", output_dir))
    if broken:
        logger.warning("Metrics without a finite value (left out of the card): %s", broken)
