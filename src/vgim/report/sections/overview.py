"""The configuration section: the run's architecture, frame geometry and ``config.json``."""

from __future__ import annotations

import json

from vgim.frames import SAMPLE_RATE
from vgim.report.context import ReportContext
from vgim.report.page import Section, esc, table

__all__ = ["config_section"]


def config_section(ctx: ReportContext, s: Section) -> None:
    """The architecture, the frame geometry of every module and the run's ``config.json``."""
    path = ctx.run_dir / "config.json"
    cfg = json.loads(path.read_text()) if path.is_file() else ctx.cfg.to_dict()
    s.data["config"] = cfg
    layers = ", ".join(
        f"{spec.kind} {spec.channels}" + (f" k{spec.kernel}/s{spec.stride}" if spec.kind != "gru" else "")
        for spec in ctx.cfg.model.layers
    )
    s.body.append(
        f"<p>{ctx.model.n_modules} modules of {esc(ctx.cfg.model.modules)} layers: {esc(layers)}. "
        f"Variational: {esc(ctx.cfg.model.variational)}, beta = {esc(ctx.cfg.objective.beta)}; "
        f"{esc(ctx.cfg.train.steps)} training steps in mode {esc(ctx.cfg.train.mode)}.</p>"
    )
    rows = [
        (
            f"m{m + 1}",
            f"{fr.hop} ({1000 * fr.hop / SAMPLE_RATE:.3g} ms)",
            f"{fr.receptive_field} ({1000 * fr.receptive_field / SAMPLE_RATE:.3g} ms)",
            ctx.model.block(m).out_channels,
            "yes" if ctx.model.block(m).variational else "no",
        )
        for m, fr in enumerate(ctx.model.frames)
    ]
    s.body.append(
        table(
            ["module", "hop, samples", "receptive field, samples", "channels of c", "variational"],
            rows,
            caption="Frame geometry at 16 kHz",
        )
    )
    s.body.append(f"<details><summary>config.json</summary><pre>{esc(json.dumps(cfg, indent=2))}</pre></details>")
