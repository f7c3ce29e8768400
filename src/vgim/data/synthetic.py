"""The embedded default corpus: three-syllable nonsense words spoken by espeak-ng voices.

The corpus imitates a thesis corpus of nonsense words: every word has three syllables, each a consonant
from ``{b, d, g}`` followed by a vowel from ``{a, i, u}`` (9 syllables, 729 possible words such as
``"ba-di-gu"``). Words are synthesised with the espeak-ng library shipped by the ``espeakng-loader`` wheel
(driven through :mod:`ctypes`; no system binary is needed) from phoneme input (``[[bA:d'i:gu:]]``), so
espeak says exactly /b d g/ + /ɑ i u/ and never guesses a spelling.

Syllable boundaries are exact: espeak reports the output sample at which every phoneme starts (phoneme
events of the synth callback); a syllable runs from the start of its consonant to the start of the next
consonant (the last one to the pause after the final vowel).

Layout of a corpus folder::

    manifest.csv            # written last (temp file + os.replace): its presence means "complete"
    corpus.json             # parameters and espeak-ng version
    spk0/badigu_0.wav       # <speaker>/<word>_<n>.wav, mono PCM_16 at ``sample_rate``
    ...

``manifest.csv`` columns: ``path`` (relative to the folder), ``word`` (``"badigu"``), ``syllables``
(``"ba-di-gu"``), ``consonants`` (``"b-d-g"``), ``vowels`` (``"a-i-u"``), ``speaker`` (``"spk0"``...),
``pitch`` and ``rate`` (espeak pitch 0-100 and words per minute used for that word), ``split``
(``"train"``/``"test"``), ``segments`` (``"s0:e0;s1:e1;s2:e2"``, sample indices at 16 kHz, end exclusive)
and ``stress`` (index 0-2 of the syllable carrying primary stress).

The train/test split is by word identity: a fixed, seeded 20 % of the 729 word types is held out, so test
words are never heard in training (for any speaker); every syllable occurs in both splits.

Synthesis is deterministic: espeak-ng keeps some generator state between utterances (pitch flutter,
roughness cycle counters, breath-noise filters), so the voices used here switch those features off, and
the same parameters give byte-identical files.
"""

from __future__ import annotations

import atexit
import csv
import ctypes
import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

__all__ = [
    "ALL_WORDS",
    "CONSONANTS",
    "MANIFEST_COLUMNS",
    "MAX_SPEAKERS",
    "SYLLABLES",
    "SYNTH_VERSION",
    "VOWELS",
    "default_corpus_dir",
    "describe_corpus",
    "split_words",
    "synthesize_corpus",
    "synthesize_word",
]

log = logging.getLogger("vgim")

#: Bump when anything changes the generated audio or manifest (part of the cache key).
SYNTH_VERSION = 1

CONSONANTS: tuple[str, ...] = ("b", "d", "g")
VOWELS: tuple[str, ...] = ("a", "i", "u")
#: The 9 syllables, consonant-major: ``("ba", "bi", "bu", "da", ...)``.
SYLLABLES: tuple[str, ...] = tuple(c + v for c in CONSONANTS for v in VOWELS)
#: All 729 words, sorted: ``("bababa", "bababi", ...)``.
ALL_WORDS: tuple[str, ...] = tuple("".join(s) for s in itertools.product(SYLLABLES, repeat=3))

#: Fraction of word types held out for the test split.
TEST_FRACTION = 0.2

MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "word",
    "syllables",
    "consonants",
    "vowels",
    "speaker",
    "pitch",
    "rate",
    "split",
    "segments",
    "stress",
)

#: Sample rate (Hz) of the ``segments`` column (the vgim convention, see ``vgim.data.corpus``).
_SEGMENT_RATE = 16000
#: Silence kept before the first and after the last audible sample of a word.
_MARGIN_S = 0.020
#: A sample is audible when its magnitude is within this many dB of the word's peak.
_TRIM_DB = 40.0
#: espeak volume (0-200, default 100); lower than default so its int16 output never needs gain control.
_ESPEAK_VOLUME = 60

# espeak-ng mnemonics (English phoneme table) for the corpus phonemes.
_PHONEME = {"b": "b", "d": "d", "g": "g", "a": "A:", "i": "i:", "u": "u:"}
_BASE_VOICE = "en-us"


