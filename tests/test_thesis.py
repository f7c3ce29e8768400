"""The thesis corpus loader (``vgim.data.thesis``): a fake folder in its layout, then the real corpus if present."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vgim.data.thesis import (
    THESIS_ENV,
    find_thesis_corpus,
    fit_length,
    list_thesis_files,
    load_thesis_corpus,
)

SYLLABLES = {c + v for c in "bdg" for v in "aiu"}


def _word(rate: int, seed: int = 0) -> np.ndarray:
    """Three loud tone bursts (200 ms) with quiet 80 ms gaps and quiet edges."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.08 * rate)) / rate
    quiet = 0.03 * np.sin(2 * np.pi * 130 * t)
    tb = np.arange(int(0.2 * rate)) / rate
    parts = [quiet]
    for _ in range(3):
        parts += [rng.uniform(0.25, 0.35) * np.sin(2 * np.pi * 130 * tb), quiet]
    return np.concatenate(parts).astype(np.float32)


@pytest.fixture
def fake_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "reshuffled"
    for i, (split, name) in enumerate(
        [("train", "babidi_1"), ("train", "gugaba_2"), ("train", "dudugi_1"), ("test", "bibiga_1"), ("test", "daga_1")]
    ):
        (root / split).mkdir(parents=True, exist_ok=True)
        sf.write(root / split / f"{name}.wav", _word(44100, i), 44100, subtype="PCM_16")
    (root / "train" / "broken_1.wav").write_bytes(b"not a wav")  # bad name and unreadable
    (root / "test" / "gagaga_1.wav").write_bytes(b"RIFF garbage")  # good name, unreadable
    return root


def test_list_fake_corpus(fake_corpus: Path) -> None:
    files, skipped = list_thesis_files(fake_corpus)
    assert [f.path.name for f in files] == [
        "babidi_1.wav",
        "dudugi_1.wav",
        "gugaba_2.wav",
        "bibiga_1.wav",
        "gagaga_1.wav",
    ]
    assert [f.split for f in files] == ["train"] * 3 + ["test"] * 2
    assert files[0].labels == {
        "word": "babidi",
        "take": "1",
        "syllables": "ba-bi-di",
        "consonants": "b-b-d",
        "vowels": "a-i-i",
        "speaker": "thesis",
    }
    assert sorted(Path(p).name for p, _ in skipped) == ["broken_1.wav", "daga_1.wav"]
    assert all("<syl><syl><syl>_<n>" in reason for _, reason in skipped)
    with pytest.raises(FileNotFoundError, match="valid"):
        list_thesis_files(fake_corpus, split="valid")


def test_load_fake_corpus(fake_corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vgim"):
        corpus = load_thesis_corpus(fake_corpus, progress=False)
    assert len(corpus) == 4 and corpus.sample_rate == 16000
    assert corpus.splits() == ["test", "train"]
    assert sorted(Path(p).name for p, _ in corpus.skipped) == ["broken_1.wav", "daga_1.wav", "gagaga_1.wav"]
    assert "gagaga_1.wav" in caplog.text
    for u, w in zip(corpus.utterances, corpus.waves, strict=True):
        assert w.dtype == np.float32 and w.ndim == 1
        assert u.segments is not None and len(u.segments) == 3
        assert u.segments[0][0] == 0 and u.segments[-1][1] == w.shape[0]
        assert all(a[1] == b[0] for a, b in zip(u.segments, u.segments[1:], strict=False))
        # Cuts fall in the quiet gaps (80 ms quiet + 200 ms loud per syllable, 80 ms quiet edge).
        for k, (_, end) in enumerate(u.segments[:2]):
            true = round((0.08 + 0.2 * (k + 1) + 0.08 * k + 0.04) * 16000)
            assert abs(end - true) <= 320

    test = load_thesis_corpus(fake_corpus, split="test", length=4000, progress=False)
    assert [Path(u.path).name for u in test.utterances] == ["bibiga_1.wav"]
    assert test.waves[0].shape == (4000,)
    assert test.utterances[0].segments is not None and test.utterances[0].segments[-1][1] <= 4000

    limited = load_thesis_corpus(fake_corpus, limit=1, segment=False, progress=False)
    assert [u.split for u in limited.utterances] == ["train", "test"]
    assert limited.utterances[0].segments is None


def test_fit_length() -> None:
    wave = np.arange(10, dtype=np.float32)
    out, seg = fit_length(wave, [(0, 3), (3, 7), (7, 10)], 5)
    assert out.tolist() == [0, 1, 2, 3, 4] and seg == [(0, 3), (3, 5)]
    out, seg = fit_length(wave, [(0, 3), (3, 7), (7, 10)], 12)
    assert out.shape == (12,) and out[10:].tolist() == [0, 0] and seg == [(0, 3), (3, 7), (7, 10)]
    with pytest.raises(ValueError, match="length"):
        fit_length(wave, None, 0)


def test_find_corpus_from_environment(fake_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THESIS_ENV, str(fake_corpus))
    assert find_thesis_corpus() == fake_corpus.resolve()
    assert len(load_thesis_corpus(limit=1, progress=False)) == 2
    monkeypatch.setenv(THESIS_ENV, str(tmp_path / "nowhere"))
    assert find_thesis_corpus() is None
    with pytest.raises(FileNotFoundError, match=THESIS_ENV):
        load_thesis_corpus()


# ---------------------------------------------------------------------------------------------------------
# The real corpus (../shared/datasets/artificial-speech/reshuffledv2 or $VGIM_THESIS_CORPUS)


@pytest.fixture(scope="module")
def real_root() -> Path:
    root = find_thesis_corpus()
    if root is None:
        pytest.skip(
            "thesis corpus not found at ../shared/datasets/artificial-speech/reshuffledv2; set VGIM_THESIS_CORPUS"
        )
    return root


@pytest.mark.corpus
def test_real_corpus_files_and_labels(real_root: Path) -> None:
    train, skipped_train = list_thesis_files(real_root, split="train")
    test, skipped_test = list_thesis_files(real_root, split="test")
    assert (len(train), len(test)) == (680, 171)
    assert not skipped_train and not skipped_test
    for files in (train, test):
        syllables = {s for f in files for s in f.labels["syllables"].split("-")}
        assert syllables == SYLLABLES
        for f in files:
            syl = f.labels["syllables"].split("-")
            assert "".join(syl) == f.labels["word"]
            assert f.labels["consonants"] == "-".join(s[0] for s in syl)
            assert f.labels["vowels"] == "-".join(s[1] for s in syl)


@pytest.mark.corpus
def test_real_corpus_segments(real_root: Path) -> None:
    corpus = load_thesis_corpus(real_root, limit=12, progress=False)
    assert len(corpus) == 24 and not corpus.skipped and corpus.splits() == ["test", "train"]
    for u, w in zip(corpus.utterances, corpus.waves, strict=True):
        n = w.shape[0]
        assert 0.6 * 16000 < n < 1.2 * 16000  # 0.68 - 1.10 s words
        assert u.segments is not None and len(u.segments) == 3
        assert u.segments[0][0] == 0 and u.segments[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(u.segments, u.segments[1:], strict=False))
        lengths_ms = [(e - s) / 16 for s, e in u.segments]
        assert all(120 < length < 600 for length in lengths_ms), (u.path, lengths_ms)

    fixed = load_thesis_corpus(real_root, split="test", length=10240, limit=3, progress=False)
    assert {w.shape[0] for w in fixed.waves} == {10240}
