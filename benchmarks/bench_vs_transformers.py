"""openbert vs transformers' BERT: same weights, same inputs, one process, alternating runs, medians.

    python benchmarks/bench_vs_transformers.py                 # small (L4/H256) and base (L12/H768)
    python benchmarks/bench_vs_transformers.py --sizes small --repeats 7

Measures, for each size: inference tokens/s on variable-length batches (lengths uniform in [16, 128] for
small, [32, 256] for base) and on full-length batches; one pretraining step (MLM + NSP, forward + backward +
AdamW) on variable-length batches; and the peak memory of that step. Tokens/s counts real tokens only, so
both models are credited for the same work. Ratios are ours / transformers'.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass

import torch
import transformers

import modeling

SIZES = {
    "small": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024,
                  lengths=(16, 128)),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                 lengths=(32, 256)),
}
MASK_ID, VOCAB = 103, 30522


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    real_tokens: int


def make_batch(batch_size: int, low: int, high: int, seed: int, full_length: bool = False) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.full((batch_size,), high) if full_length else torch.randint(low, high + 1, (batch_size,),
                                                                                 generator=generator)
    seq = int(lengths.max())
    attention_mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    input_ids = torch.randint(1000, VOCAB, (batch_size, seq), generator=generator) * attention_mask
    token_type_ids = ((torch.arange(seq)[None, :] >= (lengths[:, None] // 2)) & attention_mask.bool()).long()
    return Batch(dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids),
                 int(attention_mask.sum()))


def pretraining_batch(batch: Batch, seed: int) -> dict[str, torch.Tensor]:
    """15% of real tokens selected for MLM (labels), the rest -100; random NSP labels."""
    generator = torch.Generator().manual_seed(seed)
    inputs = dict(batch.inputs)
    chosen = (torch.rand(inputs["input_ids"].shape, generator=generator) < 0.15) & inputs["attention_mask"].bool()
    labels = torch.where(chosen, inputs["input_ids"], torch.full_like(inputs["input_ids"], -100))
    inputs["input_ids"] = inputs["input_ids"].masked_fill(chosen, MASK_ID)
    inputs["labels"] = labels
    inputs["next_sentence_label"] = torch.randint(0, 2, (inputs["input_ids"].shape[0],), generator=generator)
    return inputs


def save_random_bert(size: str, directory: str, head: str) -> None:
    """transformers' `Bert{head}` with random weights (seeded), saved as the checkpoint both sides load."""
    spec = {k: v for k, v in SIZES[size].items() if k != "lengths"}
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, max_position_embeddings=512, **spec)
    getattr(transformers, f"Bert{head}")(config).save_pretrained(directory)


def build(size: str, directory: str, head: str, impl: str = "sdpa"):
    """Both libraries' models loaded from the same random BERT checkpoint."""
    save_random_bert(size, directory, head)
    theirs = getattr(transformers, f"Bert{head}").from_pretrained(directory, attn_implementation=impl)
    ours = getattr(modeling, f"OpenBert{head}").from_pretrained(directory, attn_implementation=impl)
    return ours, theirs


def alternate(runs: dict[str, callable], repeats: int) -> dict[str, float]:
    """Median seconds of each callable, run in alternation after two warm-ups each (the first calls of a
    process on new shapes are slower)."""
    times = {name: [] for name in runs}
    for _ in range(2):
        for run in runs.values():
            run()
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def padding_share(batches: list[Batch]) -> float:
    """The share of the padded layout's positions that are padding."""
    return 1 - sum(b.real_tokens for b in batches) / sum(b.inputs["input_ids"].numel() for b in batches)


