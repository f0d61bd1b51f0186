"""`openbert finetune seq2seq` on a tiny BERT2BERT: SQuAD-format question generation and translation data, the run's
files, reloading (also through remote code), and the errors raised before any training."""

import json
import subprocess
import sys
import textwrap

import datasets
import pytest
import torch
import transformers
from huggingface_hub import ModelCard
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, EncoderDecoderModel

from openbert.modeling import OpenBertLMHeadModel, OpenBertModel
from openbert.training.seq2seq import Seq2SeqDataArguments, Seq2SeqJob, main
from openbert.training.seq2seq.arguments import Seq2SeqModelArguments
from openbert.training.seq2seq.data import encode_pair, question_generation_pairs
from openbert.training.seq2seq.generation import (
    generation_scores,
    init_cross_attention_from_self_attention,
    load_seq2seq_model,
)

NAMES = ["Ada", "Bob", "Cleo", "Dan"]
CITIES = ["Paris", "Lyon", "Nice", "Rome"]
FAST = ["--learning_rate", "3e-3", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
        "--report_to", "none", "--seed", "0", "--use_cpu", "--save_strategy", "no", "--logging_steps", "1",
        "--max_seq_length", "32", "--max_target_length", "12", "--predict_with_generate"]


def squad_file(path, question="Where did {name} travel?", skip=()):
    """One paragraph per name; the answer sits in the second sentence, which question generation must pick."""
    paragraphs = []
    for index, (name, city) in enumerate(zip(NAMES, CITIES, strict=True)):
        if index in skip:
            continue
        context = f"The trains ran on time. In spring {name} travelled to {city}. It was mild."
        paragraphs.append({"context": context, "qas": [{
            "id": f"q{index}", "question": question.format(name=name),
            "answers": [{"text": city, "answer_start": context.index(city)}]}]})
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "Trips", "paragraphs": paragraphs}]}))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("qg_run")
    data = squad_file(root / "train.json")
    out = root / "out"
    results = main(["--task", "question_generation", "--model_name_or_path", tiny, "--train_files", data,
                    "--validation_files", data, "--test_files", data, "--do_train", "--do_eval", "--do_predict",
                    "--num_train_epochs", "40", "--output_dir", str(out), *FAST])
    return out, results


def test_question_generation_pairs_answer_and_its_sentence_with_the_question(tmp_path, tiny):
    job = Seq2SeqJob(Seq2SeqModelArguments(tiny), Seq2SeqDataArguments(
        task="question_generation", train_files=[squad_file(tmp_path / "t.json")]))
    pairs = job.split_pairs("train").to_list()
    assert [(p["id"], p["source"], p["source_context"], p["target"]) for p in pairs[:2]] == [
        ("q0", "Paris", "In spring Ada travelled to Paris.", "Where did Ada travel?"),
        ("q1", "Lyon", "In spring Bob travelled to Lyon.", "Where did Bob travel?")]


def test_highlight_answer_marks_the_answer_inside_its_sentence_with_sep(tmp_path, tiny):
    job = Seq2SeqJob(Seq2SeqModelArguments(tiny), Seq2SeqDataArguments(
        task="question_generation", highlight_answer=True, train_files=[squad_file(tmp_path / "t.json")]))
    pairs = job.split_pairs("train").to_list()
    assert [(p["source"], p["source_context"]) for p in pairs[:2]] == [
        ("Paris", "In spring Ada travelled to [SEP] Paris [SEP]."),
        ("Lyon", "In spring Bob travelled to [SEP] Lyon [SEP].")]
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    ids = encode_pair(pairs[0], tokenizer, 32, 12)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "[CLS]", "paris", "[SEP]", "in", "spring", "ada", "travelled", "to", "[SEP]", "paris", "[SEP]", ".", "[SEP]"]


@pytest.mark.parametrize(("context", "answer", "expected"), [
    ("First one. Then  Ada went home. Done.", "Ada", "Then  [SEP] Ada [SEP] went home."),
    ("  Leading space and Ada here.", "Ada", "Leading space and [SEP] Ada [SEP] here."),
    ("Ada went to Paris. It was mild.", "Paris. It", "Ada went to [SEP] Paris. [SEP]"),  # cut at the sentence
])
def test_highlight_finds_the_answer_in_its_stripped_sentence(context, answer, expected):
    record = {"id": "q", "context": context, "question": "?",
              "answers": {"text": [answer], "answer_start": [context.index(answer)]}}
    assert question_generation_pairs([record], answer_marker="[SEP]")[0]["source_context"] == expected
    assert question_generation_pairs([record])[0]["source_context"] == expected.replace("[SEP] ", "").replace(
        " [SEP]", "")


