"""The Trainer of MLM + NSP pretraining: it also logs the two parts of the training loss, saves checkpoints
with the default (full-shape) masked-LM logits although it trains with sparse ones, and can batch the training
rows by a token budget and evaluate with a collator of its own (padded batches while training on packed ones)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow.compute as pc
import torch
from torch.utils.data import DataLoader

from ..run_trainer import RunTrainer
from .batching import TokenBudgetBatchSampler


class PreTrainingTrainer(RunTrainer):
    """A Trainer that also logs the MLM and NSP parts of the training loss (`mlm_loss`, `nsp_loss`).

    Args (besides the Trainer's):
        max_tokens_per_batch: draw training batches of at most this many real tokens (`TokenBudgetBatchSampler`)
            instead of `per_device_train_batch_size` rows; needs a `datasets.Dataset` (not a stream).
        eval_data_collator: the collator of evaluation batches (default: `data_collator`).
    """

    def __init__(self, *args, max_tokens_per_batch: int | None = None,
                 eval_data_collator: Callable[[list[dict]], dict[str, Any]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_tokens_per_batch = max_tokens_per_batch
        self.eval_data_collator = eval_data_collator
        self._part_sums: dict[str, torch.Tensor] = {}
        self._part_steps = 0

    def get_train_dataloader(self) -> DataLoader:
        if self.max_tokens_per_batch is None:
            return super().get_train_dataloader()
        dataset = self._remove_unused_columns(self.train_dataset, description="Training")
        args = self.args
        sampler = self.token_budget_sampler(dataset)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=args.dataloader_num_workers, pin_memory=args.dataloader_pin_memory,
                            persistent_workers=args.dataloader_persistent_workers,
                            prefetch_factor=args.dataloader_prefetch_factor)
        prepared = self.accelerator.prepare(loader)
        # The sampler already gives each process its own batches: accelerate's sharding wrapper must pass them
        # through (as the Trainer does for its rank-aware BatchRebalanceSampler).
        shard = getattr(prepared, "batch_sampler", None)
        if shard is not None and getattr(shard, "batch_sampler", None) is sampler:
            shard.num_processes, shard.process_index = 1, 0
        return prepared

    def token_budget_sampler(self, dataset: Any) -> TokenBudgetBatchSampler:
        """Batches of at most `max_tokens_per_batch` real tokens of `dataset` (a `datasets.Dataset`), this process's."""
        # Lengths from the Arrow column (honouring a shuffled or selected view), without reading the tokens into Python.
        lengths = pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_pylist()
        return TokenBudgetBatchSampler(lengths, self.max_tokens_per_batch, seed=self.args.seed,
                                       num_replicas=max(1, self.args.world_size), rank=self.args.process_index)

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        if self.eval_data_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        training_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = training_collator

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