@dataclass(frozen=True)
class _Voice:
    """One speaker: an espeak voice variant plus its base prosody.

    ``variant`` names a file in espeak-ng-data/voices/!v; ``pitch`` and ``pitch_range`` are espeak's 0-100
    parameters (pitch 50 = the variant's own pitch, 0/100 = an octave lower/higher), ``rate`` is in words
    per minute.
    """

    variant: str
    pitch: int
    pitch_range: int
    rate: int


# Alternating male/female variants with different base pitch (median F0 of a word in Hz in the comments),
# pitch range and speaking rate; the klatt-based ones ("edward", "klatt*") use espeak's other synthesiser and
# sound different again. Pitch values above 50 also raise the formants a little (espeak's own rule).
_VOICES: tuple[_Voice, ...] = (
    _Voice("m1", 69, 45, 150),  # ~95 Hz
    _Voice("f2", 61, 60, 160),  # ~178 Hz
    _Voice("m3", 79, 35, 140),  # ~118 Hz
    _Voice("f4", 73, 70, 150),  # ~200 Hz
    _Voice("m7", 55, 55, 165),  # ~85 Hz
    _Voice("f1", 55, 45, 135),  # ~158 Hz
    _Voice("edward", 72, 50, 155),  # ~107 Hz, klatt
    _Voice("f5", 72, 55, 145),  # ~224 Hz
    _Voice("m2", 80, 50, 150),  # ~128 Hz
    _Voice("f3", 65, 60, 140),  # ~190 Hz
    _Voice("klatt3", 58, 40, 160),  # ~90 Hz, klatt
    _Voice("aunty", 43, 55, 150),  # ~168 Hz
    _Voice("m4", 85, 40, 145),  # ~108 Hz
    _Voice("belinda", 53, 65, 155),  # ~213 Hz
    _Voice("klatt2", 70, 65, 140),  # ~105 Hz, klatt
    _Voice("m6", 81, 50, 165),  # ~122 Hz
)
#: Largest supported ``n_speakers``.
MAX_SPEAKERS = len(_VOICES)

# Variant-file keywords dropped from the voices: flutter, roughness and breath make espeak's output depend on
# earlier utterances (global generator state); echo adds a 100+ ms slap-back tail after the last syllable.
_DROPPED_KEYWORDS = frozenset({"flutter", "roughness", "breath", "breathw", "echo"})

_INSTALL_HINT = "Install it with `pip install espeakng-loader` (a wheel that bundles libespeak-ng and its data)."


# ---------------------------------------------------------------------------------------------------------
# espeak-ng through ctypes


class _EspeakId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EspeakId),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES = 0x100
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4

# Files of espeak-ng-data needed for phoneme input with the English voice.
_DATA_FILES = ("phontab", "phonindex", "phondata", "intonations", "en_dict", "lang/gmw/en-US")