def test_translation_pairs_questions_by_id_and_holds_out_the_last(tmp_path, tiny):
    english = squad_file(tmp_path / "en.json")
    german = squad_file(tmp_path / "de.json", question="Wohin reiste {name}?")
    job = Seq2SeqJob(Seq2SeqModelArguments(tiny), Seq2SeqDataArguments(
        task="translation", train_files=[english], target_files=[german], validation_split_percentage=25))
    train, held_out = job.split_pairs("train").to_list(), job.split_pairs("validation").to_list()
    assert [(p["id"], p["source"], p["target"]) for p in held_out] == [
        ("q3", "Where did Dan travel?", "Wohin reiste Dan?")]
    assert [p["id"] for p in train] == ["q0", "q1", "q2"]
    assert all(p["target"] == p["source"].replace("Where did", "Wohin reiste").replace(" travel", "")
               for p in train)


def test_columns_come_from_csv_files_and_datasets_alike(tmp_path, tiny):
    rows = [{"text": f"the number {i}", "summary": f"number {i}"} for i in range(3)]
    (tmp_path / "pairs.csv").write_text("text,summary\n" + "".join(f"{r['text']},{r['summary']}\n" for r in rows))
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "saved")
    expected = [(r["text"], None, r["summary"]) for r in rows]
    for source in (dict(train_files=[str(tmp_path / "pairs.csv")]), dict(dataset_name=str(tmp_path / "saved"))):
        job = Seq2SeqJob(Seq2SeqModelArguments(tiny), Seq2SeqDataArguments(
            source_column="text", target_column="summary", max_train_samples=2, **source))
        pairs = job.split_pairs("train").to_list()
        assert [(p["source"], p["source_context"], p["target"]) for p in pairs] == expected[:2], source


def test_translation_without_a_target_for_every_id_is_a_clear_error(tmp_path, tiny):
    german = squad_file(tmp_path / "de.json", question="Wohin reiste {name}?", skip=(1, 2))
    job = Seq2SeqJob(Seq2SeqModelArguments(tiny), Seq2SeqDataArguments(
        task="translation", train_files=[squad_file(tmp_path / "en.json")], target_files=[german]))
    with pytest.raises(ValueError, match=r"2 of 4 source question ids have no question in --target_files "
                                         r"\(first: q1, q2\)"):
        job.split_pairs("train")


@pytest.mark.parametrize(("options", "message"), [
    (["--task", "translation"], "--task translation needs --target_files"),
    (["--task", "question_generation", "--target_files", "x.json"], "only it uses them"),
    (["--validation_split_percentage", "10", "--validation_files", "v.jsonl"], "not both"),
    (["--predict_with_generate", "false"], "pass --predict_with_generate"),
    (["--highlight_answer"], "--highlight_answer marks answers for --task question_generation"),
    (["--source_column", "text"], r"record 0 has no text in column\(s\) text \(its columns: source, target\)"),
])
def test_bad_input_fails_before_any_training(tmp_path, tiny, options, message):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"source": "a b", "target": "c d"}) + "\n")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        main(["--model_name_or_path", tiny, "--train_files", str(pairs), "--do_train", "--do_eval",
              "--output_dir", str(out), *FAST, *options])
    assert not (out / "model.safetensors").exists()


