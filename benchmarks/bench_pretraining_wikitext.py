"""Pretrain a `mini` openbert on WikiText and report held-out MLM and NSP accuracy against baselines.

    python benchmarks/bench_pretraining_wikitext.py                      # held-out sections (~40 min, 2 cores)
    python benchmarks/bench_pretraining_wikitext.py --split articles     # held-out articles
    python benchmarks/bench_pretraining_wikitext.py --max_steps 20       # a smoke test; extra flags go to pretraining

The text is the WikiText-2 validation and test articles in ../shared/data/wikitext (122 articles; the test
file's ` @-@ `-style tokenization is undone). Every section (`= Heading =` or `= = Heading = =`) is a
document, so NSP pairs never cross a heading. Two held-out splits:

* `sections`: every fifth section is held out. The held-out text is unseen, but its articles' other
  sections were trained on, so NSP can use what the model learned about each article's topic.
* `articles`: the last 12 articles of the validation file are held out, topics and all.

MLM accuracy is compared with always predicting the training text's most frequent token; NSP with 0.5.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from transformers import AutoTokenizer

REPO = Path(__file__).resolve().parent.parent
SECTION_START = r"^ = (= )?[^=].* =( =)? $"
ARTICLE_START = re.compile(r"^ = [^=].* = $")
# WikiText's .tokens files split numbers and hyphenated words: "1 @,@ 000", "guest @-@ starring".
DETOKENIZE = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))
HELD_OUT_ARTICLES = 12
PRETRAIN_ARGS = [
    "--model_size", "mini", "--vocab_size", "8000", "--max_seq_length", "128", "--dupe_factor", "10",
    # No dropout: a run of a few thousand steps underfits, so dropout only slows it down.
    "--config_overrides", "hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0",
    "--do_train", "--do_eval", "--max_steps", "3000", "--per_device_train_batch_size", "32",
    "--per_device_eval_batch_size", "128", "--learning_rate", "1e-3", "--warmup_steps", "200",
    "--weight_decay", "0.01", "--eval_strategy", "steps", "--eval_steps", "500", "--logging_steps", "50",
    "--save_strategy", "no", "--report_to", "none", "--seed", "42", "--disable_tqdm", "True",
    # A rerun measures from scratch again, into the same folder.
    "--overwrite_output_dir",
]


def sections(path: Path, detokenize: bool) -> list[list[str]]:
    """The lines of `path`, cut before every section heading; sections without a word are dropped."""
    start = re.compile(SECTION_START)
    found: list[list[str]] = []
    current: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if detokenize:
                for old, new in DETOKENIZE:
                    line = line.replace(old, new)
            if start.match(line.rstrip("\n")) and current:
                found.append(current)
                current = []
            current.append(line)
    found.append(current)
    return [section for section in found if any(line.split() for line in section)]


def write_split(wikitext: Path, split: str, data_dir: Path) -> tuple[Path, Path]:
    """Write train.txt and heldout.txt for `split` and return their paths."""
    valid = sections(wikitext / "wiki.valid.raw", detokenize=False)
    test = sections(wikitext / "wiki.test.tokens", detokenize=True)
    if split == "sections":
        everything = valid + test
        train = [s for i, s in enumerate(everything) if i % 5]
        held_out = [s for i, s in enumerate(everything) if i % 5 == 0]
    else:
        article_starts = [i for i, s in enumerate(valid) if ARTICLE_START.match(s[0].rstrip("\n"))]
        cut = article_starts[-HELD_OUT_ARTICLES]
        train, held_out = test + valid[:cut], valid[cut:]
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = data_dir / "train.txt", data_dir / "heldout.txt"
    for path, chosen in zip(paths, (train, held_out), strict=True):
        path.write_text("".join(line for section in chosen for line in section), encoding="utf-8")
    return paths


def most_frequent_token_share(tokenizer_dir: Path, train: Path, held_out: Path) -> tuple[str, float]:
    """The training text's most frequent token and its share of the held-out tokens: the MLM accuracy of
    always predicting it (masked positions are drawn uniformly from the real tokens)."""
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), trust_remote_code=True)

    def counts(path: Path) -> collections.Counter:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        ids = tokenizer(lines, add_special_tokens=False, verbose=False)["input_ids"]  # counting, not a model input
        return collections.Counter(token for row in ids for token in row)

    top, held_out_counts = counts(train).most_common(1)[0][0], counts(held_out)
    return tokenizer.convert_ids_to_tokens(top), held_out_counts[top] / sum(held_out_counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("sections", "articles"), default="sections",
                        help="what is held out (default: every fifth section)")
    parser.add_argument("--wikitext_dir", default=str(REPO.parent / "shared" / "data" / "wikitext"),
                        help="folder with wiki.valid.raw and wiki.test.tokens (default ../shared/data/wikitext)")
    parser.add_argument("--output_dir", default=None, help="default: /tmp/openbert-wikitext-SPLIT")
    args, extra = parser.parse_known_args()
    wikitext = Path(args.wikitext_dir)
    if not (wikitext / "wiki.valid.raw").is_file() or not (wikitext / "wiki.test.tokens").is_file():
        sys.exit(f"{wikitext} lacks wiki.valid.raw or wiki.test.tokens; pass --wikitext_dir.")
    output_dir = Path(args.output_dir or f"/tmp/openbert-wikitext-{args.split}")
    train, held_out = write_split(wikitext, args.split, output_dir / "data")

    command = [sys.executable, "-m", "openbert.training.pretraining", "--train_files", str(train),
               "--validation_files", str(held_out), "--document_start", SECTION_START,
               *PRETRAIN_ARGS, *extra, "--output_dir", str(output_dir / "model"),
               "--cache_dir", str(output_dir / "cache")]
    print(" ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})

    results = json.loads((output_dir / "model" / "all_results.json").read_text())
    token, share = most_frequent_token_share(output_dir / "model", train, held_out)
    print(f"\nheld-out {args.split}: {results['eval_samples']} NSP pairs")
    print(f"MLM accuracy {results['eval_mlm_accuracy']:.4f} (always {token!r}: {share:.4f}), "
          f"perplexity {results['eval_perplexity']:.1f}")
    print(f"NSP accuracy {results['eval_nsp_accuracy']:.4f} (chance: 0.5)")
    print(f"training: {results['train_runtime']:.0f} s for {results['train_samples']} pairs")


if __name__ == "__main__":
    main()
