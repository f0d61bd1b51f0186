"""MLM + NSP pretraining data as a `datasets` pipeline: documents -> tokenised sentences -> NSP pairs.

Both steps are batched `datasets.map` calls with explicit fingerprints, so a large corpus is prepared
once (in parallel with `num_proc`), cached as Arrow files and memory-mapped by every later run; under
distributed training, call them inside `TrainingArguments.main_process_first()` so that only the main
process computes and the others load the cache. `prepare_pretraining_stream` does the same lazily on an
`IterableDataset` for corpora that should not be materialised.

Output rows: `input_ids` (`[CLS] A [SEP] B [SEP]`), `token_type_ids` (0 for `[CLS] A [SEP]`, 1 for
`B [SEP]`) and `next_sentence_label` (0 = B follows A, 1 = B is random); masking is left to the collator
so that every epoch sees new masks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import datasets
import numpy as np
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

from .nsp_instances import IS_NEXT, IS_RANDOM, create_instances_from_document, document_rng
from .sentences import document_sentences

logger = logging.getLogger(__name__)

SENTENCE_FEATURES = datasets.Features(
    {"sentences": datasets.List(datasets.List(datasets.Value("int32"))), "num_sentences": datasets.Value("int32")}
)
# Narrow integer types: a Wikipedia-sized corpus costs 4 bytes per token on disk and in the page cache.
INSTANCE_FEATURES = datasets.Features({
    "input_ids": datasets.List(datasets.Value("int32")),
    "token_type_ids": datasets.List(datasets.Value("int8")),
    "next_sentence_label": datasets.Value("int8"),
})
# Bump when the output of a step changes for the same inputs, so that stale caches are not reused.
_PIPELINE_VERSION = "2"


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of what the tokenizer does to text (vocabulary, normaliser, pre-tokeniser).

    Hashing the tokenizer object itself is unstable: its truncation/padding state changes when it is
    called, which would silently defeat the `datasets` cache.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return Hasher.hash([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items()),
                            tokenizer.init_kwargs.get("do_lower_case")])
    state = json.loads(backend.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    return Hasher.hash(state)


def _tokenize_batch(batch: dict[str, list], tokenizer: PreTrainedTokenizerBase) -> dict[str, list]:
    """Split each document into sentences and tokenise them all in one call (the fast tokenizer
    parallelises over the whole batch). Sentences that tokenise to nothing are dropped."""
    per_document = [document_sentences(text) if isinstance(text, str) else [] for text in batch["text"]]
    flat = [sentence for sentences in per_document for sentence in sentences]
    ids = tokenizer(flat, add_special_tokens=False, return_attention_mask=False,
                    return_token_type_ids=False, verbose=False)["input_ids"] if flat else []
    documents: list[list[list[int]]] = []
    start = 0
    for sentences in per_document:
        documents.append([sentence for sentence in ids[start:start + len(sentences)] if sentence])
        start += len(sentences)
    return {"sentences": documents, "num_sentences": [len(d) for d in documents]}


def tokenize_documents(
    documents: datasets.Dataset | datasets.IterableDataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    num_proc: int | None = None,
    batch_size: int = 1000,
    load_from_cache_file: bool = True,
) -> datasets.Dataset | datasets.IterableDataset:
    """`{"text"}` rows -> `{"sentences": list of token-id lists, "num_sentences"}` rows (same count)."""
    kwargs: dict[str, Any] = {}
    if isinstance(documents, datasets.Dataset):
        kwargs = {
            "num_proc": num_proc, "load_from_cache_file": load_from_cache_file, "desc": "Splitting and tokenising",
            "new_fingerprint": Hasher.hash(["tokenize", _PIPELINE_VERSION, documents._fingerprint,
                                            tokenizer_fingerprint(tokenizer)]),
        }
    return documents.map(
        _tokenize_batch, batched=True, batch_size=batch_size, fn_kwargs={"tokenizer": tokenizer},
        remove_columns=documents.column_names, features=SENTENCE_FEATURES, **kwargs,
    )


class _DatasetDocuments(Sequence):
    """Random access to the `sentences` of a (memory-mapped) dataset, for drawing random B segments."""

    def __init__(self, dataset: datasets.Dataset):
        self.dataset = dataset.select_columns(["sentences"])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> list[list[int]]:
        return self.dataset[index]["sentences"]


def _instances_batch(
    batch: dict[str, list],
    indices: list[int],
    *,
    documents: Sequence | None,
    cls_token_id: int,
    sep_token_id: int,
    max_seq_length: int,
    short_seq_prob: float,
    random_next_prob: float,
    dupe_factor: int,
    seed: int,
) -> dict[str, list]:
    """NSP instances of every document in the batch, `dupe_factor` passes each.

    Random B segments come from `documents` (the whole corpus) or, when it is None (streaming), from the
    other documents of the same batch.
    """
    pool = documents if documents is not None else batch["sentences"]
    out: dict[str, list] = {"input_ids": [], "token_type_ids": [], "next_sentence_label": []}
    if len(pool) < 2:
        logger.warning("skipped document %d: a stream's last batch held no other document to draw a random "
                       "next segment from", indices[0])
        return out
    # Document-major order (all passes of a document together) keeps the output independent of batching.
    for position, (sentences, index) in enumerate(zip(batch["sentences"], indices, strict=True)):
        for pass_index in range(dupe_factor):
            instances = create_instances_from_document(
                pool, index if documents is not None else position,
                max_num_tokens=max_seq_length - 3, rng=document_rng(seed, pass_index, index),
                short_seq_prob=short_seq_prob, random_next_prob=random_next_prob, document=sentences,
            )
            for instance in instances:
                out["input_ids"].append(
                    [cls_token_id, *instance.tokens_a, sep_token_id, *instance.tokens_b, sep_token_id]
                )
                out["token_type_ids"].append([0] * (len(instance.tokens_a) + 2) + [1] * (len(instance.tokens_b) + 1))
                out["next_sentence_label"].append(IS_RANDOM if instance.is_random_next else IS_NEXT)
    return out


@dataclass(frozen=True)
class NspOptions:
    """How documents become NSP pairs (see `create_instances_from_document`)."""

    max_seq_length: int = 128
    short_seq_prob: float = 0.1
    random_next_prob: float = 0.5
    dupe_factor: int = 1
    seed: int = 42

    def check(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Raise ValueError naming the option that cannot work (with this tokenizer)."""
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise ValueError(
                "the tokenizer has no [CLS]/[SEP] token; NSP pairs need both (use a BERT WordPiece tokenizer)."
            )
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length={self.max_seq_length} is too small: [CLS] A [SEP] B [SEP] needs at "
                             "least 5.")
        if not 0 <= self.short_seq_prob <= 1 or not 0 <= self.random_next_prob <= 1:
            raise ValueError(f"short_seq_prob={self.short_seq_prob} and random_next_prob={self.random_next_prob} "
                             "must be probabilities in [0, 1].")
        if self.dupe_factor < 1:
            raise ValueError(f"dupe_factor={self.dupe_factor} must be at least 1 (the number of pairings per "
                             "document).")

    def pair_arguments(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
        """What `_instances_batch` takes besides the batch: the options and the special-token ids."""
        return {"cls_token_id": tokenizer.cls_token_id, "sep_token_id": tokenizer.sep_token_id, **asdict(self)}


def _filter_and_count(sentences: datasets.Dataset, num_proc: int | None) -> datasets.Dataset:
    """Drop documents without sentences, log how many documents of each kind there are, and raise when
    the corpus cannot give NSP pairs (fewer than two documents, or no document with two sentences)."""
    counts = np.bincount(np.minimum(sentences.with_format("numpy")["num_sentences"], 2), minlength=3)
    empty, single, multi = (int(c) for c in counts)
    if empty:
        logger.warning("%d of %d documents hold no text (blank or not a string) and were dropped.",
                       empty, len(sentences))
        sentences = sentences.filter(
            lambda n: [count > 0 for count in n], input_columns="num_sentences", batched=True, num_proc=num_proc,
            new_fingerprint=Hasher.hash(["non-empty", sentences._fingerprint]), desc="Dropping empty documents",
        )
    if single:
        logger.info("%d of %d documents have a single sentence: they are kept, and can only form random-next "
                    "pairs.", single, single + multi)
    if single + multi < 2:
        raise ValueError("the corpus holds fewer than two non-empty documents; NSP draws random next segments "
                         "from other documents. Separate documents with blank lines (text files) or give one "
                         "document per row.")
    if not multi:
        raise ValueError(
            f"none of the {single} documents has two or more sentences, so no pair could ever be a true next "
            "sentence. Separate documents by blank lines (not every line), and put several sentences in a "
            "document (one per line, or running text that the sentence splitter can split)."
        )
    return sentences


def prepare_pretraining_dataset(
    documents: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    options: NspOptions | None = None,
    *,
    num_proc: int | None = None,
    batch_size: int = 1000,
    load_from_cache_file: bool = True,
) -> datasets.Dataset:
    """Documents (`"text"` rows) -> NSP instances (`INSTANCE_FEATURES` rows), cached by fingerprint.

    The result is a deterministic function of the corpus, the tokenizer and the options (not of
    `num_proc` or `batch_size`). Every instance has at most `options.max_seq_length` tokens.
    """
    options = options or NspOptions()
    options.check(tokenizer)
    sentences = tokenize_documents(documents, tokenizer, num_proc=num_proc, batch_size=batch_size,
                                   load_from_cache_file=load_from_cache_file)
    sentences = _filter_and_count(sentences, num_proc)
    arguments = options.pair_arguments(tokenizer)
    instances = sentences.map(
        _instances_batch, batched=True, batch_size=batch_size, with_indices=True,
        fn_kwargs={"documents": _DatasetDocuments(sentences), **arguments},
        remove_columns=sentences.column_names, features=INSTANCE_FEATURES, num_proc=num_proc,
        load_from_cache_file=load_from_cache_file, desc="Creating NSP pairs",
        # The corpus itself is an argument (random B segments); hashing it would read it all.
        new_fingerprint=Hasher.hash(["nsp", _PIPELINE_VERSION, sentences._fingerprint, sorted(arguments.items())]),
    )
    labels = instances.with_format("numpy")["next_sentence_label"]
    logger.info("%d NSP pairs from %d documents (%.1f%% random next).", len(instances), len(sentences),
                100 * float(np.mean(labels)) if len(labels) else 0.0)
    return instances


def prepare_pretraining_stream(
    documents: datasets.IterableDataset,
    tokenizer: PreTrainedTokenizerBase,
    options: NspOptions | None = None,
    *,
    batch_size: int = 1000,
) -> datasets.IterableDataset:
    """The streaming counterpart of `prepare_pretraining_dataset`: lazy, nothing is written to disk.

    Random B segments come from the other documents of the same batch of `batch_size` documents (a
    stream has no random access), so keep `batch_size` large. Empty documents are skipped.
    """
    options = options or NspOptions()
    options.check(tokenizer)
    sentences = tokenize_documents(documents, tokenizer, batch_size=batch_size)
    sentences = sentences.filter(lambda n: [count > 0 for count in n], input_columns="num_sentences",
                                 batched=True, batch_size=batch_size)
    return sentences.map(
        _instances_batch, batched=True, batch_size=batch_size, with_indices=True,
        fn_kwargs={"documents": None, **options.pair_arguments(tokenizer)},
        remove_columns=["sentences", "num_sentences"], features=INSTANCE_FEATURES,
    )
