"""What the reliability tests share: tiny classification runs, the `openbert` command run in-process as a user
runs it (exit status and stderr) and a fingerprint of every file of a folder."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from openbert.training import cli

POSITIVE = ["a great film", "great acting and a great plot", "truly great", "great fun", "simply great work",
            "the ending was great", "great music", "great from start to finish"]
NEGATIVE = ["an awful film", "awful acting and an awful plot", "truly awful", "awful noise", "simply awful work",
            "the ending was awful", "awful music", "awful from start to finish"]
CLASSIFY = ("finetune", "classification")


def write_csv(path: Path, rows, header=("text", "label")) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def sentiment_rows() -> list[tuple[str, str]]:
    return [(text, "pos") for text in POSITIVE] + [(text, "neg") for text in NEGATIVE]


def classification_args(model: str, data: str, output_dir: Path, *extra: str) -> list[str]:
    """A tiny classification run: 6 steps of 4 rows, a checkpoint every 3 steps, a log line every step."""
    return ["--model_name_or_path", model, "--train_files", data, "--validation_files", data, "--do_train",
            "--do_eval", "--output_dir", str(output_dir), "--max_steps", "6", "--save_strategy", "steps",
            "--save_steps", "3", "--logging_steps", "1", "--per_device_train_batch_size", "4",
            "--per_device_eval_batch_size", "16", "--learning_rate", "3e-3", "--report_to", "none", "--seed", "0",
            "--use_cpu", "--disable_tqdm", "true", *extra]


def openbert(*argv: str) -> int:
    """`openbert ARGV` in this process: its exit status (0 when it returns)."""
    try:
        cli.main(list(argv))
    except SystemExit as exit_info:
        return exit_info.code
    return 0


def fingerprint(directory: Path) -> dict[str, str]:
    """Every file under `directory` (path relative to it) with the sha256 of its content."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}
