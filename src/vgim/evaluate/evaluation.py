"""Evaluate representations: every module of a model (and the baselines) probed on one split.

Baselines use the same split, pooling and probe: MFCC features and a randomly initialised encoder of the
same architecture as the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vgim.data.corpus import AudioCorpus
from vgim.evaluate.baselines import mfcc_features, mfcc_frames
from vgim.evaluate.probes import DEFAULT_TASKS, FeatureSet, ProbeResult, ProbeTask, available_tasks, run_probes
from vgim.model.stack import Stack

__all__ = [
    "EvaluationSplit",
    "corpus_features",
    "evaluate_models",
    "mfcc_feature_set",
    "model_feature_sets",
    "train_test_split",
    "validation_split",
]


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


def corpus_features(model: Stack, waves: Sequence[np.ndarray], sample_rate: int = 16000) -> list[list[np.ndarray]]:
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
    task the corpus has labels for. Rows come out in order: MFCC, random init, then each model."""
    feature_sets: dict[str, FeatureSet] = {}
    if baselines:
        feature_sets |= mfcc_feature_set(split)
        first = next(iter(models.values()))
        feature_sets |= model_feature_sets(random_init_model(first, seed), split, "random init")
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
