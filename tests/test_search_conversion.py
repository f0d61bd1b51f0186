"""Conversion keeps a sentence-transformers model whole: the pip-shipped all-MiniLM-L6-v2 through openbert and back
encodes exactly as the original (pooling, normalisation, maximum length), also in a process where openbert cannot be
imported (remote code), and a model with a Dense layer and prompts keeps both, in either direction."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from openbert.modeling import convert

sentence_transformers = pytest.importorskip("sentence_transformers", reason="needs the search extra")
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer  # noqa: E402

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an instrument on a stage.",
    "The stock market fell sharply on Monday.",
    # ~400 tokens: longer than all-MiniLM-L6-v2's max_seq_length of 256, so a lost maximum length changes it
    "word " * 400,
]


@pytest.fixture(scope="module")
def original(minilm_dir) -> SentenceTransformer:
    return SentenceTransformer(str(minilm_dir), device="cpu")


def assert_same_embeddings(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(actual @ actual.T, expected @ expected.T, rtol=0, atol=1e-5)  # dot-product scores
    cosines = torch.nn.functional.cosine_similarity(actual, expected)
    torch.testing.assert_close(cosines, torch.ones_like(cosines), rtol=0, atol=1e-6)


def test_minilm_through_openbert_and_back_encodes_as_the_original(original, minilm_openbert_dir, tmp_path):
    expected = original.encode(SENTENCES, convert_to_tensor=True)
    torch.testing.assert_close(expected.norm(dim=1), torch.ones(len(SENTENCES)))  # the original normalises
    back = convert.to_transformers(minilm_openbert_dir, tmp_path / "bert")
    for folder, model_type in ((minilm_openbert_dir, "openbert"), (back, "bert")):
        model = SentenceTransformer(str(folder), device="cpu")
        assert [type(module).__name__ for module in model] == ["Transformer", "Pooling", "Normalize"]
        assert model[0].auto_model.config.model_type == model_type
        assert model.max_seq_length == original.max_seq_length == 256
        assert model.similarity_fn_name == original.similarity_fn_name
        assert_same_embeddings(model.encode(SENTENCES, convert_to_tensor=True), expected)


# Runs where `import openbert` is impossible: the converted checkpoint must bring its own code.
WITHOUT_OPENBERT = textwrap.dedent("""
    import json, sys
    sys.modules["openbert"] = None
    import torch
    from sentence_transformers import SentenceTransformer
    try:
        SentenceTransformer(sys.argv[1], device="cpu")
        refused = ""
    except Exception as error:
        refused = str(error)
    model = SentenceTransformer(sys.argv[1], device="cpu", trust_remote_code=True)
    torch.save({"refused": refused, "module": type(model[0].auto_model).__module__,
                "embeddings": model.encode(json.loads(sys.argv[2]), convert_to_tensor=True)}, sys.argv[3])
""")


def test_converted_minilm_loads_as_remote_code_where_openbert_cannot_be_imported(original, minilm_openbert_dir,
                                                                                tmp_path):
    result_file = tmp_path / "result.pt"
    subprocess.run([sys.executable, "-c", WITHOUT_OPENBERT, str(minilm_openbert_dir), json.dumps(SENTENCES),
                    str(result_file)], check=True, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=300)
    result = torch.load(result_file)
    assert "trust_remote_code" in result["refused"]  # without it, loading refuses (what the README documents)
    assert result["module"].startswith("transformers_modules"), result["module"]
    assert_same_embeddings(result["embeddings"], original.encode(SENTENCES, convert_to_tensor=True))


def test_dense_layer_and_prompts_survive_both_directions(minilm_dir, tmp_path):
    """A BERT model with CLS pooling, a Dense projection, normalisation, prompts and its own maximum length."""
    torch.manual_seed(0)
    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                max_position_embeddings=128)).eval()
    bert.save_pretrained(tmp_path / "bert")
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(tmp_path / "bert")
    encoder = Transformer(str(tmp_path / "bert"), max_seq_length=48)
    original = SentenceTransformer(
        modules=[encoder, Pooling(32, "cls"), Dense(32, 16), Normalize()], device="cpu",
        prompts={"query": "query: ", "document": "passage: "}, similarity_fn_name="dot")
    original.save(str(tmp_path / "original"))
    queries = original.encode_query(SENTENCES, convert_to_tensor=True)
    documents = original.encode_document(SENTENCES, convert_to_tensor=True)

    there = convert.from_transformers(tmp_path / "original", tmp_path / "openbert")
    back = convert.to_transformers(there, tmp_path / "back")
    for folder in (there, back):
        model = SentenceTransformer(str(folder), device="cpu")
        assert [type(module).__name__ for module in model] == ["Transformer", "Pooling", "Dense", "Normalize"]
        assert model.prompts == {"query": "query: ", "document": "passage: "}
        assert (model.max_seq_length, model.similarity_fn_name) == (48, "dot")
        assert_same_embeddings(model.encode_query(SENTENCES, convert_to_tensor=True), queries)
        assert_same_embeddings(model.encode_document(SENTENCES, convert_to_tensor=True), documents)
    assert json.loads((there / "config.json").read_text())["model_type"] == "openbert"
