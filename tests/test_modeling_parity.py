"""Numerical parity with transformers' BERT on identical weights, for every head, eager and sdpa.

Each transformers model is saved as a BERT checkpoint and loaded into the openbert class through
`from_pretrained`, so these tests also cover loading BERT checkpoints.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers import BertConfig

from openbert import modeling
from openbert.modeling import modeling_openbert, packed_tokens

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2)
BATCH, SEQ = 3, 12
IMPLS = ["eager", "sdpa"]


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def make_inputs(vocab_size: int = 99) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, vocab_size, (BATCH, SEQ), generator=generator)
    attention_mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    attention_mask[1, 8:] = 0
    attention_mask[2, 4:] = 0
    input_ids[attention_mask == 0] = 0
    token_type_ids = torch.zeros(BATCH, SEQ, dtype=torch.long)
    token_type_ids[:, 5:] = 1
    token_type_ids[attention_mask == 0] = 0
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


def mlm_labels(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    labels = torch.full_like(inputs["input_ids"], -100)
    for row, col in [(0, 1), (0, 7), (1, 2), (1, 6), (2, 3)]:
        labels[row, col] = inputs["input_ids"][row, col]
    labels[0, 7] = 5  # a label that differs from the visible token, as after [MASK] replacement
    return labels


def load_pair(tmp_path, hf_class, ob_class, impl: str, unpad: bool = True, **config_kwargs):
    """A randomly initialised transformers model, saved and loaded back into both libraries."""
    torch.manual_seed(0)
    hf_model = hf_class(BertConfig(**TINY, **config_kwargs))
    with torch.no_grad():  # move every weight off its init value so LayerNorms and biases matter too
        for param in hf_model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    hf_model.save_pretrained(tmp_path)
    hf_model = hf_class.from_pretrained(tmp_path, attn_implementation=impl).eval()
    ob_model = ob_class.from_pretrained(tmp_path, attn_implementation=impl, unpad_inputs=unpad).eval()
    return hf_model, ob_model


def real(x: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The entries of a `(batch, seq, ...)` tensor at real (non-padding) positions."""
    return x[inputs["attention_mask"].bool()]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("unpad", [True, False])
def test_encoder_parity(tmp_path, impl, unpad):
    hf_model, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, impl, unpad)
    inputs = make_inputs()
    with torch.no_grad():
        expected, actual = hf_model(**inputs), ob_model(**inputs)
    close(real(actual.last_hidden_state, inputs), real(expected.last_hidden_state, inputs))
    close(actual.pooler_output, expected.pooler_output)
    if unpad:  # documented: padded positions hold zeros when the dense layers skip padding
        assert torch.count_nonzero(actual.last_hidden_state[inputs["attention_mask"] == 0]) == 0
    else:  # the padded path computes padding exactly as transformers does
        close(actual.last_hidden_state, expected.last_hidden_state)


@pytest.mark.parametrize("impl", IMPLS)
def test_pretraining_parity(tmp_path, impl):
    hf_model, ob_model = load_pair(tmp_path, transformers.BertForPreTraining, modeling.OpenBertForPreTraining, impl)
    inputs = make_inputs()
    labels = mlm_labels(inputs)
    nsp = torch.tensor([0, 1, 1])
    with torch.no_grad():
        expected = hf_model(**inputs, labels=labels, next_sentence_label=nsp)
        actual = ob_model(**inputs, labels=labels, next_sentence_label=nsp)
    close(actual.loss, expected.loss)
    assert actual.prediction_logits.shape == (BATCH, SEQ, TINY["vocab_size"])
    close(real(actual.prediction_logits, inputs), real(expected.prediction_logits, inputs))
    close(actual.seq_relationship_logits, expected.seq_relationship_logits)
    # MLM + NSP = loss; each part equals the cross-entropy on transformers' logits.
    vocab_logits = expected.prediction_logits.view(-1, TINY["vocab_size"])
    close(actual.mlm_loss, torch.nn.functional.cross_entropy(vocab_logits, labels.view(-1)))
    close(actual.nsp_loss, torch.nn.functional.cross_entropy(expected.seq_relationship_logits, nsp))
    with torch.no_grad():
        close(ob_model(**inputs, labels=labels).loss, actual.mlm_loss)
        close(ob_model(**inputs, next_sentence_label=nsp).loss, actual.nsp_loss)


