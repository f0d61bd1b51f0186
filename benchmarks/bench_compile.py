"""Is `torch.compile` worth it for openbert inference on a CPU? Eager (packed tokens) vs compiled (padded layout).

    python benchmarks/bench_compile.py            # the smaller size (L4/H256), ~5 min on 2 cores (inductor builds C++)
    python benchmarks/bench_compile.py --layers   # openbert eager vs `compile_layers()`, inference and pretraining

`--layers` compares openbert with itself: eager, and with `model.compile_layers()` (each layer's elementwise
blocks compiled, attention eager on packed tokens, as `--compile_layers` trains), on the same batches, for inference
and for one pretraining step (forward + backward + fused AdamW, `sparse_prediction` as openbert pretrains).

Traced graphs use the padded layout (packing needs the real-token count as a Python int, which a graph cannot
branch on), so compiling trades the padding skipped by the eager model for inductor's fused kernels. This
times, on the same variable-length batches as bench_vs_transformers.py (alternating, medians): openbert eager,
openbert compiled (`dynamic=True`, one graph for every batch shape), and transformers' BERT eager and compiled.
"""

from __future__ import annotations

import argparse
import copy
import functools
import tempfile
import time

import torch
from bench_vs_transformers import (
    SIZES,
    alternate,
    build,
    make_batch,
    padding_share,
    pretraining_batch,
    pretraining_step_runner,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default=next(iter(SIZES)), choices=list(SIZES))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", action="store_true", help="openbert eager vs compile_layers() (see above)")
    args = parser.parse_args()
    if args.layers:
        compiled_layers(args)
        return
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as directory:
        ours, theirs = (m.eval() for m in build(args.size, directory, "Model", device))
    low, high = SIZES[args.size]["lengths"]
    batches = [make_batch(args.batch_size, low, high, seed) for seed in range(args.batches)]
    models = {"openbert eager": ours, "transformers eager": theirs}
    for name, model in (("openbert compiled", ours), ("transformers compiled", theirs)):
        compiled = torch.compile(model, dynamic=True)
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:  # compile (and recompile, if a shape needs it) before timing
                compiled(**batch.inputs)
        print(f"{name}: compiled and ran the batches once in {time.perf_counter() - start:.0f} s")
        models[name] = compiled

    seconds = alternate({name: inference_runner(model, batches) for name, model in models.items()}, args.repeats,
                        device)
    tokens = sum(b.real_tokens for b in batches)
    print(f"\n{args.size}: {args.batches} batches of {args.batch_size}, {padding_share(batches):.1%} padding, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}\n")
    print("| model | real tokens/s | vs openbert eager |\n|---|---:|---:|")
    for name, s in seconds.items():
        print(f"| {name} | {tokens / s:,.0f} | {seconds['openbert eager'] / s:.2f}x |")


def inference_runner(model, batches):
    def run():
        with torch.inference_mode():
            for batch in batches:
                model(**batch.inputs)
    return run


def compiled_layers(args: argparse.Namespace) -> None:
    """openbert eager vs `compile_layers()`: inference and a pretraining step, same weights, same batches."""
    device = torch.device("cpu")
    low, high = SIZES[args.size]["lengths"]
    batches = [make_batch(args.batch_size, low, high, seed) for seed in range(args.batches)]
    inputs = [pretraining_batch(b, seed) for seed, b in enumerate(batches)]
    rows = {}
    # bench_vs_transformers' pretraining step (fused AdamW, train mode: dropout on, as a Trainer runs it)
    training_step = functools.partial(pretraining_step_runner, autocast_dtype=torch.float32)
    for measure, head, runner, data in (("inference", "Model", inference_runner, batches),
                                        ("pretraining step", "ForPreTraining", training_step, inputs)):
        with tempfile.TemporaryDirectory() as directory:
            eager, _ = build(args.size, directory, head, device, sparse_prediction=True)
        compiled = copy.deepcopy(eager.eval())
        compiled.compile_layers()
        models = {"eager": eager, "compiled layers": compiled}
        runs = {name: runner(model, data) for name, model in models.items()}
        start = time.perf_counter()
        runs["compiled layers"]()  # compile before timing (inductor builds C++: tens of seconds)
        print(f"{measure}: compiled and ran the batches once in {time.perf_counter() - start:.0f} s")
        rows[measure] = alternate(runs, args.repeats, device)
    tokens = sum(b.real_tokens for b in batches)
    print(f"\n{args.size}: {args.batches} batches of {args.batch_size}, {padding_share(batches):.1%} padding, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}\n")
    print("| measure | eager tokens/s | compiled layers tokens/s | compiled / eager |\n|---|---:|---:|---:|")
    for measure, seconds in rows.items():
        print(f"| {measure} | {tokens / seconds['eager']:,.0f} | {tokens / seconds['compiled layers']:,.0f} | "
              f"{seconds['eager'] / seconds['compiled layers']:.2f}x |")


if __name__ == "__main__":
    main()
