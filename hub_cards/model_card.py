"""Model cards (the Hub's README.md) for openbert checkpoints, rendered from what a training run produced.

The YAML metadata comes from `huggingface_hub.ModelCardData` (so `model-index` has the Hub's schema), the body
from the Jinja templates in `hub_cards/templates/` (`pretrained.md` and `finetuned.md`, both extending
`base.md`). Every number in a card is read from the run: the architecture from the checkpoint's `config.json`,
the parameter count from its safetensors headers, the hyperparameters, step count, wall time and metrics from
the caller as plain values (`openbert.training.hub.card` takes them from a training run), the hardware and library
versions from the running process.
"""

from __future__ import annotations

import datetime
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .hardware import hardware_description

CARD_FILENAME = "README.md"
# Stands for the repo id in the card's code snippets until the push, which fills in the real one; a card
# written before anyone chose a repo id must still be a valid card.
REPO_ID_PLACEHOLDER = "NAMESPACE/MODEL_NAME"
CARD_TAGS = ("openbert", "bert", "custom_code")


@dataclass(frozen=True)
class _Task:
    title: str
    auto_classes: tuple[str, ...]  # in order of preference; the first the checkpoint's auto_map has is used
    library: str = "transformers"  # the library a user loads the model with: the card's library_name


TASKS: dict[str, _Task] = {
    "fill-mask": _Task("masked-language modelling", ("AutoModelForMaskedLM", "AutoModelForPreTraining")),
    "text-classification": _Task("text classification", ("AutoModelForSequenceClassification",)),
    "token-classification": _Task("token classification", ("AutoModelForTokenClassification",)),
    "question-answering": _Task("extractive question answering", ("AutoModelForQuestionAnswering",)),
    "multiple-choice": _Task("multiple choice", ("AutoModelForMultipleChoice",)),
    "feature-extraction": _Task("feature extraction", ("AutoModel",)),
    # sentence-transformers models: a SentenceTransformer (embeddings) and a CrossEncoder (re-ranker).
    "sentence-similarity": _Task("sentence embeddings", ("AutoModel",), "sentence-transformers"),
    "text-ranking": _Task("re-ranking", ("AutoModelForSequenceClassification",), "sentence-transformers"),
    # The Hub's tag for encoder-decoder generation (T5, BART); transformers 5 has no pipeline of that name.
    "text2text-generation": _Task("text-to-text generation", ("AutoModelForSeq2SeqLM",)),
}

# Trainer metrics that describe the evaluation loop rather than the model.
_BOOKKEEPING_METRICS = {"runtime", "samples_per_second", "steps_per_second", "epoch", "model_preparation_time"}
_ARCHITECTURE_FIELDS = (
    ("Layers", "num_hidden_layers"), ("Hidden size", "hidden_size"), ("Attention heads", "num_attention_heads"),
    ("Feed-forward size", "intermediate_size"), ("Activation", "hidden_act"), ("Vocabulary", "vocab_size"),
    ("Max positions", "max_position_embeddings"), ("Token types", "type_vocab_size"),
)
_SOFTWARE = ("transformers", "torch", "tokenizers", "huggingface_hub")

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader(__package__, "templates"),
    undefined=jinja2.StrictUndefined,  # a misspelt variable fails the render instead of leaving a hole
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
# A phrase that starts a sentence: "the `train` split of ..." -> "The `train` split of ...".
_templates.filters["capitalize_first"] = lambda text: text[:1].upper() + text[1:]


