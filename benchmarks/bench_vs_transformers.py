"""openbert vs transformers' BERT: same weights, same inputs, one process, alternating runs, medians.

    python benchmarks/bench_vs_transformers.py                 # mini (L4/H256) and base (L12/H768)
    python benchmarks/bench_vs_transformers.py --sizes mini --repeats 7
    python benchmarks/bench_vs_transformers.py --sizes base --measures pretraining memory
    python benchmarks/bench_vs_transformers.py --device cuda --batch-size 128 --peak-tflops 989

Measures, for each size: inference tokens/s on variable-length batches (lengths uniform in [16, 128] for
mini, [32, 256] for base) and on full-length batches; one pretraining step (MLM + NSP, forward + backward +
AdamW) on variable-length batches, with openbert configured as its pretraining runs it (`sparse_prediction`)
and with its default config (full MLM logits, like transformers); and the peak memory of the former.
Tokens/s counts real tokens only, so both models are credited for the same work. Ratios are ours /
transformers'.

With the variable-length row, transformers also runs padding-free batches of the same tokens (each batch's
sequences all as long as their mean): the most that skipping padding can give with its own kernels, against
which openbert's variable-length speed is printed too.

One more row compares openbert with itself: the pretraining step on the same pairs and masks, collated by its
pretraining collator either into packed rows (`padding_free=True`, no padding anywhere) or into padded batches
that the model unpads; collation is timed too, as a Trainer with `dataloader_num_workers=0` runs it.

On a GPU (`--device cuda`, bfloat16 by default): inference runs with weights in `--dtype`, the pretraining
step with float32 weights under autocast to `--dtype` (what Trainer's `bf16=True` does), and peak memory is
the CUDA allocator's. With `--peak-tflops` (the chip's dense matmul peak in `--dtype`), it also prints the
model-FLOP utilization: the matmul FLOPs that the real tokens need (and, in pretraining, the labelled rows'
vocabulary projection), per second, over that peak; the same useful work is credited to both libraries.
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

from openbert import modeling
from openbert.modeling import IGNORE_INDEX
from openbert.training.pretraining.collator import DataCollatorForPreTraining

SIZES = {
    "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024,
                 lengths=(16, 128)),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                 lengths=(32, 256)),
}
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID, VOCAB = 0, 100, 101, 102, 103, 30522


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    real_tokens: int

    def to(self, device: torch.device) -> Batch:
        return Batch({name: value.to(device) for name, value in self.inputs.items()}, self.real_tokens)


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
    """15% of real tokens selected for MLM (labels), the rest IGNORE_INDEX; random NSP labels."""
    generator = torch.Generator().manual_seed(seed)
    inputs = dict(batch.inputs)
    chosen = (torch.rand(inputs["input_ids"].shape, generator=generator) < 0.15) & inputs["attention_mask"].bool()
    labels = torch.where(chosen, inputs["input_ids"], torch.full_like(inputs["input_ids"], IGNORE_INDEX))
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


def build(size: str, directory: str, head: str, device: torch.device, dtype: torch.dtype = torch.float32,
          **openbert_config):
    """Both libraries' models loaded from the same random BERT checkpoint (`openbert_config`: openbert-only
    config fields, e.g. `sparse_prediction=True`)."""
    save_random_bert(size, directory, head)
    theirs = getattr(transformers, f"Bert{head}").from_pretrained(directory, attn_implementation="sdpa")
    ours = getattr(modeling, f"OpenBert{head}").from_pretrained(directory, attn_implementation="sdpa",
                                                               **openbert_config)
    return ours.to(device, dtype), theirs.to(device, dtype)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alternate(runs: dict[str, callable], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each callable, run in alternation after two warm-ups each (the first calls of a
    process on new shapes are slower)."""
    times = {name: [] for name in runs}
    for _ in range(2):
        for run in runs.values():
            run()
    synchronize(device)
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def padding_share(batches: list[Batch]) -> float:
    """The share of the padded layout's positions that are padding."""
    return 1 - sum(b.real_tokens for b in batches) / sum(b.inputs["input_ids"].numel() for b in batches)


def forward_flops(size: str, batches: list[Batch], labelled: int = 0) -> float:
    """Matmul FLOPs (2 per multiply-add) of one forward pass over the real tokens: every layer's dense
    projections per token, attention scores and context per sequence (4 * length^2 * hidden), and the MLM
    head on `labelled` rows. The FLOPs that padding or unlabelled vocabulary rows would add are not counted."""
    spec = SIZES[size]
    hidden, intermediate = spec["hidden_size"], spec["intermediate_size"]
    tokens = sum(b.real_tokens for b in batches)
    squares = sum(int(b.inputs["attention_mask"].sum(dim=1).square().sum()) for b in batches)
    per_layer = 2 * tokens * (4 * hidden**2 + 2 * hidden * intermediate) + 4 * hidden * squares
    return spec["num_hidden_layers"] * per_layer + 2 * labelled * (hidden**2 + hidden * VOCAB)


