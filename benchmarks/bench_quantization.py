"""int8 inference on CPU: accuracy, speed and file size of a fine-tuned classifier, fp32 vs int8 variants.

    python benchmarks/bench_quantization.py CHECKPOINT              # SST-2 dev from ../shared/data
    python benchmarks/bench_quantization.py CHECKPOINT --variants fp32 int8-per-channel onnxruntime-int8
    python benchmarks/bench_quantization.py CHECKPOINT --variants fp32 bf16 int8-weights --repeats 5
    python benchmarks/bench_quantization.py CHECKPOINT --keep_fp32 "*.output.dense" --repeats 5

CHECKPOINT is a fine-tuned sequence classifier (e.g. `bench_finetune_vs_transformers.py sst2`'s
`openbert-seed42`). The variants:

- `fp32`: the checkpoint as loaded (openbert's packed path: no compute on padding);
- `int8`: `torch.ao.quantization.quantize_dynamic` on every `nn.Linear` (int8 weights with one scale per
  matrix, activations quantized per batch); `int8-per-channel`: one scale per output row, which follows
  rows of very different magnitude (BERT's feed-forward output layers have some) far better;
  `--keep_fp32 PATTERN...` leaves the matching modules (fnmatch on their names) in fp32 in both; they run on
  `--quantized_engine` (default `onednn` where torch has it: on CPUs with AMX or VNNI int8 instructions its
  matrix products were up to 2x faster than the default `x86` engine's);
- `onnxruntime-int8`: the model exported to ONNX (torch's dynamo exporter, padded layout) and quantized by
  ONNX Runtime's `quantize_dynamic` (int8 weights per channel), run by ONNX Runtime;
- `bf16`: the weights in bfloat16, computed in bfloat16 (on CPUs with AMX or AVX512-BF16 matrix instructions
  the matrix products run on them); `bf16-separate-gelu`: the same without the fused dense + GELU call that
  openbert's bfloat16 CPU inference makes (`modeling_openbert._fused_cpu_dense_gelu`), to measure that call;
- `int8-weights`: openbert's weight-only int8 checkpoint (`OpenBertInt8Config`): loaded with it, saved (every
  matrix, linear layers and embeddings, as int8 with one scale per row) and loaded back, which computes in
  bfloat16 as `bf16` does; its file size is that saved checkpoint's.

Every variant classifies the whole dev set in one process, alternating, after one warm-up pass; the script
prints accuracy, agreement with fp32, the median wall time, the speed-up over fp32 and each variant's file
size (the weights as each would be saved) relative to fp32's.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from openbert import OpenBertInt8Config
from openbert.modeling import modeling_openbert

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue" / "SST-2" / "dev.tsv"
VARIANTS = ("fp32", "int8", "int8-per-channel", "onnxruntime-int8", "bf16", "bf16-separate-gelu", "int8-weights")
QCONFIGS = {"int8": default_dynamic_qconfig, "int8-per-channel": per_channel_dynamic_qconfig}
Batches = list[dict[str, torch.Tensor]]


def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row["sentence"] for row in rows], [int(row["label"]) for row in rows]


def saved_size(state_dict: dict[str, torch.Tensor]) -> int:
    with tempfile.NamedTemporaryFile(suffix=".pt") as handle:
        torch.save(state_dict, handle.name)
        return Path(handle.name).stat().st_size


@contextlib.contextmanager
def separate_gelu() -> Iterator[None]:
    """openbert's bfloat16 CPU inference without its fused dense + GELU call, while in the block."""
    fuses, modeling_openbert._MKLDNN_BF16 = modeling_openbert._MKLDNN_BF16, False
    try:
        yield
    finally:
        modeling_openbert._MKLDNN_BF16 = fuses


