"""The quickstart's built-in data, and the whole job end to end on a tiny budget."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from openbert.training import builtin_data, quickstart


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The quickstart's cache, shared by this module's tests: the docs corpus is built once (about ten seconds)."""
    return tmp_path_factory.mktemp("openbert-cache")


def test_python_docs_corpus_is_documents_of_prose(cache):
    path = builtin_data.python_docs_corpus(cache)
    documents = path.read_text().split("\n\n")
    assert len(documents) > 500
    assert sum(len(d) for d in documents) > 500_000
    for document in documents:
        assert document.strip() and "\n\n" not in document
        for paragraph in document.splitlines():
            assert not paragraph.startswith((" ", ">>>")) and paragraph.endswith((".", "!", "?", ":"))
    written = path.stat().st_mtime_ns
    assert builtin_data.python_docs_corpus(cache) == path and path.stat().st_mtime_ns == written  # cached


def test_prose_paragraphs_drop_code_headings_and_fragments():
    text = "The heading\n***********\n\nFirst line of a\nwrapped paragraph.\n\n   code = 1\n>>> 2 + 2\n\nA stub"
    assert builtin_data._prose_paragraphs(text) == ["First line of a wrapped paragraph."]


def _fake_vader_sdist(directory: Path) -> None:
    """A stand-in for the PyPI sdist, same layout: an inner tar.gz with tab-separated rated sentences."""
    rows = {"tweets_GroundTruth.txt": "1\t2.5\tI love it\r\n2\t-3.1\tawful day\r\n3\t0.2\tmeh\r\n",
            "movieReviewSnippets_GroundTruth.txt": "1\t1.9\tA moving film\r\n2\t-1.2\tdull plot\r\n"}
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as archive:
        for name, text in rows.items():
            data = text.encode()
            info = tarfile.TarInfo(f"hutto_ICWSM_2014/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with tarfile.open(directory / "vaderSentiment-3.3.2.tar.gz", "w:gz") as sdist:
        info = tarfile.TarInfo(f"vaderSentiment-3.3.2/{builtin_data.VADER_ARCHIVE}")
        info.size = len(inner.getvalue())
        sdist.addfile(info, io.BytesIO(inner.getvalue()))


def test_vader_sentences_become_binary_sentiment_splits(tmp_path):
    _fake_vader_sdist(tmp_path)
    rows = builtin_data.vader_sentences(tmp_path)
    assert [r["source"] for r in rows] == ["movie reviews", "movie reviews", "tweets", "tweets", "tweets"]
    assert rows[2] == {"id": "tweets/1", "source": "tweets", "rating": 2.5, "text": "I love it"}
    splits = builtin_data.sentiment_splits(test_fraction=0.25, seed=0, directory=tmp_path)
    kept = [json.loads(line) for split in ("train", "test") for line in splits[split].read_text().splitlines()]
    assert len(kept) == 4  # "meh" (rating 0.2) is too close to neutral
    assert {(r["text"], r["label"]) for r in kept} == {("I love it", "positive"), ("awful day", "negative"),
                                                       ("A moving film", "positive"), ("dull plot", "negative")}
    assert len(splits["test"].read_text().splitlines()) == 1


def test_quickstart_end_to_end_on_a_tiny_budget(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("OPENBERT_CACHE", str(cache))
    sentences = [("a wonderful, delightful film", "positive"), ("a dull and awful mess", "negative"),
                 ("I loved every minute", "positive"), ("boring, I hated it", "negative")] * 8
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                                                         for t, y in sentences))
    out = tmp_path / "out"
    stages = quickstart.main([
        "--output_dir", str(out), "--model_size", "tiny", "--vocab_size", "1000", "--pretrain_steps", "6",
        "--pretrain_batch_size", "8", "--max_seq_length", "64", "--dupe_factor", "1",
        # A tiny budget: in 6 steps the recipe evaluates at every step, so on 5% of the documents only.
        "--pretrain_validation_percentage", "5", "--sentiment_train_samples", "32",
        "--sentiment_test_samples", "32", "--own_sentiment_epochs", "1", "--minilm_sentiment_epochs", "1",
        "--sentiment_train_file", str(tmp_path / "train.jsonl"), "--sentiment_test_file", str(tmp_path / "test.jsonl"),
    ])
    assert [s.name.split(" ")[0] for s in stages] == ["built-in", "WordPiece", "pretraining", "sentiment", "sentiment"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sentiment_majority_baseline"] == 0.5
    assert 0 <= summary["stages"][2]["metrics"]["eval_nsp_accuracy"] <= 1
    for name in ("pretrain", "sentiment-own", "sentiment-minilm"):
        assert (out / name / "training_curves.png").is_file() and (out / name / "all_results.json").is_file()
        ModelCard.load(out / name / "README.md")
    minilm = summary["stages"][4]["metrics"]["eval_accuracy"]
    card = ModelCard.load(out / "sentiment-minilm" / "README.md")
    assert {m.metric_type: m.metric_value for m in card.data.eval_results}["accuracy"] == pytest.approx(minilm)
