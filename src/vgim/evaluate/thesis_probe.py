"""The V-GIM thesis's own probe protocol (its chapter "Experiments"; ``shared/THESIS-SETUP.md``).

Unlike :mod:`vgim.evaluate.probes` (the whole word encoded, frames mean-pooled per syllable, logistic
regression), every syllable is cut out of its word, **zero-padded at both ends (centred) to one fixed
length** and **encoded on its own**. Its module-m map ``[channels, T]`` is **flattened without pooling**
(syllable and consonant probes) or **max-pooled over time** (the vowel probe, module 1, a linear layer
without bias), and a torch linear layer is trained with cross-entropy and Adam (lr 1e-3, no scheduler,
100 epochs, minibatches of 64) on the training words' syllables and scored on the test words' syllables.
The features are not standardised (the thesis does not say it did; :class:`ThesisProbeConfig`
``standardise`` switches it on). :func:`label_subset_study` repeats the flattened syllable probe with 1, 2,
4, ..., 128 labelled syllables per class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from vgim.data.corpus import AudioCorpus
from vgim.evaluate.baselines import mfcc_features
from vgim.evaluate.probes import ProbeResult, probe_labels
from vgim.frames import SAMPLE_RATE
from vgim.model.stack import Stack

__all__ = [
    "THESIS_LABEL_COUNTS",
    "THESIS_PAD_SAMPLES",
    "THESIS_PROTOCOL_TASKS",
    "LinearFit",
    "PaddedSyllables",
    "SubsetPoint",
    "ThesisMaps",
    "ThesisProbeConfig",
    "ThesisTask",
    "draw_per_class",
    "encode_padded",
    "fit_linear",
    "flatten_maps",
    "label_subset_study",
    "linear_layer_probe",
    "longest_syllable",
    "max_pool_time",
    "mfcc_maps",
    "model_maps",
    "pad_centred",
    "padded_syllables",
    "run_thesis_probes",
]

log = logging.getLogger("vgim")

#: The fixed syllable length of the thesis's draft (the longest syllable of its segmentation), 550 ms.
THESIS_PAD_SAMPLES = 8800
#: Labelled syllables per class in the label-subset study.
THESIS_LABEL_COUNTS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class ThesisProbeConfig:
    """Settings of the thesis protocol.

    Attributes
    ----------
    pad_samples
        The fixed length every syllable is padded to (16 kHz samples); 0: the longest syllable of the
        corpus (train and test words). Longer syllables are centre-cropped (counted, with a warning).
    epochs, lr, batch_size
        Training of the linear layer: Adam, no scheduler, cross-entropy, shuffled minibatches.
    encode_batch
        Padded syllables per forward pass of the encoder.
    standardise
        Standardise every feature dimension with the training syllables' mean and std (off: the thesis).
    label_counts
        Labelled syllables per class in :func:`label_subset_study`.
    """

    pad_samples: int = THESIS_PAD_SAMPLES
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 64
    encode_batch: int = 64
    standardise: bool = False
    label_counts: tuple[int, ...] = THESIS_LABEL_COUNTS

    def __post_init__(self) -> None:
        if self.pad_samples < 0:
            raise ValueError(f"pad_samples must be >= 0 (0: the longest syllable), got {self.pad_samples}")
        for name in ("epochs", "batch_size", "encode_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if any(n < 1 for n in self.label_counts):
            raise ValueError(f"label_counts must be >= 1, got {self.label_counts}")


@dataclass(frozen=True)
class ThesisTask:
    """One probe of the protocol: label ``key`` (one ``"-"``-separated entry per syllable), the map
    ``"flatten"``-ed or ``"max"``-pooled over time, a linear layer with or without bias, on every module
    or on module 1 only."""

    name: str
    key: str
    features: Literal["flatten", "max"]
    bias: bool
    first_module_only: bool


THESIS_PROTOCOL_TASKS: tuple[ThesisTask, ...] = (
    ThesisTask("syllable", "syllables", "flatten", bias=True, first_module_only=False),
    ThesisTask("vowel", "vowels", "max", bias=False, first_module_only=True),
    ThesisTask("consonant", "consonants", "flatten", bias=True, first_module_only=False),
)


@dataclass
class PaddedSyllables:
    """Every syllable of a corpus, cut out and padded: ``waves [N, length]`` float32 and, per label key,
    ``labels[key] [N]`` (str); ``n_cropped`` syllables were longer than ``length`` and centre-cropped."""

    waves: np.ndarray
    labels: dict[str, np.ndarray]
    length: int
    n_cropped: int


@dataclass
class ThesisMaps:
    """One feature map of the padded syllables: ``train [N, C, T]``, ``test [M, C, T]``; ``first_module``
    marks module 1 (and MFCC), the map the vowel probe reads."""

    train: np.ndarray
    test: np.ndarray
    first_module: bool


@dataclass
class LinearFit:
    """A trained linear probe: the layer, its classes (output order) and its score on the test set."""

    layer: nn.Linear
    classes: list[str]
    result: ProbeResult


@dataclass
class SubsetPoint:
    """One point of the label-subset study: ``features`` trained on ``labels_per_class`` syllables per
    class (seed ``seed``) and scored on the full test set."""

    features: str
    labels_per_class: int
    seed: int
    accuracy: float
    n_train: int


def pad_centred(wave: np.ndarray, length: int) -> tuple[np.ndarray, bool]:
    """``wave [n]`` zero-padded at both ends to ``[length]`` (the extra sample, if odd, at the end), or
    centre-cropped when longer; returns ``(padded, cropped)``."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    w = np.asarray(wave, dtype=np.float32)
    if w.ndim != 1:
        raise ValueError(f"expected a waveform of shape [samples], got {w.shape}")
    n = w.shape[0]
    if n > length:
        start = (n - length) // 2
        return w[start : start + length].copy(), True
    out = np.zeros(length, dtype=np.float32)
    left = (length - n) // 2
    out[left : left + n] = w
    return out, False


