"""Tests for vgim.interpret.intelligibility and the spectrogram decoder's claim: it beats silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, toy_waves
from vgim.data.batches import CropBatches
from vgim.data.corpus import AudioCorpus, Utterance
from vgim.interpret.intelligibility import Intelligibility, intelligibility, reconstruction_scores
from vgim.interpret.spectra import log_mel_distance
from vgim.train import train


def pitch_waves(n: int, high: bool, seed: int) -> list[np.ndarray]:
    """Harmonic tones (f0 120-160 Hz) whose energy lies below 1 kHz (harmonics 1-6) or, 12 dB quieter,
    between 1.5 and 3 kHz (harmonics 12-18): two 'speakers' of different brightness and level."""
    rng = np.random.default_rng(seed)
    t = np.arange(12800) / 16000
    waves = []
    for _ in range(n):
        f0 = rng.uniform(120, 160)
        harmonics = range(12, 19) if high else range(1, 7)
        tone = sum(np.sin(2 * np.pi * h * f0 * t) for h in harmonics) / (12 if high else 3)
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6))
        waves.append((0.2 * env * tone + 0.005 * rng.standard_normal(t.shape)).astype(np.float32))
    return waves


def speaker_corpus() -> tuple[AudioCorpus, AudioCorpus]:
    """(train, test): 8 + 8 training and 4 + 4 test files of two pitch 'speakers'."""

    def part(n: int, split: str, seed: int) -> AudioCorpus:
        waves = pitch_waves(n, False, seed) + pitch_waves(n, True, seed + 1)
        utts = [
            Utterance(f"{split}{i}.wav", {"speaker": "high" if i >= n else "low"}, None, split) for i in range(2 * n)
        ]
        return AudioCorpus(utts, waves, 16000)

    return part(8, "train", 0), part(4, "test", 10)


def test_log_mel_distance() -> None:
    w = toy_waves(1)[0]
    assert log_mel_distance(w, w) == 0.0
    assert log_mel_distance(w, 0.5 * w) == pytest.approx(6.02, abs=0.05)  # 10 log10(4) in every band
    with pytest.raises(ValueError, match="shape"):
        log_mel_distance(w, w[:-1])


def test_reconstruction_scores_of_the_original_and_of_silence() -> None:
    waves = toy_waves(3)
    same = reconstruction_scores(waves, waves)
    assert same["mse"] == 0.0 and same["lsd_db"] == 0.0 and same["log_mel_db"] == 0.0 and same["snr_db"] > 100
    silent = reconstruction_scores(waves, [np.zeros_like(w) for w in waves])
    assert silent["mse"] == pytest.approx(silent["mse_silence"]) and silent["lsd_db"] == pytest.approx(
        silent["lsd_silence_db"]
    )
    assert silent["snr_db"] == pytest.approx(0.0, abs=1e-6) and silent["n_files"] == 3


def test_intelligibility_rows_reference_the_original_and_silence() -> None:
    train_c, test_c = speaker_corpus()
    noisy = [w + 0.2 * np.random.default_rng(0).standard_normal(w.shape).astype(np.float32) for w in test_c.waves]
    table = intelligibility(train_c, test_c, {"copy": list(test_c.waves), "noise": noisy})
    assert table is not None and table.tasks == ["speaker"]
    assert list(table.accuracy) == ["original", "silence", "copy", "noise"]
    acc = {row: v["speaker"] for row, v in table.accuracy.items()}
    assert acc["original"] == acc["copy"] == 1.0  # pitch is easy from MFCCs
    assert acc["silence"] == 0.5  # one class for every file: chance
    assert table.relative("copy", "speaker") == 1.0
    assert table.distance["copy"]["lsd_db"] == 0.0 and table.distance["silence"]["lsd_db"] > 50
    again = Intelligibility.from_dict(table.to_dict())
    assert again == table and "| silence | 50.0 (50 %)" in again.markdown()
    with pytest.raises(ValueError, match="one wave per test utterance"):
        intelligibility(train_c, test_c, {"short": [w[:-10] for w in test_c.waves]})
    unlabelled = AudioCorpus([Utterance("a.wav", {}, None, "test")], [test_c.waves[0]], 16000)
    assert intelligibility(unlabelled, unlabelled, {}) is None


@pytest.fixture(scope="module")
def speaker_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    cfg = tiny_config(steps=20)
    run = tmp_path_factory.mktemp("runs") / "tiny"
    train_c, _ = speaker_corpus()
    train(cfg, run, batches=CropBatches(train_c.waves, 6400, 4, seed=0), progress=False)
    return run


def test_spectrogram_decoders_beat_silence_by_a_clear_margin(speaker_run: Path, tmp_path: Path) -> None:
    """Both modules' decoded test audio is far nearer the original than silence is, in log-spectral and
    log-mel distance, and a listener (the MFCC probe) tells the two 'speakers' apart from module 1's as well
    as from the original (module 2's GRU, barely trained, keeps too little of the tiny encoder's signal)."""
    from vgim.interpret.decoders import train_decoders

    train_c, test_c = speaker_corpus()
    corpus = AudioCorpus(train_c.utterances + test_c.utterances, train_c.waves + test_c.waves, 16000)
    res = train_decoders(
        speaker_run, corpus=corpus, steps=200, batch_size=4, hidden=32, lr=1e-2, out_dir=tmp_path, progress=False,
        n_examples=0,
    )  # fmt: skip
    assert res.intelligibility is not None
    table = Intelligibility.from_dict(res.intelligibility)
    for m in (0, 1):
        s = res.metrics[m]
        assert s["lsd_db"] < s["lsd_silence_db"] / 3, s
        assert s["log_mel_db"] < table.distance["silence"]["log_mel_db"] / 3, (s, table.distance)
    assert table.accuracy["decoded m1"]["speaker"] == 1.0 > table.accuracy["silence"]["speaker"], table.markdown()
    assert table.accuracy["Griffin-Lim of the original"]["speaker"] == 1.0


def test_active_frame_lsd_leaves_out_digital_silence() -> None:
    from vgim.interpret.spectra import log_spectral_distance

    w = toy_waves(1)[0].copy()
    w[8000:] = 0.0  # the second half is digital silence
    hiss = w + 1e-4 * np.random.default_rng(0).standard_normal(w.shape).astype(np.float32) * (np.arange(16000) >= 8000)
    assert log_spectral_distance(w, hiss) > 15  # the hiss is ~40 dB "wrong" in every silent frame
    assert log_spectral_distance(w, hiss, active_db=60.0) < 1.0
    assert reconstruction_scores([w], [hiss])["lsd_active_db"] < 1.0


def test_intelligibility_leaves_out_a_label_with_one_class() -> None:
    train_c, test_c = speaker_corpus()
    one = [
        Utterance(u.path, {"speaker": u.labels["speaker"], "room": "same"}, None, u.split) for u in train_c.utterances
    ]
    train_one = AudioCorpus(one, train_c.waves, 16000)
    table = intelligibility(train_one, test_c, {})
    assert table is not None and table.tasks == ["speaker"]
    single = [Utterance(u.path, {"speaker": "thesis"}, None, u.split) for u in train_c.utterances]
    assert intelligibility(AudioCorpus(single, train_c.waves, 16000), test_c, {}) is None


def test_griffin_lim_keeps_digital_silence_silent() -> None:
    """A word with digital silence around it, its magnitudes smoothed as a decoder predicts them: Griffin-Lim
    leaks the loud frames' energy into the silent edge frames; the silence gate zeroes what a silent frame's
    window covers, so those frames come back far closer to the floor, the sounding frames as they were."""
    import librosa

    from vgim.interpret.spectra import log_spectrogram
    from vgim.objective.spectrogram import SpectrogramOptions, griffin_lim, silence_gate

    o = SpectrogramOptions()
    rng = np.random.default_rng(0)
    wave = np.zeros(6000, dtype=np.float32)
    t = np.arange(4000) / 16000
    wave[1000:5000] = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(4000)
    mag = np.abs(librosa.stft(wave, n_fft=o.n_fft, hop_length=o.hop))
    # as a decoder predicts it: the sounding frames smoothed over time, the silent ones at zero
    sounding = mag.max(axis=0) > 1e-3
    mag[:, sounding] = (np.roll(mag, 1, axis=1) + mag + np.roll(mag, -1, axis=1))[:, sounding] / 3
    gain = silence_gate(mag, o, wave.shape[0])
    assert gain[:700].max() == 0.0 and gain[5300:].max() == 0.0  # under the silent frames' windows
    # the word is untouched but for its last samples: the first frame after it, at -69 dB, counts as silent
    # and its window's tail reaches 7 samples into the word (plus the fade)
    assert gain[1000:4960].min() == 1.0 and gain[4960:5000].min() < 1.0
    assert np.all(np.diff(gain[700:1000]) >= 0) and np.all(np.diff(gain[4900:5300]) <= 0)  # faded, no step
    ref = log_spectrogram(wave)
    silent = ref.max(axis=0) < -90  # the reference's digital-silence frames
    assert silent.sum() >= 6
    plain = librosa.griffinlim(
        mag, n_iter=o.griffin_lim_iters, hop_length=o.hop, n_fft=o.n_fft, length=6000, random_state=0
    )
    gated = griffin_lim(mag, o, wave.shape[0])
    np.testing.assert_allclose(gated, plain * gain, rtol=1e-5, atol=1e-7)
    err = {k: np.abs(log_spectrogram(v) - ref) for k, v in (("plain", plain), ("gated", gated))}
    # silence comes back far closer to silence; the word's frames are as they were
    assert err["plain"][:, silent].mean() > 10.0  # the leak the gate is for
    assert err["gated"][:, silent].mean() < err["plain"][:, silent].mean() / 3
    assert abs(err["gated"][:, ~silent].mean() - err["plain"][:, ~silent].mean()) < 1.0
    assert np.all(silence_gate(np.ones_like(mag), o, wave.shape[0]) == 1.0)  # nothing silent: gain 1
