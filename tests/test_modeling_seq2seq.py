"""BERT2BERT: transformers' `EncoderDecoderModel` with openbert halves. Built from openbert and BERT checkpoints,
equal to transformers' BERT2BERT on identical weights (loss, greedy and beam search), trained with
`Seq2SeqTrainer`, saved and loaded, also through remote code where openbert cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import transformers
from test_modeling_parity import TINY, close
from transformers import BertConfig, EncoderDecoderModel, Seq2SeqTrainer, Seq2SeqTrainingArguments

from openbert import modeling

PAD, START, END = 0, 2, 3  # BERT's [PAD], [CLS] (starts the decoder) and [SEP] (ends a generated sequence)


def configure_generation(model: EncoderDecoderModel, max_length: int) -> EncoderDecoderModel:
    model.config.decoder_start_token_id, model.config.pad_token_id = START, PAD
    generation = model.generation_config
    generation.decoder_start_token_id, generation.eos_token_id, generation.pad_token_id = START, END, PAD
    generation.max_length, generation.do_sample = max_length, False
    return model


def source_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    attention_mask = torch.ones(3, 8, dtype=torch.long)
    attention_mask[1, 5:] = 0
    attention_mask[2, 3:] = 0
    input_ids = torch.randint(5, TINY["vocab_size"], (3, 8), generator=generator) * attention_mask
    return dict(input_ids=input_ids, attention_mask=attention_mask)


@pytest.fixture(scope="module")
def bert_encoder_dir(tmp_path_factory):
    """A transformers BERT encoder checkpoint with weights moved off their init (so that outputs differ by input)."""
    torch.manual_seed(0)
    model = transformers.BertModel(BertConfig(**TINY))
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.2)
    directory = tmp_path_factory.mktemp("bert")
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def bert2bert_pair(bert_encoder_dir):
    """transformers' BERT2BERT and openbert's, warm-started from the same BERT checkpoint, with the same
    (new, randomly initialised) cross-attention weights."""
    theirs = EncoderDecoderModel.from_encoder_decoder_pretrained(bert_encoder_dir, bert_encoder_dir)
    ours = modeling.OpenBertEncoderDecoderModel.from_encoder_decoder_pretrained(bert_encoder_dir, bert_encoder_dir)
    assert type(ours.encoder) is modeling.OpenBertModel and type(ours.decoder) is modeling.OpenBertLMHeadModel
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            if "crossattention" in name:
                param.add_(torch.randn_like(param) * 0.2)
    missing = ours.load_state_dict(theirs.state_dict(), strict=False).missing_keys
    assert not missing
    return configure_generation(theirs, 10).eval(), configure_generation(ours, 10).eval()


def test_bert2bert_loss_matches_transformers(bert2bert_pair):
    theirs, ours = bert2bert_pair
    labels = torch.tensor([[17, 40, 8, END, -100], [9, 9, 31, 77, END], [60, END, -100, -100, -100]])
    with torch.no_grad():
        expected, actual = theirs(**source_batch(), labels=labels), ours(**source_batch(), labels=labels)
    close(actual.loss, expected.loss)
    close(actual.logits, expected.logits)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_bert2bert_generates_what_transformers_generates(bert2bert_pair, num_beams):
    """Greedy and beam search: token for token transformers' output, with the cache and without it."""
    theirs, ours = bert2bert_pair
    with torch.no_grad():
        expected = theirs.generate(**source_batch(), num_beams=num_beams)
        cached = ours.generate(**source_batch(), num_beams=num_beams)
        uncached = ours.generate(**source_batch(), num_beams=num_beams, use_cache=False)
    assert torch.equal(cached, expected) and torch.equal(uncached, expected)
    assert len({tuple(row) for row in cached.tolist()}) == 3  # each source its own output


