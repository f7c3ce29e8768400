"""Loading folders and CSV manifests with bad-file skipping (``vgim.data.corpus``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vgim.data.corpus import AudioCorpus, Utterance, load_corpus


def _tone(seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write(path: Path, wave: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate, subtype=subtype)
    return path


def _bad_folder(root: Path) -> None:
    """Three good files plus one of every bad kind."""
    _write(root / "alice_yes_1.wav", _tone())
    _write(root / "bob_no_2.flac", _tone(freq=300))
    _write(root / "sub" / "carol_yes_3.wav", _tone(rate=44100), rate=44100)
    (root / "dave_no_4.wav").write_bytes(b"garbage bytes, not RIFF" * 20)
    _write(root / "erin_yes_5.wav", np.zeros(0, dtype=np.float32))
    nan = _tone()
    nan[10] = np.nan
    _write(root / "frank_no_6.wav", nan, subtype="FLOAT")
    _write(root / "gina_yes_7.wav", _tone(seconds=0.05))  # 800 samples
    _write(root / "hank_no_8.wav", np.zeros(8000, dtype=np.float32))
    (root / "readme.txt").write_text("not audio, ignored")


def test_folder_skips_every_bad_kind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _bad_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="vgim"):
        corpus = load_corpus(tmp_path, min_samples=4000, progress=False)
    assert isinstance(corpus, AudioCorpus)
    assert len(corpus) == 3
    assert [Path(u.path).name for u in corpus.utterances] == [
        "alice_yes_1.wav",
        "bob_no_2.flac",
        "carol_yes_3.wav",
    ]
    assert all(w.dtype == np.float32 and w.ndim == 1 for w in corpus.waves)
    assert len(corpus.waves[2]) == 8000  # resampled from 44.1 kHz
    assert corpus.utterances[0].labels == {}

    reasons = {Path(p).name: r for p, r in corpus.skipped}
    assert len(reasons) == 5
    assert reasons["dave_no_4.wav"].startswith("unreadable: ")
    assert reasons["erin_yes_5.wav"] == "empty (0 samples)"
    assert reasons["frank_no_6.wav"] == "contains NaN or Inf values"
    assert reasons["gina_yes_7.wav"] == "shorter than one crop (800 < 4000 samples)"
    assert reasons["hank_no_8.wav"] == "silent (RMS 0.00e+00 < 1e-04)"

    messages = [r.getMessage() for r in caplog.records]
    assert any("dave_no_4.wav" in m and "unreadable" in m for m in messages)
    assert any("hank_no_8.wav" in m and "silent" in m for m in messages)
    summary = [m for m in messages if "skipped 5 of 8 files" in m]
    assert len(summary) == 1 and "unreadable: 1" in summary[0] and "silent: 1" in summary[0]
    assert corpus.describe().startswith("3 files, ") and corpus.describe().endswith("5 skipped")


def test_folder_labels_and_pattern_mismatch(tmp_path: Path) -> None:
    _write(tmp_path / "alice_yes_1.wav", _tone())
    _write(tmp_path / "bob_no_2.wav", _tone())
    _write(tmp_path / "README_take.wav", _tone())  # does not match (uppercase, no number)
    pattern = r"(?P<speaker>[a-z]+)_(?P<word>[a-z]+)_\d+"
    corpus = load_corpus(tmp_path, label_pattern=pattern, progress=False)
    assert corpus.labels("speaker") == ["alice", "bob"]
    assert corpus.labels("word") == ["yes", "no"]
    assert corpus.skipped == [(str(tmp_path / "README_take.wav"), f"file name does not match label pattern {pattern}")]
    with pytest.raises(KeyError, match="speaker"):
        corpus.labels("gender")


def test_pattern_is_a_full_match(tmp_path: Path) -> None:
    _write(tmp_path / "alice_yes_1_extra.wav", _tone())
    _write(tmp_path / "bob_no_2.wav", _tone())
    corpus = load_corpus(tmp_path, label_pattern=r"(?P<speaker>[a-z]+)_(?P<word>[a-z]+)_\d+", progress=False)
    assert corpus.labels("speaker") == ["bob"]
    assert len(corpus.skipped) == 1


def test_invalid_pattern(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav", _tone())
    with pytest.raises(ValueError, match="invalid label_pattern"):
        load_corpus(tmp_path, label_pattern="(?P<x", progress=False)


def test_nothing_usable_raises(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"junk" * 50)
    _write(tmp_path / "b.wav", np.zeros(1000, dtype=np.float32))
    with pytest.raises(ValueError, match=r"no usable audio.*skipped 2 of 2 files.*unreadable: 1.*silent: 1"):
        load_corpus(tmp_path, progress=False)


def test_missing_root_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_corpus(tmp_path / "nowhere", progress=False)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no audio files found"):
        load_corpus(tmp_path, progress=False)


def test_order_is_deterministic_with_threads(tmp_path: Path) -> None:
    for i in range(60):
        _write(tmp_path / f"d{i % 3}" / f"f{i:03d}.wav", _tone(seconds=0.1, freq=100 + 10 * i))
    one = load_corpus(tmp_path, progress=False, workers=1)
    many = load_corpus(tmp_path, progress=True, workers=6)
    assert [u.path for u in one.utterances] == [u.path for u in many.utterances]
    assert all(np.array_equal(a, b) for a, b in zip(one.waves, many.waves, strict=True))
    assert len(one) == 60 and one.skipped == []


# --- manifests --------------------------------------------------------------------------------------------


def test_manifest_without_path_column(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file,speaker\na.wav,alice\n")
    with pytest.raises(ValueError, match=r"m\.csv has no 'path' column; columns found: \['file', 'speaker'\]"):
        load_corpus(tmp_path, manifest="m.csv", progress=False)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_corpus(tmp_path, manifest="m.csv", progress=False)


def test_manifest_split_segments_and_skips(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    _write(audio / "a.wav", _tone(seconds=1.0))
    _write(audio / "b.wav", _tone(seconds=1.0))
    _write(audio / "c.wav", _tone(seconds=1.0))
    _write(tmp_path / "elsewhere" / "d.wav", _tone(seconds=1.0))
    abs_d = (tmp_path / "elsewhere" / "d.wav").resolve()
    manifest = tmp_path / "meta" / "list.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "path,speaker,split,segments,word\n"
        "../audio/a.wav,alice,train,0:4000;4000:9000,yes\n"
        "../audio/b.wav,bob,test,0:100,no\n"
        f"{abs_d},dave,train,,maybe\n"
        "../audio/missing.wav,zed,train,,no\n"
        "../audio/c.wav,carol,train,5:2,yes\n"
    )
    corpus = load_corpus(tmp_path, manifest="meta/list.csv", split="train", progress=False)
    assert len(corpus) == 2
    assert corpus.labels("speaker") == ["alice", "dave"]
    assert corpus.labels("word") == ["yes", "maybe"]
    a, d = corpus.utterances
    assert a.labels == {"speaker": "alice", "word": "yes"}  # split and segments are not labels
    assert a.split == "train" and a.segments == [(0, 4000), (4000, 9000)]
    assert d.segments is None and Path(d.path) == abs_d
    reasons = {Path(p).name: r for p, r in corpus.skipped}
    assert reasons["missing.wav"] == "file not found"
    assert reasons["c.wav"].startswith("malformed segments '5:2'")
    assert len(corpus.skipped) == 2

    both = load_corpus(tmp_path, manifest=str(manifest), progress=False)
    assert both.splits() == ["test", "train"]
    test = both.subset("test")
    assert isinstance(test.utterances[0], Utterance)
    assert test.labels("speaker") == ["bob"] and test.utterances[0].segments == [(0, 100)]
    assert len(both.subset("train")) == 2
    with pytest.raises(ValueError, match="splits in this corpus"):
        both.subset("valid")
    with pytest.raises(ValueError, match="no row with split 'valid'"):
        load_corpus(tmp_path, manifest=str(manifest), split="valid", progress=False)


def test_manifest_segments_scaled_to_sample_rate(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav", _tone(seconds=1.0))
    (tmp_path / "m.csv").write_text("path,segments\na.wav,0:1600;1600:16000\n")
    corpus = load_corpus(tmp_path, manifest="m.csv", sample_rate=8000, progress=False)
    assert len(corpus.waves[0]) == 8000
    assert corpus.utterances[0].segments == [(0, 800), (800, 8000)]


def test_manifest_segments_past_end_are_skipped(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav", _tone(seconds=1.0))
    _write(tmp_path / "b.wav", _tone(seconds=1.0))
    (tmp_path / "m.csv").write_text("path,segments\na.wav,0:16000\nb.wav,0:8000;8000:20000\n")
    corpus = load_corpus(tmp_path, manifest="m.csv", progress=False)
    assert [Path(u.path).name for u in corpus.utterances] == ["a.wav"]
    assert corpus.skipped[0][1].startswith("segments extend past the end")


def test_manifest_without_split_column_ignores_split(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav", _tone())
    (tmp_path / "m.csv").write_text("path,speaker\na.wav,alice\n")
    corpus = load_corpus(tmp_path, manifest="m.csv", split="train", progress=False)
    assert corpus.labels("speaker") == ["alice"] and corpus.utterances[0].split == ""