class _Espeak:
    """The espeak-ng library, initialised on a private data folder with deterministic voice variants.

    espeak-ng is a process-wide singleton (global state), so all calls go through one lock.
    """

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:
            raise RuntimeError(
                f"vgim's synthetic corpus needs the espeak-ng library, but espeakng_loader is missing. {_INSTALL_HINT}"
            ) from err
        try:
            lib_path = espeakng_loader.get_library_path()
            data_path = Path(espeakng_loader.get_data_path())
            lib = ctypes.CDLL(lib_path)
        except (OSError, RuntimeError) as err:
            raise RuntimeError(
                f"cannot load the espeak-ng library from espeakng_loader: {err}. {_INSTALL_HINT}"
            ) from err

        self._dir = Path(tempfile.mkdtemp(prefix="vgim-espeak-"))
        atexit.register(shutil.rmtree, self._dir, True)
        data = self._dir / "espeak-ng-data"
        try:
            self._write_data(data_path, data)
        except OSError as err:
            raise RuntimeError(f"cannot prepare espeak-ng data from {data_path}: {err}. {_INSTALL_HINT}") from err

        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p

        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            str(data).encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise RuntimeError(
                f"espeak-ng failed to initialise (code {rate}) with data from {data_path}. "
                f"Reinstall it with `pip install --force-reinstall espeakng-loader`."
            )
        self.lib = lib
        self.sample_rate = int(rate)
        self.version = (lib.espeak_Info(None) or b"?").decode()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference: espeak holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    @staticmethod
    def _write_data(src: Path, dst: Path) -> None:
        """Copy the few data files needed and write one deterministic variant file per corpus voice."""
        for name in _DATA_FILES:
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, dst / name)
        variants = dst / "voices" / "!v"
        variants.mkdir(parents=True, exist_ok=True)
        for i, voice in enumerate(_VOICES):
            text = (src / "voices" / "!v" / voice.variant).read_text(encoding="utf-8", errors="replace")
            lines = [ln for ln in text.splitlines() if (ln.split() or [""])[0] not in _DROPPED_KEYWORDS]
            lines = [ln for ln in lines if not ln.strip().startswith("name ")]
            lines += [f"name vgim{i}", "flutter 0", "roughness 0", ""]
            (variants / f"vgim{i}").write_text("\n".join(lines), encoding="utf-8")

    def _on_audio(self, wav: Any, n: int, events: Any) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                self._events.append((ev.id.string.decode("ascii", "replace"), int(ev.sample)))
            i += 1
        return 0

    def synth(
        self, phonemes: str, voice: int, pitch: int, pitch_range: int, rate: int
    ) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Speak espeak phoneme input (``"[[...]]"``) with corpus voice ``voice``.

        Returns
        -------
        audio
            ``int16`` samples, shape ``[samples]``, at :attr:`sample_rate`.
        events
            ``(phoneme mnemonic, start sample)`` for every phoneme (pauses are ``"_"``, ``"_:"``...).
        """
        lib = self.lib
        with self.lock:
            self._chunks.clear()
            self._events.clear()
            name = f"{_BASE_VOICE}+vgim{voice}".encode()
            if lib.espeak_SetVoiceByName(name) != 0:
                raise RuntimeError(f"espeak-ng cannot select voice {name.decode()!r}")
            lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            lib.espeak_SetParameter(_PARAM_VOLUME, _ESPEAK_VOLUME, 0)
            lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            lib.espeak_SetParameter(_PARAM_RANGE, int(pitch_range), 0)
            text = phonemes.encode()
            err = lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _PHONEMES, None, None)
            if err != 0:
                raise RuntimeError(f"espeak-ng failed to synthesise {phonemes!r} (code {err})")
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return audio.astype(np.int16, copy=False), list(self._events)


_ENGINE: _Espeak | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Espeak:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Espeak()
        return _ENGINE


# ---------------------------------------------------------------------------------------------------------
# Words


def _split_syllables(word: str) -> tuple[str, str, str]:
    """``"badigu"`` or ``"ba-di-gu"`` -> ``("ba", "di", "gu")``; ValueError for anything else."""
    w = word.replace("-", "").strip().lower()
    syl = tuple(w[i : i + 2] for i in range(0, len(w), 2))
    if len(w) != 6 or any(s not in SYLLABLES for s in syl):
        raise ValueError(f"not a corpus word (3 syllables from {', '.join(SYLLABLES)}): {word!r}")
    return syl[0], syl[1], syl[2]


def _phoneme_input(syllables: Sequence[str], stress: int) -> str:
    """espeak phoneme input for a word, primary stress on syllable ``stress``: ``"[[bA:d'i:gu:]]"``."""
    parts = [_PHONEME[s[0]] + ("'" if i == stress else "") + _PHONEME[s[1]] for i, s in enumerate(syllables)]
    return "[[" + "".join(parts) + "]]"


def _word_labels(word: str) -> dict[str, str]:
    syl = _split_syllables(word)
    return {
        "word": "".join(syl),
        "syllables": "-".join(syl),
        "consonants": "-".join(s[0] for s in syl),
        "vowels": "-".join(s[1] for s in syl),
    }


def _find_cover(pool: Sequence[str], rng: np.random.Generator) -> tuple[str, str, str] | None:
    """Three words of ``pool`` that together contain all 9 syllables (random among those found first)."""
    pool_set = set(pool)
    order = [pool[i] for i in rng.permutation(len(pool))]
    candidates = [w for w in order if len(set(_split_syllables(w))) == 3]
    for i, w1 in enumerate(candidates):
        s1 = set(_split_syllables(w1))
        for w2 in candidates[i + 1 :]:
            s2 = set(_split_syllables(w2))
            if s1 & s2:
                continue
            rest = sorted(set(SYLLABLES) - s1 - s2)
            for perm in itertools.permutations(rest):
                w3 = "".join(perm)
                if w3 in pool_set:
                    return w1, w2, w3
    return None


def split_words(seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The train/test split of the 729 word types (by word identity).

    A seeded ``TEST_FRACTION`` (20 %, 146 words) of the types is held out for testing. The split is redrawn
    until both parts contain three words that together cover all 9 syllables, so every syllable can occur
    in both splits of even a tiny corpus.

    Returns
    -------
    train_words, test_words
        Sorted tuples of words like ``"badigu"``; disjoint, together all of :data:`ALL_WORDS`.
    """
    rng = np.random.default_rng([seed, 101])
    n_test = round(TEST_FRACTION * len(ALL_WORDS))
    for _ in range(1000):
        perm = rng.permutation(len(ALL_WORDS))
        test = tuple(sorted(ALL_WORDS[i] for i in perm[:n_test]))
        train = tuple(sorted(ALL_WORDS[i] for i in perm[n_test:]))
        if _find_cover(test, rng) is not None and _find_cover(train, rng) is not None:
            return train, test
    raise RuntimeError("could not draw a train/test split covering all syllables")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------------
