"""LibriSpeech layout, CPC alignments / splits (``vgim.data.librispeech``) and the frame-level probes
(``vgim.evaluate.frame_probe``), all on the synthetic fixture."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vgim.data.corpus import AudioCorpus
from vgim.data.librispeech import (
    N_PHONES,
    PHONE_FRAME_HOP,
    corpus_alignments,
    load_librispeech,
    read_alignments,
    read_split,
)
from vgim.data.librispeech_fixture import LibriSpeechFixture, make_librispeech_fixture
from vgim.evaluate.baselines import MFCC_FRAMES, mfcc_features
from vgim.evaluate.frame_probe import (
    align_features,
    frame_dataset,
    frame_phone_probe,
    label_frame_centres,
    pairing_shift,
    speaker_probe,
)
from vgim.frames import FrameInfo


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> LibriSpeechFixture:
    return make_librispeech_fixture(tmp_path_factory.mktemp("librispeech"))


@pytest.fixture(scope="module")
def split(fixture: LibriSpeechFixture) -> tuple[AudioCorpus, AudioCorpus, dict[str, np.ndarray]]:
    train = load_librispeech(fixture["root"], utterances=read_split(fixture["train_split"]), progress=False)
    test = load_librispeech(fixture["root"], utterances=read_split(fixture["test_split"]), progress=False)
    return train, test, read_alignments(fixture["alignments"])


@pytest.fixture(scope="module")
def mfcc(
    split: tuple[AudioCorpus, AudioCorpus, dict[str, np.ndarray]],
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    train, test, alignments = split
    return (
        [mfcc_features(w) for w in train.waves],
        corpus_alignments(train, alignments),
        [mfcc_features(w) for w in test.waves],
        corpus_alignments(test, alignments),
    )


# ---------------------------------------------------------------------------- fixture and loading


def test_fixture_layout_and_loading(fixture: LibriSpeechFixture) -> None:
    assert len(fixture["files"]) == 12 and all(p.suffix == ".flac" and p.is_file() for p in fixture["files"])
    assert len(fixture["speakers"]) == 3
    corpus = load_librispeech(fixture["root"], progress=False)
    assert len(corpus) == 12 and corpus.skipped == [] and corpus.sample_rate == 16000
    assert sorted(corpus.labels("utterance")) == sorted(fixture["utterances"])
    assert sorted(set(corpus.labels("speaker"))) == sorted(fixture["speakers"])
    assert len(set(corpus.labels("chapter"))) == 6  # two chapters per speaker
    for u, w in zip(corpus.utterances, corpus.waves, strict=True):
        speaker, chapter, _ = u.labels["utterance"].split("-")
        assert (u.labels["speaker"], u.labels["chapter"]) == (speaker, chapter)
        assert Path(u.path).parent == fixture["subset_dir"] / speaker / chapter
        assert len(u.labels["text"].split()) == 3
        assert w.dtype == np.float32 and 16000 <= w.shape[0] < 16000 + PHONE_FRAME_HOP
    # the transcript line of the first file
    first = corpus.utterances[0]
    trans = Path(first.path).parent / f"{first.labels['speaker']}-{first.labels['chapter']}.trans.txt"
    assert f"{first.labels['utterance']} {first.labels['text']}\n" in trans.read_text()


def test_fixture_is_deterministic(fixture: LibriSpeechFixture, tmp_path: Path) -> None:
    again = make_librispeech_fixture(tmp_path)
    assert again["alignments"].read_text() == fixture["alignments"].read_text()
    a, _ = sf.read(str(again["files"][5]))
    b, _ = sf.read(str(fixture["files"][5]))
    np.testing.assert_array_equal(a, b)


def test_load_selected_utterances_in_order(fixture: LibriSpeechFixture, caplog: pytest.LogCaptureFixture) -> None:
    ids = [fixture["utterances"][7], fixture["utterances"][2], "999-1-0000", "not-an-id"]
    with caplog.at_level(logging.WARNING, logger="vgim"):
        corpus = load_librispeech(fixture["root"], "train-clean-100", utterances=ids, progress=False)
    assert corpus.labels("utterance") == ids[:2]
    reasons = dict(corpus.skipped)
    assert reasons[str(fixture["subset_dir"] / "999" / "1" / "999-1-0000.flac")] == "file not found"
    assert any("not a LibriSpeech id" in r for r in reasons.values())
    assert "skipped 2 of 4 files" in caplog.text
    # the subset folder itself as root, and max_utterances
    limited = load_librispeech(fixture["subset_dir"], "", max_utterances=5, progress=False)
    assert len(limited) == 5


def test_bad_files_are_skipped_with_reasons(fixture: LibriSpeechFixture, tmp_path: Path) -> None:
    fx = make_librispeech_fixture(tmp_path, n_speakers=1, utterances_per_speaker=3)
    fx["files"][1].write_bytes(b"not a flac file" * 10)
    misplaced = fx["files"][0].parent / "5-5-0005.flac"
    misplaced.write_bytes(fx["files"][0].read_bytes())
    corpus = load_librispeech(tmp_path, progress=False)
    assert corpus.labels("utterance") == [fx["utterances"][0], fx["utterances"][2]]
    reasons = dict(corpus.skipped)
    assert reasons[str(fx["files"][1])].startswith("unreadable: ")
    assert reasons[str(misplaced)].startswith("file name does not match its folders")
    with pytest.raises(FileNotFoundError, match="dev-clean"):
        load_librispeech(tmp_path, "dev-clean")


# ---------------------------------------------------------------------------- alignments and splits


def test_alignments_and_splits_match_the_audio(
    fixture: LibriSpeechFixture, split: tuple[AudioCorpus, AudioCorpus, dict[str, np.ndarray]]
) -> None:
    train, test, alignments = split
    assert list(alignments) == fixture["utterances"]
    train_ids, test_ids = read_split(fixture["train_split"]), read_split(fixture["test_split"])
    assert len(train_ids) == 9 and len(test_ids) == 3 and not set(train_ids) & set(test_ids)
    assert set(train.labels("speaker")) == set(test.labels("speaker"))  # every speaker in both
    for corpus in (train, test):
        for labels, wave in zip(corpus_alignments(corpus, alignments), corpus.waves, strict=True):
            assert labels.dtype == np.int64 and labels.shape[0] == wave.shape[0] // PHONE_FRAME_HOP
            assert 0 <= labels.min() and labels.max() < N_PHONES
            # label 0 is the synthetic silence: its frames are quiet, all others are loud
            frames = wave[: labels.shape[0] * PHONE_FRAME_HOP].reshape(-1, PHONE_FRAME_HOP)
            rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
            assert np.all(rms[labels == 0] < 0.01) and np.all(rms[labels != 0] > 0.03)
    with pytest.raises(KeyError, match="no phone alignment"):
        corpus_alignments(train, {})


def test_read_split_ignores_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "split.txt"
    path.write_text("\n103-1240-0000\n  \n19-198-0001  \n\n")
    assert read_split(path) == ["103-1240-0000", "19-198-0001"]
    path.write_text("103-1240-0000 extra\n")
    with pytest.raises(ValueError, match=r"split\.txt:1"):
        read_split(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("19-198-0001 0 0 x 5", r"converted_aligned_phones\.txt:2 \(utterance 19-198-0001\): label 3 is 'x'"),
        ("19-198-0001", r"converted_aligned_phones\.txt:2 \(utterance 19-198-0001\): no phone labels"),
        ("19-198-0001 0 41", r"converted_aligned_phones\.txt:2 .*label 2 is 41, outside \[0, 41\)"),
        ("19-198-0001 0 1.5", r"converted_aligned_phones\.txt:2 .*'1\.5', not an integer"),
        ("103-1240-0000 1 2", r"converted_aligned_phones\.txt:2 .*repeats line 1"),
    ],
)
def test_malformed_alignment_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "converted_aligned_phones.txt"
    path.write_text(f"103-1240-0000 0 0 3 3 3 0\n{line}\n")
    with pytest.raises(ValueError, match=message):
        read_alignments(path)


def test_read_alignments_parses(tmp_path: Path) -> None:
    path = tmp_path / "converted_aligned_phones.txt"
    path.write_text("103-1240-0000 0 0 3 3 40 0\n\n19-198-0001 7\n")
    out = read_alignments(path)
    assert list(out) == ["103-1240-0000", "19-198-0001"]
    np.testing.assert_array_equal(out["103-1240-0000"], [0, 0, 3, 3, 40, 0])
    assert out["19-198-0001"].dtype == np.int64
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_alignments(tmp_path / "missing.txt")


# ---------------------------------------------------------------------------- feature alignment


def _centre_features(frames: FrameInfo, n_frames: int) -> np.ndarray:
    """Channel 0 holds each frame's centre sample, channel 1 its index."""
    return np.stack([frames.centres(n_frames), np.arange(n_frames, dtype=np.float64)], axis=1)


