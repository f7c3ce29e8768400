"""Tests for vgim.interpret.decoders: per-module decoders, their training, resume, metrics and examples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import tiny_config, toy_waves
from vgim.config import available_presets, load_config
from vgim.data.batches import CropBatches
from vgim.data.corpus import AudioCorpus, Utterance
from vgim.interpret.decoders import (
    DECODER_FILE,
    DECODER_KINDS,
    Decoder,
    DecodeResult,
    ReconstructionLoss,
    load_decoders,
    log_spectral_distance,
    module_channels,
    reconstruct,
    train_decoders,
)
from vgim.model import Stack
from vgim.objective.reconstruction import ThesisMelLoss
from vgim.objective.spectrogram import SpectrogramDecoder
from vgim.train import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def toy_corpus() -> AudioCorpus:
    """Twelve training and three test utterances of toy audio, with a ``split`` each."""
    train_waves, test_waves = toy_waves(12), toy_waves(3, seconds=0.8, seed=7)
    utts = [Utterance(f"train{i}.wav", {}, None, "train") for i in range(len(train_waves))]
    utts += [Utterance(f"test{i}.wav", {}, None, "test") for i in range(len(test_waves))]
    return AudioCorpus(utts, train_waves + test_waves, 16000)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny two-module V-GIM run (module 2 ends in a GRU), trained for a few steps."""
    torch.set_num_threads(1)
    cfg = tiny_config(variational=True, beta=0.01, steps=10)
    run = tmp_path_factory.mktemp("runs") / "tiny"
    batches = CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=0)
    train(cfg, run, batches=batches, progress=False)
    return run


@pytest.mark.parametrize("preset", available_presets())
def test_decoder_output_length_equals_input_length(preset: str) -> None:
    cfg = load_config(preset)
    stack = Stack(cfg.model).eval()
    for n in (cfg.data.crop_samples, 9781):
        with torch.no_grad():
            outs = stack(torch.randn(1, 1, n), sample=False)
            for m, out in enumerate(outs):
                dec = Decoder(cfg.model, m, hidden=4)
                assert dec.in_channels == module_channels(cfg.model, m) == out.c.shape[-1]
                assert dec(out.c, n).shape == (1, 1, n), (preset, m, n)
                # the transposed convolutions alone already come within one stride product of the input
                assert n - stack.frames[m].hop <= dec(out.c).shape[-1] <= n


def test_decoder_mirrors_the_encoder_layers() -> None:
    cfg = load_config("vgim-thesis")  # module 1: conv 10/4, pool 8/4, conv 8/3, pool 8/4; module 2: conv 6/2 x 2
    dec = Decoder(cfg.model, 1, hidden=8)
    specs = [s for s in cfg.model.layers if s.kind in ("conv", "maxpool")][::-1]
    assert len(dec.layers) == len(specs) == 6
    for layer, spec in zip(dec.layers, specs, strict=True):
        assert isinstance(layer, torch.nn.ConvTranspose1d)
        assert (layer.kernel_size[0], layer.stride[0], layer.padding[0]) == (spec.kernel, spec.stride, spec.padding)
    assert dec.layers[0].in_channels == 32 and dec.layers[-1].out_channels == 1
    assert all(layer.out_channels == 8 for layer in dec.layers[:-1])


def test_reconstruction_loss_and_lsd() -> None:
    x = torch.from_numpy(np.stack(toy_waves(2))).unsqueeze(1)
    loss = ReconstructionLoss()
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(0.5 * x, x)) > 0.1
    short = x[..., :700]  # shorter than the larger FFT sizes: those are skipped
    assert math.isfinite(float(loss(0.5 * short, short)))
    w = x[0, 0].numpy()
    assert log_spectral_distance(w, w) == 0.0
    # halving the amplitude shifts every bin by 10 log10(4) = 6.02 dB
    assert log_spectral_distance(w, 0.5 * w) == pytest.approx(6.02, abs=0.05)


