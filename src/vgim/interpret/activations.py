"""What a module computes, over time and in frequency (V-GIM thesis sections 4.3-4.4).

- :func:`plot_activations`: a module's representation over time, aligned with the waveform on a shared
  time axis in seconds (frame ``t`` of module ``m`` is centred on sample ``offset + t * hop`` of the 16 kHz
  input, :class:`vgim.frames.FrameInfo`). As in the thesis, the channels shown are those with the largest
  standard deviation over time (:func:`top_std_channels`).
- :func:`kernel_responses` / :func:`plot_kernel_responses`: the magnitude frequency response of every
  first-layer convolution kernel (a learned filter bank), sorted by peak frequency.

Modules are 0-based indices (``model.block(m)``, the ``module`` column of ``metrics.csv``); plots label
them ``m1``, ``m2``, ... as the probe tables do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from vgim.frames import SAMPLE_RATE
from vgim.model.stack import Gabor, ModuleOutput, Stack

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "kernel_frequencies",
    "kernel_responses",
    "module_outputs",
    "new_figure",
    "plot_activations",
    "plot_kernel_responses",
    "save_figure",
    "top_std_channels",
]

# ---------------------------------------------------------------------------------------------------------
# shared helpers (also used by vgim.interpret.maps and vgim.interpret.diagnostics)


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure drawn with the Agg renderer, without pyplot (no global state, no display).

    Parameters
    ----------
    width, height : float
        Size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A figure whose ``savefig`` writes PNGs through Agg.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("vgim.interpret plots need matplotlib: pip install 'matplotlib>=3.8'") from err
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (parent folders are created) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


@torch.no_grad()
def module_outputs(
    model: Stack,
    wave: np.ndarray | torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    upto: int | None = None,
    chunk_frames: int = 2000,
) -> list[ModuleOutput]:
    """Deterministic outputs (``z``, ``c``, ``mu``, ``logvar``) of modules ``0..upto`` for one waveform.

    Unlike :meth:`Stack.extract_features`, which returns only each module's representation ``c``, this
    keeps the latent ``z`` (``= mu`` for a variational module: no sampling) and the posterior parameters.

    Parameters
    ----------
    model : Stack
        The encoder (its training/eval mode is restored afterwards).
    wave : np.ndarray or torch.Tensor
        ``[samples]`` mono waveform at ``sample_rate`` (resampled to 16 kHz when needed).
    sample_rate : int
        Sample rate of ``wave`` in Hz.
    upto : int or None
        Last module (0-based) to run; ``None`` runs all.
    chunk_frames : int
        Run the convolutions this many frames at a time (0: all at once).

    Returns
    -------
    list of ModuleOutput
        One per module ``0..upto``, batch dimension 1: ``z``/``c``/``mu``/``logvar`` are
        ``[1, T_m, C]`` tensors on the model's device (``mu``/``logvar`` None for deterministic modules).

    Raises
    ------
    ValueError
        If ``wave`` is not 1-D, ``upto`` is out of range, or the wave is shorter than the receptive field.
    """
    return model.encode_wave(wave, sample_rate, upto=upto, chunk_frames=chunk_frames)


def _check_module(model: Stack, module: int) -> None:
    if not 0 <= module < model.n_modules:
        raise ValueError(f"module {module} out of range: the model has modules 0..{model.n_modules - 1}")


# ---------------------------------------------------------------------------------------------------------
# activations over time


def top_std_channels(features: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` channels with the largest standard deviation over time.

    Parameters
    ----------
    features : np.ndarray
        ``[T, C]`` frame-level features.
    n : int
        Number of channels to pick (clipped to ``C``), ``n >= 1``.

    Returns
    -------
    np.ndarray
        ``[min(n, C)]`` int64 channel indices, largest standard deviation first (ties: lower index first).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"features must be a non-empty [time, channels] array, got shape {x.shape}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    std = x.std(axis=0)
    order = np.argsort(-std, kind="stable")
    return order[: min(n, x.shape[1])].astype(np.int64)


def plot_activations(
    model: Stack,
    wave: np.ndarray | torch.Tensor,
    module: int,
    path: str | Path,
    n_channels: int = 8,
    sample_rate: int = SAMPLE_RATE,
    *,
    kind: Literal["representation", "latent"] = "representation",
    segments: Sequence[tuple[int, int]] | None = None,
    segment_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Plot one module's activations over time under the waveform.

    Three panels on a shared time axis in seconds: the waveform (with optional syllable spans), the
    ``n_channels`` channels with the largest standard deviation over time as stacked traces (one shared
    amplitude scale, so their relative sizes are kept), and a heatmap of all channels sorted by standard
    deviation. Frame ``t`` is drawn at ``(offset + t * hop) / SAMPLE_RATE`` s, from the module's
    :class:`~vgim.frames.FrameInfo`.

    Parameters
    ----------
    model : Stack
        The encoder.
    wave : np.ndarray or torch.Tensor
        ``[samples]`` mono waveform at ``sample_rate``.
    module : int
        0-based module index.
    path : str or Path
        Output PNG.
    n_channels : int
        Number of traces (the top channels by standard deviation).
    sample_rate : int
        Sample rate of ``wave`` (and of ``segments``) in Hz.
    kind : {"representation", "latent"}
        ``"representation"``: the module's output ``c`` (what the next module and the probes see);
        ``"latent"``: its latent ``z`` (``mu`` for a variational module).
    segments : sequence of (int, int), optional
        ``[S]`` ``(start, end)`` sample indices at ``sample_rate`` to shade on the waveform.
    segment_labels : sequence of str, optional
        ``[S]`` labels written on the segments (e.g. syllables).
    title : str, optional
        Figure title (default: module and feature kind).

    Returns
    -------
    Path
        ``path``.
    """
    _check_module(model, module)
    if kind not in ("representation", "latent"):
        raise ValueError(f"kind must be 'representation' or 'latent', got {kind!r}")
    if segments is not None and segment_labels is not None and len(segments) != len(segment_labels):
        raise ValueError(f"{len(segments)} segments but {len(segment_labels)} segment labels")
    raw = np.asarray(wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else wave, dtype=np.float32)
    out = module_outputs(model, wave, sample_rate, upto=module)[module]
    feats = (out.c if kind == "representation" else out.z)[0].float().cpu().numpy()  # [T, C]
    n_t, n_c = feats.shape
    frames = model.frames[module]
    times = frames.centres(n_t) / SAMPLE_RATE  # [T] seconds
    chosen = top_std_channels(feats, n_channels)
    order = top_std_channels(feats, n_c)

    fig = new_figure(11, 2.0 + 0.35 * len(chosen) + 2.6)
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.2, max(1.5, 0.35 * len(chosen)), 1.8]})
    ax_w, ax_t, ax_h = axes
    t_wave = np.arange(raw.shape[0]) / sample_rate
    ax_w.plot(t_wave, raw, color="0.25", linewidth=0.5)
    ax_w.set_ylabel("amplitude")
    if segments is not None:
        top = float(np.max(np.abs(raw))) if raw.size else 1.0
        for i, (s, e) in enumerate(segments):
            ax_w.axvspan(s / sample_rate, e / sample_rate, color=f"C{i % 10}", alpha=0.15, linewidth=0)
            if segment_labels is not None:
                ax_w.text((s + e) / 2 / sample_rate, 0.9 * top, segment_labels[i], ha="center", va="top", fontsize=10)
    ax_w.set_title("waveform", fontsize=10, loc="left")

    sel = feats[:, chosen]  # [T, n]
    spread = float(np.ptp(sel, axis=0).max()) if n_t > 1 else 1.0
    step = 1.15 * spread if spread > 0 else 1.0
    for i in range(len(chosen)):
        ax_t.plot(times, sel[:, i] - sel[:, i].mean() - i * step, linewidth=1.0, color=f"C{i % 10}")
    ax_t.set_yticks([-i * step for i in range(len(chosen))], [f"ch {int(c)}" for c in chosen])
    ax_t.set_ylabel("channel (top std)")
    ax_t.set_title(
        f"top {len(chosen)} of {n_c} channels by std over time (mean removed, shared scale: {step:.3g} per row)",
        fontsize=10,
        loc="left",
    )

    half = frames.hop / 2 / SAMPLE_RATE
    extent = (float(times[0] - half), float(times[-1] + half), n_c - 0.5, -0.5)
    im = ax_h.imshow(feats[:, order].T, aspect="auto", interpolation="nearest", extent=extent, cmap="magma")
    ax_h.set_ylabel("channel rank (by std)")
    ax_h.set_xlabel("time (s)")
    ax_h.set_title(f"all {n_c} channels, sorted by std", fontsize=10, loc="left")
    fig.colorbar(im, ax=ax_h, label="activation", pad=0.01)
    ax_h.set_xlim(0.0, raw.shape[0] / sample_rate)
    what = "representation c" if kind == "representation" else "latent z" + (" (mu)" if out.mu is not None else "")
    fig.suptitle(
        title or f"module m{module + 1}: {what}; hop {frames.hop} samples ({1000 * frames.hop / SAMPLE_RATE:g} ms)"
    )
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------------------
# first-layer filters


