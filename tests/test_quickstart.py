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


def card_section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def check_card(directory: Path, *, base_model: str | None, base_model_text: str, train_data: str,
               eval_data: str) -> None:
    """Every statement of a run's card against what the run recorded."""
    card = ModelCard.load(directory / "README.md")
    text = " ".join(card.text.split())
    state = json.loads((directory / "trainer_state.json").read_text())
    assert card.data.base_model == base_model
    assert card.data.datasets is None  # only Hub data sets belong there; these are local files
    assert base_model_text in text.split("## Model details")[0]
    assert train_data in " ".join(card_section(card.text, "Training data").split())
    assert eval_data not in " ".join(card_section(card.text, "Training data").split())
    assert f"Measured at the end of training on {eval_data}." in text
    epochs = f"{state['epoch']:.3g}"
    assert f"Optimisation steps: {state['global_step']:,} ({epochs} epoch{'' if epochs == '1' else 's'})" in text
    assert "site-packages" not in text and "`model`" not in text
    results = json.loads((directory / "all_results.json").read_text())
    for metric in card.data.eval_results:
        assert results[f"eval_{metric.metric_type}"] == pytest.approx(metric.metric_value)


def test_quickstart_end_to_end_on_a_tiny_budget(tmp_path, cache, monkeypatch):
    """The whole job on a tiny budget, every stage's outputs, and cards that tell the truth about each run."""
    monkeypatch.setenv("OPENBERT_CACHE", str(cache))
    sentences = [("a wonderful, delightful film", "positive"), ("a dull and awful mess", "negative"),
                 ("I loved every minute", "positive"), ("boring, I hated it", "negative")] * 8
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                                                         for t, y in sentences))
    documents = [f"Review {i} starts here. It goes on for a while. Then it ends well." for i in range(40)]
    (tmp_path / "corpus.txt").write_text("\n\n".join(d.replace(". ", ".\n") for d in documents) + "\n")
    out = tmp_path / "out"
    stages = quickstart.main([
        "--output_dir", str(out), "--model_size", "tiny", "--vocab_size", "1000", "--pretrain_steps", "6",
        "--pretrain_batch_size", "8", "--max_seq_length", "64", "--dupe_factor", "1",
        "--pretrain_files", str(tmp_path / "corpus.txt"), "--pretrain_validation_percentage", "10",
        "--sentiment_train_samples", "32", "--sentiment_test_samples", "32", "--own_sentiment_epochs", "1",
        "--minilm_sentiment_epochs", "1",
        "--sentiment_train_file", str(tmp_path / "train.jsonl"), "--sentiment_test_file", str(tmp_path / "test.jsonl"),
    ])
    assert [s.name for s in stages[3:]] == [quickstart.RANDOM_INIT_STAGE, quickstart.OWN_STAGE,
                                            quickstart.MINILM_STAGE]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sentiment_majority_baseline"] == 0.5
    pretraining = summary["stages"][2]["metrics"]
    assert 0 <= pretraining["eval_nsp_accuracy"] <= 1 and 0.5 <= pretraining["eval_nsp_majority_accuracy"] <= 1
    for name in ("pretrain", "sentiment-random-init", "sentiment-own", "sentiment-minilm"):
        assert (out / name / "all_results.json").is_file()
    # A curve needs two logged points: pretraining logs every 1-2 steps here, the fine-tunings take one step each.
    assert (out / "pretrain" / "training_curves.png").is_file()
    assert not (out / "sentiment-own" / "training_curves.png").exists()
    sentiment = {"train_data": "`train.jsonl` (local file)", "eval_data": "`test.jsonl` (local file)"}
    check_card(out / "pretrain", base_model=None, base_model_text="pretrained from scratch",
               train_data="`corpus.txt` (local file)",
               eval_data="`corpus.txt` (local file), its last 10% of documents, held out from training")
    check_card(out / "sentiment-minilm", base_model=quickstart.MINILM_HUB_ID,
               base_model_text=f"[{quickstart.MINILM_HUB_ID}](https://huggingface.co/{quickstart.MINILM_HUB_ID})",
               **sentiment)
    check_card(out / "sentiment-own", base_model=None,
               base_model_text=f"the quickstart's pretrained model (`{out / 'pretrain'}`)", **sentiment)
    check_card(out / "sentiment-random-init", base_model=None, base_model_text="random initialisation", **sentiment)
    own_accuracy = summary["stages"][4]["metrics"]["eval_accuracy"]
    assert json.loads((out / "sentiment-own" / "all_results.json").read_text())["eval_accuracy"] == own_accuracy
