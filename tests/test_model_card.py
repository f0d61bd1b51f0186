"""Model cards: metadata the Hub can parse, and a body whose every number comes from the run."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import TrainingArguments
from transformers.pipelines import REMOVED_TASKS, SUPPORTED_TASKS

from openbert import modeling
from openbert.hub_cards import REPO_ID_PLACEHOLDER, TASKS, hardware_description, write_model_card
from openbert.tokenization import build_bert_tokenizer, save_tokenizer
from openbert.training.hub.card import hyperparameters_from_training_args

TINY = dict(vocab_size=97, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=40)
METRICS = {"eval_loss": 0.41512, "eval_accuracy": 0.8125, "eval_f1": 0.79012345, "eval_runtime": 0.3,
           "eval_samples_per_second": 120.5, "eval_steps_per_second": 15.1, "epoch": 2.0}


def save(model_class, directory: Path, **config) -> torch.nn.Module:
    torch.manual_seed(0)
    model = model_class(modeling.OpenBertConfig(**{**TINY, **config}))
    model.save_pretrained(directory)
    return model


def table(card_text: str) -> dict[str, str]:
    """Every `| name | value |` row of the card's tables."""
    return {m[0].strip("` "): m[1].strip() for m in re.findall(r"^\| ([^|]+) \| ([^|]+) \|$", card_text, re.M)}


