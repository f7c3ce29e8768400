"""Audio input/output, validation, random crops and noise augmentation.

Every waveform inside vgim is a ``np.float32`` mono array of shape ``[samples]`` at 16 kHz (unless a caller
asks for another rate). Bad input raises :class:`AudioError` with the offending path and a short reason;
corpus loading catches it and skips the file.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from vgim.frames import SAMPLE_RATE

if TYPE_CHECKING:
    pass

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "check_audio",
    "check_path",
    "check_rate",
    "crop_offsets",
    "find_audio_files",
    "peak_gain",
    "random_crop",
    "read_audio",
    "write_audio",
]

log = logging.getLogger("vgim")

#: File name extensions (lower case) treated as audio when scanning a folder; all are read by libsndfile.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aiff",
        ".aif",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".sph",
        ".nist",
        ".voc",
    }
)


class AudioError(ValueError):
    """An audio file (or waveform) that vgim cannot use.

    Parameters
    ----------
    path
        The offending file (or a description of where the waveform came from).
    reason
        Short human-readable reason, e.g. ``"empty (0 samples)"``.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def find_audio_files(folder: str | Path, *, recursive: bool = True, broken: list[Path] | None = None) -> list[Path]:
    """List the audio files in ``folder`` (by extension, see :data:`AUDIO_EXTENSIONS`), sorted.

    Parameters
    ----------
    folder
        Folder to scan.
    recursive
        Also scan sub-folders.
    broken
        Collects the symbolic links with an audio extension whose target is missing (they are not returned;
        folders named like audio files are ignored).

    Returns
    -------
    list of Path
        Files sorted by their path relative to ``folder`` (deterministic across file systems).
    """
    root = Path(folder)
    pattern = "**/*" if recursive else "*"
    named = [p for p in root.glob(pattern) if p.suffix.lower() in AUDIO_EXTENSIONS]
    files = [p for p in named if p.is_file()]
    if broken is not None:
        broken.extend(sorted((p for p in named if p.is_symlink() and not p.exists()), key=lambda p: p.as_posix()))
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (with scipy's Kaiser-window anti-aliasing filter); ``[n] -> [ceil(n*t/o)]``."""
    if orig_rate == target_rate:
        return wave
    g = math.gcd(orig_rate, target_rate)
    return resample_poly(wave, target_rate // g, orig_rate // g)


def check_path(path: str | Path) -> None:
    """Raise :class:`AudioError` when ``path`` is not an existing file: ``"file not found"``, ``"broken
    symbolic link (...)"`` or ``"is a folder, not an audio file"`` (libsndfile would only say "System
    error")."""
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise AudioError(path, f"broken symbolic link (its target {os.readlink(p)} does not exist)")
    if p.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if not p.exists():
        raise AudioError(path, "file not found")


def check_rate(rate: int, path: str | Path) -> None:
    """Raise :class:`AudioError` for a header sample rate outside ``[MIN_SAMPLE_RATE, MAX_SAMPLE_RATE]``
    (a damaged or hand-made header; resampling 1 Hz "audio" to 16 kHz would make hours of samples)."""
    from vgim.config import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            path, f"implausible sample rate {rate} Hz in the header (accepted: {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz)"
        )


def peak_gain(peak: float) -> float:
    """The gain :func:`read_audio` applies to a file whose mono samples peak at ``peak``: ``1 / peak`` above
    1 (a float file far outside ``[-1, 1]``), else 1."""
    return 1.0 / peak if peak > 1.0 else 1.0


def read_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, *, rescaled: list[tuple[str, float]] | None = None
) -> np.ndarray:
    """Read an audio file as float32 mono at ``sample_rate``.

    Channels are averaged to mono, then the signal is resampled with :func:`scipy.signal.resample_poly`
    (up/down factors reduced by the gcd of the two rates; its FIR filter removes content above the new
    Nyquist frequency).

    A file whose mono samples go beyond ``[-1, 1]`` (only float WAV/AIFF/CAF can: integer formats are
    scaled into the range) is scaled down to peak 1 before resampling, with a warning; ``(path, peak)`` is
    appended to ``rescaled`` when given. Such a file is usually unnormalised output of some processing;
    clipping it would destroy it and training on it unscaled makes the InfoNCE loss collapse.

    Parameters
    ----------
    path
        Any format libsndfile reads (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...).
    sample_rate
        Target rate in Hz.
    rescaled
        Collects ``(path, peak)`` of every file scaled down.

    Returns
    -------
    np.ndarray
        ``float32`` array of shape ``[samples]``.

    Raises
    ------
    AudioError
        ``"file not found"``, ``"is a folder, not an audio file"``, ``"broken symbolic link"``,
        ``"unreadable: <message>"`` when soundfile cannot open or decode the file, ``"implausible sample
        rate"``, ``"empty (0 samples)"``, ``"contains NaN or Inf values"`` and ``"channels cancel when
        mixed to mono"`` (e.g. a stereo file whose channels are in antiphase).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    check_path(path)
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError, EOFError) as err:
        raise AudioError(path, f"unreadable: {err}") from err
    check_rate(int(info.samplerate), path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError, EOFError) as err:
        raise AudioError(path, f"unreadable: {err}") from err
    if data.shape[0] == 0:
        raise AudioError(path, "empty (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or Inf values")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if data.shape[1] > 1:
        _check_mix(data, mono, path)
    peak = float(np.max(np.abs(mono)))
    gain = peak_gain(peak)
    if gain != 1.0:
        log.warning("%s: samples peak at %.3g, outside [-1, 1]; scaled by 1/%.3g to peak 1", path, peak, peak)
        if rescaled is not None:
            rescaled.append((str(path), peak))
        mono = mono * np.float32(gain)
    wave = resample(mono, int(rate), sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def _check_mix(data: np.ndarray, mono: np.ndarray, path: str | Path) -> None:
    """Raise when the channels of ``data`` (``[samples, channels]``) are audible but cancel in ``mono``."""
    channel_rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))
    mono_rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    if channel_rms >= 1e-4 and mono_rms < 1e-2 * channel_rms:
        raise AudioError(
            path,
            f"channels cancel when mixed to mono (RMS {channel_rms:.2e} per channel, {mono_rms:.2e} mixed; "
            "channels in antiphase?). Keep one channel of the file",
        )


def check_audio(wave: np.ndarray, path: str | Path, *, min_samples: int = 0, min_rms: float = 0.0) -> None:
    """Raise :class:`AudioError` when ``wave`` (``[samples]``) is unusable.

    Checks, in order: empty, NaN/Inf values, fewer than ``min_samples`` samples, RMS below ``min_rms``
    (silent; only checked when ``min_rms > 0``).

    Parameters
    ----------
    wave
        Mono waveform, shape ``[samples]``.
    path
        Where the waveform came from (used in the error).
    min_samples
        Minimum length, typically one training crop.
    min_rms
        Minimum root-mean-square amplitude.
    """
    n = int(wave.shape[0]) if wave.ndim else 0
    if wave.size == 0 or n == 0:
        raise AudioError(path, "empty (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioError(path, "contains NaN or Inf values")
    if n < min_samples:
        raise AudioError(path, f"shorter than one crop ({n} < {min_samples} samples)")
    if min_rms > 0:
        rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
        if rms < min_rms:
            raise AudioError(path, f"silent (RMS {rms:.2e} < {min_rms:.0e})")


def crop_offsets(lengths: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one uniform crop start per sequence.

    Parameters
    ----------
    lengths
        Sequence lengths in samples, shape ``[n]``.
    length
        Crop length in samples (>= 1).
    rng
        Source of randomness.

    Returns
    -------
    np.ndarray
        ``int64`` offsets, shape ``[n]``, with ``0 <= offset <= max(lengths - length, 0)``; sequences shorter
        than the crop get offset 0.
    """
    if length < 1:
        raise ValueError(f"crop length must be >= 1, got {length}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must have shape [n], got {lengths.shape}")
    if lengths.size == 0:
        return np.zeros(0, dtype=np.int64)
    high = np.maximum(lengths - length, 0) + 1
    return rng.integers(0, high, dtype=np.int64)