def test_label_frame_centres() -> None:
    np.testing.assert_array_equal(label_frame_centres(3), [80, 240, 400])


@pytest.mark.parametrize("offset", [0.0, 20.0, 80.0, 250.0])
def test_align_hop_160(offset: float) -> None:
    frames = FrameInfo(hop=160, offset=offset, receptive_field=465)
    feats = _centre_features(frames, 100)
    out = align_features(feats, frames, 100)
    target = label_frame_centres(100)
    # the chosen frame is the nearest one (ties to the earlier frame); never more than half a hop away
    dist = np.abs(out[:, 0] - target)
    all_dist = np.abs(feats[None, :, 0] - target[:, None])
    np.testing.assert_array_equal(dist, all_dist.min(axis=1))
    assert np.all(dist[target >= feats[0, 0]] <= 80)  # (label frames before the first centre are clipped)
    # one frame per label frame: consecutive, no repeats except clipping at the ends
    assert np.all(np.diff(out[:, 1]) <= 1)
    if offset == 20.0:  # the CPC encoder's geometry: label frame j <-> feature frame j
        np.testing.assert_array_equal(out[:, 1], np.arange(100))
    if offset == 0.0:  # MFCC (centred frames): a tie (80 samples either side) goes to frame j, inside [160j, 160j+160)
        np.testing.assert_array_equal(out[:, 1], np.arange(100))
    if offset == 250.0:  # feature frame j - 1 is centred on 160 j + 90, 10 samples after label frame j's centre
        np.testing.assert_array_equal(out[:, 1], np.maximum(np.arange(100) - 1, 0))
    # with one frame per label frame, mean == nearest
    np.testing.assert_array_equal(align_features(feats, frames, 100, mode="mean"), out)


