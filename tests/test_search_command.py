"""`openbert search index` and `openbert search query` end to end on a small corpus with the real all-MiniLM-L6-v2
(converted into openbert): queries that paraphrase a document, sharing almost none of its words, find it in the
top 3; long documents are chunked within the model's length; a re-ranker re-scores the candidates."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("sentence_transformers", reason="needs the search extra")
from openbert.training import cli  # noqa: E402
from openbert.training.search.index import CHUNKS_FILE, CONFIG_FILE, chunk_document, load_index  # noqa: E402
from openbert.training.search.models import load_cross_encoder  # noqa: E402
from openbert.training.search.query import Searcher  # noqa: E402

DOCUMENTS = {
    "etna.txt": "Mount Etna on Sicily erupts frequently, sending lava down its slopes and ash over Catania.",
    "sourdough.txt": "For sourdough, mix flour, water and a starter, let the dough rise overnight, then bake it hot.",
    "final.txt": "The striker scored twice after the break, and the home side lifted the cup after a 3-1 final.",
    "lists.txt": "Python lists are mutable sequences: append puts an item at the end and pop removes the last one.",
    "whales.txt": "Blue whales are the largest animals known to have lived; they feed almost only on tiny krill.",
    "taxes.txt": "Income tax returns must be filed by April 15; late filers may owe penalties and interest.",
    "influenza.txt": "Influenza spreads through droplets when infected people cough or sneeze; a yearly shot lowers "
                     "the risk.",
    "rover.txt": "The rover landed in Jezero crater to look for signs of ancient microbial life on Mars.",
}
# Paraphrases: each names its document's subject in other words.
QUERIES = {
    "Which Italian mountain spews molten rock?": "etna.txt",
    "how to make bread with wild yeast": "sourdough.txt",
    "who won the soccer championship match": "final.txt",
    "adding an element to an array in a programming language": "lists.txt",
    "what is the biggest creature on earth": "whales.txt",
    "deadline for sending my yearly paperwork to the revenue office": "taxes.txt",
    "how does the flu pass from person to person": "influenza.txt",
    "robot exploring the red planet": "rover.txt",
}
# A long document (several chunks at the test's chunk length) whose matching sentence sits near its end.
LONG = " ".join(["The committee reviewed the minutes of the previous meeting and approved them."] * 12
                + ["Afterwards the orchestra performed a symphony by Beethoven in the great hall."])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text + "\n")
    (folder / "more.jsonl").write_text(json.dumps({"text": LONG}) + "\n" + json.dumps({"text": "  "}) + "\n")
    return folder


@pytest.fixture(scope="module")
def index_dir(minilm_openbert_dir, corpus, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("index")
    cli.main(["search", "index", "--model_name_or_path", str(minilm_openbert_dir), "--documents", str(corpus),
              "--index_dir", str(index_dir), "--max_seq_length", "32", "--chunk_overlap", "4", "--disable_tqdm"])
    return index_dir


def test_index_chunks_every_document_within_the_length(index_dir, minilm_openbert_dir, corpus):
    embeddings, chunks, config = load_index(index_dir)
    assert config["documents"] == len(DOCUMENTS) + 1  # the blank record is skipped
    assert embeddings.shape == (len(chunks), 384) and embeddings.dtype == torch.float32
    long_chunks = [chunk for chunk in chunks if chunk.document.endswith("more.jsonl:1")]
    assert len(long_chunks) > 3
    assert long_chunks[0].start == 0 and long_chunks[-1].end == len(LONG)
    assert all(chunk.text == LONG[chunk.start:chunk.end] for chunk in long_chunks)
    # neighbours overlap
    assert all(later.start < earlier.end for earlier, later in zip(long_chunks, long_chunks[1:], strict=False))
    assert (index_dir / CHUNKS_FILE).is_file() and (index_dir / CONFIG_FILE).is_file()


def test_chunks_fit_the_model(minilm_openbert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_openbert_dir)
    chunks = chunk_document("long", LONG, tokenizer, max_tokens=30, overlap=4)
    assert all(len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"]) <= 30 for chunk in chunks)
    with pytest.raises(ValueError, match="chunk_overlap"):
        chunk_document("long", LONG, tokenizer, max_tokens=30, overlap=30)


def test_paraphrased_queries_find_their_document_in_the_top_3(index_dir, minilm_openbert_dir, capsys):
    cli.main(["search", "query", "--model_name_or_path", str(minilm_openbert_dir), "--index_dir", str(index_dir),
              "--top_k", "3", "--output_format", "json", "--query", *QUERIES,
              "who played music in the concert hall"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [*QUERIES.values(), "more.jsonl:1"]
    for result, document in zip(printed, expected, strict=True):
        found = [hit["document"].rsplit("/", 1)[-1] for hit in result["hits"]]
        assert document in found, (result["query"], found)
        scores = [hit["score"] for hit in result["hits"]]
        assert scores == sorted(scores, reverse=True) and len(set(found)) == 3


def test_reranker_rescores_the_candidates(index_dir, minilm_openbert_dir, tmp_path):
    # An untrained re-ranker head: what is checked is the plumbing, not the quality.
    reranker = load_cross_encoder(minilm_openbert_dir)
    reranker.save(str(tmp_path / "reranker"))
    searcher = Searcher(str(minilm_openbert_dir), str(index_dir), str(tmp_path / "reranker"))
    query = next(iter(QUERIES))
    (hits,) = searcher.search([query], top_k=4, rerank_top_k=6)
    assert len(hits) == 4 and [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    expected = reranker.predict([(query, hit.chunk.text) for hit in hits])
    torch.testing.assert_close(torch.tensor([hit.score for hit in hits]), torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_an_index_of_another_model_is_refused(index_dir, tmp_path, minilm_dir):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=37)).save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "tokenizer.json").write_bytes((minilm_dir / "tokenizer.json").read_bytes())
    (tmp_path / "other" / "tokenizer_config.json").write_bytes((minilm_dir / "tokenizer_config.json").read_bytes())
    with pytest.raises(ValueError, match="384-dimensional embeddings"):
        Searcher(str(tmp_path / "other"), str(index_dir))
