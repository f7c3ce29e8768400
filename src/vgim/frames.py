"""Where frame-level features sit in the waveform (shared by the model, pooling and plots)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SAMPLE_RATE", "FrameInfo"]

#: The sample rate (Hz) every vgim model runs at; audio is resampled to it on loading.
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class FrameInfo:
    """Time geometry of a frame-level feature sequence.

    Parameters
    ----------
    hop : int
        Distance between consecutive frame centres, in samples (>= 1).
    offset : float
        Centre of frame 0, in samples; frame ``t`` is centred on ``offset + t * hop``.
    receptive_field : int
        Number of input samples that can influence one frame (>= 1).
    """

    hop: int
    offset: float
    receptive_field: int

    def __post_init__(self) -> None:
        if int(self.hop) != self.hop or self.hop < 1:
            raise ValueError(f"FrameInfo.hop must be a positive integer, got {self.hop!r}")
        if not math.isfinite(self.offset):
            raise ValueError(f"FrameInfo.offset must be finite, got {self.offset!r}")
        if int(self.receptive_field) != self.receptive_field or self.receptive_field < 1:
            raise ValueError(f"FrameInfo.receptive_field must be a positive integer, got {self.receptive_field!r}")

    def centres(self, n_frames: int) -> np.ndarray:
        """Sample positions of the frame centres.

        Parameters
        ----------
        n_frames : int
            Number of frames ``T``.

        Returns
        -------
        np.ndarray
            ``[T]`` float64, ``offset + arange(T) * hop``.
        """
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        return self.offset + np.arange(n_frames, dtype=np.float64) * self.hop

    def nearest_frame(self, sample: float, n_frames: int) -> int:
        """Index of the frame whose centre is nearest ``sample``, clipped to ``[0, n_frames)``."""
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        t = math.floor((sample - self.offset) / self.hop + 0.5)
        return min(max(t, 0), n_frames - 1)
