"""Training batches: random fixed-length crops, drawn from a generator seeded by (seed, step).

Because every batch is a pure function of the step, a resumed run sees exactly the batches an
uninterrupted run would have seen. :class:`CropBatches` crops in-memory waves;
:class:`vgim.data.stream.StreamingBatches` reads the same crops from disk.

Distributed training: ``batch(step, rank)`` gives each process (rank) its own batch. Rank 0 draws from
the generator seeded by ``(seed, step)``, so a one-process run and rank 0 of a distributed run see the same
data; rank ``r > 0`` draws from ``(seed, step, r)``, an independent stream. The number of processes is
not needed: what a rank sees does not depend on how many other ranks there are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
from torch import Tensor

__all__ = ["IGNORE", "Batch", "CropBatches", "StepBatches", "Targets", "step_rng"]


#: Class index of a frame or example without a label (ignored by the cross-entropy).
IGNORE = -100


@dataclass
class Targets:
    """Class labels of a supervised batch, at one of three levels (``kind``):

    ``utterance``: ``labels [B]``, one per row; ``segment``: ``labels [S]``, one per segment, with
    ``segments [S, 3]`` = (row, start, end) sample indices of each (end exclusive); ``frame``: ``labels
    [B, L]``, the label of each ``frame_hop``-sample label frame of the row's utterance (``IGNORE`` past its
    end), and ``starts [B]``, where in that utterance the row's first sample is. ``lengths [B]``: samples
    of real audio in each row (the rest is zero padding).
    """

    kind: Literal["utterance", "segment", "frame"]
    labels: Tensor
    lengths: Tensor
    segments: Tensor | None = None
    starts: Tensor | None = None
    frame_hop: int = 160

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Targets:
        def opt(x: Tensor | None) -> Tensor | None:
            return fn(x) if x is not None else None

        return dataclasses.replace(
            self, labels=fn(self.labels), lengths=fn(self.lengths), segments=opt(self.segments), starts=opt(self.starts)
        )

    def to(self, device: torch.device) -> Targets:
        return self._map(lambda x: x.to(device))

    def pin_memory(self) -> Targets:
        return self._map(lambda x: x.pin_memory())


@dataclass
class Batch:
    """``audio``: ``[batch, 1, samples]``; ``speakers``: ``[batch]`` integer ids, or None; ``targets``: the
    labels of a supervised batch, or None."""

    audio: Tensor
    speakers: Tensor | None = None
    targets: Targets | None = None

    def to(self, device: torch.device) -> Batch:
        spk = self.speakers.to(device) if self.speakers is not None else None
        tgt = self.targets.to(device) if self.targets is not None else None
        return Batch(self.audio.to(device, non_blocking=True), spk, tgt)

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (called by a ``DataLoader`` with ``pin_memory=True``)."""
        spk = self.speakers.pin_memory() if self.speakers is not None else None
        tgt = self.targets.pin_memory() if self.targets is not None else None
        return Batch(self.audio.pin_memory(), spk, tgt)


class StepBatches(Protocol):
    """A source of training batches indexed by step (and by rank in a distributed run)."""

    def batch(self, step: int, rank: int = 0) -> Batch: ...


def step_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    """The generator every random draw of one batch comes from: seeded by ``(seed, step)`` for rank 0,
    ``(seed, step, rank)`` for the other ranks."""
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    return np.random.default_rng([seed, step] if rank == 0 else [seed, step, rank])


FIXED_CROPS_TAG = 0x46495844  # seeds the fixed crops' offsets apart from any step's draws


class CropBatches:
    """Crops of ``crop_samples`` from in-memory waveforms.

    ``fixed = False`` (``data.crops = "random"``): every step draws its files uniformly and a fresh offset in
    each. ``fixed = True`` (``"fixed"``): each file is cropped once, at an offset drawn from ``seed``, and
    the steps go through the crops epoch by epoch: epoch ``e`` is a permutation seeded by ``(seed, e)``
    cut into :attr:`steps_per_epoch` batches (the last one holds the remainder), so every crop is seen once
    per epoch. A file shorter than a crop is zero-padded at the end. ``augment`` (if given) is applied to
    each crop with the step-seeded generator.
    """

    def __init__(
        self,
        waves: Sequence[np.ndarray],
        crop_samples: int,
        batch_size: int,
        seed: int = 0,
        speakers: Sequence[str] | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        fixed: bool = False,
    ) -> None:
        if not waves:
            raise ValueError("no audio to draw training crops from")
        self.waves = list(waves)
        self.lengths = np.array([w.shape[0] for w in self.waves])
        self.crop_samples = crop_samples
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.speaker_ids: np.ndarray | None = None
        if speakers is not None:
            names = sorted(set(speakers))
            index = {s: i for i, s in enumerate(names)}
            self.speaker_ids = np.array([index[s] for s in speakers], dtype=np.int64)
        self.fixed = fixed
        spans = np.maximum(self.lengths - crop_samples, 0)
        offsets = np.random.default_rng([seed, FIXED_CROPS_TAG]).random(len(self.waves))
        self.fixed_starts = (offsets * (spans + 1)).astype(np.int64) if fixed else None

    @property
    def steps_per_epoch(self) -> int:
        """Steps that make one pass over the files: ``ceil(files / batch_size)`` (for either kind of crop)."""
        return -(-len(self.waves) // self.batch_size)

    def rng(self, step: int, rank: int = 0) -> np.random.Generator:
        return step_rng(self.seed, step, rank)

    def files(self, step: int, rank: int = 0) -> np.ndarray:
        """The files (indices into ``waves``) of the batch of ``step`` for ``rank``."""
        if not self.fixed:
            return self.rng(step, rank).integers(0, len(self.waves), size=self.batch_size)
        epoch, j = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, FIXED_CROPS_TAG, epoch, rank]).permutation(len(self.waves))
        return order[j * self.batch_size : (j + 1) * self.batch_size]

    def batch(self, step: int, rank: int = 0) -> Batch:
        """The batch of ``step`` for process ``rank``: ``audio`` ``[batch, 1, crop_samples]``."""
        rng = self.rng(step, rank)
        idx = self.files(step, rank) if self.fixed else rng.integers(0, len(self.waves), size=self.batch_size)
        out = np.zeros((len(idx), self.crop_samples), dtype=np.float32)
        for row, i in enumerate(idx):
            wave = self.waves[i]
            span = wave.shape[0] - self.crop_samples
            if self.fixed_starts is not None:
                start = int(self.fixed_starts[i])
            else:
                start = int(rng.integers(0, span + 1)) if span > 0 else 0
            crop = wave[start : start + self.crop_samples]
            if self.augment is not None:
                crop = self.augment(crop, rng)
            out[row, : crop.shape[0]] = crop
        speakers = torch.from_numpy(self.speaker_ids[idx]) if self.speaker_ids is not None else None
        return Batch(torch.from_numpy(out).unsqueeze(1), speakers)
