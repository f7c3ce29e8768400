"""Linear probes on pooled frame-level features.

A probe is a standardised multinomial logistic regression trained on frozen
features of the training utterances and scored on the test utterances.
Utterance-level tasks (e.g. speaker) pool all frames of an utterance;
segment-level tasks (e.g. syllable, vowel, consonant) pool the frames of each
syllable segment, with one "-"-separated label entry per segment.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from vgim.evaluate.pooling import FrameInfo, pool_features

__all__ = [
    "DEFAULT_TASKS",
    "SEGMENT_SEPARATOR",
    "FeatureSet",
    "ProbeLevel",
    "ProbeResult",
    "ProbeTask",
    "available_tasks",
    "linear_probe",
    "pool_features",
    "probe_dataset",
    "probe_labels",
    "run_probes",
]

ProbeLevel = Literal["utterance", "segment"]
SEGMENT_SEPARATOR = "-"

#: ``(train features per utterance, test features per utterance, frame geometry)``
FeatureSet = tuple[Sequence[np.ndarray], Sequence[np.ndarray], FrameInfo]
Segments = Sequence[tuple[int, int]]


@dataclass
class ProbeResult:
    """Score of one linear probe.

    Attributes
    ----------
    task : str
        Task name (e.g. ``"syllable"``).
    features : str
        Feature-set name (e.g. ``"mfcc"``, ``"vgim/module2"``).
    accuracy : float
        Test accuracy in ``[0, 1]``.
    macro_f1 : float
        Unweighted mean F1 over the classes present in the test labels or predictions.
    n_train, n_test : int
        Number of training / test examples.
    n_classes : int
        Number of classes seen in training (the classifier's outputs).
    chance : float
        Majority-class share of the test set.
    """

    task: str
    features: str
    accuracy: float
    macro_f1: float
    n_train: int
    n_test: int
    n_classes: int
    chance: float


@dataclass(frozen=True)
class ProbeTask:
    """A probing task.

    Attributes
    ----------
    name : str
        Name shown in tables (e.g. ``"syllable"``).
    key : str
        Label key in each utterance's ``labels`` dict (e.g. ``"syllables"``).
    level : {"utterance", "segment"}
        ``"segment"``: ``labels[key]`` is a ``"-"``-separated list with one entry per
        segment; ``"utterance"``: ``labels[key]`` is the utterance's label.
    """

    name: str
    key: str
    level: ProbeLevel

    def __post_init__(self) -> None:
        if self.level not in ("utterance", "segment"):
            raise ValueError(f"ProbeTask.level must be 'utterance' or 'segment', got {self.level!r}")


#: Tasks for the embedded synthetic corpus.
DEFAULT_TASKS: tuple[ProbeTask, ...] = (
    ProbeTask("syllable", "syllables", "segment"),
    ProbeTask("vowel", "vowels", "segment"),
    ProbeTask("consonant", "consonants", "segment"),
    ProbeTask("speaker", "speaker", "utterance"),
)


def _as_labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr.astype(str)


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n_examples, dim], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def linear_probe(
    x_train: np.ndarray,
    y_train: Sequence[str] | np.ndarray,
    x_test: np.ndarray,
    y_test: Sequence[str] | np.ndarray,
    *,
    task: str = "",
    features: str = "",
    c: float = 1.0,
    seed: int = 0,
    max_iter: int = 2000,
) -> ProbeResult:
    """Train a linear probe and score it on held-out data.

    The probe is ``Pipeline(StandardScaler, LogisticRegression)`` (L2, lbfgs,
    multinomial loss for 3+ classes). Test labels that never occur in training
    cannot be predicted and therefore count as errors (they lower accuracy and
    contribute an F1 of 0 to the macro average).

    Parameters
    ----------
    x_train : np.ndarray
        ``[N_train, D]`` training features.
    y_train : sequence of str
        ``[N_train]`` training labels.
    x_test : np.ndarray
        ``[N_test, D]`` test features.
    y_test : sequence of str
        ``[N_test]`` test labels.
    task, features : str
        Names copied into the result.
    c : float
        Inverse L2 regularisation strength (``C`` of scikit-learn), > 0.
    seed : int
        Random state of the classifier (lbfgs itself is deterministic).
    max_iter : int
        Maximum lbfgs iterations.

    Returns
    -------
    ProbeResult

    Raises
    ------
    ValueError
        On shape mismatches, non-finite features, empty test set, ``c <= 0`` or
        fewer than 2 classes in the training labels.
    """
    xtr = _as_matrix(x_train, "x_train")
    xte = _as_matrix(x_test, "x_test")
    ytr = _as_labels(y_train, "y_train")
    yte = _as_labels(y_test, "y_test")
    where = f" (task={task!r}, features={features!r})" if task or features else ""
    if xtr.shape[0] != ytr.shape[0]:
        raise ValueError(f"x_train has {xtr.shape[0]} rows but y_train has {ytr.shape[0]} labels{where}")
    if xte.shape[0] != yte.shape[0]:
        raise ValueError(f"x_test has {xte.shape[0]} rows but y_test has {yte.shape[0]} labels{where}")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"x_train has dimension {xtr.shape[1]} but x_test has dimension {xte.shape[1]}{where}")
    if xte.shape[0] == 0:
        raise ValueError(f"empty test set{where}")
    if not c > 0:
        raise ValueError(f"c must be > 0, got {c}")
    classes = np.unique(ytr)
    if classes.size < 2:
        raise ValueError(
            f"linear probe needs at least 2 classes in the training labels, got {classes.size} "
            f"({classes.tolist()}) from {ytr.shape[0]} examples{where}"
        )

    model: Pipeline = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter, random_state=seed),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(xtr.astype(np.float64, copy=False), ytr)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        warnings.warn(
            f"linear probe did not converge in {max_iter} iterations{where}",
            ConvergenceWarning,
            stacklevel=2,
        )
    pred = model.predict(xte.astype(np.float64, copy=False))
    _, counts = np.unique(yte, return_counts=True)
    return ProbeResult(
        task=task,
        features=features,
        accuracy=float(accuracy_score(yte, pred)),
        macro_f1=float(f1_score(yte, pred, average="macro", zero_division=0)),
        n_train=int(xtr.shape[0]),
        n_test=int(xte.shape[0]),
        n_classes=int(classes.size),
        chance=float(counts.max() / yte.shape[0]),
    )


def probe_labels(
    labels: Sequence[Mapping[str, str]],
    segments: Sequence[Segments | None],
    key: str,
    level: ProbeLevel,
) -> np.ndarray:
    """Labels of the probe examples built by :func:`pool_features`.

    Parameters
    ----------
    labels : sequence of dict
        ``[U]`` label dicts.
    segments : sequence of (list of (int, int)) or None
        ``[U]`` segments per utterance (segment level only).
    key : str
        Label key.
    level : {"utterance", "segment"}
        For ``"segment"``, ``labels[u][key]`` is split on ``"-"`` and must have one
        entry per segment.

    Returns
    -------
    np.ndarray
        ``[N]`` str labels.

    Raises
    ------
    ValueError
        Naming the utterance index when the key is missing, segments are missing or
        the number of entries differs from the number of segments.
    """
    if level not in ("utterance", "segment"):
        raise ValueError(f"level must be 'utterance' or 'segment', got {level!r}")
    if level == "segment" and len(segments) != len(labels):
        raise ValueError(f"got {len(labels)} label dicts but {len(segments)} segment lists")
    out: list[str] = []
    for u, lab in enumerate(labels):
        if key not in lab:
            raise ValueError(f"utterance {u}: missing label {key!r} (has {sorted(lab)})")
        value = str(lab[key])
        if level == "utterance":
            out.append(value)
            continue
        seg = segments[u]
        if seg is None:
            raise ValueError(f"utterance {u}: segment-level label {key!r} but the utterance has no segments")
        entries = value.split(SEGMENT_SEPARATOR)
        if len(entries) != len(seg):
            raise ValueError(
                f"utterance {u}: label {key!r}={value!r} has {len(entries)} entries "
                f"but the utterance has {len(seg)} segments"
            )
        out.extend(entries)
    return np.asarray(out, dtype=str)


def probe_dataset(
    features: Sequence[np.ndarray],
    frames: FrameInfo,
    labels: Sequence[Mapping[str, str]],
    segments: Sequence[Segments | None],
    task: str,
    level: ProbeLevel,
    pool: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    """Build a probe dataset from per-utterance frame features.

    Parameters
    ----------
    features : sequence of np.ndarray
        ``[U]`` arrays ``[T_u, C]``.
    frames : FrameInfo
        Frame geometry of the features.
    labels : sequence of dict
        ``[U]`` label dicts.
    segments : sequence of (list of (int, int)) or None
        ``[U]`` syllable segments ``(start, end)`` in samples (end exclusive); may be
        ``None`` for utterance-level tasks.
    task : str
        Label key (e.g. ``"syllables"`` or ``"speaker"``).
    level : {"utterance", "segment"}
        ``"utterance"``: one example per utterance, label ``labels[u][task]``.
        ``"segment"``: one example per segment, labels from ``labels[u][task]``
        split on ``"-"`` (e.g. ``"ba-di-gu"`` -> ``ba``, ``di``, ``gu``).
    pool : {"mean", "max", "last", "meanstd", "thirds"}
        Pooling mode.

    Returns
    -------
    x : np.ndarray
        ``[N, C']`` pooled features.
    y : np.ndarray
        ``[N]`` str labels.

    Raises
    ------
    ValueError
        On length mismatches between the inputs, or (naming the utterance index) a
        missing label, missing segments, or a segment/label-entry count mismatch.
    """
    if len(labels) != len(features):
        raise ValueError(f"got {len(features)} feature arrays but {len(labels)} label dicts")
    if len(segments) != len(features):
        raise ValueError(f"got {len(features)} feature arrays but {len(segments)} segment lists")
    y = probe_labels(labels, segments, task, level)
    x = pool_features(features, frames, segments, level, pool)
    return x, y


def available_tasks(
    tasks: Sequence[ProbeTask],
    labels: Sequence[Mapping[str, str]],
    segments: Sequence[Segments | None],
) -> list[ProbeTask]:
    """The tasks whose labels (and, for segment tasks, segments) every utterance has.

    Parameters
    ----------
    tasks : sequence of ProbeTask
        Candidate tasks.
    labels : sequence of dict
        ``[U]`` label dicts.
    segments : sequence of (list of (int, int)) or None
        ``[U]`` segments per utterance.

    Returns
    -------
    list of ProbeTask
        The subset of ``tasks`` (in order) that :func:`probe_labels` can serve.
    """
    out = []
    for t in tasks:
        if not labels or not all(t.key in lab for lab in labels):
            continue
        if t.level == "segment" and (len(segments) != len(labels) or any(s is None for s in segments)):
            continue
        out.append(t)
    return out


def run_probes(
    feature_sets: Mapping[str, FeatureSet],
    train_labels: Sequence[Mapping[str, str]],
    train_segments: Sequence[Segments | None],
    test_labels: Sequence[Mapping[str, str]],
    test_segments: Sequence[Segments | None],
    tasks: Sequence[ProbeTask] = DEFAULT_TASKS,
    *,
    pool: str = "mean",
    seed: int = 0,
    c: float = 1.0,
    max_iter: int = 2000,
) -> list[ProbeResult]:
    """Run every task on every feature set.

    Pooled features are computed once per feature set and level and shared by all
    tasks of that level; labels are computed once per task.

    Parameters
    ----------
    feature_sets : mapping of str to (train feats, test feats, FrameInfo)
        Name -> (``[U_train]`` arrays ``[T_u, C]``, ``[U_test]`` arrays ``[T_u, C]``,
        frame geometry). The name is the row of :func:`results_table`.
    train_labels, test_labels : sequence of dict
        Label dicts of the train / test utterances.
    train_segments, test_segments : sequence of (list of (int, int)) or None
        Syllable segments of the train / test utterances.
    tasks : sequence of ProbeTask
        Tasks to run (default :data:`DEFAULT_TASKS`).
    pool : {"mean", "max", "last", "meanstd", "thirds"}
        Pooling mode.
    seed, c, max_iter
        Passed to :func:`linear_probe`.

    Returns
    -------
    list of ProbeResult
        Ordered by feature set, then task.
    """
    if len(train_segments) != len(train_labels):
        raise ValueError(f"{len(train_labels)} train label dicts but {len(train_segments)} segment lists")
    if len(test_segments) != len(test_labels):
        raise ValueError(f"{len(test_labels)} test label dicts but {len(test_segments)} segment lists")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate task names: {names}")

    y_cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for t in tasks:
        try:
            y_cache[(t.key, t.level)] = (
                probe_labels(train_labels, train_segments, t.key, t.level),
                probe_labels(test_labels, test_segments, t.key, t.level),
            )
        except ValueError as err:
            raise ValueError(f"task {t.name!r}: {err}") from err

    results: list[ProbeResult] = []
    for fname, (train_feats, test_feats, frames) in feature_sets.items():
        if len(train_feats) != len(train_labels):
            raise ValueError(
                f"feature set {fname!r}: {len(train_feats)} train feature arrays "
                f"but {len(train_labels)} train utterances"
            )
        if len(test_feats) != len(test_labels):
            raise ValueError(
                f"feature set {fname!r}: {len(test_feats)} test feature arrays but {len(test_labels)} test utterances"
            )
        x_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for t in tasks:
            if t.level not in x_cache:
                try:
                    x_cache[t.level] = (
                        pool_features(train_feats, frames, train_segments, t.level, pool),
                        pool_features(test_feats, frames, test_segments, t.level, pool),
                    )
                except ValueError as err:
                    raise ValueError(f"feature set {fname!r}, {t.level} level: {err}") from err
            x_tr, x_te = x_cache[t.level]
            y_tr, y_te = y_cache[(t.key, t.level)]
            results.append(
                linear_probe(x_tr, y_tr, x_te, y_te, task=t.name, features=fname, c=c, seed=seed, max_iter=max_iter)
            )
    return results