@pytest.fixture(scope="module")
def classifier_card(tmp_path_factory):
    directory = tmp_path_factory.mktemp("finetuned") / "sst2-tiny"
    model = save(modeling.OpenBertForSequenceClassification, directory, num_labels=2,
                 id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    (directory / "curves.png").write_bytes(b"\x89PNG")
    args = TrainingArguments(directory, learning_rate=4e-5, per_device_train_batch_size=16,
                             gradient_accumulation_steps=2, num_train_epochs=2, warmup_steps=3, seed=42,
                             report_to=[])
    path = write_model_card(directory, kind="finetuned", task="text-classification", metrics=METRICS,
                            hyperparameters={**hyperparameters_from_training_args(args), "max_seq_length": 128},
                            train_runtime_s=3723.25, train_steps=1234, train_epochs=2.0,
                            base_model="tester/openbert-base", dataset_config="sst2",
                            train_data="the `train` split of `nyu-mll/glue` (`sst2`)",
                            eval_data="the `validation` split of `nyu-mll/glue` (`sst2`)",
                            hub_datasets=["nyu-mll/glue"])
    return path, model


def test_metadata_and_model_index_are_the_runs(classifier_card):
    path, _ = classifier_card
    card = ModelCard.load(path)
    data = card.data
    assert (data.language, data.license, data.library_name) == ("en", "apache-2.0", "transformers")
    assert set(data.tags) == {"openbert", "bert", "custom_code", "text-classification"}
    assert data.pipeline_tag == "text-classification"
    assert data.datasets == ["nyu-mll/glue"] and data.base_model == "tester/openbert-base"
    assert data.metrics == ["accuracy", "f1"]
    assert data.model_name == "sst2-tiny"
    # model-index: exactly the evaluation's metrics, unrounded, without the loop's bookkeeping
    results = {r.metric_type: r.metric_value for r in data.eval_results}
    assert results == {"loss": 0.41512, "accuracy": 0.8125, "f1": 0.79012345}
    for result in data.eval_results:
        assert (result.task_type, result.dataset_type, result.dataset_config) == (
            "text-classification", "nyu-mll/glue", "sst2")


def test_body_numbers_come_from_config_weights_and_run(classifier_card):
    path, model = classifier_card
    text = path.read_text()
    rows = table(text)
    assert rows["Architecture"] == "OpenBertForSequenceClassification"
    assert (rows["Layers"], rows["Hidden size"], rows["Attention heads"], rows["Vocabulary"]) == ("3", "32", "4", "97")
    n_parameters = sum(p.numel() for p in model.parameters())
    assert rows["Parameters"].startswith(f"{n_parameters:,} ")
    assert rows["Labels"] == "negative, positive"
    assert (rows["learning_rate"], rows["per_device_train_batch_size"], rows["seed"]) == ("4e-05", "16", "42")
    assert rows["total_train_batch_size"] == "32" and rows["max_seq_length"] == "128"
    assert (rows["accuracy"], rows["f1"], rows["loss"]) == ("0.8125", "0.7901", "0.4151")
    assert "eval_runtime" not in rows and "runtime" not in rows
    assert "- Optimisation steps: 1,234 (2 epochs)" in text
    assert "\nThe `train` split of `nyu-mll/glue` (`sst2`).\n" in text
    assert "Measured at the end of training on the `validation` split of `nyu-mll/glue` (`sst2`)." in text
    assert "- Training wall time: 3723.2 s (1:02:03)" in text
    assert f"- Hardware: {hardware_description()}" in text
    assert f"torch {torch.__version__}" in text
    assert "![Training curves: curves.png](curves.png)" in text


def test_usage_snippets_and_fixed_sections(classifier_card):
    path, _ = classifier_card
    text = path.read_text()
    model_line = f'AutoModelForSequenceClassification.from_pretrained("{REPO_ID_PLACEHOLDER}", trust_remote_code=True)'
    assert model_line in text
    assert f'pipeline("text-classification", model="{REPO_ID_PLACEHOLDER}", trust_remote_code=True)' in text
    assert "[tester/openbert-base](https://huggingface.co/tester/openbert-base) fine-tuned for" in text
    for heading in ("Model details", "Training data", "Training procedure", "Evaluation results", "How to use",
                    "Limitations", "Citation"):
        assert f"\n## {heading}\n" in text
    assert "Inputs longer than 40 tokens" in text
    assert "@inproceedings{devlin-etal-2019-bert" in text


def test_pretrained_card(tmp_path):
    directory = tmp_path / "pretrain"
    model = save(modeling.OpenBertForPreTraining, directory)
    path = write_model_card(directory, kind="pretrained", task="fill-mask",
                            metrics={"eval_loss": 3.5, "eval_perplexity": 33.115, "eval_nsp_accuracy": 0.61},
                            hyperparameters={"learning_rate": 1e-4, "mlm_probability": 0.15},
                            train_runtime_s=12.0, train_steps=777, train_data="`wiki.train.raw` (local file)",
                            eval_data="`wiki.valid.raw` (local file)",
                            repo_id="tester/tiny-mlm", hardware="1 × Test Accelerator")
    text = path.read_text()
    card = ModelCard.load(path)
    assert card.data.pipeline_tag == "fill-mask" and card.data.base_model is None
    assert card.data.datasets is None  # local files are named in the text, not in the metadata
    assert "Unlabelled text: `wiki.train.raw` (local file), cut into" in text
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == {
        "loss": 3.5, "perplexity": 33.115, "nsp_accuracy": 0.61}
    assert "pretrained from scratch with masked-language modelling and next-sentence prediction" in text
    assert "- Optimisation steps: 777" in text and "- Hardware: 1 × Test Accelerator" in text
    # ForPreTraining checkpoints also map AutoModelForMaskedLM, which the fill-mask pipeline needs
    assert 'AutoModelForMaskedLM.from_pretrained("tester/tiny-mlm", trust_remote_code=True)' in text
    assert 'pipeline("fill-mask", model="tester/tiny-mlm", trust_remote_code=True)' in text
    assert REPO_ID_PLACEHOLDER not in text
    assert table(text)["Parameters"].startswith(f"{sum(p.numel() for p in model.parameters()):,} ")


def bert2bert(config: modeling.OpenBertConfig) -> modeling.OpenBertEncoderDecoderModel:
    """A random BERT2BERT of `config`'s size whose decoder starts from [CLS] (id 2) and stops at [SEP] (id 3)."""
    decoder = copy.deepcopy(config)
    decoder.is_decoder = decoder.add_cross_attention = True
    model = modeling.OpenBertEncoderDecoderModel(encoder=modeling.OpenBertModel(config),
                                                 decoder=modeling.OpenBertLMHeadModel(decoder))
    model.config.decoder_start_token_id, model.config.pad_token_id = 2, 0
    model.generation_config.update(decoder_start_token_id=2, eos_token_id=3, pad_token_id=0, max_length=8)
    return model


SNIPPET_CASES = {
    "fill-mask": ("pretrained", modeling.OpenBertForPreTraining),
    "text-classification": ("finetuned", modeling.OpenBertForSequenceClassification),
    "token-classification": ("finetuned", modeling.OpenBertForTokenClassification),
    "question-answering": ("finetuned", modeling.OpenBertForQuestionAnswering),
    "multiple-choice": ("finetuned", modeling.OpenBertForMultipleChoice),
    "feature-extraction": ("pretrained", modeling.OpenBertModel),
    "sentence-similarity": ("finetuned", modeling.OpenBertModel),
    "text-ranking": ("finetuned", modeling.OpenBertForSequenceClassification),
    "text2text-generation": ("finetuned", bert2bert),
}


def test_every_task_has_a_snippet_case():
    assert SNIPPET_CASES.keys() == TASKS.keys()


@pytest.mark.parametrize("task", list(SNIPPET_CASES))
def test_usage_snippets_run(tmp_path, task, capsys):
    """The card's code, pointed at the saved checkpoint instead of a Hub repo, runs as written."""
    kind, model_class = SNIPPET_CASES[task]
    words = ["the", "quick", "brown", "fox", "capital", "of", "france", "is", "where", "do", "i", "live", "cat",
             "sat", "on", "mat", "moon", "my", "name", "and", "in", "london", "."]
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    # a re-ranker scores a pair with one logit
    save(model_class, tmp_path, vocab_size=len(vocab), max_position_embeddings=64,
         **({"num_labels": 1} if task == "text-ranking" else {}))
    save_tokenizer(build_bert_tokenizer(vocab, model_max_length=64), tmp_path)
    path = write_model_card(tmp_path, kind=kind, task=task, metrics={"eval_loss": 1.0}, hyperparameters={},
                            train_runtime_s=1.0, train_data="`train.txt` (local file)",
                            eval_data="`dev.txt` (local file)",
                            base_model="tester/openbert-tiny" if kind == "finetuned" else None)
    snippets = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)
    # transformers 5 has no QA/MC pipeline (even when training.qa_pipeline registered one in this process)
    has_pipeline = task in SUPPORTED_TASKS and task not in REMOVED_TASKS
    assert len(snippets) == (2 if has_pipeline else 1)
    for snippet in snippets:
        exec(snippet.replace(REPO_ID_PLACEHOLDER, str(tmp_path)), {})
    assert capsys.readouterr().out.count("\n") >= len(snippets)  # each snippet printed its result


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"kind": "finetuned", "base_model": None}, ValueError, "needs base_model \\(a Hub id\\) or base_model_text"),
        ({"kind": "distilled"}, ValueError, "kind must be"),
        ({"task": "translation"}, ValueError, "unknown task 'translation'"),
        ({"metrics": {"eval_runtime": 1.0, "epoch": 1.0}}, ValueError, "no evaluation result"),
        ({"metrics": {"accuracy": 0.5, "eval_accuracy": 0.6}}, ValueError, "'accuracy' twice"),
        ({"base_model": "/abs/path/to/model"}, ValueError, "base_model must be a Hub repo id"),
        ({"hyperparameters": [("learning_rate", 1e-4)]}, TypeError, "must be a mapping"),
    ],
)
def test_bad_arguments_are_explained(tmp_path, change, error, message):
    save(modeling.OpenBertForMaskedLM, tmp_path)
    arguments = dict(kind="pretrained", task="fill-mask", metrics={"eval_loss": 1.0}, hyperparameters={},
                     train_runtime_s=1.0, train_data="`a.txt` (local file)", eval_data="`b.txt` (local file)",
                     base_model=None)
    with pytest.raises(error, match=message):
        write_model_card(tmp_path, **{**arguments, **change})
    assert not (tmp_path / "README.md").exists()


