"""Syllable segmentation with an envelope and an Otsu threshold (``vgim.data.segment``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vgim.audio import AudioError
from vgim.data.corpus import load_corpus
from vgim.data.segment import (
    SegmentParams,
    amplitude_envelope,
    otsu_threshold,
    plot_segmentation,
    segment_corpus,
    segment_syllables,
    word_labels,
)
from vgim.data.segment.syllables import _fallback_cuts

RATE = 16000
LOUD, QUIET = 0.3, 0.03


def _tone(n: int, amp: float, f0: float = 140.0) -> np.ndarray:
    t = np.arange(n) / RATE
    return (amp * (0.7 * np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 3 * f0 * t))).astype(np.float32)


def word(bursts: list[float], gaps: list[float], edge: float = 0.06) -> tuple[np.ndarray, list[int]]:
    """Loud tone bursts (durations in s) separated by quiet voicing (gaps in s), quiet edges.

    Returns the wave ``[samples]`` and the centre sample of every gap (the true cut points).
    """
    parts = [_tone(int(edge * RATE), QUIET)]
    centres: list[int] = []
    pos = parts[0].shape[0]
    for i, b in enumerate(bursts):
        parts.append(_tone(int(b * RATE), LOUD))
        pos += parts[-1].shape[0]
        if i < len(gaps):
            g = int(gaps[i] * RATE)
            parts.append(_tone(g, QUIET))
            centres.append(pos + g // 2)
            pos += g
    parts.append(_tone(int(edge * RATE), QUIET))
    return np.concatenate(parts), centres


def _write(path: Path, wave: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, RATE, subtype="PCM_16")
    return path


def test_three_bursts_cut_in_the_gaps() -> None:
    wave, centres = word([0.2, 0.16, 0.24], [0.08, 0.1])
    res = segment_syllables(wave, RATE)
    assert not res.fallback and res.n_regions_found == 3
    assert len(res.cuts) == 2
    for cut, true in zip(res.cuts, centres, strict=True):
        assert abs(cut - true) <= 0.02 * RATE
    n = wave.shape[0]
    assert res.segments[0][0] == 0 and res.segments[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(res.segments, res.segments[1:], strict=False))
    assert QUIET < res.threshold < LOUD
    assert res.envelope.shape == res.envelope_times.shape


def test_short_leading_region_is_dropped() -> None:
    # A 40 ms loud "prevoicing" blip before the first syllable does not count as a syllable.
    wave, centres = word([0.04, 0.2, 0.2, 0.2], [0.1, 0.08, 0.08])
    res = segment_syllables(wave, RATE)
    assert res.n_regions_found == 3 and not res.fallback
    for cut, true in zip(res.cuts, centres[1:], strict=True):
        assert abs(cut - true) <= 0.02 * RATE


def test_fallback_one_region_cuts_at_thirds() -> None:
    wave, _ = word([0.6], [])
    res = segment_syllables(wave, RATE)
    assert res.fallback and res.n_regions_found == 1
    n = wave.shape[0]
    assert res.cuts == [round(n / 3), round(2 * n / 3)]


def test_fallback_two_regions_uses_the_dip_and_a_third() -> None:
    wave, centres = word([0.4, 0.2], [0.08])
    res = segment_syllables(wave, RATE)
    n = wave.shape[0]
    assert res.fallback and res.n_regions_found == 2
    # The single dip is closest to two thirds; the first boundary falls back to exactly one third.
    assert res.cuts[0] == round(n / 3)
    assert abs(res.cuts[1] - centres[0]) <= 0.02 * RATE


def test_fallback_assignment_picks_dips_closest_to_thirds() -> None:
    assert _fallback_cuts([100, 420, 700], 1000, 3) == [420, 700]
    assert _fallback_cuts([310, 360, 650], 1000, 3) == [310, 650]
    assert _fallback_cuts([500], 900, 3) in ([500, 600], [300, 500])
    assert _fallback_cuts([], 900, 3) == [300, 600]


def test_silence_still_gives_three_segments() -> None:
    res = segment_syllables(np.zeros(RATE, dtype=np.float32), RATE)
    assert res.fallback and len(res.segments) == 3


def test_otsu_threshold_and_envelope() -> None:
    wave, _ = word([0.2, 0.2, 0.2], [0.1, 0.1])
    assert QUIET < otsu_threshold(wave, RATE) < LOUD
    env, times = amplitude_envelope(wave, RATE, window_s=0.02, hop_s=0.005)
    assert env.shape == times.shape == (int(np.ceil(wave.shape[0] / 80)),)
    assert times[1] - times[0] == 80
    assert env.max() == pytest.approx(np.abs(wave).max())


@pytest.mark.parametrize(
    ("wave", "match"),
    [
        (np.zeros((2, 800), dtype=np.float32), "shape"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.full(8000, np.nan, dtype=np.float32), "NaN"),
        (np.zeros(100, dtype=np.float32), "shorter"),
    ],
)
def test_bad_input_names_the_source(wave: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        segment_syllables(wave, RATE, source="bad.wav")
    assert "bad.wav" in str(err.value)
    assert isinstance(err.value, AudioError)


def test_bad_params() -> None:
    with pytest.raises(ValueError, match="window_s"):
        segment_syllables(word([0.2] * 3, [0.1] * 2)[0], RATE, SegmentParams(window_s=0))


def test_plot_writes_png(tmp_path: Path) -> None:
    wave, _ = word([0.2, 0.2, 0.2], [0.1, 0.1])
    res = segment_syllables(wave, RATE)
    out = plot_segmentation(wave, RATE, res, tmp_path / "sub" / "fig.png", title="babidi", labels=["ba", "bi", "di"])
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_word_labels() -> None:
    assert word_labels("babidi_1") == {
        "word": "babidi",
        "take": "1",
        "syllables": "ba-bi-di",
        "consonants": "b-b-d",
        "vowels": "a-i-i",
    }
    assert word_labels("hello_1") is None
    assert word_labels("babidi") is None


def test_segment_corpus(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    _write(root / "train" / "babidi_1.wav", word([0.2, 0.16, 0.24], [0.08, 0.1])[0])
    _write(root / "train" / "gugaba_2.wav", word([0.25, 0.2, 0.2], [0.1, 0.09])[0])
    _write(root / "test" / "dudugi_1.wav", word([0.18, 0.22, 0.2], [0.09, 0.08])[0])
    _write(root / "train" / "notaword.wav", word([0.2, 0.2, 0.2], [0.1, 0.1])[0])
    _write(root / "test" / "bababa_1.wav", np.zeros(RATE, dtype=np.float32))  # silent
    out = tmp_path / "out"
    report = segment_corpus(root, out, figures=1, progress=False)

    assert report.n_files == 3 and report.n_exact == 3 and report.n_fallback == 0
    assert sorted(Path(p).name for p, _ in report.skipped) == ["bababa_1.wav", "notaword.wav"]
    assert len(report.figures) == 1 and report.figures[0].stat().st_size > 0
    assert report.figures[0] == out / "figures" / "test" / "dudugi_1.png"
    assert report.lengths_ms.shape == (9,)
    stats = report.length_stats()
    assert stats["min"] <= stats["median"] <= stats["max"]
    assert "3 words" in report.describe()

    with (out / "cuts.csv").open() as fh:
        cuts = list(csv.DictReader(fh))
    assert [r["file"] for r in cuts] == ["test/dudugi_1.wav", "train/babidi_1.wav", "train/gugaba_2.wav"]
    assert all(r["fallback"] == "0" and r["n_regions_found"] == "3" for r in cuts)
    assert all(int(r["cut1"]) < int(r["cut2"]) for r in cuts)

    assert (out / "train" / "babidi_1_s0_ba.wav").is_file()
    assert (out / "train" / "babidi_1_s2_di.wav").is_file()
    corpus = load_corpus(out, manifest="manifest.csv", progress=False)
    assert len(corpus) == 9 and not corpus.skipped
    assert {w.shape[0] for w in corpus.waves} == {report.pad_length}
    assert corpus.labels("syllable")[:3] == ["du", "du", "gi"]
    assert corpus.labels("consonant")[:3] == ["d", "d", "g"]
    assert corpus.labels("vowel")[:3] == ["u", "u", "i"]
    assert corpus.labels("word")[0] == "dudugi"
    assert corpus.splits() == ["test", "train"]
    # Centre padding: the unpadded syllable sits in the middle of the file.
    for u, w in zip(corpus.utterances, corpus.waves, strict=True):
        assert u.segments is not None
        (s, e) = u.segments[0]
        assert abs(s - (w.shape[0] - e)) <= 1
    assert len(load_corpus(out, manifest="manifest.csv", split="train", progress=False)) == 6


def test_segment_corpus_pad_to_and_end_padding(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    _write(root / "babidi_1.wav", word([0.2, 0.16, 0.24], [0.08, 0.1])[0])
    report = segment_corpus(root, tmp_path / "out", pad_to=3000, pad="end", progress=False)
    assert report.pad_length == 3000 and report.n_cropped >= 1
    wave, rate = sf.read(tmp_path / "out" / "babidi_1_s1_bi.wav")
    assert rate == RATE and wave.shape == (3000,)
    with (tmp_path / "out" / "manifest.csv").open() as fh:
        header = next(csv.reader(fh))
    assert "split" not in header  # no split folders -> no split column (loads with any DataConfig.split)


def test_segment_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        segment_corpus(tmp_path / "missing", tmp_path / "out")
    _write(tmp_path / "c" / "hello.wav", word([0.2] * 3, [0.1] * 2)[0])
    with pytest.raises(ValueError, match="no usable word"):
        segment_corpus(tmp_path / "c", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="pad"):
        segment_corpus(tmp_path / "c", tmp_path / "out", pad="middle")  # type: ignore[arg-type]
