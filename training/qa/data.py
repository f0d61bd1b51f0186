"""Extractive-QA data: official SQuAD v1.1/v2.0 JSON, flat records, or a `datasets` split.

Files are read by openbert's one reader of data files (`openbert.tokenization.data_files`). Every source becomes
a flat `datasets.Dataset` with the columns `id`, `title`, `context`, `question` and
`answers = {"text": [str, ...], "answer_start": [int, ...]}` (character offsets into `context`; empty lists
for an unanswerable question), the layout of the `squad`/`squad_v2` datasets on the Hub.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import datasets

from openbert.tokenization.data_files import expand_data_files, iter_records

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "context", "question", "answers")


@dataclass
class QAExamples:
    """A validated split plus what was dropped from it (reported in the run's results)."""

    dataset: datasets.Dataset
    # Answers whose `answer_start` does not point at their `text` in the context.
    skipped_misaligned: int
    # Questions without an answer, dropped because the run is SQuAD v1.1 (no `version_2_with_negative`).
    skipped_unanswerable: int


def _flatten_article(article: dict, source: str) -> Iterator[dict]:
    """An official SQuAD article (title -> paragraphs -> qas) as flat records; `plausible_answers` are not answers."""
    for paragraph in article.get("paragraphs", []):
        for qa in paragraph.get("qas", []):
            if "answers" not in qa:
                raise ValueError(f"{source}: question {qa.get('id')!r} has no 'answers' field")
            answers = [] if qa.get("is_impossible", False) else qa["answers"]
            for answer in answers:
                missing = [key for key in ("text", "answer_start") if not isinstance(answer, dict) or key not in answer]
                if missing:
                    raise ValueError(f"{source}: an answer of question {qa.get('id')!r} lacks {' and '.join(missing)}; "
                                     'SQuAD answers are {"text": ..., "answer_start": ...}')
            yield {
                "id": qa.get("id"), "title": article.get("title", ""), "context": paragraph.get("context"),
                "question": qa.get("question"),
                "answers": {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]},
            }


def read_qa_files(files: str | Sequence[str]) -> list[dict]:
    """Flat QA records (not yet validated) of every file `files` names (files, folders, globs).

    Records are official SQuAD articles (`{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`),
    flattened here, or flat records (`{"id", "question", "context", "answers"}`) in any format the reader takes.
    """
    return [flat for path in expand_data_files(files) for record in iter_records(path)
            for flat in (_flatten_article(record, str(path)) if "paragraphs" in record else [record])]


def _check_record(record: dict, index: int, source: str) -> None:
    """Raise naming the record when a field is missing or `answers` is not `{"text": [...], "answer_start": [...]}`."""
    missing = [name for name in REQUIRED_FIELDS if record.get(name) is None]
    if missing:
        raise ValueError(f"{source}: record {index} (id {record.get('id')!r}) lacks the field(s) "
                         f"{', '.join(missing)}; QA records need {', '.join(REQUIRED_FIELDS)}")
    answers = record["answers"]
    if not isinstance(answers, dict) or not {"text", "answer_start"} <= answers.keys():
        raise ValueError(f"{source}: record {index} (id {record.get('id')!r}) has answers {answers!r}; QA answers are "
                         '{"text": [str, ...], "answer_start": [int, ...]}')


def _check_unique_ids(ids: Sequence[str], source: str) -> None:
    """Predictions are matched to questions by id: two questions with one id would score one of them twice."""
    seen: dict[str, int] = {}
    for index, question_id in enumerate(ids):
        if question_id in seen:
            raise ValueError(f"{source}: records {seen[question_id]} and {index} share the id {question_id!r}; "
                             "evaluation matches answers to questions by id, so give every question its own id")
        seen[question_id] = index


def _answers_align(record: dict) -> bool:
    context, answers = record["context"], record["answers"]
    if len(answers["text"]) != len(answers["answer_start"]):
        return False
    return all(isinstance(start, int) and 0 <= start and context[start:start + len(text)] == text
               for text, start in zip(answers["text"], answers["answer_start"], strict=True))


def validate_qa_examples(
    records: Iterable[dict], source: str, version_2_with_negative: bool, require_answers: bool = True,
    unique_ids: bool = False,
) -> QAExamples:
    """Check flat records, drop the unusable ones with a warning, and build the dataset.

    A missing field raises (naming `source` and the field). A record whose answers do not sit at their
    `answer_start` is dropped and counted, as is an unanswerable one when `version_2_with_negative` is off
    (SQuAD v1.1 has nothing to train on or score it against). An empty result raises.
    `require_answers=False` is for data to predict: `answers` may be absent and no question is dropped
    for having none. `unique_ids` (evaluation and prediction, which match answers to questions by id) raises
    for two records with one id.
    """
    kept, ids, misaligned, unanswerable = [], [], 0, 0
    for index, record in enumerate(records):
        if not require_answers and record.get("answers") is None:
            record = {**record, "answers": {"text": [], "answer_start": []}}
        _check_record(record, index, source)
        ids.append(str(record["id"]))
        if not _answers_align(record):
            misaligned += 1
            continue
        if require_answers and not record["answers"]["text"] and not version_2_with_negative:
            unanswerable += 1
            continue
        kept.append({"id": str(record["id"]), "title": record.get("title") or "", "context": record["context"],
                     "question": record["question"],
                     "answers": {"text": list(record["answers"]["text"]),
                                 "answer_start": [int(s) for s in record["answers"]["answer_start"]]}})
    if misaligned:
        logger.warning("%s: skipped %d question(s) whose answer_start does not match the answer text in the "
                       "context", source, misaligned)
    if unanswerable:
        logger.warning("%s: skipped %d unanswerable question(s); pass --version_2_with_negative to use them",
                       source, unanswerable)
    if unique_ids:
        _check_unique_ids(ids, source)
    if not kept:
        raise ValueError(f"{source}: no usable question-answer examples (empty split, or all "
                         f"{misaligned + unanswerable} skipped)")
    features = datasets.Features({
        "id": datasets.Value("string"), "title": datasets.Value("string"), "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {"text": datasets.List(datasets.Value("string")),
                    "answer_start": datasets.List(datasets.Value("int32"))},
    })
    return QAExamples(datasets.Dataset.from_list(kept, features=features), misaligned, unanswerable)
