"""The CPC paper's LibriSpeech probes: frame-level phone classification and utterance-level speaker identity.

Phone labels come in 10 ms frames (``converted_aligned_phones.txt``, see
:mod:`vgim.data.librispeech`): label frame ``j`` covers samples ``[160 j, 160 (j + 1))`` at 16 kHz, centre
``160 j + 80``. Features of a module with :class:`FrameInfo` ``(hop, offset)`` have frame ``t`` centred on
``offset + t * hop``. :func:`align_features` gives every label frame one feature vector. Which frames
*pair* with which labels is the ``pairing`` (:data:`Pairing`):

* ``pairing="centre"``: label frame ``j`` sits at ``160 j + 80`` on the features' own time axis (the frame
  centres from the geometry);
* ``pairing="gim"``: the GIM code's ``output[-len(labels):]``, the last ``L`` outputs of the utterance for
  its ``L`` labels (right-aligned). Generally: the labels are shifted by :func:`pairing_shift` samples, so
  that the end of the last label frame meets the end of the last feature frame's span
  (``offset + (T - 1/2) hop``). For a hop of 160 this pairs label ``j`` with frame ``T - L + j`` exactly;
  for a finer hop ``h`` (``r = 160 / h``), with ``mode="mean"``, label ``j`` gets the mean of the ``r``
  frames ending ``r (L - 1 - j)`` frames before the last: the last ``r L`` outputs in groups of ``r``.

Within a pairing, ``mode`` picks the frames:

* ``mode="nearest"`` (default): the feature frame whose centre is nearest the label centre, clipped to the
  existing frames. A tie (two centres 80 samples away, e.g. MFCC frames centred on ``160 j`` and
  ``160 (j + 1)``) goes to the earlier frame, whose centre lies inside ``[160 j, 160 (j + 1))`` -- the same
  half-open rule as ``"mean"``. For a hop of 160 this is a one-to-one pairing (MFCC frame ``j`` for label
  frame ``j``); for a finer hop (e.g. 40) it picks one of the frames inside the label frame.
* ``mode="mean"``: the mean of the feature frames whose centres fall in ``[160 j, 160 (j + 1))`` (e.g. four
  frames for a hop of 40); a label frame that contains no centre (hop coarser than 10 ms, or past the last
  frame) falls back to the nearest frame.

A label frame whose nearest feature centre is farther than ``max(hop, receptive_field, 160)`` samples
raises an error: the labels do not belong to these features (wrong file, wrong sample rate, ...).

:func:`frame_phone_probe` trains a linear classifier (``nn.Linear`` + Adam, :mod:`vgim.evaluate.linear`):
mini-batches of frames shuffled across all training utterances, or (``batch_size=None``, the GIM code) one
utterance per step in order; features standardised with training statistics or (``standardise=False``,
the GIM code) as they are; for a fixed number of epochs, and reports test-frame accuracy. LibriSpeech
``train-clean-100`` has ~36 million frames, far too many for scikit-learn's lbfgs (which stays available
with ``method="sklearn"`` for small inputs). :func:`speaker_probe` pools each utterance (mean or last frame)
and uses :func:`linear_probe`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np

from vgim.data.librispeech import PHONE_FRAME_HOP
from vgim.evaluate.linear import Init, all_finite, score, train_predict
from vgim.evaluate.pooling import pool_utterance
from vgim.evaluate.probes import ProbeResult, linear_probe
from vgim.frames import FrameInfo

__all__ = [
    "LABEL_HOP",
    "PAIRINGS",
    "AlignMode",
    "Pairing",
    "align_features",
    "frame_dataset",
    "frame_phone_probe",
    "label_frame_centres",
    "pairing_shift",
    "speaker_probe",
]

log = logging.getLogger("vgim")

#: Samples per phone-label frame (10 ms at 16 kHz).
LABEL_HOP = PHONE_FRAME_HOP

AlignMode = Literal["nearest", "mean"]
#: ``"gim"``: the last ``len(labels)`` outputs (right-aligned, the GIM code); ``"centre"``: by frame centres.
Pairing = Literal["gim", "centre"]
PAIRINGS: tuple[Pairing, ...] = ("gim", "centre")


def label_frame_centres(n_labels: int) -> np.ndarray:
    """Centres ``160 j + 80`` (samples, float64) of the label frames ``j = 0 .. n_labels - 1``."""
    if n_labels < 0:
        raise ValueError(f"n_labels must be >= 0, got {n_labels}")
    return np.arange(n_labels, dtype=np.float64) * LABEL_HOP + LABEL_HOP / 2


def pairing_shift(frames: FrameInfo, n_frames: int, n_labels: int, pairing: Pairing) -> float:
    """Samples by which ``pairing`` moves the label frames along the features' time axis.

    ``"centre"``: 0. ``"gim"``: ``offset + (T - 1/2) hop - 160 L``, which puts the end of the last label frame
    on the end of the last feature frame's span (for a hop of 160: ``160 (T - L) + offset - 80``, label ``j``
    on the centre of frame ``T - L + j``).
    """
    if pairing == "centre":
        return 0.0
    if pairing != "gim":
        raise ValueError(f"unknown pairing {pairing!r}; expected one of {', '.join(PAIRINGS)}")
    return frames.offset + (n_frames - 0.5) * frames.hop - n_labels * LABEL_HOP


def align_features(
    features: np.ndarray,
    frames: FrameInfo,
    n_labels: int,
    *,
    mode: AlignMode = "nearest",
    max_distance: float | None = None,
    pairing: Pairing = "centre",
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
    pairing
        ``"centre"``: label frame ``j`` at ``160 j + 80``; ``"gim"``: right-aligned, shifted by
        :func:`pairing_shift` (for a hop of 160, exactly ``features[T - L:]`` when ``T >= L``).

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
    shift = pairing_shift(frames, n_frames, n_labels, pairing)
    centres = label_frame_centres(n_labels) + shift
    nearest = np.clip(np.ceil((centres - frames.offset) / frames.hop - 0.5).astype(np.int64), 0, n_frames - 1)
    limit = max(frames.hop, frames.receptive_field, LABEL_HOP) if max_distance is None else max_distance
    dist = np.abs(frames.offset + nearest * frames.hop - centres)
    if dist.size and float(dist.max()) > limit:
        j = int(np.argmax(dist > limit))
        first, last = frames.offset, frames.offset + (n_frames - 1) * frames.hop
        moved = f" + {shift:g} by the {pairing} pairing" if shift else ""
        raise ValueError(
            f"label frame {j} of {n_labels} (centre sample {centres[j] - shift:.0f}{moved}) is {dist[j]:.0f} "
            "samples from the "
            f"nearest of {n_frames} feature frames (centres {first:.0f}..{last:.0f}, hop {frames.hop}); "
            f"more than {limit:.0f}: the labels do not fit these features"
        )
    if mode == "nearest" or n_labels == 0:
        return x[nearest]
    # frames with centres in [160 j, 160 (j + 1)): t in [lo, hi); none -> the nearest frame
    starts = np.arange(n_labels + 1, dtype=np.float64) * LABEL_HOP + shift
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
    pairing: Pairing = "centre",
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
    mode, max_distance, pairing
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
                aligned = align_features(
                    f, frames, int(y.shape[0]), mode=mode, max_distance=max_distance, pairing=pairing
                )
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
    pairing: Pairing,
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
        return frame_dataset(list(feats), list(labels), frames, mode=mode, pairing=pairing)
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
    pairing: Pairing = "centre",
    method: Literal["torch", "sklearn"] = "torch",
    epochs: int = 10,
    batch_size: int | None = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    standardise: bool = True,
    init: Init = "zeros",
    groups: Sequence[int] | None = None,
    seed: int = 0,
    task: str = "phone",
    features: str = "",
) -> ProbeResult:
    """Linear frame-level phone classifier; accuracy on the test frames.

    The ``"torch"`` method standardises every feature channel with the mean and standard deviation of the
    training frames (a constant channel is only centred; ``standardise=False``: none, as the GIM code), then
    trains ``nn.Linear(C, K)`` (``init``, default zero; ``K`` = classes seen in training) with Adam on the
    cross-entropy of mini-batches of ``batch_size`` frames drawn without replacement from all training
    frames of all utterances, reshuffled every epoch (``torch.Generator`` seeded with ``seed``), or with
    ``batch_size=None`` one utterance per step in the given order (the GIM code), for exactly ``epochs``
    epochs. Memory: the training frames are held once as float32 (``N * C * 4`` bytes); batches are
    standardised on the fly. ``"sklearn"`` runs :func:`linear_probe` (StandardScaler + lbfgs logistic
    regression) instead, for small inputs.

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
    mode, pairing
        Alignment mode and label pairing (see :func:`align_features`).
    method
        ``"torch"`` (mini-batch Adam) or ``"sklearn"``.
    epochs, batch_size, lr, weight_decay, standardise, init
        Training of the torch method (``weight_decay`` is Adam's L2 penalty; ``batch_size=None``: one
        utterance per step).
    groups
        With ``batch_size=None`` and one ``[N, C]`` training matrix: the rows of each utterance, in order
        (per-utterance inputs give them by themselves).
    seed
        Seed of the shuffling and initialisation (torch) or of the classifier (sklearn).
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
    if epochs < 1 or (batch_size is not None and batch_size < 1) or not lr > 0 or weight_decay < 0:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1 or None, lr > 0, weight_decay >= 0; got {epochs}, {batch_size}, "
            f"{lr}, {weight_decay}"
        )
    xtr, ytr = _as_frames(train_feats, train_labels, frames, mode, pairing, "train")
    xte, yte = _as_frames(test_feats, test_labels, frames, mode, pairing, "test")
    where = f" (task={task!r}, features={features!r})" if task or features else ""
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train features have {xtr.shape[1]} channels but test features {xte.shape[1]}{where}")
    if xte.shape[0] == 0:
        raise ValueError(f"empty test set{where}")
    if not (all_finite(xtr) and all_finite(xte)):
        raise ValueError(f"features contain NaN or inf{where}")
    classes = np.unique(ytr)
    if classes.size < 2:
        raise ValueError(f"phone probe needs at least 2 classes in the training labels, got {classes.tolist()}{where}")
    if method == "sklearn":
        return linear_probe(xtr, ytr, xte, yte, task=task, features=features, seed=seed)
    if batch_size is None and groups is None:
        if isinstance(train_feats, np.ndarray) and train_feats.ndim == 2:
            raise ValueError(f"batch_size=None with one [N, C] training matrix needs groups={where}")
        groups = [int(np.asarray(y).shape[0]) for y in train_labels]
    index = train_predict(
        xtr,
        np.searchsorted(classes, ytr),
        xte,
        classes.size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        standardise=standardise,
        init=init,
        groups=groups,
    )
    return score(
        classes[index], yte, n_train=int(xtr.shape[0]), n_classes=int(classes.size), task=task, features=features
    )


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
