"""Model cards for openbert checkpoints: templates in `templates/`, rendered by `model_card.write_model_card`."""

from .hardware import hardware_description
from .model_card import (
    CARD_FILENAME,
    REPO_ID_PLACEHOLDER,
    TASKS,
    hyperparameters_from_training_args,
    write_model_card,
)

__all__ = [
    "CARD_FILENAME",
    "REPO_ID_PLACEHOLDER",
    "TASKS",
    "hardware_description",
    "hyperparameters_from_training_args",
    "write_model_card",
]
