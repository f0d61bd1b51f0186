"""CPU attention on packed tokens: how many sequences per SDPA call (`ATTENTION_CALL_COST`), measured.

openbert's CPU path attends in groups of similar lengths (`packed_tokens.group_by_length`): a sequence joins
the group before it while padding it to that group's longest costs less than `ATTENTION_CALL_COST` units of
work (query-key pairs x hidden size). 0 gives one call per distinct length, a huge value one call for the
batch (the padded layout). This script times inference and a training step (forward + backward) of randomly
initialised models over a range of values, alternating runs, and prints each time relative to the padded
layout (lower is better) with the mean number of groups per batch.

    python benchmarks/bench_attention_groups.py
    python benchmarks/bench_attention_groups.py --sizes mini --costs 0 200000 1e15
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from openbert.modeling import OpenBertConfig, OpenBertModel, packed_tokens

SIZES = {  # name: (config, lengths of the variable-length batches)
    "mini": (dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024), (16, 128)),
    "minilm": (dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536), (8, 64)),
    "base": (dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072), (32, 256)),
}
PADDED = 1e15


def batches(lengths: tuple[int, int], batch_size: int, count: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    result = []
    for _ in range(count):
        real = torch.randint(lengths[0], lengths[1] + 1, (batch_size,), generator=generator)
        mask = (torch.arange(lengths[1])[None] < real[:, None]).long()
        ids = torch.randint(1000, 30000, (batch_size, lengths[1]), generator=generator) * mask
        result.append({"input_ids": ids, "attention_mask": mask})
    return result


def timed(model: OpenBertModel, data: list[dict[str, torch.Tensor]], train: bool) -> float:
    start = time.perf_counter()
    for batch in data:
        if train:
            model(**batch).last_hidden_state.square().mean().backward()
        else:
            with torch.inference_mode():
                model(**batch)
    return time.perf_counter() - start


def measure(size: str, costs: list[float], args: argparse.Namespace) -> None:
    config, lengths = SIZES[size]
    torch.manual_seed(0)
    model = OpenBertModel(OpenBertConfig(vocab_size=30522, hidden_dropout_prob=0.0,
                                         attention_probs_dropout_prob=0.0, **config))
    data = batches(lengths, args.batch_size, args.batches)
    for train in (False, True):
        model.train(train)
        seconds: dict[float, list[float]] = {cost: [] for cost in costs}
        for repeat in range(args.repeats + 1):  # the first round warms up
            for cost in costs:
                packed_tokens.ATTENTION_CALL_COST = cost
                elapsed = timed(model, data, train)
                if repeat:
                    seconds[cost].append(elapsed)
        padded = statistics.median(seconds[PADDED])
        for cost in costs:
            groups = statistics.mean(len(packed_tokens.group_by_length(
                batch["attention_mask"].sum(1).tolist(), cost / config["hidden_size"])) for batch in data)
            label = "padded layout" if cost == PADDED else f"{cost:,.0f}"
            print(f"{size:<7}{'training step' if train else 'inference':<15}{label:>15}{groups:>8.1f}"
                  f"{statistics.median(seconds[cost]) / padded:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["mini", "minilm"], choices=list(SIZES))
    parser.add_argument("--costs", nargs="+", type=float, default=[0, 50_000, 200_000, 800_000, 3_200_000])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} threads; batch {args.batch_size}; "
          f"median of {args.repeats} runs over {args.batches} batches")
    print(f"{'size':<7}{'measure':<15}{'call cost':>15}{'groups':>8}{'vs padded':>10}")
    for size in args.sizes:
        measure(size, sorted(set(args.costs)) + [PADDED], args)


if __name__ == "__main__":
    main()