@dataclass
class Measure:
    """Each library's value (tokens/s, or MiB for memory), the useful FLOPs per second behind a throughput
    (for the model-FLOP utilization), and the padding share of the measured batches."""
    values: dict[str, float]
    flops_per_s: dict[str, float] | None = None
    padding_share: float | None = None


def throughput(batches: list[Batch], seconds: dict[str, float], flops_per_run: float) -> Measure:
    tokens = sum(b.real_tokens for b in batches)
    return Measure({name: tokens / s for name, s in seconds.items()},
                   {name: flops_per_run / s for name, s in seconds.items()}, padding_share(batches))


def inference(size: str, args: argparse.Namespace, full_length: bool) -> Measure:
    """Both libraries on the same batches. On variable-length batches, also transformers on padding-free batches
    of the same tokens (`PADDING_FREE`): each batch's real tokens as sequences of one length, their mean."""
    with tempfile.TemporaryDirectory() as directory:
        ours, theirs = (m.eval() for m in build(size, directory, "Model", args.device, args.dtype))
    low, high = SIZES[size]["lengths"]
    batches = [make_batch(args.batch_size, low, high, seed, full_length) for seed in range(args.batches)]

    def runner(model, inputs: list[Batch]):
        on_device = [b.to(args.device) for b in inputs]

        def run():
            with torch.inference_mode():
                for batch in on_device:
                    model(**batch.inputs)
        return run

    runs = {"openbert": runner(ours, batches), "transformers": runner(theirs, batches)}
    padding_free = [] if full_length else [
        make_batch(args.batch_size, mean, mean, seed, full_length=True)
        for seed, mean in enumerate(round(b.real_tokens / args.batch_size) for b in batches)]
    if padding_free:
        runs[PADDING_FREE] = runner(theirs, padding_free)
    seconds = alternate(runs, args.repeats, args.device)
    measure = throughput(batches, {name: seconds[name] for name in ("openbert", "transformers")},
                         forward_flops(size, batches))
    if padding_free:
        measure.values[PADDING_FREE] = sum(b.real_tokens for b in padding_free) / seconds[PADDING_FREE]
    return measure


def pretraining_step_runner(model, batches, autocast_dtype: torch.dtype):
    """One optimizer step per batch; float32 weights, the forward pass under autocast unless float32. AdamW's fused
    kernel, as both libraries' Trainers run it (openbert's commands ask for it, transformers' Trainer defaults to it
    with torch >= 2.8)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    model.train()
    device_type = next(model.parameters()).device.type

    def run():
        for inputs in batches:
            with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype != torch.float32):
                loss = model(**inputs).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return run


def pretraining(size: str, args: argparse.Namespace, sparse_prediction: bool) -> Measure:
    """openbert as `training.pretrain` runs it (`sparse_prediction=True`: MLM logits for labelled rows only), or
    with the default config (full `(batch, seq, vocab)` logits, as transformers computes them)."""
    with tempfile.TemporaryDirectory() as directory:
        ours, theirs = build(size, directory, "ForPreTraining", args.device, sparse_prediction=sparse_prediction)
    low, high = SIZES[size]["lengths"]
    batches = [make_batch(args.batch_size, low, high, seed) for seed in range(args.batches)]
    inputs = [pretraining_batch(b, seed) for seed, b in enumerate(batches)]
    labelled = sum(int((i["labels"] != IGNORE_INDEX).sum()) for i in inputs)
    inputs = [{name: value.to(args.device) for name, value in i.items()} for i in inputs]
    seconds = alternate({"openbert": pretraining_step_runner(ours, inputs, args.dtype),
                         "transformers": pretraining_step_runner(theirs, inputs, args.dtype)},
                        args.repeats, args.device)
    # Backward costs twice the forward's matmuls.
    return throughput(batches, seconds, 3 * forward_flops(size, batches, labelled))


def bert_like_tokenizer() -> transformers.BertTokenizer:
    """A tokenizer with BERT-base's special-token ids and vocabulary size, for the pretraining collator (it reads
    only ids: special tokens, [MASK], the vocabulary's size)."""
    specials = {"[PAD]": PAD_ID, "[UNK]": UNK_ID, "[CLS]": CLS_ID, "[SEP]": SEP_ID, "[MASK]": MASK_ID}
    names = {index: name for name, index in specials.items()}
    tokenizer = transformers.BertTokenizer(vocab={names.get(i, f"w{i}"): i for i in range(VOCAB)})
    assert len(tokenizer) == VOCAB
    return tokenizer