def _first_conv(model: Stack) -> nn.Conv1d | Gabor:
    """The layer on the waveform: a ``Conv1d`` or a Gabor filter bank (whose ``weight`` is its real part)."""
    encoder = model.block(0).encoder
    if len(encoder) and isinstance(encoder[0], Gabor):
        return encoder[0]
    for layer in model.modules():
        if isinstance(layer, nn.Conv1d) and layer.in_channels == model.cfg.in_channels:
            return layer
    raise ValueError("the model has no convolution on its input (a GRU-only first module)")


def _kernel_stride(layer: nn.Conv1d | Gabor) -> tuple[int, int]:
    if isinstance(layer, nn.Conv1d):
        return int(layer.kernel_size[0]), int(layer.stride[0])
    assert isinstance(layer, Gabor)
    return layer.kernel, layer.stride


def kernel_frequencies(n_fft: int = 1024, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Frequencies (Hz) of the columns of :func:`kernel_responses`.

    Returns
    -------
    np.ndarray
        ``[n_fft // 2 + 1]`` float64, ``0 .. sample_rate / 2``.
    """
    return np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)


def kernel_responses(model: Stack, n_fft: int = 1024) -> np.ndarray:
    """Magnitude frequency response (dB) of every kernel of the first convolution.

    Each kernel (the weights from one input channel to one output channel; audio has one input channel)
    is zero-padded to ``n_fft`` samples before the real FFT, which interpolates its response smoothly.

    Parameters
    ----------
    model : Stack
        The encoder; its first layer must be a convolution.
    n_fft : int
        FFT length, at least the kernel length.

    Returns
    -------
    np.ndarray
        ``[n_kernels, n_fft // 2 + 1]`` float64, ``20 * log10(|rfft(kernel, n_fft)|)`` with
        ``n_kernels = out_channels * in_channels`` (output-major); frequencies from
        :func:`kernel_frequencies`.
    """
    conv = _first_conv(model)
    w = conv.weight.detach().cpu().double().numpy()  # [out, in, k]
    kernels = w.reshape(-1, w.shape[-1])
    if n_fft < kernels.shape[1]:
        raise ValueError(f"n_fft ({n_fft}) must be at least the kernel length ({kernels.shape[1]})")
    mag = np.abs(np.fft.rfft(kernels, n=n_fft, axis=1))
    return 20.0 * np.log10(np.maximum(mag, 1e-12))


def plot_kernel_responses(
    model: Stack,
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    *,
    n_fft: int = 1024,
    floor_db: float = -40.0,
    title: str | None = None,
) -> Path:
    """Image of the first-layer kernels' frequency responses, kernels sorted by peak frequency.

    Each row is one kernel, normalised to 0 dB at its own peak and clipped at ``floor_db``; the peak
    frequency of each row is marked. The model's first layer reads 16 kHz audio, so ``sample_rate``
    should stay 16 kHz (:data:`~vgim.frames.SAMPLE_RATE`) unless the model was trained at another rate.

    Parameters
    ----------
    model : Stack
        The encoder.
    path : str or Path
        Output PNG.
    sample_rate : int
        Sample rate of the model's input in Hz (sets the frequency axis).
    n_fft : int
        FFT length (zero padding).
    floor_db : float
        Lowest level shown, relative to each kernel's peak (negative).
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    resp = kernel_responses(model, n_fft)  # [K, F]
    freqs = kernel_frequencies(n_fft, sample_rate)
    peak = resp.argmax(axis=1)
    order = np.argsort(peak, kind="stable")
    rel = np.maximum(resp[order] - resp[order].max(axis=1, keepdims=True), floor_db)
    n_k = rel.shape[0]
    conv = _first_conv(model)
    fig = new_figure(8, 2.5 + min(6.0, 0.06 * n_k))
    ax = fig.subplots()
    im = ax.imshow(
        rel,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        extent=(float(freqs[0]), float(freqs[-1]), -0.5, n_k - 0.5),
        cmap="viridis",
        vmin=floor_db,
        vmax=0.0,
    )
    ax.plot(freqs[peak[order]], np.arange(n_k), ".", color="white", markersize=3, label="peak")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("kernel (sorted by peak frequency)")
    ax.legend(loc="lower right", fontsize=8)
    fig.colorbar(im, ax=ax, label="dB re kernel peak")
    ax.set_title(
        title or "first-layer kernels: {} filters of {} samples, stride {}".format(n_k, *_kernel_stride(conv)),
        fontsize=11,
    )
    return save_figure(fig, path)
