"""`openbert finetune embeddings` and `openbert finetune reranker` on a tiny openbert encoder: they read scored
pairs, pairs and SQuAD-format files, train (retrieval on the training questions gets better), evaluate through
sentence-transformers' evaluators, and write sentence-transformers checkpoints with a model card that push to a
Hub and load there as remote code; wrong data and options fail before any training, naming the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hub_server import LocalHub
from huggingface_hub import ModelCard
from tiny_checkpoint import save_tiny_checkpoint
from transformers import AutoTokenizer, TrainingArguments

from openbert.modeling import OpenBertConfig, OpenBertForPreTraining, OpenBertForSequenceClassification

pytest.importorskip("sentence_transformers", reason="needs the search extra")
from sentence_transformers import CrossEncoder, SentenceTransformer  # noqa: E402

from openbert.training import cli  # noqa: E402
from openbert.training.hub.push import files_to_push  # noqa: E402
from openbert.training.search.arguments import RerankerDataArguments, SearchModelArguments  # noqa: E402
from openbert.training.search.data import PairLayout, read_pair_files, resolve_layout  # noqa: E402
from openbert.training.search.embeddings import embedding_loss  # noqa: E402
from openbert.training.search.evaluation import retrieval_task  # noqa: E402
from openbert.training.search.models import load_sentence_transformer  # noqa: E402
from openbert.training.search.reranker import RerankerJob, run_reranker  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCORED = [("a cat sits on the mat", "a kitten rests on a rug", 4.6), ("the sun is hot", "rain falls all day", 0.4),
          ("he plays the guitar", "a man plays a guitar", 4.2), ("stocks fell", "the market dropped", 3.8),
          ("a dog runs", "the stock market rose", 0.0), ("she cooks pasta", "a woman makes dinner", 3.1)]
TOPICS = ["volcano lava", "bread flour", "football goal", "python list", "whale krill", "tax return", "flu vaccine",
          "mars rover"]
# What the questions call each topic: words the paragraphs never use, so only training can connect the two.
ALIASES = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
RUN = ["--report_to", "none", "--use_cpu", "--save_strategy", "no", "--disable_tqdm", "true", "--seed", "0"]


def squad_file(path) -> str:
    """A SQuAD-format file: one paragraph per topic, two questions on each (16 question-paragraph pairs)."""
    paragraphs = [{"context": f"All about the {topic}: the {topic} is described here in some detail.",
                   "qas": [{"id": f"{i}-{j}", "question": question, "answers": []}
                           for j, question in enumerate((f"what is the {alias} one?", f"tell me about {alias}"))]}
                  for i, (topic, alias) in enumerate(zip(TOPICS, ALIASES, strict=True))]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "topics", "paragraphs": paragraphs}]}))
    return str(path)


@pytest.fixture(scope="module")
def tiny(minilm_dir, tmp_path_factory):
    return str(save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "encoder", minilm_dir))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    with (folder / "sts.tsv").open("w") as handle:
        handle.write("index\tgenre\tsentence1\tsentence2\tscore\n")
        handle.writelines(f"{i}\tnews\t{a}\t{b}\t{score}\n" for i, (a, b, score) in enumerate(SCORED * 3))
    return {"sts": str(folder / "sts.tsv"), "squad": squad_file(folder / "squad.json")}


@pytest.fixture(scope="module")
def sts_model(tiny, data, tmp_path_factory):
    output = tmp_path_factory.mktemp("runs") / "sts"
    cli.main(["finetune", "embeddings", "--model_name_or_path", tiny, "--train_files", data["sts"],
              "--validation_files", data["sts"], "--max_score", "5", "--do_train", "--do_eval", "--num_train_epochs",
              "2", "--per_device_train_batch_size", "4", "--output_dir", str(output), *RUN])
    return output


def test_scored_pairs_train_into_a_sentence_transformers_checkpoint_with_a_card(sts_model):
    output = sts_model
    results = json.loads((output / "all_results.json").read_text())
    assert -1 <= results["eval_similarity_spearman_cosine"] <= 1 and results["train_samples"] == 18
    model = SentenceTransformer(str(output), device="cpu")
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling"]
    assert type(model[0].auto_model).__name__ == "OpenBertModel" and model.get_embedding_dimension() == 32
    card = ModelCard.load(output / "README.md")
    assert (card.data.pipeline_tag, card.data.library_name) == ("sentence-similarity", "sentence-transformers")
    reported = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert reported["similarity_spearman_cosine"] == results["eval_similarity_spearman_cosine"]
    assert "SentenceTransformer(" in card.text and "trust_remote_code=True" in card.text
    pushed = files_to_push(output)
    assert {"modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "config_sentence_transformers.json",
            "modeling_openbert.py", "model.safetensors", "README.md"} <= pushed.keys()
    assert "training_args.bin" not in pushed


def test_training_on_pairs_improves_retrieval_of_the_training_questions(tiny, data, tmp_path):
    def mrr(arguments: list[str], output: str) -> float:
        cli.main([*arguments, "--validation_files", data["squad"], "--output_dir", str(tmp_path / output), *RUN])
        return json.loads((tmp_path / output / "eval_results.json").read_text())["eval_retrieval_cosine_mrr@10"]

    before = mrr(["evaluate", "embeddings", "--model_name_or_path", tiny], "before")
    after = mrr(["finetune", "embeddings", "--model_name_or_path", tiny, "--train_files", data["squad"],
                 "--do_train", "--do_eval", "--num_train_epochs", "8", "--learning_rate", "1e-3",
                 "--per_device_train_batch_size", "8", "--batch_sampler", "no_duplicates"], "after")
    assert after > before + 0.2, (before, after)


def test_retrieval_searches_every_document_of_the_split(data):
    pairs = read_pair_files([data["squad"]])
    layout = resolve_layout(pairs.column_names, "squad")
    assert layout == PairLayout(("question", "context")) and len(pairs) == 16
    task = retrieval_task(pairs.select(range(3)), layout, pairs)
    assert len(task.queries) == 3 and len(task.corpus) == len(TOPICS)
    assert [task.corpus[next(iter(task.relevant[q]))] for q in task.queries] == pairs["context"][:3]


def test_a_pretraining_checkpoint_is_a_starting_point(minilm_dir, tmp_path):
    torch.manual_seed(0)
    pretrained = OpenBertForPreTraining(OpenBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                                       intermediate_size=37, max_position_embeddings=64))
    pretrained.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(tmp_path)
    model = load_sentence_transformer(tmp_path, pooling="cls", max_seq_length=48)
    assert model[1].get_config_dict()["pooling_mode"] == "cls" and model.max_seq_length == 48
    for name, tensor in model[0].auto_model.state_dict().items():  # the pretrained encoder, not a new one
        torch.testing.assert_close(tensor, pretrained.state_dict()[f"bert.{name}"], rtol=0, atol=0)


def test_reranker_trains_with_mined_negatives_and_reranks_the_retrievers_top_k(tiny, sts_model, data, tmp_path):
    retriever = sts_model
    output = tmp_path / "reranker"
    cli.main(["finetune", "reranker", "--model_name_or_path", tiny, "--retriever_name_or_path", str(retriever),
              "--train_files", data["squad"], "--validation_files", data["squad"], "--rerank_top_k", "5",
              "--num_negatives", "1", "--do_train", "--do_eval", "--per_device_train_batch_size", "4",
              "--output_dir", str(output), *RUN])
    results = json.loads((output / "all_results.json").read_text())
    for name in ("ndcg@10", "mrr@10", "map"):
        assert 0 <= results[f"eval_reranking_{name}"] <= 1 and f"eval_reranking_base_{name}" in results
    reranker = CrossEncoder(str(output), device="cpu")
    assert type(reranker.model) is OpenBertForSequenceClassification and reranker.num_labels == 1
    card = ModelCard.load(output / "README.md")
    assert (card.data.pipeline_tag, card.data.library_name) == ("text-ranking", "sentence-transformers")

    job = RerankerJob(SearchModelArguments(tiny), RerankerDataArguments(num_hard_negatives=2, rerank_top_k=5))
    pairs = read_pair_files([data["squad"]])
    job.layout = resolve_layout(pairs.column_names, "squad")
    mined = job.with_hard_negatives(pairs, load_sentence_transformer(retriever))
    assert mined.column_names[:2] == ["question", "context"] and len(mined.column_names) == 4
    for row in mined:
        negatives = list(row.values())[2:]
        assert row["context"] not in negatives and set(negatives) <= set(pairs["context"])


@pytest.mark.parametrize(("arguments", "message"), [
    (["finetune", "reranker", "--do_eval"], "pass --retriever_name_or_path"),
    (["finetune", "reranker", "--do_train"], "--num_hard_negatives are mined with a retriever"),
    (["finetune", "embeddings", "--do_train", "--pad_to_max_length"], "pads each batch itself"),
    (["finetune", "embeddings", "--do_train", "--test_files", "x.json"], "no predict step"),
])
def test_options_that_cannot_work_fail_before_anything_loads(arguments, message, tmp_path, capsys):
    # The model folder and the data file do not exist: the options are refused before either is looked at.
    refused(capsys, message, lambda: cli.main([*arguments, "--model_name_or_path", str(tmp_path / "absent"),
                                               "--train_files", "absent.json", "--output_dir", str(tmp_path / "out"),
                                               *RUN]))


def refused(capsys, message: str, command) -> None:
    """`command` (an `openbert` command line run in-process) stops with exit status 2 and `message` on stderr."""
    with pytest.raises(SystemExit) as stop:
        command()
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_data_that_cannot_work_is_refused_with_the_fix(tiny, data, tmp_path, capsys):
    def run(*arguments: str):
        return lambda: cli.main(["finetune", "embeddings", "--model_name_or_path", tiny, "--do_train",
                                 "--output_dir", str(tmp_path / "out"), *arguments, *RUN])

    refused(capsys, "pass --max_score", run("--train_files", data["sts"]))
    refused(capsys, "--loss multiple_negatives_ranking needs pairs or triplets",
            run("--train_files", data["sts"], "--max_score", "5", "--loss", "multiple_negatives_ranking"))
    with pytest.raises(ValueError, match="pass --text_columns"):
        resolve_layout(["id", "body"], "notes.jsonl")
    with pytest.raises(ValueError, match="has no column 'answer'"):
        resolve_layout(["question", "context"], "qa.jsonl", ["question", "answer"])
    with pytest.raises(ValueError, match="--loss triplet needs triplets"):
        embedding_loss(None, PairLayout(("question", "context")), "triplet")
    with pytest.raises(TypeError, match="CrossEncoderTrainingArguments"):
        run_reranker(SearchModelArguments(tiny), RerankerDataArguments(num_hard_negatives=0),
                     TrainingArguments(str(tmp_path / "out"), do_train=True, report_to=[]))


# Loads a pushed embedding model from the Hub where `import openbert` is impossible.
PULL = textwrap.dedent("""
    import sys
    sys.modules["openbert"] = None
    import torch
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(sys.argv[1], device="cpu", trust_remote_code=True)
    torch.save({"module": type(model[0].auto_model).__module__, "modules": [type(m).__name__ for m in model],
                "embeddings": model.encode(["a cat sits on the mat", "stocks fell"], convert_to_tensor=True)},
               sys.argv[2])
