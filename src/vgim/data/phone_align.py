"""Frame-level phone labels from a transcript: text normalisation, pocketsphinx forced alignment, a cache.

PocketSphinx (PyPI ``pocketsphinx``, BSD) ships the CMU en-us acoustic model and CMUdict; given the words
of an utterance it aligns them to the audio (``Decoder.set_align_text``, then a second pass with
``Decoder.set_alignment`` for phones) at 100 frames per second, i.e. one frame per 10 ms (160 samples at
16 kHz), the frame of the CPC alignments (:data:`vgim.data.librispeech.PHONE_FRAME_HOP`).

The phone classes (:data:`PHONES`) are the 39 phones of CMUdict with the stress digits stripped (the
en-us acoustic model has no stress variants: ``AH0``/``AH1``/``AH2`` are all ``AH``), plus silence:

* index 0, ``SIL``: pocketsphinx's silence ``SIL`` (its ``<s>``, ``</s>`` and ``<sil>`` words), its noise
  phones ``+NSN+`` and ``+SPN+``, and any frame no phone covers (the tail after the last segment);
* indices 1..39: ``AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW
  V W Y Z ZH``, alphabetically.

:func:`frame_labels` turns the aligned segments into exactly ``samples // 160`` labels, the count the
LibriSpeech recipe pairs with an utterance (label ``j`` covers samples ``[160 j, 160 (j + 1))``; the last
partial frame has no label). Alignment is slow (about 0.06 s per second of audio on one core), so
:class:`AlignmentCache` keeps every result in a JSON-lines file keyed by the audio, the words and the aligner's
version and settings.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vgim.data.librispeech import PHONE_FRAME_HOP
from vgim.frames import SAMPLE_RATE

__all__ = [
    "PHONES",
    "SILENCE",
    "DECODER_SETTINGS",
    "AlignmentCache",
    "MissingSourceError",
    "PhoneAligner",
    "Segment",
    "TranscriptWords",
    "frame_labels",
    "normalise_transcript",
    "phone_index",
    "write_phone_map",
]

#: The silence class (index 0).
SILENCE = "SIL"
#: The 39 CMUdict phones without stress, alphabetically (indices 1..39 of :data:`PHONES`).
CMU_PHONES = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)
#: Every phone class in index order: silence, then the 39 phones.
PHONES: tuple[str, ...] = (SILENCE, *CMU_PHONES)
#: Pocketsphinx symbols that are silence or noise, all mapped to :data:`SILENCE`.
_SILENT = {"SIL", "+NSN+", "+SPN+", "+NOISE+", "+BREATH+", "+COUGH+", "+UM+", "+UH+", "+SMACK+"}
_INDEX = {p: i for i, p in enumerate(PHONES)}

_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_SYMBOL_WORDS = {"*": "star", "#": "pound", "&": "and", "%": "percent", "@": "at", "+": "plus", "=": "equals"}
_NOTE_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")


class MissingSourceError(FileNotFoundError):
    """A source the prompts command reads is not installed; the message names the package to install."""


class Segment(NamedTuple):
    """One aligned phone: pocketsphinx's symbol, first frame and number of 10 ms frames."""

    phone: str
    start: int
    duration: int


class TranscriptWords(NamedTuple):
    """The words to align for one prompt (lower case, as CMUdict spells them; empty when ``problem`` is set),
    or in ``problem`` the reason the transcript cannot be aligned (e.g. ``"no speech in the transcript"``)."""

    words: tuple[str, ...]
    problem: str = ""


def phone_index(phone: str) -> int:
    """The class index of a pocketsphinx phone symbol (stress digits stripped; silence and noise are 0).

    Raises
    ------
    ValueError
        The symbol is neither a CMUdict phone nor a known silence or noise symbol.
    """
    symbol = phone.strip().upper()
    if symbol in _SILENT or (symbol.startswith("+") and symbol.endswith("+")):
        return 0
    base = symbol.rstrip("012")
    if base not in _INDEX:
        raise ValueError(f"unknown phone symbol {phone!r}: expected one of {', '.join(PHONES)} or a noise symbol")
    return _INDEX[base]


def write_phone_map(path: str | Path) -> Path:
    """Write the phone-to-index mapping, one ``index phone`` line per class (``0 SIL`` ... ``39 ZH``)."""
    path = Path(path)
    path.write_text("".join(f"{i} {p}\n" for i, p in enumerate(PHONES)), encoding="utf-8")
    return path


def _number_words(n: int) -> list[str]:
    if n < 20:
        return [_NUMBER_WORDS[n]]
    tens, ones = divmod(n, 10)
    return [_TENS[tens - 2]] + ([_NUMBER_WORDS[ones]] if ones else [])


def normalise_transcript(text: str) -> TranscriptWords:
    """The words a speaker reads from one line of ``core-sounds-en.txt``.

    Notes in brackets (``[ascending tones]``, ``(10 seconds of silence)``, ``<beep>``) are dropped; ``*`` and
    ``#`` become ``star`` and ``pound`` (the prompts read them so), numbers 0..99 are spelled out, hyphens and
    slashes split words, other punctuation is dropped and apostrophes inside words are kept.

    Returns
    -------
    TranscriptWords
        With ``problem`` set when nothing is left to say, or when a number above 99 or with decimals
        occurs (whether "1234" was read "one two three four" or "twelve thirty-four" is unknown).
    """
    words: list[str] = []
    for token in _NOTE_RE.sub(" ", text).replace("-", " ").replace("/", " ").split():
        token = token.strip(".,;:!?\"'()").lower()
        if not token:
            continue
        if token in _SYMBOL_WORDS:
            words.append(_SYMBOL_WORDS[token])
        elif token.isdigit():
            if int(token) > 99:
                return TranscriptWords((), f"a number of uncertain reading ({token})")
            words += _number_words(int(token))
        elif re.fullmatch(r"\d+[.,]\d+", token):
            return TranscriptWords((), f"a number of uncertain reading ({token})")
        else:
            words.append(token)
    if not words:
        return TranscriptWords((), "no speech in the transcript")
    return TranscriptWords(tuple(words))