def pretraining_rows(batch: Batch, seed: int) -> list[dict]:
    """The batch's sequences as the pretraining data pipeline's rows: `[CLS] A [SEP] B [SEP]`, NSP label."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for ids, types, mask in zip(batch.inputs["input_ids"], batch.inputs["token_type_ids"],
                                batch.inputs["attention_mask"], strict=True):
        length = int(mask.sum())
        ids = ids[:length].clone()
        ids[[0, int((types[:length] == 0).sum()) - 1, length - 1]] = torch.tensor([CLS_ID, SEP_ID, SEP_ID])
        rows.append({"input_ids": ids.tolist(), "token_type_ids": types[:length].tolist(),
                     "next_sentence_label": int(torch.randint(0, 2, (1,), generator=generator))})
    return rows


class Collated:
    """Batches collated anew on every pass (on the CPU, then moved to `device`), as a data loader gives them."""

    def __init__(self, batches_of_rows: list[list[dict]], collator: DataCollatorForPreTraining, device: torch.device):
        self.batches_of_rows, self.collator, self.device = batches_of_rows, collator, device

    def __iter__(self):
        for rows in self.batches_of_rows:
            batch = self.collator(rows)
            yield {name: value.to(self.device) if isinstance(value, torch.Tensor) else value
                   for name, value in batch.items()}


def packed_pretraining(size: str, args: argparse.Namespace) -> Measure:
    """openbert's pretraining step (`sparse_prediction`, as its pretraining runs) on packed rows vs padded batches
    of the same pairs, collated by its pretraining collator (same seed: the same masks)."""
    with tempfile.TemporaryDirectory() as directory:
        save_random_bert(size, directory, "ForPreTraining")
        model = modeling.OpenBertForPreTraining.from_pretrained(directory, attn_implementation="sdpa",
                                                                sparse_prediction=True).to(args.device)
    low, high = SIZES[size]["lengths"]
    batches = [make_batch(args.batch_size, low, high, seed) for seed in range(args.batches)]
    rows = [pretraining_rows(b, seed) for seed, b in enumerate(batches)]
    tokenizer = bert_like_tokenizer()
    runs = {name: pretraining_step_runner(model, Collated(rows, DataCollatorForPreTraining(
        tokenizer, seed=0, padding_free=padding_free), args.device), args.dtype)
        for name, padding_free in (("packed", True), ("padded + unpad", False))}
    seconds = alternate(runs, args.repeats, args.device)
    tokens = sum(b.real_tokens for b in batches)
    return Measure({name: tokens / s for name, s in seconds.items()}, padding_share=padding_share(batches))


def _peak_memory_child(directory: str, size: str, args: argparse.Namespace, library: str, queue) -> None:
    """In a fresh process that loads only the measured model: the peak memory of two pretraining steps
    (optimizer state included) above that of the loaded model and its batch, in MiB. On CPU the process's
    RSS, on CUDA the allocator's."""
    classes = {"openbert": modeling.OpenBertForPreTraining, "transformers": transformers.BertForPreTraining}
    openbert_config = {"sparse_prediction": True} if library == "openbert" else {}
    model = classes[library].from_pretrained(directory, attn_implementation="sdpa", **openbert_config).to(args.device)
    low, high = SIZES[size]["lengths"]
    inputs = pretraining_batch(make_batch(args.batch_size, low, high, 0), 0)
    inputs = {name: value.to(args.device) for name, value in inputs.items()}
    step = pretraining_step_runner(model, [inputs], args.dtype)
    gc.collect()
    if args.device.type == "cuda":
        torch.cuda.synchronize(args.device)
        torch.cuda.reset_peak_memory_stats(args.device)
        baseline = torch.cuda.memory_allocated(args.device)
        def peak() -> int:
            return torch.cuda.max_memory_allocated(args.device)
    else:
        # Reset the kernel's high-water mark (VmHWM) so that it records the steps only. (`ru_maxrss` cannot
        # do this: Linux carries it over from the parent process, whose RSS holds all the other models.)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        baseline = _proc_status_kib("VmRSS") * 1024
        def peak() -> int:
            return _proc_status_kib("VmHWM") * 1024
    step()
    step()
    queue.put((peak() - baseline) / 2**20)


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_memory(size: str, args: argparse.Namespace) -> Measure:
    context = multiprocessing.get_context("spawn")
    result = {}
    with tempfile.TemporaryDirectory() as directory:
        save_random_bert(size, directory, "ForPreTraining")  # the checkpoint both children load
        for library in ("openbert", "transformers"):
            queue = context.Queue()
            process = context.Process(target=_peak_memory_child, args=(directory, size, args, library, queue))
            process.start()
            result[library] = queue.get()
            process.join()
    return Measure(result)


