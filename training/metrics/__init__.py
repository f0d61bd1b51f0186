"""Evaluation metrics bundled with openbert as local `evaluate` modules.

`evaluate.load("accuracy")` fetches the metric's script from the Hugging Face Hub and fails on a machine
without network access (the `evaluate` wheel ships no metric scripts). The metrics that fine-tuning needs
live here instead, one `evaluate` module per file, and `load_metric` loads them by absolute path, which
`evaluate` resolves locally without touching the network.
"""

from __future__ import annotations

from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).resolve().parent

# Names accepted by `load_metric`; each is a file `<name>.py` in METRICS_DIR defining one `evaluate.Metric`.
# (squad_scoring.py and shared.py are helpers the metrics import, not metrics.)
AVAILABLE_METRICS = (
    "accuracy", "bleu", "f1", "matthews_correlation", "pearsonr", "rouge", "spearmanr", "squad", "squad_v2"
)


def metric_path(name: str) -> Path:
    """Absolute path of the bundled metric script `name` (one of `AVAILABLE_METRICS`)."""
    if name not in AVAILABLE_METRICS:
        raise ValueError(f"unknown metric {name!r}; openbert bundles {', '.join(AVAILABLE_METRICS)}")
    return METRICS_DIR / f"{name}.py"


def load_metric(name: str, **kwargs) -> evaluate.EvaluationModule:
    """`evaluate.load` the bundled metric `name`, offline; `kwargs` go to `evaluate.load` unchanged.

    The path is absolute on purpose: `evaluate` first looks a bare name up relative to the current
    directory and then on the Hub.
    """
    return evaluate.load(str(metric_path(name)), **kwargs)
