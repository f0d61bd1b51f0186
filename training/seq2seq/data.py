"""Source -> target text pairs for sequence-to-sequence fine-tuning, and their token ids.

A pair is a record `{"id", "source", "source_context", "target"}`: `source_context` (may be None) is a second
input segment (`[CLS] source [SEP] source_context [SEP]`). Three ways to get pairs:

- columns of any records openbert reads (`openbert.tokenization.data_files`);
- question generation from SQuAD-format records: the answer and the sentence that holds it -> the question
  (the sentence, not the paragraph: BERT2BERT from a small BERT learns little from 150-token paragraphs in a
  CPU budget, and the answer's sentence is where most question words come from);
- translation of SQuAD-format questions: a question -> the question of the same id in a parallel file (XQuAD's
  languages share ids).

`benchmarks/bench_seq2seq.py` builds its data from the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

# A sentence ends at . ! or ? followed by space and a capital, digit, quote or bracket (a simple split that
# keeps "U.S. army" and "3.5 m" together often enough for choosing a sentence).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences(text: str) -> list[tuple[int, str]]:
    """`(start offset, sentence)` pairs of a paragraph."""
    starts = [0] + [match.end() for match in SENTENCE_END.finditer(text)]
    ends = starts[1:] + [len(text)]
    return [(start, text[start:end].strip()) for start, end in zip(starts, ends, strict=True)]


def answer_sentence_and_offset(context: str, answer_start: int) -> tuple[str, int]:
    """The sentence in which the answer starts, and the answer's offset in that (stripped) sentence."""
    start, sentence = [(start, sentence) for start, sentence in sentences(context) if start <= answer_start][-1]
    leading = len(context[start:]) - len(context[start:].lstrip())  # what strip() took off the sentence's start
    return sentence, answer_start - start - leading


def highlight(sentence: str, offset: int, length: int, marker: str) -> str:
    """`sentence` with the span `[offset, offset + length)` between two markers (cut at the sentence's end)."""
    end = min(offset + length, len(sentence))
    return f"{sentence[:offset]}{marker} {sentence[offset:end]} {marker}{sentence[end:]}"


def answerable(records: Iterable[dict]) -> list[dict]:
    """The flat SQuAD records (as `openbert.training.qa.data.read_qa_files` gives them) that have an answer."""
    return [record for record in records if record.get("answers") and record["answers"]["text"]]


def question_generation_pairs(records: Iterable[dict], answer_marker: str | None = None) -> list[dict[str, Any]]:
    """(answer, its sentence) -> question, for every answerable flat SQuAD record (its first answer).

    With `answer_marker` (e.g. the tokenizer's "[SEP]"), the answer is also marked inside its sentence ("...
    travelled to [SEP] Paris [SEP] ."), so that the model sees where in the sentence the question points.
    """
    pairs = []
    for record in answerable(records):
        answer, start = record["answers"]["text"][0], record["answers"]["answer_start"][0]
        sentence, offset = answer_sentence_and_offset(record["context"], start)
        if answer_marker is not None:
            sentence = highlight(sentence, offset, len(answer), answer_marker)
        pairs.append({"id": str(record["id"]), "source": answer, "source_context": sentence,
                      "target": record["question"]})
    return pairs


def translation_pairs(sources: Iterable[dict], targets: Iterable[dict], where: str) -> list[dict[str, Any]]:
    """Each source record's question -> the target record's question of the same id, in source order.

    Raises when a source id has no target (`where` names the files): a silently smaller data set would look
    like a worse model.
    """
    target_by_id = {str(record["id"]): record["question"] for record in targets}
    pairs = [{"id": str(record["id"]), "source": record["question"], "source_context": None,
              "target": target_by_id.get(str(record["id"]))} for record in sources]
    missing = [pair["id"] for pair in pairs if pair["target"] is None]
    if missing:
        raise ValueError(f"{where}: {len(missing)} of {len(pairs)} source question ids have no question in "
                         f"--target_files (first: {', '.join(missing[:5])}); translation pairs questions by id")
    return pairs


def column_pairs(records: Iterable[dict], source_column: str, target_column: str, where: str,
                 require_target: bool = True) -> list[dict[str, Any]]:
    """`source_column` -> `target_column` of each record; the target may be absent when `require_target` is off
    (data to predict)."""
    pairs = []
    for index, record in enumerate(records):
        needed = [source_column, target_column] if require_target else [source_column]
        missing = [name for name in needed if not isinstance(record.get(name), str)]
        if missing:
            raise ValueError(f"{where}: record {index} has no text in column(s) {', '.join(missing)} (its columns: "
                             f"{', '.join(record)}); pass --source_column and --target_column")
        pairs.append({"id": str(record.get("id", index)), "source": record[source_column], "source_context": None,
                      "target": record.get(target_column)})
    return pairs


def hold_out(pairs: Sequence[dict], percentage: float) -> tuple[list[dict], list[dict]]:
    """(training pairs, the last `percentage` % of them held out for evaluation)."""
    if not 0 < percentage < 100:
        raise ValueError(f"--validation_split_percentage must be in (0, 100), not {percentage}")
    cut = len(pairs) - max(1, round(len(pairs) * percentage / 100))
    if cut < 1:
        raise ValueError(f"{len(pairs)} training pair(s) cannot give up {percentage}% for evaluation")
    return list(pairs[:cut]), list(pairs[cut:])


def encode_pair(pair: dict, tokenizer: PreTrainedTokenizerBase, max_source_length: int,
                max_target_length: int) -> dict[str, list[int]]:
    """Token ids of the source (with its context as a second segment) and, when there is a target, `labels`.

    The decoder starts from [CLS] (the model's `decoder_start_token_id`), so the labels are the target's tokens
    and [SEP] without the leading [CLS]: the model learns to stop by predicting [SEP].
    """
    segments = [pair["source"]] + ([pair["source_context"]] if pair.get("source_context") else [])
    features = tokenizer(*segments, truncation=True, max_length=max_source_length, return_token_type_ids=False)
    row = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
    if pair.get("target") is not None:
        row["labels"] = tokenizer(pair["target"], truncation=True, max_length=max_target_length + 1)["input_ids"][1:]
    return row
