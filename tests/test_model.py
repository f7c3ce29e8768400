from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vgim.config import ModelConfig, available_presets, load_config
from vgim.data.batches import Batch
from vgim.model import Stack, frame_infos
from vgim.objective import Objective


@pytest.mark.parametrize("preset", available_presets())
def test_preset_shapes_and_frame_counts(preset: str) -> None:
    cfg = load_config(preset)
    stack = Stack(cfg.model)
    n = cfg.data.crop_samples
    # the paper presets are large: check frames with a short input, but a full crop for the small ones
    n = min(n, 20480)
    x = torch.zeros(1, 1, n)
    with torch.no_grad():
        outs = stack(x)
    expected = stack.n_frames(n)
    assert [o.c.shape[1] for o in outs] == expected
    assert len(outs) == len(cfg.model.modules)
    strides = [s.stride for s in cfg.model.layers if s.strided]
    assert stack.frames[-1].hop == math.prod(strides)
    for o, block in zip(outs, stack.blocks, strict=True):
        assert o.c.shape[2] == block.out_channels
        if cfg.model.variational and len(block.encoder):
            assert o.mu is not None and o.mu.shape == o.z.shape


def test_paper_architecture_frame_rate() -> None:
    cfg = load_config("cpc")
    stack = Stack(cfg.model)
    assert stack.n_frames(20480) == [128]
    assert stack.frames[0].hop == 160  # 10 ms at 16 kHz
    gim = Stack(load_config("gim").model)
    assert gim.n_frames(20480) == [4095, 1023, 512, 257, 128, 128]


def test_frame_centres_match_receptive_fields() -> None:
    """An impulse at sample s moves only the frames whose receptive field covers s."""
    cfg = load_config("gim-small")
    cfg.model.modules = [5, 1]
    stack = Stack(cfg.model)
    info = frame_infos(cfg.model)[0]
    n = 8000
    base = torch.zeros(1, 1, n)
    s = 4321
    bumped = base.clone()
    bumped[0, 0, s] = 1.0
    with torch.no_grad():
        d = (stack(bumped)[0].z - stack(base)[0].z).abs().sum(-1)[0]
    changed = torch.nonzero(d > 0).flatten().numpy()
    centres = info.offset + changed * info.hop
    assert changed.size > 0
    assert np.all(np.abs(centres - s) <= info.receptive_field / 2)


def test_batch_matches_single() -> None:
    cfg = load_config("vgim-small")
    stack = Stack(cfg.model).eval()
    x = torch.randn(3, 1, 4000)
    with torch.no_grad():
        full = stack(x)
        one = stack(x[1:2])
    for a, b in zip(full, one, strict=True):
        torch.testing.assert_close(a.c[1:2], b.c, rtol=1e-4, atol=1e-5)


def test_variational_samples_in_training_and_uses_mean_in_eval() -> None:
    cfg = load_config("vgim-small")
    stack = Stack(cfg.model)
    x = torch.randn(2, 1, 4000)
    stack.train()
    a, b = stack(x)[0].z, stack(x)[0].z
    assert not torch.allclose(a, b)
    stack.eval()
    out = stack(x)[0]
    assert out.mu is not None
    torch.testing.assert_close(out.z, out.mu)


def test_gradient_is_cut_between_modules() -> None:
    cfg = load_config("gim-small")
    stack = Stack(cfg.model)
    objective = Objective(stack, cfg.objective)
    x = torch.randn(4, 1, 8000)
    outputs = stack(x, cut_gradients=True)
    losses = objective(outputs, Batch(x))
    losses[1].loss.backward()
    for p in stack.blocks[0].parameters():
        assert p.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stack.blocks[1].parameters())
    # end to end, the same loss does reach module 0
    stack.zero_grad(set_to_none=True)
    outputs = stack(x, cut_gradients=False)
    objective(outputs, Batch(x))[1].loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stack.blocks[0].parameters())


