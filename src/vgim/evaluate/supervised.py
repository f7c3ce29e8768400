"""Supervised baselines: the same encoder trained with labels instead of InfoNCE.

``greedy=False`` trains the whole stack end to end through one classifier on the last module;
``greedy=True`` gives every module its own linear classifier and cuts the gradient between modules ("greedy
supervised" in the GIM paper). The encoder is then probed like any other: frozen, with a fresh linear probe
per module. Both trainers run the project's one training engine (:func:`vgim.train.train`) with the
``supervised`` head (:mod:`vgim.objective.supervised`) and differ only in how a batch and its labels are
drawn (step-seeded, so a run resumes exactly):

* :func:`train_supervised` (the thesis corpus): whole utterances, zero-padded; segment-level tasks (e.g.
  syllables) pool each segment's frames before the classifier, utterance-level tasks the whole utterance.
* :func:`train_supervised_crops` (LibriSpeech): random crops of long utterances; ``level="frame"`` classifies
  every module frame with the label of the 10 ms label frame its centre falls in (phones),
  ``level="utterance"`` the mean over a crop's frames (speakers).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vgim.config import Config, ObjectiveConfig, TrainConfig
from vgim.data.batches import IGNORE, Batch, Targets, step_rng
from vgim.data.corpus import AudioCorpus
from vgim.evaluate.probes import ProbeLevel, probe_labels
from vgim.model.stack import Stack

__all__ = ["CropLabelBatches", "UtteranceBatches", "supervised_config", "train_supervised", "train_supervised_crops"]

log = logging.getLogger("vgim")


def supervised_config(
    cfg: Config, n_classes: int, *, steps: int, batch_size: int, lr: float, greedy: bool, seed: int, device: str
) -> Config:
    """The training config of a supervised baseline of ``cfg.model``: the ``supervised`` head, end to end
    (``greedy=False``) or module by module with the gradient cut (``greedy=True``), no bottleneck penalty."""
    objective = ObjectiveConfig(head="supervised", options={"n_classes": n_classes}, beta=0.0)
    train_cfg = TrainConfig(
        mode="together" if greedy else "end_to_end",
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        checkpoint_every=max(1, steps),
        log_every=max(1, min(25, steps)),
        device=device,
    )
    name = f"{cfg.name}-supervised{'-greedy' if greedy else ''}"
    return dataclasses.replace(cfg, name=name, objective=objective, train=train_cfg)


def _fit(
    cfg: Config,
    n_classes: int,
    batches: UtteranceBatches | CropLabelBatches,
    *,
    steps: int,
    lr: float,
    greedy: bool,
    seed: int,
    progress: bool,
    device: str | torch.device,
    run_dir: str | Path | None,
) -> Stack:
    """Train with the engine into ``run_dir`` (a temporary folder when None); the encoder in eval mode."""
    import vgim
    from vgim.train.rundir import RunDir

    if steps < 0 or not lr > 0:
        raise ValueError(f"need steps >= 0 and lr > 0, got {steps} and {lr}")
    if n_classes < 2:
        raise ValueError(f"supervised training needs at least 2 classes, got {n_classes}")
    sup = supervised_config(
        cfg, n_classes, steps=steps, batch_size=batches.batch_size, lr=lr, greedy=greedy, seed=seed, device=str(device)
    )
    with tempfile.TemporaryDirectory(prefix="vgim-supervised-") as tmp:
        run = RunDir(run_dir if run_dir is not None else Path(tmp) / "run")
        if steps == 0:
            torch.manual_seed(seed)
            return Stack(cfg.model).to(device).eval()
        run.train_or_reuse(sup, lambda: batches, progress=progress)
        return vgim.load(run.path, device).eval()


class UtteranceBatches:
    """Whole utterances, zero-padded to the longest of the corpus, with utterance or segment labels."""

    def __init__(
        self,
        waves: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        segments: Sequence[Sequence[tuple[int, int]] | None],
        level: ProbeLevel,
        batch_size: int,
        seed: int,
    ) -> None:
        self.n_samples = max(w.shape[0] for w in waves)
        self.audio = np.zeros((len(waves), self.n_samples), dtype=np.float32)
        for i, w in enumerate(waves):
            self.audio[i, : w.shape[0]] = w
        self.lengths = np.array([w.shape[0] for w in waves], dtype=np.int64)
        self.labels, self.segments, self.level = list(labels), list(segments), level
        self.batch_size, self.seed = min(batch_size, len(waves)), seed

    def batch(self, step: int, rank: int = 0) -> Batch:
        idx = step_rng(self.seed, step, rank).integers(0, len(self.audio), size=self.batch_size)
        labels = torch.from_numpy(np.concatenate([self.labels[i] for i in idx]))
        lengths = torch.from_numpy(self.lengths[idx])
        if self.level == "utterance":
            targets = Targets("utterance", labels, lengths)
        else:
            segs = [(b, a, z) for b, i in enumerate(idx) for a, z in (self.segments[i] or [(0, int(self.lengths[i]))])]
            targets = Targets("segment", labels, lengths, segments=torch.tensor(segs, dtype=torch.long).view(-1, 3))
        return Batch(torch.from_numpy(self.audio[idx]).unsqueeze(1), targets=targets)


class CropLabelBatches:
    """Random crops of long utterances with frame labels (``label_hop`` samples each) or utterance labels."""

    def __init__(
        self,
        waves: Sequence[np.ndarray],
        frame_labels: Sequence[np.ndarray] | None,
        utterance_labels: np.ndarray | None,
        crop: int,
        batch_size: int,
        label_hop: int,
        seed: int,
    ) -> None:
        self.waves, self.frame_labels, self.utterance_labels = list(waves), frame_labels, utterance_labels
        self.crop, self.batch_size, self.label_hop, self.seed = crop, batch_size, label_hop, seed

    def batch(self, step: int, rank: int = 0) -> Batch:
        rng = step_rng(self.seed, step, rank)
        idx = rng.integers(0, len(self.waves), size=self.batch_size)
        audio = np.zeros((self.batch_size, self.crop), dtype=np.float32)
        starts = np.zeros(self.batch_size, dtype=np.int64)
        lengths = np.zeros(self.batch_size, dtype=np.int64)
        for b, i in enumerate(idx):
            w = self.waves[i]
            starts[b] = rng.integers(0, w.shape[0] - self.crop + 1) if w.shape[0] > self.crop else 0
            piece = w[starts[b] : starts[b] + self.crop]
            audio[b, : piece.shape[0]] = piece
            lengths[b] = piece.shape[0]
        x = torch.from_numpy(audio).unsqueeze(1)
        if self.utterance_labels is not None:
            targets = Targets("utterance", torch.from_numpy(self.utterance_labels[idx]), torch.from_numpy(lengths))
            return Batch(x, targets=targets)
        assert self.frame_labels is not None
        width = max(self.frame_labels[i].shape[0] for i in idx)
        labels = np.full((self.batch_size, max(width, 1)), IGNORE, dtype=np.int64)
        for b, i in enumerate(idx):
            labels[b, : self.frame_labels[i].shape[0]] = self.frame_labels[i]
        targets = Targets(
            "frame",
            torch.from_numpy(labels),
            torch.from_numpy(lengths),
            starts=torch.from_numpy(starts),
            frame_hop=self.label_hop,
        )
        return Batch(x, targets=targets)


def train_supervised(
    cfg: Config,
    corpus: AudioCorpus,
    *,
    task_key: str = "syllables",
    level: ProbeLevel = "segment",
    steps: int = 1000,
    batch_size: int = 16,
    lr: float = 1e-3,
    greedy: bool = False,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device = "cpu",
    run_dir: str | Path | None = None,
) -> Stack:
    """Train a :class:`Stack` with ``cfg.model``'s architecture to classify ``task_key`` on ``corpus``.

    Utterances are zero-padded to the longest one in the corpus (segments keep their positions). Returns
    the trained encoder in eval mode (the classifiers are discarded). A Gaussian bottleneck samples while
    training, as in V-GIM, with no KL term. ``run_dir``: train into this run directory (resumable, reused
    when finished with the same settings) instead of a temporary one.
    """
    if len(corpus) == 0:
        raise ValueError("train_supervised: the corpus is empty")
    segments = [u.segments for u in corpus.utterances]
    y_all = probe_labels([u.labels for u in corpus.utterances], segments, task_key, level)
    classes = sorted(set(y_all.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    per_utt: list[np.ndarray] = []
    pos = 0
    for seg in segments:
        n = 1 if level == "utterance" or seg is None else len(seg)
        per_utt.append(np.array([index[c] for c in y_all[pos : pos + n]]))
        pos += n

    batches = UtteranceBatches(corpus.waves, per_utt, segments, level, batch_size, seed)
    return _fit(
        cfg,
        len(classes),
        batches,
        steps=steps,
        lr=lr,
        greedy=greedy,
        seed=seed,
        progress=progress,
        device=device,
        run_dir=run_dir,
    )


def train_supervised_crops(
    cfg: Config,
    waves: Sequence[np.ndarray],
    labels: Sequence[np.ndarray] | Sequence[Hashable],
    *,
    level: Literal["frame", "utterance"],
    label_hop: int = 160,
    crop_samples: int | None = None,
    steps: int = 1000,
    batch_size: int | None = None,
    lr: float | None = None,
    greedy: bool = False,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device = "cpu",
    run_dir: str | Path | None = None,
) -> Stack:
    """Train a :class:`Stack` with ``cfg.model``'s architecture on random crops of long utterances.

    Every step draws ``batch_size`` utterances (with replacement) and one random crop of ``crop_samples``
    from each (a shorter utterance is zero-padded at the end).

    Parameters
    ----------
    cfg
        Architecture (``cfg.model``) and the defaults of ``crop_samples`` (``cfg.data.crop_samples``),
        ``batch_size`` and ``lr`` (``cfg.train``).
    waves
        ``[U]`` mono waveforms ``[samples]`` at 16 kHz.
    labels
        ``level="frame"``: ``[U]`` integer arrays ``[L_u]``, label ``j`` covering samples
        ``[label_hop * j, label_hop * (j + 1))`` (the CPC phone alignments). Module frame ``t`` of a crop
        starting at sample ``s`` is trained on the label of the label frame holding its centre
        ``s + offset + t * hop``; frames past the last label are ignored.
        ``level="utterance"``: ``[U]`` labels (e.g. speaker ids); each crop's frames are averaged (padding
        excluded) before the classifier.
    label_hop
        Samples per label frame (``level="frame"``).
    steps, greedy, seed, progress, device, run_dir
        As :func:`train_supervised`.

    Returns
    -------
    Stack
        The trained encoder in eval mode.
    """
    if level not in ("frame", "utterance"):
        raise ValueError(f"level must be 'frame' or 'utterance', got {level!r}")
    if len(waves) == 0 or len(waves) != len(labels):
        raise ValueError(f"need at least one waveform and one label entry each, got {len(waves)} and {len(labels)}")
    crop = cfg.data.crop_samples if crop_samples is None else crop_samples
    batch = cfg.train.batch_size if batch_size is None else batch_size
    if crop < 1 or batch < 1 or label_hop < 1:
        raise ValueError(f"need crop_samples, batch_size and label_hop >= 1, got {crop}, {batch}, {label_hop}")
    frame_labels: list[np.ndarray] = []
    utt_labels = np.zeros(0, dtype=np.int64)
    if level == "frame":
        arrays = [np.asarray(y) for y in labels]
        if any(y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer)) for y in arrays):
            raise ValueError("level='frame' needs one 1-D integer label array per waveform")
        classes = np.unique(np.concatenate(arrays).astype(np.int64))
        frame_labels = [np.searchsorted(classes, y.astype(np.int64)) for y in arrays]
        n_classes = int(classes.size)
    else:
        names = sorted({str(y) for y in labels})
        index = {name: i for i, name in enumerate(names)}
        utt_labels = np.array([index[str(y)] for y in labels], dtype=np.int64)
        n_classes = len(names)

    batches = CropLabelBatches(
        waves,
        frame_labels if level == "frame" else None,
        utt_labels if level == "utterance" else None,
        crop,
        batch,
        label_hop,
        seed,
    )
    return _fit(
        cfg,
        n_classes,
        batches,
        steps=steps,
        lr=cfg.train.lr if lr is None else lr,
        greedy=greedy,
        seed=seed,
        progress=progress,
        device=device,
        run_dir=run_dir,
    )