def torch_variant(checkpoint: str, variant: str, keep_fp32: list[str],
                  directory: Path) -> tuple[Callable[[Batches], torch.Tensor], int]:
    if variant == "int8-weights":
        quantized = AutoModelForSequenceClassification.from_pretrained(checkpoint,
                                                                        quantization_config=OpenBertInt8Config())
        quantized.save_pretrained(directory / variant)
        model = AutoModelForSequenceClassification.from_pretrained(directory / variant).eval()
        size = (directory / variant / "model.safetensors").stat().st_size
    else:
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
        if variant in QCONFIGS:
            linear = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
            chosen = {name: QCONFIGS[variant] for name in linear
                      if not any(fnmatch.fnmatch(name, pattern) for pattern in keep_fp32)}
            model = quantize_dynamic(model, chosen, dtype=torch.qint8)
        model = model.to(torch.bfloat16) if variant.startswith("bf16") else model
        size = saved_size(model.state_dict())

    @torch.inference_mode()
    def predict(batches: Batches) -> torch.Tensor:
        with separate_gelu() if variant == "bf16-separate-gelu" else contextlib.nullcontext():
            return torch.cat([model(**batch).logits.argmax(-1) for batch in batches])

    return predict, size


def onnxruntime_variant(checkpoint: str, example: dict[str, torch.Tensor],
                        directory: Path) -> tuple[Callable[[Batches], torch.Tensor], int]:
    import onnxruntime
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic
    from torch.export import Dim

    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    dims = {0: Dim("batch"), 1: Dim("seq", max=model.config.max_position_embeddings)}
    program = torch.onnx.export(model, (), kwargs=example, dynamic_shapes={name: dims for name in example},
                                dynamo=True, verbose=False)
    fp32_path, int8_path = directory / "model.onnx", directory / "model.int8.onnx"
    program.save(str(fp32_path))
    ort_quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8, per_channel=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])

    def predict(batches: Batches) -> torch.Tensor:
        return torch.cat([torch.from_numpy(session.run(None, {k: v.numpy() for k, v in batch.items()})[0])
                          .argmax(-1) for batch in batches])

    return predict, int8_path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="fine-tuned sequence-classification checkpoint")
    parser.add_argument("--dev_file", type=Path, default=DEFAULT_DEV, help="GLUE-style TSV (sentence, label)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--keep_fp32", nargs="*", default=[], metavar="PATTERN",
                        help="module names (fnmatch patterns) the torch int8 variants leave in fp32")
    engines = torch.backends.quantized.supported_engines
    parser.add_argument("--quantized_engine", choices=engines,
                        default="onednn" if "onednn" in engines else torch.backends.quantized.engine,
                        help="torch's backend for the int8 and int8-per-channel variants")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the dev set per variant")
    args = parser.parse_args()
    if not args.dev_file.is_file():
        raise SystemExit(f"{args.dev_file} not found: pass --dev_file (a TSV with sentence and label columns)")

    torch.backends.quantized.engine = args.quantized_engine
    texts, labels = read_tsv(args.dev_file)
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    batches = [dict(tokenizer(texts[i:i + args.batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")) for i in range(0, len(texts), args.batch_size)]
    variants = ["fp32"] + [name for name in args.variants if name != "fp32"]
    with tempfile.TemporaryDirectory() as directory:
        built = {name: onnxruntime_variant(args.checkpoint, batches[0], Path(directory))
                 if name == "onnxruntime-int8"
                 else torch_variant(args.checkpoint, name, args.keep_fp32, Path(directory))
                 for name in variants}
        predictions = {name: predict(batches) for name, (predict, _) in built.items()}  # also the warm-up
        seconds: dict[str, list[float]] = {name: [] for name in built}
        for _ in range(args.repeats):
            for name, (predict, _) in built.items():
                start = time.perf_counter()
                predict(batches)
                seconds[name].append(time.perf_counter() - start)

    gold, fp32 = torch.tensor(labels), predictions["fp32"]
    print(f"{len(texts)} sentences from {args.dev_file}, batch {args.batch_size}, {torch.get_num_threads()} "
          f"threads, median of {args.repeats}, torch int8 engine {args.quantized_engine}"
          + (f"; fp32 kept: {' '.join(args.keep_fp32)}" if args.keep_fp32 else ""))
    print("\n| variant | accuracy | agrees with fp32 | median s | sentences/s | speed-up | file size |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (_, size) in built.items():
        median = statistics.median(seconds[name])
        print(f"| {name} | {(predictions[name] == gold).float().mean():.4f} | "
              f"{(predictions[name] == fp32).float().mean():.2%} | {median:.2f} | {len(texts) / median:,.0f} | "
              f"{statistics.median(seconds['fp32']) / median:.2f}x | {size / built['fp32'][1]:.0%} |")


if __name__ == "__main__":
    main()
