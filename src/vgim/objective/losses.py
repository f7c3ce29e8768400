"""The per-module objective: InfoNCE plus ``beta * KL(q(z|x) || N(0, I))`` for variational modules."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vgim.config import ObjectiveConfig
from vgim.model.stack import ModuleOutput, Stack
from vgim.objective.infonce import InfoNCE, gaussian_kl

__all__ = ["ModuleLoss", "Objective"]


@dataclass
class ModuleLoss:
    """One module's losses: ``loss = infonce + beta * kl``; per-step accuracy and MI bound ``[K]``."""

    loss: Tensor
    infonce: Tensor
    kl: Tensor
    accuracy_k: Tensor
    mi_bound_k: Tensor

    def scalars(self) -> dict[str, float]:
        return {
            "loss": float(self.loss.detach()),
            "infonce": float(self.infonce.detach()),
            "kl": float(self.kl.detach()),
            "accuracy": float(self.accuracy_k.mean()),
            "mi_bound": float(self.mi_bound_k.mean()),
        }


class Objective(nn.Module):
    """One :class:`InfoNCE` head (the ``W_k`` of module m) per module of a :class:`Stack`.

    A module's InfoNCE targets are its own latents ``z``; a module made of a GRU alone predicts its
    input (the previous module's representation), as in the GIM paper's last module.
    """

    def __init__(self, stack: Stack, cfg: ObjectiveConfig) -> None:
        super().__init__()
        self.cfg = cfg
        heads = []
        in_channels = stack.cfg.in_channels
        blocks = [stack.block(m) for m in range(stack.n_modules)]
        for block in blocks:
            z_channels = block.z_channels if len(block.encoder) else in_channels
            heads.append(
                InfoNCE(
                    z_channels,
                    block.out_channels,
                    n_predictions=cfg.n_predictions,
                    n_negatives=cfg.n_negatives,
                    negatives=cfg.negatives,
                    max_positions=cfg.max_positions,
                    share_negatives=cfg.share_negatives,
                )
            )
            in_channels = block.out_channels
        self.heads = nn.ModuleList(heads)
        self._uses_input = [len(block.encoder) == 0 for block in blocks]

    def module_loss(
        self, m: int, out: ModuleOutput, module_input: Tensor | None, speakers: Tensor | None = None
    ) -> ModuleLoss:
        """Loss of module ``m`` from its output and (for GRU-only modules) its input ``[B, T, C]``."""
        head = self.heads[m]
        assert isinstance(head, InfoNCE)
        if self._uses_input[m]:
            if module_input is None:
                raise ValueError(f"module {m} predicts its input; pass module_input")
            targets = module_input.detach()
        else:
            targets = out.z
        nce = head(targets, out.c, speakers)
        if out.mu is not None and out.logvar is not None:
            kl = gaussian_kl(out.mu, out.logvar)
        else:
            kl = torch.zeros((), device=out.c.device)
        loss = nce.loss + self.cfg.beta * kl if self.cfg.beta > 0 else nce.loss
        return ModuleLoss(loss=loss, infonce=nce.loss, kl=kl, accuracy_k=nce.accuracy_k, mi_bound_k=nce.mi_bound_k)

    def forward(
        self, outputs: list[ModuleOutput], x: Tensor, speakers: Tensor | None = None, start: int = 0
    ) -> list[ModuleLoss]:
        """Losses of modules ``start..len(outputs)-1``; ``x`` is the stack's input ``[B, 1, samples]``."""
        inputs = [x.transpose(1, 2)] + [o.c for o in outputs[:-1]]
        return [self.module_loss(m, outputs[m], inputs[m], speakers) for m in range(start, len(outputs))]
