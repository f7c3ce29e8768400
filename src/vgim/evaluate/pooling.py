"""Frame geometry and pooling of frame-level features.

Every feature extractor (a model module or a baseline such as MFCC) produces a
``[time, channels]`` array per utterance whose frame ``t`` is centred on sample
``offset + t * hop`` (:class:`FrameInfo`). This module turns those frame-level
features into one vector per utterance (:func:`pool_utterance`) or one vector
per sample-index segment, e.g. per syllable (:func:`pool_segments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

from vgim.frames import FrameInfo

__all__ = [
    "pool_features",
    "POOL_MODES",
    "FrameInfo",
    "PoolMode",
    "pool_segments",
    "pool_utterance",
    "pooled_dim",
    "segment_frame_ranges",
]

PoolMode = Literal["mean", "max", "last", "meanstd", "thirds"]
POOL_MODES: tuple[str, ...] = get_args(PoolMode)


def _check_features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [time, channels], got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("features have no frames (shape [0, C]); cannot pool")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _check_mode(mode: str) -> None:
    if mode not in POOL_MODES:
        raise ValueError(f"unknown pooling mode {mode!r}; expected one of {POOL_MODES}")


def pooled_dim(channels: int, mode: str) -> int:
    """Output dimension ``C'`` of pooling ``channels`` channels with ``mode``."""
    _check_mode(mode)
    return {"meanstd": 2 * channels, "thirds": 3 * channels}.get(mode, channels)


def pool_utterance(features: np.ndarray, mode: str = "mean") -> np.ndarray:
    """Pool all frames of one utterance into a single vector.

    Parameters
    ----------
    features : np.ndarray
        ``[T, C]`` frame-level features, ``T >= 1``.
    mode : {"mean", "max", "last", "meanstd", "thirds"}
        ``"meanstd"`` concatenates the mean and the (population) standard deviation; ``"thirds"``
        concatenates the means of the first, middle and last third of the frames (so a linear probe
        sees the order of events, e.g. a consonant's onset before its vowel).

    Returns
    -------
    np.ndarray
        ``[C]`` (``[2C]`` for ``"meanstd"``, ``[3C]`` for ``"thirds"``), same floating dtype as ``features``.

    Raises
    ------
    ValueError
        If ``features`` is not 2-D, has no frames, or ``mode`` is unknown.
    """
    _check_mode(mode)
    x = _check_features(features)
    if mode == "mean":
        return x.mean(axis=0)
    if mode == "max":
        return x.max(axis=0)
    if mode == "last":
        return x[-1].copy()
    if mode == "thirds":
        return pool_segments(x, FrameInfo(hop=1, offset=0, receptive_field=1), [(0, x.shape[0])], "thirds")[0]
    return np.concatenate([x.mean(axis=0), x.std(axis=0)])


def segment_frame_ranges(
    n_frames: int, frames: FrameInfo, segments: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Frame index ranges ``[lo, hi)`` to pool for each segment.

    A frame belongs to segment ``(start, end)`` when its centre ``c`` satisfies
    ``start <= c < end``. If no valid frame (``0 <= t < n_frames``) does, the range
    is the single frame whose centre is nearest the segment middle ``(start + end) / 2``
    (clipped to the valid frames).

    Parameters
    ----------
    n_frames : int
        Number of frames ``T >= 1``.
    frames : FrameInfo
        Frame geometry.
    segments : sequence of (int, int)
        ``[S]`` ``(start, end)`` sample indices, end exclusive, ``end >= start``.

    Returns
    -------
    lo, hi : np.ndarray
        ``[S]`` int64 each, with ``0 <= lo < hi <= n_frames``.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2) if len(segments) else np.zeros((0, 2))
    if seg.shape[0] and not np.all(np.isfinite(seg)):
        raise ValueError("segments contain non-finite values")
    bad = np.nonzero(seg[:, 1] < seg[:, 0])[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"segment {i} has end < start: {tuple(segments[i])}")
    hop, offset = float(frames.hop), float(frames.offset)
    # first t with offset + t*hop >= start; first t with offset + t*hop >= end
    lo = np.ceil((seg[:, 0] - offset) / hop).astype(np.int64)
    hi = np.ceil((seg[:, 1] - offset) / hop).astype(np.int64)
    lo = np.clip(lo, 0, n_frames)
    hi = np.clip(hi, 0, n_frames)
    empty = hi <= lo
    if np.any(empty):
        mid = (seg[empty, 0] + seg[empty, 1]) / 2.0
        nearest = np.clip(np.floor((mid - offset) / hop + 0.5).astype(np.int64), 0, n_frames - 1)
        lo[empty] = nearest
        hi[empty] = nearest + 1
    return lo, hi


