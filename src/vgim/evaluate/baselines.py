"""Hand-crafted baseline features (MFCC) for the linear probes.

Framing follows librosa with ``center=True``: the signal is padded by
``n_fft // 2`` zeros on both sides and frame ``t`` covers the padded samples
``[t * hop, t * hop + n_fft)``. The analysis window (``win_length`` samples) is
centred inside the ``n_fft`` frame, so frame ``t`` is centred on original sample
``t * hop`` (offset 0) and its window is non-zero on ``(t * hop - win/2, t * hop + win/2)``.
A wave of ``n`` samples gives ``1 + n // hop`` frames.
"""

from __future__ import annotations

import warnings

import numpy as np

from vgim.evaluate.pooling import FrameInfo
from vgim.frames import SAMPLE_RATE

__all__ = ["MFCC_FRAMES", "mfcc_features", "mfcc_frames"]

WINDOW_SECONDS = 0.025
HOP_SECONDS = 0.010
N_MELS = 40


def _framing(sample_rate: int) -> tuple[int, int, int]:
    """``(win_length, hop_length, n_fft)`` for 25 ms / 10 ms frames at ``sample_rate``."""
    win = int(round(WINDOW_SECONDS * sample_rate))
    hop = int(round(HOP_SECONDS * sample_rate))
    n_fft = 1
    while n_fft < win:
        n_fft *= 2
    return win, hop, n_fft


def mfcc_frames(sample_rate: int = SAMPLE_RATE) -> FrameInfo:
    """Frame geometry of :func:`mfcc_features` at ``sample_rate`` (offset 0, centre=True)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    win, hop, _ = _framing(sample_rate)
    return FrameInfo(hop=hop, offset=0.0, receptive_field=win)


#: Frame geometry of :func:`mfcc_features` at 16 kHz: hop 160, offset 0, receptive field 400.
MFCC_FRAMES: FrameInfo = mfcc_frames(SAMPLE_RATE)


def mfcc_features(
    wave: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    n_mfcc: int = 13,
    deltas: bool = True,
) -> np.ndarray:
    """MFCCs (optionally with deltas and delta-deltas) of one utterance.

    25 ms Hann window (zero-padded to a power-of-two FFT), 10 ms hop,
    ``center=True`` (zero padding), 40 mel bands up to Nyquist, log power
    (librosa ``power_to_db``, 80 dB dynamic range), DCT-II. Deltas use a 9-frame
    Savitzky-Golay window (shrunk to fit shorter utterances).

    Parameters
    ----------
    wave : np.ndarray
        ``[samples]`` mono waveform (float), at least one sample.
    sample_rate : int
        Sampling rate in Hz; use :func:`mfcc_frames` for the geometry at rates other
        than 16 kHz (:data:`MFCC_FRAMES`).
    n_mfcc : int
        Number of cepstral coefficients (including c0).
    deltas : bool
        Append first- and second-order deltas.

    Returns
    -------
    np.ndarray
        ``[T, 3 * n_mfcc]`` float32 (``[T, n_mfcc]`` without deltas) with
        ``T = 1 + samples // hop``; frame ``t`` is centred on sample ``t * hop``.

    Raises
    ------
    ValueError
        If ``wave`` is not 1-D, empty or non-finite, or a parameter is out of range.
    """
    import librosa  # deferred: slow to import and only needed here

    y = np.asarray(wave)
    if y.ndim != 1:
        raise ValueError(f"wave must be 1-D [samples], got shape {y.shape}")
    if y.size == 0:
        raise ValueError("wave is empty")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"wave must be floating point, got dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise ValueError("wave contains NaN or inf")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not 1 <= n_mfcc <= N_MELS:
        raise ValueError(f"n_mfcc must be in [1, {N_MELS}], got {n_mfcc}")
    win, hop, n_fft = _framing(sample_rate)
    with warnings.catch_warnings():
        # utterances shorter than n_fft are fine with centre padding
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
        mfcc = librosa.feature.mfcc(
            y=y.astype(np.float32, copy=False),
            sr=sample_rate,
            n_mfcc=n_mfcc,
            n_fft=n_fft,
            hop_length=hop,
            win_length=win,
            window="hann",
            center=True,
            pad_mode="constant",
            n_mels=N_MELS,
        )  # [n_mfcc, T]
    parts = [mfcc]
    if deltas:
        n_frames = mfcc.shape[1]
        if n_frames >= 3:
            width = min(9, n_frames if n_frames % 2 else n_frames - 1)
            parts.append(librosa.feature.delta(mfcc, width=width, order=1, mode="interp"))
            parts.append(librosa.feature.delta(mfcc, width=width, order=2, mode="interp"))
        else:
            parts.extend([np.zeros_like(mfcc), np.zeros_like(mfcc)])
    return np.ascontiguousarray(np.concatenate(parts, axis=0).T, dtype=np.float32)
