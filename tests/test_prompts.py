"""``vgim data prompts``: Debian's Asterisk prompts as a corpus with English phone alignments.

The phone map, transcript normalisation, frame labels and cache run everywhere; the corpus tests need the
Debian packages asterisk-core-sounds-{en,es}-g722 and asterisk-core-sounds-en (``bash run.sh test``
installs them when it can) and skip without them. They build a dozen prompts per language (``--limit 12``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from vgim.cli import main
from vgim.data import prompts as prompts_module
from vgim.data.librispeech import PHONE_FRAME_HOP, corpus_alignments, load_librispeech, read_alignments, read_split
from vgim.data.phone_align import (
    PHONES,
    AlignmentCache,
    MissingSourceError,
    PhoneAligner,
    Segment,
    frame_labels,
    normalise_transcript,
    phone_index,
)
from vgim.data.prompts import SOUNDS_DIR, TRANSCRIPT_FILE, TRANSCRIPT_PACKAGE, VOICES, build_prompts_corpus
from vgim.evaluate.frame_probe import align_features
from vgim.frames import FrameInfo

LIMIT = 12
HAVE_PROMPTS = (
    all((SOUNDS_DIR / VOICES[lang].folder).is_dir() for lang in ("en", "es"))
    and (prompts_module.DOCS_DIR / TRANSCRIPT_PACKAGE / TRANSCRIPT_FILE).is_file()
)
needs_prompts = pytest.mark.skipif(
    not HAVE_PROMPTS,
    reason="Debian's Asterisk prompts are not installed (apt-get install asterisk-core-sounds-en-g722 "
    "asterisk-core-sounds-es-g722 asterisk-core-sounds-en; done by `bash run.sh test` as root)",
)


# ---------------------------------------------------------------------------- without the Debian packages


def test_phone_map_strips_stress_and_maps_silence_and_noise_to_zero() -> None:
    assert len(PHONES) == 40 and PHONES[0] == "SIL" and len(set(PHONES)) == 40
    assert list(PHONES[1:]) == sorted(PHONES[1:])
    assert phone_index("AH0") == phone_index("AH1") == phone_index("ah") == PHONES.index("AH")
    assert phone_index("ZH") == 39 and phone_index("AA2") == 1
    assert {phone_index(p) for p in ("SIL", "+NSN+", "+SPN+", "+BREATH+")} == {0}
    with pytest.raises(ValueError, match="unknown phone symbol 'AX'"):
        phone_index("AX")


def test_transcripts_are_normalised_to_dictionary_words() -> None:
    words = normalise_transcript("Please press 1, or * then #.  Call-Forward on busy; it's 42!").words
    assert words == tuple("please press one or star then pound call forward on busy it's forty two".split())
    assert normalise_transcript("[ascending tones]").problem == "no speech in the transcript"
    assert normalise_transcript("(10 seconds of silence)").problem == "no speech in the transcript"
    assert normalise_transcript("<beep ascending>").problem == "no speech in the transcript"
    assert normalise_transcript("dollar [$]").words == ("dollar",)
    assert "uncertain reading (1234)" in normalise_transcript("extension 1234").problem
    assert "uncertain reading (28.8)" in normalise_transcript("a 28.8 kilobit modem").problem


def test_frame_labels_have_one_label_per_complete_10ms_frame() -> None:
    segs = [Segment("DH", 0, 3), Segment("AH1", 3, 2), Segment("SIL", 5, 4), Segment("+NSN+", 9, 50)]
    labels = frame_labels(segs, 12 * PHONE_FRAME_HOP + 159)  # 12 complete frames, one partial
    assert labels.dtype == np.int64 and labels.shape == (12,)
    assert labels.tolist() == [PHONES.index("DH")] * 3 + [PHONES.index("AH")] * 2 + [0] * 7
    assert frame_labels([Segment("K", 0, 2)], 4 * PHONE_FRAME_HOP).tolist() == [20, 20, 0, 0]  # uncovered tail
    assert frame_labels([], 100).shape == (0,)


def test_alignment_cache_round_trip_survives_a_truncated_line(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "alignments.jsonl"
    pcm = np.arange(320, dtype=np.int16)
    key = AlignmentCache.key(pcm, ["hello"], "v1")
    assert key != AlignmentCache.key(pcm, ["hello"], "v2") != AlignmentCache.key(pcm[1:], ["hello"], "v1")
    cache = AlignmentCache(path)
    assert cache.get(key) is None
    cache.put(key, "hello", [Segment("HH", 0, 5), Segment("AH", 5, 3)])
    cache.put("other", "bad", "Failed to stop utterance processing")
    with path.open("a") as fh:
        fh.write('{"key": "cut-off", "pro')  # an interrupted run
    again = AlignmentCache(path)
    assert len(again) == 2
    assert again.get(key) == [Segment("HH", 0, 5), Segment("AH", 5, 3)]
    assert again.get("other") == "Failed to stop utterance processing"


def test_missing_prompts_name_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(prompts_module, "SOUNDS_DIR", tmp_path / "no-sounds")
    code = main(["data", "prompts", "--out", str(tmp_path / "out"), "--languages", "fr", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "vgim data: error: no G.722 prompts in" in err and "apt-get install asterisk-core-sounds-fr-g722" in err
    assert not (tmp_path / "out").exists()  # nothing written before every source is found


def test_missing_transcripts_name_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sounds = tmp_path / "sounds" / VOICES["en"].folder
    sounds.mkdir(parents=True)
    (sounds / "hello.g722").write_bytes(bytes(800))
    with pytest.raises(MissingSourceError, match="install the Debian package asterisk-core-sounds-en "):
        build_prompts_corpus(tmp_path / "out", languages=["en"], sounds_dir=tmp_path / "sounds", docs_dir=tmp_path)


@pytest.mark.parametrize(("module", "package"), [("G722", "G722"), ("pocketsphinx", "pocketsphinx")])
def test_missing_python_package_is_named(
    module: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    sounds = tmp_path / "sounds" / VOICES["en"].folder
    sounds.mkdir(parents=True)
    (sounds / "hello.g722").write_bytes(bytes(800))
    docs = tmp_path / "docs" / TRANSCRIPT_PACKAGE
    docs.mkdir(parents=True)
    (docs / "core-sounds-en.txt").write_text("hello: Hello.\n")
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    monkeypatch.setattr(prompts_module, "SOUNDS_DIR", tmp_path / "sounds")
    monkeypatch.setattr(prompts_module, "DOCS_DIR", tmp_path / "docs")
    monkeypatch.setattr(prompts_module, "TRANSCRIPT_FILE", "core-sounds-en.txt")
    code = main(["data", "prompts", "--out", str(tmp_path / "out"), "--languages", "en", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"PyPI package {package}" in err and "pip install 'vgim[prompts]'" in err


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown language"):
        build_prompts_corpus(tmp_path, languages=["de"])
    with pytest.raises(ValueError, match="test_fraction"):
        build_prompts_corpus(tmp_path, languages=["en"], test_fraction=1.0)


# ---------------------------------------------------------------------------- on a dozen real prompts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_PROMPTS:
        pytest.skip("Debian's Asterisk prompts are not installed")
    out = tmp_path_factory.mktemp("prompts")
    assert main(["data", "prompts", "--out", str(out), "--languages", "en,es", "--limit", str(LIMIT), "--quiet"]) == 0
    return out


def _manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@needs_prompts
def test_manifest_columns_and_stratified_split(corpus: Path) -> None:
    rows = _manifest(corpus)
    assert list(rows[0]) == ["path", "utterance", "speaker", "language", "prompt", "split"]
    assert len(rows) == 2 * LIMIT and {r["speaker"] for r in rows} == {"allison"}
    assert Counter((r["language"], r["split"]) for r in rows) == {
        ("en", "train"): 10,
        ("en", "test"): 2,
        ("es", "train"): 10,
        ("es", "test"): 2,
    }
    assert len({r["utterance"] for r in rows}) == len(rows)
    for r in rows[:: LIMIT // 2]:
        info = sf.info(str(corpus / r["path"]))
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
        speaker, chapter, _ = r["utterance"].split("-")
        assert r["path"] == f"prompts/{speaker}/{chapter}/{r['utterance']}.flac"
    summary = json.loads((corpus / "summary.json").read_text())
    assert summary["languages"]["en"]["licence"] == "CC-BY-SA-3.0" and summary["languages"]["en"]["files"] == LIMIT
    assert (corpus / "licenses" / "asterisk-core-sounds-en-g722.copyright").is_file()


@needs_prompts
def test_alignments_fit_the_audio_and_the_librispeech_recipe(corpus: Path) -> None:
    rows = {r["utterance"]: r for r in _manifest(corpus)}
    labels = read_alignments(corpus / "converted_aligned_phones.txt")
    summary = json.loads((corpus / "summary.json").read_text())["alignment"]
    # of the first 12 English prompts, only "ascending-2tone" ([ascending tones]) has no words to align
    assert summary["not_aligned"] == {"no speech in the transcript": ["ascending-2tone"]}
    assert summary["aligned"] == len(labels) == LIMIT - 1
    assert {rows[u]["language"] for u in labels} == {"en"}
    for uid, lab in labels.items():
        n_samples = sf.info(str(corpus / rows[uid]["path"])).frames
        assert lab.shape == (n_samples // PHONE_FRAME_HOP,)
        assert 0 <= lab.min() and lab.max() < len(PHONES)
        assert (lab > 0).mean() > 0.5  # mostly speech: the prompts are trimmed
    assert (corpus / "phones.txt").read_text().splitlines()[:2] == ["0 SIL", "1 AA"]
    # the CPC split files: the aligned English utterances, split as in the manifest
    train, test = read_split(corpus / "train_split.txt"), read_split(corpus / "test_split.txt")
    assert sorted(train + test) == sorted(labels)
    assert {rows[u]["split"] for u in train} == {"train"} and {rows[u]["split"] for u in test} == {"test"}
    # read back by the recipe's loader, the labels pair with the audio frames as the phone probe pairs them
    loaded = load_librispeech(corpus, "prompts", utterances=test, progress=False)
    assert loaded.skipped == [] and loaded.labels("speaker") == ["1"] * len(test)
    for wave, lab in zip(loaded.waves, corpus_alignments(loaded, labels), strict=True):
        feats = np.zeros((wave.shape[0] // 160, 2), np.float32)
        assert align_features(feats, FrameInfo(160, 80.0, 400), lab.shape[0]).shape == (lab.shape[0], 2)
    assert "THAT AGENT IS ALREADY LOGGED ON" in (corpus / "prompts" / "1" / "1" / "1-1.trans.txt").read_text()


@needs_prompts
def test_rerun_reuses_the_cached_alignments(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (corpus / "converted_aligned_phones.txt").read_text()
    manifest = (corpus / "manifest.csv").read_text()

    def no_alignment(*args: object) -> list[Segment]:
        raise AssertionError("the alignment should come from the cache")

    monkeypatch.setattr(PhoneAligner, "align", no_alignment)
    result = build_prompts_corpus(corpus, languages=["en", "es"], limit=LIMIT, progress=False)
    assert result.summary["alignment"]["cached"] == LIMIT - 1 and result.summary["alignment"]["new"] == 0
    assert (corpus / "converted_aligned_phones.txt").read_text() == before
    assert (corpus / "manifest.csv").read_text() == manifest  # deterministic split
