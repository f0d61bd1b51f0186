"""`python -m training.pretrain` end to end, on a tiny model and a synthetic corpus.

Covers: training a tokenizer first, a YAML config file, eval metrics and result files, checkpoints that
the Auto classes and `pipeline("fill-mask")` load, continued pretraining (openbert and transformers BERT
checkpoints), streaming, exact resume after SIGKILL, two-process torchrun, and clear errors.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    HfArgumentParser,
    TrainingArguments,
    pipeline,
)

from openbert import modeling
from openbert.modeling import IGNORE_INDEX
from openbert.tokenization.data_files import load_documents
from openbert.tokenization.train import TokenizerArguments
from openbert.training.pretraining import PretrainingDataArguments, PretrainingModelArguments, main, run_pretraining
from openbert.training.pretraining.collator import DataCollatorForPreTraining, mask_dataset
from openbert.training.pretraining.data import NspOptions, prepare_pretraining_dataset

REPO = Path(__file__).resolve().parents[1]
ARGUMENT_TYPES = (PretrainingModelArguments, TokenizerArguments, PretrainingDataArguments, TrainingArguments)
TINY = "num_hidden_layers=2,hidden_size=64,num_attention_heads=2,intermediate_size=128,max_position_embeddings=64"
# Without dropout the tiny model learns NSP in a couple of hundred steps.
TINY_NO_DROPOUT = TINY + ",hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0"
TOPICS = [
    "river stone water bank fish boat bridge flood".split(),
    "violin music concert piano song orchestra melody choir".split(),
    "engine car road wheel fuel driver garage motor".split(),
    "forest tree leaf bird wolf moss branch trail".split(),
]


def write_corpus(path: Path, num_documents: int, seed: int) -> Path:
    """Documents of 3-8 sentences on one topic each, separated by blank lines."""
    rng = random.Random(seed)
    documents = []
    for _ in range(num_documents):
        topic = rng.choice(TOPICS)
        documents.append(" ".join(
            "The " + " ".join(rng.choice(topic) for _ in range(rng.randint(4, 9))) + "."
            for _ in range(rng.randint(3, 8))))
    path.write_text("\n\n".join(documents) + "\n")
    return path


def tiny_options(tmp: Path, output: str, **extra) -> dict:
    """Options of a tiny from-scratch run on the corpus files in `tmp`, tokenizer trained on the fly."""
    options = {
        "train_files": [str(tmp / "train.txt")], "validation_files": [str(tmp / "valid.txt")],
        "model_size": "tiny", "config_overrides": TINY, "vocab_size": 200, "max_seq_length": 48,
        "output_dir": str(tmp / output), "cache_dir": str(tmp / "datasets_cache"),
        "per_device_train_batch_size": 8, "per_device_eval_batch_size": 32, "learning_rate": 3e-3,
        "max_steps": 6, "save_steps": 3, "logging_steps": 1, "eval_strategy": "steps", "eval_steps": 3,
        "report_to": "none", "disable_tqdm": True, "seed": 7, "use_cpu": True, "do_train": True, "do_eval": True,
    }
    options.update(extra)
    return {key: value for key, value in options.items() if value is not None}


def tiny_args(tmp: Path, output: str, **extra) -> list[str]:
    """`tiny_options` as command-line flags."""
    argv = []
    for key, value in tiny_options(tmp, output, **extra).items():
        argv += [f"--{key}", *map(str, value if isinstance(value, list) else [value])]
    return argv


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pretrain")
    write_corpus(tmp / "train.txt", 200, seed=0)
    write_corpus(tmp / "valid.txt", 40, seed=1)
    return tmp


@pytest.fixture(scope="module")
def trained(corpus_dir) -> tuple[Path, dict[str, float]]:
    """One tiny run of 360 steps, driven by a YAML config file (all flags in one file). NSP is learnt suddenly, at a
    step that depends on the initialisation: after 240 steps seeds 1-7 scored 0.54-0.84 on it, after 360 steps seeds
    1, 2, 3, 5 and 7 scored 0.70-0.87."""
    config_file = corpus_dir / "pretrain.yaml"
    config_file.write_text(yaml.safe_dump(tiny_options(
        corpus_dir, "run", config_overrides=TINY_NO_DROPOUT, max_steps=360, save_steps=180, eval_steps=180,
        logging_steps=30, per_device_train_batch_size=16)))
    results = main([str(config_file)])
    return corpus_dir / "run", results


def test_run_writes_metrics_curves_and_loadable_checkpoints(trained):
    output, results = trained
    evaluation = json.loads((output / "eval_results.json").read_text())
    for key in ("eval_mlm_loss", "eval_nsp_loss", "eval_mlm_accuracy", "eval_nsp_accuracy", "eval_perplexity"):
        assert key in evaluation and key in results
    assert math.isclose(evaluation["eval_perplexity"], math.exp(evaluation["eval_mlm_loss"]), rel_tol=1e-6)
    assert 0 <= evaluation["eval_mlm_accuracy"] <= 1 and 0 <= evaluation["eval_nsp_accuracy"] <= 1
    assert "train_loss" in json.loads((output / "all_results.json").read_text())
    assert (output / "training_curves.png").stat().st_size > 1000
    card = (output / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in card and "valid.txt" in card and "training_curves.png" in card
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    train_logs = [entry for entry in history if "loss" in entry]
    assert len(train_logs) == 12
    for entry in train_logs:  # the logged total is the sum of the two logged parts
        assert abs(entry["loss"] - entry["mlm_loss"] - entry["nsp_loss"]) < 2e-3
    assert [entry["step"] for entry in history if "eval_mlm_loss" in entry] == [180, 360]
    # The tokenizer trained on the corpus is saved with the model and every checkpoint.
    for folder in (output, output / "checkpoint-180", output / "checkpoint-360"):
        assert (folder / "tokenizer.json").is_file() and (folder / "model.safetensors").is_file()
    saved = load_file(output / "checkpoint-180" / "model.safetensors")
    for auto_class in (AutoModelForPreTraining, AutoModelForMaskedLM):
        model = auto_class.from_pretrained(output / "checkpoint-180")
        assert isinstance(model, modeling.OpenBertPreTrainedModel)
        weights = model.state_dict()
        assert torch.equal(weights["bert.embeddings.word_embeddings.weight"],
                           saved["bert.embeddings.word_embeddings.weight"])
    # From scratch, the vocabulary is rounded up to a multiple of 64 (ids the tokenizer never produces).
    tokens = len(AutoTokenizer.from_pretrained(output))
    vocab_size = AutoModelForPreTraining.from_pretrained(output).config.vocab_size
    assert vocab_size % 64 == 0 and tokens <= vocab_size < tokens + 64 and tokens <= 200


def test_tiny_model_learns_both_tasks_beyond_their_baselines(trained, corpus_dir):
    """The cheap version of real learning: documents on four disjoint topics make NSP a topic match (a
    random B shares A's topic a quarter of the time, so 0.875 is the ceiling) and MLM partly guessable."""
    output, results = trained
    tokenizer = AutoTokenizer.from_pretrained(output)
    documents = load_documents(str(corpus_dir / "valid.txt"), cache_dir=str(corpus_dir / "datasets_cache"))
    pairs = prepare_pretraining_dataset(documents, tokenizer, NspOptions(max_seq_length=48, seed=7))
    labels = [label for row in mask_dataset(pairs, DataCollatorForPreTraining(tokenizer), seed=7)["labels"]
              for label in row if label != IGNORE_INDEX]
    most_frequent_share = Counter(labels).most_common(1)[0][1] / len(labels)
    nsp = pairs["next_sentence_label"]
    assert results["eval_samples"] == len(pairs) > 80
    assert results["eval_mlm_accuracy"] > most_frequent_share + 0.02
    assert results["eval_nsp_accuracy"] >= 0.70 > max(sum(nsp), len(nsp) - sum(nsp)) / len(nsp)


def test_fill_mask_pipeline_uses_the_checkpoint_and_its_tokenizer(trained):
    output, _ = trained
    fill = pipeline("fill-mask", model=str(output / "checkpoint-360"), device="cpu")
    predictions = fill("the river [MASK] flows.", top_k=3)
    assert len(predictions) == 3
    assert all(p["token_str"] and 0 <= p["score"] <= 1 for p in predictions)
    assert predictions[0]["score"] >= predictions[-1]["score"]
    assert fill.tokenizer.vocab_size == len(fill.tokenizer) <= 200


def test_continued_pretraining_from_openbert_and_transformers_checkpoints(trained, corpus_dir, tmp_path):
    output, _ = trained
    again = main(tiny_args(corpus_dir, "continued", model_name_or_path=str(output), config_overrides=None,
                           max_steps=2, save_steps=10, eval_steps=10, max_eval_samples=16))
    assert again["train_loss"] > 0 and "eval_mlm_accuracy" in again
    # A transformers BertForPreTraining checkpoint (model_type "bert") with the same tokenizer.
    tokenizer = AutoTokenizer.from_pretrained(output)
    bert = BertForPreTraining(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    bert.save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    from_bert = main(tiny_args(corpus_dir, "from_bert", model_name_or_path=str(tmp_path / "bert"),
                               config_overrides=None, max_steps=2, save_steps=10, eval_steps=10))
    assert math.isfinite(from_bert["eval_mlm_loss"])
    continued = AutoModelForPreTraining.from_pretrained(corpus_dir / "from_bert")
    assert isinstance(continued, modeling.OpenBertForPreTraining)


def test_continued_pretraining_of_a_bert_without_pretraining_heads(corpus_dir, minilm_dir):
    """MiniLM ships the encoder only: the MLM and NSP heads are created, its own tokenizer is used."""
    results = main(tiny_args(corpus_dir, "minilm", model_name_or_path=str(minilm_dir), config_overrides=None,
                             max_steps=1, per_device_train_batch_size=2, max_seq_length=24, save_steps=10,
                             eval_steps=10, max_eval_samples=8, max_train_samples=8))
    assert math.isfinite(results["eval_mlm_loss"])
    assert AutoModelForPreTraining.from_pretrained(corpus_dir / "minilm").config.vocab_size == 30522


def test_streaming_mode_trains_from_an_iterable_dataset(corpus_dir):
    *job_args, training_args = HfArgumentParser(ARGUMENT_TYPES).parse_args_into_dataclasses(tiny_args(
        corpus_dir, "stream", streaming=True, max_steps=3, save_steps=10, eval_steps=10, preprocessing_batch_size=50))
    before = training_args.to_dict()
    results = run_pretraining(*job_args, training_args)
    # The Trainer runs on a copy (no push of its own, ddp_find_unused_parameters=False): the caller's are as given.
    assert training_args.to_dict() == before and training_args.ddp_find_unused_parameters is None
    assert results["train_loss"] > 0 and "eval_nsp_accuracy" in results
    assert "train_samples" not in results


def test_padding_free_batches_train_like_padded_ones_and_token_budgets_batch_by_tokens(corpus_dir):
    """--padding_free: the same masks and losses as padded batches (no dropout). --max_tokens_per_batch: each
    epoch is as many batches as the budget makes, and the run reports their budget use and padding efficiency."""
    common = {"eval_strategy": "no", "max_steps": 4, "save_steps": 10, "config_overrides": TINY_NO_DROPOUT}
    main(tiny_args(corpus_dir, "padded", **common))
    main(tiny_args(corpus_dir, "packed", padding_free=True, **common))

    def losses(folder: str) -> dict[int, float]:
        history = json.loads((corpus_dir / folder / "trainer_state.json").read_text())["log_history"]
        return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}

    padded, packed = losses("padded"), losses("packed")
    assert padded.keys() == packed.keys() == {1, 2, 3, 4}
    assert all(abs(padded[step] - packed[step]) <= 2e-4 for step in padded), (padded, packed)

    results = main(tiny_args(corpus_dir, "budget", padding_free=True, max_tokens_per_batch=160, eval_steps=4,
                             **{**common, "eval_strategy": "steps"}))
    assert results["train_padding_efficiency"] == 1.0 and 0.5 < results["train_token_budget_use"] <= 1.0
    assert results["eval_nsp_accuracy"] >= 0 and results["eval_mlm_loss"] > 0  # evaluated on padded batches
    # Pairs have at most 48 tokens, so a budget of 160 holds fewer than --per_device_train_batch_size 8 of them:
    # the epoch's length tells which batching ran.
    batches = results["train_token_budget_batches"]
    assert batches > math.ceil(results["train_samples"] / 8)
    state = json.loads((corpus_dir / "budget" / "trainer_state.json").read_text())
    assert math.isclose(state["epoch"], 4 / batches, rel_tol=1e-3)


def test_help_explains_every_option():
    parser = HfArgumentParser(ARGUMENT_TYPES)
    ours = {f for cls in ARGUMENT_TYPES[:-1] for f in cls.__dataclass_fields__}
    documented = {a.dest: a.help for a in parser._actions if a.dest in ours}
    assert set(documented) == ours
    assert all(help_text and len(help_text) > 15 for help_text in documented.values())
    text = parser.format_help()
    assert "--whole_word_mask" in text and "--resume_from_checkpoint" in text and "mini (L4/H256)" in text


def test_processes_that_would_each_train_alone_are_stopped(corpus_dir, monkeypatch):
    """A multi-process launch on a machine without GPUs but without --use_cpu: the Trainer would not
    distribute, and every process would train on all the data into the same output dir."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="--use_cpu"):
        main(tiny_args(corpus_dir, "alone", use_cpu=False))
    assert not (corpus_dir / "alone" / "model.safetensors").exists()


def test_bad_invocations_fail_with_clear_errors(corpus_dir):
    with pytest.raises(FileNotFoundError, match="no data file found for .*missing.txt"):
        main(tiny_args(corpus_dir, "bad", train_files=str(corpus_dir / "missing.txt")))
    with pytest.raises(ValueError, match="--max_steps"):
        main(tiny_args(corpus_dir, "bad", streaming=True, max_steps=-1, num_train_epochs=1))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        main(tiny_args(corpus_dir, "bad", max_seq_length=128))
    with pytest.raises(ValueError, match="config_overrides"):
        main(tiny_args(corpus_dir, "bad", config_overrides="no_such_field=1"))
    with pytest.raises(ValueError, match="nothing to do"):
        main(tiny_args(corpus_dir, "bad", do_train=False, do_eval=False, eval_strategy="no"))


KILLER = """
import os, signal, sys
from transformers import TrainerCallback
from openbert.training.pretraining import main

class KillAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)

