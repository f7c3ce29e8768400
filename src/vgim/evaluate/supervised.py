"""Supervised baselines: the same encoder trained with labels instead of InfoNCE.

``greedy=False`` trains the whole stack end to end through one classifier on the last module;
``greedy=True`` gives every module its own linear classifier and cuts the gradient between modules ("greedy
supervised" in the GIM paper). The encoder is then probed like any other: frozen, with a fresh linear probe
per module. Both trainers below share one loop (:func:`_fit`) and differ only in how a batch and its targets
are drawn:

* :func:`train_supervised` (the thesis corpus): whole utterances, zero-padded; segment-level tasks (e.g.
  syllables) pool each segment's frames before the classifier, utterance-level tasks the whole utterance.
* :func:`train_supervised_crops` (LibriSpeech): random crops of long utterances; ``level="frame"`` classifies
  every module frame with the label of the 10 ms label frame its centre falls in (phones),
  ``level="utterance"`` the mean over a crop's frames (speakers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgim.config import Config
from vgim.data.corpus import AudioCorpus
from vgim.evaluate.pooling import segment_frame_ranges
from vgim.evaluate.probes import ProbeLevel, probe_labels
from vgim.model.stack import Stack

__all__ = ["train_supervised", "train_supervised_crops"]

log = logging.getLogger("vgim")

#: Targets ignored by the cross-entropy (frames of a crop past the end of its utterance).
IGNORE = -100

#: ``examples(m, c)``: module ``m``'s context ``c`` ``[B, T_m, C_m]`` -> its classifier's inputs ``[N, C_m]``
#: and class-index targets ``[N]`` (``IGNORE`` for frames without a label).
Examples = Callable[[int, Tensor], tuple[Tensor, Tensor]]
#: ``draw(rng, stack)``: one training batch, audio ``[B, 1, samples]`` and its :data:`Examples`.
Draw = Callable[[np.random.Generator, Stack], tuple[Tensor, Examples]]


def _pooling_matrix(
    n_frames: int, stack: Stack, m: int, segments: Sequence[Sequence[tuple[int, int]] | None], level: ProbeLevel
) -> Tensor:
    """``[N_examples, B * T]`` averaging weights: one row per segment (or utterance) of the batch."""
    rows: list[np.ndarray] = []
    for b, seg in enumerate(segments):
        if level == "utterance" or seg is None:
            row = np.zeros(len(segments) * n_frames, dtype=np.float32)
            row[b * n_frames : (b + 1) * n_frames] = 1.0 / n_frames
            rows.append(row)
            continue
        lo, hi = segment_frame_ranges(n_frames, stack.frames[m], seg)
        for a, z in zip(lo, hi, strict=True):
            row = np.zeros(len(segments) * n_frames, dtype=np.float32)
            row[b * n_frames + a : b * n_frames + z] = 1.0 / (z - a)
            rows.append(row)
    return torch.from_numpy(np.stack(rows))


def _fit(
    cfg: Config,
    n_classes: int,
    draw: Draw,
    *,
    steps: int,
    lr: float,
    greedy: bool,
    seed: int,
    progress: bool,
    device: str | torch.device,
    desc: str = "supervised",
) -> Stack:
    """The shared loop: a fresh :class:`Stack` of ``cfg.model`` plus one ``nn.Linear`` head per trained module.

    End to end (``greedy=False``) only the last module's head is trained and its loss reaches every module;
    greedy, every module's head is trained and each module's input is detached, so module ``m`` learns from
    its own head only. Variational modules run on their means (no sampling, no KL). Returns the encoder in
    eval mode; the heads are discarded.
    """
    from tqdm.auto import tqdm

    if steps < 0 or not lr > 0:
        raise ValueError(f"need steps >= 0 and lr > 0, got {steps} and {lr}")
    if n_classes < 2:
        raise ValueError(f"supervised training needs at least 2 classes, got {n_classes}")
    torch.manual_seed(seed)
    dev = torch.device(device)
    stack = Stack(cfg.model).to(dev)
    heads = nn.ModuleList([nn.Linear(stack.block(m).out_channels, n_classes) for m in range(stack.n_modules)]).to(dev)
    trained = list(range(stack.n_modules)) if greedy else [stack.n_modules - 1]
    params = list(stack.parameters()) + [p for m in trained for p in heads[m].parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    bar = tqdm(range(steps), disable=not progress, desc=f"{desc}{' greedy' if greedy else ''}", unit="step")
    stack.train()
    for _ in bar:
        x, examples = draw(rng, stack)
        outputs = stack(x.to(dev), cut_gradients=greedy, sample=False)
        loss = torch.zeros((), device=dev)
        for m in trained:
            inputs, target = examples(m, outputs[m].c)
            if bool((target != IGNORE).any()):
                loss = loss + F.cross_entropy(heads[m](inputs), target.to(dev), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
            opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return stack.eval()


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
) -> Stack:
    """Train a :class:`Stack` with ``cfg.model``'s architecture to classify ``task_key`` on ``corpus``.

    Utterances are zero-padded to the longest one in the corpus (segments keep their positions). Returns
    the trained encoder in eval mode (the classifiers are discarded). Variational modules are trained on
    their means (no sampling, no KL).
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

    n_samples = max(w.shape[0] for w in corpus.waves)
    audio = np.zeros((len(corpus), n_samples), dtype=np.float32)
    for i, w in enumerate(corpus.waves):
        audio[i, : w.shape[0]] = w

    def draw(rng: np.random.Generator, stack: Stack) -> tuple[Tensor, Examples]:
        idx = rng.integers(0, len(corpus), size=min(batch_size, len(corpus)))
        target = torch.from_numpy(np.concatenate([per_utt[i] for i in idx]))
        n_frames = stack.n_frames(n_samples)

        def examples(m: int, c: Tensor) -> tuple[Tensor, Tensor]:
            pool = _pooling_matrix(n_frames[m], stack, m, [segments[i] for i in idx], level).to(c.device)
            return pool @ c.reshape(-1, c.shape[-1]), target

        return torch.from_numpy(audio[idx]).unsqueeze(1), examples

    return _fit(cfg, len(classes), draw, steps=steps, lr=lr, greedy=greedy, seed=seed, progress=progress, device=device)


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
    steps, greedy, seed, progress, device
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

    def draw(rng: np.random.Generator, stack: Stack) -> tuple[Tensor, Examples]:
        idx = rng.integers(0, len(waves), size=batch)
        audio = np.zeros((batch, crop), dtype=np.float32)
        starts = np.zeros(batch, dtype=np.int64)
        lengths = np.zeros(batch, dtype=np.int64)
        for b, i in enumerate(idx):
            w = waves[i]
            starts[b] = rng.integers(0, w.shape[0] - crop + 1) if w.shape[0] > crop else 0
            piece = w[starts[b] : starts[b] + crop]
            audio[b, : piece.shape[0]] = piece
            lengths[b] = piece.shape[0]

        def examples(m: int, c: Tensor) -> tuple[Tensor, Tensor]:
            n_frames = c.shape[1]
            centres = stack.frames[m].centres(n_frames)  # [T], samples into the crop
            inside = centres[None, :] < lengths[:, None]  # [B, T]: frame centre on real audio, not padding
            if level == "utterance":
                weights = inside / np.maximum(inside.sum(axis=1, keepdims=True), 1)
                pooled = torch.einsum("bt,btc->bc", torch.from_numpy(weights.astype(np.float32)).to(c.device), c)
                return pooled, torch.from_numpy(utt_labels[idx])
            target = np.full((batch, n_frames), IGNORE, dtype=np.int64)
            for b, i in enumerate(idx):
                j = np.floor((starts[b] + centres) / label_hop).astype(np.int64)
                ok = inside[b] & (j >= 0) & (j < frame_labels[i].shape[0])
                target[b, ok] = frame_labels[i][j[ok]]
            return c.reshape(-1, c.shape[-1]), torch.from_numpy(target.reshape(-1))

        return torch.from_numpy(audio).unsqueeze(1), examples

    return _fit(
        cfg,
        n_classes,
        draw,
        steps=steps,
        lr=cfg.train.lr if lr is None else lr,
        greedy=greedy,
        seed=seed,
        progress=progress,
        device=device,
        desc=f"supervised ({level})",
    )