def random_crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly placed crop of ``length`` samples.

    A wave shorter than ``length`` is returned whole, padded with zeros at the end up to ``length``
    (corpus loading normally drops such files via ``min_samples``). Uses :func:`crop_offsets`, so the
    random stream is consumed identically.

    Parameters
    ----------
    wave
        Mono waveform, shape ``[samples]``.
    length
        Crop length in samples (>= 1).
    rng
        Source of randomness.

    Returns
    -------
    np.ndarray
        New array of shape ``[length]``, same dtype as ``wave``.
    """
    if wave.ndim != 1:
        raise ValueError(f"wave must have shape [samples], got {wave.shape}")
    n = wave.shape[0]
    start = int(crop_offsets(np.array([n]), length, rng)[0])
    if n >= length:
        return wave[start : start + length].copy()
    out = np.zeros(length, dtype=wave.dtype)
    out[:n] = wave
    return out


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono waveform as 16-bit PCM, creating parent folders.

    Parameters
    ----------
    path
        Output file; the container follows the extension (``.wav``, ``.flac``, ...).
    wave
        Waveform, shape ``[samples]``; values are clipped to ``[-1, 1]`` before quantisation.
    sample_rate
        Sample rate in Hz.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0)
    sf.write(str(path), data, sample_rate, subtype="PCM_16")
