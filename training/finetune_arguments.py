"""Options shared by the fine-tuning entry points (classification, question answering)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={
        "help": "Pretrained checkpoint to start from: a local folder (e.g. the MiniLM BERT, or an openbert "
                "pre-training output) or a Hub id when online."})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "Tokenizer folder or Hub id, when it is not stored with the checkpoint."})


def early_stopping_problems(patience: int | None, training_args: TrainingArguments) -> list[str]:
    """The flags --early_stopping_patience still needs (empty when it is unset or fully configured)."""
    if patience is None:
        return []
    return [flag for flag, ok in (
        ("--load_best_model_at_end", training_args.load_best_model_at_end),
        ("--metric_for_best_model", training_args.metric_for_best_model is not None),
        ("--eval_strategy steps|epoch", training_args.eval_strategy != "no"),
    ) if not ok]
