"""Pictures and files of a run: the replay timeline and the bootstrap report.

A timeline says more than a table here: window accuracy of the system against the two
baselines, with the true drift points, detected champion drifts, promotions and rollbacks
marked where they happened.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot
    """matplotlib's pyplot, imported when a picture is drawn (it takes most of a second, and
    most runs that import this module only write JSON)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers or CI
    # its first import on a machine builds a font cache and says so at INFO: not a user's concern
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    return plt


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
    return path


def plot_timeline(result: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Window accuracy (regression: window MAE) over time: system vs baselines, with drift
    and promotion marks."""
    regression = result.get("task") == "regression"
    score = "mae" if regression else "accuracy"
    windows = result["windows"]
    ends = [w["end"] for w in windows]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    ax.plot(ends, [w[score] for w in windows], color="tab:blue", lw=2,
            label=f"Perennial (champion served)  {result['prequential'][score]:.3f}")
    styles = {"online_only": ("tab:orange", "--"), "static": ("tab:gray", ":")}
    for name, (color, ls) in styles.items():
        key = f"{name}_{score}"
        if windows and key in windows[0]:
            value = result["baselines"][name][score]
            ax.plot(ends, [w[key] for w in windows], color=color, ls=ls, lw=1.5,
                    label=f"{name.replace('_', '-')} baseline  {value:.3f}")
    for i, at in enumerate(result.get("true_drifts", [])):
        ax.axvline(at, color="black", alpha=0.25, lw=6, label="true concept switch" if i == 0 else None)
    for i, at in enumerate(result.get("drifts", [])):
        ax.axvline(at, color="tab:red", alpha=0.6, lw=1, ls="--", label="drift detected (champion)" if i == 0 else None)
    if regression:  # error: lower is better; the marks sit at the top of the system's curve
        top = max([w["mae"] for w in windows] + [w.get("online_only_mae", 0) for w in windows], default=1.0)
        static_top = max([w.get("static_mae", 0) for w in windows], default=0.0)
        top = max(top, min(static_top, 3 * top))  # a frozen model far off must not flatten the rest
        mark_y, ylim = top * 1.05, (0.0, top * 1.12)
    else:
        lo = min([w["accuracy"] for w in windows] + [w.get("static_accuracy", 1) for w in windows], default=0.0)
        mark_y, ylim = 1.0, (max(0.0, lo - 0.05), 1.04)
    marked = [p for p in result.get("promotions", []) if p.get("at") is not None]
    for i, p in enumerate(marked):
        ax.scatter([p["at"]], [mark_y], marker="v", s=90, color="tab:green", zorder=5,
                   label="promotion" if i == 0 else None)
        ax.annotate(p["learner"], (p["at"], mark_y), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=7, color="tab:green")
    for i, r in enumerate(r for r in result.get("rollbacks", []) if r.get("at") is not None):
        ax.scatter([r["at"]], [mark_y], marker="x", s=90, color="tab:red", zorder=5,
                   label="rollback" if i == 0 else None)
    ax.set_ylim(*ylim)
    ax.set_xlabel("event")
    what = "mean absolute error" if regression else "accuracy"
    ax.set_ylabel(f"{what} (window of {result.get('window', '?')} events)")
    ax.set_title(title or f"{result['stream']}: {result['events']:,} events after bootstrap")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if regression else "lower left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_loss_curves(curves: dict[str, tuple[dict[str, list[float]], str]], path: str | Path) -> Path:
    """One panel per candidate: training and validation loss as training progressed."""
    n = len(curves)
    plt = _pyplot()
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    for ax, (name, (curve, x_label)) in zip(axes[0], curves.items(), strict=True):
        ax.plot(curve["x"], curve["train_loss"], label="train", color="tab:blue")
        ax.plot(curve["x"], curve["val_loss"], label="validation", color="tab:orange")
        ax.set_title(name)
        ax.set_xlabel(x_label)
        ax.set_ylabel("log-loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