def write_model_card(
    output_dir: str | Path, *, kind: Literal["pretrained", "finetuned"], task: str, metrics: Mapping[str, Any],
    hyperparameters: Mapping[str, Any], train_runtime_s: float, train_data: str, eval_data: str,
    hub_datasets: Sequence[str] = (), base_model: str | None = None, base_model_text: str | None = None,
    train_steps: int | None = None, train_epochs: float | None = None, dataset_config: str | None = None,
    language: str | list[str] = "en", license: str = "apache-2.0", model_name: str | None = None,
    repo_id: str | None = None, hardware: str | None = None,
) -> Path:
    """Render the model card of the checkpoint in `output_dir` and write it to `output_dir/README.md`; return its path.

    Call it after the model, its config and tokenizer are saved there (and any curves PNG, which the card shows).

    Args:
        kind: "pretrained" (an encoder trained with MLM/NSP) or "finetuned" (a task model).
        task: the Hub task id, one of `TASKS` ("fill-mask" for pretraining); it is the `pipeline_tag`.
        metrics: the run's final evaluation metrics as the Trainer returns them ("eval_accuracy": 0.91, ...);
            the "eval_"/"test_" prefix is dropped and loop bookkeeping (runtime, samples/s, epoch) left out.
            They become the card's `model-index` and its results table, unrounded in the metadata.
        hyperparameters: name -> value, shown as given.
        train_runtime_s: training wall time in seconds (the Trainer's `train_runtime`).
        train_data: what the model was trained on, as a Markdown phrase ("the `train` split of `nyu-mll/glue`").
        eval_data: what the metrics were measured on, likewise.
        hub_datasets: the Hub data sets among the above, for the metadata (the evaluation's first); local files
            stay out of it.
        base_model: the Hub id of the model fine-tuned or further pretrained (linked, and in the metadata).
        base_model_text: instead, a description of a starting point that is not on the Hub ("the local
            checkpoint `outputs/pretrain`", "random initialisation"). A fine-tuned model needs one of the two.
        train_steps, train_epochs: optimisation steps and epochs the training ran (left out when None).
        dataset_config: the Hub data set's configuration evaluated (e.g. "sst2" for GLUE).
        model_name: the card's title and `model-index` name; default: the output directory's name.
        repo_id: the repo the checkpoint will live in, for the usage snippets; default: `REPO_ID_PLACEHOLDER`,
            which `openbert push` replaces with the real repo id in the copy it uploads.
        hardware: what the run trained on; default: `hardware_description()` of this process.
    """
    _check_card_arguments(kind, task, base_model, base_model_text, repo_id, hyperparameters)
    output_dir = Path(output_dir)
    results = _eval_results(metrics)
    model_name = model_name or output_dir.resolve().name
    evaluated_on = hub_datasets[0] if hub_datasets else eval_data.strip("`").split("`")[0]
    library = TASKS[task].library
    card_data = ModelCardData(
        language=language, license=license, library_name=library,
        tags=[*CARD_TAGS, *([library] if library != "transformers" else []), task], pipeline_tag=task,
        datasets=list(hub_datasets) or None, base_model=base_model, model_name=model_name,
        metrics=[name for name in results if name != "loss"] or None, eval_results=[
            EvalResult(task_type=task, task_name=TASKS[task].title, dataset_type=evaluated_on,
                       dataset_name=evaluated_on, dataset_config=dataset_config, metric_type=name, metric_name=name,
                       metric_value=value)
            for name, value in results.items()
        ],
    )
    text = _templates.get_template(f"{kind}.md").render(
        card_data=card_data.to_yaml(), model_name=model_name, repo_id=repo_id or REPO_ID_PLACEHOLDER,
        base_model_link=f"[{base_model}](https://huggingface.co/{base_model})" if base_model else base_model_text,
        train_data=train_data, eval_data=eval_data,
        hyperparameters=[(name, _format(value)) for name, value in hyperparameters.items()],
        train_steps=f"{train_steps:,}" if train_steps is not None else None,
        train_epochs=f"{train_epochs:.3g}" if train_epochs is not None else None,
        train_runtime=_format_duration(train_runtime_s), hardware=hardware or hardware_description(),
        results=[(name, _format(value)) for name, value in results.items()],
        language=language if isinstance(language, str) else ", ".join(language), **_checkpoint_values(task, output_dir),
    )
    card = ModelCard(text)  # parses the metadata back: a card the Hub could not read fails here
    path = output_dir / CARD_FILENAME
    card.save(path)
    return path


