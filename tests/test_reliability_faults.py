"""Faults during a run, simulated deterministically: a kill or Ctrl-C in the middle of a checkpoint save, a second
run into a busy output directory, a run that diverges, NaN gradients, a full disk; then what the next run does.

Each kill happens between two files of a save (the Trainer writes trainer_state.json last; the patched save
writes half of it, then signals itself), so the tests see exactly what a real interruption leaves behind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from reliability_runs import CLASSIFY, classification_args, fingerprint, openbert, sentiment_rows, write_csv
from safetensors.torch import load_file
from tiny_checkpoint import save_tiny_checkpoint
from transformers import TrainerCallback
from transformers.trainer_callback import TrainerState

from openbert.training.classification import main as classify
from openbert.training.errors import OutOfSpace, TrainingDiverged
from openbert.training.output_dir import LOCK_NAME, OutputDirLock, checkpoint_problem
from openbert.training.run_trainer import RunTrainer

REPO = Path(__file__).resolve().parents[1]
# `openbert ARGV`, its checkpoint save at step KILL_AT_STEP interrupted after the model, optimizer, scheduler and
# RNG states are written, halfway through trainer_state.json. First it says it got there (creates the file
# PAUSED) and waits for the file RESUME, so the test can try a second run while this one holds the output dir.
INTERRUPTED_SAVE = """
import dataclasses, json, os, signal, sys, time
from transformers.trainer_callback import TrainerState
from openbert.training.cli import main

save_to_json = TrainerState.save_to_json

