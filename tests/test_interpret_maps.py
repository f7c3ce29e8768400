"""Tests for vgim.interpret.maps (t-SNE maps) and vgim.interpret.activations (activations, kernels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_config, toy_waves
from vgim.config import LayerSpec, ModelConfig
from vgim.data.corpus import load_corpus
from vgim.data.synthetic import synthesize_corpus
from vgim.evaluate.probes import DEFAULT_TASKS
from vgim.interpret.activations import (
    kernel_frequencies,
    kernel_responses,
    module_outputs,
    plot_activations,
    plot_kernel_responses,
    top_std_channels,
)
from vgim.interpret.maps import draw_maps, plot_tsne, pooled_examples, tsne_map
from vgim.model import Stack

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC, path


# ---------------------------------------------------------------------------- t-SNE


def test_tsne_separates_two_gaussian_clusters() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (40, 10))
    b = rng.normal(0.0, 1.0, (40, 10)) + 8.0
    x = np.concatenate([a, b])
    labels = ["a"] * 40 + ["b"] * 40
    pts = tsne_map(x, labels, seed=0)
    assert pts.shape == (80, 2) and np.all(np.isfinite(pts))
    ma, mb = pts[:40].mean(axis=0), pts[40:].mean(axis=0)
    spread = max(np.linalg.norm(pts[:40] - ma, axis=1).max(), np.linalg.norm(pts[40:] - mb, axis=1).max())
    assert np.linalg.norm(ma - mb) > 2 * spread  # clusters far apart relative to their size
    # every point is nearer its own cluster mean
    own = np.where(np.arange(80)[:, None] < 40, ma, mb)
    other = np.where(np.arange(80)[:, None] < 40, mb, ma)
    assert np.all(np.linalg.norm(pts - own, axis=1) < np.linalg.norm(pts - other, axis=1))


def test_tsne_small_inputs_and_checks() -> None:
    x = np.random.default_rng(1).normal(size=(5, 3))
    assert tsne_map(x, list("abcde"), perplexity=30).shape == (5, 2)  # perplexity clipped below N
    assert tsne_map(x[:1], ["a"]).shape == (1, 2)
    assert tsne_map(np.zeros((4, 1)) + np.arange(4)[:, None], list("abcd")).shape == (4, 2)  # one feature
    with pytest.raises(ValueError, match="rows"):
        tsne_map(x, ["a"])
    with pytest.raises(ValueError, match="NaN"):
        tsne_map(np.full((3, 2), np.nan), list("abc"))


def test_plot_tsne_writes_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 2))
    labels = [f"spk{i % 3}" for i in range(30)]
    out = plot_tsne(pts, labels, tmp_path / "sub" / "map.png", "a title", "speaker")
    assert out == tmp_path / "sub" / "map.png"
    assert_png(out)
    with pytest.raises(ValueError):
        plot_tsne(pts[:, :1], labels, tmp_path / "bad.png", "t", "l")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    manifest = synthesize_corpus(tmp_path_factory.mktemp("corpus"), n_speakers=2, words_per_speaker=6, progress=False)
    return load_corpus(manifest.parent, manifest=str(manifest), progress=False)


def test_pooled_examples_and_draw_maps(tmp_path: Path, tiny_corpus) -> None:  # type: ignore[no-untyped-def]
    model = Stack(tiny_config().model).eval()
    n_syl = sum(len(u.segments) for u in tiny_corpus.utterances)
    feats = [[f.numpy() for f in model.extract_features(w)] for w in tiny_corpus.waves]
    per_module = [[f[m] for f in feats] for m in range(model.n_modules)]
    x, y = pooled_examples(per_module[0], model.frames[0], tiny_corpus, DEFAULT_TASKS[0])
    assert x.shape == (n_syl, 16) and y.shape == (n_syl,)
    assert set(y) <= {"ba", "bi", "bu", "da", "di", "du", "ga", "gi", "gu"}
    x, y = pooled_examples(per_module[1], model.frames[1], tiny_corpus, DEFAULT_TASKS[3])
    assert x.shape == (len(tiny_corpus), 16) and set(y) == {"spk0", "spk1"}

    files = draw_maps(model, tiny_corpus, tmp_path / "maps", name="tiny GIM", features=per_module)
    assert [f.name for f in files] == [f"tiny_gim_m{m}_{t.name}.png" for m in (1, 2) for t in DEFAULT_TASKS]
    for f in files:
        assert_png(f)


# ---------------------------------------------------------------------------- activations


def test_top_std_channels_picks_most_varying() -> None:
    rng = np.random.default_rng(0)
    x = 0.01 * rng.normal(size=(200, 12)) + 5.0  # large mean, tiny variation
    x[:, 7] += 3.0 * np.sin(np.linspace(0, 20, 200))
    x[:, 2] += 2.0 * rng.normal(size=200)
    x[:, 10] += 1.0 * rng.normal(size=200)
    assert top_std_channels(x, 3).tolist() == [7, 2, 10]
    assert top_std_channels(x, 100).shape == (12,)
    with pytest.raises(ValueError):
        top_std_channels(x, 0)


def test_module_outputs_match_extract_features() -> None:
    model = Stack(tiny_config(variational=True).model).eval()
    wave = toy_waves(1)[0]
    outs = module_outputs(model, wave)
    feats = model.extract_features(wave)
    for o, f in zip(outs, feats, strict=True):
        torch.testing.assert_close(o.c[0], f)
        assert o.mu is not None
        torch.testing.assert_close(o.z, o.mu)  # deterministic: z is the mean
    assert len(module_outputs(model, wave, upto=0)) == 1
    with pytest.raises(ValueError, match="out of range"):
        module_outputs(model, wave, upto=5)
    with pytest.raises(ValueError, match="too short"):
        module_outputs(model, wave[:50])


def test_plot_activations(tmp_path: Path) -> None:
    model = Stack(tiny_config(variational=True).model).eval()
    wave = toy_waves(1, seconds=0.8)[0]
    out = plot_activations(model, wave, 0, tmp_path / "act0.png", n_channels=4)
    assert_png(out)
    segs = [(0, 4000), (4000, 9000), (9000, 12800)]
    assert_png(
        plot_activations(
            model, wave, 1, tmp_path / "act1.png", kind="latent", segments=segs, segment_labels=["ba", "di", "gu"]
        )
    )
    # another sample rate: resampled for the model, drawn on the original time axis
    wave8k = wave[::2].copy()
    assert_png(plot_activations(model, wave8k, 1, tmp_path / "act8k.png", sample_rate=8000))
    with pytest.raises(ValueError, match="out of range"):
        plot_activations(model, wave, 2, tmp_path / "bad.png")


# ---------------------------------------------------------------------------- kernels


def _wide_kernel_model(kernel: int = 64, channels: int = 3) -> Stack:
    layers = [LayerSpec("conv", channels, kernel, 16, 0), LayerSpec("conv", 4, 4, 2, 0)]
    return Stack(ModelConfig(layers=layers, modules=[2])).eval()


def test_kernel_response_peaks_at_sinusoid_frequency(tmp_path: Path) -> None:
    model = _wide_kernel_model()
    n = np.arange(64)
    targets = [500.0, 2000.0, 5000.0]
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv1d))
    with torch.no_grad():
        for i, f in enumerate(targets):
            k = np.hanning(64) * np.sin(2 * np.pi * f * n / 16000)
            conv.weight[i, 0] = torch.from_numpy(k).float()
    resp = kernel_responses(model, n_fft=1024)
    freqs = kernel_frequencies(1024, 16000)
    assert resp.shape == (3, 513) and freqs.shape == (513,)
    peaks = freqs[resp.argmax(axis=1)]
    np.testing.assert_allclose(peaks, targets, atol=2 * 16000 / 1024)
    # the response is in dB of the magnitude: check one value directly
    mag = np.abs(np.fft.rfft(conv.weight[1, 0].detach().double().numpy(), 1024))
    np.testing.assert_allclose(resp[1], 20 * np.log10(np.maximum(mag, 1e-12)), rtol=1e-6, atol=1e-6)
    assert_png(plot_kernel_responses(model, tmp_path / "kernels.png"))
    with pytest.raises(ValueError, match="n_fft"):
        kernel_responses(model, n_fft=32)


def test_kernel_responses_of_tiny_model() -> None:
    model = Stack(tiny_config().model)
    assert kernel_responses(model, n_fft=256).shape == (16, 129)
