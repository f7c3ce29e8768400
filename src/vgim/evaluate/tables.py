"""Probe results as tables: the markdown table of accuracy or macro-F1 per feature set and task (the README's
and every study's ``results.md``), and the JSON rows of ``results.json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from vgim.evaluate.probes import ProbeResult

__all__ = ["results_table", "results_to_json"]


def _ordered_unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def results_table(
    results: Sequence[ProbeResult],
    metric: Literal["accuracy", "macro_f1", "both"] = "accuracy",
    *,
    chance: bool = False,
) -> str:
    """Markdown table of probe results.

    Parameters
    ----------
    results : sequence of ProbeResult
        Rows are feature sets and columns tasks, each in order of first appearance.
    metric : {"accuracy", "macro_f1", "both"}
        Cell content in percent with one decimal: ``"87.3"``; ``"both"`` gives
        ``"87.3 / 85.1"`` (accuracy / macro-F1). Missing combinations show ``"-"``.
    chance : bool
        Append a ``"chance"`` row (majority-class share of each task's test set).

    Returns
    -------
    str
        The table, lines joined by ``"\\n"``, with a trailing newline.

    Raises
    ------
    ValueError
        On an unknown metric or a duplicated (feature set, task) pair.
    """
    if metric not in ("accuracy", "macro_f1", "both"):
        raise ValueError(f"metric must be 'accuracy', 'macro_f1' or 'both', got {metric!r}")
    rows = _ordered_unique([r.features for r in results])
    cols = _ordered_unique([r.task for r in results])
    cells: dict[tuple[str, str], ProbeResult] = {}
    for r in results:
        if (r.features, r.task) in cells:
            raise ValueError(f"duplicate result for features={r.features!r}, task={r.task!r}")
        cells[(r.features, r.task)] = r

    def fmt(r: ProbeResult | None) -> str:
        if r is None:
            return "-"
        if metric == "accuracy":
            return f"{100 * r.accuracy:.1f}"
        if metric == "macro_f1":
            return f"{100 * r.macro_f1:.1f}"
        return f"{100 * r.accuracy:.1f} / {100 * r.macro_f1:.1f}"

    lines = [
        "| features | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(cells.get((name, t))) for t in cols) + " |")
    if chance:
        per_task: dict[str, float] = {}
        for r in results:
            per_task.setdefault(r.task, r.chance)
        lines.append("| chance | " + " | ".join(f"{100 * per_task[t]:.1f}" for t in cols) + " |")
    return "\n".join(lines) + "\n"


def results_to_json(results: Sequence[ProbeResult]) -> list[dict[str, Any]]:
    """JSON-serialisable dicts (one per result, fields of :class:`ProbeResult`)."""
    return [dataclasses.asdict(r) for r in results]
