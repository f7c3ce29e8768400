"""What every objective head is: ``forward(targets, context, batch) -> HeadOutput(loss, stats)``.

A head scores one module: ``targets`` are what the module's latents should let it predict (its own ``z``,
or its input for a module made of a GRU alone) and ``context`` is its ``c``. The metrics log whatever
``stats`` holds (a scalar as one column, a vector ``name`` as columns ``name1 .. nameN``), so a new head
needs no new columns anywhere. A new head is one file in :mod:`vgim.objective`: a subclass of :class:`Head`
decorated with :func:`register_head`, whose :meth:`Head.build` reads its settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from vgim.config import ModelConfig, ObjectiveConfig
from vgim.data.batches import Batch
from vgim.frames import SAMPLE_RATE, FrameInfo
from vgim.registry import NoOptions, Registry

__all__ = ["HEADS", "Head", "HeadOutput", "HeadSpec", "build_head", "register_head"]


@dataclass
class HeadOutput:
    """``loss``: the scalar to minimise; ``stats``: detached scalars or ``[n]`` vectors to log."""

    loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class HeadSpec:
    """What a head is built for: the channels of its targets and of its context, where the module's frames
    sit in the waveform (``frame``; ``sample_rate`` of the waveform), and the encoder's config and the
    module's index (for heads that mirror the encoder, like a decoder)."""

    z_channels: int
    c_channels: int
    frame: FrameInfo
    sample_rate: int = SAMPLE_RATE
    model: ModelConfig | None = None
    module: int = 0


class Head(nn.Module):
    """An objective on one module (see the module docstring)."""

    Options: ClassVar[type] = NoOptions

    @classmethod
    def build(cls, cfg: ObjectiveConfig, options: Any, spec: HeadSpec) -> Head:  # pragma: no cover - interface
        """The head of ``cfg`` (``options``: its ``Options`` instance) for a module described by ``spec``."""
        raise NotImplementedError

    def forward(self, targets: Tensor, context: Tensor, batch: Batch) -> HeadOutput:  # pragma: no cover
        """``targets`` ``[B, T, C_z]``, ``context`` ``[B, T, C_c]``; ``batch`` holds the audio and labels."""
        raise NotImplementedError


HEADS: Registry[Head] = Registry("vgim.objective", "objective.head", "objective.options")
register_head = HEADS.register


def build_head(cfg: ObjectiveConfig, spec: HeadSpec) -> Head:
    """The head ``cfg.head`` with ``cfg.options`` for one module."""
    return HEADS.get(cfg.head).build(cfg, HEADS.options(cfg.head, cfg.options), spec)