main(sys.argv[1:], callbacks=[KillAfterSave()])
"""


def test_resume_after_sigkill_continues_exactly(corpus_dir, tmp_path):
    """2N straight steps vs N steps, SIGKILL right after the checkpoint is written, then resume."""
    straight = tmp_path / "straight"
    main(tiny_args(corpus_dir, str(straight), eval_strategy="no", max_steps=6, save_steps=3))
    killed = tmp_path / "killed"
    argv = tiny_args(corpus_dir, str(killed), eval_strategy="no", max_steps=6, save_steps=3)
    # One thread like this process (see `one_thread`): the same kernels give bit-identical weights.
    env = {**os.environ, "KILL_AT_STEP": "3", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.run([sys.executable, "-c", KILLER, *argv], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, process.stdout[-2000:] + process.stderr[-2000:]
    assert (killed / "checkpoint-3").is_dir() and not (killed / "checkpoint-6").exists()
    main(tiny_args(corpus_dir, str(killed), eval_strategy="no", max_steps=6, save_steps=3,
                   resume_from_checkpoint="last"))

    def losses(folder: Path) -> dict[int, float]:
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}

    assert losses(killed) == losses(straight) and 6 in losses(straight)
    final, expected = load_file(killed / "model.safetensors"), load_file(straight / "model.safetensors")
    assert all(torch.equal(final[name], expected[name]) for name in expected)


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun is not installed next to this Python")
def test_two_processes_train_and_save_one_loadable_checkpoint(corpus_dir, tmp_path):
    output = tmp_path / "ddp"
    argv = tiny_args(corpus_dir, str(output), eval_strategy="no", max_steps=3, save_steps=3,
                     ddp_backend="gloo", per_device_train_batch_size=4)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "training.pretrain",
                              *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["train_batch_size"] == 4
    # Both processes consumed data: an epoch takes ceil(samples / (4 per device * 2 processes)) steps.
    samples = json.loads((output / "all_results.json").read_text())["train_samples"]
    assert math.isclose(state["epoch"], 3 / math.ceil(samples / 8), rel_tol=1e-3)
    model = AutoModelForPreTraining.from_pretrained(output / "checkpoint-3")
    assert isinstance(model, modeling.OpenBertForPreTraining)


@pytest.mark.parametrize(("multiple", "expected"), [(64, 6016), (1, 6000), (8, 6000), (100, 6000)])
def test_a_new_model_s_vocabulary_is_rounded_up_to_the_multiple(multiple, expected):
    from openbert.training.pretraining.job import model_config

    arguments = PretrainingModelArguments(model_size="tiny", pad_vocab_size_to_multiple_of=multiple)
    assert model_config(arguments, 6000, pad_token_id=0).vocab_size == expected
