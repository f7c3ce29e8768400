"""Figure of one segmented word: waveform, envelope, threshold, loud regions and cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vgim.data.segment.syllables import SegmentResult

__all__ = ["plot_segmentation"]


def plot_segmentation(
    wave: np.ndarray,
    sample_rate: int,
    result: SegmentResult,
    path: str | Path,
    title: str = "",
    labels: list[str] | None = None,
) -> Path:
    """Save a PNG of the waveform with its envelope, threshold, loud regions and cuts.

    Parameters
    ----------
    wave
        The segmented waveform, shape ``[samples]``.
    sample_rate
        Its sample rate in Hz (the time axis is in seconds).
    result
        The output of :func:`segment_syllables` for ``wave``.
    path
        Output PNG (parent folders are created).
    title
        Figure title; the number of loud regions and whether the fallback decided are appended.
    labels
        Optional syllable names written above the segments.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(wave.shape[0]) / sample_rate
    fig: Figure = plt.figure(figsize=(9, 3.2), dpi=80)
    try:
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(t, wave, color="0.6", linewidth=0.4, label="waveform")
        ax.plot(result.envelope_times / sample_rate, result.envelope, color="tab:red", linewidth=1.0, label="envelope")
        ax.axhline(result.threshold, color="tab:blue", linestyle="--", linewidth=1.0, label="threshold")
        for i, (s, e) in enumerate(result.regions):
            ax.axvspan(
                s / sample_rate, e / sample_rate, color="tab:orange", alpha=0.12, label="loud" if i == 0 else None
            )
        for i, c in enumerate(result.cuts):
            ax.axvline(c / sample_rate, color="black", linewidth=1.5, label="cut" if i == 0 else None)
        top = float(max(np.abs(wave).max(), result.threshold)) * 1.1 or 1.0
        if labels:
            for (s, e), name in zip(result.segments, labels, strict=False):
                ax.text((s + e) / 2 / sample_rate, top * 0.92, name, ha="center", va="top", fontsize=11)
        ax.set_ylim(-top, top)
        ax.set_xlim(0, wave.shape[0] / sample_rate)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("amplitude (full scale)")
        how = "fallback 1/3-2/3 rule" if result.fallback else "dips between loud regions"
        ax.set_title(f"{title}  [{result.n_regions_found} loud regions; {how}]".strip(), fontsize=10)
        ax.legend(loc="lower right", fontsize=7, ncol=5)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
