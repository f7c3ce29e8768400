"""Tests for vgim.evaluate.pooling, vgim.evaluate.probes and vgim.evaluate.baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vgim.evaluate.baselines import MFCC_FRAMES, mfcc_features, mfcc_frames
from vgim.evaluate.pooling import FrameInfo, pool_segments, pool_utterance, pooled_dim, segment_frame_ranges
from vgim.evaluate.probes import (
    DEFAULT_TASKS,
    ProbeResult,
    ProbeTask,
    available_tasks,
    linear_probe,
    probe_dataset,
    run_probes,
)
from vgim.evaluate.tables import results_table, results_to_json

# ---------------------------------------------------------------------------- pooling


def _ramp(n_frames: int, channels: int = 2) -> np.ndarray:
    """Frame t has value t in channel 0 and 10 * t in channel 1."""
    t = np.arange(n_frames, dtype=np.float64)
    return np.stack([t * 10**c for c in range(channels)], axis=1)


def test_frameinfo_centres_and_validation() -> None:
    fi = FrameInfo(hop=160, offset=80.0, receptive_field=400)
    np.testing.assert_allclose(fi.centres(4), [80, 240, 400, 560])
    assert fi.nearest_frame(300, 4) == 1  # centres 240 (d=60) vs 400 (d=100)
    assert fi.nearest_frame(-1000, 4) == 0
    assert fi.nearest_frame(1e6, 4) == 3
    with pytest.raises(ValueError):
        FrameInfo(hop=0, offset=0.0, receptive_field=1)
    with pytest.raises(ValueError):
        FrameInfo(hop=10, offset=0.0, receptive_field=0)


def test_pool_utterance_modes() -> None:
    x = np.array([[1.0, 4.0], [3.0, 0.0], [2.0, 2.0]])
    np.testing.assert_allclose(pool_utterance(x, "mean"), [2.0, 2.0])
    np.testing.assert_allclose(pool_utterance(x, "max"), [3.0, 4.0])
    np.testing.assert_allclose(pool_utterance(x, "last"), [2.0, 2.0])
    np.testing.assert_allclose(pool_utterance(x, "meanstd"), [2.0, 2.0, np.sqrt(2 / 3), np.sqrt(8 / 3)])
    np.testing.assert_allclose(pool_utterance(x, "thirds"), [1.0, 4.0, 3.0, 0.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="unknown pooling mode"):
        pool_utterance(x, "median")
    with pytest.raises(ValueError, match="2-D"):
        pool_utterance(np.zeros(5), "mean")
    with pytest.raises(ValueError, match="no frames"):
        pool_utterance(np.zeros((0, 3)), "mean")


def test_pool_segments_thirds() -> None:
    x = np.arange(14, dtype=np.float64)[:, None] * np.array([[1.0, -1.0]])  # frame t holds (t, -t)
    frames = FrameInfo(hop=1, offset=0, receptive_field=1)
    # 7 frames 0..6 cut at 2 and 4: means of [0, 1], [2, 3], [4, 5, 6]; 2 frames 10, 11: parts [10], [10], [11]
    got = pool_segments(x, frames, [(0, 7), (10, 12)], "thirds")
    np.testing.assert_allclose(got[0], [0.5, -0.5, 2.5, -2.5, 5.0, -5.0])
    np.testing.assert_allclose(got[1], [10.0, -10.0, 10.0, -10.0, 11.0, -11.0])
    assert pooled_dim(2, "thirds") == 6


def test_pool_segments_selects_frames_whose_centres_lie_in_segment() -> None:
    # hop 100, offset 50: centres 50, 150, 250, ..., 950 (10 frames)
    fi = FrameInfo(hop=100, offset=50.0, receptive_field=200)
    x = _ramp(10)
    segments = [
        (0, 300),  # centres 50, 150, 250 -> frames 0..2
        (250, 550),  # 250 included (start inclusive), 550 excluded (end exclusive) -> frames 2..4
        (551, 951),  # centres 650, 750, 850, 950 -> frames 6..9
        (900, 5000),  # runs past the end: clipped -> frame 9 only
    ]
    lo, hi = segment_frame_ranges(10, fi, segments)
    np.testing.assert_array_equal(lo, [0, 2, 6, 9])
    np.testing.assert_array_equal(hi, [3, 5, 10, 10])
    mean = pool_segments(x, fi, segments, "mean")
    assert mean.shape == (4, 2)
    np.testing.assert_allclose(mean[:, 0], [1.0, 3.0, 7.5, 9.0])
    np.testing.assert_allclose(mean[:, 1], [10.0, 30.0, 75.0, 90.0])
    np.testing.assert_allclose(pool_segments(x, fi, segments, "max")[:, 0], [2, 4, 9, 9])
    np.testing.assert_allclose(pool_segments(x, fi, segments, "last")[:, 0], [2, 4, 9, 9])
    ms = pool_segments(x, fi, segments, "meanstd")
    assert ms.shape == (4, 4)
    expected_std = np.array([np.std([0, 1, 2]), np.std([2, 3, 4]), np.std([6, 7, 8, 9]), 0.0])
    np.testing.assert_allclose(ms[:, 2], expected_std)
    # matches pooling the selected slice directly
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        np.testing.assert_allclose(ms[i], pool_utterance(x[a:b], "meanstd"), atol=1e-9)


def test_pool_segments_short_segment_uses_nearest_frame() -> None:
    fi = FrameInfo(hop=100, offset=50.0, receptive_field=200)
    x = _ramp(10)
    # no frame centre (50, 150, ..., 950) lies inside any of these segments
    segments = [(160, 230), (310, 330), (420, 420), (-500, -400), (2000, 2100)]
    # middles 195 -> frame 1 (150); 320 -> frame 3 (350); 420 -> frame 4 (450);
    # before the first frame -> frame 0; after the last -> frame 9
    pooled = pool_segments(x, fi, segments, "mean")
    np.testing.assert_allclose(pooled[:, 0], [1, 3, 4, 0, 9])
    np.testing.assert_allclose(pool_segments(x, fi, segments, "meanstd")[:, 2], 0.0)


def test_pool_segments_edge_cases() -> None:
    fi = FrameInfo(hop=10, offset=0.0, receptive_field=10)
    x = np.ones((5, 3), dtype=np.float32)
    out = pool_segments(x, fi, [], "meanstd")
    assert out.shape == (0, 6)
    assert pool_segments(x, fi, [(0, 20)], "mean").dtype == np.float32
    with pytest.raises(ValueError, match="end < start"):
        pool_segments(x, fi, [(0, 20), (30, 10)], "mean")


def test_pool_segments_mean_is_accurate_with_large_offset() -> None:
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((300, 8))).astype(np.float32)
    fi = FrameInfo(hop=160, offset=0.0, receptive_field=400)
    segs = [(0, 16000), (16000, 16500), (20000, 48000)]
    lo, hi = segment_frame_ranges(300, fi, segs)
    ms = pool_segments(x, fi, segs, "meanstd")
    for i in range(3):
        ref = x[lo[i] : hi[i]].astype(np.float64)
        np.testing.assert_allclose(ms[i, :8], ref.mean(0), rtol=1e-6)
        np.testing.assert_allclose(ms[i, 8:], ref.std(0), rtol=1e-3)


# ---------------------------------------------------------------------------- probes


def _blobs(rng: np.random.Generator, n_per_class: int, n_classes: int, dim: int, sep: float):
    means = rng.standard_normal((n_classes, dim)) * sep
    y = np.repeat([f"c{k}" for k in range(n_classes)], n_per_class)
    x = means[np.repeat(np.arange(n_classes), n_per_class)] + rng.standard_normal((y.size, dim))
    return x, y


def test_linear_probe_separable_gives_full_accuracy() -> None:
    rng = np.random.default_rng(1)
    x_tr, y_tr = _blobs(rng, 50, 4, 16, sep=10.0)
    x_te, y_te = _blobs(np.random.default_rng(1), 30, 4, 16, sep=10.0)  # same class means
    res = linear_probe(x_tr, y_tr, x_te, y_te, task="t", features="f")
    assert res.accuracy >= 0.99
    assert res.macro_f1 >= 0.99
    assert (res.n_train, res.n_test, res.n_classes) == (200, 120, 4)
    assert res.chance == pytest.approx(0.25)
    assert (res.task, res.features) == ("t", "f")


def test_linear_probe_random_features_near_chance() -> None:
    rng = np.random.default_rng(2)
    labels = np.array(["a", "b", "c", "d"])
    x_tr, y_tr = rng.standard_normal((800, 32)), labels[rng.integers(0, 4, 800)]
    x_te, y_te = rng.standard_normal((800, 32)), labels[rng.integers(0, 4, 800)]
    res = linear_probe(x_tr, y_tr, x_te, y_te)
    assert abs(res.accuracy - 0.25) < 0.07
    assert 0.25 <= res.chance < 0.3


def test_linear_probe_unseen_test_labels_count_as_errors() -> None:
    rng = np.random.default_rng(3)
    x_tr, y_tr = _blobs(rng, 40, 2, 8, sep=10.0)
    x_te, y_te = _blobs(np.random.default_rng(3), 10, 2, 8, sep=10.0)
    x_te = np.concatenate([x_te, rng.standard_normal((20, 8))])
    y_te = np.concatenate([y_te, ["unseen"] * 20])
    res = linear_probe(x_tr, y_tr, x_te, y_te)
    assert res.accuracy == pytest.approx(0.5)
    assert res.chance == pytest.approx(0.5)
    assert res.n_classes == 2


def test_linear_probe_bad_input_raises() -> None:
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="at least 2 classes"):
        linear_probe(x, ["a"] * 4, x, ["a"] * 4)
    with pytest.raises(ValueError, match="rows"):
        linear_probe(x, ["a", "b", "a"], x, ["a"] * 4)
    with pytest.raises(ValueError, match="dimension"):
        linear_probe(x, ["a", "b"] * 2, np.zeros((4, 5)), ["a"] * 4)
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(np.full((4, 3), np.nan), ["a", "b"] * 2, x, ["a"] * 4)


def _toy_corpus(rng: np.random.Generator, n_utt: int, dim: int = 12, informative: bool = True):
    """Utterances of 3 syllables each, 100 frames at hop 160, segments of ~30 frames.

    Informative features encode the syllable identity in the frames of its segment and
    the speaker in every frame; uninformative ones are pure noise.
    """
    frames = FrameInfo(hop=160, offset=80.0, receptive_field=400)
    consonants, vowels, speakers = ["b", "d", "g"], ["a", "i", "u"], ["s0", "s1", "s2"]
    syl_codes = rng.standard_normal((9, dim)) * 3
    spk_codes = rng.standard_normal((3, dim)) * 3
    feats, labels, segs = [], [], []
    for _ in range(n_utt):
        spk = int(rng.integers(0, 3))
        x = rng.standard_normal((100, dim)) * 0.5
        bounds = [0, 5000, 10000, 16000]
        cons, vows = rng.integers(0, 3, 3), rng.integers(0, 3, 3)
        for s in range(3):
            lo, hi = segment_frame_ranges(100, frames, [(bounds[s], bounds[s + 1])])
            if informative:
                x[lo[0] : hi[0]] += syl_codes[3 * cons[s] + vows[s]]
        if informative:
            x[:, : dim // 2] += spk_codes[spk, : dim // 2]
        feats.append(x.astype(np.float32))
        labels.append(
            {
                "syllables": "-".join(consonants[c] + vowels[v] for c, v in zip(cons, vows, strict=True)),
                "vowels": "-".join(vowels[v] for v in vows),
                "consonants": "-".join(consonants[c] for c in cons),
                "speaker": speakers[spk],
            }
        )
        segs.append([(bounds[s], bounds[s + 1]) for s in range(3)])
    return feats, labels, segs, frames


def test_probe_dataset_segment_and_utterance_levels() -> None:
    feats, labels, segs, frames = _toy_corpus(np.random.default_rng(4), 5)
    x, y = probe_dataset(feats, frames, labels, segs, "syllables", "segment")
    assert x.shape == (15, 12)
    assert y.tolist() == [s for lab in labels for s in lab["syllables"].split("-")]
    np.testing.assert_allclose(x[3], pool_segments(feats[1], frames, segs[1])[0])
    x2, y2 = probe_dataset(feats, frames, labels, [None] * 5, "speaker", "utterance", pool="meanstd")
    assert x2.shape == (5, 24)
    assert y2.tolist() == [lab["speaker"] for lab in labels]


def test_probe_dataset_count_mismatch_names_utterance() -> None:
    feats, labels, segs, frames = _toy_corpus(np.random.default_rng(5), 4)
    labels[2] = dict(labels[2], vowels="a-i")
    with pytest.raises(ValueError, match=r"utterance 2\b.*2 entries.*3 segments"):
        probe_dataset(feats, frames, labels, segs, "vowels", "segment")
    segs[1] = None
    with pytest.raises(ValueError, match="utterance 1"):
        probe_dataset(feats, frames, labels, segs, "syllables", "segment")
    with pytest.raises(ValueError, match="utterance 0: missing label 'tone'"):
        probe_dataset(feats, frames, labels, segs, "tone", "utterance")
    with pytest.raises(ValueError, match="label dicts"):
        probe_dataset(feats, frames, labels[:3], segs, "speaker", "utterance")


def test_run_probes_informative_vs_noise_and_table() -> None:
    # one corpus (shared syllable/speaker codes), split into train and test utterances
    all_f, all_l, all_s, frames = _toy_corpus(np.random.default_rng(6), 180)
    tr_f, tr_l, tr_s = all_f[:120], all_l[:120], all_s[:120]
    te_f, te_l, te_s = all_f[120:], all_l[120:], all_s[120:]
    rng_noise = np.random.default_rng(7)
    noise_tr = [rng_noise.standard_normal(f.shape) for f in tr_f]
    noise_te = [rng_noise.standard_normal(f.shape) for f in te_f]
    results = run_probes(
        {"good": (tr_f, te_f, frames), "noise": (noise_tr, noise_te, frames)},
        tr_l,
        tr_s,
        te_l,
        te_s,
        DEFAULT_TASKS,
    )
    assert [(r.features, r.task) for r in results] == [(f, t.name) for f in ("good", "noise") for t in DEFAULT_TASKS]
    by = {(r.features, r.task): r for r in results}
    for task in ("syllable", "vowel", "consonant", "speaker"):
        assert by[("good", task)].accuracy >= 0.95, task
        assert by[("noise", task)].accuracy < by[("good", task)].accuracy - 0.3, task
    assert by[("good", "syllable")].n_train == 360 and by[("good", "syllable")].n_test == 180
    assert by[("good", "speaker")].n_train == 120 and by[("good", "speaker")].n_test == 60

    table = results_table(results)
    lines = table.strip().splitlines()
    assert lines[0] == "| features | syllable | vowel | consonant | speaker |"
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == ["good", "noise"]
    cells = [c.strip() for c in lines[2].split("|")[2:-1]]
    assert cells == [f"{100 * by[('good', t.name)].accuracy:.1f}" for t in DEFAULT_TASKS]

    both = results_table(results, "both", chance=True).strip().splitlines()
    assert len(both) == 5 and both[-1].startswith("| chance |")
    r = by[("noise", "vowel")]
    assert f"{100 * r.accuracy:.1f} / {100 * r.macro_f1:.1f}" in both[3]

    js = results_to_json(results)
    assert json.loads(json.dumps(js)) == js
    assert set(js[0]) == {
        "task",
        "features",
        "accuracy",
        "macro_f1",
        "n_train",
        "n_test",
        "n_classes",
        "chance",
    }


def test_results_table_missing_cells_and_duplicates() -> None:
    def res(f: str, t: str, acc: float) -> ProbeResult:
        return ProbeResult(t, f, acc, acc / 2, 10, 10, 2, 0.5)

    table = results_table([res("b", "x", 0.8734), res("a", "y", 0.5), res("a", "x", 1.0)])
    lines = table.strip().splitlines()
    assert lines[0] == "| features | x | y |"
    assert lines[2] == "| b | 87.3 | - |"
    assert lines[3] == "| a | 100.0 | 50.0 |"
    assert results_table([res("a", "x", 0.8734)], "macro_f1").strip().splitlines()[2] == "| a | 43.7 |"
    with pytest.raises(ValueError, match="duplicate"):
        results_table([res("a", "x", 0.1), res("a", "x", 0.2)])
    with pytest.raises(ValueError, match="metric"):
        results_table([res("a", "x", 0.1)], "precision")  # type: ignore[arg-type]


def test_available_tasks_filters_missing_keys_and_segments() -> None:
    labels = [{"speaker": "a", "syllables": "ba"}, {"speaker": "b", "syllables": "di"}]
    assert [t.name for t in available_tasks(DEFAULT_TASKS, labels, [[(0, 1)], [(0, 1)]])] == [
        "syllable",
        "speaker",
    ]
    assert [t.name for t in available_tasks(DEFAULT_TASKS, labels, [[(0, 1)], None])] == ["speaker"]
    with pytest.raises(ValueError):
        ProbeTask("x", "x", "frame")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- MFCC


def test_mfcc_frames_geometry() -> None:
    assert MFCC_FRAMES == FrameInfo(hop=160, offset=0.0, receptive_field=400)
    assert mfcc_frames(8000) == FrameInfo(hop=80, offset=0.0, receptive_field=200)


@pytest.mark.parametrize("n", [1, 159, 160, 1000, 16000])
def test_mfcc_shape(n: int) -> None:
    wave = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    feats = mfcc_features(wave)
    assert feats.shape == (1 + n // 160, 39)
    assert feats.dtype == np.float32
    assert np.all(np.isfinite(feats))
    assert mfcc_features(wave, deltas=False).shape == (1 + n // 160, 13)


def test_mfcc_frame_centres_tone_burst() -> None:
    sr = 16000
    wave = np.zeros(sr, dtype=np.float32)
    start, end = 6000, 9000
    t = np.arange(end - start) / sr
    wave[start:end] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    c0 = mfcc_features(wave, deltas=False)[:, 0]
    centres = MFCC_FRAMES.centres(c0.shape[0])
    half = MFCC_FRAMES.receptive_field / 2
    inside = (centres >= start + half) & (centres <= end - half)  # window fully in the burst
    outside = (centres <= start - half) | (centres >= end + half)  # window fully in silence
    assert inside.sum() > 10 and outside.sum() > 50
    assert c0[inside].min() > c0[outside].max() + 30
    # silent frames sit on the floor, i.e. all equal
    np.testing.assert_allclose(c0[outside], c0[outside][0], atol=1e-3)


def test_mfcc_frame_centres_impulse() -> None:
    # An impulse at sample k reaches exactly the frames whose 400-sample window covers k,
    # i.e. |t * hop - k| < 200 (offset 0).
    k = 4037
    wave = np.zeros(8000, dtype=np.float32)
    wave[k] = 1.0
    c0 = mfcc_features(wave, deltas=False)[:, 0]
    dist = np.abs(MFCC_FRAMES.centres(c0.shape[0]) - k)
    floor = c0.min()
    assert np.all(c0[dist < 150] > floor + 50)
    np.testing.assert_allclose(c0[dist >= 200], floor, atol=1e-3)
    assert int(np.argmax(c0)) == round(k / MFCC_FRAMES.hop)


def test_mfcc_bad_input() -> None:
    with pytest.raises(ValueError):
        mfcc_features(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError):
        mfcc_features(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(ValueError):
        mfcc_features(np.array([0.0, np.nan, 0.0]))
