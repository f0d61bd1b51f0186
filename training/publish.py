"""The end of every training run: the model card next to the checkpoint, then the push when one was asked for."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from transformers import TrainingArguments

from .push import HubTarget

logger = logging.getLogger(__name__)

# Result keys that count things rather than measure the model; they stay out of the card's results.
_COUNT_SUFFIXES = ("_samples", "_examples", "_features")


def data_sources(dataset_name: str | None, files: Iterable[str | None] = ()) -> list[str]:
    """What a card names as the run's data: the dataset's name, else the files' names."""
    if dataset_name:
        return [dataset_name]
    return list(dict.fromkeys(Path(f).name for f in files if f))


def finish_run(
    training_args: TrainingArguments,
    target: HubTarget | None,
    results: Mapping[str, float],
    *,
    kind: Literal["pretrained", "finetuned"],
    task: str,
    datasets: list[str],
    base_model: str | None = None,
    dataset_config: str | None = None,
    eval_split: str = "validation",
) -> None:
    """Write the model card into the output directory and push it there when `--push_to_hub` asked.

    Call on the main process after the model, tokenizer and curves are saved. Only a trained and evaluated
    model gets a card (it reports the evaluation); evaluation-only runs leave an existing card alone.
    """
    from openbert.hub_cards import write_model_card

    metrics = {k: v for k, v in results.items()
               if k.startswith("eval_") and not k.endswith(_COUNT_SUFFIXES) and "_skipped_" not in k}
    if "train_runtime" not in results or not metrics:
        return
    write_model_card(training_args.output_dir, kind=kind, task=task, metrics=metrics, hyperparameters=training_args,
                     train_runtime_s=results["train_runtime"], datasets=datasets or ["local files"],
                     base_model=base_model, dataset_config=dataset_config, eval_split=eval_split)
    if target is not None:
        info = target.push(training_args.output_dir)
        logger.info("pushed %s to %s", training_args.output_dir, getattr(info, "commit_url", target.repo_id))
