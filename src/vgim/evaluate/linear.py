"""A linear classifier trained with Adam: the torch side of the frame-level phone probe and of the speaker
probe on windows (the GIM code's ``nn.Linear`` + ``torch.optim.Adam`` probes).

:class:`LinearClassifier` holds ``nn.Linear(C, K)``, its Adam optimiser and, optionally, the per-channel
standardisation of the inputs; :meth:`LinearClassifier.step` takes one optimiser step on one batch, so a
caller can stream batches it computes on the fly (the LibriSpeech recipe streams one utterance per step).
:func:`train_predict` is the in-memory loop: shuffled mini-batches of ``batch_size`` rows, or, with
``groups``, one group of rows (an utterance) per step in the given order, as the GIM code iterates its file
list. :func:`adam_probe` wraps it into a :class:`~vgim.evaluate.probes.ProbeResult` for any labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from vgim.evaluate.probes import ProbeResult

__all__ = [
    "Init",
    "LinearClassifier",
    "adam_probe",
    "all_finite",
    "fit_classifier",
    "mean_std",
    "score",
    "train_predict",
]

log = logging.getLogger("vgim")

#: ``"zeros"``: weight and bias 0; ``"xavier"``: Xavier-normal weight (the GIM phone probe's
#: ``weights_init``), bias as torch's default; ``"torch"``: ``nn.Linear``'s default (the GIM speaker probe).
Init = Literal["zeros", "xavier", "torch"]
_CHUNK = 65536


def all_finite(x: np.ndarray) -> bool:
    """Whether ``x`` holds no NaN or inf (checked in row chunks, no full-size temporary)."""
    return all(bool(np.isfinite(x[i : i + _CHUNK]).all()) for i in range(0, x.shape[0], _CHUNK))


def mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


class LinearClassifier:
    """``nn.Linear(n_features, n_classes)`` trained by Adam on the cross-entropy, one batch per :meth:`step`.

    Parameters
    ----------
    n_features, n_classes
        Input channels ``C`` and classes ``K``.
    lr, weight_decay
        Adam's learning rate and L2 penalty.
    init
        Initial weights (:data:`Init`); seeded by ``seed``.
    mean, std
        Per-channel standardisation ``(x - mean) / std`` of every input (``None``: inputs used as they are);
        a channel with ``std < 1e-8`` is only centred.
    seed
        Seed of the initialisation.
    bias
        Whether the layer has a bias.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        lr: float,
        weight_decay: float = 0.0,
        init: Init = "zeros",
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        seed: int = 0,
        bias: bool = True,
    ) -> None:
        if init not in ("zeros", "xavier", "torch"):
            raise ValueError(f"init must be 'zeros', 'xavier' or 'torch', got {init!r}")
        if not lr > 0 or weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = nn.Linear(n_features, n_classes, bias=bias)
            with torch.no_grad():
                if init == "zeros":
                    self.model.weight.zero_()
                    if self.model.bias is not None:
                        self.model.bias.zero_()
                elif init == "xavier":
                    nn.init.xavier_normal_(self.model.weight)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self._shift: torch.Tensor | None = None
        self._scale: torch.Tensor | None = None
        if mean is not None and std is not None:
            safe = np.where(std < 1e-8, 1.0, std)
            self._shift = torch.from_numpy(mean.astype(np.float32))
            self._scale = torch.from_numpy((1.0 / safe).astype(np.float32))

    def _logits(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)) if isinstance(x, np.ndarray) else x
        if self._shift is not None and self._scale is not None:
            xt = (xt - self._shift) * self._scale
        return self.model(xt)

    def step(self, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
        """One Adam step on the batch ``x`` ``[B, C]`` with class indices ``y`` ``[B]``; returns the loss."""
        yt = torch.as_tensor(np.asarray(y, dtype=np.int64)) if isinstance(y, np.ndarray) else y
        loss = nn.functional.cross_entropy(self._logits(x), yt)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices ``[N]`` (int64) of the rows of ``x`` ``[N, C]``, in row chunks."""
        out = np.empty(x.shape[0], dtype=np.int64)
        for start in range(0, x.shape[0], _CHUNK):
            chunk = x[start : start + _CHUNK]
            out[start : start + chunk.shape[0]] = self._logits(chunk).argmax(dim=1).numpy()
        return out


def train_predict(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    n_classes: int,
    *,
    epochs: int,
    batch_size: int | None,
    lr: float,
    weight_decay: float = 0.0,
    seed: int = 0,
    standardise: bool = True,
    init: Init = "zeros",
    groups: Sequence[int] | None = None,
) -> np.ndarray:
    """Train a :class:`LinearClassifier` on ``(xtr, ytr)`` (class indices) and predict the rows of ``xte``;
    see :func:`fit_classifier`."""
    clf = fit_classifier(
        xtr,
        ytr,
        n_classes,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        standardise=standardise,
        init=init,
        groups=groups,
    )
    return clf.predict(xte)


def fit_classifier(
    xtr: np.ndarray,
    ytr: np.ndarray,
    n_classes: int,
    *,
    epochs: int,
    batch_size: int | None,
    lr: float,
    weight_decay: float = 0.0,
    seed: int = 0,
    standardise: bool = True,
    init: Init = "zeros",
    groups: Sequence[int] | None = None,
    bias: bool = True,
) -> LinearClassifier:
    """A :class:`LinearClassifier` trained on ``(xtr, ytr)`` (class indices) for ``epochs`` epochs.

    ``batch_size`` rows per step, drawn without replacement and reshuffled every epoch
    (``torch.Generator`` seeded with ``seed``); or, with ``batch_size=None``, one step per group of
    consecutive rows, ``groups`` giving the group sizes (e.g. the label frames of each utterance), in order
    every epoch. ``standardise``: with the training rows' per-channel mean and standard deviation.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size is None:
        if groups is None or sum(groups) != xtr.shape[0] or any(g < 0 for g in groups):
            raise ValueError("batch_size=None needs groups: non-negative sizes that sum to the training rows")
    elif batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    mean, std = mean_std(xtr) if standardise else (None, None)
    clf = LinearClassifier(
        xtr.shape[1], n_classes, lr=lr, weight_decay=weight_decay, init=init, mean=mean, std=std, seed=seed, bias=bias
    )
    x = torch.from_numpy(np.ascontiguousarray(xtr, dtype=np.float32))
    y = torch.from_numpy(ytr.astype(np.int64))
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    bounds = np.concatenate([[0], np.cumsum(groups)]) if batch_size is None and groups is not None else None
    for epoch in range(epochs):
        total = 0.0
        if bounds is not None:
            batches = [torch.arange(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
        else:
            order = torch.randperm(n, generator=gen)
            step = batch_size or n
            batches = [order[s : s + step] for s in range(0, n, step)]
        for idx in batches:
            total += clf.step(x[idx], y[idx]) * idx.shape[0]
        log.debug("linear probe epoch %d/%d: loss %.4f", epoch + 1, epochs, total / max(n, 1))
    return clf


def score(pred: np.ndarray, y: np.ndarray, *, n_train: int, n_classes: int, task: str, features: str) -> ProbeResult:
    """The :class:`ProbeResult` of predictions ``pred`` against labels ``y`` (chance: the majority share)."""
    _, counts = np.unique(y, return_counts=True)
    return ProbeResult(
        task=task,
        features=features,
        accuracy=float(np.mean(pred == y)),
        macro_f1=float(f1_score(y, pred, average="macro", zero_division=0)),
        n_train=n_train,
        n_test=int(y.shape[0]),
        n_classes=n_classes,
        chance=float(counts.max() / y.shape[0]),
    )


def adam_probe(
    xtr: np.ndarray,
    ytr: Sequence[object] | np.ndarray,
    xte: np.ndarray,
    yte: Sequence[object] | np.ndarray,
    *,
    epochs: int,
    batch_size: int | None,
    lr: float,
    seed: int = 0,
    standardise: bool = True,
    init: Init = "zeros",
    groups: Sequence[int] | None = None,
    task: str = "",
    features: str = "",
) -> ProbeResult:
    """A linear classifier trained by Adam (:func:`train_predict`) on ``[N, C]`` rows with any labels
    (strings, integers), scored on the test rows; test labels never seen in training count as errors.

    Raises
    ------
    ValueError
        Mismatched rows and labels, an empty test set, non-finite features or fewer than two classes.
    """
    a_tr, a_te = np.asarray(ytr), np.asarray(yte)
    where = f" (task={task!r}, features={features!r})"
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"features must be [N, C] with the same C, got {xtr.shape} and {xte.shape}{where}")
    if xtr.shape[0] != a_tr.shape[0] or xte.shape[0] != a_te.shape[0]:
        raise ValueError(f"{xtr.shape[0]}/{xte.shape[0]} rows but {a_tr.shape[0]}/{a_te.shape[0]} labels{where}")
    if xte.shape[0] == 0:
        raise ValueError(f"empty test set{where}")
    if not (all_finite(xtr) and all_finite(xte)):
        raise ValueError(f"features contain NaN or inf{where}")
    classes = np.unique(a_tr)
    if classes.size < 2:
        raise ValueError(f"linear probe needs at least 2 classes in the training labels, got {classes.tolist()}{where}")
    index = train_predict(
        xtr,
        np.searchsorted(classes, a_tr),
        xte,
        classes.size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        standardise=standardise,
        init=init,
        groups=groups,
    )
    n_train, n_classes = int(xtr.shape[0]), int(classes.size)
    return score(classes[index], a_te, n_train=n_train, n_classes=n_classes, task=task, features=features)
