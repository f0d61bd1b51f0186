"""Extractive QA pre- and post-processing: sliding windows over long contexts and n-best span search.

Preprocessing tokenizes (question, context) pairs, cutting a context longer than `max_seq_length` into
overlapping windows (`doc_stride` tokens shared by consecutive windows, the tokenizers' `stride`). Each
window is one *feature*; an example may have several. For training, a feature's label is the token span
of the answer when the whole answer lies in the window, else the [CLS] token (index of "no answer here").

Postprocessing runs the other way: for every example it searches the `n_best_size` best start and end
logits of all its features for valid spans, maps the best ones back to character offsets of the original
context (so unicode, accents and spacing come back untouched), and for SQuAD v2.0 compares the best span
with the null ([CLS]) score.

This module needs only numpy and transformers: it travels, as remote code, with fine-tuned QA models
(see `pipeline.py`).
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# Per-feature columns the model consumes; the rest of a feature (example_id, offset_mapping, ...) is for
# postprocessing only.
MODEL_INPUT_COLUMNS = ("input_ids", "token_type_ids", "attention_mask")


def _tokenize_windows(
    examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_seq_length: int, doc_stride: int,
    pad_to_max_length: bool,
):
    """Tokenize a batch of examples into windows; returns the tokenizer's encoding (one row per window)."""
    # Leading spaces in questions waste window room and some SQuAD questions have many.
    questions = [q.lstrip() for q in examples["question"]]
    longest_question = max(len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"])
    # [CLS] question [SEP] context [SEP]: the context part of a window must hold more than the overlap.
    context_room = max_seq_length - longest_question - tokenizer.num_special_tokens_to_add(pair=True)
    if doc_stride >= context_room:
        raise ValueError(f"doc_stride={doc_stride} must be smaller than the context tokens a window holds "
                         f"({context_room} = max_seq_length {max_seq_length} - longest question "
                         f"{longest_question} - special tokens): lower doc_stride or raise max_seq_length")
    return tokenizer(
        questions, examples["context"], truncation="only_second", max_length=max_seq_length, stride=doc_stride,
        return_overflowing_tokens=True, return_offsets_mapping=True,
        padding="max_length" if pad_to_max_length else False,
    )


def _context_span(sequence_ids: list[int | None]) -> tuple[int, int]:
    """First and last token index of the context (sequence 1) in a window."""
    start = sequence_ids.index(1)
    end = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
    return start, end


def prepare_train_features(
    examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_seq_length: int, doc_stride: int,
    pad_to_max_length: bool = False,
) -> dict[str, list]:
    """Batched `Dataset.map` function: examples -> training windows with `start_positions`/`end_positions`.

    The first answer of an example is the target. Its token span is [first context token whose character
    range ends after the answer's first character, last context token that starts before the answer's end],
    which also handles answers that begin or end inside a word piece. A window that does not contain the
    whole answer, and an unanswerable example, are labelled with the [CLS] index at both ends.
    """
    encoding = _tokenize_windows(examples, tokenizer, max_seq_length, doc_stride, pad_to_max_length)
    starts, ends = [], []
    for window, offsets in enumerate(encoding["offset_mapping"]):
        cls_index = encoding["input_ids"][window].index(tokenizer.cls_token_id)
        answers = examples["answers"][encoding["overflow_to_sample_mapping"][window]]
        if not answers["text"]:
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        first, last = _context_span(encoding.sequence_ids(window))
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        starts.append(next(t for t in range(first, last + 1) if offsets[t][1] > start_char))
        ends.append(next(t for t in range(last, first - 1, -1) if offsets[t][0] < end_char))
    features = {name: encoding[name] for name in MODEL_INPUT_COLUMNS if name in encoding}
    features["start_positions"], features["end_positions"] = starts, ends
    return features


def prepare_eval_features(
    examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_seq_length: int, doc_stride: int,
    pad_to_max_length: bool = False,
) -> dict[str, list]:
    """Batched `Dataset.map` function: examples -> evaluation windows for `postprocess_qa_predictions`.

    Besides the model inputs each window keeps `example_id`, `cls_index`, and `offset_mapping` with
    `None` for every token that is not context (question, special and padding tokens), so that only
    context tokens can start or end a predicted answer.
    """
    encoding = _tokenize_windows(examples, tokenizer, max_seq_length, doc_stride, pad_to_max_length)
    features = {name: encoding[name] for name in MODEL_INPUT_COLUMNS if name in encoding}
    features["example_id"], features["cls_index"], features["offset_mapping"] = [], [], []
    for window, offsets in enumerate(encoding["offset_mapping"]):
        features["example_id"].append(examples["id"][encoding["overflow_to_sample_mapping"][window]])
        features["cls_index"].append(encoding["input_ids"][window].index(tokenizer.cls_token_id))
        sequence_ids = encoding.sequence_ids(window)
        features["offset_mapping"].append([list(o) if sequence_ids[t] == 1 else None for t, o in enumerate(offsets)])
    return features


@dataclass
class QAPredictions:
    """Postprocessing output, keyed by example id."""

    # The chosen answer text ("" = no answer, SQuAD v2.0 only).
    predictions: dict[str, str]
    # Up to n_best_size candidates, best first: {"text", "probability", "start", "end", "start_logit",
    # "end_logit"}; start/end are character offsets in the context (0, 0 and logits None for "no answer").
    nbest: dict[str, list[dict]]
    # null score - best span score (v2 only); an answer is "" when this exceeds the threshold.
    null_score_diff: dict[str, float]


# The "no answer" candidate: the empty text at [CLS], which has no character offsets or span logits.
_NO_ANSWER = {"text": "", "start": 0, "end": 0, "start_logit": None, "end_logit": None}


def _softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - np.max(scores))
    return exp / exp.sum()


