"""Sequence classification and regression (`openbert finetune classification`): GLUE presets, label spaces, metrics."""

from .arguments import ClassificationDataArguments
from .job import ClassificationJob, main, run_classification

__all__ = ["ClassificationDataArguments", "ClassificationJob", "main", "run_classification"]
