"""Labels and columns of a text-classification split, and its tokenization.

A split is any `datasets.Dataset` with one text column (or a sentence pair) and a label column. Labels may
be strings ("positive"), integers or floats; floats that are not all integers mean regression. Class ids
follow a fixed order (GLUE's, a `ClassLabel`'s, or sorted raw values) recorded in the model config as
`id2label`/`label2id`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
from transformers import PreTrainedConfig, PreTrainedTokenizerBase

from .glue import GlueTask

# Looked for, in this order, when no text column is given.
DEFAULT_TEXT_COLUMNS = (("sentence1", "sentence2"), ("sentence", None), ("text", None))


def _raw_key(value) -> str:
    """A label value as the string used to match classes ("1" for 1 and "1", "pos" for " pos")."""
    return str(value).strip()


def _parses(key: str, kind: type) -> bool:
    try:
        kind(key)
    except ValueError:
        return False
    return True


def _unlabelled(value) -> bool:
    """A label cell with nothing in it: None (JSON null, a missing Parquet value) or blank text (CSV, TSV)."""
    return value is None or _raw_key(value) == ""


def require_labels(values: Sequence, source: str) -> None:
    """Raise naming the first row without a label (an empty CSV cell would otherwise become a class of its own)."""
    empty = [row for row, value in enumerate(values) if _unlabelled(value)]
    if empty:
        raise ValueError(f"{source} row {empty[0]}: the label cell is empty ({len(empty)} row(s) without a label); "
                         "fill in or remove those rows")


@dataclass(frozen=True)
class LabelSpace:
    """The classes of a task (or regression) and how raw label values map to class ids."""

    # Raw values (as `_raw_key` strings) in class-id order; empty for regression.
    raw_labels: tuple[str, ...]
    # Readable names in the same order (id2label); equal to raw_labels unless a preset renames them.
    label_names: tuple[str, ...]

    @property
    def is_regression(self) -> bool:
        return not self.raw_labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.raw_labels)

    @property
    def id2label(self) -> dict[int, str]:
        # A regression head has one output; transformers derives num_labels from id2label, so name it.
        return {0: "score"} if self.is_regression else dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in self.id2label.items()}

    def encode(self, values: Sequence, source: str) -> list[int] | list[float]:
        """Class ids (or float targets) for raw label `values`; raises naming the first bad row of `source`."""
        require_labels(values, source)
        if self.is_regression:
            targets = []
            for row, value in enumerate(values):
                # "nan" and "inf" parse as floats, but a loss on them is NaN at the first batch that holds one.
                if not _parses(_raw_key(value), float) or not math.isfinite(float(_raw_key(value))):
                    raise ValueError(f"{source} row {row}: label {value!r} is not a finite number (regression task)")
                targets.append(float(_raw_key(value)))
            return targets
        ids = {raw: index for index, raw in enumerate(self.raw_labels)}
        encoded = []
        for row, value in enumerate(values):
            key = _raw_key(value)
            if value is None or key not in ids:
                raise ValueError(f"{source} row {row}: label {value!r} is not one of the training labels "
                                 f"{list(self.raw_labels)}")
            encoded.append(ids[key])
        return encoded


def infer_label_space(values: Sequence, source: str, is_regression: bool | None = None) -> LabelSpace:
    """The label space of training labels `values`.

    With `is_regression=None` it is regression exactly when every value parses as a float and not every
    value as an integer (so "0"/"1" and 0/1 are classes, "3.8" is a score). Classes are the distinct values,
    sorted numerically when they are all integers, else alphabetically.
    """
    require_labels(values, source)
    keys = [_raw_key(v) for v in values]
    all_int = all(_parses(k, int) for k in keys)
    if is_regression is None:
        is_regression = not all_int and all(_parses(k, float) for k in keys)
    if is_regression:
        LabelSpace((), ()).encode(keys, source)  # raises on the first non-number
        return LabelSpace((), ())
    classes = sorted(set(keys), key=int) if all_int else sorted(set(keys))
    if len(classes) < 2:
        raise ValueError(f"{source}: a classifier needs at least two classes, found only {classes}")
    return LabelSpace(tuple(classes), tuple(classes))


def checkpoint_label_space(config: PreTrainedConfig) -> LabelSpace | None:
    """The classes a fine-tuned classifier was trained for, from its config; None for a base checkpoint.

    A base checkpoint carries transformers' placeholder names (LABEL_0, LABEL_1, ...) and no problem_type.
    """
    if config.problem_type == "regression":
        return LabelSpace((), ())
    names = tuple(config.id2label[i] for i in range(len(config.id2label)))
    if all(name == f"LABEL_{i}" for i, name in enumerate(names)):
        return None
    return LabelSpace(names, names)


def class_label_space(feature: datasets.ClassLabel) -> LabelSpace:
    """The label space of a `datasets.ClassLabel` column: its integer ids, named by the feature."""
    return LabelSpace(tuple(str(i) for i in range(feature.num_classes)), tuple(feature.names))


@dataclass(frozen=True)
class TextColumns:
    """Which columns of a split hold the text (and the second text of a pair) and the label."""

    text: str
    text_pair: str | None
    label: str


def resolve_columns(
    column_names: Sequence[str], source: str, text_column: str | None, text_pair_column: str | None,
    label_column: str,
) -> TextColumns:
    """Check the named columns exist in `source`, or pick defaults: sentence1+sentence2, sentence, text."""
    available = ", ".join(column_names)
    if text_column is None:
        for text, pair in DEFAULT_TEXT_COLUMNS:
            if text in column_names and (pair is None or pair in column_names):
                text_column, text_pair_column = text, text_pair_column or pair
                break
        else:
            raise ValueError(f"{source}: no text column found (looked for sentence1/sentence2, sentence, text); "
                             f"pass --text_column (columns: {available})")
    for flag, name in (("--text_column", text_column), ("--text_pair_column", text_pair_column)):
        if name is not None and name not in column_names:
            raise ValueError(f"{source}: column {name!r} ({flag}) not found; columns: {available}")
    return TextColumns(text_column, text_pair_column, label_column)


def has_labels(dataset: datasets.Dataset, columns: TextColumns) -> bool:
    """Whether a split carries labels; -1 everywhere is the Hub's "hidden test label" convention."""
    if columns.label not in dataset.column_names:
        return False
    return any(not _unlabelled(v) and _raw_key(v) != "-1" for v in dataset[columns.label])