@pytest.mark.parametrize("offset", [0.0, 20.0])
def test_align_hop_40(offset: float) -> None:
    frames = FrameInfo(hop=40, offset=offset, receptive_field=100)
    n_labels = 50
    feats = _centre_features(frames, 4 * n_labels)
    near = align_features(feats, frames, n_labels)
    np.testing.assert_allclose(np.abs(near[:, 0] - label_frame_centres(n_labels)), 0 if offset == 0 else 20)
    # mean: the four frames whose centres lie in [160 j, 160 j + 160)
    mean = align_features(feats, frames, n_labels, mode="mean")
    np.testing.assert_allclose(mean[:, 1], 4 * np.arange(n_labels) + 1.5)
    np.testing.assert_allclose(mean[:, 0], 160 * np.arange(n_labels) + offset + 60)
    # features shorter than the labels by a frame: the last label frame falls back to the nearest frame
    short = align_features(feats[:-2], frames, n_labels, mode="mean")
    np.testing.assert_allclose(short[-1, 1], 4 * n_labels - 4 + 0.5)


@pytest.mark.parametrize(("offset", "n_frames"), [(20.0, 100), (20.0, 101), (0.0, 101), (250.0, 103)])
def test_gim_pairing_keeps_the_last_outputs_at_hop_160(offset: float, n_frames: int) -> None:
    """``c[-len(labels):]``: label j gets frame T - L + j, whatever the offset; "centre" keeps frame centres."""
    frames = FrameInfo(hop=160, offset=offset, receptive_field=465)
    feats = _centre_features(frames, n_frames)
    gim = align_features(feats, frames, 100, pairing="gim")
    np.testing.assert_array_equal(gim, feats[-100:])
    np.testing.assert_array_equal(align_features(feats, frames, 100, mode="mean", pairing="gim"), feats[-100:])
    np.testing.assert_array_equal(
        align_features(feats, frames, 100, pairing="centre"), align_features(feats, frames, 100)
    )
    # the shift moves label j's centre exactly onto frame T - L + j's centre
    assert pairing_shift(frames, n_frames, 100, "gim") == 160 * (n_frames - 100) + offset - 80
    assert pairing_shift(frames, n_frames, 100, "centre") == 0.0
    with pytest.raises(ValueError, match="unknown pairing"):
        align_features(feats, frames, 100, pairing="left")  # type: ignore[arg-type]