def _check_card_arguments(kind: str, task: str, base_model: str | None, base_model_text: str | None,
                          repo_id: str | None, hyperparameters: Any) -> None:
    """Raise for arguments a card cannot be made of."""
    if kind not in ("pretrained", "finetuned"):
        raise ValueError(f"kind must be 'pretrained' or 'finetuned', got {kind!r}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    if kind == "finetuned" and not (base_model or base_model_text):
        raise ValueError("a fine-tuned model's card needs base_model (a Hub id) or base_model_text (a description "
                         "of the local model fine-tuned)")
    if base_model is not None:
        _check_repo_id(base_model, "base_model")
    if repo_id is not None:
        _check_repo_id(repo_id, "repo_id")
    if not isinstance(hyperparameters, Mapping):
        raise TypeError(f"hyperparameters must be a mapping of name -> value, got {type(hyperparameters).__name__}")


def _checkpoint_values(task: str, output_dir: Path) -> dict[str, Any]:
    """What the card says that comes from the saved checkpoint and this process, not from the caller."""
    config = _read_config(output_dir)
    if "encoder" in config and "decoder" in config:
        # An encoder-decoder (BERT2BERT) is described by its encoder's sizes (the decoder's match when both
        # were warm-started from one checkpoint); the auto_map stays the top-level one.
        config = {**config["encoder"], "architectures": config.get("architectures"),
                  "auto_map": config.get("auto_map", {})}
    task_info = TASKS[task]
    auto_class = next((c for c in task_info.auto_classes if c in config.get("auto_map", {})), task_info.auto_classes[0])
    return {
        "task": task, "task_title": task_info.title, "auto_class": auto_class, "library": task_info.library,
        "has_pipeline": _has_pipeline(task, auto_class), "objectives": _objectives(config), "config": config,
        "architecture": _architecture_rows(config, _parameter_count(output_dir)),
        "labels": _labels(config) if task in ("text-classification", "token-classification") else [],
        "software": ", ".join(f"{name} {_version(name)}" for name in _SOFTWARE),
        "curves": sorted(p.name for p in output_dir.glob("*.png")),
    }


def _check_repo_id(value: str, name: str) -> None:
    try:
        validate_repo_id(value)
    except HFValidationError as e:
        raise ValueError(f"{name} must be a Hub repo id like 'namespace/name', got {value!r}: {e}") from e


def _read_config(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: save the model (trainer.save_model / model.save_pretrained) into "
            f"{output_dir} before writing its card"
        )
    return json.loads(path.read_text())


def _parameter_count(output_dir: Path) -> int:
    """Number of parameters stored in the checkpoint, summed from the safetensors headers (no weights read).

    Tied weights are stored once, so this counts what the model really has.
    """
    files = sorted(output_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"no *.safetensors weights in {output_dir}: save the model there before writing its card"
        )
    total = 0
    for file in files:
        with file.open("rb") as f:
            (header_size,) = struct.unpack("<Q", f.read(8))  # safetensors: u64 little-endian header length
            header = json.loads(f.read(header_size))
        total += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    return total


def _eval_results(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The model's scores from Trainer metrics: "eval_accuracy" -> "accuracy"; bookkeeping dropped."""
    results: dict[str, float] = {}
    for key, value in metrics.items():
        name = key.removeprefix("eval_").removeprefix("test_")
        if name in _BOOKKEEPING_METRICS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if name in results:
            raise ValueError(f"metrics hold {name!r} twice (with and without a prefix): pass one evaluation's")
        results[name] = value
    if not results:
        raise ValueError(f"metrics hold no evaluation result (got keys {sorted(metrics)}): pass trainer.evaluate()")
    return results


def _architecture_rows(config: Mapping[str, Any], parameters: int) -> list[tuple[str, str]]:
    rows = [("Architecture", ", ".join(config.get("architectures") or [config.get("model_type", "?")]))]
    rows += [(label, _format(config[key])) for label, key in _ARCHITECTURE_FIELDS if key in config]
    rows.append(("Parameters", f"{parameters:,} ({parameters / 1e6:.3g} M)"))
    return rows


def _has_pipeline(task: str, auto_class: str) -> bool:
    """Whether the installed transformers has a pipeline for `task` that can load this checkpoint.

    Asked of transformers itself because its pipelines change (5.x dropped "question-answering").
    """
    from transformers import pipelines  # deferred: heavy, and only needed here

    # A removed task stays unavailable even when code registers a pipeline under its name in this process
    # (openbert.training.qa.pipeline does): `pipeline()` refuses it before it looks at the registry.
    available = task in pipelines.SUPPORTED_TASKS and task not in getattr(pipelines, "REMOVED_TASKS", {})
    # the fill-mask pipeline needs a masked-LM head; a pretraining checkpoint also maps AutoModelForMaskedLM
    return available and (task != "fill-mask" or auto_class == "AutoModelForMaskedLM")


def _objectives(config: Mapping[str, Any]) -> str:
    architectures = config.get("architectures") or []
    if any(a.endswith("ForPreTraining") for a in architectures):
        return "masked-language modelling and next-sentence prediction"
    return "masked-language modelling"


def _labels(config: Mapping[str, Any]) -> list[str]:
    id2label = config.get("id2label") or {}
    return [id2label[k] for k in sorted(id2label, key=int)]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _format_duration(seconds: float) -> str:
    return f"{seconds:.1f} s ({datetime.timedelta(seconds=round(seconds))})"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