@pytest.mark.parametrize("impl", IMPLS)
def test_masked_lm_parity(tmp_path, impl):
    hf_model, ob_model = load_pair(tmp_path, transformers.BertForMaskedLM, modeling.OpenBertForMaskedLM, impl)
    inputs = make_inputs()
    labels = mlm_labels(inputs)
    with torch.no_grad():
        expected, actual = hf_model(**inputs, labels=labels), ob_model(**inputs, labels=labels)
    close(actual.loss, expected.loss)
    assert actual.logits.shape == (BATCH, SEQ, TINY["vocab_size"])
    close(real(actual.logits, inputs), real(expected.logits, inputs))


@pytest.mark.parametrize("head", [modeling.OpenBertForMaskedLM, modeling.OpenBertForPreTraining])
def test_sparse_prediction_projects_labelled_rows_only(tmp_path, head):
    """`sparse_prediction=True` (pretraining's setting): with labels, the logits are the labelled rows of the
    full logits, in row-major order, and the loss is the same; without labels, the full logits."""
    hf_class = getattr(transformers, head.__name__.replace("OpenBert", "Bert"))
    hf_model, ob_model = load_pair(tmp_path, hf_class, head, "sdpa", sparse_prediction=True)
    inputs = make_inputs()
    labels = mlm_labels(inputs)
    logits_name = "logits" if head is modeling.OpenBertForMaskedLM else "prediction_logits"
    with torch.no_grad():
        expected, actual = hf_model(**inputs, labels=labels), ob_model(**inputs, labels=labels)
        without_labels = ob_model(**inputs)
    close(getattr(actual, logits_name), getattr(expected, logits_name)[labels != -100])
    assert getattr(actual, logits_name).shape == (int((labels != -100).sum()), TINY["vocab_size"])
    vocab_logits = getattr(expected, logits_name).view(-1, TINY["vocab_size"])
    mlm_loss = actual.loss if head is modeling.OpenBertForMaskedLM else actual.mlm_loss
    close(mlm_loss, torch.nn.functional.cross_entropy(vocab_logits, labels.view(-1)))
    close(real(getattr(without_labels, logits_name), inputs), real(getattr(expected, logits_name), inputs))


def test_sparse_prediction_without_any_label_has_zero_loss():
    """A batch with nothing masked contributes nothing to training (dense BERT gives NaN: a mean of nothing)."""
    config = modeling.OpenBertConfig(**TINY, sparse_prediction=True)
    model = modeling.OpenBertForMaskedLM(config)
    inputs = make_inputs()
    loss = model(**inputs, labels=torch.full_like(inputs["input_ids"], -100)).loss
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in model.parameters())


@pytest.mark.parametrize("impl", IMPLS)
def test_next_sentence_parity(tmp_path, impl):
    hf_model, ob_model = load_pair(
        tmp_path, transformers.BertForNextSentencePrediction, modeling.OpenBertForNextSentencePrediction, impl
    )
    inputs, labels = make_inputs(), torch.tensor([1, 0, 1])
    with torch.no_grad():
        expected, actual = hf_model(**inputs, labels=labels), ob_model(**inputs, labels=labels)
    close(actual.logits, expected.logits)
    close(actual.loss, expected.loss)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "num_labels, labels",
    [
        (3, torch.tensor([2, 0, 1])),  # single-label classification
        (1, torch.tensor([0.5, -1.0, 2.0])),  # regression
        (3, torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])),  # multi-label
    ],
)
def test_sequence_classification_parity(tmp_path, impl, num_labels, labels):
    hf_model, ob_model = load_pair(
        tmp_path, transformers.BertForSequenceClassification, modeling.OpenBertForSequenceClassification, impl,
        num_labels=num_labels,
    )
    inputs = make_inputs()
    with torch.no_grad():
        expected, actual = hf_model(**inputs, labels=labels), ob_model(**inputs, labels=labels)
    close(actual.logits, expected.logits)
    close(actual.loss, expected.loss)
    assert ob_model.config.problem_type == hf_model.config.problem_type


