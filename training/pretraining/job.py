"""`openbert pretrain`: MLM + NSP pretraining of openbert.

From scratch (a size preset of the BERT miniatures, with a WordPiece tokenizer trained on the corpus first when
none is given) or continued from any openbert or transformers BERT checkpoint. Every `TrainingArguments` flag
works; multi-process runs go through `torchrun --nproc_per_node N -m openbert.training.pretraining ...` or
`accelerate launch --multi_gpu --num_processes N -m openbert.training.pretraining ...` (NCCL on GPUs; on a machine
without GPUs add `--use_cpu`, and the processes use gloo).

Example (WikiText-2: 48 articles to train on, the last 12 held out):

    openbert pretrain --train_files wiki.valid.raw --validation_split_percentage 20 \\
        --document_start '^ = [^=].* = $' --model_size mini --vocab_size 8000 --max_seq_length 128 \\
        --dupe_factor 5 --do_train --do_eval --max_steps 1500 --per_device_train_batch_size 16 \\
        --learning_rate 1e-3 --warmup_steps 100 --eval_strategy steps --eval_steps 250 --output_dir out/mini

Padding-free training: `--padding_free` packs each training batch into one row of real tokens (no padding is
computed), and `--max_tokens_per_batch N` fills batches by a budget of real tokens instead of a number of pairs
(its padding efficiency is logged when training starts).

The output directory (and every `checkpoint-N` in it) holds the model, its code (`trust_remote_code`)
and the tokenizer, so `AutoModelForPreTraining`, `AutoModelForMaskedLM` and `pipeline("fill-mask")`
load it; plus `train_results.json`, `eval_results.json`, `all_results.json`, `training_curves.png` and a card.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase, TrainerCallback, TrainingArguments

from openbert.modeling import OpenBertConfig, OpenBertForPreTraining
from openbert.tokenization import train_tokenizer
from openbert.tokenization.data_files import load_documents
from openbert.tokenization.train import TokenizerArguments

from ..hub.card import CardFacts, DataFacts, describe_base_model
from ..job import Prepared, TrainingJob, run_command, run_job
from ..output_dir import OpenBertTrainingArguments
from ..preflight import check_model_source, check_sequence_length, load_checkpoint_config
from .arguments import SIZE_PRESETS, PretrainingDataArguments, PretrainingModelArguments, preset_config
from .batching import BatchStatistics
from .collator import DataCollatorForPreTraining, MaskingEpochCallback, mask_dataset
from .data import NspOptions, prepare_pretraining_dataset, prepare_pretraining_stream
from .metrics import compute_pretraining_metrics, reduce_pretraining_logits
from .trainer import PreTrainingTrainer

logger = logging.getLogger(__name__)

COMMAND = "pretrain"
ARGUMENTS = (PretrainingModelArguments, TokenizerArguments, PretrainingDataArguments, OpenBertTrainingArguments)
# Option names of openbert 0.1, still accepted with a warning.
RENAMED_OPTIONS = {"tokenizer_min_frequency": "min_frequency"}
TOKENIZER_SUBDIR = "tokenizer"


def load_corpora(data_args: PretrainingDataArguments, do_eval: bool) -> tuple[Any, Any]:
    """(training documents, evaluation documents or None), one document per `"text"` row."""
    common = {"text_column": data_args.text_column, "document_start": data_args.document_start,
              "cache_dir": data_args.cache_dir, "num_proc": data_args.preprocessing_num_workers}
    if data_args.train_files is None and data_args.dataset_name is None:
        raise ValueError("no training corpus: pass --train_files FILE... or --dataset_name NAME.")
    train = require_documents(load_documents(
        data_args.train_files, dataset_name=data_args.dataset_name, dataset_config_name=data_args.dataset_config_name,
        split=data_args.train_split, streaming=data_args.streaming, **common), "the training corpus")
    if data_args.validation_files:
        return train, require_documents(load_documents(data_args.validation_files, **common), "--validation_files")
    if data_args.dataset_name and data_args.validation_split:
        return train, load_documents(dataset_name=data_args.dataset_name, split=data_args.validation_split,
                                     dataset_config_name=data_args.dataset_config_name, **common)
    if not do_eval:
        return train, None
    if data_args.validation_split_percentage <= 0:
        raise ValueError("--do_eval needs held-out text: --validation_files, --validation_split or "
                         "--validation_split_percentage > 0.")
    if data_args.streaming:
        raise ValueError("--streaming cannot hold out part of a stream: pass --validation_files (or "
                         "--validation_split) for --do_eval.")
    return hold_out(train, data_args.validation_split_percentage)


def require_documents(documents: Any, source: str) -> Any:
    """`documents`, when there are two or more: NSP takes random next segments from other documents. Checked on the
    raw documents, before minutes of sentence splitting and tokenization would reach the same verdict."""
    if hasattr(documents, "__len__") and len(documents) < 2:
        raise ValueError(f"{source} holds {len(documents)} document(s); NSP needs two or more. Separate documents "
                         "with blank lines (text files; --document_start for other markers) or give one per record.")
    return documents


def hold_out(documents: Any, percentage: float) -> tuple[Any, Any]:
    """The documents without their last `percentage` %, and those (held-out text shares no document)."""
    held_out = math.ceil(len(documents) * percentage / 100)
    if len(documents) - held_out < 2 or held_out < 2:
        raise ValueError(f"the corpus has {len(documents)} documents: too few to hold out {percentage}% with two on "
                         "each side; pass --validation_files.")
    kept = len(documents) - held_out
    return documents.select(range(kept)), documents.select(range(kept, len(documents)))


def random_subset(dataset: Any, limit: int | None, seed: int) -> Any:
    """At most `limit` rows, drawn at random: the rows are in document order, so the first ones would come from a
    few documents only."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit)).flatten_indices()


