"""Tests for vgim.interpret.traversal: latent sweeps, ranking, KL, interpolation and their outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import tiny_config, toy_waves
from vgim.interpret.decoders import Decoder
from vgim.interpret.traversal import (
    SPAN_99,
    encode_latent,
    interpolate,
    plot_interpolation,
    plot_traversal,
    traverse,
    write_traversal_audio,
)
from vgim.model import Stack

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _model(variational: bool) -> Stack:
    """A tiny two-module stack (module 1: three convolutions; module 2: two convolutions and a GRU)."""
    torch.manual_seed(0)
    model = Stack(tiny_config(variational=variational).model).eval()
    if variational:  # spread the posteriors so that the KL differs between dimensions
        for m in range(model.n_modules):
            lv = model.block(m).bottleneck.logvar
            assert lv is not None
            torch.nn.init.normal_(lv.bias, 0.0, 0.5)  # type: ignore[arg-type]
    return model


def _decoder(model: Stack, module: int) -> Decoder:
    torch.manual_seed(1)
    return Decoder(model.cfg, module, hidden=8).eval()


@pytest.mark.parametrize("module", [0, 1])
def test_traversal_shapes_sweep_values_ranking_and_kl(module: int) -> None:
    model = _model(variational=True)
    dec = _decoder(model, module)
    wave = toy_waves(1, seconds=0.5)[0]
    dims = [0, 3, 5, 11]
    tr = traverse(model, dec, wave, module, dims=dims, n_steps=5)
    lat = encode_latent(model, wave, module)
    assert lat.logvar is not None
    frames = lat.base.shape[0]

    assert tr.audio.shape == (4, 5, wave.shape[0]) and tr.swept.shape == (4, 5, frames)
    assert sorted(tr.dims.tolist()) == dims
    assert np.all(np.diff(tr.effect_db) <= 0) and np.all(tr.effect_db > 0)
    np.testing.assert_allclose(tr.offsets, np.linspace(-SPAN_99, SPAN_99, 5), atol=1e-6)
    for k, d in enumerate(tr.dims):
        np.testing.assert_allclose(tr.swept[k, 0], lat.base[:, d] - SPAN_99, atol=1e-5)
        np.testing.assert_allclose(tr.swept[k, -1], lat.base[:, d] + SPAN_99, atol=1e-5)
        # offset 0 (the middle step) leaves the latent alone: it decodes to the plain reconstruction
        np.testing.assert_allclose(tr.audio[k, 2], tr.reconstruction, atol=1e-6)
        mu, lv = lat.base[:, d].astype(np.float64), lat.logvar[:, d].astype(np.float64)
        assert tr.kl[k] == pytest.approx(0.5 * np.mean(mu**2 + np.exp(lv) - lv - 1), rel=1e-5)
    assert len(set(np.round(tr.kl, 6))) == 4


def test_traversal_reruns_the_gru_on_the_modified_latent() -> None:
    model = _model(variational=True)
    dec = _decoder(model, 1)
    wave = toy_waves(1, seconds=0.5)[0]
    tr = traverse(model, dec, wave, 1, dims=[2, 7], n_steps=3, span=1.5)
    lat = encode_latent(model, wave, 1)
    block = model.block(1)
    assert block.ar is not None
    k, j = 1, 0
    z = torch.from_numpy(lat.base.copy())
    z[:, int(tr.dims[k])] += float(tr.offsets[j])
    with torch.no_grad():
        expected = dec(block.ar(z[None])[0], wave.shape[0])[0, 0].numpy()
    np.testing.assert_allclose(tr.audio[k, j], expected, atol=1e-6)


def test_traversal_of_a_deterministic_module_uses_the_std_over_time() -> None:
    model = _model(variational=False)
    dec = _decoder(model, 0)
    wave = toy_waves(1, seconds=0.5)[0]
    tr = traverse(model, dec, wave, 0, n_steps=3)
    lat = encode_latent(model, wave, 0)
    assert lat.logvar is None and not tr.variational
    assert tr.audio.shape == (16, 3, wave.shape[0]) and sorted(tr.dims.tolist()) == list(range(16))
    for k, d in enumerate(tr.dims):
        std = max(float(lat.base[:, d].std()), 1e-8)
        assert tr.scale[k] == pytest.approx(std, rel=1e-5)
        np.testing.assert_allclose(tr.swept[k, -1], lat.base[:, d] + SPAN_99 * std, atol=1e-5)
    assert np.all(np.isnan(tr.kl))
    assert np.all(np.diff(tr.effect_db) <= 0)


def test_traversal_rejects_bad_arguments() -> None:
    model = _model(variational=True)
    wave = toy_waves(1, seconds=0.3)[0]
    with pytest.raises(ValueError, match="decodes module"):
        traverse(model, _decoder(model, 0), wave, 1)
    with pytest.raises(ValueError, match="dims"):
        traverse(model, _decoder(model, 1), wave, 1, dims=[16])
    with pytest.raises(ValueError, match="n_steps"):
        traverse(model, _decoder(model, 1), wave, 1, n_steps=1)


@pytest.mark.parametrize("module", [0, 1])
def test_interpolation_endpoints_decode_each_utterance(module: int) -> None:
    model = _model(variational=True)
    dec = _decoder(model, module)
    a, b = toy_waves(2, seconds=0.75, seed=3)
    b = b[:9001]
    path = interpolate(model, dec, a, b, module, n_steps=5)
    assert len(path) == 5 and all(p.shape == (9001,) for p in path)
    with torch.no_grad():
        ca = model(torch.from_numpy(a).view(1, 1, -1), sample=False)[module].c
        cb = model(torch.from_numpy(b).view(1, 1, -1), sample=False)[module].c
        frames = cb.shape[1]
        own_a = dec(ca[:, :frames], 9001)[0, 0].numpy()
        own_b = dec(cb, 9001)[0, 0].numpy()
    np.testing.assert_allclose(path[0], own_a, atol=1e-5)
    np.testing.assert_allclose(path[-1], own_b, atol=1e-5)
    assert not np.allclose(path[2], path[0]) and not np.allclose(path[2], path[-1])


def test_plots_and_audio_files(tmp_path: Path) -> None:
    model = _model(variational=True)
    dec = _decoder(model, 1)
    a, b = toy_waves(2, seconds=0.4, seed=4)
    tr = traverse(model, dec, a, 1, dims=[1, 2, 3], n_steps=4)
    png = plot_traversal(tr, tmp_path / "traversal.png", n_dims=2)
    assert png.read_bytes()[:8] == PNG_MAGIC
    wavs = write_traversal_audio(tr, tmp_path / "wav")
    assert len(wavs) == 2 + 3 * 4 and all(p.exists() for p in wavs)
    data, sr = sf.read(wavs[-1])
    assert sr == 16000 and data.shape == a.shape
    png2 = plot_interpolation(interpolate(model, dec, a, b, 1, n_steps=3), tmp_path / "interp.png", module=1)
    assert png2.read_bytes()[:8] == PNG_MAGIC


def test_thesis_traversal_starts_from_the_zero_vector() -> None:
    model = _model(variational=True)
    dec = _decoder(model, 0)
    wave = toy_waves(1, seconds=0.5)[0]
    tr = traverse(model, dec, wave, 0, dims=[1, 4], n_steps=3, origin="zero")
    frames = encode_latent(model, wave, 0).base.shape[0]
    assert tr.origin == "zero" and tr.swept.shape == (2, 3, frames)
    for k in range(2):  # the swept dimension takes the offsets themselves at every frame
        np.testing.assert_allclose(tr.swept[k], np.repeat(tr.offsets[:, None], frames, axis=1), atol=1e-6)
    zero = torch.zeros(1, frames, model.block(0).z_channels)
    with torch.no_grad():
        silent = dec(zero, wave.shape[0])[0, 0].numpy()
    np.testing.assert_allclose(tr.audio[0, 1], silent, atol=1e-6)  # offset 0: the zero vector decoded
    assert not np.allclose(tr.audio[0, 1], tr.reconstruction)
    with pytest.raises(ValueError, match="origin"):
        traverse(model, dec, wave, 0, origin="mean")


def test_traversal_synthesizes_only_the_top_dimensions_when_asked() -> None:
    model = _model(variational=True)
    dec = _decoder(model, 0)
    wave = toy_waves(1, seconds=0.5)[0]
    full = traverse(model, dec, wave, 0, dims=[0, 2, 5, 9], n_steps=3)
    top = traverse(model, dec, wave, 0, dims=[0, 2, 5, 9], n_steps=3, audio_dims=2)
    np.testing.assert_array_equal(top.dims, full.dims)  # the ranking needs no audio of the rest
    np.testing.assert_allclose(top.effect_db, full.effect_db)
    assert top.audio.shape == (2, 3, wave.shape[0])
    np.testing.assert_allclose(top.audio, full.audio[:2], atol=1e-6)
    with pytest.raises(ValueError, match="audio_dims"):
        traverse(model, dec, wave, 0, audio_dims=0)


def test_spectrogram_decoder_power_needs_no_synthesis_and_matches_its_audio() -> None:
    from vgim.interpret.spectra import log_spectrogram
    from vgim.objective.spectrogram import SpectrogramDecoder, SpectrogramOptions

    model = _model(variational=False)
    torch.manual_seed(2)
    dec = SpectrogramDecoder(16, model.frames[0], 0, SpectrogramOptions(hidden=8, blocks=1), 16000).eval()
    wave = toy_waves(1, seconds=0.5)[0]
    with torch.no_grad():
        c = model(torch.from_numpy(wave).view(1, 1, -1), sample=False)[0].c
    predicted = dec.power_db(c, wave.shape[0])[0]
    heard = log_spectrogram(dec.synthesize(c, wave.shape[0])[0, 0].numpy())
    assert predicted.shape == heard.shape
    # Griffin-Lim cannot make every magnitude exact, but the sound has the predicted spectrum on average
    loud = predicted > predicted.max() - 40
    assert abs(float(np.mean(predicted[loud] - heard[loud]))) < 3.0
