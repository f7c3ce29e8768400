"""espeak-ng through :mod:`ctypes`: the library of the ``espeakng-loader`` wheel and the corpus voices.

espeak-ng is initialised once per process (:func:`engine`) on a private copy of the few data files needed for
phoneme input with the English voice, plus one variant file per corpus voice (:data:`VOICES`). The variants
switch off the features that keep generator state between utterances (pitch flutter, roughness, breath noise)
and the echo, so the same parameters give byte-identical audio.
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BASE_VOICE", "MAX_SPEAKERS", "VOICES", "Espeak", "Voice", "engine"]

#: espeak volume (0-200, default 100); lower than default so its int16 output never needs gain control.
_ESPEAK_VOLUME = 60

#: The espeak-ng voice every corpus voice is a variant of.
BASE_VOICE = "en-us"


@dataclass(frozen=True)
class Voice:
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
VOICES: tuple[Voice, ...] = (
    Voice("m1", 69, 45, 150),  # ~95 Hz
    Voice("f2", 61, 60, 160),  # ~178 Hz
    Voice("m3", 79, 35, 140),  # ~118 Hz
    Voice("f4", 73, 70, 150),  # ~200 Hz
    Voice("m7", 55, 55, 165),  # ~85 Hz
    Voice("f1", 55, 45, 135),  # ~158 Hz
    Voice("edward", 72, 50, 155),  # ~107 Hz, klatt
    Voice("f5", 72, 55, 145),  # ~224 Hz
    Voice("m2", 80, 50, 150),  # ~128 Hz
    Voice("f3", 65, 60, 140),  # ~190 Hz
    Voice("klatt3", 58, 40, 160),  # ~90 Hz, klatt
    Voice("aunty", 43, 55, 150),  # ~168 Hz
    Voice("m4", 85, 40, 145),  # ~108 Hz
    Voice("belinda", 53, 65, 155),  # ~213 Hz
    Voice("klatt2", 70, 65, 140),  # ~105 Hz, klatt
    Voice("m6", 81, 50, 165),  # ~122 Hz
    # Voices 16-31 (session 12): more espeak-ng variants for corpora of more voices (`vgim synth --speakers
    # 32`); appended, so corpora of up to 16 voices are unchanged. Base pitches not measured.
    Voice("m5", 62, 45, 150),
    Voice("Annie", 50, 60, 150),
    Voice("m8", 70, 50, 145),
    Voice("steph", 55, 60, 155),
    Voice("klatt", 66, 50, 150),
    Voice("Alex", 60, 55, 160),
    Voice("klatt4", 60, 45, 140),
    Voice("Andy", 58, 50, 150),
    Voice("edward2", 64, 55, 145),
    Voice("adam", 62, 45, 155),
    Voice("david", 70, 50, 150),
    Voice("paul", 66, 55, 140),
    Voice("robert", 63, 45, 160),
    Voice("travis", 60, 50, 150),
    Voice("iven", 68, 45, 145),
    Voice("Mike", 64, 55, 155),
)
#: Largest supported ``n_speakers``.
MAX_SPEAKERS = len(VOICES)

# Variant-file keywords dropped from the voices: flutter, roughness and breath make espeak's output depend on
# earlier utterances (global generator state); echo adds a 100+ ms slap-back tail after the last syllable.
_DROPPED_KEYWORDS = frozenset({"flutter", "roughness", "breath", "breathw", "echo"})

_INSTALL_HINT = "Install it with `pip install espeakng-loader` (a wheel that bundles libespeak-ng and its data)."


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


class Espeak:
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
        for i, voice in enumerate(VOICES):
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
            name = f"{BASE_VOICE}+vgim{voice}".encode()
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


_ENGINE: Espeak | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> Espeak:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = Espeak()
        return _ENGINE
