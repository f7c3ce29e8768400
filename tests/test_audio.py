"""Reading, resampling, validation, crops and noise augmentation (``vgim.audio``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vgim.audio import AudioError, check_audio, crop_offsets, random_crop, read_audio, write_audio
from vgim.config import DataConfig
from vgim.data.augment import Augmenter, add_white_noise, mix_background


def _sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wave: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[np.argmax(spec)])


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    c = clean.astype(np.float64)
    n = noisy.astype(np.float64) - c
    return float(10 * np.log10(np.mean(c**2) / np.mean(n**2)))


def _speechlike(rng: np.random.Generator, n: int = 16000) -> np.ndarray:
    t = np.arange(n) / 16000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (env * (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n))).astype(np.float32)


# --- reading and resampling ---------------------------------------------------------------------------


def test_resample_keeps_frequency_and_length(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, _sine(1000, 44100, seconds=2.0), 44100, subtype="FLOAT")
    wave = read_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 2.0 * 16000) <= 1
    assert abs(_peak_hz(wave, 16000) - 1000) < 2.0
    # Amplitude preserved (RMS of a 0.5 sine = 0.354), away from the edges.
    assert np.sqrt(np.mean(wave[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_removes_content_above_new_nyquist(tmp_path: Path) -> None:
    path = tmp_path / "high.wav"
    sf.write(path, _sine(12000, 44100), 44100, subtype="FLOAT")
    wave = read_audio(path, 16000)
    in_rms = 0.5 / np.sqrt(2)
    out_rms = float(np.sqrt(np.mean(wave[500:-500] ** 2)))
    # Naive decimation would alias the 12 kHz tone to 4 kHz at full amplitude.
    assert out_rms < 0.01 * in_rms


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left = _sine(440, 16000)
    right = np.full_like(left, 0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave = read_audio(path, 16000)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


def test_write_then_read_roundtrip(tmp_path: Path) -> None:
    wave = _sine(300, 16000, seconds=0.5)
    path = tmp_path / "nested" / "dir" / "out.wav"
    write_audio(path, wave)
    assert sf.info(str(path)).subtype == "PCM_16"
    np.testing.assert_allclose(read_audio(path), wave, atol=1e-4)


# --- bad files --------------------------------------------------------------------------------------------


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"this is not a wav file at all" * 10)
    with pytest.raises(AudioError, match="unreadable") as info:
        read_audio(path)
    assert info.value.path == path
    assert info.value.reason.startswith("unreadable: ")
    assert str(info.value).startswith(f"{path}: unreadable")


def test_missing_file_is_named_as_missing(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        read_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError) as info:
        read_audio(path)
    assert info.value.reason == "empty (0 samples)"


def test_nan_samples(tmp_path: Path) -> None:
    wave = _sine(440, 16000)
    wave[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as info:
        read_audio(path)
    assert info.value.reason == "contains NaN or Inf values"


def test_check_audio_messages() -> None:
    with pytest.raises(AudioError, match=r"empty \(0 samples\)"):
        check_audio(np.zeros(0, dtype=np.float32), "x.wav")
    with pytest.raises(AudioError, match="contains NaN or Inf values"):
        check_audio(np.array([0.1, np.inf], dtype=np.float32), "x.wav")
    with pytest.raises(AudioError, match=r"shorter than one crop \(100 < 20480 samples\)"):
        check_audio(np.full(100, 0.1, dtype=np.float32), "x.wav", min_samples=20480)
    with pytest.raises(AudioError, match=r"silent \(RMS 1\.00e-06 < 1e-04\)"):
        check_audio(np.full(1000, 1e-6, dtype=np.float32), "x.wav", min_rms=1e-4)
    check_audio(np.full(1000, 0.1, dtype=np.float32), "x.wav", min_samples=1000, min_rms=1e-4)


# --- crops ------------------------------------------------------------------------------------------------


def test_random_crop_and_padding() -> None:
    rng = np.random.default_rng(0)
    wave = np.arange(100, dtype=np.float32)
    crop = random_crop(wave, 10, rng)
    assert crop.shape == (10,)
    np.testing.assert_array_equal(np.diff(crop), np.ones(9))  # contiguous
    short = random_crop(np.ones(4, dtype=np.float32), 10, rng)
    np.testing.assert_array_equal(short, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError):
        random_crop(wave, 0, rng)


def test_crop_offsets_vectorised() -> None:
    lengths = np.array([100, 50, 10, 5])
    offsets = crop_offsets(lengths, 10, np.random.default_rng(1))
    assert offsets.shape == (4,)
    assert np.all(offsets >= 0)
    assert np.all(offsets <= np.maximum(lengths - 10, 0))
    assert offsets[2] == 0 and offsets[3] == 0
    many = crop_offsets(np.full(2000, 20), 10, np.random.default_rng(2))
    assert set(many.tolist()) == set(range(11))  # every valid offset is reachable
    np.testing.assert_array_equal(offsets, crop_offsets(lengths, 10, np.random.default_rng(1)))


# --- augmentation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("snr", [0.0, 5.0, 20.0])
def test_white_noise_snr(snr: float) -> None:
    rng = np.random.default_rng(3)
    clean = _speechlike(rng)
    noisy = add_white_noise(clean, snr, rng)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(_snr_db(clean, noisy) - snr) < 0.3


@pytest.mark.parametrize("noise_len", [4000, 48000])  # shorter (tiled) and longer (cropped) than the wave
def test_background_snr(noise_len: int) -> None:
    rng = np.random.default_rng(4)
    clean = _speechlike(rng)
    noise = (0.2 * rng.standard_normal(noise_len)).astype(np.float32)
    mixed = mix_background(clean, noise, 10.0, rng)
    assert mixed.shape == clean.shape
    assert abs(_snr_db(clean, mixed) - 10.0) < 0.3


def test_background_tiling_uses_noise_content() -> None:
    rng = np.random.default_rng(5)
    clean = np.full(1000, 0.5, dtype=np.float32)
    noise = np.array([1.0, -1.0, 2.0], dtype=np.float32)
    added = mix_background(clean, noise, 0.0, rng) - clean
    ratios = added / added[np.argmax(np.abs(added))]
    assert set(np.round(np.abs(ratios) * 2).astype(int).tolist()) == {1, 2}


def test_silent_wave_unchanged() -> None:
    rng = np.random.default_rng(6)
    zeros = np.zeros(100, dtype=np.float32)
    np.testing.assert_array_equal(add_white_noise(zeros, 10.0, rng), zeros)


def test_augmenter_deterministic_and_in_range() -> None:
    rng = np.random.default_rng(7)
    clean = _speechlike(rng)
    background = [(0.1 * rng.standard_normal(8000)).astype(np.float32)]
    aug = Augmenter([10.0, 20.0], background, [0.0, 15.0])
    assert aug.enabled
    a = aug(clean, np.random.default_rng(42))
    b = aug(clean, np.random.default_rng(42))
    c = aug(clean, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Background at >= 0 dB plus white noise at >= 10 dB: total SNR above about -0.5 dB and below 15 dB.
    assert -0.5 < _snr_db(clean, a) < 15.0


def test_augmenter_white_noise_only_and_disabled() -> None:
    clean = _speechlike(np.random.default_rng(8))
    aug = Augmenter([12.0, 12.0], [], [0.0, 15.0])
    assert abs(_snr_db(clean, aug(clean, np.random.default_rng(0))) - 12.0) < 0.3
    off = Augmenter([], [], [0.0, 15.0])
    assert not off.enabled
    np.testing.assert_array_equal(off(clean, np.random.default_rng(0)), clean)
    with pytest.raises(ValueError, match="noise_snr_db"):
        Augmenter([5.0], [], [0.0, 15.0])


def test_augmenter_from_config(tmp_path: Path) -> None:
    aug = Augmenter.from_config(DataConfig(noise_snr_db=[5.0, 10.0]))
    assert aug.noise_snr_db == [5.0, 10.0] and aug.background == []

    with pytest.raises(FileNotFoundError, match="background_dir"):
        Augmenter.from_config(DataConfig(background_dir=str(tmp_path / "missing")))

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "junk.wav").write_bytes(b"junk" * 100)
    (bad / "notes.txt").write_text("not audio")
    with pytest.raises(ValueError, match="no readable audio"):
        Augmenter.from_config(DataConfig(background_dir=str(bad)))

    good = tmp_path / "good"
    write_audio(good / "hum.wav", _sine(50, 16000, seconds=0.5))
    write_audio(good / "sub" / "hiss.flac", _sine(3000, 16000, seconds=0.25))
    (good / "junk.wav").write_bytes(b"junk" * 100)
    aug = Augmenter.from_config(DataConfig(background_dir=str(good), background_snr_db=[5.0, 5.0]))
    assert sorted(len(b) for b in aug.background) == [4000, 8000]
    clean = _speechlike(np.random.default_rng(9))
    assert abs(_snr_db(clean, aug(clean, np.random.default_rng(1))) - 5.0) < 0.3