def inference(size: str, batch_size: int, num_batches: int, repeats: int, full_length: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        ours, theirs = (m.eval() for m in build(size, directory, "Model"))
    low, high = SIZES[size]["lengths"]
    batches = [make_batch(batch_size, low, high, seed, full_length) for seed in range(num_batches)]

    def runner(model):
        def run():
            with torch.inference_mode():
                for batch in batches:
                    model(**batch.inputs)
        return run

    seconds = alternate({"openbert": runner(ours), "transformers": runner(theirs)}, repeats)
    tokens = sum(b.real_tokens for b in batches)
    return {name: tokens / s for name, s in seconds.items()}


def pretraining_step_runner(model, batches):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()

    def run():
        for inputs in batches:
            model(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return run


def pretraining(size: str, batch_size: int, num_batches: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        ours, theirs = build(size, directory, "ForPreTraining")
    low, high = SIZES[size]["lengths"]
    batches = [make_batch(batch_size, low, high, seed) for seed in range(num_batches)]
    inputs = [pretraining_batch(b, seed) for seed, b in enumerate(batches)]
    seconds = alternate({"openbert": pretraining_step_runner(ours, inputs),
                         "transformers": pretraining_step_runner(theirs, inputs)}, repeats)
    tokens = sum(b.real_tokens for b in batches)
    return {name: tokens / s for name, s in seconds.items()}


def _peak_memory_child(directory: str, size: str, batch_size: int, library: str, queue) -> None:
    """In a fresh process that loads only the measured model: the peak RSS of two pretraining steps
    (optimizer state included) above the RSS of the loaded model and its batch, in MiB."""
    classes = {"openbert": modeling.OpenBertForPreTraining, "transformers": transformers.BertForPreTraining}
    model = classes[library].from_pretrained(directory, attn_implementation="sdpa")
    low, high = SIZES[size]["lengths"]
    inputs = pretraining_batch(make_batch(batch_size, low, high, 0), 0)
    step = pretraining_step_runner(model, [inputs])
    gc.collect()
    # Reset the kernel's high-water mark (VmHWM) so that it records the steps only. (`ru_maxrss` cannot
    # do this: Linux carries it over from the parent process, whose RSS holds all the other models.)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    baseline = _proc_status_kib("VmRSS")
    step()
    step()
    queue.put((_proc_status_kib("VmHWM") - baseline) / 1024)


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_memory(size: str, batch_size: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    result = {}
    with tempfile.TemporaryDirectory() as directory:
        save_random_bert(size, directory, "ForPreTraining")  # the checkpoint both children load
        for library in ("openbert", "transformers"):
            queue = context.Queue()
            process = context.Process(target=_peak_memory_child, args=(directory, size, batch_size, library, queue))
            process.start()
            result[library] = queue.get()
            process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["small", "base"], choices=list(SIZES))
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per batch (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per model (default 5)")
    parser.add_argument("--batches", type=int, default=6,
                        help="distinct batches per measure (default 6); with few, the padding of the variable-length "
                             "batches strays from what uniform lengths give on average")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; {args.batches} batches of {args.batch_size}, "
          f"median of {args.repeats}")
    rows, results, shares = [], {}, {}
    for size in args.sizes:
        measured = {
            "inference, variable length (tokens/s)": inference(size, args.batch_size, args.batches, args.repeats,
                                                               False),
            "inference, full length (tokens/s)": inference(size, args.batch_size, args.batches, args.repeats, True),
            "pretraining step, variable length (tokens/s)": pretraining(size, args.batch_size, args.batches,
                                                                        args.repeats),
            "pretraining step peak memory (MiB)": peak_memory(size, args.batch_size),
        }
        low, high = SIZES[size]["lengths"]
        shares[size] = padding_share([make_batch(args.batch_size, low, high, seed) for seed in range(args.batches)])
        results[size] = {**measured, "variable-length padding share": shares[size]}
        for name, values in measured.items():
            rows.append((size, name, values["openbert"], values["transformers"],
                         values["openbert"] / values["transformers"]))
    print("\n| size | measure | openbert | transformers | ratio |\n|---|---|---:|---:|---:|")
    for size, name, ours, theirs, ratio in rows:
        print(f"| {size} | {name} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f}x |")
    print()
    for size, share in shares.items():
        # Why the bound: the dense layers cost the same per token in both libraries, so skipping padding can
        # gain at most padded / real positions there (attention, quadratic in length, can gain a little more).
        print(f"{size}: {share:.1%} of the variable-length batches' positions are padding, so skipping all of it "
              f"gives at most {1 / (1 - share):.2f}x on the dense layers")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
