"""The VQ-VAE bottleneck (model/vq.py): nearest codes, straight-through gradient, EMA codebook, presets."""

from __future__ import annotations

import pytest
import torch

from conftest import preset_step
from vgim.config import ConfigError, load_config
from vgim.model.vq import VectorQuantizer, VQOptions


def _vq(size: int = 8, channels: int = 3, **kw: float) -> VectorQuantizer:
    return VectorQuantizer(channels, VQOptions(codebook_size=size, **kw))  # type: ignore[arg-type]


def test_vq_outputs_codebook_vectors_and_passes_the_gradient_straight_through() -> None:
    vq = _vq().train()
    h = torch.randn(2, 3, 50, requires_grad=True)
    out = vq(h, sample=True)
    assert bool(vq.initialised)
    z = out.z.detach().transpose(1, 2).reshape(-1, 3)
    assert out.codes is not None and out.codes.shape == (2, 50)
    torch.testing.assert_close(z, vq.codebook[out.codes.reshape(-1)])
    # each frame's code is its nearest codebook vector
    x = h.detach().transpose(1, 2).reshape(-1, 3)
    torch.testing.assert_close(torch.cdist(x, vq.codebook).argmin(1), out.codes.reshape(-1))
    g = torch.randn_like(out.z)
    (out.z * g).sum().backward()
    assert h.grad is not None
    torch.testing.assert_close(h.grad, g)
    # the penalty is the commitment loss ||h - sg(e)||^2
    torch.testing.assert_close(out.penalty, ((x - z) ** 2).mean())
    assert 1.0 <= float(out.stats["perplexity"]) <= 8.0
    assert 0.0 < float(out.stats["code_usage"]) <= 1.0


def test_vq_codebook_follows_the_data_and_dead_codes_are_redrawn() -> None:
    torch.manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0], [0.0, -4.0]])
    vq = _vq(size=6, channels=2, ema_decay=0.8, dead_code_threshold=0.5).train()
    for _ in range(60):
        x = centres[torch.randint(0, 4, (400,))] + 0.1 * torch.randn(400, 2)
        vq(x.T[None], sample=True)
    # every centre has a code within 0.3, and the codes in use sit on the centres
    assert float(torch.cdist(centres, vq.codebook).min(dim=1).values.max()) < 0.3
    x = centres[torch.randint(0, 4, (400,))] + 0.1 * torch.randn(400, 2)
    out = vq.eval()(x.T[None], sample=False)
    assert out.codes is not None
    # at least the four clusters are told apart (6 codes may split a cluster), and every frame is quantised
    # to a code on its own cluster
    assert 3.6 <= float(out.stats["perplexity"]) <= 6.0
    assert float((out.z[0].T - x).norm(dim=1).max()) < 0.6
    # eval leaves the codebook alone
    before = vq.codebook.clone()
    vq(x.T[None], sample=False)
    assert torch.equal(before, vq.codebook)


def test_vq_without_ema_learns_its_codebook_by_the_codebook_loss() -> None:
    vq = _vq(ema_decay=0.0).train()
    out = vq(torch.randn(2, 3, 20), sample=True)
    out.penalty.backward()
    assert isinstance(vq.codebook, torch.nn.Parameter) and vq.codebook.grad is not None
    assert float(vq.codebook.grad.abs().sum()) > 0


def test_vq_options_are_checked_and_the_presets_build() -> None:
    with pytest.raises(ConfigError, match="codebook_size must be >= 2"):
        load_config("gim-small", ["model.bottleneck=vq", "model.bottleneck_options={codebook_size=1}"])
    for name in ["vq-gim-small", "vq-gim-thesis-improved"]:
        loss, losses = preset_step(name)
        assert torch.isfinite(loss), name
        assert {"perplexity", "code_usage", "commitment"} <= set(losses[0].stats), name
