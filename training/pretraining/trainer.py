"""The Trainer of MLM + NSP pretraining: it also logs the two parts of the training loss, and saves checkpoints
with the default (full-shape) masked-LM logits although it trains with sparse ones."""

from __future__ import annotations

import torch

from ..run_trainer import RunTrainer


class PreTrainingTrainer(RunTrainer):
    """A Trainer that also logs the MLM and NSP parts of the training loss (`mlm_loss`, `nsp_loss`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._part_sums: dict[str, torch.Tensor] = {}
        self._part_steps = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        if model.training and isinstance(outputs, dict):
            parts = {k: outputs[k].detach() for k in ("mlm_loss", "nsp_loss") if outputs.get(k) is not None}
            for key, value in parts.items():
                self._part_sums[key] = self._part_sums.get(key, 0) + value
            self._part_steps += bool(parts)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Training logs (they carry "loss") get the mean of each part since the previous log, averaged
        # over processes like the Trainer's own loss; every process logs at the same steps.
        if "loss" in logs and self._part_steps:
            for key, total in self._part_sums.items():
                mean = self.accelerator.reduce(total / self._part_steps, reduction="mean")
                logs[key] = round(float(mean), 4)
            self._part_sums, self._part_steps = {}, 0
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # Checkpoints are for users: they load with the default, transformers-shaped MLM logits. Sparse
        # prediction is a setting of this training run only (`build_model`).
        config = self.accelerator.unwrap_model(self.model).config
        config.sparse_prediction = False
        try:
            super()._save(output_dir, state_dict)
        finally:
            config.sparse_prediction = True
