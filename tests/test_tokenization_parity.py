"""Byte-exact parity of `tokenizer_from_vocab` with transformers' `BertTokenizer` on MiniLM's vocab.txt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, BertTokenizer
from transformers.models.bert.tokenization_bert import load_vocab

from openbert.tokenization import save_tokenizer, special_token_ids, tokenizer_from_vocab

MINILM_VOCAB_SIZE = 30522

# Texts chosen to exercise every stage of BERT's pipeline.
CORPUS = [
    "Hello, world! This is a simple English sentence.",
    "Héllo wörld — naïve café résumé, Ångström, São Paulo, Ærø, façade",
    "İstanbul ıI ǅ ß ẞ ﬁnancial ΑΒΓ αβγς Σίσυφος",  # case mappings that change length or are contextual
    "北京是中国的首都。東京と大阪、そしてカタカナ。한국어 텍스트도 있습니다",  # CJK split per character
    "I ❤️ emojis 🤗🤗 👨‍👩‍👧‍👦 family 🇫🇷 flags 👍🏽",
    "مرحبا بالعالم، هذا نص عربي",
    "Привет, мир! Ёжик в тумане. Україна",
    "שלום עולם · नमस्ते दुनिया · สวัสดีชาวโลก",
    "control\x00chars\x01here\x7f and\x1b[31m escape \ufffd replacement",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom soft\u00adhyphen e\u0301 combining",
    "line\u2028separator\u2029paragraph\x0bvertical\x0cform\x85next",
    "a" * 100 + " boundary " + "b" * 101 + " over",  # max_input_chars_per_word is 100
    "supercalifragilisticexpialidocious" * 5,
    "!!!???...,,,;;;:::---***###@@@$$$%%%^^^&&&",
    "«quotes» “curly” ‘single’ „low“ — – … ¿¡",
    "",
    " ",
    "\t\n\r \u3000\u00a0\u2003 ",
    "[CLS] literal [SEP] special [MASK] tokens [PAD] [UNK] and [mask] lowercase",
    "##suffix ## #hashtag @mention",
    "URL https://example.com/a?b=c&d=e#frag and e-mail a.b@c.de",
    "Numbers 3.14159, 1,000,000, ½ ² ³ Ⅻ ٣ ໓ and math ∑∫√∞≠≤",
    "naïveCJK中文mixed日本語text",
    "   leading and trailing whitespace   ",
    "Don't won't can't y'all o'clock rock'n'roll",
    " ".join(["The quick brown fox jumps over the lazy dog."] * 120),  # longer than model_max_length
]
PAIRS = list(zip(CORPUS, CORPUS[1:] + CORPUS[:1], strict=True))

# Every setting also asks for offsets, special-token masks and lengths.
COMMON = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_length": True}
SHARED_SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "pad_longest": {"padding": True},
    "pad_multiple_of_8": {"padding": "longest", "pad_to_multiple_of": 8},
    "longest_first": {"truncation": "longest_first", "max_length": 12, "padding": "max_length"},
    "model_max_length": {"truncation": True, "padding": True},
}
# Sliding windows over one text, as for long-document classification.
SINGLE_SETTINGS = {
    **SHARED_SETTINGS,
    "stride_overflow": {"truncation": True, "max_length": 10, "stride": 3, "return_overflowing_tokens": True},
}
# Question/context windows, as for extractive QA (a first text too long to fit is an error in both).
PAIR_SETTINGS = {
    **SHARED_SETTINGS,
    "only_second": {"truncation": "only_second", "max_length": 40},
    "only_second_stride": {
        "truncation": "only_second",
        "max_length": 64,
        "stride": 2,
        "return_overflowing_tokens": True,
        "padding": True,
    },
}


def encode(tokenizer: Any, texts: list[str], pairs: list[str] | None, options: dict[str, Any]) -> Any:
    """Everything an encoding exposes, as plain data; or the error, so failures must match too."""
    try:
        encoding = tokenizer(texts, pairs, **options, **COMMON)
    except BaseException as error:  # the reference's exact failure is part of the behaviour
        # tokenizers reports some bad windowing (stride >= the room left) as a Rust panic, which pyo3
        # raises as PanicException, a BaseException; anything else of that kind must propagate.
        if not isinstance(error, Exception) and type(error).__name__ != "PanicException":
            raise
        return ("raised", type(error).__name__, str(error))
    rows = range(len(encoding["input_ids"]))
    return {
        **{key: list(value) for key, value in encoding.items()},
        "word_ids": [encoding.word_ids(row) for row in rows],
        "sequence_ids": [encoding.sequence_ids(row) for row in rows],
        "tokens": [encoding.tokens(row) for row in rows],
    }


def assert_same(ours: Any, reference: Any, texts: list[str], pairs: list[str] | None, options: dict) -> None:
    """Batch encoding and each example on its own (so one failing pair cannot hide the others)."""
    assert encode(ours, texts, pairs, options) == encode(reference, texts, pairs, options)
    for index, text in enumerate(texts):
        pair = None if pairs is None else [pairs[index]]
        assert encode(ours, [text], pair, options) == encode(reference, [text], pair, options), (text, pair)


@pytest.fixture(scope="module")
def ours(minilm_dir: Path) -> BertTokenizer:
    tokenizer = tokenizer_from_vocab(minilm_dir / "vocab.txt", model_max_length=512)
    assert len(tokenizer) == MINILM_VOCAB_SIZE
    return tokenizer


@pytest.fixture(scope="module")
def reference_from_vocab(minilm_dir: Path) -> BertTokenizer:
    """transformers' BertTokenizer over the vocab.txt, read by transformers' own loader."""
    return BertTokenizer(vocab=load_vocab(str(minilm_dir / "vocab.txt")), model_max_length=512)


@pytest.fixture(scope="module", params=["reference_from_vocab", "from_pretrained_dir"])
def reference(request: pytest.FixtureRequest, minilm_dir: Path) -> BertTokenizer:
    """transformers' BertTokenizer on the same vocabulary, built both documented ways."""
    if request.param == "reference_from_vocab":
        tokenizer = request.getfixturevalue("reference_from_vocab")
    else:  # the checkpoint's own tokenizer.json + tokenizer_config.json (model_max_length 512)
        tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    assert len(tokenizer) == MINILM_VOCAB_SIZE and tokenizer.model_max_length == 512
    return tokenizer


