"""Tests for the embedded espeak-ng nonsense-word corpus (vgim.data.synthetic)."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import vgim.data.synthetic.corpus as syn
import vgim.data.synthetic.espeak as espeak
from vgim.data.synthetic import (
    ALL_WORDS,
    MANIFEST_COLUMNS,
    SYLLABLES,
    default_corpus_dir,
    describe_corpus,
    split_words,
    synthesize_corpus,
    synthesize_word,
)

SR = 16000
TINY = {"n_speakers": 3, "words_per_speaker": 6, "seed": 0}


def _rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="") as f:
        return list(csv.DictReader(f))


def _segments(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (s.split(":") for s in text.split(";"))]


def _f0(x: np.ndarray, sr: int = SR) -> float:
    """Median F0 (Hz) over voiced 40 ms frames, by autocorrelation (60-400 Hz)."""
    h = int(0.04 * sr)
    lo, hi = int(sr / 400), int(sr / 60)
    out = []
    for i in range(0, len(x) - h, h // 2):
        f = x[i : i + h] - x[i : i + h].mean()
        ac = np.correlate(f, f, "full")[h - 1 :]
        if ac[0] < 1e-4 * h:
            continue
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.5 * ac[0]:
            out.append(sr / k)
    assert out, "no voiced frame found"
    return float(np.median(out))


def _centroid(x: np.ndarray, sr: int = SR) -> float:
    mag = np.abs(np.fft.rfft(x))
    return float((mag * np.fft.rfftfreq(len(x), 1 / sr)).sum() / mag.sum())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_corpus(tmp_path_factory.mktemp("tiny"), progress=False, **TINY)


def test_manifest_columns_and_labels(tiny: Path) -> None:
    assert tiny.name == "manifest.csv"
    with tiny.open(newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == MANIFEST_COLUMNS
    rows = _rows(tiny)
    assert len(rows) == 3 * 6
    assert sorted({r["speaker"] for r in rows}) == ["spk0", "spk1", "spk2"]
    for r in rows:
        syl = r["syllables"].split("-")
        assert len(syl) == 3 and all(s in SYLLABLES for s in syl)
        assert r["word"] == "".join(syl)
        assert r["consonants"] == "-".join(s[0] for s in syl)
        assert r["vowels"] == "-".join(s[1] for s in syl)
        assert r["split"] in ("train", "test")
        assert r["path"].startswith(r["speaker"] + "/" + r["word"] + "_") and r["path"].endswith(".wav")
        assert 0 <= int(r["pitch"]) <= 100 and 100 <= int(r["rate"]) <= 200
        assert r["stress"] in ("0", "1", "2")
        info = sf.info(str(tiny.parent / r["path"]))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (SR, 1, "PCM_16", "WAV")
    assert len({r["path"] for r in rows}) == len(rows)


def test_segments_are_contiguous_inside_the_file_and_voiced(tiny: Path) -> None:
    for r in _rows(tiny):
        x, sr = sf.read(str(tiny.parent / r["path"]), dtype="float32")
        segs = _segments(r["segments"])
        assert len(segs) == 3
        assert 0 <= segs[0][0] and segs[-1][1] <= len(x)
        for (_, e), (s2, _) in zip(segs, segs[1:], strict=False):
            assert e == s2  # contiguous: a syllable ends where the next consonant starts
        word_rms = float(np.sqrt(np.mean(x**2)))
        for s, e in segs:
            assert e - s >= int(0.04 * sr), f"{r['path']}: syllable shorter than 40 ms: {segs}"
            rms = float(np.sqrt(np.mean(x[s:e] ** 2)))
            assert rms > 0.2 * word_rms, f"{r['path']}: quiet syllable {s}:{e}"
        # The word covers most of the file: only ~20 ms margins (plus consonant closures) are outside.
        assert segs[-1][1] - segs[0][0] > len(x) - int(0.06 * sr)


def test_silence_is_trimmed_to_small_margins(tiny: Path) -> None:
    for r in _rows(tiny)[:6]:
        x, sr = sf.read(str(tiny.parent / r["path"]), dtype="float32")
        loud = np.nonzero(np.abs(x) > 0.01 * np.abs(x).max())[0]
        lead, trail = loud[0] / sr, (len(x) - 1 - loud[-1]) / sr
        assert 0.010 <= lead <= 0.025, lead  # 20 ms, less a little resampling-filter ringing
        assert 0.010 <= trail <= 0.025, trail


def test_split_holds_out_word_types(tiny: Path) -> None:
    train, test = split_words(0)
    assert set(train).isdisjoint(test)
    assert set(train) | set(test) == set(ALL_WORDS) and len(ALL_WORDS) == 729
    assert len(test) == round(0.2 * 729)
    assert split_words(0) == (train, test)
    assert split_words(1) != (train, test)

    rows = _rows(tiny)
    for r in rows:
        assert r["word"] in (test if r["split"] == "test" else train)
    train_words = {r["word"] for r in rows if r["split"] == "train"}
    test_words = {r["word"] for r in rows if r["split"] == "test"}
    assert test_words and train_words.isdisjoint(test_words)
    for split in ("train", "test"):
        seen = {s for r in rows if r["split"] == split for s in r["syllables"].split("-")}
        assert seen == set(SYLLABLES), f"{split} lacks {set(SYLLABLES) - seen}"


def test_default_corpus_split_sizes() -> None:
    items = syn._plan(8, 60, 0)
    assert len(items) == 480
    n_test = sum(i.split == "test" for i in items)
    assert n_test == 96
    per_speaker = {s: sum(i.speaker == s for i in items) for s in range(8)}
    assert set(per_speaker.values()) == {60}
    # Speakers say (partly) different words; file names are unique per speaker.
    assert len({(i.speaker, i.word, i.n) for i in items}) == 480
    assert len({i.word for i in items}) > 250


def test_deterministic(tiny: Path, tmp_path: Path) -> None:
    synthesize_word("gugugu", 2, rate=300)  # change espeak's internal state first
    again = synthesize_corpus(tmp_path / "again", progress=False, **TINY)
    files = sorted(p.relative_to(tiny.parent) for p in tiny.parent.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.parent) for p in again.parent.rglob("*") if p.is_file())
    assert len(files) == 3 * 6 + 2  # wavs + manifest.csv + corpus.json
    for rel in files:
        assert (tiny.parent / rel).read_bytes() == (again.parent / rel).read_bytes(), rel
    other = synthesize_corpus(tmp_path / "other", progress=False, **{**TINY, "seed": 1})
    assert other.read_bytes() != tiny.read_bytes()


def test_cached_second_call_does_not_rewrite(tmp_path: Path) -> None:
    out = tmp_path / "c"
    manifest = synthesize_corpus(out, progress=False, **TINY)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    assert synthesize_corpus(out, progress=False, **TINY) == manifest
    assert {p: p.stat().st_mtime_ns for p in files} == before

    # An interrupted run (no manifest yet) or a missing file is not mistaken for a complete corpus.
    wav = out / _rows(manifest)[0]["path"]
    wav.unlink()
    synthesize_corpus(out, progress=False, **TINY)
    assert wav.is_file()
    manifest.unlink()
    synthesize_corpus(out, progress=False, **TINY)
    assert manifest.is_file() and len(_rows(manifest)) == 18

    # Other parameters in the same folder: regenerated, not silently reused.
    synthesize_corpus(out, progress=False, n_speakers=2, words_per_speaker=4)
    assert len(_rows(manifest)) == 8
    assert json.loads((out / "corpus.json").read_text())["params"]["n_speakers"] == 2


def test_default_dir_uses_cache_env_and_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VGIM_CACHE", str(tmp_path))
    d = default_corpus_dir()
    assert d.parent == tmp_path and d.name.startswith("synthetic-")
    assert default_corpus_dir() == d
    assert default_corpus_dir(seed=1) != d
    assert default_corpus_dir(n_speakers=3) != d
    assert default_corpus_dir(sample_rate=22050) != d
    monkeypatch.setattr(syn, "SYNTH_VERSION", syn.SYNTH_VERSION + 1)
    assert default_corpus_dir() != d
    monkeypatch.undo()
    monkeypatch.delenv("VGIM_CACHE", raising=False)
    assert default_corpus_dir().parent == Path.home() / ".cache" / "vgim"


def test_out_dir_none_writes_into_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VGIM_CACHE", str(tmp_path))
    manifest = synthesize_corpus(None, progress=False, n_speakers=2, words_per_speaker=3)
    assert manifest == default_corpus_dir(n_speakers=2, words_per_speaker=3) / "manifest.csv"
    assert manifest.is_file()


def test_speakers_differ_for_the_same_word() -> None:
    feats = []
    for spk in range(8):
        x, _ = synthesize_word("badigu", spk)
        feats.append((np.log(_f0(x)), np.log(_centroid(x))))
    for (a, fa), (b, fb) in itertools.combinations(enumerate(feats), 2):
        diff = max(abs(fa[0] - fb[0]), abs(fa[1] - fb[1]))
        assert diff > np.log(1.08), f"spk{a} and spk{b} sound alike: {fa} vs {fb}"
    f0s = sorted(np.exp(f[0]) for f in feats)
    assert f0s[0] < 100 and f0s[-1] > 190  # both low (male-like) and high (female-like) voices


def test_speakers_differ_in_the_corpus(tiny: Path) -> None:
    rows = _rows(tiny)
    mean_f0 = {}
    for spk in ("spk0", "spk1", "spk2"):
        f0s = [_f0(sf.read(str(tiny.parent / r["path"]), dtype="float32")[0]) for r in rows if r["speaker"] == spk]
        mean_f0[spk] = float(np.mean(f0s))
    for a, b in itertools.combinations(mean_f0, 2):
        assert abs(np.log(mean_f0[a] / mean_f0[b])) > np.log(1.1), mean_f0


def test_vowels_have_their_formant_signature() -> None:
    """/a/ has a high F1 (energy at 550-1100 Hz), /i/ a high F2/F3, /u/ neither: espeak says a, i, u."""

    def bands(word: str, spk: int) -> tuple[float, float]:
        x, segs = synthesize_word(word, spk)
        mid_low, high = [], []
        for s, e in segs:
            v = x[s + (e - s) // 2 : e]  # second half of the syllable: the vowel
            p = np.abs(np.fft.rfft(v * np.hanning(len(v)), 4096)) ** 2
            f = np.fft.rfftfreq(4096, 1 / SR)
            low = p[(f >= 100) & (f < 450)].sum()
            mid = p[(f >= 550) & (f < 1100)].sum()
            mid_low.append(mid / low)
            high.append(p[(f >= 1800) & (f < 3500)].sum() / (low + mid))
        return float(np.mean(mid_low)), float(np.mean(high))

    for spk in (0, 1, 6):
        a, i, u = bands("dadada", spk), bands("dididi", spk), bands("dududu", spk)
        assert a[0] > 1.0 > 0.5 > max(i[0], u[0]), (spk, a, i, u)
        assert i[1] > 3 * u[1], (spk, i, u)


def test_synthesize_word_segments_and_rates() -> None:
    x, segs = synthesize_word("ba-di-gu", 0)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(float(np.abs(x).max()) - 10 ** (-3 / 20)) < 1e-3
    assert segs[0][0] >= 0 and segs[-1][1] <= len(x)
    slow, _ = synthesize_word("badigu", 0, rate=100)
    fast, _ = synthesize_word("badigu", 0, rate=220)
    assert len(slow) > 1.5 * len(fast)
    x22, segs22 = synthesize_word("badigu", 0, sample_rate=22050)
    assert abs(len(x22) / 22050 - len(x) / SR) < 0.002
    assert segs22 == segs  # segments are always at 16 kHz
    # Stress lengthens its syllable.
    _, s0 = synthesize_word("badigu", 0, stress=0)
    _, s1 = synthesize_word("badigu", 0, stress=1)
    assert (s0[0][1] - s0[0][0]) > (s1[0][1] - s1[0][0])
    assert (s1[1][1] - s1[1][0]) > (s0[1][1] - s0[1][0])


def test_describe_corpus(tiny: Path) -> None:
    d = describe_corpus(tiny)
    assert d["n_utterances"] == 18
    assert d["speakers"] == {"spk0": 6, "spk1": 6, "spk2": 6}
    assert sum(d["splits"].values()) == 18 and d["splits"]["test"] >= 3
    assert set(d["syllables"]["train"]) == set(d["syllables"]["test"]) == set(SYLLABLES)
    assert 18 * 0.3 < d["duration_s"] < 18 * 1.2
    assert d["duration_s"] == pytest.approx(sum(d["duration_s_by_split"].values()))


def test_noisy_corpus_is_deterministic_and_at_the_drawn_snr(tiny: Path, tmp_path: Path) -> None:
    noisy = synthesize_corpus(tmp_path / "n", progress=False, noise_snr_db=(10.0, 10.0), **TINY)
    again = synthesize_corpus(tmp_path / "n2", progress=False, noise_snr_db=(10.0, 10.0), **TINY)
    assert noisy.read_bytes() == again.read_bytes() == tiny.read_bytes()  # same words, labels and segments
    assert json.loads((noisy.parent / "corpus.json").read_text())["params"]["noise_snr_db"] == [10.0, 10.0]
    for row in _rows(tiny):
        clean, _ = sf.read(tiny.parent / row["path"], dtype="float64")
        mixed, _ = sf.read(noisy.parent / row["path"], dtype="float64")
        assert (mixed == sf.read(again.parent / row["path"], dtype="float64")[0]).all()
        # the mix is re-peaked: fit the clean word's gain, the rest is the noise
        gain = float(mixed @ clean / (clean @ clean))
        noise = mixed - gain * clean
        snr = 10 * np.log10(np.mean((gain * clean) ** 2) / np.mean(noise**2))
        assert 9.0 < snr < 11.0, (row["path"], snr)
        assert np.abs(mixed).max() == pytest.approx(np.abs(clean).max(), rel=1e-3)  # the word's own peak level
    # the clean corpora keep their folder names; a noisy one gets its own
    assert default_corpus_dir(noise_snr_db=None) == default_corpus_dir()
    assert default_corpus_dir(noise_snr_db=(5.0, 25.0)) != default_corpus_dir()
    with pytest.raises(ValueError, match="noise_snr_db"):
        synthesize_corpus(tmp_path / "bad", noise_snr_db=(20.0, 5.0), **TINY)


def test_every_voice_speaks() -> None:
    for spk in range(syn.MAX_SPEAKERS):
        x, segments = synthesize_word("badigu", spk)
        assert len(segments) == 3 and 60 < _f0(x) < 300, spk


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not a corpus word"):
        synthesize_word("bapi")
    with pytest.raises(ValueError, match="not a corpus word"):
        synthesize_word("badiguba")
    with pytest.raises(ValueError, match="speaker"):
        synthesize_word("badigu", syn.MAX_SPEAKERS)
    with pytest.raises(ValueError, match="n_speakers"):
        synthesize_corpus("unused", n_speakers=syn.MAX_SPEAKERS + 1)
    with pytest.raises(ValueError, match=">= 6"):
        synthesize_corpus("unused", n_speakers=1, words_per_speaker=5)


def test_missing_library_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import espeakng_loader

    monkeypatch.setattr(espeak, "_ENGINE", None)
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: str(tmp_path / "libespeak-ng.so"))
    with pytest.raises(RuntimeError, match="pip install espeakng-loader"):
        synthesize_corpus(tmp_path / "c", progress=False, **TINY)
    assert not (tmp_path / "c" / "manifest.csv").exists()


def test_data_config_names_the_noisy_embedded_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vgim.config import DataConfig
    from vgim.data.source import corpus_location

    monkeypatch.setenv("VGIM_CACHE", str(tmp_path))
    # the demo's corpus: 480 words, about 3 s to synthesise
    root, manifest = corpus_location(DataConfig(synthetic_noise_snr_db=[5.0, 25.0]), progress=False)
    assert Path(manifest) == default_corpus_dir(noise_snr_db=(5.0, 25.0)) / "manifest.csv"
    assert Path(root) == Path(manifest).parent != default_corpus_dir()
    assert json.loads((Path(root) / "corpus.json").read_text())["params"]["noise_snr_db"] == [5.0, 25.0]
