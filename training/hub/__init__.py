"""The Hub end of a training run: its model card (from the run's values) and the push."""

from .card import CardFacts, DataFacts, describe_base_model, hyperparameters_from_training_args, write_run_card
from .push import HubTarget, PushError, files_to_push, hub_target_from_training_args, push_checkpoint

__all__ = [
    "CardFacts",
    "DataFacts",
    "HubTarget",
    "PushError",
    "describe_base_model",
    "files_to_push",
    "hub_target_from_training_args",
    "hyperparameters_from_training_args",
    "push_checkpoint",
    "write_run_card",
]
