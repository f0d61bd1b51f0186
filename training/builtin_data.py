"""Built-in data for the quickstart: real English text and human-labelled sentiment, without any hub.

* Pretraining text: the documentation that ships inside every Python installation, i.e. the language
  reference topics behind `help()` (`pydoc_data.topics`) and the docstrings of the standard library,
  read from source with `ast` (nothing is imported or executed). Python Software Foundation License.
  One document per topic or docstring, one paragraph per line, documents separated by blank lines, so
  next-sentence pairs come from real document structure.
* Sentiment: the human-rated sentences of Hutto & Gilbert (ICWSM 2014) shipped in the source distribution
  of `vadersentiment==3.3.2` on PyPI (MIT): movie-review snippets, tweets, Amazon review snippets and
  New York Times editorial snippets, each rated -4..+4 by ten people. Fetched once with pip into the cache.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

from .pretraining.sentences import document_sentences

# Standard-library folders that are tests, GUI demos, vendored tools or build artefacts, not documentation.
_SKIPPED_STDLIB_PARTS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo",
                         "ensurepip", "__pycache__", "pydoc_data"}
_MIN_DOCSTRING_CHARS = 300  # shorter docstrings are mostly one-liners: no sentence pairs in them
_RULE = re.compile(r"^\s*([*=\-~^#])\1{2,}\s*$")  # heading underlines such as ****** or ======

VADER_SPEC = "vadersentiment==3.3.2"
VADER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_SOURCES = {  # file in the archive -> the `source` column
    "tweets_GroundTruth.txt": "tweets",
    "movieReviewSnippets_GroundTruth.txt": "movie reviews",
    "amazonReviewSnippets_GroundTruth.txt": "product reviews",
    "nytEditorialSnippets_GroundTruth.txt": "editorials",
}
# Ratings are the mean of ten raters on -4..+4; sentences rated this close to neutral have no clear
# polarity, so they are left out of the binary task.
NEUTRAL_BAND = 0.5


def cache_dir() -> Path:
    """Where downloads and prepared data persist between runs: $OPENBERT_CACHE, else ~/.cache/openbert."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openbert"
    path = Path(os.environ.get("OPENBERT_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _prose_paragraphs(text: str) -> list[str]:
    """The prose paragraphs of a docstring or help topic, each joined onto one line.

    Indented blocks (code, grammar rules, examples), doctest lines and heading underlines are dropped.
    """
    paragraphs, current = [], []
    for line in [*text.splitlines(), ""]:
        if not line.strip() or line.startswith((" ", "\t")) or line.lstrip().startswith(">>>") or _RULE.match(line):
            if current:
                paragraphs.append(" ".join(current))
            current = []
        else:
            current.append(line.strip())
    # A paragraph that does not end like a sentence is a heading or a fragment.
    return [p for p in paragraphs if p.endswith((".", "!", "?", ":")) and len(p.split()) >= 4]


def _python_documents() -> list[str]:
    from pydoc_data.topics import topics

    texts = [topics[name] for name in sorted(topics)]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if _SKIPPED_STDLIB_PARTS & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few stdlib files are templates or deliberately broken
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                docstring = ast.get_docstring(node)
                if docstring and len(docstring) >= _MIN_DOCSTRING_CHARS:
                    texts.append(docstring)
    documents = ["\n".join(paragraphs) for paragraphs in map(_prose_paragraphs, texts) if paragraphs]
    return list(dict.fromkeys(documents))  # inherited docstrings repeat; keep the first of each


def python_docs_corpus(directory: Path | None = None) -> Path:
    """Write (once) the Python documentation corpus; returns the path of the text file.

    The file is keyed by the Python version, whose documentation it holds, so a cached copy is reused.
    """
    directory = directory or cache_dir()
    path = directory / f"python-{sys.version_info.major}.{sys.version_info.minor}-docs.txt"
    if not path.is_file():
        documents = _python_documents()
        _write_atomically(path, "\n\n".join(documents) + "\n")
    return path


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def _vader_sdist(directory: Path) -> Path:
    """The vaderSentiment source distribution, downloaded once through pip (PyPI, no hub)."""
    found = sorted(directory.glob("vader[sS]entiment-3.3.2.tar.gz"))
    if found:
        return found[0]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
               "--dest", str(directory), VADER_SPEC]
    completed = subprocess.run(command, capture_output=True, text=True)
    found = sorted(directory.glob("vader[sS]entiment-3.3.2.tar.gz"))
    if completed.returncode != 0 or not found:
        raise RuntimeError(
            f"could not fetch the {VADER_SPEC} source distribution with pip ({completed.stderr.strip()[-300:]}); "
            "check that PyPI is reachable, or put vaderSentiment-3.3.2.tar.gz into "
            f"{directory} yourself, or pass your own labelled data with --sentiment-train/--sentiment-test"
        )
    return found[0]


def vader_sentences(directory: Path | None = None) -> list[dict]:
    """Every rated sentence: `{"id", "source", "rating", "text"}`, in the archive's order."""
    directory = directory or cache_dir()
    with tarfile.open(_vader_sdist(directory)) as sdist:
        member = next((m for m in sdist.getmembers() if m.name.endswith(VADER_ARCHIVE)), None)
        if member is None:
            raise RuntimeError(f"{VADER_ARCHIVE} is missing from the {VADER_SPEC} source distribution")
        inner_bytes = sdist.extractfile(member).read()
    rows = []
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            source = VADER_SOURCES.get(Path(member.name).name)
            if source is None:
                continue
            text = archive.extractfile(member).read().decode("utf-8", errors="replace")
            for fields in csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(fields) == 3 and fields[2].strip():
                    rows.append(dict(id=f"{source}/{fields[0]}", source=source, rating=float(fields[1]),
                                     text=fields[2].strip()))
    return rows


def _rated_split(test_fraction: float, seed: int, directory: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """VADER's sentences as (train, test, near-neutral) rows: the binary task's seeded split, and the sentences
    too close to neutral for it (|rating| < NEUTRAL_BAND), which belong to neither split."""
    rows = vader_sentences(directory)
    rated = [dict(row, label="positive" if row["rating"] > 0 else "negative") for row in rows
             if abs(row["rating"]) >= NEUTRAL_BAND]
    random.Random(seed).shuffle(rated)
    cut = int(len(rated) * test_fraction)
    return rated[cut:], rated[:cut], [row for row in rows if abs(row["rating"]) < NEUTRAL_BAND]


def sentiment_splits(test_fraction: float = 0.2, seed: int = 0, directory: Path | None = None) -> dict[str, Path]:
    """Binary sentiment (label "positive"/"negative") train and test JSON-lines files from VADER's data.

    Near-neutral sentences (|rating| < NEUTRAL_BAND) are dropped; the split is a seeded shuffle, and the
    files are written once and reused.
    """
    directory = directory or cache_dir()
    paths = {split: directory / f"vader-sentiment-seed{seed}-{split}.jsonl" for split in ("train", "test")}
    if all(path.is_file() for path in paths.values()):
        return paths
    train, test, _ = _rated_split(test_fraction, seed, directory)
    for split, part in (("test", test), ("train", train)):
        rows = [{key: row[key] for key in ("text", "label", "source")} for row in part]
        _write_atomically(paths[split], "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return paths


def sentiment_pretraining_corpus(validation_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                                 directory: Path | None = None) -> dict[str, Path]:
    """Unlabelled text from the sentiment data's own domain, for pretraining: "train" and "validation" text files.

    Every VADER sentence outside the sentiment test split of `sentiment_splits(test_fraction, seed)` (labelled
    training sentences and near-neutral ones, labels dropped), minus any sentence whose text equals a test
    sentence's: the scored sentences are never seen in pretraining. Product-review and editorial sentences are
    grouped back into their reviews and editorials, in order, so next-sentence pairs come from real documents;
    a tweet or a movie snippet stands alone, so it is cut in two at the clause break nearest its middle and NSP
    asks whether the second half continues the first. `validation_fraction` of each source's documents is held out.
    One sentence per line, documents separated by blank lines; written once and reused.
    """
    directory = directory or cache_dir()
    paths = {split: directory / f"vader-pretraining-seed{seed}-{split}.txt" for split in ("train", "validation")}
    if all(path.is_file() for path in paths.values()):
        return paths
    train, test, neutral = _rated_split(test_fraction, seed, directory)
    test_texts = {row["text"].casefold() for row in test}
    documents = _vader_documents([row for row in train + neutral if row["text"].casefold() not in test_texts])
    rng = random.Random(seed)
    held_out, kept = [], []
    for source in sorted({source for source, _ in documents}):
        of_source = [sentences for name, sentences in documents if name == source]
        rng.shuffle(of_source)
        cut = max(1, round(len(of_source) * validation_fraction))
        held_out += of_source[:cut]
        kept += of_source[cut:]
    for split, part in (("validation", held_out), ("train", kept)):
        rng.shuffle(part)
        _write_atomically(paths[split], "\n\n".join("\n".join(sentences) for sentences in part) + "\n")
    return paths


def _vader_documents(rows: list[dict]) -> list[tuple[str, list[str]]]:
    """(source, sentences) documents: rows whose id is `source/DOC_SENTENCE` grouped by document in sentence
    order, every other row a document of its own: its sentences, or the two halves of its only one (`_halves`)."""
    grouped: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for row in rows:
        document, _, sentence = row["id"].partition("/")[2].partition("_")
        grouped.setdefault((row["source"], document if sentence else row["id"]), []).append(
            (int(sentence or 0), row["text"]))
    documents = []
    for (source, _), numbered in sorted(grouped.items()):
        sentences = [text for _, text in sorted(numbered)]
        if len(sentences) == 1:
            sentences = document_sentences(sentences[0])
        documents.append((source, sentences if len(sentences) > 1 else _halves(sentences[0])))
    return documents


_CLAUSE_ENDS = (",", ";", ":", "--", "-", ")")


def _halves(text: str) -> list[str]:
    """A sentence as two pieces, cut after the clause mark nearest the middle (between 30% and 70% of its words),
    else in the middle; sentences under four words stay whole."""
    words = text.split()
    if len(words) < 4:
        return [text]
    low, high = max(1, round(len(words) * 0.3)), min(len(words) - 1, round(len(words) * 0.7))
    breaks = [i for i in range(low, high + 1) if words[i - 1].endswith(_CLAUSE_ENDS)]
    cut = min(breaks, key=lambda i: abs(i - len(words) / 2)) if breaks else len(words) // 2
    return [" ".join(words[:cut]), " ".join(words[cut:])]
