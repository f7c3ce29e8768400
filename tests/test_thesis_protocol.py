"""The thesis's probe protocol (``vgim.evaluate.thesis_probe``, ``vgim experiment thesis --protocol``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import tiny_config
from vgim.data.corpus import AudioCorpus, Utterance
from vgim.evaluate import thesis_probe
from vgim.evaluate.thesis_probe import (
    THESIS_PROTOCOL_TASKS,
    ThesisMaps,
    ThesisProbeConfig,
    draw_per_class,
    encode_padded,
    flatten_maps,
    label_subset_study,
    linear_layer_probe,
    max_pool_time,
    pad_centred,
    padded_syllables,
    run_thesis_probes,
)
from vgim.model.stack import Stack

SYLLABLES = [c + v for c in "bdg" for v in "aiu"]
FAST = ThesisProbeConfig(epochs=100, batch_size=64)


def _syllable(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """A tone burst whose pitch names the consonant and whose second partial names the vowel."""
    t = np.arange(n) / 16000
    f0 = {"b": 150.0, "d": 300.0, "g": 600.0}[name[0]]
    f1 = {"a": 900.0, "i": 1800.0, "u": 3000.0}[name[1]]
    env = np.hanning(n)
    wave = env * (0.3 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * f1 * t))
    return (wave + 0.005 * rng.standard_normal(n)).astype(np.float32)


def tiny_corpus(
    words: list[list[str]], split: str, seed: int = 0, lengths: tuple[int, int] = (3000, 4000)
) -> AudioCorpus:
    """Segmented three-syllable words (labels as the thesis corpus has them), syllables of random length."""
    rng = np.random.default_rng(seed)
    utts, waves = [], []
    for k, word in enumerate(words):
        parts = [_syllable(s, int(rng.integers(*lengths)), rng) for s in word]
        bounds = np.cumsum([0] + [p.shape[0] for p in parts])
        labels = {
            "syllables": "-".join(word),
            "consonants": "-".join(s[0] for s in word),
            "vowels": "-".join(s[1] for s in word),
            "speaker": "thesis",
        }
        segments = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        utts.append(Utterance(f"{split}/{''.join(word)}_{k}.wav", labels, segments, split))
        waves.append(np.concatenate(parts))
    return AudioCorpus(utts, waves, 16000)


def words(n: int, offset: int = 0) -> list[list[str]]:
    """``n`` words cycling through the nine syllables, so that every class occurs n * 3 / 9 times."""
    return [[SYLLABLES[(3 * i + j + offset) % 9] for j in range(3)] for i in range(n)]


def test_pad_centred_and_crop() -> None:
    out, cropped = pad_centred(np.ones(5, dtype=np.float32), 10)
    assert out.shape == (10,) and not cropped
    assert out.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]  # 2 zeros before, 3 after: centred
    out, cropped = pad_centred(np.ones(4, dtype=np.float32), 10)
    assert out.tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]
    out, cropped = pad_centred(np.arange(10, dtype=np.float32), 4)
    assert cropped and out.tolist() == [3, 4, 5, 6]
    with pytest.raises(ValueError, match="length"):
        pad_centred(np.ones(3), 0)


def test_padded_syllables_fixed_length_labels_and_counted_crops(caplog: pytest.LogCaptureFixture) -> None:
    corpus = tiny_corpus(words(4), "train", lengths=(3000, 3001))
    padded = padded_syllables(corpus, 3200)
    assert padded.waves.shape == (12, 3200) and padded.n_cropped == 0
    assert padded.labels["syllables"].tolist() == [s for w in words(4) for s in w]
    assert padded.labels["vowels"][0] == words(4)[0][0][1]
    start, end = corpus.utterances[0].segments[1]  # type: ignore[index]
    left = (3200 - (end - start)) // 2
    assert np.array_equal(padded.waves[1, left : left + end - start], corpus.waves[0][start:end])
    assert not padded.waves[1, :left].any() and not padded.waves[1, left + end - start :].any()
    with caplog.at_level(logging.WARNING, logger="vgim"):
        cropped = padded_syllables(corpus, 2000)
    assert cropped.n_cropped == 12 and "12 of 12 syllables" in caplog.text


@pytest.mark.parametrize("variational", [False, True])
def test_flattened_dimension_is_channels_times_frames_and_batch_equals_single(variational: bool) -> None:
    stack = Stack(tiny_config(variational=variational).model)
    stack.train()  # encode_padded must run in eval mode without sampling, and restore the mode
    rng = np.random.default_rng(0)
    waves = np.stack([pad_centred(_syllable(s, 1200, rng), 1600)[0] for s in SYLLABLES[:5]])
    maps = encode_padded(stack, waves, batch_size=2)
    assert stack.training
    frames = stack.n_frames(1600)
    for m, x in enumerate(maps):
        channels = stack.block(m).out_channels
        assert x.shape == (5, channels, frames[m])
        assert flatten_maps(x).shape == (5, channels * frames[m])
        assert max_pool_time(x).shape == (5, channels)
    for i in range(5):
        single = stack.encode_wave(waves[i])
        for m, x in enumerate(maps):
            np.testing.assert_allclose(x[i], single[m].c[0].T.numpy(), rtol=1e-5, atol=1e-6)
    again = encode_padded(stack, waves, batch_size=5)
    for a, b in zip(maps, again, strict=True):  # no sampling: the same maps whatever the batching
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _clusters(n_per_class: int, seed: int, dim: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 1, (9, dim)) * 3
    y = np.repeat(np.arange(9), n_per_class)
    return (centres[y] + rng.normal(0, 1, (y.size, dim))).astype(np.float32), np.asarray(SYLLABLES)[y]


def test_linear_layer_learns_a_separable_problem_and_not_shuffled_labels() -> None:
    x, y = _clusters(30, seed=0)
    x_test, y_test = _clusters(20, seed=1)
    fit = linear_layer_probe(x, y, x_test, y_test, cfg=FAST, seed=0, task="syllable", features="toy")
    assert fit.result.accuracy > 0.97 and fit.result.n_classes == 9
    assert fit.layer.bias is not None and tuple(fit.layer.weight.shape) == (9, 40)
    shuffled = np.random.default_rng(3).permutation(y)
    chance = linear_layer_probe(x, shuffled, x_test, y_test, cfg=FAST, seed=0).result
    assert chance.accuracy < 0.25  # 9 classes: chance 0.11
    same = linear_layer_probe(x, y, x_test, y_test, cfg=FAST, seed=0)
    assert torch.equal(same.layer.weight, fit.layer.weight)  # seeded
    no_bias = linear_layer_probe(x, y, x_test, y_test, cfg=FAST, bias=False)
    assert no_bias.layer.bias is None


def test_vowel_probe_is_module_one_max_pooled_without_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, bool]] = []
    real = thesis_probe.fit_linear

    def spy(x: np.ndarray, y: np.ndarray, n_classes: int, **kw: Any) -> torch.nn.Linear:
        calls.append((x.shape[1], kw["bias"]))
        return real(x, y, n_classes, **kw)

    monkeypatch.setattr(thesis_probe, "fit_linear", spy)
    train = padded_syllables(tiny_corpus(words(6), "train"), 4200)
    test = padded_syllables(tiny_corpus(words(3, 1), "test", seed=1), 4200)
    rng = np.random.default_rng(0)
    maps = {
        "A m1": ThesisMaps(rng.random((18, 4, 7)), rng.random((9, 4, 7)), True),
        "A m2": ThesisMaps(rng.random((18, 5, 3)), rng.random((9, 5, 3)), False),
    }
    results = run_thesis_probes(maps, train, test, cfg=ThesisProbeConfig(epochs=2))
    assert [(r.features, r.task) for r in results] == [
        ("A m1", "syllable"),
        ("A m1", "vowel"),
        ("A m1", "consonant"),
        ("A m2", "syllable"),
        ("A m2", "consonant"),
    ]
    assert calls == [(28, True), (4, False), (28, True), (15, True), (15, True)]
    assert [t.bias for t in THESIS_PROTOCOL_TASKS if t.name == "vowel"] == [False]


def test_label_subset_draw_gives_exactly_n_per_class() -> None:
    y = np.asarray(["a"] * 10 + ["b"] * 7 + ["c"] * 12)
    for n in (1, 2, 4, 7):
        idx = draw_per_class(y, n, np.random.default_rng(0))
        assert np.unique(idx).size == idx.size == 3 * n
        assert {c: int((y[idx] == c).sum()) for c in "abc"} == {"a": n, "b": n, "c": n}
    assert not np.array_equal(
        draw_per_class(y, 4, np.random.default_rng(0)), draw_per_class(y, 4, np.random.default_rng(1))
    )
    with pytest.raises(ValueError, match="fewer than 8"):
        draw_per_class(y, 8, np.random.default_rng(0))


def test_label_subset_study_counts_and_full_test_set() -> None:
    train = padded_syllables(tiny_corpus(words(12), "train"), 4200)  # 4 syllables per class
    test = padded_syllables(tiny_corpus(words(3, 1), "test", seed=1), 4200)
    rng = np.random.default_rng(0)
    maps = {"A m1": ThesisMaps(rng.random((36, 3, 4)), rng.random((9, 3, 4)), True)}
    points = label_subset_study(maps, train, test, cfg=ThesisProbeConfig(epochs=2, label_counts=(1, 2, 4, 8)), seed=5)
    assert [(p.labels_per_class, p.n_train) for p in points] == [(1, 9), (2, 18), (4, 36)]  # 8 > 4: left out
    assert all(p.seed == 5 and p.features == "A m1" for p in points)


def test_tsne_uses_the_thesis_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn.manifold

    from vgim.interpret.maps import THESIS_TSNE, tsne_map

    seen: dict[str, Any] = {}

    class FakeTSNE:
        def __init__(self, n_components: int = 2, *, max_iter: int = 1000, **kw: Any) -> None:
            seen.update(kw, max_iter=max_iter)

        def fit_transform(self, x: np.ndarray) -> np.ndarray:
            seen["x"] = x
            return np.zeros((x.shape[0], 2))

    monkeypatch.setattr(sklearn.manifold, "TSNE", FakeTSNE)
    x = np.random.default_rng(0).normal(5, 2, (120, 6))
    tsne_map(x, ["a"] * 120, seed=3, **THESIS_TSNE)
    assert (seen["init"], seen["perplexity"], seen["learning_rate"], seen["max_iter"]) == ("random", 30.0, 200.0, 1000)
    assert np.array_equal(seen["x"], x)  # not standardised


def test_protocol_both_end_to_end(tmp_path: Path) -> None:
    from vgim.experiments.thesis import run_thesis_experiment

    train = tiny_corpus(words(12), "train", lengths=(4000, 4400))
    test = tiny_corpus(words(3, 1), "test", seed=1, lengths=(4000, 4400))
    short = ["train.steps=2", "train.batch_size=2", "train.checkpoint_every=2", "train.log_every=1"]
    result = run_thesis_experiment(
        (train, test),
        tmp_path / "thesis",
        seeds=[0],
        models={"GIM": ("gim-thesis", short), "V-GIM": ("vgim-thesis", short)},
        supervised_steps=2,
        protocol="both",
        thesis_probe=ThesisProbeConfig(pad_samples=0, epochs=10, label_counts=(1, 2, 4, 8)),
        progress=False,
    )
    md = (tmp_path / "thesis" / "results.md").read_text()
    for heading in ["## vgim protocol", "## thesis protocol", "label subsets", "## the two protocols side by side"]:
        assert heading in md
    longest = max(e - s for c in (train, test) for u in c.utterances for s, e in u.segments or [])
    assert f"(centred) to {longest} samples (the longest syllable of the corpus" in md
    for row in ["MFCC", "GIM m1", "V-GIM m2", "random init m1", "supervised m2"]:
        assert md.count(f"| {row} |") >= 3  # vgim table, thesis table, side by side
    assert "*50.8*" in md and "*85.4*" in md  # the thesis's reported numbers beside them
    assert "syllable: reported" in md and "consonant: reported" not in md  # the thesis reports no consonant
    data = json.loads((tmp_path / "thesis" / "results.json").read_text())
    assert data["protocol"] == "both"
    proto = data["thesis_protocol"]
    assert proto["pad_samples"] == longest and proto["n_cropped"] == {"train": 0, "test": 0}
    vowels = {r["features"] for r in proto["summary"] if r["task"] == "vowel"}
    assert vowels == {"MFCC", "GIM m1", "V-GIM m1", "random init m1", "supervised m1"}
    assert all(r["n_test"] == 9 for r in proto["summary"])
    assert {(r["features"], r["labels_per_class"]) for r in proto["label_subsets"]} == {
        (f, n) for f in ("GIM m1", "GIM m2", "V-GIM m1", "V-GIM m2") for n in (1, 2, 4)
    }
    assert {r["task"] for r in data["summary"]} == {"syllable", "vowel", "consonant"}
    assert (tmp_path / "thesis" / "label_subsets.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "thesis" / "tsne").iterdir()) == [
        "tsne_gim-m1.png",
        "tsne_gim-m2.png",
        "tsne_v-gim-m1.png",
        "tsne_v-gim-m2.png",
    ]
    assert result.thesis_summary and result.summary and "## thesis protocol" in result.table
    only = run_thesis_experiment(
        (train, test),
        tmp_path / "thesis",
        seeds=[0],
        models={"GIM": ("gim-thesis", short)},
        baselines=False,
        protocol="thesis",
        thesis_probe=ThesisProbeConfig(epochs=2, label_counts=(1,)),
        progress=False,
    )
    assert only.summary == [] and "## vgim protocol" not in only.table and "## thesis protocol" in only.table
    with pytest.raises(ValueError, match="protocol"):
        run_thesis_experiment((train, test), tmp_path / "x", protocol="neither")


def test_cli_passes_the_protocol(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import vgim.experiments.commands as commands
    import vgim.experiments.thesis as thesis
    from vgim.cli import main

    seen: dict[str, Any] = {}

    class Result:
        table, out_dir, seconds = "TABLE", tmp_path, {"total": 1.0}

    def fake_run(corpus: Any, out: Any, **kw: Any) -> Result:
        seen.update(kw)
        return Result()

    class FakeCorpus:
        def subset(self, split: str) -> str:
            return split

    monkeypatch.setattr(thesis, "run_thesis_experiment", fake_run)
    monkeypatch.setattr(commands, "thesis_corpus", lambda args: FakeCorpus())
    assert main(["experiment", "thesis", "--quick", "--quiet"]) == 0
    assert seen["protocol"] == "both" and seen["thesis_probe"] == ThesisProbeConfig()
    assert main(["experiment", "thesis", "--quiet", "--protocol", "vgim", "--pad-samples", "0", "--standardise"]) == 0
    assert seen["protocol"] == "vgim" and seen["thesis_probe"] == ThesisProbeConfig(pad_samples=0, standardise=True)
