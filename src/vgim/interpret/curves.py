"""Training curves from a run's ``metrics.csv`` (read by :func:`vgim.train.metrics.read_metrics`).

- :func:`accuracy_per_k` / :func:`plot_accuracy_per_k`: how often InfoNCE picks the true ``z_{t+k}`` among
  the negatives, against the prediction step ``k`` (the CPC paper's Figure 3);
- :func:`plot_training_curves`: every logged quantity of every module against the training step.

Modules are 0-based indices (the ``module`` column of ``metrics.csv``); plots label them ``m1``, ``m2``, ...
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vgim.interpret.activations import new_figure, save_figure
from vgim.train.metrics import FIXED_COLUMNS, metrics_path, read_metrics

__all__ = [
    "CURVE_LABELS",
    "MetricsSource",
    "accuracy_per_k",
    "curve_columns",
    "plot_accuracy_per_k",
    "plot_training_curves",
]

MetricsSource = str | Path | Mapping[str, str | Path]


def accuracy_per_k(metrics_csv: str | Path, average_last: int = 1) -> dict[int, np.ndarray]:
    """InfoNCE accuracy per prediction step at the last logged step of every module.

    Each logged value comes from one training batch; ``average_last > 1`` averages the last few logged
    steps to reduce that noise.

    Parameters
    ----------
    metrics_csv : str or Path
        A run's ``metrics.csv`` (or the run directory).
    average_last : int
        Number of last logged steps to average (1: the last one only).

    Returns
    -------
    dict of int to np.ndarray
        ``module -> [K]`` float64 accuracies for ``k = 1..K`` (the ``acc_k<k>`` columns of the module's
        row with the largest step, or their mean over the ``average_last`` largest steps).

    Raises
    ------
    ValueError
        If the file has no ``acc_k`` columns.
    """
    if average_last < 1:
        raise ValueError(f"average_last must be >= 1, got {average_last}")
    metrics = read_metrics(metrics_csv)
    out: dict[int, np.ndarray] = {}
    for m, cols in metrics.items():
        ks = sorted(int(c[len("acc_k") :]) for c in cols if c.startswith("acc_k") and c[len("acc_k") :].isdigit())
        if not ks:
            raise ValueError(f"{metrics_csv}: no acc_k<k> columns")
        row = np.array([np.mean(cols[f"acc_k{k}"][-average_last:]) for k in ks])
        while row.size and np.isnan(row[-1]):
            row = row[:-1]
        out[m] = row
    return out


def _runs(source: MetricsSource) -> dict[str, Path]:
    if isinstance(source, Mapping):
        return {str(k): metrics_path(v) for k, v in source.items()}
    path = metrics_path(source)
    return {"": path}


def _n_negatives(metrics_path: Path) -> int | None:
    try:
        cfg: dict[str, Any] = json.loads((metrics_path.parent / "config.json").read_text())
        return int(cfg["objective"]["n_negatives"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def plot_accuracy_per_k(
    metrics_csv: MetricsSource, path: str | Path, title: str | None = None, average_last: int = 1
) -> Path:
    """InfoNCE accuracy against the prediction step ``k``, one line per module (the CPC paper's Figure 3).

    Accuracy is the fraction of scored positions where the true ``z_{t+k}`` gets the highest score among
    itself and the negatives, at the last logged training step. Chance level ``1 / (1 + n_negatives)`` is
    drawn when the run's ``config.json`` sits next to ``metrics.csv``.

    Parameters
    ----------
    metrics_csv : str, Path or mapping of str to (str or Path)
        A run's ``metrics.csv`` (or run directory), or ``{run name: metrics.csv}`` to compare runs.
    path : str or Path
        Output PNG.
    title : str, optional
        Plot title.
    average_last : int
        Average the last this many logged steps (see :func:`accuracy_per_k`).

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.ticker import MaxNLocator

    runs = _runs(metrics_csv)
    fig = new_figure(7.5, 4.8)
    ax = fig.subplots()
    markers = "osD^v<>"
    chances: set[int] = set()
    colour = 0
    for r, (name, mpath) in enumerate(runs.items()):
        for m, acc in accuracy_per_k(mpath, average_last).items():
            label = f"{name} m{m + 1}".strip()
            ks = np.arange(1, acc.shape[0] + 1)
            ax.plot(
                ks,
                100 * acc,
                marker=markers[m % len(markers)],
                linestyle="-" if r == 0 else "--",
                color=f"C{colour % 10}",
                label=label,
            )
            colour += 1
        neg = _n_negatives(mpath)
        if neg is not None:
            chances.add(neg)
    for neg in sorted(chances):
        ax.axhline(100 / (1 + neg), color="0.4", linestyle=":", linewidth=1.2, label=f"chance (1 of {1 + neg})")
    ax.set_xlabel("prediction step k (frames of the module ahead)")
    ax.set_ylabel("InfoNCE accuracy (%)")
    ax.set_ylim(0, 100)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    when = "last logged step" if average_last == 1 else f"mean of the last {average_last} logged steps"
    ax.set_title(title or f"accuracy of picking the positive vs. prediction step ({when})", fontsize=11)
    return save_figure(fig, path)


def curve_columns(metrics: dict[int, dict[str, np.ndarray]]) -> list[str]:
    """The logged quantities worth a panel: ``loss`` and every scalar stat (not the per-k vectors)."""
    names: dict[str, None] = {"loss": None}
    for cols in metrics.values():
        stems = Counter(c.rstrip("0123456789") for c in cols if c[-1:].isdigit())
        for c in cols:
            if c in FIXED_COLUMNS or (c[-1:].isdigit() and stems[c.rstrip("0123456789")] > 1):
                continue
            if np.isfinite(cols[c]).any():
                names[c] = None
    return list(names)


CURVE_LABELS = {
    "loss": "loss (head + beta * penalty)",
    "infonce": "InfoNCE loss",
    "kl": "KL (nats, summed over dims)",
    "accuracy": "InfoNCE accuracy (mean over k)",
    "mi_bound": "InfoNCE bound on I(z; c) (nats)",
}


def plot_training_curves(metrics_csv: MetricsSource, path: str | Path, title: str | None = None) -> Path:
    """Every logged quantity of every module against the training step, one panel each: the loss, then the
    stats of the run's heads and bottlenecks (InfoNCE's loss, accuracy and bound, a Gaussian's KL, a VQ
    codebook's perplexity, APC's L1 ...), whatever ``metrics.csv`` holds. ``metrics_csv`` and ``title`` are
    as for :func:`plot_accuracy_per_k`; the figure is written to the PNG ``path``, which is returned.
    """
    runs = {name: read_metrics(p) for name, p in _runs(metrics_csv).items()}
    keys = list(dict.fromkeys(k for metrics in runs.values() for k in curve_columns(metrics)))
    n_cols = 2 if len(keys) > 1 else 1
    n_rows = -(-len(keys) // n_cols)
    fig = new_figure(5.5 * n_cols, 3.5 * n_rows)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, sharex=True)).ravel()
    colour = 0
    for r, (name, metrics) in enumerate(runs.items()):
        for m, cols in metrics.items():
            label = f"{name} m{m + 1}".strip()
            for ax, key in zip(axes, keys, strict=False):
                if key in cols and np.isfinite(cols[key]).any():
                    ax.plot(
                        cols["step"],
                        cols[key],
                        color=f"C{colour % 10}",
                        linestyle="-" if r == 0 else "--",
                        linewidth=1.2,
                        label=label,
                    )
            colour += 1
    for ax, key in zip(axes, keys, strict=False):
        ax.set_ylabel(CURVE_LABELS.get(key, key))
        ax.grid(alpha=0.3)
        if key == "kl" and any(np.nanmax(np.asarray(ln.get_ydata(), dtype=float)) > 0 for ln in ax.get_lines()):
            ax.set_yscale("log")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    for ax in axes[max(0, len(keys) - n_cols) : len(keys)]:
        ax.set_xlabel("training step")
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "training curves")
    return save_figure(fig, path)