PACKED_ROW = "pretraining step, packed batches (tokens/s)"
# What skipping padding can give with transformers' own kernels: its speed on padding-free batches of the same
# tokens (every sequence of a batch as long as their mean: no padding, and the least attention work for them).
PADDING_FREE = "transformers, padding-free batches of the same tokens"
# --measures: name -> (row, what measures it)
MEASURES = {
    "variable": ("inference, variable length (tokens/s)", lambda size, args: inference(size, args, False)),
    "full": ("inference, full length (tokens/s)", lambda size, args: inference(size, args, True)),
    "pretraining": ("pretraining step, variable length (tokens/s)",
                    lambda size, args: pretraining(size, args, sparse_prediction=True)),
    "full-logits": ("pretraining step, default config: full MLM logits (tokens/s)",
                    lambda size, args: pretraining(size, args, sparse_prediction=False)),
    "memory": ("pretraining step peak memory (MiB)", peak_memory),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["mini", "base"], choices=list(SIZES))
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per batch (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per model (default 5)")
    parser.add_argument("--batches", type=int, default=6,
                        help="distinct batches per measure (default 6); with few, the padding of the variable-length "
                             "batches strays from what uniform lengths give on average")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                        help="compute dtype (default: bfloat16 on cuda, float32 on cpu)")
    parser.add_argument("--peak-tflops", type=float,
                        help="the device's dense matmul peak in --dtype, e.g. 989 for an H100/H200 in bfloat16; "
                             "prints the model-FLOP utilization")
    parser.add_argument("--measures", nargs="+", default=[*MEASURES, "packed"], choices=[*MEASURES, "packed"],
                        help="what to measure (default: all): " + ", ".join(
                            f"{name} ({row})" for name, (row, _) in MEASURES.items()) + f", packed ({PACKED_ROW})")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    args.device = torch.device(args.device)
    args.dtype = getattr(torch, args.dtype or ("bfloat16" if args.device.type == "cuda" else "float32"))

    where = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else (
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {where}, {args.dtype}; "
          f"{args.batches} batches of {args.batch_size}, median of {args.repeats}")
    rows, results, shares, packed_rows = [], {}, {}, []
    for size in args.sizes:
        measured = {row: measure(size, args) for name, (row, measure) in MEASURES.items() if name in args.measures}
        results[size] = {name: m.values for name, m in measured.items()}
        if "variable" in args.measures:
            shares[size] = measured[MEASURES["variable"][0]].padding_share
            results[size]["variable-length padding share"] = shares[size]
        if "packed" in args.measures:
            packed = packed_pretraining(size, args)
            packed_rows.append((size, packed.values["packed"], packed.values["padded + unpad"]))
            results[size][PACKED_ROW] = packed.values
        for name, m in measured.items():
            ours, theirs = m.values["openbert"], m.values["transformers"]
            mfu = {}
            if args.peak_tflops and m.flops_per_s:
                mfu = {lib: flops / (args.peak_tflops * 1e12) for lib, flops in m.flops_per_s.items()}
                results[size][f"{name} MFU"] = mfu
            rows.append((size, name, ours, theirs, ours / theirs, mfu))
    mfu_header = " | MFU openbert | MFU transformers" if args.peak_tflops else ""
    print(f"\n| size | measure | openbert | transformers | ratio{mfu_header} |\n|---|---|---:|---:|---:|"
          + ("---:|---:|" if args.peak_tflops else ""))
    for size, name, ours, theirs, ratio, mfu in rows:
        cells = [f"{ours:,.0f}", f"{theirs:,.0f}", f"{ratio:.2f}x"]
        if args.peak_tflops:
            cells += [f"{mfu[lib]:.1%}" if mfu else "" for lib in ("openbert", "transformers")]
        print(f"| {size} | {name} | " + " | ".join(cells) + " |")
    if packed_rows:
        print("\nopenbert alone, its pretraining collator's two forms of the same batches:\n"
              "| size | measure | packed | padded + unpad | ratio |\n|---|---|---:|---:|---:|")
    for size, packed, padded in packed_rows:
        print(f"| {size} | {PACKED_ROW} | {packed:,.0f} | {padded:,.0f} | {packed / padded:.2f}x |")
    print()
    for size, share in shares.items():
        # Why the bound: the dense layers cost the same per token in both libraries, so skipping padding can
        # gain at most padded / real positions there (attention, quadratic in length, can gain a little more).
        print(f"{size}: {share:.1%} of the variable-length batches' positions are padding, so skipping all of it "
              f"gives at most {1 / (1 - share):.2f}x on the dense layers")
        values = results[size][MEASURES["variable"][0]]
        print(f"{size}: transformers on padding-free batches of the same tokens: {values[PADDING_FREE]:,.0f} "
              f"tokens/s, {values[PADDING_FREE] / values['transformers']:.2f}x its variable-length speed; "
              f"openbert's variable-length speed is {values['openbert'] / values[PADDING_FREE]:.2f}x that")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
