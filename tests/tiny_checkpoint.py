"""A tiny random openbert encoder saved with MiniLM's real tokenizer: a fast starting point for
fine-tuning tests (the entry points load it like any pretrained checkpoint)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from openbert.modeling import OpenBertConfig, OpenBertModel


def save_tiny_checkpoint(directory: Path, tokenizer_dir: Path) -> Path:
    """Write a seeded 2-layer, 32-wide openbert encoder and MiniLM's tokenizer to `directory`."""
    torch.manual_seed(0)
    config = OpenBertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                            max_position_embeddings=128)
    OpenBertModel(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    return directory
