"""Loss/metric curves from a Trainer's log history, drawn to a PNG a person can glance at.

One panel per quantity that has a curve (at least two logged points), its training and evaluation series
together (`loss` with `eval_loss`, `nsp_loss` with `eval_nsp_loss`) and a baseline as a dashed line beside the
metric it is the baseline of (`eval_nsp_majority_accuracy` in the `nsp_accuracy` panel), the step on the x-axis and
the quantity on the y-axis, the legend outside the data. A quantity logged once (the Trainer's final
`train_loss`, an evaluation at the end only) is not a curve: its value is written under the panels instead.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: training machines usually have no display
import matplotlib.pyplot as plt  # noqa: E402

# Log entries that are bookkeeping, not curves.
BASELINE = "_majority_accuracy"  # a metric's majority-class baseline: "nsp_majority_accuracy" for "nsp_accuracy"
_NOT_CURVES = {"epoch", "step", "learning_rate", "grad_norm", "total_flos", "train_runtime",
               "train_samples_per_second", "train_steps_per_second", "eval_runtime",
               "eval_samples_per_second", "eval_steps_per_second", "eval_model_preparation_time"}


def _series(log_history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Every numeric log key -> its (step, value) points."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for entry in log_history:
        step = entry.get("step")
        for key, value in entry.items():
            if step is not None and key not in _NOT_CURVES and isinstance(value, int | float):
                series[key].append((step, float(value)))
    return series


def _quantity(key: str) -> str:
    """The quantity a log key measures: "eval_nsp_loss" and "nsp_loss" are both "nsp_loss"; the Trainer's
    final mean "train_loss" is a "loss"; a baseline belongs to its metric's panel."""
    return key.removeprefix("eval_").removeprefix("train_").replace(BASELINE, "_accuracy")


def _label(key: str) -> str:
    if BASELINE in key:
        return "majority class"
    return "evaluation" if key.startswith("eval_") else "training"


def curve_panels(series: dict[str, list[tuple[int, float]]]) -> tuple[dict[str, list[str]], dict[str, float]]:
    """The panels to draw (quantity -> its series' keys; losses first) and the values logged once (key -> value)."""
    panels: dict[str, list[str]] = defaultdict(list)
    for key in sorted(series, key=lambda key: (key.startswith("eval_"), key)):  # training first, same colours
        if len(series[key]) > 1:
            panels[_quantity(key)].append(key)
    order = sorted(panels, key=lambda quantity: (not quantity.endswith("loss"), quantity))
    single = {key: points[-1][1] for key, points in sorted(series.items()) if len(points) == 1}
    return {quantity: panels[quantity] for quantity in order}, single


def plot_log_history(log_history: list[dict], path: str | Path, title: str = "training") -> Path | None:
    """Draw `log_history` (`trainer.state.log_history`) to `path`; None (nothing written) when nothing in it has
    a curve, e.g. after an evaluation-only run."""
    series = _series(log_history)
    panels, single = curve_panels(series)
    if not panels:
        return None
    order = list(panels)
    fig, axes = plt.subplots(len(order), 1, figsize=(8, 2.4 * len(order) + 0.6), sharex=True, squeeze=False)
    for ax, quantity in zip(axes[:, 0], order, strict=True):
        for key in panels[quantity]:
            steps, values = zip(*series[key], strict=True)
            baseline = BASELINE in key
            ax.plot(steps, values, marker=None if baseline or len(steps) >= 30 else "o", markersize=3,
                    linestyle="--" if baseline else "-", color="grey" if baseline else None, label=_label(key))
        ax.set_ylabel(quantity.replace("_", " "))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title, fontsize=10)
    axes[-1, 0].set_xlabel("step")
    if single:
        text = "final: " + ", ".join(f"{key} = {value:.4g}" for key, value in single.items())
        fig.text(0.01, 0.005, text, fontsize=7, va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.04 if single else 0, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