def frame_labels(segments: Iterable[Segment], n_samples: int) -> np.ndarray:
    """One class index per 10 ms frame: ``n_samples // 160`` labels, silence where no segment reaches.

    Parameters
    ----------
    segments
        Aligned phones in pocketsphinx frames (10 ms each, frame ``j`` starting at sample ``160 j``).
    n_samples
        Length of the utterance at 16 kHz.

    Returns
    -------
    np.ndarray
        ``int64`` labels, shape ``[n_samples // 160]``, in ``[0, len(PHONES))``; segments beyond the end
        are cut.
    """
    n = n_samples // PHONE_FRAME_HOP
    labels = np.zeros(n, dtype=np.int64)
    for seg in segments:
        if seg.duration < 0 or seg.start < 0:
            raise ValueError(f"segment {seg} has a negative start or duration")
        labels[min(seg.start, n) : min(seg.start + seg.duration, n)] = phone_index(seg.phone)
    return labels


#: Decoder settings of :class:`PhoneAligner`: the cepstral mean of each utterance alone ("batch", as the en-us
#: model's ``feat.params`` asks; "live" would carry the estimate over from the utterances before, so that a
#: cached alignment could differ from a fresh one). The beams stay pocketsphinx's: wider ones (1e-80) aligned
#: fewer of the English prompts (469 against 484).
DECODER_SETTINGS: dict[str, Any] = {"cmn": "batch"}


class PhoneAligner:
    """Forced alignment of words to 16 kHz audio with pocketsphinx's en-us model and CMUdict.

    Attributes
    ----------
    version
        The pocketsphinx version and :data:`DECODER_SETTINGS`, part of every cache key.

    Raises
    ------
    MissingSourceError
        The ``pocketsphinx`` package is not installed (the message says how to install it).
    """

    def __init__(self) -> None:
        try:
            import pocketsphinx
        except ImportError:
            raise MissingSourceError(
                "the phone alignments need the PyPI package pocketsphinx (BSD; it ships the en-us model and "
                "CMUdict): pip install 'vgim[prompts]' (or pip install pocketsphinx)"
            ) from None
        from importlib.metadata import version

        settings = " ".join(f"{k}={v}" for k, v in DECODER_SETTINGS.items())
        self.version = f"pocketsphinx {version('pocketsphinx')} {settings}"
        self._decoder = pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **DECODER_SETTINGS)

    def missing_words(self, words: Iterable[str]) -> list[str]:
        """The words CMUdict does not know (in order, without repeats)."""
        return [w for w in dict.fromkeys(words) if self._decoder.lookup_word(w) is None]

    def align(self, pcm: np.ndarray, words: Iterable[str]) -> list[Segment]:
        """The phones of ``words`` aligned to ``pcm`` (``int16`` at 16 kHz).

        Raises
        ------
        RuntimeError
            Pocketsphinx found no alignment.
        """
        d = self._decoder
        raw = np.ascontiguousarray(pcm, dtype=np.int16).tobytes()
        d.set_align_text(" ".join(words))
        for second_pass in (False, True):  # words first, then phones and states within them
            if second_pass:
                d.set_alignment()
            d.start_utt()
            d.process_raw(raw, full_utt=True)
            d.end_utt()
        alignment = d.get_alignment()
        if alignment is None:
            raise RuntimeError("pocketsphinx found no alignment")
        segments = [Segment(p.name, int(p.start), int(p.duration)) for w in alignment for p in w]
        if not any(phone_index(s.phone) for s in segments):
            raise RuntimeError("pocketsphinx aligned no phone, only silence")
        return segments


class AlignmentCache:
    """Alignments kept across runs in a JSON-lines file, one line per utterance, appended as they come.

    A line holds the key (:meth:`key`), the prompt, and either the segments or the reason the alignment
    failed. A truncated last line (an interrupted run) is ignored.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(entry, dict) and "key" in entry:
                        self._entries[str(entry["key"])] = entry

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(pcm: np.ndarray, words: Iterable[str], version: str) -> str:
        """A digest of the audio samples, the words and the aligner's version."""
        h = hashlib.sha256(np.ascontiguousarray(pcm, dtype=np.int16).tobytes())
        h.update(("\n" + " ".join(words) + "\n" + version).encode())
        return h.hexdigest()

    def get(self, key: str) -> list[Segment] | str | None:
        """The cached segments, the cached failure reason, or ``None`` when the key is not cached."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if "error" in entry:
            return str(entry["error"])
        return [Segment(str(p), int(s), int(d)) for p, s, d in entry["phones"]]

    def put(self, key: str, prompt: str, result: list[Segment] | str) -> None:
        """Record one result (segments, or the failure reason) and append it to the file."""
        entry: dict[str, Any] = {"key": key, "prompt": prompt}
        if isinstance(result, str):
            entry["error"] = result
        else:
            entry["phones"] = [[s.phone, s.start, s.duration] for s in result]
        self._entries[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