def model_config(model_args: PretrainingModelArguments, vocab_size: int, pad_token_id: int | None) -> OpenBertConfig:
    """The checkpoint's config, or a size preset's for `vocab_size` tokens (rounded up to a multiple of
    --pad_vocab_size_to_multiple_of), with --config_overrides applied and checked by OpenBertConfig itself
    (`update_from_string` alone would set `num_hidden_layers=0` unchecked)."""
    if model_args.model_name_or_path:
        config = load_checkpoint_config("--model_name_or_path", model_args.model_name_or_path, OpenBertConfig)
    else:
        multiple = model_args.pad_vocab_size_to_multiple_of
        config = OpenBertConfig(vocab_size=-(-vocab_size // multiple) * multiple, pad_token_id=pad_token_id,
                                **preset_config(model_args.model_size))
    if not model_args.config_overrides:
        return config
    try:
        config.update_from_string(model_args.config_overrides)
        return OpenBertConfig.from_dict(config.to_dict())
    except (ValueError, TypeError) as error:
        raise ValueError(f"--config_overrides {model_args.config_overrides!r}: {error} (format: "
                         "'key=value,key=value' with keys of OpenBertConfig)") from error


def build_model(model_args: PretrainingModelArguments, tokenizer: PreTrainedTokenizerBase) -> OpenBertForPreTraining:
    """A fresh preset model sized to the tokenizer, or the checkpoint (its heads created when missing)."""
    config = model_config(model_args, len(tokenizer), tokenizer.pad_token_id)
    # The MLM head projects only the masked positions onto the vocabulary: most of the head's work and memory in
    # pretraining are saved, and the evaluation metrics take either shape. (Checkpoints are saved without it:
    # PreTrainingTrainer._save.)
    config.sparse_prediction = True
    if model_args.model_name_or_path:
        model = OpenBertForPreTraining.from_pretrained(model_args.model_name_or_path, config=config)
    else:
        model = OpenBertForPreTraining(config)
    if len(tokenizer) > model.config.vocab_size:
        logger.info("Growing the embeddings from %d to the tokenizer's %d tokens.", model.config.vocab_size,
                    len(tokenizer))
        model.resize_token_embeddings(len(tokenizer))
    return model


def token_budget_counts(statistics: BatchStatistics, padding_free: bool) -> dict[str, float]:
    """What token-budget batching reports (logged now, and with the training metrics): batches per epoch (of all
    processes), the share of the budget they fill, and their padding efficiency, the share of the positions the
    model computes that are real tokens (1.0 when they are packed)."""
    logger.info("Token-budget batches, first epoch: %s", statistics.describe())
    return {"train_token_budget_batches": statistics.batches, "train_token_budget_use": round(statistics.budget_use, 4),
            "train_padding_efficiency": 1.0 if padding_free else round(statistics.padding_efficiency, 4)}


class PretrainingJob(TrainingJob):
    """MLM + NSP pretraining on a corpus of documents."""

    kind = "pretrained"
    task = "fill-mask"
    steps = ("train", "eval")

    def __init__(self, model_args: PretrainingModelArguments, tokenizer_args: TokenizerArguments,
                 data_args: PretrainingDataArguments) -> None:
        self.model_args, self.tokenizer_args, self.data_args = model_args, tokenizer_args, data_args

    def check(self, args: TrainingArguments) -> None:
        if self.data_args.streaming and args.do_train and args.max_steps <= 0:
            raise ValueError("--streaming has no length to count epochs by: pass --max_steps.")
        budget = self.data_args.max_tokens_per_batch
        if budget is not None and self.data_args.streaming:
            raise ValueError("--max_tokens_per_batch needs the lengths of all training pairs up front; drop "
                             "--streaming (or use --per_device_train_batch_size).")
        if budget is not None and budget < self.data_args.max_seq_length:
            raise ValueError(f"--max_tokens_per_batch {budget} is below --max_seq_length "
                             f"{self.data_args.max_seq_length}: a longest pair would not fit in a batch.")
        if self.model_args.pad_vocab_size_to_multiple_of < 1:
            raise ValueError(f"--pad_vocab_size_to_multiple_of {self.model_args.pad_vocab_size_to_multiple_of}: "
                             "pass a positive number (1 keeps the tokenizer's vocabulary size).")
        if self.model_args.model_name_or_path is None and self.model_args.model_size not in SIZE_PRESETS:
            raise ValueError(f"--model_size {self.model_args.model_size!r}: choose one of {list(SIZE_PRESETS)}.")
        check_model_source("--tokenizer_name", self.model_args.tokenizer_name)
        # The config as the run will build it (the trained tokenizer's size stands in for the vocabulary): invalid
        # overrides and a sequence length beyond the positions fail before a tokenizer is trained or data read.
        config = model_config(self.model_args, self.tokenizer_args.vocab_size, pad_token_id=0)
        check_sequence_length("--max_seq_length", self.data_args.max_seq_length, config,
                              self.model_args.model_name_or_path or f"the {self.model_args.model_size} model")
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > 1 and args.world_size != launched:
            # Each process would train alone on all the data and write the same output dir.
            raise RuntimeError(f"{launched} processes were launched but the Trainer sees world_size={args.world_size}: "
                               "on a machine without GPUs pass --use_cpu (processes then talk over gloo).")

    def trainer_arguments(self, args: TrainingArguments) -> dict[str, Any]:
        # Every parameter takes part in every step; the Trainer's default (look for unused ones) costs a graph
        # traversal per step.
        return {"ddp_find_unused_parameters": False} if args.ddp_find_unused_parameters is None else {}

    def load_tokenizer(self, documents: Any, args: TrainingArguments) -> PreTrainedTokenizerBase:
        """The checkpoint's, the named, or a freshly trained tokenizer (trained once, by the main process)."""
        source = args.resume_from_checkpoint or self.model_args.tokenizer_name or self.model_args.model_name_or_path
        if source:
            return AutoTokenizer.from_pretrained(source)
        tokenizer_dir = Path(args.output_dir) / TOKENIZER_SUBDIR
        vocabulary = self.tokenizer_args
        # local=False: the tokenizer lands in the (shared) output dir, so every node waits for global rank 0.
        with args.main_process_first(local=False, desc="training the tokenizer"):
            if args.process_index == 0:
                logger.info("No tokenizer given: training a %d-token WordPiece tokenizer on the training corpus.",
                            vocabulary.vocab_size)
                return train_tokenizer(
                    documents, vocab_size=vocabulary.vocab_size, output_dir=tokenizer_dir,
                    lowercase=vocabulary.lowercase, strip_accents=vocabulary.strip_accents,
                    min_frequency=vocabulary.min_frequency, show_progress=not args.disable_tqdm,
                )
        return AutoTokenizer.from_pretrained(tokenizer_dir)

    def nsp_options(self, seed: int, dupe_factor: int) -> NspOptions:
        data = self.data_args
        return NspOptions(max_seq_length=data.max_seq_length, short_seq_prob=data.short_seq_prob,
                          random_next_prob=data.random_next_prob, dupe_factor=dupe_factor, seed=seed)

    def nsp_pairs(self, documents: Any, tokenizer: PreTrainedTokenizerBase, seed: int, dupe_factor: int) -> Any:
        """NSP pairs of `documents`, prepared once and cached by `datasets`."""
        return prepare_pretraining_dataset(documents, tokenizer, self.nsp_options(seed, dupe_factor),
                                           num_proc=self.data_args.preprocessing_num_workers,
                                           batch_size=self.data_args.preprocessing_batch_size,
                                           load_from_cache_file=not self.data_args.overwrite_cache)

    def training_pairs(self, documents: Any, tokenizer: PreTrainedTokenizerBase, seed: int) -> Any:
        data = self.data_args
        if not data.streaming:
            return random_subset(self.nsp_pairs(documents, tokenizer, seed, data.dupe_factor), data.max_train_samples,
                                 seed)
        stream = prepare_pretraining_stream(documents, tokenizer, self.nsp_options(seed, data.dupe_factor),
                                            batch_size=data.preprocessing_batch_size)
        stream = stream.shuffle(seed=seed, buffer_size=data.shuffle_buffer_size)
        return stream.take(data.max_train_samples) if data.max_train_samples is not None else stream

    def evaluation_pairs(self, documents: Any, tokenizer: PreTrainedTokenizerBase,
                         collator: DataCollatorForPreTraining, seed: int) -> Any:
        # One pass: repeated cuts of the same held-out documents would only weigh them more. Fixed masks:
        # evaluations compare across steps and runs, and draw nothing from the training RNG.
        pairs = self.nsp_pairs(documents, tokenizer, seed, dupe_factor=1)
        return mask_dataset(random_subset(pairs, self.data_args.max_eval_samples, seed), collator, seed=seed)

    def prepare(self, args: TrainingArguments, callbacks: Sequence[TrainerCallback]) -> Prepared:
        with args.main_process_first(desc="reading the corpus"):
            train_documents, eval_documents = load_corpora(self.data_args, args.do_eval)
        tokenizer = self.load_tokenizer(train_documents, args)
        model = build_model(self.model_args, tokenizer)
        tokenizer.model_max_length = model.config.max_position_embeddings  # saved with every checkpoint
        check_sequence_length("--max_seq_length", self.data_args.max_seq_length, model.config, "the model")
        data = self.data_args
        collator = DataCollatorForPreTraining(
            tokenizer, mlm_probability=data.mlm_probability, mask_replace_prob=data.mask_replace_prob,
            random_replace_prob=data.random_replace_prob, whole_word_mask=data.whole_word_mask,
            pad_to_multiple_of=data.pad_to_multiple_of, seed=args.seed,
        )
        # Evaluation keeps padded batches: the metrics count per example, and the Trainer gathers per row.
        train_collator = dataclasses.replace(collator, padding_free=True) if data.padding_free else collator
        with args.main_process_first(desc="preparing NSP pairs"):
            train_dataset = self.training_pairs(train_documents, tokenizer, args.seed) if args.do_train else None
            eval_dataset = (self.evaluation_pairs(eval_documents, tokenizer, collator, args.seed)
                            if eval_documents is not None else None)
        trainer = PreTrainingTrainer(
            model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=tokenizer,
            data_collator=train_collator, eval_data_collator=collator, compute_metrics=compute_pretraining_metrics,
            preprocess_logits_for_metrics=reduce_pretraining_logits, max_tokens_per_batch=data.max_tokens_per_batch,
            callbacks=[MaskingEpochCallback(train_collator), *callbacks],
        )
        counts = {"eval_samples": len(eval_dataset)} if eval_dataset is not None else {}
        if train_dataset is not None and not data.streaming:
            counts["train_samples"] = len(train_dataset)
        if train_dataset is not None and data.max_tokens_per_batch is not None:
            counts.update(token_budget_counts(trainer.token_budget_sampler(train_dataset).statistics(),
                                              data.padding_free))
        return Prepared(trainer, counts)

    def card_facts(self) -> CardFacts:
        data = self.data_args
        hub = {"dataset_name": data.dataset_name, "dataset_config": data.dataset_config_name}
        train = DataFacts(**hub, split=data.train_split) if data.dataset_name else DataFacts(files=data.train_files)
        if data.validation_files:
            evaluated = DataFacts(files=data.validation_files)
        elif data.dataset_name and data.validation_split:
            evaluated = DataFacts(**hub, split=data.validation_split)
        else:
            held_out = f"its last {data.validation_split_percentage:g}% of documents, held out from training"
            evaluated = dataclasses.replace(train, note=held_out)
        return CardFacts(train, evaluated, describe_base_model(self.model_args.model_name_or_path))

    def title(self) -> str:
        start = self.model_args.model_name_or_path
        return f"MLM + NSP pretraining, from {Path(start).name}" if start else \
            f"MLM + NSP pretraining, {self.model_args.model_size} from scratch"


def run_pretraining(model_args: PretrainingModelArguments, tokenizer_args: TokenizerArguments,
                    data_args: PretrainingDataArguments, training_args: TrainingArguments,
                    callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Prepare the data, build or load the model, train and/or evaluate; return the final metrics."""
    return run_job(PretrainingJob(model_args, tokenizer_args, data_args), training_args, callbacks)


def main(argv: Sequence[str] | None = None, command: str = COMMAND,
         callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Parse the command line (or one JSON/YAML config file) and run; `callbacks` go to the Trainer."""
    # Checkpoints every 500 steps (transformers' default) rather than per epoch: a long run must be resumable.
    return run_command(command, ARGUMENTS, run_pretraining, argv, renamed=RENAMED_OPTIONS, description=__doc__,
                       callbacks=callbacks, save_strategy="steps")
