"""Extractive question answering (`openbert finetune qa`): SQuAD data, context windows, answer scoring, the
question-answering pipeline its checkpoints ship."""

from .arguments import QADataArguments
from .job import QuestionAnsweringJob, main, run_qa

__all__ = ["QADataArguments", "QuestionAnsweringJob", "main", "run_qa"]