def test_encoder_decoder_model_builds_openbert_from_openbert_checkpoints(tmp_path):
    """transformers' own `EncoderDecoderModel.from_encoder_decoder_pretrained` on openbert checkpoints gives an
    openbert encoder and decoder (the decoder through AutoModelForCausalLM), with new cross-attention."""
    torch.manual_seed(0)
    modeling.OpenBertModel(modeling.OpenBertConfig(**TINY)).save_pretrained(tmp_path)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path, tmp_path)
    assert type(model.encoder) is modeling.OpenBertModel and type(model.decoder) is modeling.OpenBertLMHeadModel
    assert model.decoder.config.is_decoder and model.decoder.config.add_cross_attention
    assert not model.encoder.config.is_decoder
    close(model.decoder.bert.encoder.layer[0].attention.self.query.weight,
          model.encoder.encoder.layer[0].attention.self.query.weight)


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, sources: list[list[int]], targets: list[list[int]]):
        self.rows = [dict(input_ids=s, labels=t) for s, t in zip(sources, targets, strict=True)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.rows[index]


def _collate(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    """Pad sources with [PAD] (mask 0) and labels with -100 (no loss); the model makes decoder inputs."""
    def pad(sequences: list[list[int]], value: int) -> torch.Tensor:
        width = max(map(len, sequences))
        return torch.tensor([sequence + [value] * (width - len(sequence)) for sequence in sequences])

    input_ids = pad([row["input_ids"] for row in rows], PAD)
    return dict(input_ids=input_ids, attention_mask=(input_ids != PAD).long(),
                labels=pad([row["labels"] for row in rows], -100))


def twenty_pairs() -> tuple[list[list[int]], list[list[int]]]:
    """20 random sources of 3-8 tokens, each with its own random target of 2-5 tokens and [SEP]."""
    generator = torch.Generator().manual_seed(5)
    lengths = torch.randint(3, 9, (20,), generator=generator).tolist()
    sources = [torch.randint(5, 40, (n,), generator=generator).tolist() for n in lengths]
    target_lengths = torch.randint(2, 6, (20,), generator=generator).tolist()
    targets = [torch.randint(5, 40, (n,), generator=generator).tolist() + [END] for n in target_lengths]
    return sources, targets


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-layer openbert BERT2BERT trained with Seq2SeqTrainer on 20 pairs; its greedy generations on them."""
    torch.manual_seed(0)
    config = modeling.OpenBertConfig(vocab_size=40, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, max_position_embeddings=16, hidden_dropout_prob=0,
                                     attention_probs_dropout_prob=0)
    root = tmp_path_factory.mktemp("seq2seq")
    modeling.OpenBertModel(config).save_pretrained(root / "encoder")
    model = modeling.OpenBertEncoderDecoderModel.from_encoder_decoder_pretrained(root / "encoder", root / "encoder")
    configure_generation(model, 8)
    sources, targets = twenty_pairs()
    args = Seq2SeqTrainingArguments(
        output_dir=str(root / "run"), per_device_train_batch_size=10, learning_rate=3e-3, max_steps=120,
        save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0, predict_with_generate=True,
        per_device_eval_batch_size=20,
    )
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=_Pairs(sources, targets), data_collator=_collate)
    trainer.train()
    generated = trainer.predict(_Pairs(sources, targets)).predictions
    return dict(model=model.eval(), root=root, sources=sources, targets=targets, generated=generated)


def _strip(generated: torch.Tensor | list) -> list[list[int]]:
    """Generated rows from after the start token to the first [SEP], included (what follows is padding: [PAD],
    -100 from Seq2SeqTrainer, or [SEP] after beam search)."""
    rows = []
    for row in torch.as_tensor(generated).tolist():
        row = row[1:]
        rows.append(row[:row.index(END) + 1] if END in row else row)
    return rows


def test_two_layer_model_overfits_twenty_pairs(trained):
    """Seq2SeqTrainer with predict_with_generate: every target reproduced exactly, [SEP] included."""
    assert _strip(trained["generated"]) == trained["targets"]


def test_trained_model_saves_and_loads(trained):
    """Saved, then loaded as transformers' EncoderDecoderModel and as openbert's class: same generations."""
    directory = trained["root"] / "saved"
    trained["model"].save_pretrained(directory)
    inputs = _collate([dict(input_ids=s, labels=t) for s, t in zip(trained["sources"], trained["targets"],
                                                                     strict=True)])
    del inputs["labels"]
    with torch.no_grad():
        expected = trained["model"].generate(**inputs, num_beams=2)
        for model_class in (EncoderDecoderModel, modeling.OpenBertEncoderDecoderModel):
            model = model_class.from_pretrained(directory).eval()
            assert type(model.decoder) is modeling.OpenBertLMHeadModel
            assert torch.equal(model.generate(**inputs, num_beams=2), expected)
    assert _strip(expected) == trained["targets"]


def test_remote_code_in_a_process_without_openbert(trained, tmp_path):
    """`AutoModelForSeq2SeqLM.from_pretrained(..., trust_remote_code=True)` where `import modeling` fails: the
    checkpoint's own code builds the model, which generates the trained targets (greedy and beam search)."""
    directory = trained["root"] / "remote"
    trained["model"].save_pretrained(directory)
    inputs = _collate([dict(input_ids=s, labels=t) for s, t in zip(trained["sources"], trained["targets"],
                                                                     strict=True)])
    torch.save({"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}, tmp_path / "in.pt")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["openbert"] = None  # make the installed package unimportable
        import torch, transformers
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained({str(directory)!r}, trust_remote_code=True).eval()
        inputs = torch.load({str(tmp_path / "in.pt")!r})
        with torch.no_grad():
            outputs = [model.generate(**inputs, num_beams=beams) for beams in (1, 2)]
        torch.save(dict(module=type(model.decoder).__module__, name=type(model).__name__, outputs=outputs),
                   {str(tmp_path / "out.pt")!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=300)
    result = torch.load(tmp_path / "out.pt")
    assert result["name"] == "OpenBertEncoderDecoderModel" and result["module"].startswith("transformers_modules")
    for generated in result["outputs"]:
        assert _strip(generated) == trained["targets"]
