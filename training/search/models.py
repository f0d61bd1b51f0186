"""sentence-transformers models on openbert checkpoints: a bi-encoder (`SentenceTransformer`) for embeddings and a
cross-encoder (`CrossEncoder`, i.e. `OpenBertForSequenceClassification` with one output) for re-ranking.

`import openbert` (done by every `openbert.*` module) registers model_type `openbert`, so sentence-transformers'
`AutoModel` calls build openbert's own classes; elsewhere the checkpoints load with `trust_remote_code=True`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

# What marks a folder as a sentence-transformers model rather than a bare transformers checkpoint.
MODULES_FILE = "modules.json"


def is_sentence_transformer(path: str | Path) -> bool:
    return (Path(path) / MODULES_FILE).is_file()


def load_sentence_transformer(path: str | Path, pooling: str = "mean",
                              max_seq_length: int | None = None) -> SentenceTransformer:
    """The sentence-transformers model in `path`, or, for a bare encoder checkpoint, that encoder followed by
    `pooling` (what sentence-transformers itself would build, but with the pooling chosen rather than implied).

    `max_seq_length` replaces the model's own maximum input length when given.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    if is_sentence_transformer(path) or not Path(path).is_dir():  # a Hub id is left to sentence-transformers
        model = SentenceTransformer(str(path))
    else:
        encoder = Transformer(str(path))
        model = SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension(), pooling)])
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def load_cross_encoder(path: str | Path, max_seq_length: int | None = None) -> CrossEncoder:
    """A cross-encoder on the checkpoint in `path` that scores a (query, document) pair with one logit; a checkpoint
    without that head gets a new one (`OpenBertForSequenceClassification`, num_labels=1)."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(path), num_labels=1, max_length=max_seq_length)