def longest_syllable(corpora: Sequence[AudioCorpus]) -> int:
    """The length in samples of the longest syllable segment of ``corpora``."""
    lengths = [e - s for c in corpora for u in c.utterances for s, e in (u.segments or [])]
    if not lengths:
        raise ValueError("no syllable segments in the corpus (load it segmented)")
    return int(max(lengths))


def padded_syllables(
    corpus: AudioCorpus, length: int, keys: Sequence[str] = ("syllables", "vowels", "consonants")
) -> PaddedSyllables:
    """Cut every syllable segment out of its word and :func:`pad_centred` it to ``length`` samples.

    The corpus must be at 16 kHz and segmented; ``keys`` are per-syllable labels (``"ba-bi-di"``).
    Syllables longer than ``length`` are centre-cropped and counted, with one warning.
    """
    if corpus.sample_rate != SAMPLE_RATE:
        raise ValueError(f"the thesis protocol needs a 16 kHz corpus, got {corpus.sample_rate} Hz")
    segments = [u.segments for u in corpus.utterances]
    labels = {k: probe_labels([u.labels for u in corpus.utterances], segments, k, "segment") for k in keys}
    waves: list[np.ndarray] = []
    n_cropped = 0
    for wave, seg in zip(corpus.waves, segments, strict=True):
        for start, end in seg or []:
            padded, cropped = pad_centred(wave[start:end], length)
            waves.append(padded)
            n_cropped += cropped
    if n_cropped:
        log.warning("%d of %d syllables are longer than %d samples: centre-cropped", n_cropped, len(waves), length)
    stacked = np.stack(waves) if waves else np.zeros((0, length), dtype=np.float32)
    return PaddedSyllables(stacked, labels, length, n_cropped)