def postprocess_qa_predictions(
    examples: Iterable[Mapping], features: Mapping[str, Sequence], start_logits: np.ndarray, end_logits: np.ndarray,
    version_2_with_negative: bool = False, n_best_size: int = 20, max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
) -> QAPredictions:
    """Turn per-window start/end logits into one answer per example.

    Args:
        examples: the flat examples (rows with `id` and `context`, e.g. a `datasets.Dataset`).
        features: their windows from `prepare_eval_features` (columns `example_id`, `cls_index`,
            `offset_mapping`, e.g. a `datasets.Dataset`), in the order of the logits.
        start_logits, end_logits: `(num_features, seq_len)`; rows may be padded past a window's length
            (e.g. with -100 when batches were padded to different lengths): those positions are ignored.
        version_2_with_negative: allow "no answer": the example's null score is the lowest
            `start_logits[cls] + end_logits[cls]` over its windows (the window most sure there *is* an
            answer decides), and the answer is "" when `null - best span > null_score_diff_threshold`.
        n_best_size: how many top start and top end positions per window to pair, and candidates to keep.
        max_answer_length: longest span in tokens.
    A span is valid when start and end are context tokens of the same window and start <= end. Candidates
    from overlapping windows that yield the same text are merged, keeping the best score.
    """
    num_features = len(features["example_id"])
    if num_features != len(start_logits) or num_features != len(end_logits):
        raise ValueError(f"{num_features} features but {len(start_logits)} start / {len(end_logits)} end logit rows")
    windows_of = collections.defaultdict(list)
    for index, example_id in enumerate(features["example_id"]):
        windows_of[example_id].append(index)
    # Read once: a column of a datasets.Dataset is materialised on every access.
    offset_mappings, cls_indices = features["offset_mapping"], features["cls_index"]

    result = QAPredictions({}, {}, {})
    for example in examples:
        windows = [(offset_mappings[w], cls_indices[w], start_logits[w], end_logits[w])
                   for w in windows_of[example["id"]]]
        if not windows:
            raise ValueError(f"example {example['id']!r} has no features; pass the features built from these "
                             "examples")
        spans, null_score = _best_spans(example["context"], windows, n_best_size, max_answer_length)
        candidates = _ranked(spans, null_score if version_2_with_negative else None, n_best_size)
        result.nbest[example["id"]] = _with_probabilities(candidates)
        if not version_2_with_negative:
            result.predictions[example["id"]] = candidates[0]["text"]
            continue
        diff = null_score - spans[0]["score"] if spans else float("inf")
        result.null_score_diff[example["id"]] = diff
        result.predictions[example["id"]] = "" if diff > null_score_diff_threshold else spans[0]["text"]
    return result


