"""Pushing checkpoints to a Hub and loading them back, against a local Hub-compatible server.

The client side is the real `huggingface_hub` / transformers, run in subprocesses because `HF_ENDPOINT`,
`HF_HUB_DISABLE_XET` and `HF_HUB_OFFLINE` are read when huggingface_hub is imported. Every test checks that
the client used nothing the server does not implement (`LocalHub.assert_all_served`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hub_server import LocalHub
from transformers import TrainingArguments

from openbert import modeling
from openbert.hub_cards import REPO_ID_PLACEHOLDER, write_model_card
from openbert.tokenization import build_bert_tokenizer, save_tokenizer
from openbert.training.curves import plot_log_history
from openbert.training.hub.card import hyperparameters_from_training_args
from openbert.training.hub.push import PushError, files_to_push, hub_target_from_training_args

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN, OTHER_TOKEN = "hf_tester_write_token", "hf_other_write_token"
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", ".", "capital", "of", "france", "is",
         "where", "do", "i", "live", "cat", "sat", "on", "mat", "moon", "##s"]
VOCAB = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Where do I live?", "cats sat on the moon"]
METRICS = {"eval_loss": 0.6931471805599453, "eval_accuracy": 0.5625, "eval_runtime": 0.25, "epoch": 3.0}
# What a training run leaves in its output directory besides the model, and which a push must not upload.
LOCAL_ONLY = ("optimizer.pt", "training_args.bin", "trainer_state.json", "checkpoint-4/model.safetensors")

# Loads the pushed model where openbert cannot be imported, runs it and the card's own snippets, tries a repo
# that does not exist, and saves what it saw.
PULL_SCRIPT = textwrap.dedent(
    """
    import re, sys
    sys.modules["openbert"] = None  # the installed package must not be what loads the model
    import torch, transformers
    from huggingface_hub import ModelCard
    repo_id, texts, out = sys.argv[1], sys.argv[2].split("|"), sys.argv[3]
    tokenizer = transformers.AutoTokenizer.from_pretrained(repo_id, trust_remote_code=True)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(repo_id, trust_remote_code=True)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model.eval()(**batch).logits
    card = ModelCard.load(repo_id)
    for snippet in re.findall(r"```python\\n(.*?)```", card.text, flags=re.DOTALL):
        exec(snippet, {})  # the card's usage instructions must work as written
    try:
        transformers.AutoConfig.from_pretrained(repo_id + "-missing", trust_remote_code=True)
        missing_error = None
    except OSError as e:
        missing_error = str(e)
    torch.save({"module": type(model).__module__, "input_ids": batch["input_ids"], "logits": logits,
                "results": {r.metric_type: r.metric_value for r in card.data.eval_results},
                "snippets": len(re.findall("```python", card.text)), "missing_error": missing_error}, out)
    """
)


@pytest.fixture(scope="module")
def hub():
    with LocalHub(tokens={TOKEN: "tester", OTHER_TOKEN: "other"}) as server:
        yield server


@pytest.fixture(autouse=True)
def _everything_served(hub):
    yield
    hub.assert_all_served()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A tiny fine-tuned openbert classifier as a training run leaves it: model, tokenizer, card, curves,
    results, plus the local-only leftovers."""
    directory = tmp_path_factory.mktemp("run") / "tiny-classifier"
    torch.manual_seed(0)
    config = modeling.OpenBertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
                                     num_labels=2, id2label={0: "negative", 1: "positive"},
                                     label2id={"negative": 0, "positive": 1})
    model = modeling.OpenBertForSequenceClassification(config).eval()
    model.save_pretrained(directory)
    save_tokenizer(build_bert_tokenizer(VOCAB, model_max_length=64), directory)
    plot_log_history([{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.7, "eval_accuracy": 0.5625}],
                     directory / "curves.png")
    (directory / "eval_results.json").write_text(json.dumps(METRICS))
    for name in LOCAL_ONLY:
        (directory / name).parent.mkdir(exist_ok=True)
        (directory / name).write_bytes(b"local only")
    args = TrainingArguments(directory, learning_rate=3e-5, per_device_train_batch_size=4, num_train_epochs=3,
                             seed=0, report_to=[])
    write_model_card(directory, kind="finetuned", task="text-classification", metrics=METRICS,
                     hyperparameters=hyperparameters_from_training_args(args), train_runtime_s=1.5, train_steps=6,
                     train_data="the `train` split of `nyu-mll/glue` (`sst2`)", dataset_config="sst2",
                     eval_data="the `validation` split of `nyu-mll/glue` (`sst2`)", hub_datasets=["nyu-mll/glue"],
                     base_model="tester/openbert-tiny")
    return directory, model


