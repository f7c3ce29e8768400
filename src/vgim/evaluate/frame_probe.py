"""The CPC paper's LibriSpeech probes: frame-level phone classification and utterance-level speaker identity.

Phone labels come in 10 ms frames (``converted_aligned_phones.txt``, see
:mod:`vgim.data.librispeech`): label frame ``j`` covers samples ``[160 j, 160 (j + 1))`` at 16 kHz, centre
``160 j + 80``. Features of a module with :class:`FrameInfo` ``(hop, offset)`` have frame ``t`` centred on
``offset + t * hop``. :func:`align_features` gives every label frame one feature vector:

* ``mode="nearest"`` (default): the feature frame whose centre is nearest ``160 j + 80``, clipped to the
  existing frames. A tie (two centres 80 samples away, e.g. MFCC frames centred on ``160 j`` and
  ``160 (j + 1)``) goes to the earlier frame, whose centre lies inside ``[160 j, 160 (j + 1))`` -- the same
  half-open rule as ``"mean"``. For a hop of 160 this is a one-to-one pairing (MFCC frame ``j`` for label
  frame ``j``); for a finer hop (e.g. 40) it picks one of the frames inside the label frame.
* ``mode="mean"``: the mean of the feature frames whose centres fall in ``[160 j, 160 (j + 1))`` (e.g. four
  frames for a hop of 40); a label frame that contains no centre (hop coarser than 10 ms, or past the last
  frame) falls back to the nearest frame.

A label frame whose nearest feature centre is farther than ``max(hop, receptive_field, 160)`` samples
raises an error: the labels do not belong to these features (wrong file, wrong sample rate, ...).

:func:`frame_phone_probe` trains a linear classifier (``nn.Linear`` + Adam, mini-batches of frames shuffled
across all training utterances, features standardised with training statistics) for a fixed number of
epochs and reports test-frame accuracy; LibriSpeech ``train-clean-100`` has ~36 million frames, far too many
for scikit-learn's lbfgs (which stays available with ``method="sklearn"`` for small inputs).
:func:`speaker_probe` pools each utterance (mean or last frame) and uses :func:`linear_probe`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from vgim.data.librispeech import PHONE_FRAME_HOP
from vgim.evaluate.pooling import pool_utterance
from vgim.evaluate.probes import ProbeResult, linear_probe
from vgim.frames import FrameInfo

__all__ = [
    "LABEL_HOP",
    "AlignMode",
    "align_features",
    "frame_dataset",
    "frame_phone_probe",
    "label_frame_centres",
    "speaker_probe",
]

log = logging.getLogger("vgim")

#: Samples per phone-label frame (10 ms at 16 kHz).
LABEL_HOP = PHONE_FRAME_HOP

AlignMode = Literal["nearest", "mean"]


def label_frame_centres(n_labels: int) -> np.ndarray:
    """Centres ``160 j + 80`` (samples, float64) of the label frames ``j = 0 .. n_labels - 1``."""
    if n_labels < 0:
        raise ValueError(f"n_labels must be >= 0, got {n_labels}")
    return np.arange(n_labels, dtype=np.float64) * LABEL_HOP + LABEL_HOP / 2


def align_features(
    features: np.ndarray,
    frames: FrameInfo,
    n_labels: int,
    *,
    mode: AlignMode = "nearest",
    max_distance: float | None = None,
) -> np.ndarray:
    """One feature vector per 10 ms label frame.

    Parameters
    ----------
    features
        ``[T, C]`` frame-level features of one utterance (16 kHz time axis), ``T >= 1``.
    frames
        Frame geometry of ``features``: frame ``t`` is centred on ``offset + t * hop``.
    n_labels
        Number of label frames ``L`` (label frame ``j`` covers samples ``[160 j, 160 (j + 1))``).
    mode
        ``"nearest"``: the frame whose centre is nearest ``160 j + 80`` (ties to the earlier frame).
        ``"mean"``: the mean of the frames whose centres fall in ``[160 j, 160 (j + 1))``, or the nearest
        frame when none does.
    max_distance
        Largest allowed distance in samples between a label-frame centre and its nearest feature-frame
        centre; default ``max(hop, receptive_field, 160)``; ``float("inf")`` disables the check.

    Returns
    -------
    np.ndarray
        ``[L, C]``, same floating dtype as ``features`` (float64 for integer input).

    Raises
    ------
    ValueError
        On non-2-D or empty features, an unknown mode, or a label frame too far from every feature frame
        (the labels do not fit the features).
    """
    if mode not in ("nearest", "mean"):
        raise ValueError(f"unknown alignment mode {mode!r}; expected 'nearest' or 'mean'")
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be 2-D [time, channels] with at least one frame, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if n_labels < 0:
        raise ValueError(f"n_labels must be >= 0, got {n_labels}")
    n_frames = x.shape[0]
    centres = label_frame_centres(n_labels)
    nearest = np.clip(np.ceil((centres - frames.offset) / frames.hop - 0.5).astype(np.int64), 0, n_frames - 1)
    limit = max(frames.hop, frames.receptive_field, LABEL_HOP) if max_distance is None else max_distance
    dist = np.abs(frames.offset + nearest * frames.hop - centres)
    if dist.size and float(dist.max()) > limit:
        j = int(np.argmax(dist > limit))
        first, last = frames.offset, frames.offset + (n_frames - 1) * frames.hop
        raise ValueError(
            f"label frame {j} of {n_labels} (centre sample {centres[j]:.0f}) is {dist[j]:.0f} samples from the "
            f"nearest of {n_frames} feature frames (centres {first:.0f}..{last:.0f}, hop {frames.hop}); "
            f"more than {limit:.0f}: the labels do not fit these features"
        )
    if mode == "nearest" or n_labels == 0:
        return x[nearest]
    # frames with centres in [160 j, 160 (j + 1)): t in [lo, hi); none -> the nearest frame
    starts = np.arange(n_labels + 1, dtype=np.float64) * LABEL_HOP
    bounds = np.clip(np.ceil((starts - frames.offset) / frames.hop).astype(np.int64), 0, n_frames)
    lo, hi = bounds[:-1].copy(), bounds[1:].copy()
    empty = hi <= lo
    lo[empty], hi[empty] = nearest[empty], nearest[empty] + 1
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0, dtype=np.float64)])
    return ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).astype(x.dtype)


def _check_labels(y: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D [frames], got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer phone labels, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def frame_dataset(
    features: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    frames: FrameInfo | None = None,
    *,
    mode: AlignMode = "nearest",
    max_distance: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pool the label frames of many utterances into one ``(x, y)`` frame dataset.

    Parameters
    ----------
    features
        ``[U]`` arrays ``[T_u, C]``.
    labels
        ``[U]`` integer arrays ``[L_u]`` (one phone label per 10 ms frame).
    frames
        Frame geometry of the features; each utterance is aligned with :func:`align_features`. ``None``:
        the features are already one row per label frame (``T_u == L_u`` is required).
    mode, max_distance
        See :func:`align_features`.

    Returns
    -------
    x : np.ndarray
        ``[sum_u L_u, C]`` float32.
    y : np.ndarray
        ``[sum_u L_u]`` int64.

    Raises
    ------
    ValueError
        Naming the utterance index on a length mismatch or an alignment problem.
    """
    if len(features) != len(labels):
        raise ValueError(f"got {len(features)} feature arrays but {len(labels)} label arrays")
    if len(features) == 0:
        raise ValueError("no utterances")
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    dims: set[int] = set()
    for u, (feats, lab) in enumerate(zip(features, labels, strict=True)):
        try:
            y = _check_labels(lab, "labels")
            f = np.asarray(feats)
            if frames is None:
                if f.ndim != 2 or f.shape[0] != y.shape[0]:
                    raise ValueError(
                        f"features of shape {f.shape} are not one row per label frame ({y.shape[0]} labels); "
                        "pass frames= to align them"
                    )
                aligned = f
            else:
                aligned = align_features(f, frames, int(y.shape[0]), mode=mode, max_distance=max_distance)
        except ValueError as err:
            raise ValueError(f"utterance {u}: {err}") from err
        dims.add(int(aligned.shape[1]))
        xs.append(aligned.astype(np.float32, copy=False))
        ys.append(y)
    if len(dims) != 1:
        raise ValueError(f"features must all have the same number of channels, got {sorted(dims)}")
    return np.concatenate(xs, axis=0), np.concatenate(ys)


