"""Pretraining on a busy CPU: CPU-seconds of the same run alone and beside a competing 2-thread process.

When another process keeps cores busy, threads that spin while waiting for each other (OpenMP barriers in
torch's intra-op parallelism, tokenizers' thread pool) burn CPU time without doing work: the run takes more
CPU-seconds for the same steps, not only more wall time. This script runs one `openbert pretrain` command
(the quickstart's tiny model, corpus and batch shape, a fixed number of steps, the tokenizer trained
beforehand) twice: on the machine as it is, and with a competing process that runs float matrix products
on 2 threads for the whole run. It prints wall time and CPU-seconds (user + system, from the kernel's
accounting of the child) of each, and their ratios.

    python benchmarks/bench_busy_machine.py                      # 300 steps, 2 competing threads
    python benchmarks/bench_busy_machine.py --env OMP_WAIT_POLICY=   # OpenMP's own default, which openbert avoids

`import openbert` sets OMP_WAIT_POLICY=PASSIVE where the user has not set it (the root __init__.py); an empty
value keeps GNU OpenMP's default (spin for a while, then sleep) without a warning.

The competing load must not share the run's process: that is the point. Run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPENBERT = str(Path(sys.executable).with_name("openbert"))  # the command installed beside this Python
COMPETITOR = """
import torch
torch.set_num_threads({threads})
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a)
"""


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command: list[str], env: dict[str, str], competing_threads: int) -> tuple[float, float]:
    """(wall seconds, CPU-seconds) of `command`, with a competing process running throughout if asked."""
    competitor = None
    if competing_threads:
        competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR.format(threads=competing_threads)])
        time.sleep(3)  # let it import torch and start computing before the measured run begins
    try:
        cpu_before, start = cpu_seconds_of_children(), time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start, cpu_seconds_of_children() - cpu_before
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()  # reaped here, so its CPU time lands outside the measured delta


def prepare(workdir: Path) -> tuple[Path, Path, Path]:
    """The quickstart's pretraining text and a tokenizer trained on it (kept out of the measurement)."""
    from openbert.training.builtin_data import sentiment_pretraining_corpus

    corpus = sentiment_pretraining_corpus()
    tokenizer = workdir / "tokenizer"
    subprocess.run([OPENBERT, "tokenizer", "train", "--train_files", str(corpus["train"]), "--vocab_size", "6000",
                    "--output_dir", str(tokenizer)], check=True, stdout=subprocess.DEVNULL)
    return corpus["train"], corpus["validation"], tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--competing_threads", type=int, default=2)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings for the measured run.")
    args = parser.parse_args()
    env = {**os.environ, **dict(item.split("=", 1) for item in args.env)}
    with tempfile.TemporaryDirectory() as workdir:
        train, validation, tokenizer = prepare(Path(workdir))
        command = [OPENBERT, "pretrain", "--train_files", str(train), "--validation_files", str(validation),
                   "--tokenizer_name", str(tokenizer), "--model_size", "tiny", "--max_seq_length", "64",
                   "--per_device_train_batch_size", "32", "--max_steps", str(args.max_steps),
                   "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
                   "--output_dir", str(Path(workdir) / "run"), "--overwrite_output_dir", "--seed", "42", "--do_train"]
        quiet = timed_run(command, env, 0)
        busy = timed_run(command, env, args.competing_threads)
    print(f"openbert pretrain, tiny, {args.max_steps} steps of 32 x 64 tokens; settings: {args.env or 'defaults'}")
    print(f"{'':<32}{'wall s':>10}{'CPU s':>10}")
    print(f"{'alone':<32}{quiet[0]:>10.1f}{quiet[1]:>10.1f}")
    print(f"{f'beside {args.competing_threads} busy threads':<32}{busy[0]:>10.1f}{busy[1]:>10.1f}")
    print(f"{'ratio (busy / alone)':<32}{busy[0] / quiet[0]:>10.2f}{busy[1] / quiet[1]:>10.2f}")


if __name__ == "__main__":
    main()
