"""Sequence-to-sequence fine-tuning (`openbert finetune seq2seq`): BERT2BERT warm-started from BERT or openbert
checkpoints, for text pairs from columns, question generation and translation from SQuAD-format files."""

from .arguments import Seq2SeqDataArguments
from .job import Seq2SeqJob, main, run_seq2seq

__all__ = ["Seq2SeqDataArguments", "Seq2SeqJob", "main", "run_seq2seq"]