@torch.no_grad()
def encode_padded(model: Stack, waves: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Every module's map of every padded syllable, ``[N, channels, T_m]`` float32 per module.

    Runs ``model``'s forward on batches of ``[batch, 1, length]`` in eval mode without sampling
    (variational modules give ``mu``; the representation ``c`` of :class:`~vgim.model.stack.ModuleOutput`),
    the same as :meth:`Stack.encode_wave` on each syllable alone. The training mode is restored.
    """
    x_all = np.asarray(waves, dtype=np.float32)
    if x_all.ndim != 2:
        raise ValueError(f"expected padded waves [N, samples], got shape {x_all.shape}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    per_module: list[list[np.ndarray]] = [[] for _ in range(model.n_modules)]
    try:
        for start in range(0, x_all.shape[0], batch_size):
            x = torch.from_numpy(x_all[start : start + batch_size]).to(device)[:, None, :]
            for m, out in enumerate(model(x, sample=False)):
                per_module[m].append(out.c.transpose(1, 2).float().cpu().numpy())
    finally:
        model.train(was_training)
    frames = model.n_frames(x_all.shape[1])
    return [
        np.concatenate(p) if p else np.zeros((0, model.block(m).out_channels, frames[m]), dtype=np.float32)
        for m, p in enumerate(per_module)
    ]


def mfcc_maps(waves: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The MFCC baseline as a map of the padded syllable: its MFCC frames (13 + deltas, 10 ms hop;
    :func:`~vgim.evaluate.baselines.mfcc_features`) as ``[N, 39, T]``."""
    return np.stack([mfcc_features(w, sample_rate).T for w in waves]).astype(np.float32)


def flatten_maps(maps: np.ndarray) -> np.ndarray:
    """``[N, C, T]`` -> ``[N, C * T]`` (channel-major, as ``tensor.view(N, -1)`` of the map)."""
    if maps.ndim != 3:
        raise ValueError(f"expected maps [N, channels, frames], got shape {maps.shape}")
    return maps.reshape(maps.shape[0], -1)


def max_pool_time(maps: np.ndarray) -> np.ndarray:
    """``[N, C, T]`` -> ``[N, C]``: each channel's maximum over the frames."""
    if maps.ndim != 3:
        raise ValueError(f"expected maps [N, channels, frames], got shape {maps.shape}")
    return maps.max(axis=2)


def fit_linear(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, bias: bool = True, cfg: ThesisProbeConfig, seed: int = 0
) -> nn.Linear:
    """A linear layer ``[D] -> [n_classes]`` trained on ``x [N, D]``, integer labels ``y [N]``.

    Cross-entropy, Adam (``cfg.lr``, no scheduler), ``cfg.epochs`` epochs of shuffled minibatches of
    ``cfg.batch_size``. The initialisation and the order are drawn from ``seed`` (the global torch RNG
    is left as it was).
    """
    from vgim.evaluate.linear import fit_classifier

    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"expected x [N, D] and y [N], got {x.shape} and {y.shape}")
    clf = fit_classifier(
        x,
        y,
        n_classes,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=seed,
        standardise=False,
        init="torch",
        bias=bias,
    )
    return clf.model.eval()


def linear_layer_probe(
    x_train: np.ndarray,
    y_train: Sequence[str] | np.ndarray,
    x_test: np.ndarray,
    y_test: Sequence[str] | np.ndarray,
    *,
    cfg: ThesisProbeConfig,
    bias: bool = True,
    seed: int = 0,
    task: str = "",
    features: str = "",
) -> LinearFit:
    """Train :func:`fit_linear` on ``(x_train, y_train)`` and score it on ``(x_test, y_test)``.

    With ``cfg.standardise`` each dimension is standardised with the training mean and std first. Test
    labels never seen in training count as errors.
    """
    xtr = np.asarray(x_train, dtype=np.float32)
    xte = np.asarray(x_test, dtype=np.float32)
    ytr, yte = np.asarray(y_train).astype(str), np.asarray(y_test).astype(str)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"x_train {xtr.shape} and x_test {xte.shape} must be [N, D] with the same D")
    if xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0] or xte.shape[0] == 0:
        raise ValueError(f"features and labels differ in length, or the test set is empty ({features} {task})")
    if not (np.all(np.isfinite(xtr)) and np.all(np.isfinite(xte))):
        raise ValueError(f"features contain NaN or inf ({features} {task})")
    classes = sorted(set(ytr.tolist()))
    if len(classes) < 2:
        raise ValueError(f"the probe needs 2 classes in training, got {classes} ({features} {task})")
    if cfg.standardise:
        mean, std = xtr.mean(axis=0), xtr.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
    index = {c: i for i, c in enumerate(classes)}
    layer = fit_linear(xtr, np.array([index[c] for c in ytr]), len(classes), bias=bias, cfg=cfg, seed=seed)
    with torch.no_grad():
        pred_idx = layer(torch.from_numpy(np.ascontiguousarray(xte))).argmax(dim=1).numpy()
    pred = np.asarray(classes)[pred_idx]
    _, counts = np.unique(yte, return_counts=True)
    result = ProbeResult(
        task=task,
        features=features,
        accuracy=float(np.mean(pred == yte)),
        macro_f1=float(f1_score(yte, pred, average="macro", zero_division=0)),
        n_train=int(xtr.shape[0]),
        n_test=int(xte.shape[0]),
        n_classes=len(classes),
        chance=float(counts.max() / yte.shape[0]),
    )
    return LinearFit(layer, classes, result)


