"""Render one corpus word with espeak-ng: exact syllable bounds from phoneme events, trimmed and normalised."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import resample_poly

from vgim.data.synthetic.espeak import MAX_SPEAKERS, VOICES, engine
from vgim.data.synthetic.words import split_syllables
from vgim.frames import SAMPLE_RATE

__all__ = ["render", "synthesize_word"]

#: Silence kept before the first and after the last audible sample of a word.
_MARGIN_S = 0.020
#: A sample is audible when its magnitude is within this many dB of the word's peak.
_TRIM_DB = 40.0

# espeak-ng mnemonics (English phoneme table) for the corpus phonemes.
_PHONEME = {"b": "b", "d": "d", "g": "g", "a": "A:", "i": "i:", "u": "u:"}


def _phoneme_input(syllables: Sequence[str], stress: int) -> str:
    """espeak phoneme input for a word, primary stress on syllable ``stress``: ``"[[bA:d'i:gu:]]"``."""
    parts = [_PHONEME[s[0]] + ("'" if i == stress else "") + _PHONEME[s[1]] for i, s in enumerate(syllables)]
    return "[[" + "".join(parts) + "]]"


def render(
    word: str,
    voice: int,
    *,
    pitch: int,
    pitch_range: int,
    rate: int,
    stress: int,
    sample_rate: int,
    peak_db: float,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Synthesise, trim, resample and normalise one word.

    Returns
    -------
    audio
        ``float32``, shape ``[samples]`` at ``sample_rate``, peak at ``peak_db`` dBFS.
    segments
        Three ``(start, end)`` syllable bounds in samples at 16 kHz, end exclusive, contiguous.
    """
    syl = split_syllables(word)
    eng = engine()
    phonemes = _phoneme_input(syl, stress)
    raw, events = eng.synth(phonemes, voice, pitch, pitch_range, rate)
    sr = eng.sample_rate

    # Syllable bounds from the phoneme events: C V C V C V, then a pause.
    expected = [_PHONEME[ch] for s in syl for ch in s]
    speech = [(name.lstrip("',%="), pos) for name, pos in events]
    spoken = [(name, pos) for name, pos in speech if not name.startswith("_")]
    if [name for name, _ in spoken] != expected:
        raise RuntimeError(
            f"espeak-ng did not say the expected phonemes for {phonemes}: "
            f"expected {expected}, got {[name for name, _ in spoken]}"
        )
    last_vowel = spoken[-1][1]
    end = next((pos for name, pos in speech if name.startswith("_") and pos > last_vowel), len(raw))
    bounds = np.array([spoken[0][1], spoken[2][1], spoken[4][1], min(end, len(raw))], dtype=np.int64)

    # Trim leading/trailing silence to a margin (zero-padded first: espeak stops right after the last vowel).
    margin = int(round(_MARGIN_S * sr))
    x = np.pad(raw.astype(np.float64) / 32768.0, margin)
    bounds += margin
    if not np.any(x):
        raise RuntimeError(f"espeak-ng produced silence for {phonemes}")
    loud = np.nonzero(np.abs(x) >= np.abs(x).max() * 10 ** (-_TRIM_DB / 20))[0]
    start = int(loud[0]) - margin
    x = x[start : int(loud[-1]) + 1 + margin]

    # Resample and normalise.
    if sample_rate != sr:
        g = int(np.gcd(sample_rate, sr))
        x = resample_poly(x, sample_rate // g, sr // g)
    peak = float(np.max(np.abs(x)))
    audio = (x * (10 ** (peak_db / 20) / peak)).astype(np.float32)

    # Segments at 16 kHz, clipped to the trimmed file.
    n16 = int(len(audio) * SAMPLE_RATE // sample_rate)
    b = np.clip(np.round((bounds - start) * (SAMPLE_RATE / sr)).astype(np.int64), 0, n16)
    segments = [(int(b[k]), int(b[k + 1])) for k in range(3)]
    if any(e <= s for s, e in segments):
        raise RuntimeError(f"empty syllable segment for {phonemes}: {segments}")
    return audio, segments


def synthesize_word(
    word: str,
    speaker: int = 0,
    *,
    pitch: int | None = None,
    pitch_range: int | None = None,
    rate: int | None = None,
    stress: int = 0,
    sample_rate: int = SAMPLE_RATE,
    peak_db: float = -3.0,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Synthesise one corpus word with one corpus voice (no files written).

    Parameters
    ----------
    word
        ``"badigu"`` or ``"ba-di-gu"``.
    speaker
        Voice index, ``0 <= speaker < MAX_SPEAKERS`` (``spk<speaker>`` of the corpus).
    pitch, pitch_range, rate
        espeak pitch and pitch range (0-100) and rate (words per minute); ``None`` = the voice's base value.
    stress
        Index (0-2) of the syllable carrying primary stress.
    sample_rate
        Output sample rate in Hz.
    peak_db
        Peak level of the output in dBFS.

    Returns
    -------
    audio
        ``float32`` waveform, shape ``[samples]`` at ``sample_rate``.
    segments
        Three ``(start, end)`` syllable bounds in samples at 16 kHz, end exclusive.
    """
    if not 0 <= speaker < MAX_SPEAKERS:
        raise ValueError(f"speaker must be in [0, {MAX_SPEAKERS}), got {speaker}")
    if stress not in (0, 1, 2):
        raise ValueError(f"stress must be 0, 1 or 2, got {stress}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    v = VOICES[speaker]
    return render(
        word,
        speaker,
        pitch=v.pitch if pitch is None else pitch,
        pitch_range=v.pitch_range if pitch_range is None else pitch_range,
        rate=v.rate if rate is None else rate,
        stress=stress,
        sample_rate=sample_rate,
        peak_db=peak_db,
    )
