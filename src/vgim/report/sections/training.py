"""The training section: training curves and InfoNCE accuracy per prediction step ``k``."""

from __future__ import annotations

import math

from vgim.report.context import ReportContext
from vgim.report.page import Section, table

__all__ = ["training_section"]


def training_section(ctx: ReportContext, s: Section) -> None:
    """Training curves, the last logged step and the InfoNCE accuracy per prediction step ``k``."""
    from vgim.interpret.diagnostics import (
        CURVE_LABELS,
        accuracy_per_k,
        curve_columns,
        plot_accuracy_per_k,
        plot_training_curves,
        read_metrics,
    )

    metrics_csv = ctx.run_dir / "metrics.csv"
    if not metrics_csv.is_file():
        s.note(f"No training curves: {metrics_csv} does not exist (a run exported without its log).")
        return
    metrics = read_metrics(metrics_csv)
    curves = plot_training_curves(metrics_csv, ctx.out / "training_curves.png", title=f"{ctx.name}: training")
    s.body.append(s.img(curves, "Every logged quantity of every module per training step."))
    names = curve_columns(metrics)
    final: dict[str, dict[str, float]] = {}
    for m, cols in metrics.items():
        final[f"m{m + 1}"] = {"step": float(cols["step"][-1])} | {
            k: float(cols[k][-1]) for k in names if k in cols and math.isfinite(float(cols[k][-1]))
        }
    final_rows = [
        [m, f"{last['step']:.0f}"] + [f"{last[k]:.4g}" if k in last else "-" for k in names]
        for m, last in final.items()
    ]
    s.body.append(
        table(
            ["module", "step"] + [CURVE_LABELS.get(k, k) for k in names],
            final_rows,
            caption="Last logged training step (one batch each; noisy)",
        )
    )
    n_logged = min(len(cols["step"]) for cols in metrics.values())
    average = max(1, min(4, n_logged))
    try:
        acc = accuracy_per_k(metrics_csv, average_last=average)
    except ValueError as err:
        s.note(f"No accuracy per prediction step: {err}")
        s.data["training"] = {"final": final}
        return
    png = plot_accuracy_per_k(metrics_csv, ctx.out / "accuracy_per_k.png", average_last=average)
    s.body.append(
        s.img(
            png,
            f"InfoNCE accuracy of picking the true future latent among {ctx.cfg.objective.n_negatives} negatives "
            f"+ the positive, per prediction step k (mean of the last {average} logged steps).",
        )
    )
    k_max = max(len(a) for a in acc.values())
    rows = [[f"m{m + 1}"] + [f"{100 * a[k]:.1f}" if k < len(a) else "-" for k in range(k_max)] for m, a in acc.items()]
    s.body.append(table(["module"] + [f"k={k + 1}" for k in range(k_max)], rows, caption="Accuracy (%) per k"))
    s.data["training"] = {
        "final": final,
        "accuracy_per_k": {f"m{m + 1}": a for m, a in acc.items()},
        "accuracy_average_last": average,
    }
