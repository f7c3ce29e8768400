"""The probe protocol of ``vgim experiment librispeech`` (``vgim.experiments.librispeech.protocol``) and the
label pairing on real audio with real alignments (the English Asterisk prompts; skipped without them)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vgim.cli import main
from vgim.data.librispeech import corpus_alignments, load_librispeech, read_alignments, read_split
from vgim.data.librispeech_fixture import LibriSpeechFixture, make_librispeech_fixture
from vgim.data.prompts import SOUNDS_DIR, TRANSCRIPT_FILE, TRANSCRIPT_PACKAGE, VOICES
from vgim.evaluate.baselines import MFCC_FRAMES, mfcc_features
from vgim.evaluate.frame_probe import LABEL_HOP, align_features
from vgim.experiments.librispeech.inputs import load_split
from vgim.experiments.librispeech.probing import mfcc_extract, probe_source, speaker_windows, stack_extract
from vgim.experiments.librispeech.protocol import PROTOCOLS, resolve_protocol

# ---------------------------------------------------------------------------- the settings


def test_the_gim_protocol_is_the_papers_code() -> None:
    gim = PROTOCOLS["gim"]
    assert (gim.pairing, gim.max_train_frames, gim.max_test_frames) == ("gim", None, None)  # every frame
    assert (gim.epochs, gim.batch_size, gim.lr, gim.standardise) == (20, None, 1e-4, False)
    assert (gim.speaker_window, gim.speaker_classifier, gim.speaker_lr, gim.speaker_epochs) == (20480, "adam", 1e-3, 50)
    sampled = PROTOCOLS["sampled"]  # the recipe's earlier defaults
    assert (sampled.pairing, sampled.max_train_frames, sampled.max_test_frames) == ("centre", 250_000, 100_000)
    assert (sampled.epochs, sampled.batch_size, sampled.lr, sampled.speaker_classifier) == (10, 1024, 1e-3, "lbfgs")
    assert sampled.speaker_window is None


def test_resolve_protocol_changes_single_settings_and_marks_them() -> None:
    assert resolve_protocol("gim") == PROTOCOLS["gim"]
    assert resolve_protocol("gim", lr=None, seed=3).protocol == "gim"  # None keeps; the seed is no change
    changed = resolve_protocol("gim", pairing="centre", max_train_frames=1000)
    assert (changed.protocol, changed.pairing, changed.max_train_frames, changed.lr) == ("gim+", "centre", 1000, 1e-4)
    assert resolve_protocol("sampled", max_train_frames=0, speaker_window=0, batch_size=0).max_train_frames is None
    assert resolve_protocol("sampled", batch_size=0).batch_size is None  # 0: one utterance per step
    assert resolve_protocol(changed, lr=1e-3).protocol == "gim+"
    with pytest.raises(ValueError, match="unknown probe protocol 'cpc'"):
        resolve_protocol("cpc")
    with pytest.raises(ValueError, match="unknown probe settings"):
        resolve_protocol("gim", epoch=3)
    with pytest.raises(ValueError, match="pairing must be one of"):
        resolve_protocol("gim", pairing="left")
    with pytest.raises(ValueError, match="'flat' needs speaker_window"):
        resolve_protocol("sampled", speaker_pool="flat")


def test_speaker_windows() -> None:
    assert speaker_windows(50_000, 20480) == [(0, 20480), (20480, 40960)]
    assert speaker_windows(16_000, 20480) == [(0, 16_000)]  # shorter than a window: one example
    assert speaker_windows(16_000, 20480, full_only=True) == []
    assert speaker_windows(16_000, None) == [(0, 16_000)]


def test_cli_help_shows_the_protocol_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["experiment", "librispeech", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--protocol {gim,sampled}", "--pairing {gim,centre}", "--speaker-window", "--probe-lr"):
        assert option in text


# ---------------------------------------------------------------------------- probing on the synthetic fixture


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> LibriSpeechFixture:
    return make_librispeech_fixture(tmp_path_factory.mktemp("librispeech"))


def test_probes_in_module_groups_equal_probes_at_once(fixture: LibriSpeechFixture) -> None:
    """Too little memory for every module's frames: one pass per module, the same numbers."""
    from conftest import tiny_config
    from vgim.evaluate.evaluation import random_init_model
    from vgim.model.stack import Stack

    labels = read_alignments(fixture["alignments"])
    rng = np.random.default_rng(0)
    root = fixture["root"]
    kw: dict[str, Any] = {"budget": None, "rng": rng, "progress": False}
    train = load_split(root, "train-clean-100", read_split(fixture["train_split"]), labels, "train", **kw)
    test = load_split(root, "train-clean-100", read_split(fixture["test_split"]), labels, "test", **kw)
    model = random_init_model(Stack(tiny_config().model), 0)
    settings = resolve_protocol("gim", epochs=3, speaker_epochs=3)
    at_once = probe_source("x", stack_extract(model), model.frames, train, test, settings, progress=False)
    grouped = probe_source(
        "x", stack_extract(model), model.frames, train, test, settings, memory_gb=0.0, progress=False
    )
    assert at_once == grouped and [(r.features, r.task) for r in at_once] == [
        ("x m1", "phone"),
        ("x m1", "speaker"),
        ("x m2", "phone"),
        ("x m2", "speaker"),
    ]
    assert {r.n_train for r in at_once if r.task == "phone"} == {900}  # every frame
    # the GIM code's flattened window needs full windows: the fixture's 1 s utterances have none
    flat = dataclasses.replace(settings, speaker_pool="flat", speaker_window=8000)
    res = probe_source("MFCC", mfcc_extract, [MFCC_FRAMES], train, test, flat, tasks=["speaker"], progress=False)
    assert res[0].n_train == 9 * (16000 // 8000) and res[0].n_classes == 3


# ---------------------------------------------------------------------------- real audio, real alignments

HAVE_PROMPTS = (SOUNDS_DIR / VOICES["en"].folder).is_dir() and (
    Path("/usr/share/doc") / TRANSCRIPT_PACKAGE / TRANSCRIPT_FILE
).is_file()


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first 12 English prompts (11 aligned by pocketsphinx): waves and 10 ms phone labels."""
    if not HAVE_PROMPTS:
        pytest.skip(
            "Debian's Asterisk prompts are not installed (apt-get install asterisk-core-sounds-en-g722 "
            "asterisk-core-sounds-en)"
        )
    out = tmp_path_factory.mktemp("prompts")
    assert main(["data", "prompts", "--out", str(out), "--languages", "en", "--limit", "12", "--quiet"]) == 0
    labels = read_alignments(out / "converted_aligned_phones.txt")
    corpus = load_librispeech(out, "prompts", utterances=list(labels), progress=False)
    return list(corpus.waves), corpus_alignments(corpus, labels)


def test_pairing_offset_on_real_prompts_is_what_the_geometry_predicts(
    prompts: tuple[list[np.ndarray], list[np.ndarray]],
) -> None:
    """The CPC encoder's last module (hop 160, centre of frame t at 160 t + 20): ``gim`` keeps the last L
    outputs, ``centre`` the first L; they differ by T - L frames, T from the layer geometry."""
    from vgim.config import load_config
    from vgim.evaluate.evaluation import random_init_model
    from vgim.model.geometry import n_frames
    from vgim.model.stack import Stack

    cfg = load_config("gim-small", [])  # the CPC strides and paddings with 64 channels
    model = random_init_model(Stack(cfg.model), 0)
    assert (model.frames[-1].hop, model.frames[-1].offset) == (160, 20.0)
    offsets = []
    for wave, labels in zip(*prompts, strict=True):
        n = labels.shape[0]
        assert n == wave.shape[0] // LABEL_HOP
        feats = model.extract_features(wave)[-1].numpy()
        t = feats.shape[0]
        assert t == n_frames(cfg.model, wave.shape[0])[-1]
        offsets.append(t - n)
        np.testing.assert_array_equal(align_features(feats, model.frames[-1], n, pairing="gim"), feats[t - n :])
        np.testing.assert_array_equal(align_features(feats, model.frames[-1], n, pairing="centre"), feats[:n])
        # MFCC (centred frames, one more than the labels): gim takes frames 1..L, centre 0..L-1
        mfcc = mfcc_features(wave)
        assert mfcc.shape[0] == n + 1
        np.testing.assert_array_equal(align_features(mfcc, MFCC_FRAMES, n, pairing="gim"), mfcc[1:])
        np.testing.assert_array_equal(align_features(mfcc, MFCC_FRAMES, n, pairing="centre"), mfcc[:n])
    # T - L is 0 or 1: through the five padded convolutions (kernels 10 8 4 4 4, strides 5 4 2 2 2, paddings
    # 2 2 2 2 1) an utterance of 160 L + r samples gives one more output than labels when r >= 41
    expected = [1 if w.shape[0] % LABEL_HOP >= 41 else 0 for w in prompts[0]]
    assert offsets == expected


def _energy_db(wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
    starts = np.clip(np.round(centres).astype(np.int64) - LABEL_HOP // 2, 0, wave.shape[0] - LABEL_HOP)
    return np.array([10 * np.log10(np.mean(wave[s : s + LABEL_HOP].astype(np.float64) ** 2) + 1e-10) for s in starts])


def test_silence_at_the_utterance_ends_pairs_with_quiet_audio(
    prompts: tuple[list[np.ndarray], list[np.ndarray]],
) -> None:
    """Under the gim pairing, the MFCC frames paired with the end-silence labels are quiet audio, the ones
    paired with phones loud; the labels rolled half an utterance along the audio (a wrong pairing) lose that."""
    frames = MFCC_FRAMES
    quiet: dict[bool, list[np.ndarray]] = {False: [], True: []}
    loud: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for wave, labels in zip(*prompts, strict=True):
        n = labels.shape[0]
        index = np.arange(n + 1, dtype=np.float64)[:, None]  # the MFCC frame index as the "feature"
        rows = align_features(index, frames, n, pairing="gim")[:, 0]
        speech = np.flatnonzero(labels)
        ends = np.ones(n, bool)
        ends[speech[0] : speech[-1] + 1] = False
        for rolled in quiet:
            paired = (rows + n // 2) % (n + 1) if rolled else rows
            energy = _energy_db(wave, frames.offset + paired * frames.hop)
            quiet[rolled].append(energy[ends])
            loud[rolled].append(energy[labels != 0])
    gap = {p: np.concatenate(loud[p]).mean() - np.concatenate(quiet[p]).mean() for p in quiet}
    assert sum(len(q) for q in quiet[False]) >= 20  # the slice has end silence to look at
    assert gap[False] > 20.0  # dB
    assert gap[True] < gap[False] - 10.0