def interrupted(self, json_path):
    if os.path.basename(os.path.dirname(json_path)) != "checkpoint-" + os.environ["KILL_AT_STEP"]:
        return save_to_json(self, json_path)
    open(os.environ["PAUSED"], "w").close()
    while not os.path.exists(os.environ["RESUME"]):
        time.sleep(0.05)
    text = json.dumps(dataclasses.asdict(self))
    with open(json_path, "w") as handle:
        handle.write(text[: len(text) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

TrainerState.save_to_json = interrupted
main(sys.argv[1:])
"""


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def setup(tmp_path_factory, minilm_dir) -> tuple[str, str, Path]:
    root = tmp_path_factory.mktemp("faults")
    tiny = str(save_tiny_checkpoint(root / "tiny", minilm_dir))
    return tiny, write_csv(root / "data.csv", sentiment_rows()), root


@pytest.fixture(scope="module")
def straight(setup) -> Path:
    """The uninterrupted run every interrupted one must continue exactly."""
    tiny, data, root = setup
    assert openbert(*CLASSIFY, *classification_args(tiny, data, root / "straight")) == 0
    return root / "straight"


def subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def losses(output_dir: Path) -> dict[int, float]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


def same_weights(first: Path, second: Path) -> bool:
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.05)


SAVE_TO_JSON = TrainerState.save_to_json


def interrupt_with_sigint(self, json_path: str) -> None:
    """`TrainerState.save_to_json` that, for checkpoint-6, writes half of the state and then gets Ctrl-C."""
    if Path(json_path).parent.name != "checkpoint-6":
        return SAVE_TO_JSON(self, json_path)
    text = json.dumps(dataclasses.asdict(self))
    Path(json_path).write_text(text[: len(text) // 2])
    os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt here, as on a real Ctrl-C


def test_sigkill_in_a_save_then_the_same_command_resumes_and_a_concurrent_run_fails_at_once(
        setup, straight, tmp_path, capsys, caplog, training_spy):
    """One run, SIGKILLed in the middle of a checkpoint save; while it holds its output directory a second run into
    it fails at once; after the kill, the same command takes the dead run's lock over and resumes exactly."""
    tiny, data, _ = setup
    output = tmp_path / "run"
    argv = [*CLASSIFY, *classification_args(tiny, data, output)]
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    killed = subprocess.Popen([sys.executable, "-c", INTERRUPTED_SAVE, *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True,
                              env=subprocess_env(KILL_AT_STEP="6", PAUSED=str(paused), RESUME=str(resume)))
    try:
        wait_for(paused, killed)
        start = time.monotonic()
        assert openbert(*argv) == 1
        assert time.monotonic() - start < 10 and training_spy == []  # at once: before any data or model
        assert f"is in use by another run (pid {killed.pid} on " in capsys.readouterr().err
        resume.touch()
        assert killed.wait(timeout=120) == -signal.SIGKILL
    finally:
        killed.kill()
    assert "cut short" in checkpoint_problem(output / "checkpoint-6") and (output / LOCK_NAME).exists()
    assert checkpoint_problem(output / "checkpoint-3") is None and not (output / "README.md").exists()
    before = fingerprint(output / "checkpoint-3")

    with caplog.at_level(logging.WARNING):
        assert openbert(*argv) == 0  # the same command
    assert f"was left by a run that ended without releasing it (pid {killed.pid} on" in caplog.text
    assert f"Ignoring {output / 'checkpoint-6'}: its trainer_state.json is cut short" in caplog.text
    assert f"Resuming from {output / 'checkpoint-3'}" in caplog.text
    assert_continues_exactly(output, straight, before)


def test_ctrl_c_in_a_save_then_the_same_command_resumes(setup, straight, tmp_path, capsys, caplog, monkeypatch):
    tiny, data, _ = setup
    output = tmp_path / "run"
    argv = [*CLASSIFY, *classification_args(tiny, data, output)]
    with monkeypatch.context() as patched:
        patched.setattr(TrainerState, "save_to_json", interrupt_with_sigint)
        with caplog.at_level(logging.WARNING):
            assert openbert(*argv) == 130
    error = capsys.readouterr().err
    assert error.endswith("openbert finetune classification: interrupted\n") and "Traceback" not in error
    assert f"The last complete checkpoint is {output / 'checkpoint-3'}: run the same command again" in caplog.text
    assert "cut short" in checkpoint_problem(output / "checkpoint-6") and not (output / LOCK_NAME).exists()
    before = fingerprint(output / "checkpoint-3")
    assert openbert(*argv) == 0
    assert_continues_exactly(output, straight, before)


def assert_continues_exactly(output: Path, straight: Path, checkpoint_before: dict[str, str]) -> None:
    """The resumed run left its checkpoint alone and ended where the uninterrupted run did, bit for bit."""
    assert fingerprint(output / "checkpoint-3") == checkpoint_before
    assert losses(output) == losses(straight) and len(losses(straight)) == 6
    assert same_weights(output, straight) and same_weights(output / "checkpoint-6", straight / "checkpoint-6")
    assert (output / "README.md").is_file() and not (output / LOCK_NAME).exists()


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun is not installed next to this Python")
def test_every_process_of_a_multi_process_run_stops_when_the_output_dir_is_busy(setup, tmp_path):
    """Only the main process takes the lock; the other one learns the outcome instead of waiting forever."""
    tiny, data, _ = setup
    output = tmp_path / "ddp"
    lock = OutputDirLock(output)
    lock.acquire()
    try:
        torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
        done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m",
                               "openbert.training.classification", *classification_args(tiny, data, output),
                               "--ddp_backend", "gloo"], cwd=REPO, capture_output=True, text=True,
                              env=subprocess_env(), timeout=240)
    finally:
        lock.release()
    assert done.returncode != 0
    assert done.stderr.count("is in use by another run") >= 2, done.stderr[-3000:]


class RecordSaves(TrainerCallback):
    """The fingerprint of each checkpoint right after the Trainer wrote it."""

    def __init__(self) -> None:
        self.saved: dict[str, dict[str, str]] = {}

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.saved[folder.name] = fingerprint(folder)


def test_a_diverging_run_stops_non_zero_without_card_and_keeps_its_checkpoint(tmp_path, capsys, monkeypatch):
    """The issue's run: `--learning_rate 1e6 --max_grad_norm 0` logged loss 0, saved NaN weights and exited 0."""
    from test_pretrain_entrypoint import tiny_args, write_corpus

    write_corpus(tmp_path / "train.txt", 200, seed=0)
    write_corpus(tmp_path / "valid.txt", 40, seed=1)
    recorder = RecordSaves()
    monkeypatch.setattr(RunTrainer, "__init__", _with_callback(RunTrainer.__init__, recorder))
    argv = tiny_args(tmp_path, "out", learning_rate=1e6, max_grad_norm=0, max_steps=300, save_steps=1,
                     eval_strategy="no")
    assert openbert("pretrain", *argv) == 1
    error = capsys.readouterr().err
    assert "training diverged: at step 2, the loss is nan" in error and "learning rate too high" in error
    output = tmp_path / "out"
    assert f"The last complete checkpoint, {output / 'checkpoint-1'}, is intact" in error
    assert sorted(recorder.saved) == ["checkpoint-1"] and fingerprint(output / "checkpoint-1") == \
        recorder.saved["checkpoint-1"]
    weights = load_file(output / "checkpoint-1" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    assert not (output / "README.md").exists() and not (output / "model.safetensors").exists()
    assert not (output / "all_results.json").exists()


def _with_callback(init, callback: TrainerCallback):
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(callback)
    return wrapped


class NanGradientsFrom(TrainerCallback):
    """From step `step` on, the classifier's weight gets NaN gradients while the loss stays finite."""

    def __init__(self, step: int) -> None:
        self.step, self.model = step, None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.model = model
        if state.global_step + 1 == self.step:
            model.classifier.weight.register_hook(lambda gradient: torch.full_like(gradient, math.nan))


def test_nan_gradients_stop_the_run_before_the_optimizer_applies_them(setup, tmp_path):
    tiny, data, _ = setup
    output = tmp_path / "nan"
    poison = NanGradientsFrom(step=4)
    with pytest.raises(TrainingDiverged, match="at step 4, the gradient norm is nan") as error:
        classify(classification_args(tiny, data, output), callbacks=[poison])
    assert f"The last complete checkpoint, {output / 'checkpoint-3'}, is intact" in str(error.value)
    # The weights in memory are still those of step 3: the NaN update was never applied.
    saved = load_file(output / "checkpoint-3" / "model.safetensors")
    assert all(torch.equal(tensor, saved[name]) for name, tensor in poison.model.state_dict().items()
               if name in saved)
    assert not (output / "README.md").exists()


def test_a_loss_far_above_its_start_is_reported(setup, tmp_path, caplog):
    tiny, data, _ = setup
    with caplog.at_level(logging.WARNING):
        classify(classification_args(tiny, data, tmp_path / "hot", "--learning_rate", "1e4"))
    assert "over 10x its first value" in caplog.text and "learning rate too high" in caplog.text


class FullDiskAt(TrainerCallback):
    """Once checkpoint-`step`'s save starts, its optimizer.pt can only be written to /dev/full (ENOSPC)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step + 3 == self.step:
            folder = Path(args.output_dir) / f"checkpoint-{self.step}"
            folder.mkdir()
            (folder / "optimizer.pt").symlink_to("/dev/full")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_during_a_save_names_the_device_and_the_last_complete_checkpoint(setup, tmp_path):
    tiny, data, _ = setup
    output = tmp_path / "full"
    with pytest.raises(OutOfSpace) as error:
        classify(classification_args(tiny, data, output), callbacks=[FullDiskAt(6)])
    message = str(error.value)
    assert message.startswith(f"no space left on the device holding {output} (")
    assert "unexpected pos" in message  # what torch said, kept for the record
    assert f"The last complete checkpoint, {output / 'checkpoint-3'}, is intact" in message
    assert checkpoint_problem(output / "checkpoint-3") is None and checkpoint_problem(output / "checkpoint-6")


def test_the_hub_token_never_reaches_the_disk(setup, tmp_path):
    tiny, data, _ = setup
    token = "hf_ThisMustNeverBeWrittenAnywhere"
    output = tmp_path / "secret"
    classify(classification_args(tiny, data, output, "--hub_token", token))
    files = [path for path in output.rglob("*") if path.is_file()]
    assert {"training_args.bin", "checkpoint-3/training_args.bin"} <= {str(p.relative_to(output)) for p in files}
    assert not [path for path in files if token.encode() in path.read_bytes()]
    saved = torch.load(output / "checkpoint-3" / "training_args.bin", weights_only=False)
    assert saved.hub_token is None and type(saved).__module__.startswith("transformers.")


def test_question_answering_resumes_too(minilm_dir, tmp_path, caplog):
    """Fine-tuning used to ignore --resume_from_checkpoint and restart at step 0."""
    from test_finetune_qa import WINDOWS, squad_file

    from openbert.training.qa import main as answer

    tiny = str(save_tiny_checkpoint(tmp_path / "tiny", minilm_dir))
    train = squad_file(tmp_path / "train.json")
    argv = ["--model_name_or_path", tiny, "--train_files", train, "--do_train", "--output_dir", str(tmp_path / "qa"),
            "--save_steps", "2", "--logging_steps", "1", "--per_device_train_batch_size", "4", "--report_to", "none",
            "--use_cpu", *WINDOWS]
    answer([*argv, "--max_steps", "2"])
    # The run finished: running it again (as with a larger --max_steps) is refused unless asked for explicitly.
    with pytest.raises(ValueError, match="holds a finished run .* pass --overwrite_output_dir"):
        answer([*argv, "--max_steps", "3"])
    with caplog.at_level(logging.WARNING):
        answer([*argv, "--max_steps", "3", "--resume_from_checkpoint", "last"])
    assert f"Resuming from {tmp_path / 'qa' / 'checkpoint-2'}." in caplog.text
    state = json.loads((tmp_path / "qa" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and [entry["step"] for entry in state["log_history"] if "loss" in entry] == [
        1, 2, 3]
    with pytest.raises(FileNotFoundError, match="--resume_from_checkpoint .*missing: no such folder"):
        answer([*argv, "--max_steps", "4", "--resume_from_checkpoint", str(tmp_path / "missing")])


def test_batches_without_masked_tokens_add_no_nan(tmp_path):
    """The issue's `--max_seq_length 5 --per_device_train_batch_size 1` logged `mlm_loss nan` forever: pairs of
    two one-token segments leave most batches without a masked token."""
    from test_pretrain_entrypoint import tiny_args, write_corpus

    write_corpus(tmp_path / "train.txt", 200, seed=0)
    write_corpus(tmp_path / "valid.txt", 40, seed=1)
    argv = tiny_args(tmp_path, "out", max_seq_length=5, per_device_train_batch_size=1, max_steps=12,
                     save_strategy="no", eval_strategy="no", do_eval=False)
    assert openbert("pretrain", *argv) == 0
    history = json.loads((tmp_path / "out" / "trainer_state.json").read_text())["log_history"]
    mlm = [entry["mlm_loss"] for entry in history if "mlm_loss" in entry]
    assert len(mlm) == 12 and all(math.isfinite(value) for value in mlm)
    assert 0.0 in mlm  # some batches had nothing masked, and counted as no loss rather than NaN
