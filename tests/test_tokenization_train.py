"""Training a WordPiece vocabulary on real text (WikiText-2), saving it, and the command line."""

from __future__ import annotations

import json
import re
import runpy
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, BertTokenizer

from openbert.tokenization import special_token_ids, tokenizer_from_vocab, train_tokenizer
from openbert.tokenization.train import main

VOCAB_SIZE = 4000
TRAIN_ARTICLES = 50  # of WikiText-2's 60 validation articles; the other 10 are held out


def is_article_title(line: str) -> bool:
    """WikiText marks an article as ` = Title = ` and its sections as ` = = Section = = `."""
    return line.startswith(" = ") and not line.startswith(" = = ")


@pytest.fixture(scope="module")
def wikitext(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The training file (first 50 articles) and the held-out non-blank lines (last 10 articles)."""
    lines = (shared_data / "wikitext" / "wiki.valid.raw").read_text(encoding="utf-8").splitlines()
    cut = [index for index, line in enumerate(lines) if is_article_title(line)][TRAIN_ARTICLES]
    train_file = tmp_path_factory.mktemp("wikitext") / "wiki.train.txt"
    train_file.write_text("\n".join(lines[:cut]) + "\n", encoding="utf-8")
    return train_file, [line for line in lines[cut:] if line.strip()]


@pytest.fixture(scope="module")
def trained(wikitext: tuple[Path, list[str]]) -> BertTokenizer:
    return train_tokenizer(wikitext[0], vocab_size=VOCAB_SIZE, show_progress=False)


def test_trained_vocabulary_has_the_requested_size_and_fixed_special_ids(trained: BertTokenizer) -> None:
    vocab = trained.get_vocab()
    assert len(trained) == trained.vocab_size == len(vocab) == VOCAB_SIZE
    assert sorted(vocab.values()) == list(range(VOCAB_SIZE))
    assert special_token_ids(trained) == {
        "pad_token_id": 0,
        "unk_token_id": 1,
        "cls_token_id": 2,
        "sep_token_id": 3,
        "mask_token_id": 4,
    }
    assert trained.model_max_length == 512
    # Every letter and digit exists both word-initially and as a "##" continuation, so none of them can
    # turn a whole word into [UNK].
    for char in "abcdefghijklmnopqrstuvwxyz0123456789":
        assert char in vocab and f"##{char}" in vocab, char
    assert "##." not in vocab  # punctuation is always split off, so it never continues a word
    assert any(len(token) > 6 and token.isalpha() for token in vocab)  # merges produced whole words


def test_unknown_token_rate_on_held_out_text_is_below_one_percent(
    trained: BertTokenizer, wikitext: tuple[Path, list[str]]
) -> None:
    ids = trained(wikitext[1], add_special_tokens=False)["input_ids"]
    total = sum(len(row) for row in ids)
    unknown = sum(row.count(trained.unk_token_id) for row in ids)
    assert total > 40_000
    assert unknown / total < 0.01, f"{unknown} of {total} tokens are [UNK]"


def test_training_is_deterministic(trained: BertTokenizer, wikitext: tuple[Path, list[str]]) -> None:
    """Same corpus, same vocabulary with the same ids (tokenizers' trainer alone is not: tokenizers#1794)."""
    again = train_tokenizer(wikitext[0], vocab_size=VOCAB_SIZE, show_progress=False)
    assert again.get_vocab() == trained.get_vocab()


def test_datasets_train_the_same_vocabulary_as_the_file(
    trained: BertTokenizer, wikitext: tuple[Path, list[str]]
) -> None:
    from datasets import Dataset

    lines = wikitext[0].read_text(encoding="utf-8").splitlines()
    dataset = Dataset.from_dict({"id": list(range(len(lines))), "content": lines})
    streamed = dataset.to_iterable_dataset(num_shards=4)
    for corpus in (dataset, streamed):
        tokenizer = train_tokenizer(corpus, vocab_size=VOCAB_SIZE, text_column="content", show_progress=False)
        assert tokenizer.get_vocab() == trained.get_vocab()


# Natural sentences: their spacing is what decoding restores (" ," -> ",", and with
# clean_up_tokenization_spaces=True also " ' s" -> "'s"; transformers 5 leaves that off by default).
NATURAL_SENTENCES = [
    "The film was released in 1998, and it was a success.",
    "However, the team's season ended early!",
    "Was it the first time? No, it wasn't.",
    "Ángel García moved to São Paulo in 2003.",
]


@pytest.mark.parametrize("sentence", NATURAL_SENTENCES)
def test_decode_of_encode_gives_the_normalized_sentence(trained: BertTokenizer, sentence: str) -> None:
    ids = trained(sentence)["input_ids"]
    assert trained.unk_token_id not in ids
    normalized = trained.backend_tokenizer.normalizer.normalize_str(sentence)
    assert normalized == sentence.lower().replace("á", "a").replace("í", "i").replace("ã", "a")
    assert trained.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True) == normalized


@pytest.fixture(scope="module")
def held_out_words(trained: BertTokenizer, wikitext: tuple[Path, list[str]]) -> list[str]:
    """Distinct alphanumeric words of the held-out articles that tokenize without [UNK], in original case."""
    words = sorted({word for line in wikitext[1] for word in line.split() if word.isalnum()})
    return [word for word in words if trained.unk_token not in trained.tokenize(word)]


@settings(max_examples=50, deadline=None, derandomize=True)
@given(data=st.data())
def test_decode_of_encode_round_trips_in_vocabulary_text(
    trained: BertTokenizer, held_out_words: list[str], data: st.DataObject
) -> None:
    words = data.draw(st.lists(st.sampled_from(held_out_words), min_size=1, max_size=40))
    text = " ".join(words)
    ids = trained(text)["input_ids"]
    assert trained.decode(ids, skip_special_tokens=True) == trained.backend_tokenizer.normalizer.normalize_str(text)


def test_saved_tokenizer_loads_with_auto_tokenizer(wikitext: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Stock class, BERT's pipeline in tokenizer.json, model_max_length and casing survive a reload."""
    tokenizer = train_tokenizer(
        wikitext[0],
        vocab_size=VOCAB_SIZE,
        lowercase=False,
        model_max_length=128,
        output_dir=tmp_path,
        show_progress=False,
    )
    assert {path.name for path in tmp_path.iterdir()} >= {"tokenizer.json", "tokenizer_config.json", "vocab.txt"}

    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer" and "auto_map" not in config
    assert config["model_max_length"] == 128 and config["do_lower_case"] is False

    pipeline = json.loads((tmp_path / "tokenizer.json").read_text())
    assert pipeline["normalizer"] == {
        "type": "BertNormalizer",
        "clean_text": True,
        "handle_chinese_chars": True,
        "strip_accents": None,
        "lowercase": False,
    }
    assert pipeline["pre_tokenizer"] == {"type": "BertPreTokenizer"}
    assert {key: pipeline["model"][key] for key in ("type", "unk_token", "continuing_subword_prefix")} == {
        "type": "WordPiece",
        "unk_token": "[UNK]",
        "continuing_subword_prefix": "##",
    }
    assert pipeline["model"]["max_input_chars_per_word"] == 100
    assert pipeline["decoder"]["type"] == "WordPiece" and pipeline["decoder"]["prefix"] == "##"
    assert pipeline["post_processor"]["special_tokens"] == {
        "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
        "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]},
    }
    assert [(token["id"], token["content"], token["special"]) for token in pipeline["added_tokens"]] == [
        (0, "[PAD]", True),
        (1, "[UNK]", True),
        (2, "[CLS]", True),
        (3, "[SEP]", True),
        (4, "[MASK]", True),
    ]
    vocab_lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines == sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)

    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    from_vocab = tokenizer_from_vocab(tmp_path, lowercase=False, model_max_length=128)
    texts, pairs = wikitext[1][:50], wikitext[1][50:100]
    expected = tokenizer(texts, pairs, truncation=True, padding=True, return_offsets_mapping=True)
    for candidate in (reloaded, from_vocab):
        assert type(candidate) is BertTokenizer and candidate.model_max_length == 128
        assert candidate(texts, pairs, truncation=True, padding=True, return_offsets_mapping=True) == expected
    # Case is kept: "The" and "the" are different tokens.
    assert tokenizer.tokenize("The") != tokenizer.tokenize("the")


def test_command_line_trains_saves_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"text": f"sentence number {index} about tokenizers and vocabularies"} for index in range(300)]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    output = tmp_path / "tokenizer"
    main(["--train_files", str(corpus), "--vocab_size", "120", "--output_dir", str(output), "--min_frequency", "1",
          "--no_lowercase", "--model-max-length", "64"])
    out, err = capsys.readouterr()
    assert "Scanning characters" in err and "Counting words" in err and "Computing WordPiece merges" in err
    assert re.fullmatch(
        rf"Saved a 120-token WordPiece tokenizer to {re.escape(str(output))} \(pad_token_id=0, .*\)\n", out
    )
    loaded = AutoTokenizer.from_pretrained(output)
    assert len(loaded) == 120 and loaded.model_max_length == 64
    assert loaded.tokenize("Sentence tokenizers") != loaded.tokenize("sentence tokenizers")


def test_command_line_runs_as_a_module_and_reports_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m openbert.tokenization.train` with a missing file exits with status 2 and names the file."""
    missing = tmp_path / "missing.txt"
    monkeypatch.delitem(sys.modules, "openbert.tokenization.train")  # as in a fresh `python -m` process
    monkeypatch.setattr(sys, "argv", ["train", "--train_files", str(missing), "--output_dir", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("openbert.tokenization.train", run_name="__main__")
    assert exit_info.value.code == 2
    assert f"no data file found for {missing}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
