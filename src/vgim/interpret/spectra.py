"""Spectra of waveforms for judging reconstructions: the log-power spectrogram, the log-spectral distance, and
the original-versus-reconstructions figure (waveforms and spectrograms, one row per module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vgim.frames import SAMPLE_RATE

__all__ = [
    "LSD_EPS",
    "LSD_HOP",
    "LSD_N_FFT",
    "log_mel_distance",
    "log_mel_spectrogram",
    "log_spectral_distance",
    "log_spectrogram",
    "power_spectrogram",
    "spectral_distance",
    "plot_reconstruction",
    "time_axis_extent",
]

#: STFT used for the log-spectral distance and for plots: 32 ms Hann window, 8 ms hop at 16 kHz.
LSD_N_FFT = 512
LSD_HOP = 128
#: Power floor of the log-spectral distance (|X|^2 + eps): -100 dB.
LSD_EPS = 1e-10


def log_spectrogram(wave: np.ndarray, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP, eps: float = LSD_EPS) -> np.ndarray:
    """Power spectrogram in dB, ``10 log10(|X|^2 + eps)``, shape ``[n_fft // 2 + 1, frames]``.

    ``wave`` is ``[samples]``; Hann window of ``n_fft`` samples, hop ``hop``, centred frames (frame ``j`` is
    centred on sample ``j * hop``).
    """
    return np.asarray(10.0 * np.log10(power_spectrogram(wave, n_fft, hop) + eps), dtype=np.float64)


def power_spectrogram(wave: np.ndarray, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP) -> np.ndarray:
    """``|X|^2`` of :func:`log_spectrogram`'s STFT, ``[n_fft // 2 + 1, frames]`` (float64)."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    n = n_fft
    if x.shape[0] <= n // 2:  # reflect padding needs a longer signal
        x = nn.functional.pad(x, (0, n // 2 + 1 - x.shape[0]))
    spec = torch.stft(x, n, hop, window=torch.hann_window(n), return_complex=True).abs() ** 2
    return np.asarray(spec.numpy(), dtype=np.float64)


def spectral_distance(a: np.ndarray, b: np.ndarray, active_db: float | None = None) -> float:
    """The log-spectral distance of two dB spectrograms ``[bins, frames]``: ``sqrt(mean_f (a - b)^2)`` per
    frame, averaged over frames. With ``active_db``, only over the frames whose loudest bin in ``a`` is within
    ``active_db`` dB of its loudest bin overall (so digital silence, where any output is tens of dB "wrong",
    is left out)."""
    per_frame = np.sqrt(np.mean((a - b) ** 2, axis=0))
    if active_db is not None:
        peak = a.max(axis=0)
        per_frame = per_frame[peak >= peak.max() - active_db]
    return float(np.mean(per_frame))


def log_spectral_distance(
    reference: np.ndarray,
    estimate: np.ndarray,
    n_fft: int = LSD_N_FFT,
    hop: int = LSD_HOP,
    eps: float = LSD_EPS,
    active_db: float | None = None,
) -> float:
    """Log-spectral distance in dB between two waveforms of the same length (``[samples]``): the
    :func:`spectral_distance` of their :func:`log_spectrogram`s."""
    if reference.shape != estimate.shape:
        raise ValueError(f"waveforms differ in shape: {reference.shape} vs {estimate.shape}")
    a, b = log_spectrogram(reference, n_fft, hop, eps), log_spectrogram(estimate, n_fft, hop, eps)
    return spectral_distance(a, b, active_db)


#: Mel bands of the log-mel distance.
N_MELS = 80


def log_mel_spectrogram(
    wave: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP, n_mels: int = N_MELS
) -> np.ndarray:
    """Mel power spectrogram in dB, ``10 log10(mel @ |X|^2 + 1e-10)``, ``[n_mels, frames]`` (the STFT of
    :func:`log_spectrogram`; librosa's Slaney mel filters)."""
    return mel_db(power_spectrogram(wave, n_fft, hop), sample_rate, n_mels)


def mel_db(power: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS) -> np.ndarray:
    """``10 log10(mel @ power + 1e-10)`` of a :func:`power_spectrogram` ``[n_fft // 2 + 1, frames]``."""
    import librosa

    mel = librosa.filters.mel(sr=sample_rate, n_fft=2 * (power.shape[0] - 1), n_mels=n_mels)
    return np.asarray(10.0 * np.log10(mel @ power + LSD_EPS), dtype=np.float64)


def log_mel_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Log-mel distance in dB: :func:`log_spectral_distance`'s form on :func:`log_mel_spectrogram`s (what a
    listener hears more than the fine structure of the high bins)."""
    if reference.shape != estimate.shape:
        raise ValueError(f"waveforms differ in shape: {reference.shape} vs {estimate.shape}")
    return spectral_distance(log_mel_spectrogram(reference, sample_rate), log_mel_spectrogram(estimate, sample_rate))


# ---------------------------------------------------------------------------------------------------------
# Figures


def time_axis_extent(n_samples: int, sample_rate: int, n_fft: int, hop: int) -> list[float]:
    n_frames = 1 + max(n_samples, n_fft // 2 + 1) // hop
    return [-hop / 2 / sample_rate, (n_frames - 0.5) * hop / sample_rate, 0.0, sample_rate / 2]


def plot_reconstruction(
    original: np.ndarray,
    reconstructions: dict[int, np.ndarray],
    path: str | Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    title: str = "",
    scores: dict[int, dict[str, float]] | None = None,
) -> Path:
    """Figure with the waveform and log spectrogram of ``original`` and of every module's reconstruction.

    Parameters
    ----------
    original
        ``[samples]`` waveform.
    reconstructions
        Module (0-based) -> ``[samples]`` reconstruction.
    path
        Output PNG.
    sample_rate
        Sample rate in Hz (axes in seconds and Hz).
    title
        Figure title.
    scores
        Optional module -> ``{"mse", "lsd_db"}`` shown in the row titles.

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.figure import Figure

    rows = [("original", original)] + [(f"m{m + 1} reconstruction", w) for m, w in sorted(reconstructions.items())]
    keys = [None] + sorted(reconstructions)
    ref_db = log_spectrogram(original)
    vmax = float(ref_db.max())
    vmin = vmax - 80.0
    fig = Figure(figsize=(13, 2.3 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False, width_ratios=[1, 1.25])
    t = np.arange(original.shape[0]) / sample_rate
    peak = max(float(np.abs(w).max()) for _, w in rows) * 1.05 + 1e-6
    for r, ((name, wave), key) in enumerate(zip(rows, keys, strict=True)):
        label = name
        if scores is not None and key is not None and key in scores:
            s = scores[key]
            label += f"  (MSE {s['mse']:.2e}, LSD {s['lsd_db']:.1f} dB)"
        ax_w, ax_s = axes[r, 0], axes[r, 1]
        ax_w.plot(t, wave, lw=0.5, color="C0" if key is None else "C1")
        ax_w.set_xlim(0, t[-1] if t.size else 1)
        ax_w.set_ylim(-peak, peak)
        ax_w.set_ylabel("amplitude")
        ax_w.set_title(label, fontsize=10, loc="left")
        db = log_spectrogram(wave)
        im = ax_s.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            extent=tuple(time_axis_extent(wave.shape[0], sample_rate, LSD_N_FFT, LSD_HOP)),
        )
        ax_s.set_ylabel("frequency (Hz)")
        ax_s.set_title(label, fontsize=10, loc="left")
        fig.colorbar(im, ax=ax_s, label="dB")
        if r == len(rows) - 1:
            ax_w.set_xlabel("time (s)")
            ax_s.set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# ---------------------------------------------------------------------------------------------------------
# Training
