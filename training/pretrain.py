"""MLM + NSP pretraining of openbert: `python -m training.pretrain [--flags | config.json|.yaml]`.

From scratch (a size preset of the BERT miniatures, with a WordPiece tokenizer trained on the corpus
first when none is given) or continued from any openbert or transformers BERT checkpoint. Every
`TrainingArguments` flag works; multi-process runs go through `torchrun --nproc_per_node N -m
training.pretrain ...` or `accelerate launch --multi_gpu --num_processes N -m training.pretrain ...`
(NCCL on GPUs; on a machine without GPUs add `--use_cpu`, and the processes use gloo).

Example (WikiText-2: 48 articles to train on, the last 12 held out):

    python -m training.pretrain --train_files wiki.valid.raw --validation_split_percentage 20 \\
        --document_start '^ = [^=].* = $' --model_size mini --vocab_size 8000 --max_seq_length 128 \\
        --dupe_factor 5 --do_train --do_eval --max_steps 1500 --per_device_train_batch_size 16 \\
        --learning_rate 1e-3 --warmup_steps 100 --eval_strategy steps --eval_steps 250 --output_dir out/mini

The output directory (and every `checkpoint-N` in it) holds the model, its code (`trust_remote_code`)
and the tokenizer, so `AutoModelForPreTraining`, `AutoModelForMaskedLM` and `pipeline("fill-mask")`
load it; plus `train_results.json`, `eval_results.json`, `all_results.json` and `training_curves.png`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
import transformers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from openbert.modeling import OpenBertConfig, OpenBertForPreTraining

from .arguments import parse_args
from .collator import DataCollatorForPreTraining, MaskingEpochCallback, mask_dataset
from .corpus import load_documents
from .curves import plot_log_history
from .pretraining_data import prepare_pretraining_dataset, prepare_pretraining_stream
from .pretraining_metrics import compute_pretraining_metrics, reduce_pretraining_logits
from .publish import data_sources, finish_run
from .push import HubTarget, hub_target_from_training_args

logger = logging.getLogger(__name__)

# The BERT miniatures (Turc et al., 2019) and the paper's two sizes: (layers, hidden size). Heads get 64
# dimensions each and the feed-forward block is 4x wide, as in all of them.
SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512), "base": (12, 768), "large": (24, 1024),
}
TOKENIZER_SUBDIR = "tokenizer"


@dataclass
class PretrainModelArguments:
    """What to train: a size preset from scratch, or a checkpoint to continue; and its tokenizer."""

    model_name_or_path: str | None = field(default=None, metadata={
        "help": "Continue pretraining this checkpoint (an openbert output folder, a transformers BERT folder "
                "such as MiniLM, or a Hub id when online). Leave unset to train from scratch with --model_size."})
    model_size: str = field(default="mini", metadata={
        "help": "Size preset when training from scratch: " + ", ".join(
            f"{name} (L{layers}/H{hidden})" for name, (layers, hidden) in SIZE_PRESETS.items()) + ".",
        "choices": list(SIZE_PRESETS)})
    config_overrides: str | None = field(default=None, metadata={
        "help": "Comma-separated config changes applied on top of the preset or checkpoint, e.g. "
                "'num_hidden_layers=2,hidden_size=64,hidden_dropout_prob=0.0'."})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "Tokenizer folder or Hub id. Default: the checkpoint's tokenizer; from scratch, a WordPiece "
                "tokenizer is trained on the training corpus and saved to OUTPUT_DIR/tokenizer."})
    vocab_size: int = field(default=30522, metadata={
        "help": "Vocabulary size of the tokenizer trained when none is given (BERT: 30522; a small corpus "
                "supports fewer tokens)."})
    lowercase: bool = field(default=True, metadata={
        "help": "Lowercase (and strip accents) in the tokenizer trained when none is given; --no_lowercase "
                "for a cased model."})
    tokenizer_min_frequency: int = field(default=2, metadata={
        "help": "Pairs seen fewer times are never merged when training the tokenizer."})


@dataclass
class PretrainDataArguments:
    """Where the text comes from and how it becomes MLM + NSP examples."""

    train_files: list[str] | None = field(default=None, metadata={
        "help": "Training corpus: text files (documents separated by blank lines; one sentence or one "
                "paragraph per line), .gz, .jsonl/.csv/.parquet (one document per row), folders or globs."})
    validation_files: list[str] | None = field(default=None, metadata={
        "help": "Held-out corpus for evaluation, same formats. Default: the last "
                "--validation_split_percentage of the training documents."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "Instead of files: a Hub dataset (online) or a folder written by Dataset.save_to_disk."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset_name to train on."})
    validation_split: str | None = field(default=None, metadata={
        "help": "Split of --dataset_name to evaluate on (default: hold out documents of the training split)."})
    text_column: str = field(default="text", metadata={
        "help": "Column holding one document per row (JSON lines, CSV, Parquet, datasets)."})
    document_start: str | None = field(default=None, metadata={
        "help": "Text files only: a regular expression; each matching line starts a new document and blank "
                "lines are paragraph breaks (WikiText: '^ = [^=].* = $'). Default: blank lines end documents."})
    validation_split_percentage: float = field(default=5.0, metadata={
        "help": "Without validation data, hold out this percentage of the training documents (the last "
                "ones, so held-out text does not share documents with training). 0 disables."})
    max_seq_length: int = field(default=128, metadata={
        "help": "Longest example in tokens, [CLS] A [SEP] B [SEP] included (at most the model's "
                "max_position_embeddings)."})
    short_seq_prob: float = field(default=0.1, metadata={
        "help": "Probability that a pair gets a random shorter target length (matches short fine-tuning inputs)."})
    random_next_prob: float = field(default=0.5, metadata={
        "help": "Probability that segment B is taken from another document (next_sentence_label=1)."})
    dupe_factor: int = field(default=1, metadata={
        "help": "Pairings per training document: each pass cuts the documents into different A/B pairs "
                "(the evaluation set is cut once)."})
    mlm_probability: float = field(default=0.15, metadata={
        "help": "Fraction of tokens (or words, with --whole_word_mask) selected for MLM prediction."})
    mask_replace_prob: float = field(default=0.8, metadata={
        "help": "Share of the selected tokens replaced by [MASK]."})
    random_replace_prob: float = field(default=0.1, metadata={
        "help": "Share of the selected tokens replaced by a random token (the rest stay unchanged)."})
    whole_word_mask: bool = field(default=False, metadata={
        "help": "Select whole words: all WordPiece tokens of a word are masked together."})
    pad_to_multiple_of: int | None = field(default=None, metadata={
        "help": "Pad batches to a multiple of this length (8 suits GPU tensor cores)."})
    streaming: bool = field(default=False, metadata={
        "help": "Stream the training corpus (IterableDataset) instead of preparing it on disk; needs "
                "--max_steps, and random next segments come from the same batch of documents."})
    shuffle_buffer_size: int = field(default=10_000, metadata={
        "help": "With --streaming: examples held in the shuffle buffer."})
    preprocessing_num_workers: int | None = field(default=None, metadata={
        "help": "Processes for preparing the data (datasets.map num_proc)."})
    preprocessing_batch_size: int = field(default=1000, metadata={
        "help": "Documents per datasets.map batch (with --streaming, also the pool random next segments come "
                "from)."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Prepare the data again, ignoring caches."})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Train on at most this many examples (a random subset; the first ones with --streaming)."})
    max_eval_samples: int | None = field(default=None, metadata={
        "help": "Evaluate on at most this many examples (a random subset)."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Where datasets caches the read corpus (default: the datasets cache)."})


def preset_config(size: str) -> dict[str, int]:
    """Config fields of a size preset: layers, hidden size, heads of 64 dims, 4x feed-forward."""
    layers, hidden = SIZE_PRESETS[size]
    return {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": hidden // 64,
            "intermediate_size": 4 * hidden}


class PreTrainingTrainer(Trainer):
    """A Trainer that also logs the MLM and NSP parts of the training loss (`mlm_loss`, `nsp_loss`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._part_sums: dict[str, torch.Tensor] = {}
        self._part_steps = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        if model.training and isinstance(outputs, dict):
            parts = {k: outputs[k].detach() for k in ("mlm_loss", "nsp_loss") if outputs.get(k) is not None}
            for key, value in parts.items():
                self._part_sums[key] = self._part_sums.get(key, 0) + value
            self._part_steps += bool(parts)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Training logs (they carry "loss") get the mean of each part since the previous log, averaged
        # over processes like the Trainer's own loss; every process logs at the same steps.
        if "loss" in logs and self._part_steps:
            for key, total in self._part_sums.items():
                mean = self.accelerator.reduce(total / self._part_steps, reduction="mean")
                logs[key] = round(float(mean), 4)
            self._part_sums, self._part_steps = {}, 0
        super().log(logs, start_time)


def _load_tokenizer(model_args: PretrainModelArguments, train_documents, training_args: TrainingArguments,
                    resume_dir: str | None) -> PreTrainedTokenizerBase:
    """The checkpoint's, the named, or a freshly trained tokenizer (trained once, by the main process)."""
    source = resume_dir or model_args.tokenizer_name or model_args.model_name_or_path
    if source:
        return AutoTokenizer.from_pretrained(source)
    from openbert.tokenization import train_tokenizer

    tokenizer_dir = Path(training_args.output_dir) / TOKENIZER_SUBDIR
    # local=False: the tokenizer lands in the (shared) output dir, so every node waits for global rank 0.
    with training_args.main_process_first(local=False, desc="training the tokenizer"):
        if training_args.process_index == 0:
            logger.info("No tokenizer given: training a %d-token WordPiece tokenizer on the training corpus.",
                        model_args.vocab_size)
            return train_tokenizer(
                train_documents, vocab_size=model_args.vocab_size, output_dir=tokenizer_dir,
                lowercase=model_args.lowercase, min_frequency=model_args.tokenizer_min_frequency,
                text_column="text",
                show_progress=not training_args.disable_tqdm,
            )
    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _load_corpora(data_args: PretrainDataArguments, do_eval: bool):
    """(training documents or None, evaluation documents or None), one document per `"text"` row."""
    common = {"text_column": data_args.text_column, "document_start": data_args.document_start,
              "cache_dir": data_args.cache_dir, "num_proc": data_args.preprocessing_num_workers}
    if data_args.train_files is None and data_args.dataset_name is None:
        raise ValueError("no training corpus: pass --train_files FILE... or --dataset_name NAME.")
    train = load_documents(data_args.train_files, dataset_name=data_args.dataset_name,
                           dataset_config_name=data_args.dataset_config_name, split=data_args.train_split,
                           streaming=data_args.streaming, **common)
    evaluation = None
    if data_args.validation_files:
        evaluation = load_documents(data_args.validation_files, **common)
    elif data_args.dataset_name and data_args.validation_split:
        evaluation = load_documents(dataset_name=data_args.dataset_name, split=data_args.validation_split,
                                    dataset_config_name=data_args.dataset_config_name, **common)
    elif do_eval and data_args.validation_split_percentage > 0:
        if data_args.streaming:
            raise ValueError("--streaming cannot hold out part of a stream: pass --validation_files (or "
                             "--validation_split) for --do_eval.")
        held_out = math.ceil(len(train) * data_args.validation_split_percentage / 100)
        if len(train) - held_out < 2 or held_out < 2:
            raise ValueError(f"the corpus has {len(train)} documents: too few to hold out "
                             f"{data_args.validation_split_percentage}% with two on each side; pass "
                             "--validation_files.")
        train, evaluation = train.select(range(len(train) - held_out)), train.select(range(len(train) - held_out,
                                                                                            len(train)))
    if do_eval and evaluation is None:
        raise ValueError("--do_eval needs held-out text: --validation_files, --validation_split or "
                         "--validation_split_percentage > 0.")
    return train, evaluation


def _build_model(model_args: PretrainModelArguments, tokenizer: PreTrainedTokenizerBase) -> OpenBertForPreTraining:
    """A fresh preset model sized to the tokenizer, or the checkpoint (its heads created when missing)."""
    if model_args.model_name_or_path:
        config = OpenBertConfig.from_pretrained(model_args.model_name_or_path)
    else:
        config = OpenBertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                **preset_config(model_args.model_size))
    if model_args.config_overrides:
        try:
            config.update_from_string(model_args.config_overrides)
        except ValueError as error:
            raise ValueError(f"--config_overrides {model_args.config_overrides!r}: {error} (format: "
                             "'key=value,key=value' with keys of OpenBertConfig)") from error
    if model_args.model_name_or_path:
        model = OpenBertForPreTraining.from_pretrained(model_args.model_name_or_path, config=config)
    else:
        model = OpenBertForPreTraining(config)
    if len(tokenizer) > model.config.vocab_size:
        logger.info("Growing the embeddings from %d to the tokenizer's %d tokens.", model.config.vocab_size,
                    len(tokenizer))
        model.resize_token_embeddings(len(tokenizer))
    return model


