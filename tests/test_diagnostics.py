"""Tests for vgim.interpret.diagnostics: latent KL, metrics.csv plots, MIG and disentanglement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, toy_waves
from vgim.config import Config
from vgim.data.batches import CropBatches
from vgim.data.corpus import load_corpus
from vgim.data.synthetic import synthesize_corpus
from vgim.interpret.diagnostics import (
    accuracy_per_k,
    active_dimensions,
    discretise,
    disentanglement,
    latent_kl,
    mig,
    plot_accuracy_per_k,
    plot_latent_kl,
    plot_mi_matrix,
    plot_training_curves,
    read_metrics,
    syllable_factors,
    syllable_latents,
)
from vgim.model import Stack
from vgim.train import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC, path


# ---------------------------------------------------------------------------- KL


def _fixed_posterior_model(mu: np.ndarray, logvar: np.ndarray) -> Stack:
    """A variational tiny stack whose module-1 posterior is N(mu, exp(logvar)) at every frame."""
    model = Stack(tiny_config(variational=True).model).eval()
    block = model.block(0).bottleneck
    assert block.mu is not None and block.logvar is not None
    with torch.no_grad():
        block.mu.weight.zero_()
        block.mu.bias.copy_(torch.from_numpy(mu).float())  # type: ignore[union-attr]
        block.logvar.weight.zero_()
        block.logvar.bias.copy_(torch.from_numpy(logvar).float())  # type: ignore[union-attr]
    return model


def test_latent_kl_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 1.5, 16).astype(np.float32)
    logvar = rng.normal(-1, 1, 16).astype(np.float32)
    mu[:4] = 0.0
    logvar[:4] = 0.0  # N(0, 1): exactly zero KL (collapsed)
    model = _fixed_posterior_model(mu, logvar)
    waves = toy_waves(3, seconds=0.5) + toy_waves(1, seconds=1.2, seed=5)
    kl = latent_kl(model, waves, 0)
    m, lv = mu.astype(np.float64), logvar.astype(np.float64)
    expected = 0.5 * (m**2 + np.exp(lv) - lv - 1.0)
    assert kl.shape == (16,)
    np.testing.assert_allclose(kl, expected, rtol=1e-6, atol=1e-9)
    assert active_dimensions(kl) == int(np.sum(expected > 0.01)) <= 12
    assert active_dimensions(kl, threshold=1e9) == 0


def test_latent_kl_rejects_deterministic_modules() -> None:
    waves = toy_waves(1)
    with pytest.raises(ValueError, match="deterministic"):
        latent_kl(Stack(tiny_config().model), waves, 0)
    # GIM's last module is a GRU alone: never variational
    gru_only = Stack(tiny_config(modules=[5, 1], variational=True).model)
    assert latent_kl(gru_only, waves, 0).shape == (16,)
    with pytest.raises(ValueError, match="deterministic"):
        latent_kl(gru_only, waves, 1)
    with pytest.raises(ValueError, match="out of range"):
        latent_kl(gru_only, waves, 2)


def test_plot_latent_kl(tmp_path: Path) -> None:
    kls = {"V-GIM m1": np.r_[np.linspace(2, 0.1, 10), np.zeros(6)], "V-GIM m2": np.linspace(1, 0, 16)}
    assert_png(plot_latent_kl(kls, tmp_path / "kl.png"))


# ---------------------------------------------------------------------------- metrics.csv

METRICS = """step,module,lr,loss,infonce,kl,accuracy,mi_bound,acc_k1,acc_k2,acc_k3
25,0,0.001,2.5,2.4,30.0,0.10,0.0,0.20,0.10,0.05
25,1,0.001,2.6,2.5,20.0,0.09,0.0,0.15,0.08,0.04
50,1,0.001,2.0,1.9,10.0,0.40,0.5,0.70,0.40,0.10
50,0,0.001,1.8,1.7,12.0,0.50,0.6,0.90,0.50,0.25
"""


def _write_run(tmp_path: Path, name: str = "run") -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "metrics.csv").write_text(METRICS)
    (run / "config.json").write_text(json.dumps({"objective": {"n_negatives": 10}}))
    return run


def test_accuracy_per_k_reads_last_logged_step(tmp_path: Path) -> None:
    run = _write_run(tmp_path)
    acc = accuracy_per_k(run / "metrics.csv")
    assert sorted(acc) == [0, 1]
    np.testing.assert_allclose(acc[0], [0.90, 0.50, 0.25])
    np.testing.assert_allclose(acc[1], [0.70, 0.40, 0.10])
    assert accuracy_per_k(run)[0].shape == (3,)  # a run directory works too
    np.testing.assert_allclose(accuracy_per_k(run, average_last=2)[0], [0.55, 0.30, 0.15])
    np.testing.assert_allclose(accuracy_per_k(run, average_last=10)[1], [0.425, 0.24, 0.07])
    metrics = read_metrics(run)
    np.testing.assert_array_equal(metrics[0]["step"], [25, 50])
    np.testing.assert_allclose(metrics[1]["kl"], [20.0, 10.0])


def test_accuracy_per_k_without_columns(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,module,loss\n5,0,1.0\n")
    with pytest.raises(ValueError, match="acc_k"):
        accuracy_per_k(path)
    with pytest.raises(FileNotFoundError):
        accuracy_per_k(tmp_path / "missing.csv")


def test_metric_plots(tmp_path: Path) -> None:
    a, b = _write_run(tmp_path, "a"), _write_run(tmp_path, "b")
    assert_png(plot_accuracy_per_k(a / "metrics.csv", tmp_path / "acc.png"))
    assert_png(plot_accuracy_per_k({"V-GIM": a, "GIM": b}, tmp_path / "acc2.png", average_last=2))
    assert_png(plot_training_curves(a / "metrics.csv", tmp_path / "curves.png"))
    assert_png(plot_training_curves({"V-GIM": a, "GIM": b}, tmp_path / "curves2.png"))


# ---------------------------------------------------------------------------- MIG


def _factors(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"a": rng.integers(0, 4, n), "b": rng.integers(0, 3, n), "c": rng.integers(0, 5, n)}


def test_discretise_equal_frequency() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    codes = discretise(x, 20)
    assert codes.min() == 0 and codes.max() == 19
    assert np.all(np.bincount(codes) == 50)
    ties = discretise(np.r_[np.zeros(600), np.arange(400.0)], 20)
    assert len(set(ties[:600].tolist())) == 1  # equal values share a bin


def test_mig_perfectly_disentangled_is_near_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 3000
    f = _factors(n, rng)
    exact = np.stack([f["a"], f["b"], f["c"]], axis=1).astype(np.float64)  # dimension i = factor i
    z = np.concatenate([exact, rng.normal(size=(n, 2))], axis=1)  # plus two nuisance dimensions
    res = mig(z, f)
    assert res.mi.shape == (5, 3) and res.gaps.shape == (3,)
    assert res.best_dims.tolist() == [0, 1, 2]
    np.testing.assert_allclose(np.diag(res.mi[:3]), 1.0, atol=1e-9)
    assert res.mig > 0.97
    # with noise, equal-frequency bins straddling two factor values lose a little information
    noisy = mig(exact + 0.05 * rng.normal(size=(n, 3)), f)
    assert noisy.best_dims.tolist() == [0, 1, 2] and noisy.mig > 0.85
    assert_png(plot_mi_matrix(res, tmp_path / "mi.png"))
    assert json.dumps(res.to_dict())


def test_mig_entangled_and_random_are_near_zero() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    f = _factors(n, rng)
    codes = np.stack([f["a"], f["b"], f["c"]], axis=1).astype(np.float64)
    mixing = np.ones((3, 6)) + 0.01 * rng.normal(size=(3, 6))  # every dimension mixes all factors
    z = codes @ mixing + 0.05 * rng.normal(size=(n, 6))
    entangled = mig(z, f)
    assert entangled.mig < 0.1
    assert np.all(entangled.mi > 0.05)  # informative, just not disentangled
    random = mig(rng.normal(size=(n, 8)), f)
    assert random.mig < 0.02 and random.mi.max() < 0.05


def test_mig_checks() -> None:
    z = np.zeros((10, 2))
    with pytest.raises(ValueError, match="values"):
        mig(z, {"a": [0] * 9})
    with pytest.raises(ValueError, match="single value"):
        mig(z, {"a": [0] * 10})
    with pytest.raises(ValueError, match="no factors"):
        mig(z, {})
    one = mig(np.arange(10.0)[:, None], {"a": [0, 1] * 5})
    assert one.gaps[0] == pytest.approx(one.mi[0, 0])  # a single dimension: gap = its MI


# ---------------------------------------------------------------------------- on a trained model


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    manifest = synthesize_corpus(tmp_path_factory.mktemp("corpus"), n_speakers=2, words_per_speaker=6, progress=False)
    return load_corpus(manifest.parent, manifest=str(manifest), progress=False)


def _batches(cfg: Config) -> CropBatches:
    return CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=cfg.train.seed)


def test_disentanglement_on_trained_tiny_model(tmp_path: Path, tiny_corpus) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_config(variational=True, beta=0.0035, steps=10)
    train(cfg, tmp_path / "run", batches=_batches(cfg), progress=False)
    import vgim

    model = vgim.load(tmp_path / "run")
    n_syl = sum(len(u.segments) for u in tiny_corpus.utterances)

    facts = syllable_factors(tiny_corpus)
    assert list(facts) == ["speaker", "consonant", "vowel", "pitch"]
    assert all(v.shape == (n_syl,) for v in facts.values())
    first = tiny_corpus.utterances[0]
    assert facts["vowel"][:3].tolist() == first.labels["vowels"].split("-")
    assert facts["speaker"][:3].tolist() == [first.labels["speaker"]] * 3

    latents = syllable_latents(model, tiny_corpus)
    assert [z.shape for z in latents] == [(n_syl, 16), (n_syl, 16)]

    results = disentanglement(model, tiny_corpus, n_bins=5)
    assert sorted(results) == [0, 1]
    for res in results.values():
        assert res.factor_names == ["speaker", "consonant", "vowel", "pitch"]
        assert res.mi.shape == (16, 4) and res.n_examples == n_syl
        assert np.all(res.mi >= -1e-9) and np.all(res.mi <= 1 + 1e-9)
        assert 0.0 <= res.mig <= 1.0

    kl = latent_kl(model, tiny_corpus.waves, 1)
    assert kl.shape == (16,) and np.all(np.isfinite(kl)) and np.all(kl >= 0)
    assert_png(plot_accuracy_per_k(tmp_path / "run", tmp_path / "acc.png"))