def _fixed_loss(run: Path, decoders: dict[int, Decoder]) -> dict[int, float]:
    import vgim

    model = vgim.load(run)
    x = CropBatches(toy_waves(4, seed=3), 6400, 4, seed=5).batch(0).audio
    loss = ReconstructionLoss()
    with torch.no_grad():
        outs = model(x, sample=False)
        return {m: float(loss(d(outs[m].c, x.shape[-1]), x)) for m, d in decoders.items()}


def test_train_decoders_lowers_loss_and_writes_metrics(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dec"
    cfg = tiny_config(variational=True)
    torch.manual_seed(0)  # train_decoders initialises with seed 0 in the same order
    before = _fixed_loss(tiny_run, {m: Decoder(cfg.model, m, hidden=16) for m in (0, 1)})

    def decode(n_examples: int) -> DecodeResult:
        return train_decoders(
            tiny_run,
            corpus=toy_corpus(),
            kind="waveform",
            steps=40,
            batch_size=4,
            hidden=16,
            out_dir=out,
            progress=False,
            n_examples=n_examples,
        )

    result = decode(1)
    # logged every 2 steps (steps // 20), from step 1 on
    assert result.step == 40 and all(len(h) == 20 for h in result.history.values())
    after = _fixed_loss(tiny_run, load_decoders(out))
    for m in (0, 1):
        assert after[m] < before[m] - 0.1, (before, after)

    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["module"] for e in metrics["modules"]] == [0, 1]
    assert metrics["n_test_files"] == 3 and metrics["steps"] == 40
    for entry in metrics["modules"]:
        assert math.isfinite(entry["mse"]) and entry["mse"] >= 0
        assert math.isfinite(entry["lsd_db"]) and entry["lsd_db"] >= 0
    assert set(result.metrics) == {0, 1}

    assert len(result.figures) == 1 and result.figures[0].read_bytes()[:8] == PNG_MAGIC
    assert len(result.wavs) == 3  # original, m1, m2
    wave, sr = sf.read(result.wavs[0])
    assert sr == 16000 and wave.shape == (int(16000 * 0.8),)

    # a finished training is only re-evaluated
    again = decode(0)
    assert again.step == 40 and again.metrics[1]["mse"] == pytest.approx(result.metrics[1]["mse"])


@pytest.mark.parametrize("kind", sorted(DECODER_KINDS))
def test_interrupted_decoder_training_resumes_to_the_same_weights(kind: str, tiny_run: Path, tmp_path: Path) -> None:
    def run(out: Path, hidden: int = 8, stop_after: int | None = None) -> DecodeResult:
        return train_decoders(
            tiny_run,
            corpus=toy_corpus(),
            kind=kind,
            steps=12,
            batch_size=2,
            hidden=hidden,
            out_dir=out,
            progress=False,
            n_examples=0,
            checkpoint_every=5,
            stop_after=stop_after,
        )

    full = run(tmp_path / "full")
    part = run(tmp_path / "part", stop_after=7)  # "killed" after step 7 (checkpoints at 5 and 7)
    assert part.step == 7 and part.metrics == {} and not (tmp_path / "part" / "metrics.json").exists()
    state = torch.load(tmp_path / "part" / DECODER_FILE, weights_only=True)
    assert state["step"] == 7
    resumed = run(tmp_path / "part")
    assert resumed.step == 12 and len(resumed.history[0]) == 12
    assert resumed.history[0][:7] == part.history[0]
    a, b = load_decoders(tmp_path / "full"), load_decoders(tmp_path / "part" / DECODER_FILE)
    for m in (0, 1):
        for (name, pa), pb in zip(a[m].state_dict().items(), b[m].state_dict().values(), strict=True):
            assert torch.allclose(pa, pb, atol=1e-6), (m, name)
    assert resumed.metrics[0]["mse"] == pytest.approx(full.metrics[0]["mse"], rel=1e-4)
    with pytest.raises(ValueError, match="hidden"):
        run(tmp_path / "part", hidden=4)


