"""Additive-noise augmentation of training crops: white noise at a drawn SNR, and background recordings mixed
in at a drawn SNR (``data.noise_snr_db``, ``data.background_dir``, ``data.background_snr_db``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vgim.audio import AudioError, check_audio, find_audio_files, random_crop, read_audio

if TYPE_CHECKING:
    from vgim.config import DataConfig

__all__ = ["Augmenter", "add_white_noise", "mix_background"]

log = logging.getLogger("vgim")


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def _add_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave + g * noise`` with ``g`` chosen so that ``power(wave) / power(g * noise) = 10^(snr/10)``."""
    p_sig, p_noise = _power(wave), _power(noise)
    if p_sig == 0.0 or p_noise == 0.0:
        return wave.astype(np.float32, copy=True)
    gain = math.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (wave.astype(np.float64) + gain * noise.astype(np.float64)).astype(np.float32)


def add_white_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian white noise at a given signal-to-noise ratio.

    The drawn noise is rescaled so that its power over this wave is exactly
    ``power(wave) / 10^(snr_db / 10)``. A silent wave (power 0) is returned unchanged. ``wave`` is mono,
    ``[samples]``; returns a new ``float32`` array of the same shape.
    """
    noise: np.ndarray = rng.standard_normal(size=(int(wave.shape[0]),))
    return _add_at_snr(wave, noise, snr_db)


def mix_background(wave: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix a background recording into ``wave`` at a given SNR.

    A segment of ``len(wave)`` samples is cut from ``noise`` at a random offset; a background shorter than
    the wave is tiled (repeated) first, starting at a random phase. The segment is scaled so that
    ``power(wave) / power(segment) = 10^(snr_db / 10)``. A silent wave or silent segment leaves the wave
    unchanged.

    Parameters
    ----------
    wave
        Mono waveform, shape ``[samples]``.
    noise
        Background waveform at the same sample rate, shape ``[noise_samples]`` (non-empty).
    snr_db
        Signal-to-noise ratio in dB.
    rng
        Source of randomness.

    Returns
    -------
    np.ndarray
        New ``float32`` array, shape ``[samples]``.
    """
    if noise.ndim != 1 or noise.shape[0] == 0:
        raise ValueError(f"background noise must be a non-empty [samples] array, got shape {noise.shape}")
    n, m = wave.shape[0], noise.shape[0]
    if m >= n:
        segment = random_crop(noise, n, rng) if n else noise[:0]
    else:
        start = int(rng.integers(0, m))
        reps = (start + n) // m + 1
        segment = np.tile(noise, reps)[start : start + n]
    return _add_at_snr(wave, segment, snr_db)


class Augmenter:
    """Random additive-noise augmentation for training crops.

    Parameters
    ----------
    noise_snr_db
        ``[low, high]`` dB: add white noise at an SNR drawn uniformly from the range; ``[]`` disables.
    background
        Background recordings (``[samples]`` each, at the corpus rate); ``[]`` disables mixing.
    background_snr_db
        ``[low, high]`` dB range for background mixing.

    Notes
    -----
    ``__call__`` first mixes a background (chosen uniformly) and then adds white noise; every random draw
    comes from the generator passed in, so the result is a deterministic function of the seed.
    """

    def __init__(
        self,
        noise_snr_db: Sequence[float],
        background: Sequence[np.ndarray],
        background_snr_db: Sequence[float],
    ) -> None:
        if len(noise_snr_db) not in (0, 2):
            raise ValueError(f"noise_snr_db must be [] or [low, high], got {list(noise_snr_db)}")
        if background and len(background_snr_db) != 2:
            raise ValueError(f"background_snr_db must be [low, high], got {list(background_snr_db)}")
        for i, b in enumerate(background):
            if b.ndim != 1 or b.shape[0] == 0:
                raise ValueError(f"background[{i}] must be a non-empty [samples] array, got shape {b.shape}")
        self.noise_snr_db = [float(x) for x in noise_snr_db]
        self.background = [np.asarray(b, dtype=np.float32) for b in background]
        self.background_snr_db = [float(x) for x in background_snr_db]

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is active."""
        return bool(self.noise_snr_db) or bool(self.background)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment one waveform.

        Parameters
        ----------
        wave
            Mono waveform, shape ``[samples]``.
        rng
            Source of randomness.

        Returns
        -------
        np.ndarray
            ``float32`` array, shape ``[samples]`` (a copy even when nothing is enabled).
        """
        out = wave.astype(np.float32, copy=True)
        if self.background:
            noise = self.background[int(rng.integers(0, len(self.background)))]
            low, high = self.background_snr_db
            out = mix_background(out, noise, float(rng.uniform(low, high)), rng)
        if self.noise_snr_db:
            low, high = self.noise_snr_db
            out = add_white_noise(out, float(rng.uniform(low, high)), rng)
        return out

    def __repr__(self) -> str:
        return (
            f"Augmenter(noise_snr_db={self.noise_snr_db}, background={len(self.background)} files, "
            f"background_snr_db={self.background_snr_db})"
        )

    @classmethod
    def from_config(cls, data_cfg: DataConfig) -> Augmenter:
        """Build from :class:`vgim.config.DataConfig`.

        ``background_dir`` (when set) is scanned recursively for audio files, each read with
        :func:`read_audio` at ``data_cfg.sample_rate``; unreadable or silent files are skipped with a
        warning.

        Raises
        ------
        FileNotFoundError
            ``background_dir`` does not exist or is not a folder.
        ValueError
            ``background_dir`` holds no readable, non-silent audio.
        """
        background: list[np.ndarray] = []
        if data_cfg.background_dir:
            folder = Path(data_cfg.background_dir)
            if not folder.is_dir():
                raise FileNotFoundError(f"data.background_dir {folder} does not exist or is not a folder")
            broken: list[Path] = []
            files = find_audio_files(folder, broken=broken)
            problems: list[str] = []
            for link in broken:
                log.warning("skipping background file %s: broken symbolic link", link)
                problems.append(f"{link}: broken symbolic link")
            for f in files:
                try:
                    wave = read_audio(f, data_cfg.sample_rate)
                    check_audio(wave, f, min_rms=data_cfg.min_rms)
                except AudioError as err:
                    log.warning("skipping background file %s", err)
                    problems.append(str(err))
                    continue
                background.append(wave)
            if not background:
                detail = f"; problems: {'; '.join(problems[:5])}" if problems else ""
                raise ValueError(
                    f"data.background_dir {folder} holds no readable audio ({len(files)} audio file(s) found{detail})"
                )
        return cls(data_cfg.noise_snr_db, background, data_cfg.background_snr_db)
