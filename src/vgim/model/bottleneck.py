"""Bottlenecks: what sits on a module's latent, between its convolutions and its GRU.

A bottleneck maps the output ``h`` of a module's last conv/pool layer to the latent ``z`` that the module's
head scores and the GRU reads, and returns a *penalty* that the module's loss weighs by ``objective.beta``
(``loss = head loss + beta * penalty``) and *stats* that the metrics log. Three are built in:

- ``identity``: ``z = h``, no penalty (CPC, GIM);
- ``gaussian``: V-GIM's head, ``mu`` and ``log sigma^2`` by two parallel convolutions (1x1 by default;
  ``bottleneck_options.kernel = 3`` is the thesis's kernel-3 heads, "same" padded so frames stay put),
  ``z = mu + sigma * eps`` while sampling (the reparameterisation trick), else ``mu``;
  penalty ``KL(q(z|x) || N(0, I))``;
- ``vq``: a VQ-VAE codebook (:mod:`vgim.model.vq`).

A new bottleneck is one file in :mod:`vgim.model`: a subclass of :class:`Bottleneck` decorated with
:func:`register_bottleneck`, found by name when a config asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vgim.registry import NoOptions, Registry

__all__ = [
    "Bottleneck",
    "BOTTLENECKS",
    "BottleneckOutput",
    "Gaussian",
    "GaussianOptions",
    "Identity",
    "build_bottleneck",
    "gaussian_kl",
    "register_bottleneck",
]

LOGVAR_INIT = -4.6  # log(0.1 ** 2)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, sigma^2) || N(0, I))`` summed over latent channels, averaged over batch and time.

    ``mu`` and ``logvar`` are ``[batch, time, channels]``; returns a scalar.
    """
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)
    return kl.sum(dim=-1).mean()


@dataclass
class BottleneckOutput:
    """``z``: the latent ``[batch, channels, time]`` (the convolutions' layout); ``penalty``: a scalar;
    ``stats``: scalars or vectors to log; ``mu`` / ``logvar`` (``[batch, time, channels]``): the posterior of
    a Gaussian bottleneck, else None; ``codes`` (``[batch, time]``): a quantiser's code indices, else None."""

    z: Tensor
    penalty: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)
    mu: Tensor | None = None
    logvar: Tensor | None = None
    codes: Tensor | None = None


class Bottleneck(nn.Module):
    """``forward(h [batch, channels, time], sample) -> BottleneckOutput``; ``channels`` in and out."""

    Options: ClassVar[type] = NoOptions

    def __init__(self, channels: int, options: Any) -> None:
        super().__init__()
        self.channels = channels
        self.options = options

    def forward(self, h: Tensor, sample: bool) -> BottleneckOutput:  # pragma: no cover - interface
        raise NotImplementedError


BOTTLENECKS: Registry[Bottleneck] = Registry("vgim.model", "model.bottleneck", "model.bottleneck_options")
register_bottleneck = BOTTLENECKS.register


def build_bottleneck(name: str, options: dict[str, Any], channels: int) -> Bottleneck:
    """The bottleneck ``name`` on ``channels`` latent channels, with ``options`` checked."""
    return BOTTLENECKS.get(name)(channels, BOTTLENECKS.options(name, options))  # type: ignore[call-arg]


@register_bottleneck("identity")
class Identity(Bottleneck):
    """``z = h``; no penalty."""

    def forward(self, h: Tensor, sample: bool) -> BottleneckOutput:
        return BottleneckOutput(z=h, penalty=torch.zeros((), device=h.device))


@dataclass
class GaussianOptions:
    """``kernel``: the width in frames of the two parallel convolutions giving ``mu`` and ``logvar`` (odd;
    padded by ``kernel // 2`` so the frame count and the frames' centres do not change). 1 is a per-frame
    (1x1) head; the V-GIM thesis uses 3."""

    kernel: int = 1

    def check(self) -> None:
        from vgim.config import ConfigError

        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"model.bottleneck_options.kernel must be an odd number >= 1, got {self.kernel}")


@register_bottleneck("gaussian")
class Gaussian(Bottleneck):
    """V-GIM's variational head: ``mu`` and ``logvar`` by two parallel convolutions, ``z ~ N(mu, sigma^2)``.

    The log-variance starts at ``log(0.1 ** 2)`` everywhere: with sigma = 1 the sampling noise drowns the
    still-small means and the head has nothing to learn from; the KL term widens it as mu grows.
    """

    Options = GaussianOptions

    def __init__(self, channels: int, options: Any) -> None:
        super().__init__(channels, options)
        kernel = options.kernel
        self.mu = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.logvar = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        nn.init.zeros_(self.logvar.weight)
        nn.init.constant_(self.logvar.bias, LOGVAR_INIT)  # type: ignore[arg-type]

    def forward(self, h: Tensor, sample: bool) -> BottleneckOutput:
        mu = self.mu(h)
        logvar = self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        mu_t, logvar_t = mu.transpose(1, 2), logvar.transpose(1, 2)
        kl = gaussian_kl(mu_t.float(), logvar_t.float())
        return BottleneckOutput(z=z, penalty=kl, stats={"kl": kl.detach()}, mu=mu_t, logvar=logvar_t)
