"""Evaluate representations: every module of a model (and the baselines) probed on one split.

Baselines use the same split, pooling and probe: MFCC features and a randomly initialised encoder of the
same architecture as the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from vgim.data.corpus import AudioCorpus
from vgim.evaluate.baselines import mfcc_features, mfcc_frames
from vgim.evaluate.probes import (
    DEFAULT_TASKS,
    SEGMENT_SEPARATOR,
    FeatureSet,
    ProbeResult,
    ProbeTask,
    available_tasks,
    probe_labels,
    run_probes,
)
from vgim.frames import SAMPLE_RATE
from vgim.model.stack import Stack

__all__ = [
    "EvaluationSplit",
    "corpus_features",
    "evaluate_models",
    "label_tasks",
    "mfcc_feature_set",
    "model_feature_sets",
    "one_thread",
    "train_test_split",
    "validation_split",
]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch, BLAS and OpenMP on one thread (restored afterwards), with denormal floats flushed to zero.

    The same features and probe fits then come out bit for bit whichever thread settings the caller has:
    a convolution's float sums, and the BLAS products inside the probe's solver, are ordered by the thread
    count (about 1e-7 apart on the ``*-small`` presets), and an lbfgs fit amplifies that into a few test
    examples changing class. Training flushes denormals (:func:`vgim.train.loop.train`), so a process that
    trained would otherwise extract slightly different features than one that only loads the model (the
    flush stays on afterwards: torch cannot tell its previous setting).
    """
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class EvaluationSplit:
    """The probe's training and test utterances (e.g. ``corpus.subset("train")`` / ``subset("test")``)."""

    train: AudioCorpus
    test: AudioCorpus


def validation_split(train: AudioCorpus, every: int = 5) -> EvaluationSplit:
    """Probe split for choosing settings without the test words: every ``every``-th training utterance (in
    corpus order) is held out as validation, the probe is fitted on the others."""
    if every < 2 or len(train) < every:
        raise ValueError(f"cannot hold out every {every}-th of {len(train)} utterances for validation")

    def part(keep: bool) -> AudioCorpus:
        chosen = [i for i in range(len(train)) if (i % every == 0) != keep]
        return AudioCorpus([train.utterances[i] for i in chosen], [train.waves[i] for i in chosen], train.sample_rate)

    return EvaluationSplit(part(True), part(False))


def train_test_split(corpus: AudioCorpus, seed: int) -> tuple[AudioCorpus, AudioCorpus, str]:
    """(train, test, how): the corpus's train/test splits, or a seeded 80/20 split by utterance.

    ``how`` says which, in words (the report shows it).
    """
    splits = corpus.splits()
    if "train" in splits and "test" in splits:
        return corpus.subset("train"), corpus.subset("test"), "the corpus's own train/test split"
    n = len(corpus)
    if n < 2:
        return corpus, corpus, "a single utterance (train and test are the same)"
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(0.2 * n))
    test_idx, train_idx = sorted(order[:n_test].tolist()), sorted(order[n_test:].tolist())

    def pick(idx: list[int], split: str) -> AudioCorpus:
        utts = [dataclasses.replace(corpus.utterances[i], split=split) for i in idx]
        return AudioCorpus(utts, [corpus.waves[i] for i in idx], corpus.sample_rate, list(corpus.skipped))

    how = f"no train/test split in the corpus: a seeded random 80/20 split by utterance ({n - n_test}/{n_test})"
    return pick(train_idx, "train"), pick(test_idx, "test"), how


def corpus_features(
    model: Stack, waves: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE
) -> list[list[np.ndarray]]:
    """Per module, the ``[time, channels]`` features of every waveform (deterministic: means, no sampling)."""
    per_module: list[list[np.ndarray]] = [[] for _ in range(model.n_modules)]
    for wave in waves:
        for m, f in enumerate(model.extract_features(wave, sample_rate)):
            per_module[m].append(f.float().cpu().numpy())
    return per_module


def model_feature_sets(model: Stack, split: EvaluationSplit, name: str) -> dict[str, FeatureSet]:
    """``{"<name> m1": (train features, test features, frames), ...}`` for every module of ``model``."""
    train = corpus_features(model, split.train.waves, split.train.sample_rate)
    test = corpus_features(model, split.test.waves, split.test.sample_rate)
    return {f"{name} m{m + 1}": (train[m], test[m], model.frames[m]) for m in range(model.n_modules)}


def mfcc_feature_set(split: EvaluationSplit) -> dict[str, FeatureSet]:
    sr = split.train.sample_rate
    train = [mfcc_features(w, sr) for w in split.train.waves]
    test = [mfcc_features(w, sr) for w in split.test.waves]
    return {"MFCC": (train, test, mfcc_frames(sr))}


def random_init_model(model: Stack, seed: int = 0) -> Stack:
    """An untrained encoder with ``model``'s architecture (the random-init baseline)."""
    torch.manual_seed(seed)
    return Stack(model.cfg).eval()