def test_training_lowers_the_loss_and_writes_scores_generations_card_and_curves(trained):
    out, results = trained
    losses = [entry["loss"] for entry in json.loads((out / "trainer_state.json").read_text())["log_history"]
              if "loss" in entry]
    assert losses[-1] < 0.7 * losses[0]
    assert results["train_samples"] == results["eval_samples"] == results["predict_samples"] == 4
    rows = [json.loads(line) for line in (out / "predict_generations.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == ["q0", "q1", "q2", "q3"]
    # The reported scores are those of the written generations against the targets as the tokenizer writes them.
    tokenizer = AutoTokenizer.from_pretrained(out)
    targets = [tokenizer.decode(tokenizer(row["target"])["input_ids"], skip_special_tokens=True) for row in rows]
    expected = generation_scores([row["generated"] for row in rows], targets)
    assert (results["predict_bleu"], results["predict_rougeL"]) == (expected["bleu"], expected["rougeL"])
    assert results["eval_rougeL"] == results["predict_rougeL"]  # same data, same deterministic generation
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "text2text-generation"
    assert "AutoModelForSeq2SeqLM" in card.text and "model.generate" in card.text
    assert (out / "training_curves.png").stat().st_size > 0


def test_the_output_reloads_with_auto_classes_and_generates(trained):
    out, _ = trained
    model = AutoModelForSeq2SeqLM.from_pretrained(out)  # transformers' EncoderDecoderModel, openbert halves
    assert isinstance(model, EncoderDecoderModel)
    assert (type(model.encoder), type(model.decoder)) == (OpenBertModel, OpenBertLMHeadModel)
    assert model.generation_config.decoder_start_token_id == AutoTokenizer.from_pretrained(out).cls_token_id
    tokenizer = AutoTokenizer.from_pretrained(out)
    generated = model.generate(**tokenizer("Paris", "In spring Ada travelled to Paris.", return_tensors="pt"))
    first = json.loads((out / "predict_generations.jsonl").read_text().splitlines()[0])["generated"]
    assert tokenizer.decode(generated[0], skip_special_tokens=True).strip() == first


def test_the_output_loads_through_remote_code_without_openbert(trained, tmp_path):
    out, _ = trained
    script = textwrap.dedent(f"""
        import sys
        sys.modules["openbert"] = None  # make the installed package unimportable
        import transformers
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained({str(out)!r}, trust_remote_code=True)
        print(type(model).__name__, type(model.decoder).__module__.split(".")[0])
    """)
    completed = subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=300,
                               capture_output=True, text=True)
    assert completed.stdout.split()[-2:] == ["OpenBertEncoderDecoderModel", "transformers_modules"]


def cross_and_self_attention(decoder):
    """{crossattention weight name: (its tensor, the same layer's self-attention tensor)}."""
    parameters = dict(decoder.named_parameters())
    return {name: (value, parameters[name.replace(".crossattention.", ".attention.")])
            for name, value in parameters.items() if ".crossattention." in name}


def test_cross_attention_starts_random_by_default_and_as_a_copy_of_self_attention_when_asked(tiny):
    torch.manual_seed(0)
    reference = load_seq2seq_model(tiny)
    random = cross_and_self_attention(reference.decoder)
    torch.manual_seed(0)  # the same draws for the other new weights (the LM head's transform)
    copied = load_seq2seq_model(tiny, cross_attention_init="self_attention")
    pairs = cross_and_self_attention(copied.decoder)
    layers = copied.decoder.config.num_hidden_layers
    # query, key, value, output dense and LayerNorm, weight and bias each, in every layer
    assert len(pairs) == len(random) == 10 * layers
    assert all(torch.equal(cross, own) for cross, own in pairs.values())
    assert not torch.equal(*random[next(n for n in random if n.endswith("crossattention.self.query.weight"))])
    # A copy, not a shared tensor: training moves them apart.
    assert all(cross.data_ptr() != own.data_ptr() for cross, own in pairs.values())
    # Everything else is what the random-init model loads.
    reference = reference.state_dict()
    assert all(torch.equal(value, reference[name]) for name, value in copied.state_dict().items()
               if ".crossattention." not in name)


def test_cross_attention_copy_works_on_transformers_bert_decoders():
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, is_decoder=True, add_cross_attention=True)
    decoder = transformers.BertLMHeadModel(config)
    assert init_cross_attention_from_self_attention(decoder) == 20
    assert all(torch.equal(cross, own) for cross, own in cross_and_self_attention(decoder).values())
    with pytest.raises(ValueError, match="no cross-attention"):
        init_cross_attention_from_self_attention(transformers.BertLMHeadModel(transformers.BertConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            is_decoder=True)))


def test_cross_attention_init_reaches_the_model_loader_and_refuses_finished_models(tmp_path, tiny):
    calls = []

    def loader(path, tie_encoder_decoder, **options):
        calls.append(options)
        return load_seq2seq_model(path, tie_encoder_decoder, **options)

    data = squad_file(tmp_path / "train.json")
    for init in ("random", "self_attention"):
        job = Seq2SeqJob(Seq2SeqModelArguments(tiny, cross_attention_init=init),
                         Seq2SeqDataArguments(task="question_generation", train_files=[data]), loader)
        job.prepare(transformers.Seq2SeqTrainingArguments(str(tmp_path / init), report_to="none", use_cpu=True,
                                                          do_train=True), ())
    assert calls == [{}, {"cross_attention_init": "self_attention"}]  # the default keeps two-argument loaders
    saved = tmp_path / "bert2bert"
    load_seq2seq_model(tiny).save_pretrained(saved)
    with pytest.raises(ValueError, match="already a sequence-to-sequence model: --cross_attention_init"):
        load_seq2seq_model(str(saved), cross_attention_init="self_attention")