def test_a_decoder_run_keeps_no_copy_of_the_frozen_encoder(tiny_run: Path, tmp_path: Path) -> None:
    import vgim
    from vgim.interpret.decoders import decoder_config
    from vgim.train.checkpoint import FROZEN_ENCODER, encoder_fingerprint

    out = tmp_path / "dec"
    train_decoders(
        tiny_run, corpus=toy_corpus(), kind="waveform", steps=4, batch_size=2, hidden=8, out_dir=out, progress=False,
        n_examples=0, listen=False,
    )  # fmt: skip
    encoder = vgim.load(tiny_run).state_dict()
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert "model" not in state and state[FROZEN_ENCODER] == encoder_fingerprint(encoder)
    assert not (out / "export").exists()  # the encoder is tiny_run's own export, unchanged
    assert (out / DECODER_FILE).is_file() and (out / "metrics.json").is_file()
    with pytest.raises(ValueError, match="keeps only its heads, not the encoder"):
        vgim.load(out)

    # a resume is refused when the encoder is not the one the decoders started from
    run_cfg = vgim.load(tiny_run).config
    assert run_cfg is not None
    cfg = decoder_config(run_cfg, kind="waveform", steps=4, batch_size=2, hidden=8)
    part = tmp_path / "part"
    batches = CropBatches(toy_waves(), cfg.data.crop_samples, 2, seed=0)
    train(cfg, part, batches=batches, progress=False, init_model=encoder, stop_after=2)
    other = {k: v + 0.01 if v.is_floating_point() else v for k, v in encoder.items()}
    for given in (other, None):
        with pytest.raises(ValueError, match="trained on another encoder"):
            train(cfg, part, batches=batches, resume=True, progress=False, init_model=given)
    assert train(cfg, part, batches=batches, resume=True, progress=False, init_model=encoder).step == 4


@pytest.mark.parametrize("kind", sorted(DECODER_KINDS))
def test_load_decoders_and_reconstruct_any_length(kind: str, tiny_run: Path, tmp_path: Path) -> None:
    import vgim

    train_decoders(
        tiny_run,
        corpus=toy_corpus(),
        kind=kind,
        steps=2,
        batch_size=2,
        hidden=8,
        out_dir=tmp_path,
        progress=False,
        n_examples=0,
    )
    decoders = load_decoders(tmp_path, "cpu")
    expected = SpectrogramDecoder if kind == "spectrogram" else Decoder
    assert all(type(d) is expected for d in decoders.values())
    assert sorted(decoders) == [0, 1] and all(not d.training for d in decoders.values())
    wave = toy_waves(1, seconds=0.77)[0][:12321]
    rec = reconstruct(vgim.load(tiny_run), decoders, wave)
    assert sorted(rec) == [0, 1]
    assert all(r.shape == wave.shape and r.dtype == np.float32 for r in rec.values())
    with pytest.raises(FileNotFoundError):
        load_decoders(tmp_path / "nothing")


def test_decoders_written_before_decoder_kinds_load_as_waveform_decoders(tiny_run: Path, tmp_path: Path) -> None:
    train_decoders(
        tiny_run, corpus=toy_corpus(), kind="waveform", steps=2, batch_size=2, hidden=8, out_dir=tmp_path,
        progress=False, n_examples=0, listen=False,
    )  # fmt: skip
    file = tmp_path / DECODER_FILE
    state = torch.load(file, weights_only=True)
    old = {k: v for k, v in state.items() if k not in ("kind", "head", "options")} | {"hidden": 8}
    torch.save(old, file)
    decoders = load_decoders(file)
    assert all(type(d) is Decoder and d.hidden == 8 for d in decoders.values())
    for m, d in decoders.items():
        for name, value in d.state_dict().items():
            assert torch.equal(value, state["decoders"][m][name])


def test_thesis_mel_loss() -> None:
    x = torch.from_numpy(np.stack(toy_waves(2))).unsqueeze(1)
    loss = ThesisMelLoss()
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    # halving the amplitude lowers every mel band's power by log10(4) = 0.602: the MSE is 0.602^2
    assert float(loss(0.5 * x, x)) == pytest.approx(0.602**2, rel=0.02)
    assert loss.log_mel(x).shape == (2, 128, 16000 // 2048 + 1)


def test_decoder_kind_is_checked(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        train_decoders(tiny_run, corpus=toy_corpus(), kind="wavenet", steps=2, out_dir=tmp_path, progress=False)
