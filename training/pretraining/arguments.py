"""The options of `openbert pretrain`, and the model size presets."""

from __future__ import annotations

from dataclasses import dataclass, field

from openbert.tokenization.train import CorpusArguments

# The BERT miniatures (Turc et al., 2019) and the paper's two sizes: (layers, hidden size). Heads get 64
# dimensions each and the feed-forward block is 4x wide, as in all of them.
SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512), "base": (12, 768), "large": (24, 1024),
}


def preset_config(size: str) -> dict[str, int]:
    """Config fields of a size preset: layers, hidden size, heads of 64 dims, 4x feed-forward."""
    layers, hidden = SIZE_PRESETS[size]
    return {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": hidden // 64,
            "intermediate_size": 4 * hidden}


@dataclass
class PretrainingModelArguments:
    """What to train: a size preset from scratch, or a checkpoint to continue; and its tokenizer (trained on the
    corpus with the `TokenizerArguments` when none is given)."""

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
    pad_vocab_size_to_multiple_of: int = field(default=64, metadata={
        "help": "From scratch: round the model's vocabulary up to a multiple of this (1: the tokenizer's size "
                "exactly). The MLM head's projection then has a width GPU matrix units take without remainder; the "
                "extra ids are never produced by the tokenizer (transformers' resize_token_embeddings(..., "
                "pad_to_multiple_of=64) does the same)."})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "Tokenizer folder or Hub id. Default: the checkpoint's tokenizer; from scratch, a WordPiece "
                "tokenizer is trained on the training corpus (--vocab_size, --lowercase, --min_frequency) and saved "
                "to OUTPUT_DIR/tokenizer."})


@dataclass
class PretrainingDataArguments(CorpusArguments):
    """Where the text comes from and how it becomes MLM + NSP examples."""

    validation_files: list[str] | None = field(default=None, metadata={
        "help": "Held-out corpus for evaluation, same formats. Default: the last "
                "--validation_split_percentage of the training documents."})
    validation_split: str | None = field(default=None, metadata={
        "help": "Split of --dataset_name to evaluate on (default: hold out documents of the training split)."})
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
    padding_free: bool = field(default=False, metadata={
        "help": "Collate each training batch as one packed row of real tokens (the form of transformers' "
                "DataCollatorWithFlattening: position_ids restarting per sequence, cu_seq_lens_q/max_length_q) "
                "instead of padding it: the model then computes no padding at all. Same masks as padded batches; "
                "evaluation batches stay padded."})
    max_tokens_per_batch: int | None = field(default=None, metadata={
        "help": "Token-budget batching: fill each training batch (per device) with pairs up to this many real "
                "tokens, instead of --per_device_train_batch_size pairs; the batches' padding efficiency is "
                "logged. At least --max_seq_length; not with --streaming. Pairs well with --padding_free."})
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
