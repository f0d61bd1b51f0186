"""Loss/metric curves from a Trainer's log history, drawn to a PNG a person can glance at."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: training machines usually have no display
import matplotlib.pyplot as plt  # noqa: E402

# Log entries that are bookkeeping, not curves.
_NOT_CURVES = {"epoch", "step", "learning_rate", "grad_norm", "total_flos", "train_runtime",
               "train_samples_per_second", "train_steps_per_second", "eval_runtime",
               "eval_samples_per_second", "eval_steps_per_second"}


def plot_log_history(log_history: list[dict], path: str | Path, title: str = "training") -> Path | None:
    """Plot every numeric series in `log_history` (`trainer.state.log_history`) against the step.

    Losses share one panel (log scale); each other metric (accuracy, F1, ...) gets its own.
    Returns the written path, or None when the history holds nothing to plot.
    """
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            if key not in _NOT_CURVES and isinstance(value, int | float):
                series[key].append((step, float(value)))
    if not series:
        return None
    losses = sorted(k for k in series if k.endswith("loss"))
    metrics = sorted(k for k in series if k not in losses)
    panels = ([losses] if losses else []) + [[m] for m in metrics]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, keys in zip(axes[:, 0], panels, strict=True):
        for key in keys:
            steps, values = zip(*series[key], strict=True)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
        if keys is losses and all(v > 0 for k in keys for _, v in series[k]):
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