def test_gim_pairing_at_a_finer_hop_takes_the_last_outputs_in_groups() -> None:
    """Hop 40 (r = 4): label j gets the mean of outputs T - 4 (L - j) .. T - 4 (L - j) + 3, i.e. the last 4 L."""
    frames = FrameInfo(hop=40, offset=0.0, receptive_field=105)
    n_labels, n_frames = 50, 4 * 50 + 3  # three frames more than the labels need, as the padded convs give
    feats = _centre_features(frames, n_frames)
    mean = align_features(feats, frames, n_labels, mode="mean", pairing="gim")
    np.testing.assert_allclose(mean[:, 1], n_frames - 4 * (n_labels - np.arange(n_labels)) + 1.5)
    centre = align_features(feats, frames, n_labels, mode="mean")
    np.testing.assert_allclose(mean[:, 1] - centre[:, 1], 3)  # the three extra frames are the shift


def test_align_coarser_hop_uses_nearest_frame() -> None:
    frames = FrameInfo(hop=320, offset=100.0, receptive_field=800)
    feats = _centre_features(frames, 25)
    near = align_features(feats, frames, 50)
    np.testing.assert_array_equal(near[:, 1], np.clip(np.round((label_frame_centres(50) - 100) / 320), 0, 24))
    np.testing.assert_array_equal(align_features(feats, frames, 50, mode="mean"), near)


def test_align_rejects_labels_that_do_not_fit() -> None:
    frames = FrameInfo(hop=160, offset=20.0, receptive_field=465)
    feats = _centre_features(frames, 50)
    with pytest.raises(ValueError, match=r"label frame 52 of 100 \(centre sample 8400\) .* do not fit"):
        align_features(feats, frames, 100)
    assert align_features(feats, frames, 100, max_distance=float("inf")).shape == (100, 2)
    with pytest.raises(ValueError, match="utterance 1: label frame"):
        frame_dataset([feats, feats], [np.zeros(50, np.int64), np.zeros(100, np.int64)], frames)
    with pytest.raises(ValueError, match="pass frames="):
        frame_dataset([feats], [np.zeros(49, np.int64)])


def test_align_model_modules(fixture: LibriSpeechFixture) -> None:
    """The modules of a real (tiny, untrained) stack: hop 40 and hop 160, both fit the fixture's labels."""
    from conftest import tiny_config
    from vgim.evaluate.evaluation import corpus_features
    from vgim.model.stack import Stack

    corpus = load_librispeech(fixture["root"], max_utterances=2, progress=False)
    labels = corpus_alignments(corpus, read_alignments(fixture["alignments"]))
    model = Stack(tiny_config().model).eval()
    assert [f.hop for f in model.frames] == [40, 160]
    for m, feats in enumerate(corpus_features(model, corpus.waves)):
        x, y = frame_dataset(feats, labels, model.frames[m], mode="mean")
        assert x.shape == (sum(len(v) for v in labels), 16) and y.shape == (x.shape[0],)


# ---------------------------------------------------------------------------- probes


