"""Walk a module's latent space and listen to it (V-GIM thesis, sections 4.6-4.8).

:func:`traverse` encodes a real utterance, takes module ``m``'s latent (the posterior mean ``mu`` of a
variational module, the latent ``z`` of a deterministic one), shifts one latent dimension at a time by a
sweep of offsets at every frame while the other dimensions keep the utterance's values, runs the rest of
the module on the modified latent (the GRU, when the module has one) and decodes the result with the
module's :class:`~vgim.objective.reconstruction.AudioDecoder`. Dimensions are ranked by how much they change the
output (log-spectral distance between the two ends of the sweep) and reported with their KL divergence
from the prior on that utterance.

:func:`interpolate` decodes the straight line between two utterances' latents.

Module indices are 0-based (as in ``Stack.block(m)``); labels and file names say ``m1, m2, ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from vgim.frames import SAMPLE_RATE
from vgim.interpret.spectra import LSD_HOP, LSD_N_FFT, log_spectrogram, spectral_distance, time_axis_extent
from vgim.model.stack import GIMModule, Stack
from vgim.objective.reconstruction import AudioDecoder

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

__all__ = [
    "SPAN_99",
    "Latent",
    "Traversal",
    "encode_latent",
    "interpolate",
    "plot_interpolation",
    "plot_traversal",
    "traverse",
    "write_traversal_audio",
]

#: Half-width of the central 99 % of N(0, 1): the default sweep is ``mu_d +- 2.68``.
SPAN_99 = 2.68


@dataclass
class Latent:
    """Module ``m``'s latent for one utterance (``[frames, channels]``, numpy) and what is needed to finish it.

    ``base`` is ``mu`` (variational) or ``z`` (deterministic); ``logvar`` is None for a deterministic module.
    """

    base: np.ndarray
    logvar: np.ndarray | None
    n_samples: int


@dataclass
class Traversal:
    """The result of :func:`traverse`; every per-dimension array is in ranked order (largest effect first).

    Attributes
    ----------
    module
        The module (0-based).
    variational
        Whether the module is variational (offsets in prior standard deviations) or deterministic (offsets
        in each dimension's standard deviation over time on the utterance).
    dims
        The latent dimensions, ranked by ``effect_db``, descending; shape ``[n_dims]``.
    offsets
        The sweep ``linspace(-span, span, n_steps)``; shape ``[n_steps]``.
    scale
        Per dimension, the unit of the offsets (1 for a variational module); shape ``[n_dims]``.
    swept
        The swept dimension's values at every frame: ``base[:, d] + offsets[j] * scale``; shape
        ``[n_dims, n_steps, frames]``.
    audio
        The decoded waveforms of the first ``n_audio`` ranked dimensions (all, unless :func:`traverse` was
        given ``audio_dims``); shape ``[n_audio, n_steps, samples]``.
    effect_db
        Log-spectral distance (dB) between the decodings at the two ends of the sweep (their power
        spectrograms, :meth:`~vgim.objective.reconstruction.AudioDecoder.power_db`); ``[n_dims]``.
    kl
        ``0.5 * mean_t(mu^2 + sigma^2 - log sigma^2 - 1)`` per dimension on this utterance (nats per
        frame; NaN for a deterministic module); ``[n_dims]``.
    base
        The unmodified latent (``mu`` or ``z``); shape ``[frames, channels]``.
    original
        The utterance; shape ``[samples]``.
    reconstruction
        The decoding of the unmodified latent; shape ``[samples]``.
    sample_rate
        Hz.
    origin
        ``"latent"`` (swept around ``base``) or ``"zero"`` (from the zero vector); see :func:`traverse`.
    """

    module: int
    variational: bool
    dims: np.ndarray
    offsets: np.ndarray
    scale: np.ndarray
    swept: np.ndarray
    audio: np.ndarray
    effect_db: np.ndarray
    kl: np.ndarray
    base: np.ndarray
    original: np.ndarray
    reconstruction: np.ndarray
    sample_rate: int = SAMPLE_RATE
    origin: str = "latent"


def _device(model: Stack) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_latent(model: Stack, wave: np.ndarray | Tensor, module: int) -> Latent:
    """Module ``module``'s deterministic latent for ``wave`` (``[samples]`` at 16 kHz).

    Variational module: ``mu`` and ``logvar``; deterministic module: ``z`` (for a module made of a GRU
    alone, its input).
    """
    if not 0 <= module < model.n_modules:
        raise ValueError(f"module must be in [0, {model.n_modules}), got {module}")
    out = model.encode_wave(wave, upto=module)[module]
    length = int(np.shape(wave)[-1])
    if out.mu is not None and out.logvar is not None:
        return Latent(out.mu[0].cpu().numpy(), out.logvar[0].cpu().numpy(), length)
    return Latent(out.z[0].cpu().numpy(), None, length)


def _finish(block: GIMModule, z: Tensor) -> Tensor:
    """The module's representation ``c`` from a (modified) latent ``z`` (``[batch, frames, channels]``)."""
    return block.ar(z)[0] if block.ar is not None else z


@torch.no_grad()
def _context(model: Stack, decoder: AudioDecoder, module: int, z: np.ndarray) -> Tensor:
    """Module ``module``'s ``c`` from latents ``z`` (``[batch, frames, channels]``), on the decoder's device."""
    zt = torch.as_tensor(z, dtype=torch.float32, device=_device(model))
    return _finish(model.block(module), zt).to(next(decoder.parameters()).device)


@torch.no_grad()
def _decode(model: Stack, decoder: AudioDecoder, module: int, z: np.ndarray, n_samples: int) -> np.ndarray:
    """Decode latents ``z`` (``[batch, frames, channels]``) of module ``module``; ``[batch, samples]``."""
    y = decoder.synthesize(_context(model, decoder, module, z), n_samples)
    return np.asarray(y[:, 0].float().cpu().numpy())


def _check_decoder(decoder: AudioDecoder, module: int) -> None:
    if decoder.module_index != module:
        raise ValueError(f"the decoder decodes module {decoder.module_index} (0-based), not module {module}")


def traverse(
    model: Stack,
    decoder: AudioDecoder,
    wave: np.ndarray | Tensor,
    module: int,
    dims: list[int] | None = None,
    n_steps: int = 7,
    span: float = SPAN_99,
    origin: str = "latent",
    audio_dims: int | None = None,
) -> Traversal:
    """Sweep each chosen latent dimension of module ``module`` on one utterance and decode the result.

    Parameters
    ----------
    model
        The trained encoder.
    decoder
        The decoder (:class:`~vgim.objective.reconstruction.AudioDecoder`) of module ``module``.
    wave
        The utterance, ``[samples]`` at 16 kHz.
    module
        0-based module index.
    dims
        Latent dimensions to sweep; ``None`` = all.
    n_steps
        Points of the sweep (>= 2).
    span
        The sweep is ``latent_d + linspace(-span, span, n_steps) * unit_d`` at every frame, the unit being
        1 (prior standard deviations) for a variational module and the dimension's standard deviation
        over time on this utterance for a deterministic one. 2.68 covers the central 99 % of N(0, 1).
    origin
        ``"latent"``: sweep around the utterance's own latent (``mu`` or ``z``), every other dimension kept.
        ``"zero"`` (the V-GIM thesis's traversal): every frame is the zero vector (the prior's mean) except
        the swept dimension, which takes the values ``linspace(-span, span, n_steps) * unit``; the
        utterance only sets the number of frames.
    audio_dims
        Decode the whole sweep to audio only for this many top-ranked dimensions (``None``: all). Ranking
        needs only the two ends of each sweep, as spectrograms, which a spectrogram decoder predicts without
        synthesis, so a wide latent is ranked quickly and only what is shown or played is synthesized.

    Returns
    -------
    Traversal
        Audio ``[n_dims, n_steps, samples]`` and per-dimension effect and KL, ranked by effect.
    """
    _check_decoder(decoder, module)
    if origin not in ("latent", "zero"):
        raise ValueError(f"origin must be 'latent' or 'zero', got {origin!r}")
    if n_steps < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    original = np.asarray(wave.detach().cpu().numpy() if isinstance(wave, Tensor) else wave, dtype=np.float32)
    lat = encode_latent(model, original, module)
    base = lat.base.astype(np.float32)
    n_channels = base.shape[1]
    chosen = list(range(n_channels)) if dims is None else list(dims)
    if not chosen or any(not 0 <= d < n_channels for d in chosen):
        raise ValueError(f"dims must be a non-empty list of latent dimensions in [0, {n_channels}), got {dims}")
    offsets = np.linspace(-span, span, n_steps).astype(np.float32)
    variational = lat.logvar is not None
    if variational:
        scale = np.ones(len(chosen), dtype=np.float32)
        assert lat.logvar is not None
        mu, logvar = base.astype(np.float64), lat.logvar.astype(np.float64)
        kl_all = 0.5 * np.mean(mu**2 + np.exp(logvar) - logvar - 1.0, axis=0)
        kl = kl_all[chosen]
    else:
        scale = np.maximum(base[:, chosen].std(axis=0), 1e-8).astype(np.float32)
        kl = np.full(len(chosen), np.nan)

    if audio_dims is not None and audio_dims < 1:
        raise ValueError(f"audio_dims must be >= 1 or None, got {audio_dims}")
    n = lat.n_samples
    reconstruction = _decode(model, decoder, module, base[None], n)[0]
    swept = np.zeros((len(chosen), n_steps, base.shape[0]), dtype=np.float32)
    effect = np.zeros(len(chosen))
    centre = base if origin == "latent" else np.zeros_like(base)
    sweeps: list[np.ndarray] = []
    for k, d in enumerate(chosen):
        z = np.repeat(centre[None], n_steps, axis=0)
        z[:, :, d] = centre[None, :, d] + offsets[:, None] * scale[k]
        swept[k] = z[:, :, d]
        sweeps.append(z)
        ends = decoder.power_db(_context(model, decoder, module, z[[0, -1]]), n)
        effect[k] = spectral_distance(ends[0], ends[1])
    order = np.argsort(-effect, kind="stable")
    n_audio = len(chosen) if audio_dims is None else min(audio_dims, len(chosen))
    audio = np.stack([_decode(model, decoder, module, sweeps[k], n) for k in order[:n_audio]])
    return Traversal(
        module=module,
        variational=variational,
        dims=np.asarray(chosen)[order],
        offsets=offsets,
        scale=scale[order],
        swept=swept[order],
        audio=audio,
        effect_db=effect[order],
        kl=np.asarray(kl, dtype=np.float64)[order],
        base=base,
        original=original,
        reconstruction=reconstruction,
        origin=origin,
    )


def _spectrogram_panel(ax: Axes, wave: np.ndarray, sample_rate: int, vmin: float, vmax: float) -> AxesImage:
    x0, x1, y0, y1 = time_axis_extent(wave.shape[0], sample_rate, LSD_N_FFT, LSD_HOP)
    return ax.imshow(
        log_spectrogram(wave),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=vmin,
        vmax=vmax,
        extent=(x0, x1, y0, y1),
    )


def _offset_label(variational: bool, value: float, origin: str = "latent") -> str:
    unit = "" if variational else "σ"
    if origin == "zero":
        return f"z_d = {value:+.2f}{unit}"
    base = "μ" if variational else "z"
    return f"{base} {value:+.2f}{unit}" if value else base


def plot_traversal(traversal: Traversal, path: str | Path, n_dims: int = 6) -> Path:
    """Grid of log spectrograms: rows = the ``n_dims`` highest-ranked dimensions (at most those with audio),
    columns = sweep values.

    Each row is labelled with the dimension, its effect (dB) and its KL; columns with the offset; axes in
    seconds and Hz, one colour bar in dB. Returns ``path`` (a PNG).
    """
    from matplotlib.figure import Figure

    tr = traversal
    rows = min(n_dims, len(tr.audio))
    cols = len(tr.offsets)
    ref = log_spectrogram(tr.original)
    vmax = float(ref.max())
    vmin = vmax - 80.0
    fig = Figure(figsize=(1.9 * cols + 1.5, 1.6 * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    im = None
    for r in range(rows):
        kl = "" if np.isnan(tr.kl[r]) else f", KL {tr.kl[r]:.2f}"
        for j in range(cols):
            ax = axes[r, j]
            im = _spectrogram_panel(ax, tr.audio[r, j], tr.sample_rate, vmin, vmax)
            if r == 0:
                ax.set_title(_offset_label(tr.variational, float(tr.offsets[j]), tr.origin), fontsize=9)
            if j == 0:
                ax.set_ylabel(f"dim {int(tr.dims[r])}\n({tr.effect_db[r]:.1f} dB{kl})\nfrequency (Hz)", fontsize=8)
            if r == rows - 1:
                ax.set_xlabel("time (s)", fontsize=8)
            ax.tick_params(labelsize=7)
    if im is not None:
        fig.colorbar(im, ax=axes, label="dB", shrink=0.8)  # type: ignore[arg-type]
    unit = "prior std" if tr.variational else "std over time"
    fig.suptitle(
        f"m{tr.module + 1} latent traversal: one dimension shifted at every frame (offsets in {unit}); "
        "rows ranked by effect (LSD between sweep ends)",
        fontsize=10,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def write_traversal_audio(traversal: Traversal, out_dir: str | Path) -> list[Path]:
    """Write ``original.wav``, ``reconstruction.wav`` and one WAV per dimension and step into ``out_dir``.

    Files are ``m<module>_dim<d>_step<j>_<offset>.wav`` (e.g. ``m2_dim017_step0_-2.68.wav``). Returns the
    paths written.
    """
    from vgim.audio import write_audio

    tr = traversal
    out = Path(out_dir)
    paths = [out / "original.wav", out / "reconstruction.wav"]
    write_audio(paths[0], tr.original, tr.sample_rate)
    write_audio(paths[1], tr.reconstruction, tr.sample_rate)
    for k, d in enumerate(tr.dims[: len(tr.audio)]):
        for j, value in enumerate(tr.offsets):
            path = out / f"m{tr.module + 1}_dim{int(d):03d}_step{j}_{float(value):+.2f}.wav"
            write_audio(path, tr.audio[k, j], tr.sample_rate)
            paths.append(path)
    return paths


def interpolate(
    model: Stack,
    decoder: AudioDecoder,
    wave_a: np.ndarray | Tensor,
    wave_b: np.ndarray | Tensor,
    module: int,
    n_steps: int = 7,
) -> list[np.ndarray]:
    """Decode the straight line between two utterances' latents of module ``module``.

    Both latents (``mu`` or ``z``, ``[frames, channels]``) are cropped to the shorter one's frames; step
    ``j`` decodes ``(1 - a) * latent_a + a * latent_b`` with ``a = j / (n_steps - 1)`` (after the rest of the
    module, e.g. its GRU). Returns ``n_steps`` waveforms of ``min(len(wave_a), len(wave_b))`` samples; the
    first and last decode the two utterances' own (cropped) latents.
    """
    _check_decoder(decoder, module)
    if n_steps < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    la, lb = encode_latent(model, wave_a, module), encode_latent(model, wave_b, module)
    frames = min(la.base.shape[0], lb.base.shape[0])
    n = min(la.n_samples, lb.n_samples)
    a, b = la.base[:frames].astype(np.float32), lb.base[:frames].astype(np.float32)
    alphas = np.linspace(0.0, 1.0, n_steps, dtype=np.float32)
    z = (1.0 - alphas)[:, None, None] * a[None] + alphas[:, None, None] * b[None]
    decoded = _decode(model, decoder, module, z, n)
    return [decoded[j] for j in range(n_steps)]


def plot_interpolation(
    frames: list[np.ndarray],
    path: str | Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    module: int | None = None,
    labels: tuple[str, str] = ("A", "B"),
) -> Path:
    """Row of log spectrograms of :func:`interpolate`'s output, labelled with the mixing weight.

    ``frames``: the decoded waveforms (``[samples]`` each), from A to B. Returns ``path`` (a PNG).
    """
    from matplotlib.figure import Figure

    if not frames:
        raise ValueError("nothing to plot")
    vmax = max(float(log_spectrogram(f).max()) for f in frames)
    vmin = vmax - 80.0
    cols = len(frames)
    fig = Figure(figsize=(2.0 * cols + 1.5, 3.0), layout="constrained")
    axes = fig.subplots(1, cols, squeeze=False, sharey=True)
    im = None
    for j, wave in enumerate(frames):
        ax = axes[0, j]
        im = _spectrogram_panel(ax, wave, sample_rate, vmin, vmax)
        a = j / (cols - 1) if cols > 1 else 0.0
        name = labels[0] if j == 0 else labels[1] if j == cols - 1 else f"{1 - a:.2f}·{labels[0]} + {a:.2f}·{labels[1]}"
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("frequency (Hz)")
    if im is not None:
        fig.colorbar(im, ax=axes, label="dB", shrink=0.9)  # type: ignore[arg-type]
    where = f"m{module + 1} " if module is not None else ""
    fig.suptitle(f"{where}latent interpolation {labels[0]} → {labels[1]}", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