def evaluate_models(
    models: dict[str, Stack],
    split: EvaluationSplit,
    *,
    tasks: Sequence[ProbeTask] = DEFAULT_TASKS,
    baselines: bool = True,
    pool: str = "mean",
    seed: int = 0,
) -> list[ProbeResult]:
    """Probe every module of every model (plus MFCC and a random-init copy of the first model) for every
    task the corpus has labels for. Rows come out in order: MFCC, random init, then each model. With several
    models the random-init rows are named after the model whose architecture they copy
    (``random init (V-GIM) m1``).

    Runs on one thread (:func:`one_thread`), so one probe of one run gives one number wherever it is
    computed: ``vgim demo``'s ``results.md``, ``vgim probe`` and the report page.
    """
    with one_thread():
        return _evaluate_models(models, split, tasks=tasks, baselines=baselines, pool=pool, seed=seed)


def _evaluate_models(
    models: dict[str, Stack],
    split: EvaluationSplit,
    *,
    tasks: Sequence[ProbeTask],
    baselines: bool,
    pool: str,
    seed: int,
) -> list[ProbeResult]:
    feature_sets: dict[str, FeatureSet] = {}
    if baselines:
        feature_sets |= mfcc_feature_set(split)
        first_name, first = next(iter(models.items()))
        # With several models the baseline says whose architecture it is, so that a page probing another
        # model's random init (a report) never shows a different number under the same row name.
        label = "random init" if len(models) == 1 else f"random init ({first_name})"
        feature_sets |= model_feature_sets(random_init_model(first, seed), split, label)
    for name, model in models.items():
        feature_sets |= model_feature_sets(model, split, name)
    train_labels = [u.labels for u in split.train.utterances]
    test_labels = [u.labels for u in split.test.utterances]
    train_segments = [u.segments for u in split.train.utterances]
    test_segments = [u.segments for u in split.test.utterances]
    usable = available_tasks(tasks, train_labels + test_labels, train_segments + test_segments)
    if not usable:
        raise ValueError(
            f"none of the probe tasks {[t.name for t in tasks]} has labels in this corpus "
            "(check the manifest columns or the label pattern)"
        )
    return run_probes(
        feature_sets, train_labels, train_segments, test_labels, test_segments, usable, pool=pool, seed=seed
    )


def label_tasks(split: EvaluationSplit, names: Sequence[str] = ()) -> tuple[list[ProbeTask], list[str]]:
    """The probe tasks of every label of ``split`` (or of those named), and a note per label left out.

    A label of :data:`DEFAULT_TASKS` keeps its task (``syllables`` is the segment-level ``syllable`` task);
    any other label is an utterance-level task named after it, or a segment-level one when every utterance
    has segments and one ``"-"``-separated entry per segment. A task needs its label on every utterance
    of both splits (an empty manifest cell is no label), two classes among the training labels and a test
    label that occurs in training (the synthetic corpus's ``word`` is held out by design: never probed).
    ``names`` picks tasks by name or label key; an unknown one raises ValueError listing the labels.
    """
    utts = split.train.utterances + split.test.utterances
    keys: list[str] = []
    for u in utts:
        keys += [k for k in u.labels if k not in keys]
    known = {t.key: t for t in DEFAULT_TASKS}
    candidates: list[ProbeTask] = []
    for key in keys:
        if key in known:
            candidates.append(known[key])
            continue
        segmented = all(
            u.segments is not None and len(u.labels.get(key, "").split(SEGMENT_SEPARATOR)) == len(u.segments)
            for u in utts
        )
        per_segment = segmented and any(SEGMENT_SEPARATOR in u.labels.get(key, "") for u in utts)
        candidates.append(ProbeTask(key, key, "segment" if per_segment else "utterance"))
    if names:
        wanted = list(dict.fromkeys(names))
        unknown = [n for n in wanted if not any(n in (t.name, t.key) for t in candidates)]
        if unknown:
            listed = ", ".join(t.name for t in candidates) or "none"
            raise ValueError(f"no label for task(s) {unknown} in this corpus; tasks: {listed}")
        candidates = [t for t in candidates if t.name in wanted or t.key in wanted]
    notes: list[str] = []
    usable: list[ProbeTask] = []
    segments = [u.segments for u in utts]
    for t in candidates:
        missing = sum(t.key not in u.labels for u in utts)
        if missing:
            notes.append(f"no {t.name} probe: {missing} of {len(utts)} utterances have no {t.key!r} label")
            continue
        if not available_tasks([t], [u.labels for u in utts], segments):
            notes.append(f"no {t.name} probe: it is per syllable and some utterances have no segments")
            continue
        try:
            y, y_test = (
                probe_labels([u.labels for u in part], [u.segments for u in part], t.key, t.level)
                for part in (split.train.utterances, split.test.utterances)
            )
        except ValueError as err:
            notes.append(f"no {t.name} probe: {err}")
            continue
        if np.unique(y).size < 2:
            notes.append(f"no {t.name} probe: the training split has one class only ({y[0] if y.size else 'none'})")
            continue
        if not np.isin(y_test, y).any():
            notes.append(f"no {t.name} probe: no test label occurs in training (the classes are held out)")
            continue
        usable.append(t)
    return usable, notes