@pytest.mark.parametrize("impl", IMPLS)
def test_question_answering_parity(tmp_path, impl):
    hf_model, ob_model = load_pair(
        tmp_path, transformers.BertForQuestionAnswering, modeling.OpenBertForQuestionAnswering, impl
    )
    inputs = make_inputs()
    # An out-of-range end position is clamped and ignored, as transformers does.
    positions = dict(start_positions=torch.tensor([1, 3, 0]), end_positions=torch.tensor([4, 100, 2]))
    with torch.no_grad():
        expected, actual = hf_model(**inputs, **positions), ob_model(**inputs, **positions)
    close(real(actual.start_logits, inputs), real(expected.start_logits, inputs))
    close(real(actual.end_logits, inputs), real(expected.end_logits, inputs))
    # openbert keeps padding out of the softmax; on transformers' logits with padding masked the loss agrees.
    padding = inputs["attention_mask"] == 0
    assert bool((actual.start_logits[padding] == torch.finfo(torch.float32).min).all())
    masked = [logits.masked_fill(padding, torch.finfo(logits.dtype).min)
              for logits in (expected.start_logits, expected.end_logits)]
    ignored = SEQ
    expected_loss = sum(
        torch.nn.functional.cross_entropy(logits, positions.clamp(0, ignored), ignore_index=ignored)
        for logits, positions in zip(masked, positions.values(), strict=True)
    ) / 2
    close(actual.loss, expected_loss)
    # Without padding, the loss is transformers' exactly.
    full = {name: tensor[:1] for name, tensor in inputs.items()}
    first = {name: tensor[:1] for name, tensor in positions.items()}
    with torch.no_grad():
        close(ob_model(**full, **first).loss, hf_model(**full, **first).loss)


@pytest.mark.parametrize("impl", IMPLS)
def test_token_classification_parity(tmp_path, impl):
    hf_model, ob_model = load_pair(
        tmp_path, transformers.BertForTokenClassification, modeling.OpenBertForTokenClassification, impl,
        num_labels=5,
    )
    inputs = make_inputs()
    labels = torch.randint(0, 5, (BATCH, SEQ), generator=torch.Generator().manual_seed(2))
    labels[inputs["attention_mask"] == 0] = -100
    with torch.no_grad():
        expected, actual = hf_model(**inputs, labels=labels), ob_model(**inputs, labels=labels)
    close(real(actual.logits, inputs), real(expected.logits, inputs))
    close(actual.loss, expected.loss)


@pytest.mark.parametrize("impl", IMPLS)
def test_multiple_choice_parity(tmp_path, impl):
    hf_model, ob_model = load_pair(
        tmp_path, transformers.BertForMultipleChoice, modeling.OpenBertForMultipleChoice, impl
    )
    inputs = {name: tensor.view(1, BATCH, SEQ) for name, tensor in make_inputs().items()}  # 3 choices
    labels = torch.tensor([2])
    with torch.no_grad():
        expected, actual = hf_model(**inputs, labels=labels), ob_model(**inputs, labels=labels)
    assert actual.logits.shape == (1, BATCH)
    close(actual.logits, expected.logits)
    close(actual.loss, expected.loss)


def test_bert_prefix_and_bare_encoder_checkpoints_load_into_heads(tmp_path):
    """A bare BertModel checkpoint (keys without `bert.`) loads into a head: encoder weights match, the new
    head is reported as missing, as transformers reports it."""
    torch.manual_seed(0)
    bare = transformers.BertModel(BertConfig(**TINY))
    bare.save_pretrained(tmp_path)
    model, info = modeling.OpenBertForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert {"classifier.weight", "classifier.bias"} <= set(info["missing_keys"])
    assert not info["unexpected_keys"]
    close(model.bert.embeddings.word_embeddings.weight, bare.embeddings.word_embeddings.weight)
    close(model.bert.encoder.layer[1].output.dense.weight, bare.encoder.layer[1].output.dense.weight)


