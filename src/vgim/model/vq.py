"""Vector quantisation (VQ-VAE, van den Oord et al. 2017) as a bottleneck: ``model.bottleneck = "vq"``.

Each frame's latent ``h_t`` is replaced by its nearest codebook vector ``e_k``; the gradient passes straight
through (``z = h + sg(e - h)``). The module's penalty (weighed by ``objective.beta``, 0.25 in the paper) is the
commitment loss ``||h - sg(e)||^2``. The codebook either follows exponential moving averages of the frames
assigned to each code (``ema_decay > 0``, the paper's appendix; no codebook loss) or learns by the codebook
loss ``||sg(h) - e||^2``, added to the penalty (``ema_decay = 0``). Codes start as random frames of the first
training batch, and a code whose moving-average count falls below ``dead_code_threshold`` is moved onto a
random frame of the batch (as in Jukebox and EnCodec), so the codebook stays in use. Stats: the commitment
loss, the perplexity ``exp(H)`` of the batch's code histogram and the fraction of codes it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgim.model.bottleneck import Bottleneck, BottleneckOutput, register_bottleneck

__all__ = ["VQOptions", "VectorQuantizer"]

EPS = 1e-5  # Laplace smoothing of the codes' moving-average counts


@dataclass
class VQOptions:
    """``codebook_size`` codes; ``ema_decay`` of the codebook's moving averages (0: learn it by its loss);
    codes used by fewer than ``dead_code_threshold`` frames per batch on average are re-drawn (0: never)."""

    codebook_size: int = 256
    ema_decay: float = 0.99
    dead_code_threshold: float = 0.5

    def check(self) -> None:
        from vgim.config import ConfigError

        if self.codebook_size < 2:
            raise ConfigError(f"model.bottleneck_options.codebook_size must be >= 2, got {self.codebook_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"model.bottleneck_options.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.dead_code_threshold < 0:
            raise ConfigError(
                f"model.bottleneck_options.dead_code_threshold must be >= 0, got {self.dead_code_threshold}"
            )


def _all_reduce_sum_(x: Tensor) -> Tensor:
    """Sum ``x`` over the processes of a data-parallel run (the codebook statistics must agree)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(x)
    return x


def _broadcast_(x: Tensor) -> Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.broadcast(x, 0)
    return x


@register_bottleneck("vq")
class VectorQuantizer(Bottleneck):
    """A codebook of ``codebook_size`` vectors of ``channels`` dimensions (see the module docstring)."""

    Options = VQOptions

    def __init__(self, channels: int, options: Any) -> None:
        super().__init__(channels, options)
        opts: VQOptions = options
        self.ema = opts.ema_decay > 0
        self.decay = opts.ema_decay
        self.threshold = opts.dead_code_threshold
        codebook = torch.randn(opts.codebook_size, channels)
        self.codebook: Tensor
        if self.ema:
            self.register_buffer("codebook", codebook)
        else:
            self.codebook = nn.Parameter(codebook)
        self.cluster_size: Tensor
        self.embed_sum: Tensor
        self.initialised: Tensor
        self.register_buffer("cluster_size", torch.zeros(opts.codebook_size))
        self.register_buffer("embed_sum", codebook.clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def quantise(self, x: Tensor) -> Tensor:
        """Code indices ``[N]`` of the nearest codebook vector to each row of ``x`` ``[N, channels]``."""
        e = self.codebook.detach()
        distance = x.pow(2).sum(1, keepdim=True) - 2 * x @ e.T + e.pow(2).sum(1)[None, :]
        return distance.argmin(dim=1)

    @torch.no_grad()
    def _draw(self, x: Tensor, n: int) -> Tensor:
        """``n`` random rows of ``x`` (with replacement when ``x`` has fewer), the same on every process."""
        rows = torch.randint(0, x.shape[0], (n,), device=x.device)
        return _broadcast_(x[rows].clone())

    @torch.no_grad()
    def _update(self, x: Tensor, codes: Tensor) -> None:
        """One training step's codebook update: first-batch initialisation, EMA, dead codes."""
        n_codes = self.codebook.shape[0]
        if not bool(self.initialised):
            self.codebook.data.copy_(self._draw(x, n_codes))
            self.embed_sum.copy_(self.codebook.data)
            self.cluster_size.fill_(1.0)
            self.initialised.fill_(True)
        one_hot = F.one_hot(codes, n_codes).to(x.dtype)  # [N, K]
        counts = _all_reduce_sum_(one_hot.sum(0))
        sums = _all_reduce_sum_(one_hot.T @ x)
        if self.ema:
            self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            total = self.cluster_size.sum()
            smoothed = (self.cluster_size + EPS) / (total + n_codes * EPS) * total
            self.codebook.data.copy_(self.embed_sum / smoothed[:, None])
        else:
            self.cluster_size.mul_(0.99).add_(counts, alpha=0.01)
        if self.threshold > 0:
            dead = self.cluster_size < self.threshold
            n_dead = int(dead.sum())
            if n_dead:
                fresh = self._draw(x, n_dead)
                self.codebook.data[dead] = fresh
                self.embed_sum[dead] = fresh * self.threshold
                self.cluster_size[dead] = self.threshold

    def forward(self, h: Tensor, sample: bool) -> BottleneckOutput:
        n_batch, n_ch, n_time = h.shape
        with torch.autocast(h.device.type, enabled=False):  # distances and codebook statistics in float32
            x = h.float().transpose(1, 2).reshape(-1, n_ch)  # [B * T, C]
            codes = self.quantise(x)
            if self.training and torch.is_grad_enabled():
                self._update(x.detach(), codes)
                codes = self.quantise(x)  # against the updated codebook, as the next step would see it
            q = self.codebook[codes] if not self.ema else self.codebook[codes].detach()
            commitment = F.mse_loss(x, q.detach())
            penalty = commitment if self.ema else commitment + F.mse_loss(x.detach(), q)
            z = x + (q - x).detach()  # straight-through: the gradient of z reaches h unchanged
            with torch.no_grad():
                histogram = torch.bincount(codes, minlength=self.codebook.shape[0]).float() / codes.numel()
                entropy = -(histogram * torch.log(histogram.clamp(min=1e-12))).sum()
                stats = {
                    "commitment": commitment.detach(),
                    "perplexity": entropy.exp(),
                    "code_usage": (histogram > 0).float().mean(),
                }
        z = z.view(n_batch, n_time, n_ch).transpose(1, 2).to(h.dtype)
        return BottleneckOutput(z=z, penalty=penalty, stats=stats, codes=codes.view(n_batch, n_time))
