"""Dynamic int8 quantization for CPU inference: accuracy and speed of a fine-tuned classifier, fp32 vs int8.

    python benchmarks/bench_quantization.py CHECKPOINT              # SST-2 dev from ../shared/data
    python benchmarks/bench_quantization.py CHECKPOINT --dev_file dev.tsv --repeats 5

CHECKPOINT is a fine-tuned sequence classifier (e.g. `bench_finetune_vs_transformers.py sst2`'s
`openbert-seed42`). `torch.ao.quantization.quantize_dynamic` replaces every `nn.Linear` with an int8
version (weights quantized once, activations per batch); both models classify the whole dev set in the
same process, alternating, and the script prints accuracy, agreement and the median wall time of each.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import torch
from torch.ao.quantization import quantize_dynamic
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import openbert  # noqa: F401  (registers openbert with the Auto classes)

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue" / "SST-2" / "dev.tsv"


def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row["sentence"] for row in rows], [int(row["label"]) for row in rows]


@torch.inference_mode()
def predict(model, batches: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    return torch.cat([model(**batch).logits.argmax(-1) for batch in batches])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="fine-tuned sequence-classification checkpoint")
    parser.add_argument("--dev_file", type=Path, default=DEFAULT_DEV, help="GLUE-style TSV (sentence, label)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the dev set per model")
    args = parser.parse_args()
    if not args.dev_file.is_file():
        raise SystemExit(f"{args.dev_file} not found: pass --dev_file (a TSV with sentence and label columns)")

    texts, labels = read_tsv(args.dev_file)
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    batches = [dict(tokenizer(texts[i:i + args.batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")) for i in range(0, len(texts), args.batch_size)]
    fp32 = AutoModelForSequenceClassification.from_pretrained(args.checkpoint).eval()
    int8 = quantize_dynamic(AutoModelForSequenceClassification.from_pretrained(args.checkpoint).eval(),
                            {torch.nn.Linear}, dtype=torch.qint8)
    models = {"fp32": fp32, "int8 dynamic": int8}
    predictions = {name: predict(model, batches) for name, model in models.items()}  # also the warm-up
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            predict(model, batches)
            seconds[name].append(time.perf_counter() - start)

    gold = torch.tensor(labels)
    print(f"{len(texts)} sentences from {args.dev_file}, batch {args.batch_size}, {torch.get_num_threads()} threads")
    print("\n| model | accuracy | median s | sentences/s |\n|---|---:|---:|---:|")
    for name in models:
        median = statistics.median(seconds[name])
        accuracy = (predictions[name] == gold).float().mean().item()
        print(f"| {name} | {accuracy:.4f} | {median:.2f} | {len(texts) / median:,.0f} |")
    agreement = (predictions["fp32"] == predictions["int8 dynamic"]).float().mean().item()
    speedup = statistics.median(seconds["fp32"]) / statistics.median(seconds["int8 dynamic"])
    print(f"\nint8 agrees with fp32 on {agreement:.2%} of sentences; speed-up {speedup:.2f}x")


if __name__ == "__main__":
    main()
