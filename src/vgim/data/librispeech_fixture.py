"""A tiny synthetic corpus in the LibriSpeech layout, with CPC-style phone alignments and splits (no download).

:func:`make_librispeech_fixture` writes a few seconds of synthetic audio in the layout read by
:func:`vgim.data.librispeech.load_librispeech`, with alignments that match the audio, for tests and demos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np
import soundfile as sf

from vgim.data.librispeech import DEFAULT_SUBSET, PHONE_FRAME_HOP
from vgim.frames import SAMPLE_RATE

__all__ = ["LibriSpeechFixture", "make_librispeech_fixture"]


class LibriSpeechFixture(TypedDict):
    """What :func:`make_librispeech_fixture` wrote."""

    root: Path
    subset: str
    subset_dir: Path
    alignments: Path
    train_split: Path
    test_split: Path
    files: list[Path]
    utterances: list[str]
    speakers: list[str]
    phones: list[int]


#: Phone classes of the fixture: (label, kind, first formant / band low (Hz), second formant / band high (Hz)).
_FIXTURE_PHONES: tuple[tuple[int, str, float, float], ...] = (
    (0, "silence", 0.0, 0.0),
    (3, "vowel", 750.0, 1200.0),  # a
    (9, "vowel", 300.0, 2300.0),  # i
    (14, "vowel", 350.0, 800.0),  # u
    (21, "vowel", 500.0, 1800.0),  # e
    (27, "fricative", 4000.0, 7000.0),  # s
    (31, "fricative", 1500.0, 3000.0),  # sh
    (36, "nasal", 250.0, 250.0),  # m
)
_FIXTURE_WORDS = ("BA", "DI", "GU", "KE", "SO", "MA", "NI", "TU")


def _formant_gain(freqs: np.ndarray, formants: Sequence[float], bandwidth: float = 120.0) -> np.ndarray:
    gain = np.zeros_like(freqs)
    for f in formants:
        gain += 1.0 / (1.0 + ((freqs - f) / bandwidth) ** 2)
    return gain


def _phone_segment(
    kind: str, lo: float, hi: float, f0: float, shift: float, n: int, start: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` samples of one synthetic phone for a speaker with pitch ``f0`` and formant scale ``shift``."""
    t = (start + np.arange(n)) / SAMPLE_RATE
    if kind == "silence":
        return 0.003 * rng.standard_normal(n)
    if kind == "fricative":
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        spec[(freqs < lo * shift) | (freqs > min(hi * shift, 7900.0))] = 0.0
        noise = np.fft.irfft(spec, n)
        return 0.15 * noise / (np.std(noise) + 1e-12)
    harmonics = np.arange(1, int(7000 // f0) + 1) * f0
    formants = [lo * shift] if kind == "nasal" else [lo * shift, hi * shift]
    gains = _formant_gain(harmonics, formants) / np.sqrt(np.arange(1, harmonics.size + 1))
    wave = (gains[:, None] * np.sin(2 * np.pi * harmonics[:, None] * t[None, :])).sum(axis=0)
    level = 0.1 if kind == "nasal" else 0.3
    return level * wave / (np.std(wave) + 1e-12) + 0.003 * rng.standard_normal(n)


def make_librispeech_fixture(
    root: str | Path,
    n_speakers: int = 3,
    utterances_per_speaker: int = 4,
    seconds: float = 1.0,
    seed: int = 0,
) -> LibriSpeechFixture:
    """Write a tiny LibriSpeech-layout corpus with synthetic audio, alignments and splits (no download).

    Every utterance is a sequence of synthetic "phones" (silence, four vowel-like harmonic sounds with two
    formants, two band-limited noises, a nasal-like low formant), each lasting a whole number (6 to 15) of
    10 ms frames, so its frame-level labels in ``converted_aligned_phones.txt`` match the audio exactly.
    Speakers differ in pitch (``f0``) and a formant scale factor. Utterances are
    ``seconds`` long plus 0..159 extra samples, so the label count ``floor(samples / 160)`` drops the last
    partial frame. Chapters alternate between two per speaker. The last utterance of each speaker (when it
    has at least two) goes to ``test_split.txt``, the rest to ``train_split.txt``. Fully deterministic
    given ``seed``.

    Parameters
    ----------
    root
        Output folder (created); the audio goes under ``<root>/train-clean-100``.
    n_speakers, utterances_per_speaker
        Corpus size (>= 1 each).
    seconds
        Approximate utterance duration (>= 0.1).
    seed
        Seed of the numpy generator.

    Returns
    -------
    LibriSpeechFixture
        A dict: ``root`` (Path), ``subset`` (str), ``subset_dir`` (Path), ``alignments`` (Path of
        ``converted_aligned_phones.txt``), ``train_split`` / ``test_split`` (Paths), ``files`` (list of Path,
        every ``.flac``), ``utterances`` (list of ids, speaker by speaker), ``speakers`` (list of ids) and
        ``phones`` (the phone labels the synthesiser can emit, sorted).
    """
    if n_speakers < 1 or utterances_per_speaker < 1:
        raise ValueError(
            f"n_speakers and utterances_per_speaker must be >= 1, got {n_speakers} and {utterances_per_speaker}"
        )
    if seconds < 0.1:
        raise ValueError(f"seconds must be >= 0.1, got {seconds}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    subset = DEFAULT_SUBSET
    base = root / subset
    hop = PHONE_FRAME_HOP
    files: list[Path] = []
    ids: list[str] = []
    speakers: list[str] = []
    train_ids: list[str] = []
    test_ids: list[str] = []
    align_lines: list[str] = []
    for s in range(n_speakers):
        speaker = str(100 + 17 * s)
        speakers.append(speaker)
        f0 = 95.0 + 130.0 * s / max(n_speakers - 1, 1) + rng.uniform(-5, 5)
        shift = 0.9 + 0.25 * s / max(n_speakers - 1, 1)
        transcripts: dict[str, list[str]] = {}
        for k in range(utterances_per_speaker):
            chapter = str(1000 + 10 * s + k % 2)
            uid = f"{speaker}-{chapter}-{k:04d}"
            n_samples = int(round(seconds * SAMPLE_RATE)) + int(rng.integers(0, hop))
            n_label_frames = n_samples // hop
            frame_labels = np.zeros(n_label_frames, dtype=np.int64)
            wave = np.zeros(n_samples, dtype=np.float64)
            frame = 0
            prev = -1
            while frame * hop < n_samples:
                length = int(rng.integers(6, 16))
                p = int(rng.integers(0, len(_FIXTURE_PHONES)))
                if p == prev:
                    p = (p + 1) % len(_FIXTURE_PHONES)
                prev = p
                label, kind, lo, hi = _FIXTURE_PHONES[p]
                start, end = frame * hop, min((frame + length) * hop, n_samples)
                wave[start:end] = _phone_segment(kind, lo, hi, f0, shift, end - start, start, rng)
                frame_labels[frame : min(frame + length, n_label_frames)] = label
                frame += length
            path = base / speaker / chapter / f"{uid}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(
                str(path), np.clip(wave, -1.0, 1.0).astype(np.float32), SAMPLE_RATE, format="FLAC", subtype="PCM_16"
            )
            words = [_FIXTURE_WORDS[int(i)] for i in rng.integers(0, len(_FIXTURE_WORDS), size=3)]
            transcripts.setdefault(chapter, []).append(f"{uid} {' '.join(words)}")
            align_lines.append(uid + " " + " ".join(str(int(v)) for v in frame_labels))
            files.append(path)
            ids.append(uid)
            last = k == utterances_per_speaker - 1 and utterances_per_speaker > 1
            (test_ids if last else train_ids).append(uid)
        for chapter, lines in transcripts.items():
            (base / speaker / chapter / f"{speaker}-{chapter}.trans.txt").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
    alignments = root / "converted_aligned_phones.txt"
    alignments.write_text("\n".join(align_lines) + "\n", encoding="utf-8")
    train_split = root / "train_split.txt"
    test_split = root / "test_split.txt"
    train_split.write_text("".join(f"{u}\n" for u in train_ids), encoding="utf-8")
    test_split.write_text("".join(f"{u}\n" for u in test_ids), encoding="utf-8")
    return LibriSpeechFixture(
        root=root,
        subset=subset,
        subset_dir=base,
        alignments=alignments,
        train_split=train_split,
        test_split=test_split,
        files=files,
        utterances=ids,
        speakers=speakers,
        phones=sorted(p[0] for p in _FIXTURE_PHONES),
    )
