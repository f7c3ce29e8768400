"""The per-module objective: ``loss_m = head loss + beta * bottleneck penalty`` for every module of a stack.

The head (``objective.head``: InfoNCE, APC, ...; :mod:`vgim.objective.base`) scores the module's targets
from its context; the penalty comes from the module's bottleneck (the KL of V-GIM's Gaussian, a VQ
codebook's commitment loss; :mod:`vgim.model.bottleneck`). Everything either reports is logged by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from vgim.config import ObjectiveConfig
from vgim.data.batches import Batch
from vgim.frames import SAMPLE_RATE
from vgim.model.stack import ModuleOutput, Stack
from vgim.objective.base import HeadSpec, build_head

__all__ = ["ModuleLoss", "Objective", "stat_columns"]


def stat_columns(stats: dict[str, Tensor | float]) -> dict[str, float]:
    """Stats as metrics columns: a scalar ``name`` as itself, a vector ``name`` as ``name1 .. nameN``."""
    out: dict[str, float] = {}
    for name, value in stats.items():
        if isinstance(value, Tensor) and value.numel() != 1:
            out |= {f"{name}{i + 1}": float(v) for i, v in enumerate(value.detach().reshape(-1))}
        else:
            out[name] = float(value)
    return out


@dataclass
class ModuleLoss:
    """One module's ``loss`` (a scalar tensor) and the ``stats`` of its head and bottleneck."""

    loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)

    def detached(self) -> ModuleLoss:
        return ModuleLoss(self.loss.detach(), {k: v.detach() for k, v in self.stats.items()})

    def scalars(self) -> dict[str, float]:
        """``loss`` and every scalar stat (what a progress line or a summary shows)."""
        return {"loss": float(self.loss.detach())} | {k: float(v) for k, v in self.stats.items() if v.numel() == 1}

    def columns(self) -> dict[str, float]:
        """``loss`` and every stat, vectors spread over numbered columns (what ``metrics.csv`` holds)."""
        return {"loss": float(self.loss.detach())} | stat_columns(dict(self.stats))


class Objective(nn.Module):
    """One head per module of a :class:`Stack` (``heads[m]``, e.g. the ``W_k`` of module m's InfoNCE).

    A module's targets are its own latents ``z``; a module made of a GRU alone predicts its input (the
    previous module's representation), as in the GIM paper's last module.
    """

    def __init__(self, stack: Stack, cfg: ObjectiveConfig, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.cfg = cfg
        heads = []
        in_channels = stack.cfg.in_channels
        for m in range(stack.n_modules):
            block = stack.block(m)
            z_channels = block.z_channels if len(block.encoder) else in_channels
            spec = HeadSpec(z_channels, block.out_channels, stack.frames[m], sample_rate, stack.cfg, m)
            heads.append(build_head(cfg, spec))
            in_channels = block.out_channels
        self.heads = nn.ModuleList(heads)
        self._uses_input = [len(stack.block(m).encoder) == 0 for m in range(stack.n_modules)]

    def module_loss(
        self, m: int, out: ModuleOutput, module_input: Tensor | None, batch: Batch, *, cut_input: bool = True
    ) -> ModuleLoss:
        """Loss of module ``m`` from its output and (for GRU-only modules) its input ``[B, T, C]``.

        ``cut_input=False`` keeps the gradient through a GRU-only module's targets (end-to-end training,
        where that module's input is a function of the modules below it, exactly as ``z`` is in CPC).
        """
        if self._uses_input[m]:
            if module_input is None:
                raise ValueError(f"module {m} predicts its input; pass module_input")
            targets = module_input.detach() if cut_input else module_input
        else:
            targets = out.z
        head = self.heads[m](targets, out.c, batch)
        loss = head.loss
        if self.cfg.beta > 0 and out.penalty is not None:
            loss = loss + self.cfg.beta * out.penalty
        return ModuleLoss(loss=loss, stats=head.stats | {k: v.detach() for k, v in out.stats.items()})

    def forward(self, outputs: list[ModuleOutput], batch: Batch, start: int = 0) -> list[ModuleLoss]:
        """Losses of modules ``start..len(outputs)-1`` of a gradient-isolated forward pass of ``batch``."""
        inputs = [batch.audio.transpose(1, 2)] + [o.c for o in outputs[:-1]]
        return [self.module_loss(m, outputs[m], inputs[m], batch) for m in range(start, len(outputs))]


def total_penalty(outputs: list[ModuleOutput], device: torch.device) -> Tensor:
    """The sum of the modules' bottleneck penalties (a scalar)."""
    pens = [o.penalty for o in outputs if o.penalty is not None]
    return torch.stack(pens).sum() if pens else torch.zeros((), device=device)