def _best_spans(context: str, windows: list[tuple], n_best_size: int, max_answer_length: int
                ) -> tuple[list[dict], float]:
    """The best span of each distinct answer text over an example's windows, best first (at most `n_best_size`),
    and the example's null score: the lowest `[CLS]` score of its windows."""
    best_by_text: dict[str, dict] = {}
    null_scores = []
    for offsets, cls, start_logits, end_logits in windows:
        # Rows may be padded past the window's length: only its own positions count.
        start_row, end_row = start_logits[: len(offsets)], end_logits[: len(offsets)]
        null_scores.append(float(start_row[cls] + end_row[cls]))
        for span in _window_spans(context, offsets, start_row, end_row, n_best_size, max_answer_length):
            if span["text"] not in best_by_text or best_by_text[span["text"]]["score"] < span["score"]:
                best_by_text[span["text"]] = span
    return sorted(best_by_text.values(), key=lambda c: c["score"], reverse=True)[:n_best_size], min(null_scores)


def _window_spans(context: str, offsets: Sequence, start_row: np.ndarray, end_row: np.ndarray, n_best_size: int,
                  max_answer_length: int) -> Iterable[dict]:
    """The valid spans among a window's top start and end positions: both in the context, in order, not too long."""
    top_starts = np.argsort(start_row)[::-1][:n_best_size]
    top_ends = np.argsort(end_row)[::-1][:n_best_size]
    for start in top_starts:
        for end in top_ends:
            if offsets[start] is None or offsets[end] is None or not 0 <= end - start < max_answer_length:
                continue
            first_char, end_char = offsets[start][0], offsets[end][1]
            yield {"text": context[first_char:end_char], "score": float(start_row[start] + end_row[end]),
                   "start": first_char, "end": end_char, "start_logit": float(start_row[start]),
                   "end_logit": float(end_row[end])}


def _ranked(spans: list[dict], null_score: float | None, n_best_size: int) -> list[dict]:
    """The candidates to report, best first: the spans, with "no answer" among them when `null_score` is given."""
    if null_score is not None:
        spans = sorted([*spans, {**_NO_ANSWER, "score": null_score}], key=lambda c: c["score"], reverse=True)
    # No valid span at all (e.g. max_answer_length too small): an empty answer, scored as such.
    return spans[:n_best_size] or [{**_NO_ANSWER, "score": 0.0}]


def _with_probabilities(candidates: list[dict]) -> list[dict]:
    probabilities = _softmax(np.array([c["score"] for c in candidates]))
    return [{"text": c["text"], "probability": float(p), "start": c["start"], "end": c["end"],
             "start_logit": c["start_logit"], "end_logit": c["end_logit"]}
            for c, p in zip(candidates, probabilities, strict=True)]


def write_qa_predictions(result: QAPredictions, output_dir: str | Path, prefix: str = "eval") -> list[Path]:
    """Write `<prefix>_predictions.json`, `<prefix>_nbest_predictions.json` and, for v2, `<prefix>_null_odds.json`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {"predictions": result.predictions, "nbest_predictions": result.nbest}
    if result.null_score_diff:
        files["null_odds"] = result.null_score_diff
    written = []
    for name, content in files.items():
        path = output_dir / f"{prefix}_{name}.json"
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    logger.info("wrote %s", ", ".join(str(p) for p in written))
    return written