def _as_frames(
    feats: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[np.ndarray] | np.ndarray,
    frames: FrameInfo | None,
    mode: AlignMode,
    name: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame matrix and labels from either per-utterance lists or already pooled ``[N, C]`` / ``[N]``."""
    if isinstance(feats, np.ndarray) and feats.ndim == 2:
        if frames is not None:
            raise ValueError(f"{name}: frames= needs per-utterance feature arrays, got one [N, C] matrix")
        y = _check_labels(np.asarray(labels), f"{name} labels")
        if feats.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: {feats.shape[0]} feature rows but {y.shape[0]} labels")
        return feats.astype(np.float32, copy=False), y
    try:
        return frame_dataset(list(feats), list(labels), frames, mode=mode)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def frame_phone_probe(
    train_feats: Sequence[np.ndarray] | np.ndarray,
    train_labels: Sequence[np.ndarray] | np.ndarray,
    test_feats: Sequence[np.ndarray] | np.ndarray,
    test_labels: Sequence[np.ndarray] | np.ndarray,
    *,
    frames: FrameInfo | None = None,
    mode: AlignMode = "nearest",
    method: Literal["torch", "sklearn"] = "torch",
    epochs: int = 10,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    task: str = "phone",
    features: str = "",
) -> ProbeResult:
    """Linear frame-level phone classifier; accuracy on the test frames.

    The ``"torch"`` method standardises every feature channel with the mean and standard deviation of the
    training frames (a constant channel is only centred), then trains ``nn.Linear(C, K)`` (zero-initialised,
    ``K`` = classes seen in training) with Adam on the cross-entropy of mini-batches of ``batch_size``
    frames drawn without replacement from all training frames of all utterances, reshuffled every epoch
    (``torch.Generator`` seeded with ``seed``), for exactly ``epochs`` epochs. Memory: the training frames are
    held once as float32 (``N * C * 4`` bytes); batches are standardised on the fly. ``"sklearn"`` runs
    :func:`linear_probe` (StandardScaler + lbfgs logistic regression) instead, for small inputs.

    Test frames whose label never occurs in training count as errors.

    Parameters
    ----------
    train_feats, test_feats
        ``[U]`` arrays ``[T_u, C]`` per utterance, or one ``[N, C]`` matrix of already aligned frames.
    train_labels, test_labels
        ``[U]`` integer arrays ``[L_u]`` (phone label per 10 ms frame), or one ``[N]`` array.
    frames
        Frame geometry of per-utterance features, which are then aligned to the label frames with
        :func:`align_features`; ``None`` when every feature row already is a label frame.
    mode
        Alignment mode (see :func:`align_features`).
    method
        ``"torch"`` (mini-batch Adam) or ``"sklearn"``.
    epochs, batch_size, lr, weight_decay
        Training schedule of the torch method (``weight_decay`` is Adam's L2 penalty).
    seed
        Seed of the shuffling (torch) or of the classifier (sklearn).
    task, features
        Names copied into the result.

    Returns
    -------
    ProbeResult
        ``n_train`` / ``n_test`` count frames; ``chance`` is the majority-class share of the test frames.

    Raises
    ------
    ValueError
        On inconsistent inputs, an empty test set, fewer than two training classes or bad hyper-parameters.
    """
    if method not in ("torch", "sklearn"):
        raise ValueError(f"method must be 'torch' or 'sklearn', got {method!r}")
    if epochs < 1 or batch_size < 1 or not lr > 0 or weight_decay < 0:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1, lr > 0, weight_decay >= 0; got {epochs}, {batch_size}, {lr}, "
            f"{weight_decay}"
        )
    xtr, ytr = _as_frames(train_feats, train_labels, frames, mode, "train")
    xte, yte = _as_frames(test_feats, test_labels, frames, mode, "test")
    where = f" (task={task!r}, features={features!r})" if task or features else ""
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train features have {xtr.shape[1]} channels but test features {xte.shape[1]}{where}")
    if xte.shape[0] == 0:
        raise ValueError(f"empty test set{where}")
    if not (_all_finite(xtr) and _all_finite(xte)):
        raise ValueError(f"features contain NaN or inf{where}")
    classes = np.unique(ytr)
    if classes.size < 2:
        raise ValueError(f"phone probe needs at least 2 classes in the training labels, got {classes.tolist()}{where}")
    if method == "sklearn":
        return linear_probe(xtr, ytr, xte, yte, task=task, features=features, seed=seed)

    index = _train_predict(
        xtr, np.searchsorted(classes, ytr), xte, classes.size, epochs, batch_size, lr, weight_decay, seed
    )
    pred = classes[index]
    _, counts = np.unique(yte, return_counts=True)
    return ProbeResult(
        task=task,
        features=features,
        accuracy=float(np.mean(pred == yte)),
        macro_f1=float(f1_score(yte, pred, average="macro", zero_division=0)),
        n_train=int(xtr.shape[0]),
        n_test=int(xte.shape[0]),
        n_classes=int(classes.size),
        chance=float(counts.max() / yte.shape[0]),
    )


_CHUNK = 65536


def _all_finite(x: np.ndarray) -> bool:
    return all(bool(np.isfinite(x[i : i + _CHUNK]).all()) for i in range(0, x.shape[0], _CHUNK))


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation in float64, two passes over row chunks."""
    n = x.shape[0]
    mean = np.zeros(x.shape[1])
    for i in range(0, n, _CHUNK):
        mean += x[i : i + _CHUNK].sum(axis=0, dtype=np.float64)
    mean /= n
    sq = np.zeros(x.shape[1])
    for i in range(0, n, _CHUNK):
        sq += np.square(x[i : i + _CHUNK].astype(np.float64) - mean).sum(axis=0)
    return mean, np.sqrt(sq / n)


def _train_predict(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    n_classes: int,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
) -> np.ndarray:
    """Train the standardised linear classifier on ``(xtr, ytr)`` (class indices) and predict ``xte``."""
    mean, std = _mean_std(xtr)
    std[std < 1e-8] = 1.0
    mean_t = torch.from_numpy(mean.astype(np.float32))
    scale_t = torch.from_numpy((1.0 / std).astype(np.float32))
    x = torch.from_numpy(np.ascontiguousarray(xtr, dtype=np.float32))
    y = torch.from_numpy(ytr.astype(np.int64))
    model = nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            logits = model((x[idx] - mean_t) * scale_t)
            loss = nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.shape[0]
        log.debug("frame probe epoch %d/%d: loss %.4f", epoch + 1, epochs, total / n)
    out = np.empty(xte.shape[0], dtype=np.int64)
    with torch.no_grad():
        for start in range(0, xte.shape[0], _CHUNK):
            xb = torch.from_numpy(np.ascontiguousarray(xte[start : start + _CHUNK], dtype=np.float32))
            out[start : start + xb.shape[0]] = model((xb - mean_t) * scale_t).argmax(dim=1).numpy()
    return out


def speaker_probe(
    train_feats: Sequence[np.ndarray],
    train_speakers: Sequence[str],
    test_feats: Sequence[np.ndarray],
    test_speakers: Sequence[str],
    *,
    pool: Literal["mean", "last"] = "mean",
    task: str = "speaker",
    features: str = "",
    c: float = 1.0,
    seed: int = 0,
    max_iter: int = 2000,
) -> ProbeResult:
    """Speaker identification from one vector per utterance with :func:`linear_probe`.

    Parameters
    ----------
    train_feats, test_feats
        ``[U]`` arrays ``[T_u, C]`` per utterance.
    train_speakers, test_speakers
        ``[U]`` speaker ids.
    pool
        ``"mean"``: average over all frames; ``"last"``: the last frame (the GRU context after the whole
        utterance).
    task, features, c, seed, max_iter
        Passed to :func:`linear_probe`.

    Returns
    -------
    ProbeResult
        One example per utterance.

    Raises
    ------
    ValueError
        Naming the utterance on an empty or non-2-D feature array, or from :func:`linear_probe`.
    """
    if pool not in ("mean", "last"):
        raise ValueError(f"pool must be 'mean' or 'last', got {pool!r}")

    def pooled(feats: Sequence[np.ndarray], name: str) -> np.ndarray:
        rows = []
        for u, f in enumerate(feats):
            try:
                rows.append(pool_utterance(np.asarray(f), pool))
            except ValueError as err:
                raise ValueError(f"{name} utterance {u}: {err}") from err
        if not rows:
            raise ValueError(f"no {name} utterances")
        return np.stack(rows)

    return linear_probe(
        pooled(train_feats, "train"),
        list(train_speakers),
        pooled(test_feats, "test"),
        list(test_speakers),
        task=task,
        features=features,
        c=c,
        seed=seed,
        max_iter=max_iter,
    )