def fingerprint(directory: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `directory` with its size, modification time and content hash."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns,
                                            hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(directory.rglob("*")) if p.is_file()}


def client_env(tmp_path: Path, endpoint: str, token: str | None) -> dict[str, str]:
    """The environment of a client process: this Hub, a fresh cache, plain HTTP/LFS uploads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def push(checkpoint_dir: Path, repo_id: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.push", "--checkpoint", str(checkpoint_dir), "--repo-id", repo_id, *extra],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )


def pull(repo_id: str, env: dict[str, str], out: Path) -> dict:
    """Load `repo_id` in a process where `import openbert` is impossible; return what it computed."""
    result = subprocess.run([sys.executable, "-c", PULL_SCRIPT, repo_id, "|".join(TEXTS), str(out)], env=env,
                            cwd=out.parent, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # transformers asks before running remote code it was not told to trust (and, without a terminal, goes on)
    assert "Do you wish to run the custom code" not in result.stdout + result.stderr
    return torch.load(out)


def test_push_then_load_anywhere_and_offline(hub, checkpoint, tmp_path):
    directory, model = checkpoint
    repo_id = "tester/tiny-classifier"
    before = fingerprint(directory)
    env = client_env(tmp_path, hub.url, TOKEN)

    first = push(directory, repo_id, env)
    assert first.returncode == 0, first.stderr
    commit = json.loads(first.stdout)["oid"]
    history = hub.commits(repo_id)
    assert [c.oid for c in history][0] == commit and len(history) == 2  # the repo's first commit + one push
    files = history[0].files
    pushed = {name for name in before if name not in LOCAL_ONLY}
    assert set(files) == pushed | {".gitattributes"}
    assert {"model.safetensors", "modeling_openbert.py", "configuration_openbert.py", "tokenizer.json",
            "README.md", "curves.png", "eval_results.json"} <= pushed
    for name in pushed - {"README.md"}:
        assert files[name].content == (directory / name).read_bytes(), name
    assert files["model.safetensors"].lfs and files["curves.png"].lfs  # binary files went through git-LFS
    card = files["README.md"].content.decode()
    assert card == (directory / "README.md").read_text().replace(REPO_ID_PLACEHOLDER, repo_id)
    assert REPO_ID_PLACEHOLDER not in card and f'from_pretrained("{repo_id}", trust_remote_code=True)' in card

    second = push(directory, repo_id, env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["oid"] == commit
    assert len(hub.commits(repo_id)) == 2, "pushing an unchanged checkpoint must not create a commit"

    pull_env = client_env(tmp_path, hub.url, token=None)  # a stranger: no token, empty cache
    online = pull(repo_id, pull_env, tmp_path / "online.pt")
    requests_before_offline = len(hub.requests)
    offline = pull(repo_id, {**pull_env, "HF_HUB_OFFLINE": "1"}, tmp_path / "offline.pt")
    assert len(hub.requests) == requests_before_offline, "an offline load must not touch the network"

    tokenizer = build_bert_tokenizer(VOCAB, model_max_length=64)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits
    for result in (online, offline):
        assert result["module"].startswith("transformers_modules"), result["module"]
        assert torch.equal(result["input_ids"], batch["input_ids"])
        assert torch.equal(result["logits"], expected)
        assert result["results"] == {"loss": METRICS["eval_loss"], "accuracy": METRICS["eval_accuracy"]}
        assert result["snippets"] == 2
    assert f"{repo_id}-missing is not a local folder and is not a valid model identifier" in online["missing_error"]
    assert "couldn't find them in the cached files" in offline["missing_error"]
    assert fingerprint(directory) == before


def test_private_push_to_a_new_branch(hub, checkpoint, tmp_path):
    directory, _ = checkpoint
    result = push(directory, "tester/private-tiny", client_env(tmp_path, hub.url, TOKEN),
                  "--private", "--revision", "dev", "--commit-message", "first try")
    assert result.returncode == 0, result.stderr
    repo = hub.repos["tester/private-tiny"]
    assert repo.private
    assert set(hub.commits("tester/private-tiny", "main")[0].files) == {".gitattributes"}
    head = hub.commits("tester/private-tiny", "dev")[0]
    assert head.summary == "first try" and "model.safetensors" in head.files


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("case", "repo_id", "token", "message"),
    [
        ("bad token", "tester/tiny-bad-token", "hf_not_a_valid_token", "rejected the token (401 Unauthorized)"),
        ("hub down", "tester/tiny-hub-down", TOKEN, "cannot reach the Hub at http://127.0.0.1:"),
        ("repo not found, not creatable", "other/tiny-not-mine", TOKEN,
         "tester may not create or write to other/tiny-not-mine"),
        ("no token", "tester/tiny-no-token", None, "no Hugging Face token"),
    ],
)
def test_failed_push_explains_and_leaves_checkpoint_alone(hub, checkpoint, tmp_path, case, repo_id, token,
                                                          message):
    directory, _ = checkpoint
    before = fingerprint(directory)
    repos_before = set(hub.repos)
    endpoint = closed_port_url() if case == "hub down" else hub.url
    result = push(directory, repo_id, client_env(tmp_path, endpoint, token))
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert set(hub.repos) == repos_before
    assert fingerprint(directory) == before


def test_protocol_the_server_lacks_fails_the_push(hub, checkpoint, tmp_path):
    """The fixture answers what it does not implement with an error, never with a silent success: with xet
    left on, the client asks for a xet token, the push fails, and the request is on record."""
    directory, _ = checkpoint
    env = client_env(tmp_path, hub.url, TOKEN)
    del env["HF_HUB_DISABLE_XET"]
    result = push(directory, "tester/tiny-xet", env)
    assert result.returncode == 1 and "501" in result.stderr, result.stderr
    assert any("/xet-write-token/" in request for request in hub.unserved), hub.unserved
    assert len(hub.commits("tester/tiny-xet")) == 1  # only the repo's first commit: nothing was committed
    hub.unserved.clear()  # seen and checked: do not fail the teardown check


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("README.md", "no model card"),
        ("model.safetensors", "safetensors only"),
        ("modeling_openbert.py", "modeling_openbert.py is not in the checkpoint"),
        ("tokenizer_config.json", "has no tokenizer"),
        ("config.json", "has no config.json"),
    ],
)
def test_checkpoint_is_checked_before_any_upload(checkpoint, tmp_path, breakage, message):
    directory, _ = checkpoint
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in files_to_push(directory):
        if name != breakage:
            (broken / name).write_bytes((directory / name).read_bytes())
    if breakage == "model.safetensors":
        (broken / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(PushError, match=message):
        files_to_push(broken)


def test_training_args_name_the_push_target(tmp_path):
    args = TrainingArguments(tmp_path, push_to_hub=True, hub_model_id="tester/run", hub_private_repo=True,
                             hub_revision="dev", report_to=[], do_train=True, do_eval=True)
    target = hub_target_from_training_args(args)
    assert (target.repo_id, target.private, target.revision) == ("tester/run", True, "dev")
    assert args.push_to_hub is True  # never changed: the run skeleton gives the Trainer a copy that does not push
    assert hub_target_from_training_args(TrainingArguments(tmp_path, report_to=[])) is None
    with pytest.raises(ValueError, match="needs --hub_model_id"):
        hub_target_from_training_args(TrainingArguments(tmp_path, push_to_hub=True, report_to=[]))
    with pytest.raises(ValueError, match="needs --do_train and --do_eval"):
        hub_target_from_training_args(TrainingArguments(tmp_path, push_to_hub=True, hub_model_id="tester/run",
                                                        do_train=True, report_to=[]))