def model_maps(
    model: Stack, train: PaddedSyllables, test: PaddedSyllables, name: str, batch: int
) -> dict[str, ThesisMaps]:
    """``{"<name> m1": ThesisMaps, ...}``: every module's maps of the padded train and test syllables."""
    tr, te = encode_padded(model, train.waves, batch), encode_padded(model, test.waves, batch)
    return {f"{name} m{m + 1}": ThesisMaps(tr[m], te[m], m == 0) for m in range(model.n_modules)}


def _task_features(maps: np.ndarray, task: ThesisTask) -> np.ndarray:
    return flatten_maps(maps) if task.features == "flatten" else max_pool_time(maps)


def run_thesis_probes(
    maps: Mapping[str, ThesisMaps],
    train: PaddedSyllables,
    test: PaddedSyllables,
    *,
    cfg: ThesisProbeConfig,
    seed: int = 0,
    tasks: Sequence[ThesisTask] = THESIS_PROTOCOL_TASKS,
) -> list[ProbeResult]:
    """Every task of ``tasks`` on every map of ``maps`` (module-1-only tasks on the first-module maps),
    in map then task order."""
    results: list[ProbeResult] = []
    for name, m in maps.items():
        for task in tasks:
            if task.first_module_only and not m.first_module:
                continue
            fit = linear_layer_probe(
                _task_features(m.train, task),
                train.labels[task.key],
                _task_features(m.test, task),
                test.labels[task.key],
                cfg=cfg,
                bias=task.bias,
                seed=seed,
                task=task.name,
                features=name,
            )
            results.append(fit.result)
    return results


def draw_per_class(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` examples of every class of ``y``, drawn without replacement (sorted); a
    ValueError when a class has fewer than ``n``."""
    labels = np.asarray(y).astype(str)
    picked: list[np.ndarray] = []
    for cls in sorted(set(labels.tolist())):
        where = np.flatnonzero(labels == cls)
        if where.size < n:
            raise ValueError(f"class {cls!r} has {where.size} examples, fewer than {n}")
        picked.append(rng.choice(where, size=n, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def label_subset_study(
    maps: Mapping[str, ThesisMaps],
    train: PaddedSyllables,
    test: PaddedSyllables,
    *,
    cfg: ThesisProbeConfig,
    seed: int = 0,
    key: str = "syllables",
) -> list[SubsetPoint]:
    """The flattened syllable probe of every map trained on ``n`` labelled syllables per class for each
    ``n`` of ``cfg.label_counts`` (drawn from ``seed``, the same syllables for every map) and scored on
    the full test set. Counts above the smallest class's size are left out (logged)."""
    y = train.labels[key]
    smallest = int(np.unique(y, return_counts=True)[1].min())
    counts = [n for n in cfg.label_counts if n <= smallest]
    if len(counts) < len(cfg.label_counts):
        log.info("label subsets: the smallest class has %d syllables; counts above are left out", smallest)
    draws = {n: draw_per_class(y, n, np.random.default_rng([seed, n])) for n in counts}
    points: list[SubsetPoint] = []
    for name, m in maps.items():
        x_train, x_test = flatten_maps(m.train), flatten_maps(m.test)
        for n, idx in draws.items():
            fit = linear_layer_probe(x_train[idx], y[idx], x_test, test.labels[key], cfg=cfg, seed=seed, features=name)
            points.append(SubsetPoint(name, n, seed, fit.result.accuracy, int(idx.size)))
    return points
