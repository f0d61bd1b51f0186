"""Training curves: one panel per quantity with a curve, values logged once as text, nothing for evaluations."""

from __future__ import annotations

from openbert.training.curves import _series, curve_panels, plot_log_history


def pretraining_history() -> list[dict]:
    """What a pretraining run's Trainer logs: parts of the loss every 50 steps, evaluations every 100, the mean
    training loss once at the end."""
    history = []
    for step in range(50, 301, 50):
        history.append({"step": step, "epoch": step / 100, "loss": 5 - step / 100, "mlm_loss": 4 - step / 100,
                        "nsp_loss": 0.7, "learning_rate": 1e-3, "grad_norm": 1.0})
        if step % 100 == 0:
            history.append({"step": step, "eval_loss": 5.5 - step / 100, "eval_mlm_loss": 4.6, "eval_nsp_loss": 0.69,
                            "eval_mlm_accuracy": step / 1000, "eval_nsp_accuracy": 0.6,
                            "eval_nsp_majority_accuracy": 0.5, "eval_runtime": 1.0})
    history.append({"step": 300, "train_loss": 3.1, "train_runtime": 60.0, "total_flos": 1.0})
    return history


def test_a_panel_per_quantity_with_training_and_evaluation_together():
    panels, single = curve_panels(_series(pretraining_history()))
    assert panels == {"loss": ["loss", "eval_loss"], "mlm_loss": ["mlm_loss", "eval_mlm_loss"],
                      "nsp_loss": ["nsp_loss", "eval_nsp_loss"], "mlm_accuracy": ["eval_mlm_accuracy"],
                      "nsp_accuracy": ["eval_nsp_accuracy", "eval_nsp_majority_accuracy"]}  # its baseline beside it
    assert single == {"train_loss": 3.1}  # one point is not a curve: written as text


def test_evaluation_only_runs_draw_nothing(tmp_path):
    history = [{"step": 0, "eval_loss": 0.4, "eval_accuracy": 0.8, "eval_model_preparation_time": 0.01}]
    assert plot_log_history(history, tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()


def test_plot_is_written(tmp_path):
    path = plot_log_history(pretraining_history(), tmp_path / "curves.png", title="MLM + NSP pretraining")
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