def _prepare(documents, tokenizer, data_args: PretrainDataArguments, seed: int, *, streaming: bool = False,
             dupe_factor: int | None = None):
    """NSP pairs of `documents` with the data options (`dupe_factor` overrides the option's)."""
    options = {"max_seq_length": data_args.max_seq_length, "short_seq_prob": data_args.short_seq_prob,
               "random_next_prob": data_args.random_next_prob, "seed": seed,
               "dupe_factor": dupe_factor or data_args.dupe_factor, "batch_size": data_args.preprocessing_batch_size}
    if streaming:
        return prepare_pretraining_stream(documents, tokenizer, **options)
    return prepare_pretraining_dataset(documents, tokenizer, num_proc=data_args.preprocessing_num_workers,
                                       load_from_cache_file=not data_args.overwrite_cache, **options)


def _subset(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """A random subset of at most `limit` rows: the rows are in document order, so the first ones would
    come from a few documents only."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit)).flatten_indices()


def _resume_dir(training_args: TrainingArguments) -> str | None:
    """The checkpoint folder to resume from: a path, or 'last'/'true' for OUTPUT_DIR's latest one."""
    wanted = training_args.resume_from_checkpoint
    if wanted is None:
        return None
    if str(wanted).lower() in ("last", "true"):
        last = get_last_checkpoint(training_args.output_dir) if Path(training_args.output_dir).is_dir() else None
        if last is None:
            raise ValueError(f"--resume_from_checkpoint {wanted}: no checkpoint-N folder in "
                             f"{training_args.output_dir}.")
        return last
    if not Path(wanted).is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {wanted}: no such checkpoint folder.")
    return str(wanted)


def run_pretraining(model_args: PretrainModelArguments, data_args: PretrainDataArguments,
                    training_args: TrainingArguments,
                    callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Prepare the data, build or load the model, train and/or evaluate; return the final metrics."""
    if not (training_args.do_train or training_args.do_eval):
        raise ValueError("nothing to do: pass --do_train and/or --do_eval.")
    if data_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise ValueError("--streaming has no length to count epochs by: pass --max_steps.")
    if model_args.model_name_or_path is None and model_args.model_size not in SIZE_PRESETS:
        raise ValueError(f"--model_size {model_args.model_size!r}: choose one of {list(SIZE_PRESETS)}.")
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        # Each process would train alone on all the data and write the same output dir.
        raise RuntimeError(
            f"{launched} processes were launched but the Trainer sees world_size={training_args.world_size}: "
            "on a machine without GPUs pass --use_cpu (processes then talk over gloo)."
        )
    if training_args.ddp_find_unused_parameters is None:
        # Every parameter takes part in every step; the Trainer's default (True) costs a graph traversal.
        training_args.ddp_find_unused_parameters = False
    resume_dir = _resume_dir(training_args) if training_args.do_train else None
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="reading the corpus"):
        train_documents, eval_documents = _load_corpora(data_args, training_args.do_eval)
    tokenizer = _load_tokenizer(model_args, train_documents, training_args, resume_dir)
    model = _build_model(model_args, tokenizer)
    tokenizer.model_max_length = model.config.max_position_embeddings  # saved with every checkpoint
    if data_args.max_seq_length > model.config.max_position_embeddings:
        raise ValueError(f"--max_seq_length {data_args.max_seq_length} exceeds the model's "
                         f"max_position_embeddings={model.config.max_position_embeddings}.")
    collator = DataCollatorForPreTraining(
        tokenizer, mlm_probability=data_args.mlm_probability, mask_replace_prob=data_args.mask_replace_prob,
        random_replace_prob=data_args.random_replace_prob, whole_word_mask=data_args.whole_word_mask,
        pad_to_multiple_of=data_args.pad_to_multiple_of, seed=training_args.seed,
    )
    train_dataset = eval_dataset = None
    with training_args.main_process_first(desc="preparing NSP pairs"):
        if training_args.do_train:
            train_dataset = _prepare(train_documents, tokenizer, data_args, training_args.seed,
                                     streaming=data_args.streaming)
            if data_args.streaming:
                train_dataset = train_dataset.shuffle(seed=training_args.seed,
                                                      buffer_size=data_args.shuffle_buffer_size)
                if data_args.max_train_samples is not None:
                    train_dataset = train_dataset.take(data_args.max_train_samples)
            else:
                train_dataset = _subset(train_dataset, data_args.max_train_samples, training_args.seed)
        if eval_documents is not None:
            # One pass: repeated cuts of the same held-out documents would only weigh them more.
            eval_dataset = _prepare(eval_documents, tokenizer, data_args, training_args.seed, dupe_factor=1)
            eval_dataset = _subset(eval_dataset, data_args.max_eval_samples, training_args.seed)
            # Fixed masks: evaluations compare across steps and runs, and draw nothing from the training RNG.
            eval_dataset = mask_dataset(eval_dataset, collator, seed=training_args.seed)

    hub_target = hub_target_from_training_args(training_args)
    trainer = PreTrainingTrainer(
        model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        processing_class=tokenizer, data_collator=collator, compute_metrics=compute_pretraining_metrics,
        preprocess_logits_for_metrics=reduce_pretraining_logits,
        callbacks=[MaskingEpochCallback(collator), *callbacks],
    )
    results: dict[str, float] = {}
    if training_args.do_train:
        train_metrics = trainer.train(resume_from_checkpoint=resume_dir).metrics
        if not data_args.streaming:
            train_metrics["train_samples"] = len(train_dataset)
        trainer.save_model()  # with the tokenizer and the modeling code
        trainer.save_state()
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        results.update(train_metrics)
    if eval_dataset is not None and training_args.do_eval:
        eval_metrics = trainer.evaluate()
        eval_metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        results.update(eval_metrics)
    if trainer.is_world_process_zero():
        plot_log_history(trainer.state.log_history, Path(training_args.output_dir) / "training_curves.png",
                         title=f"MLM + NSP pretraining: {model_args.model_name_or_path or model_args.model_size}")
        _publish(model_args, data_args, training_args, results, hub_target)
    return {k: v for k, v in results.items() if isinstance(v, int | float)}


def _publish(model_args: PretrainModelArguments, data_args: PretrainDataArguments,
             training_args: TrainingArguments, results: dict[str, float], hub_target: HubTarget | None) -> None:
    """Model card next to the final model (after the curves, which the card shows); push when asked."""
    train_sources = data_sources(data_args.dataset_name, data_args.train_files or [])
    if data_args.validation_files:
        sources, eval_split = data_sources(None, data_args.validation_files) + train_sources, "held-out"
    elif data_args.dataset_name and data_args.validation_split:
        sources, eval_split = train_sources, data_args.validation_split
    else:
        sources, eval_split = train_sources, f"last {data_args.validation_split_percentage:g}% of documents"
    finish_run(training_args, hub_target, results, kind="pretrained", task="fill-mask",
               datasets=list(dict.fromkeys(sources)), base_model=model_args.model_name_or_path,
               dataset_config=data_args.dataset_config_name, eval_split=eval_split)


def main(argv: Sequence[str] | None = None, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Parse the command line (or one JSON/YAML config file) and run; `callbacks` go to the Trainer."""
    model_args, data_args, training_args = parse_args(
        (PretrainModelArguments, PretrainDataArguments, TrainingArguments), argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout,
                        level=training_args.get_process_log_level())
    datasets.utils.logging.set_verbosity(training_args.get_process_log_level())
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    return run_pretraining(model_args, data_args, training_args, callbacks)


if __name__ == "__main__":
    main()