def pool_segments(
    features: np.ndarray,
    frames: FrameInfo,
    segments: Sequence[tuple[int, int]],
    mode: str = "mean",
) -> np.ndarray:
    """Pool the frames of each segment into one vector per segment.

    See :func:`segment_frame_ranges` for which frames belong to a segment: those
    whose centres lie in ``[start, end)``; a segment containing no frame centre
    (e.g. shorter than a hop, or outside the valid frames) uses the frame whose
    centre is nearest the segment middle.

    Parameters
    ----------
    features : np.ndarray
        ``[T, C]`` frame-level features of one utterance, ``T >= 1``.
    frames : FrameInfo
        Frame geometry of ``features``.
    segments : sequence of (int, int)
        ``[S]`` ``(start, end)`` sample indices, end exclusive.
    mode : {"mean", "max", "last", "meanstd", "thirds"}
        Pooling within a segment (see :func:`pool_utterance`). For ``"thirds"`` the segment's
        ``n`` frames are cut at ``floor(n/3)`` and ``floor(2n/3)``; a part left empty (``n < 3``)
        takes the frame where it starts, clipped to the segment.

    Returns
    -------
    np.ndarray
        ``[S, C']`` with ``C' = C`` (``2C`` for ``"meanstd"``, ``3C`` for ``"thirds"``), same floating dtype as
        ``features``; ``[0, C']`` for no segments.

    Raises
    ------
    ValueError
        On non-2-D or empty features, an unknown mode, or a segment with ``end < start``.
    """
    _check_mode(mode)
    x = _check_features(features)
    n_frames, channels = x.shape
    lo, hi = segment_frame_ranges(n_frames, frames, segments)
    n_seg = lo.shape[0]
    if n_seg == 0:
        return np.zeros((0, pooled_dim(channels, mode)), dtype=x.dtype)
    if mode == "last":
        return x[hi - 1].copy()
    if mode == "max":
        out = np.empty((n_seg, channels), dtype=x.dtype)
        for i in range(n_seg):
            out[i] = x[lo[i] : hi[i]].max(axis=0)
        return out
    # mean / meanstd via cumulative sums (float64, centred to limit cancellation)
    centre = x.mean(axis=0, dtype=np.float64)
    xc = x.astype(np.float64) - centre
    count = (hi - lo).astype(np.float64)[:, None]
    csum = np.concatenate([np.zeros((1, channels)), np.cumsum(xc, axis=0)])
    if mode == "thirds":
        n = hi - lo
        parts = []
        for j in range(3):
            plo = np.minimum(lo + (j * n) // 3, hi - 1)
            phi = np.maximum(lo + ((j + 1) * n) // 3, plo + 1)
            parts.append((csum[phi] - csum[plo]) / (phi - plo)[:, None] + centre)
        return np.concatenate(parts, axis=1).astype(x.dtype)
    mean_c = (csum[hi] - csum[lo]) / count
    mean = (mean_c + centre).astype(x.dtype)
    if mode == "mean":
        return mean
    csq = np.concatenate([np.zeros((1, channels)), np.cumsum(xc * xc, axis=0)])
    var = (csq[hi] - csq[lo]) / count - mean_c * mean_c
    std = np.sqrt(np.maximum(var, 0.0)).astype(x.dtype)
    return np.concatenate([mean, std], axis=1)


def pool_features(
    features: Sequence[np.ndarray],
    frames: FrameInfo,
    segments: Sequence[Sequence[tuple[int, int]] | None],
    level: Literal["utterance", "segment"],
    pool: str = "mean",
) -> np.ndarray:
    """Pool per-utterance frame features into probe examples (labels not needed).

    Parameters
    ----------
    features : sequence of np.ndarray
        ``[U]`` arrays ``[T_u, C]``.
    frames : FrameInfo
        Frame geometry shared by all utterances.
    segments : sequence of (list of (int, int)) or None
        ``[U]`` segments per utterance; only used (and required) for ``level="segment"``.
    level : {"utterance", "segment"}
        One example per utterance or per segment.
    pool : {"mean", "max", "last", "meanstd", "thirds"}
        Pooling mode.

    Returns
    -------
    np.ndarray
        ``[N, C']``: ``N = U`` for utterances, ``N = sum_u S_u`` for segments (in
        utterance order); ``[0, 0]`` when ``features`` is empty.
    """
    if level not in ("utterance", "segment"):
        raise ValueError(f"level must be 'utterance' or 'segment', got {level!r}")
    if len(segments) != len(features) and level == "segment":
        raise ValueError(f"got {len(features)} feature arrays but {len(segments)} segment lists")
    if len(features) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    dims = {np.shape(f)[-1] if np.ndim(f) == 2 else -1 for f in features}
    if len(dims) != 1 or -1 in dims:
        raise ValueError(f"features must all be 2-D [time, channels] with the same channels, got {dims}")
    rows: list[np.ndarray] = []
    for u, feats in enumerate(features):
        try:
            if level == "utterance":
                rows.append(pool_utterance(feats, pool)[None, :])
            else:
                seg = segments[u]
                if seg is None:
                    raise ValueError("segment-level task but the utterance has no segments")
                rows.append(pool_segments(feats, frames, seg, pool))
        except ValueError as err:
            raise ValueError(f"utterance {u}: {err}") from err
    return np.concatenate(rows, axis=0)