def test_minilm_checkpoint_parity(minilm_dir):
    """The real pretrained MiniLM-L6-H384 through openbert equals transformers' BertModel on real sentences."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "BERT reads a sentence in both directions at once.",
        "Short one.",
        ("A question about models", "paired with a second segment that is somewhat longer than the first"),
    ]
    batch = tokenizer([s for s in sentences if isinstance(s, str)], padding=True, return_tensors="pt")
    pair = tokenizer(*sentences[3], return_tensors="pt")
    hf_model = transformers.BertModel.from_pretrained(minilm_dir).eval()
    ob_model = modeling.OpenBertModel.from_pretrained(minilm_dir).eval()
    assert ob_model.config.num_hidden_layers == 6 and ob_model.config.hidden_size == 384
    for inputs in (batch, pair):
        inputs = dict(inputs)
        with torch.no_grad():
            expected, actual = hf_model(**inputs), ob_model(**inputs)
        mask = inputs["attention_mask"].bool()
        diff = (actual.last_hidden_state[mask] - expected.last_hidden_state[mask]).abs().max()
        assert diff <= 1e-5, f"max abs diff {diff}"
        close(actual.pooler_output, expected.pooler_output)


def test_length_groups_join_while_padding_costs_less_than_a_call():
    # Longest first: 9 and 9 share a group (no waste), 7 joins them (81 - 49 = 32 < 40), 5 does not (56): it
    # starts a group that 1 joins (25 - 1 = 24).
    assert packed_tokens.group_by_length([5, 9, 7, 9, 1], max_waste=40) == [[1, 3, 2], [0, 4]]
    assert packed_tokens.group_by_length([5, 9, 7, 9, 1], max_waste=0) == [[1, 3], [2], [0], [4]]


@pytest.mark.parametrize("groups", ["per length", "mixed", "one (padded layout)"])
def test_sdpa_paths_match_transformers_on_any_mask(tmp_path, monkeypatch, groups):
    """On CPU, sdpa with padding attends on packed tokens in groups of similar lengths (one group per length;
    lengths 9 and 8 in one masked group, 1 alone) or on the padded layout (one group): each gives transformers'
    outputs and gradients for left padding, holes in the mask and a row with one real token."""
    calls, attend = [], modeling_openbert.attend_packed
    monkeypatch.setattr(modeling_openbert, "attend_packed",
                        lambda *args: calls.append(args[1].groups.shapes) or attend(*args))
    hf_model, ob_model = load_pair(tmp_path, transformers.BertModel, modeling.OpenBertModel, "sdpa")
    max_waste = {"per length": 0, "mixed": 50, "one (padded layout)": 1e12}[groups]  # 9² - 8² = 17, 9² - 1² = 80
    monkeypatch.setattr(packed_tokens, "ATTENTION_CALL_COST", max_waste * ob_model.config.hidden_size)
    inputs = make_inputs()
    inputs["attention_mask"] = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                                             [1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0],
                                             [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    outputs = {}
    for name, model in (("ours", ob_model), ("theirs", hf_model)):
        model.zero_grad()
        output = model(**inputs)
        # A loss on real positions only (the pooler reads position 0, padding in the left-padded row).
        real(output.last_hidden_state, inputs).square().sum().backward()
        outputs[name] = output
    close(real(outputs["ours"].last_hidden_state, inputs), real(outputs["theirs"].last_hidden_state, inputs))
    theirs = {name: param.grad for name, param in hf_model.named_parameters() if param.grad is not None}
    ours = {name: param.grad for name, param in ob_model.named_parameters() if param.grad is not None}
    assert ours.keys() == theirs.keys() and len(ours) > 0
    for name, grad in ours.items():
        close(grad, theirs[name])
    expected = {"per length": [[(1, 9), (1, 8), (1, 1)]], "mixed": [[(2, 9), (1, 1)]], "one (padded layout)": []}
    assert calls == expected[groups] * TINY["num_hidden_layers"]
