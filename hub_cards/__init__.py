"""Model cards for openbert checkpoints, rendered from plain values: templates in `templates/`, filled by
`model_card.write_model_card`."""

from .hardware import hardware_description
from .model_card import (
    CARD_FILENAME,
    REPO_ID_PLACEHOLDER,
    TASKS,
    write_model_card,
)

__all__ = [
    "CARD_FILENAME",
    "REPO_ID_PLACEHOLDER",
    "TASKS",
    "hardware_description",
    "write_model_card",
]
