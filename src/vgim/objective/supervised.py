"""Supervised classification as a head: ``objective.head = "supervised"``, the baselines' objective.

A linear layer classifies the module's context ``c``: every frame (``frame`` targets: the label of the label
frame its centre falls in), the mean over each segment's frames (``segment`` targets: syllables), or the mean
over a row's frames of real audio (``utterance`` targets: speakers). The batch brings its labels
(:class:`vgim.data.batches.Targets`); the head reads where its frames sit from its module's geometry.
Trained end to end (``train.mode = "end_to_end"``) only the last module's head learns and its loss reaches
every module (the supervised baseline); trained ``together``, every module learns from its own head with the
gradient cut between modules (greedy supervised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgim.config import ObjectiveConfig
from vgim.data.batches import IGNORE, Batch
from vgim.frames import FrameInfo
from vgim.objective.base import Head, HeadOutput, HeadSpec, register_head

__all__ = ["SupervisedHead", "SupervisedOptions"]


@dataclass
class SupervisedOptions:
    """``n_classes``: the number of classes (labels are ``0 .. n_classes - 1``)."""

    n_classes: int = 2

    def check(self) -> None:
        from vgim.config import ConfigError

        if self.n_classes < 2:
            raise ConfigError(f"objective.options.n_classes must be >= 2, got {self.n_classes}")


@register_head("supervised")
class SupervisedHead(Head):
    """``Linear(c_channels, n_classes)`` and the cross-entropy; stats ``ce`` and ``accuracy``."""

    Options = SupervisedOptions

    def __init__(self, c_channels: int, n_classes: int, frame: FrameInfo) -> None:
        super().__init__()
        self.classify = nn.Linear(c_channels, n_classes)
        self.frame = frame

    @classmethod
    def build(cls, cfg: ObjectiveConfig, options: SupervisedOptions, spec: HeadSpec) -> SupervisedHead:
        return cls(spec.c_channels, options.n_classes, spec.frame)

    def examples(self, context: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """The classifier's inputs ``[N, C]`` and class targets ``[N]`` (``IGNORE`` where unlabelled)."""
        t = batch.targets
        if t is None:
            raise ValueError("the supervised head needs a batch with targets (vgim.data.batches.Targets)")
        n_batch, n_time, n_ch = context.shape
        centres = torch.from_numpy(self.frame.centres(n_time)).to(context.device)  # [T] samples
        inside = centres[None, :] < t.lengths[:, None].to(centres.dtype)  # [B, T]: on real audio
        if t.kind == "frame":
            starts = t.starts if t.starts is not None else torch.zeros_like(t.lengths)
            j = torch.floor((starts[:, None].to(centres.dtype) + centres[None, :]) / t.frame_hop).long()  # [B, T]
            ok = inside & (j >= 0) & (j < t.labels.shape[1])
            picked = t.labels.gather(1, j.clamp(0, t.labels.shape[1] - 1))
            target = torch.where(ok, picked, torch.full_like(picked, IGNORE))
            return context.reshape(-1, n_ch), target.reshape(-1)
        if t.kind == "utterance":
            weights = inside.to(context.dtype)
            weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1)
            return torch.einsum("bt,btc->bc", weights, context), t.labels
        if t.segments is None:
            raise ValueError("segment targets need Targets.segments")
        from vgim.evaluate.pooling import segment_frame_ranges

        seg = t.segments.cpu().numpy()
        lo, hi = segment_frame_ranges(n_time, self.frame, [(int(a), int(b)) for _, a, b in seg])
        rows = np.zeros((seg.shape[0], n_batch * n_time), dtype=np.float32)
        for i, (b, a, z) in enumerate(zip(seg[:, 0], lo, hi, strict=True)):
            rows[i, b * n_time + a : b * n_time + z] = 1.0 / (z - a)
        pool = torch.from_numpy(rows).to(context.device, context.dtype)
        return pool @ context.reshape(-1, n_ch), t.labels

    def forward(self, targets: Tensor, context: Tensor, batch: Batch) -> HeadOutput:
        inputs, target = self.examples(context, batch)
        logits = self.classify(inputs)
        labelled = target != IGNORE
        if not bool(labelled.any()):  # nothing to learn from in this batch (all frames past the labels)
            zero = logits.sum() * 0.0
            return HeadOutput(loss=zero, stats={"ce": zero.detach(), "accuracy": zero.detach()})
        loss = F.cross_entropy(logits, target, ignore_index=IGNORE)
        with torch.no_grad():
            accuracy = (logits.argmax(dim=1) == target)[labelled].float().mean()
        return HeadOutput(loss=loss, stats={"ce": loss.detach(), "accuracy": accuracy})