# Corpus plan


@dataclass(frozen=True)
class _Item:
    """One utterance to synthesise (all randomness already drawn)."""

    speaker: int
    word: str
    n: int
    split: str
    pitch: int
    pitch_range: int
    rate: int
    stress: int
    peak_db: float

    @property
    def path(self) -> str:
        return f"spk{self.speaker}/{self.word}_{self.n}.wav"


def _split_counts(n_speakers: int, words_per_speaker: int) -> list[int]:
    """Test utterances per speaker: ~20 % overall, at least 3 (one cover of the 9 syllables), spread evenly."""
    total = n_speakers * words_per_speaker
    n_test = max(3, round(TEST_FRACTION * total))
    return [n_test // n_speakers + (1 if s < n_test % n_speakers else 0) for s in range(n_speakers)]


def _assign(
    pool: Sequence[str], counts: Sequence[int], cover: Sequence[str], rng: np.random.Generator
) -> list[list[str]]:
    """Words for each speaker from ``pool``: the cover words go to the first slots (round-robin over
    speakers, so they are actually used), the rest are an independent random draw per speaker (without
    repetition until a speaker has used the whole pool)."""
    slots = [(s, j) for j in range(max(counts, default=0)) for s in range(len(counts)) if j < counts[s]]
    fixed: list[list[str]] = [[] for _ in counts]
    for (s, _), w in zip(slots, cover, strict=False):
        fixed[s].append(w)
    out: list[list[str]] = []
    for s, k in enumerate(counts):
        words = list(fixed[s])
        rest = [w for w in pool if w not in words]
        while len(words) < k:
            words.extend(rest[i] for i in rng.permutation(len(rest))[: k - len(words)])
            rest = list(pool)
        out.append(words)
    return out


def _plan(n_speakers: int, words_per_speaker: int, seed: int) -> list[_Item]:
    """Every utterance of the corpus, in synthesis order (speaker by speaker)."""
    train_pool, test_pool = split_words(seed)
    rng = np.random.default_rng([seed, 202])
    n_test = _split_counts(n_speakers, words_per_speaker)
    n_train = [words_per_speaker - k for k in n_test]
    cover_test = _find_cover(test_pool, rng) or ()
    cover_train = _find_cover(train_pool, rng) or ()
    test_words = _assign(test_pool, n_test, cover_test, rng)
    train_words = _assign(train_pool, n_train, cover_train, rng)

    items: list[_Item] = []
    for s in range(n_speakers):
        voice = _VOICES[s]
        spk_rng = np.random.default_rng([seed, 303, s])
        words = [(w, "train") for w in train_words[s]] + [(w, "test") for w in test_words[s]]
        seen: Counter[str] = Counter()
        for i in spk_rng.permutation(len(words)):
            word, split = words[i]
            items.append(
                _Item(
                    speaker=s,
                    word=word,
                    n=seen[word],
                    split=split,
                    pitch=int(np.clip(voice.pitch + spk_rng.integers(-4, 5), 0, 100)),
                    pitch_range=int(np.clip(voice.pitch_range + spk_rng.integers(-8, 9), 0, 100)),
                    rate=int(round(voice.rate * spk_rng.uniform(0.9, 1.1))),
                    stress=int(spk_rng.integers(0, 3)),
                    peak_db=float(spk_rng.uniform(-6.0, -2.0)),
                )
            )
            seen[word] += 1
    return items


# ---------------------------------------------------------------------------------------------------------
# Rendering one word


def _render(
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
    syl = _split_syllables(word)
    eng = _engine()
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
    n16 = int(len(audio) * _SEGMENT_RATE // sample_rate)
    b = np.clip(np.round((bounds - start) * (_SEGMENT_RATE / sr)).astype(np.int64), 0, n16)
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
    sample_rate: int = 16000,
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
    v = _VOICES[speaker]
    return _render(
        word,
        speaker,
        pitch=v.pitch if pitch is None else pitch,
        pitch_range=v.pitch_range if pitch_range is None else pitch_range,
        rate=v.rate if rate is None else rate,
        stress=stress,
        sample_rate=sample_rate,
        peak_db=peak_db,
    )


# ---------------------------------------------------------------------------------------------------------
# Corpus


def _params(n_speakers: int, words_per_speaker: int, seed: int, sample_rate: int) -> dict[str, int]:
    return {
        "version": SYNTH_VERSION,
        "n_speakers": n_speakers,
        "words_per_speaker": words_per_speaker,
        "seed": seed,
        "sample_rate": sample_rate,
    }


def default_corpus_dir(
    *, n_speakers: int = 8, words_per_speaker: int = 60, seed: int = 0, sample_rate: int = 16000
) -> Path:
    """``$VGIM_CACHE/synthetic-<hash>`` (or ``~/.cache/vgim/synthetic-<hash>``); the hash covers all
    parameters and :data:`SYNTH_VERSION`."""
    params = _params(n_speakers, words_per_speaker, seed, sample_rate)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    env = os.environ.get("VGIM_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "vgim"
    return root / f"synthetic-{digest}"


def _is_complete(out_dir: Path, params: dict[str, int], n_rows: int) -> bool:
    """True when ``out_dir`` holds a finished corpus made with ``params``."""
    manifest = out_dir / "manifest.csv"
    try:
        info = json.loads((out_dir / "corpus.json").read_text(encoding="utf-8"))
        if info.get("params") != params:
            return False
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
                return False
            rows = list(reader)
    except (OSError, ValueError):
        return False
    return len(rows) == n_rows and all((out_dir / r["path"]).is_file() for r in rows)


def _replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the temp file onto ``path`` (never a half-written ``path``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def synthesize_corpus(
    out_dir: str | Path | None = None,
    *,
    n_speakers: int = 8,
    words_per_speaker: int = 60,
    seed: int = 0,
    sample_rate: int = 16000,
    progress: bool = True,
) -> Path:
    """Synthesise the nonsense-word corpus (or reuse a finished one) and return its ``manifest.csv``.

    Parameters
    ----------
    out_dir
        Target folder; ``None`` = :func:`default_corpus_dir` for these parameters.
    n_speakers
        Number of voices, 1 to :data:`MAX_SPEAKERS`; speakers are ``spk0 .. spk<n-1>``.
    words_per_speaker
        Utterances per speaker; ``n_speakers * words_per_speaker`` must be at least 6 so that both
        splits can contain every syllable.
    seed
        Seeds the word split, word choice and per-word prosody (pitch, range, rate, stress, level).
    sample_rate
        Sample rate of the WAV files (``segments`` are always at 16 kHz).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Path
        ``<out_dir>/manifest.csv``. Same parameters -> byte-identical files. When the folder already holds a
        complete corpus made with the same parameters, nothing is synthesised.

    Raises
    ------
    RuntimeError
        If the espeak-ng library (``espeakng-loader``) cannot be loaded or initialised.
    """
    if not 1 <= n_speakers <= MAX_SPEAKERS:
        raise ValueError(f"n_speakers must be in [1, {MAX_SPEAKERS}], got {n_speakers}")
    if words_per_speaker < 1 or n_speakers * words_per_speaker < 6:
        raise ValueError(
            "need words_per_speaker >= 1 and n_speakers * words_per_speaker >= 6 (3 train + 3 test words "
            f"to cover the 9 syllables in both splits), got {n_speakers} x {words_per_speaker}"
        )
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    params = _params(n_speakers, words_per_speaker, seed, sample_rate)
    out = (
        default_corpus_dir(
            n_speakers=n_speakers, words_per_speaker=words_per_speaker, seed=seed, sample_rate=sample_rate
        )
        if out_dir is None
        else Path(out_dir)
    )
    manifest = out / "manifest.csv"
    n_rows = n_speakers * words_per_speaker
    if _is_complete(out, params, n_rows):
        return manifest

    eng = _engine()  # fail early (RuntimeError) if espeak-ng is unusable
    out.mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        manifest.unlink()  # stale or incomplete: it must not look complete while we rewrite
    items = _plan(n_speakers, words_per_speaker, seed)
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    rows: list[dict[str, str]] = []
    for item in tqdm(items, desc="synthesising corpus", unit="word", disable=not progress):
        audio, segments = _render(
            item.word,
            item.speaker,
            pitch=item.pitch,
            pitch_range=item.pitch_range,
            rate=item.rate,
            stress=item.stress,
            sample_rate=sample_rate,
            peak_db=item.peak_db,
        )
        wav = out / item.path
        wav.parent.mkdir(parents=True, exist_ok=True)
        _replace_atomically(wav, lambda p, a=audio: sf.write(p, a, sample_rate, subtype="PCM_16", format="WAV"))
        rows.append(
            {
                "path": item.path,
                **_word_labels(item.word),
                "speaker": f"spk{item.speaker}",
                "pitch": str(item.pitch),
                "rate": str(item.rate),
                "split": item.split,
                "segments": ";".join(f"{s}:{e}" for s, e in segments),
                "stress": str(item.stress),
            }
        )

    info = {"params": params, "espeak_ng_version": eng.version, "espeak_voice": _BASE_VOICE}
    _replace_atomically(
        out / "corpus.json",
        lambda p: p.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8"),
    )

    def write_manifest(p: Path) -> None:
        with p.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    _replace_atomically(manifest, write_manifest)
    log.info("synthesised %d words into %s in %.1f s", len(rows), out, time.perf_counter() - t0)
    return manifest


def describe_corpus(manifest: str | Path) -> dict[str, Any]:
    """Summary of a corpus manifest (reads only WAV headers).

    Returns
    -------
    dict
        ``n_utterances``; ``speakers`` and ``splits`` (label -> count); ``speaker_split``
        (``"spk0/train"`` -> count); ``word_types`` (split -> number of distinct words);
        ``syllables`` (split -> syllable -> count); ``duration_s`` (total) and ``duration_s_by_split``.
    """
    manifest = Path(manifest)
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    durations: dict[str, float] = {}
    words: dict[str, set[str]] = {}
    syllables: dict[str, Counter[str]] = {}
    for r in rows:
        info = sf.info(str(manifest.parent / r["path"]))
        durations[r["split"]] = durations.get(r["split"], 0.0) + info.frames / info.samplerate
        words.setdefault(r["split"], set()).add(r["word"])
        syllables.setdefault(r["split"], Counter()).update(r["syllables"].split("-"))
    return {
        "n_utterances": len(rows),
        "speakers": dict(sorted(Counter(r["speaker"] for r in rows).items())),
        "splits": dict(sorted(Counter(r["split"] for r in rows).items())),
        "speaker_split": dict(sorted(Counter(f"{r['speaker']}/{r['split']}" for r in rows).items())),
        "word_types": {k: len(v) for k, v in sorted(words.items())},
        "syllables": {k: dict(sorted(v.items())) for k, v in sorted(syllables.items())},
        "duration_s": float(sum(durations.values())),
        "duration_s_by_split": {k: float(v) for k, v in sorted(durations.items())},
    }
