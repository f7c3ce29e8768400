"""A run's ``metrics.csv`` (and TensorBoard scalars): written during training, read by plots and reports.

Long format: one row per module per logged step, with ``step``, ``module``, ``lr``, ``loss`` and one column
per stat the module's head and bottleneck report (:class:`vgim.objective.losses.ModuleLoss`), so a new
objective adds its columns by itself. When a later row brings a column the file lacks, the file is written
anew with the wider header. Every rewrite (a new column, or dropping the rows past the checkpoint when a
run resumes) goes to a temporary file that then replaces ``metrics.csv``, so a kill leaves the old file
or the new one, never an empty one.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FIXED_COLUMNS", "MetricsWriter", "metrics_path", "read_metrics"]

log = logging.getLogger("vgim")

FIXED_COLUMNS = ["step", "module", "lr", "loss"]


def _write_rows(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _read_rows(path: Path, keep_until: int) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of steps ``<= keep_until``; a row that does not parse is dropped and logged."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows: list[dict[str, str]] = []
        dropped = 0
        for row in reader:
            try:
                ok = int(row["step"]) <= keep_until and int(row["module"]) >= 0
            except (KeyError, TypeError, ValueError):
                dropped += 1
                continue
            if ok:
                rows.append(row)
    if dropped:
        log.warning("%s: dropped %d row(s) that were not metrics (no integer step and module)", path, dropped)
    return fields, rows


class MetricsWriter:
    """Appends logged steps to ``run_dir/metrics.csv`` and TensorBoard (``run_dir/tensorboard``).

    ``resume_step``: continue a run's file, dropping the rows logged after that step (a resumed run logs
    them again); None starts a new file.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.csv"
        self.fields = list(FIXED_COLUMNS)
        rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.exists():
            fields, rows = _read_rows(self.path, resume_step)
            self.fields = fields if set(FIXED_COLUMNS) <= set(fields) else self.fields
        _write_rows(self.path, self.fields, rows)
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)

    def log(self, step: int, lr: float, columns: dict[int, dict[str, float]]) -> None:
        """Write ``columns`` (``module -> name -> value``, e.g. from ``ModuleLoss.columns()``) for ``step``."""
        rows = [
            {"step": str(step), "module": str(m), "lr": f"{lr:.3g}"} | {k: f"{v:.5g}" for k, v in cols.items()}
            for m, cols in columns.items()
        ]
        new = [k for row in rows for k in row if k not in self.fields]
        if new:
            _, old = _read_rows(self.path, step)
            self.fields += list(dict.fromkeys(new))
            _write_rows(self.path, self.fields, old + rows)
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.fields).writerows(rows)
        for m, cols in columns.items():
            for k, v in cols.items():
                self.tb.add_scalar(f"module{m}/{k}", v, step)
        self.tb.add_scalar("lr", lr, step)

    def close(self) -> None:
        self.tb.close()


def metrics_path(metrics_csv: str | Path) -> Path:
    """``metrics_csv`` itself, or the ``metrics.csv`` inside a run directory; FileNotFoundError if missing."""
    path = Path(metrics_csv)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.csv")
    return path


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_metrics(metrics_csv: str | Path) -> dict[int, dict[str, np.ndarray]]:
    """Read a run's ``metrics.csv`` into per-module columns.

    Parameters
    ----------
    metrics_csv : str or Path
        The file, or the run directory holding it.

    Returns
    -------
    dict of int to (dict of str to np.ndarray)
        ``module -> column -> [n_logged]`` float64 values sorted by step (empty cells are NaN); the columns
        are those of the file except ``module`` (``step``, ``lr``, ``loss``, then the stats of the run's
        heads and bottlenecks, e.g. ``infonce``, ``accuracy``, ``mi_bound``, ``acc_k1`` ..., ``kl``).
    """
    path = metrics_path(metrics_csv)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = [c for c in (reader.fieldnames or []) if c != "module"]
        if "step" not in fields or "module" not in (reader.fieldnames or []):
            raise ValueError(f"{path}: not a vgim metrics.csv (columns {reader.fieldnames})")
        rows: dict[int, list[dict[str, Any]]] = {}
        for row in reader:
            try:
                rows.setdefault(int(row["module"]), []).append(row)
            except (TypeError, ValueError):
                continue
    out: dict[int, dict[str, np.ndarray]] = {}
    for m in sorted(rows):
        cols = {c: np.array([_float(r.get(c)) for r in rows[m]]) for c in fields}
        order = np.argsort(cols["step"], kind="stable")
        out[m] = {c: v[order] for c, v in cols.items()}
    if not out:
        raise ValueError(f"{path}: no logged steps")
    return out