def test_card_needs_the_saved_model(tmp_path):
    arguments = dict(kind="pretrained", task="fill-mask", metrics={"eval_loss": 1.0}, hyperparameters={},
                     train_runtime_s=1.0, train_data="`a.txt` (local file)", eval_data="`b.txt` (local file)")
    with pytest.raises(FileNotFoundError, match="config.json does not exist"):
        write_model_card(tmp_path, **arguments)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors weights"):
        write_model_card(tmp_path, **arguments)


def test_hardware_description_names_this_machine():
    description = hardware_description()
    if torch.cuda.is_available():
        assert torch.cuda.get_device_name(0) in description
    else:
        assert re.fullmatch(r"\d+ × CPU \(.+\)", description), description
        assert description.startswith(f"{len(os.sched_getaffinity(0))} × CPU")


def test_hyperparameters_from_training_args(tmp_path):
    args = TrainingArguments(tmp_path, per_device_train_batch_size=8, gradient_accumulation_steps=4, report_to=[])
    chosen = hyperparameters_from_training_args(args)
    assert chosen["total_train_batch_size"] == 8 * 4 * args.world_size
    assert "max_steps" not in chosen and chosen["num_train_epochs"] == 3  # -1: the epochs decide
    assert "logging_dir" not in chosen and "output_dir" not in chosen
    bounded = hyperparameters_from_training_args(TrainingArguments(tmp_path, max_steps=50, report_to=[]))
    assert bounded["max_steps"] == 50 and "num_train_epochs" not in bounded  # the steps decide, not the epochs


def test_local_base_model_is_described_not_linked(tmp_path):
    directory = tmp_path / "sentiment"
    save(modeling.OpenBertForSequenceClassification, directory, num_labels=2)
    path = write_model_card(directory, kind="finetuned", task="text-classification", metrics={"eval_accuracy": 0.8},
                            hyperparameters={}, train_runtime_s=5.0, train_data="`train.jsonl` (local file)",
                            eval_data="`test.jsonl` (local file)",
                            base_model_text="the local checkpoint `outputs/my-pretrained`")
    card = ModelCard.load(path)
    assert card.data.base_model is None and card.data.datasets is None  # metadata holds Hub ids only
    assert "is the local checkpoint `outputs/my-pretrained` fine-tuned for text classification on `train.jsonl`" \
        in " ".join(card.text.split())
    assert "Measured at the end of training on `test.jsonl` (local file)." in card.text