@pytest.mark.parametrize("options", SINGLE_SETTINGS.values(), ids=SINGLE_SETTINGS.keys())
def test_single_texts_match_bert_tokenizer(ours: BertTokenizer, reference: BertTokenizer, options: dict) -> None:
    assert_same(ours, reference, CORPUS, None, options)


@pytest.mark.parametrize("options", PAIR_SETTINGS.values(), ids=PAIR_SETTINGS.keys())
def test_text_pairs_match_bert_tokenizer(ours: BertTokenizer, reference: BertTokenizer, options: dict) -> None:
    first, second = (list(column) for column in zip(*PAIRS, strict=True))
    assert_same(ours, reference, first, second, options)


def test_corpus_reaches_the_edge_cases(ours: BertTokenizer) -> None:
    """The corpus really exercises UNK words, CJK splitting, overflow and truncation (else parity is hollow)."""
    tokens = ours.tokenize(CORPUS[11])  # a 100-character word, then a 101-character one
    assert tokens.count("[UNK]") == 1 and tokens[-2:] == ["[UNK]", "over"]
    assert ours.tokenize("北京") == ["北", "京"]
    assert ours.tokenize("[MASK] x") == ["[MASK]", "x"]
    assert ours.tokenize("Héllo") == ["hello"]
    assert len(ours(CORPUS[-1])["input_ids"]) > 512 and len(ours(CORPUS[-1], truncation=True)["input_ids"]) == 512
    overflow = ours(CORPUS[0], truncation=True, max_length=10, stride=3, return_overflowing_tokens=True)
    assert len(overflow["input_ids"]) > 1


def test_special_token_ids_agree_with_the_checkpoint_config(ours: BertTokenizer, minilm_dir: Path) -> None:
    config = json.loads((minilm_dir / "config.json").read_text())
    ids = special_token_ids(ours)
    assert ids == {
        "pad_token_id": 0,
        "unk_token_id": 100,
        "cls_token_id": 101,
        "sep_token_id": 102,
        "mask_token_id": 103,
    }
    assert ids["pad_token_id"] == config["pad_token_id"] and len(ours) == config["vocab_size"]


def test_saved_and_reloaded_tokenizer_matches(
    ours: BertTokenizer, reference_from_vocab: BertTokenizer, minilm_dir: Path, tmp_path: Path
) -> None:
    """`AutoTokenizer` reloads the saved files without remote code; both it and vocab.txt reproduce the encodings."""
    save_tokenizer(ours, tmp_path)
    assert (tmp_path / "vocab.txt").read_bytes() == (minilm_dir / "vocab.txt").read_bytes()
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    from_vocab_txt = tokenizer_from_vocab(tmp_path / "vocab.txt")
    assert type(reloaded) is BertTokenizer and reloaded.model_max_length == 512
    first, second = (list(column) for column in zip(*PAIRS, strict=True))
    for candidate in (reloaded, from_vocab_txt):
        for options in PAIR_SETTINGS.values():
            assert encode(candidate, first, second, options) == encode(reference_from_vocab, first, second, options)


# Fragments that stress the pipeline when glued together at random.
# fmt: off
FRAGMENTS = [
    "[MASK]", "[CLS]", "[SEP]", "[PAD]", "[mask]", "##", "#", " ", "  ", "\t", "\n", "\u3000", "\u00a0",
    "\u200b", "\ufeff", "\x00", "\x0b", "\u2028", "\ufffd", "é", "e\u0301", "İ", "ß", "ǅ", "Σ", "中", "日本",
    "한", "🤗", "👨‍👩‍👧", "🇫🇷", "مرحبا", "Ёж", "a" * 60, "b" * 101, "word", "Word", "WORD", "don't", ".", ",",
    "!!", "...", "-", "'", '"', "(", ")", "@", "$", "1", "2.5", "½",
]
# fmt: on
RANDOM_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),
)
FUZZ_SINGLE = [SINGLE_SETTINGS[name] for name in ("plain", "longest_first", "stride_overflow")]
FUZZ_PAIR = [PAIR_SETTINGS[name] for name in ("plain", "longest_first", "only_second_stride")]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(first=RANDOM_TEXT, second=RANDOM_TEXT)
def test_random_unicode_matches_bert_tokenizer(
    ours: BertTokenizer, reference_from_vocab: BertTokenizer, first: str, second: str
) -> None:
    for options in FUZZ_SINGLE:
        assert encode(ours, [first], None, options) == encode(reference_from_vocab, [first], None, options)
    for options in FUZZ_PAIR:
        assert encode(ours, [first], [second], options) == encode(reference_from_vocab, [first], [second], options)
    ids = ours(first, second)["input_ids"]
    assert ours.decode(ids) == reference_from_vocab.decode(ids)