def require_label_column(dataset: datasets.Dataset, columns: TextColumns, source: str) -> None:
    if columns.label not in dataset.column_names:
        raise ValueError(f"{source}: label column {columns.label!r} (--label_column) not found; columns: "
                         f"{', '.join(dataset.column_names)}")


def tokenize_split(
    dataset: datasets.Dataset, source: str, columns: TextColumns, tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int, pad_to_max_length: bool, label_space: LabelSpace | None,
) -> datasets.Dataset:
    """Model inputs (+ `labels` when `label_space` is given) for every row; other columns are dropped.

    Without `pad_to_max_length` rows keep their own length and batches are padded by the collator to their
    longest row (dynamic padding), which is much cheaper for short sentences.
    """
    text_names = [name for name in (columns.text, columns.text_pair) if name is not None]
    for name in text_names:
        empty = [row for row, text in enumerate(dataset[name]) if not isinstance(text, str)]
        if empty:
            raise ValueError(f"{source} row {empty[0]}: column {name!r} has no text ({len(empty)} such rows)")
    labels = label_space.encode(dataset[columns.label], source) if label_space is not None else None

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        texts = [batch[name] for name in text_names]
        return tokenizer(*texts, truncation=True, max_length=max_seq_length,
                         padding="max_length" if pad_to_max_length else False)

    tokenized = dataset.map(tokenize, batched=True, remove_columns=dataset.column_names,
                            desc=f"tokenizing {source}")
    return tokenized.add_column("labels", labels) if labels is not None else tokenized


def resolve_label_space(
    raw: dict[str, tuple[datasets.Dataset, str]], columns: TextColumns, task: GlueTask | None,
    is_regression: bool | None, checkpoint_config: PreTrainedConfig,
) -> LabelSpace:
    """The task's classes: a GLUE preset's, a `ClassLabel` column's, else the labels of the training split.

    A checkpoint that is already a fine-tuned classifier (its config names its labels) keeps its class ids:
    evaluating or predicting with it alone uses them, and training it further needs the same label set.
    """
    from_checkpoint = checkpoint_label_space(checkpoint_config)
    first, _ = raw[next(iter(raw))]
    if task:
        space = LabelSpace(task.raw_labels, task.label_names)
    elif isinstance(first.features.get(columns.label), datasets.ClassLabel):
        space = class_label_space(first.features[columns.label])
    elif from_checkpoint is not None and "train" not in raw:
        return from_checkpoint
    else:
        labelled = raw.get("train") or raw.get("validation")
        if labelled is None:
            raise ValueError("--do_predict alone with a base checkpoint cannot know the label names: also give "
                             "training or validation data, or predict with a fine-tuned checkpoint")
        require_label_column(labelled[0], columns, labelled[1])
        space = infer_label_space(labelled[0][columns.label], labelled[1], is_regression)
    if from_checkpoint is None or from_checkpoint.label_names == space.label_names:
        return space
    if task is None and set(from_checkpoint.label_names) == set(space.label_names):
        return from_checkpoint  # the same classes: keep the checkpoint's ids
    raise ValueError(f"the checkpoint was fine-tuned for labels {list(from_checkpoint.label_names) or 'regression'} "
                     f"but the data has {list(space.label_names) or 'regression scores'}: start from a base "
                     "(not fine-tuned) checkpoint to learn other labels")