""")


def test_embedding_model_pushes_and_loads_from_the_hub_as_remote_code(sts_model, tmp_path):
    output = sts_model
    token = "hf_tester_write_token"
    with LocalHub(tokens={token: "tester"}) as hub:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("HF_")}, "HF_ENDPOINT": hub.url,
               "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        pushed = subprocess.run([sys.executable, "-m", "openbert.training.cli", "push", "--model_name_or_path",
                                 str(output), "--hub_model_id", "tester/tiny-sts"], env={**env, "HF_TOKEN": token},
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        assert {"modules.json", "1_Pooling/config.json"} <= set(hub.commits("tester/tiny-sts")[0].files)
        pulled = subprocess.run([sys.executable, "-c", PULL, "tester/tiny-sts", str(tmp_path / "pulled.pt")], env=env,
                                cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        assert pulled.returncode == 0, pulled.stderr[-3000:]
        hub.assert_all_served()
    result = torch.load(tmp_path / "pulled.pt")
    assert result["module"].startswith("transformers_modules") and result["modules"] == ["Transformer", "Pooling"]
    expected = SentenceTransformer(str(output), device="cpu").encode(["a cat sits on the mat", "stocks fell"],
                                                                     convert_to_tensor=True)
    torch.testing.assert_close(result["embeddings"], expected, rtol=0, atol=1e-6)