def test_frozen_modules_hold_no_graph() -> None:
    cfg = load_config("gim-small")
    stack = Stack(cfg.model)
    outs = stack(torch.randn(2, 1, 4000), frozen_below=1)
    assert not outs[0].c.requires_grad
    assert outs[1].c.requires_grad


def test_extract_features_resamples_and_rejects_bad_input() -> None:
    cfg = load_config("gim-small")
    stack = Stack(cfg.model)
    wave = np.random.default_rng(0).standard_normal(44100).astype(np.float32)
    feats = stack.extract_features(wave, 44100)
    assert [f.shape[0] for f in feats] == stack.n_frames(16000)
    with pytest.raises(ValueError, match="too short"):
        stack.extract_features(np.zeros(50, dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        stack.extract_features(np.zeros((2, 5000), dtype=np.float32))


@pytest.mark.parametrize("preset", ["gim-small", "vgim-thesis", "cpc-small"])
def test_chunked_extraction_equals_whole(preset: str) -> None:
    cfg = load_config(preset)
    stack = Stack(cfg.model)
    wave = np.random.default_rng(1).standard_normal(40000).astype(np.float32)
    whole = stack.extract_features(wave, chunk_frames=0)
    for chunk in (7, 50, 333):
        chunked = stack.extract_features(wave, chunk_frames=chunk)
        for a, b in zip(whole, chunked, strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_layer_norm_normalises_each_frame_before_the_relu() -> None:
    import dataclasses

    from vgim.config import ConfigError, LayerSpec, ModelConfig, validate

    layers = [LayerSpec("conv", 16, 10, 5, 2, norm="layer"), LayerSpec("conv", 16, 4, 2, 1)]
    cfg = ModelConfig(layers=layers, modules=[1, 1])
    stack = Stack(cfg).eval()
    conv = stack.blocks[0].encoder[0]
    assert isinstance(conv.norm, torch.nn.LayerNorm) and stack.blocks[1].encoder[0].norm is None
    # a quiet and a loud copy of the same sound give the same first-layer output (the norm removes scale;
    # exactly so without the convolution's bias)
    x = torch.randn(1, 1, 2000)
    with torch.no_grad():
        conv.conv.bias.zero_()
        pre = conv.conv(torch.cat([x, 100 * x]))
        out = conv(torch.cat([x, 100 * x]))
    torch.testing.assert_close(out[0], out[1], rtol=1e-3, atol=1e-3)
    frames = pre.transpose(1, 2)
    expected = torch.relu(
        (frames - frames.mean(-1, keepdim=True)) / torch.sqrt(frames.var(-1, unbiased=False, keepdim=True) + 1e-5)
    )
    torch.testing.assert_close(out, expected.transpose(1, 2), rtol=1e-4, atol=1e-4)
    bad = dataclasses.replace(cfg, layers=[LayerSpec("maxpool", 16, 2, 2, norm="layer"), layers[1]])
    with pytest.raises(ConfigError, match="norm=.layer. applies to conv and gabor layers only"):
        validate(dataclasses.replace(load_config("gim-small"), model=bad))


def _gabor_config(norm: str = "none") -> ModelConfig:
    from vgim.config import LayerSpec, ModelConfig

    layers = [LayerSpec("gabor", 24, 400, 160, 120, norm=norm), LayerSpec("conv", 16, 3, 1, 1)]  # type: ignore[arg-type]
    return ModelConfig(layers=layers, modules=[1, 1])


def test_gabor_filters_start_on_the_mel_scale_and_each_hears_its_own_frequency() -> None:
    from vgim.model.stack import mel_gabor_init

    cfg = _gabor_config()
    stack = Stack(cfg).eval()
    gabor = stack.blocks[0].encoder[0]
    centre, _ = mel_gabor_init(24, 400)
    hz = centre.numpy() * 16000 / (2 * np.pi)
    assert np.all(np.diff(hz) > 0) and 60 < hz[0] < 200 and 6500 < hz[-1] < 7800
    t = torch.arange(16000) / 16000
    waves = torch.stack([0.5 * torch.sin(2 * np.pi * float(f) * t) for f in hz])[:, None, :]
    with torch.no_grad():
        energy = gabor(waves)[:, :, 10:-10].mean(-1)  # [sine, filter], away from the padded edges
    assert torch.equal(energy.argmax(1), torch.arange(24))  # each sine is loudest in its own filter


def test_gabor_layer_geometry_loudness_and_gradients() -> None:
    from vgim.config import ConfigError, LayerSpec, validate

    stack = Stack(_gabor_config(norm="layer"))
    info = frame_infos(stack.cfg)[0]
    assert info.hop == 160 and stack.n_frames(16000) == [100, 100]
    # an impulse moves only the frames whose receptive field covers it
    base = torch.zeros(1, 1, 8000)
    bumped = base.clone()
    bumped[0, 0, 4321] = 1.0
    with torch.no_grad():
        d = (stack(bumped)[0].z - stack(base)[0].z).abs().sum(-1)[0]
    changed = torch.nonzero(d > 0).flatten().numpy()
    assert changed.size > 0 and np.all(np.abs(info.offset + changed * info.hop - 4321) <= info.receptive_field / 2)
    # with LayerNorm, a louder copy of a (not too quiet) sound gives the same frames: log energy shifts by a constant
    x = torch.randn(1, 1, 4000)
    with torch.no_grad():
        out = stack.blocks[0].encoder(torch.cat([x, 10 * x]))
    torch.testing.assert_close(out[0], out[1], rtol=1e-2, atol=2e-2)  # unnormalised, they differ by log(100)
    # InfoNCE reaches the filters' centre frequencies and widths
    stack.train()
    stack(torch.randn(2, 1, 4000))[0].z.pow(2).mean().backward()
    gabor = stack.blocks[0].encoder[0]
    assert gabor.centre.grad is not None and gabor.centre.grad.abs().sum() > 0
    assert gabor.width.grad is not None and gabor.width.grad.abs().sum() > 0
    cfg = load_config("gim-small")
    cfg.model.layers[1] = LayerSpec("gabor", 16, 400, 160, 120)
    with pytest.raises(ConfigError, match="gabor filter bank must be the first layer"):
        validate(cfg)


def test_thesis_network_frames_and_kernel_3_heads() -> None:
    """The thesis's network: 10240 samples -> 52 frames (module 1) -> 13 (module 2); the mu/sigma heads are
    parallel kernel-3 convolutions whose reach is part of the receptive field."""
    cfg = load_config("vgim-thesis")
    stack = Stack(cfg.model)
    assert stack.n_frames(10240) == [52, 13]
    assert [f.hop for f in stack.frames] == [192, 768]
    head = stack.block(0).bottleneck
    assert head.mu.kernel_size == (3,) and head.logvar.kernel_size == (3,)  # type: ignore[union-attr]
    assert load_config("gim-thesis").model.bottleneck == "gaussian"  # GIM keeps the heads, with beta = 0
    stack.eval()
    n, s = 10240, 5000
    base = torch.zeros(1, 1, n)
    bumped = base.clone()
    bumped[0, 0, s] = 1.0
    for m in range(2):
        with torch.no_grad():
            d = (stack(bumped)[m].z - stack(base)[m].z).abs().sum(-1)[0]
        changed = torch.nonzero(d > 0).flatten().numpy()
        info = stack.frames[m]
        reach = np.abs(info.offset + changed * info.hop - s)
        assert changed.size > 0 and np.all(reach <= info.receptive_field / 2)
        # without the heads' two extra frames of reach the outermost changed frames would lie outside it
        assert reach.max() > (info.receptive_field - 2 * info.hop) / 2 - info.hop


def test_gaussian_head_kernel_must_be_odd() -> None:
    from vgim.config import ConfigError

    with pytest.raises(ConfigError, match="odd"):
        load_config("vgim-thesis", ["model.bottleneck_options.kernel=2"])