def test_frame_phone_probe_mfcc_beats_chance(
    mfcc: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]],
) -> None:
    xtr, ytr, xte, yte = mfcc
    result = frame_phone_probe(
        xtr, ytr, xte, yte, frames=MFCC_FRAMES, epochs=10, batch_size=128, lr=1e-2, features="MFCC"
    )
    assert (result.task, result.features) == ("phone", "MFCC")
    assert result.n_train == sum(len(y) for y in ytr) == 900 and result.n_test == 300
    assert result.n_classes == 8 and result.chance < 0.25
    assert result.accuracy > 0.8 and result.accuracy > result.chance + 0.5
    # seeded: the same run gives the same result; pooled [N, C] input gives the same result too
    again = frame_phone_probe(
        xtr, ytr, xte, yte, frames=MFCC_FRAMES, epochs=10, batch_size=128, lr=1e-2, features="MFCC"
    )
    assert again == result
    x_tr, y_tr = frame_dataset(xtr, ytr, MFCC_FRAMES)
    x_te, y_te = frame_dataset(xte, yte, MFCC_FRAMES)
    pooled = frame_phone_probe(x_tr, y_tr, x_te, y_te, epochs=10, batch_size=128, lr=1e-2, features="MFCC")
    assert pooled == result
    sk = frame_phone_probe(x_tr, y_tr, x_te, y_te, method="sklearn")
    assert sk.accuracy > 0.8 and sk.n_train == 900


def test_frame_phone_probe_one_utterance_per_step(
    mfcc: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]],
) -> None:
    """The GIM schedule: batch_size=None steps once per utterance (9 steps an epoch), unstandardised."""
    xtr, ytr, xte, yte = mfcc
    kw = {"frames": MFCC_FRAMES, "pairing": "gim", "batch_size": None, "standardise": False, "init": "xavier"}
    result = frame_phone_probe(xtr, ytr, xte, yte, epochs=20, lr=1e-2, **kw)  # type: ignore[arg-type]
    assert result.n_train == 900 and result.accuracy > result.chance + 0.3
    few = frame_phone_probe(xtr, ytr, xte, yte, epochs=1, lr=1e-4, **kw)  # type: ignore[arg-type]
    assert few.accuracy < result.accuracy  # 9 steps of lr 1e-4 barely move the classifier
    x_tr, y_tr = frame_dataset(xtr, ytr, MFCC_FRAMES, pairing="gim")
    x_te, y_te = frame_dataset(xte, yte, MFCC_FRAMES, pairing="gim")
    groups = [len(y) for y in ytr]
    pooled = frame_phone_probe(
        x_tr, y_tr, x_te, y_te, epochs=20, lr=1e-2, batch_size=None, standardise=False, init="xavier", groups=groups
    )
    assert pooled == result
    with pytest.raises(ValueError, match="needs groups"):
        frame_phone_probe(x_tr, y_tr, x_te, y_te, batch_size=None)


def test_frame_phone_probe_noise_is_near_chance(
    mfcc: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]],
) -> None:
    xtr, ytr, xte, yte = mfcc
    rng = np.random.default_rng(1)
    ntr = [rng.standard_normal(x.shape).astype(np.float32) for x in xtr]
    nte = [rng.standard_normal(x.shape).astype(np.float32) for x in xte]
    result = frame_phone_probe(ntr, ytr, nte, yte, frames=MFCC_FRAMES, epochs=10, batch_size=128, lr=1e-2)
    assert abs(result.accuracy - result.chance) < 0.1


def test_frame_phone_probe_validates() -> None:
    x = [np.zeros((10, 3), np.float32)]
    y = [np.zeros(10, np.int64)]
    with pytest.raises(ValueError, match="at least 2 classes"):
        frame_phone_probe(x, y, x, y)
    with pytest.raises(ValueError, match="integer phone labels"):
        frame_phone_probe(x, [np.zeros(10)], x, y)
    with pytest.raises(ValueError, match="method"):
        frame_phone_probe(x, y, x, y, method="svm")  # type: ignore[arg-type]


def test_speaker_probe(
    split: tuple[AudioCorpus, AudioCorpus, dict[str, np.ndarray]],
    mfcc: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]],
) -> None:
    train, test, _ = split
    xtr, _, xte, _ = mfcc
    result = speaker_probe(xtr, train.labels("speaker"), xte, test.labels("speaker"), features="MFCC")
    assert (result.task, result.n_train, result.n_test, result.n_classes) == ("speaker", 9, 3, 3)
    assert result.accuracy == 1.0 and result.chance == pytest.approx(1 / 3)
    last = speaker_probe(xtr, train.labels("speaker"), xte, test.labels("speaker"), pool="last")
    assert last.n_test == 3
    with pytest.raises(ValueError, match="train utterance 1"):
        speaker_probe([xtr[0], xtr[1][:0]], ["a", "b"], xte, test.labels("speaker"))
