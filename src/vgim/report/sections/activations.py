"""The activation and kernel sections: activations over time and the first-layer kernels' frequency
responses."""

from __future__ import annotations

import numpy as np

from vgim.report.context import ReportContext
from vgim.report.page import Section, esc

__all__ = ["activations_section", "kernels_section"]


def activations_section(ctx: ReportContext, s: Section) -> None:
    """Every module's representation over time on example 1."""
    from vgim.interpret.activations import plot_activations

    ex = ctx.examples[0]
    s.body.append(
        f"<p>Example 1 ({esc(ex.label)}): each module's representation c over time, under the waveform "
        "(syllables shaded when the corpus has segments). Frames are placed at their centre sample.</p>"
    )
    for m in range(ctx.model.n_modules):
        png = plot_activations(
            ctx.model,
            ex.wave,
            m,
            ctx.out / f"activations_m{m + 1}.png",
            sample_rate=ctx.corpus.sample_rate,
            segments=ex.segments,
            segment_labels=ex.syllables,
        )
        s.body.append(s.img(png, f"m{m + 1}: top channels by standard deviation, and all channels"))


def kernels_section(ctx: ReportContext, s: Section) -> None:
    """Frequency responses of the first-layer kernels."""
    from vgim.interpret.activations import kernel_frequencies, kernel_responses, plot_kernel_responses

    try:
        resp = kernel_responses(ctx.model)
    except ValueError as err:
        s.note(f"No kernel responses: {err}.")
        return
    png = plot_kernel_responses(ctx.model, ctx.out / "kernels.png")
    peaks = kernel_frequencies()[resp.argmax(axis=1)]
    s.body.append(
        s.img(
            png,
            "Magnitude frequency response of every first-layer kernel (rows, sorted by peak frequency), "
            "relative to its own peak.",
        )
    )
    s.body.append(
        f"<p>Peak frequencies: median {np.median(peaks):.0f} Hz, {int(np.sum(peaks < 1000))} of {len(peaks)} "
        f"kernels peak below 1 kHz, {int(np.sum(peaks >= 4000))} at or above 4 kHz.</p>"
    )
    s.data["kernels"] = {"peak_hz": peaks}
