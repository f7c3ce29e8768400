"""Supervised baselines: the same encoder trained with labels instead of InfoNCE.

``greedy=False`` trains the whole stack end to end through one classifier on the last module;
``greedy=True`` gives every module its own classifier and cuts the gradient between modules ("greedy
supervised" in the GIM paper). Segment-level tasks (e.g. syllables) pool each segment's frames before the
linear classifier; utterance-level tasks pool the whole utterance. The encoder is then probed like any
other: frozen, with a fresh linear probe per module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgim.config import Config
from vgim.data.corpus import AudioCorpus
from vgim.evaluate.pooling import segment_frame_ranges
from vgim.evaluate.probes import ProbeLevel, probe_labels
from vgim.model.stack import Stack

__all__ = ["train_supervised"]

log = logging.getLogger("vgim")


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
    from tqdm.auto import tqdm

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

    torch.manual_seed(seed)
    dev = torch.device(device)
    stack = Stack(cfg.model).to(dev)
    heads = nn.ModuleList([nn.Linear(stack.block(m).out_channels, len(classes)) for m in range(stack.n_modules)]).to(
        dev
    )
    trained = list(range(stack.n_modules)) if greedy else [stack.n_modules - 1]
    params = list(stack.parameters()) + [p for m in trained for p in heads[m].parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    n_frames = stack.n_frames(n_samples)
    rng = np.random.default_rng(seed)
    bar = tqdm(range(steps), disable=not progress, desc=f"supervised{' greedy' if greedy else ''}", unit="step")
    stack.train()
    for _ in bar:
        idx = rng.integers(0, len(corpus), size=min(batch_size, len(corpus)))
        x = torch.from_numpy(audio[idx]).unsqueeze(1).to(dev)
        target = torch.from_numpy(np.concatenate([per_utt[i] for i in idx])).to(dev)
        outputs = stack(x, cut_gradients=greedy, sample=False)
        loss = torch.zeros((), device=dev)
        for m in trained:
            c = outputs[m].c  # [B, T, C]
            pool = _pooling_matrix(n_frames[m], stack, m, [segments[i] for i in idx], level).to(dev)
            pooled = pool @ c.reshape(-1, c.shape[-1])
            loss = loss + F.cross_entropy(heads[m](pooled), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return stack.eval()
