"""The V-GIM thesis corpus: 851 three-syllable nonsense words spoken by one speaker.

Layout (``reshuffledv2``; any folder like it works)::

    <root>/train/babidi_1.wav     # <syllable><syllable><syllable>_<take>.wav, 680 files
    <root>/test/gugiba_1.wav      # 171 files

Every syllable is a consonant from ``{b, d, g}`` followed by a vowel from ``{a, i, u}``. The recordings are
44.1 kHz mono; :func:`load_thesis_corpus` resamples them (to 16 kHz by default), labels every file from its
name and splits it into syllables with :func:`vgim.data.segment.segment_syllables`.

The corpus is licensed CC-BY-NC-SA 4.0 and is not part of this repository: it is looked up with
:func:`find_thesis_corpus` (``$VGIM_THESIS_CORPUS``, then ``../shared/datasets/artificial-speech/reshuffledv2``
next to the working directory or next to any folder above the installed package).
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgim.audio import find_audio_files
from vgim.data.corpus import AudioCorpus, Utterance
from vgim.data.segment import SYLLABLE_PATTERN, SegmentParams, read_words, word_labels
from vgim.frames import SAMPLE_RATE

__all__ = [
    "THESIS_CORPUS",
    "THESIS_ENV",
    "THESIS_PATTERN",
    "THESIS_SPEAKER",
    "THESIS_SPLITS",
    "ThesisFile",
    "find_thesis_corpus",
    "fit_length",
    "list_thesis_files",
    "load_thesis_corpus",
]

log = logging.getLogger("vgim")

#: Environment variable naming the corpus folder (the one holding ``train/`` and ``test/``).
THESIS_ENV = "VGIM_THESIS_CORPUS"
#: Where the corpus sits relative to the folder that holds the repository checkout.
THESIS_RELATIVE = Path("shared") / "datasets" / "artificial-speech" / "reshuffledv2"
#: File stem of a thesis word: three consonant-vowel syllables, an underscore and the take number.
THESIS_PATTERN = r"(?P<word>(?:[bdg][aiu]){3})_(?P<take>\d+)"
#: The split folders, in loading order.
THESIS_SPLITS: tuple[str, ...] = ("train", "test")
#: Value of the ``speaker`` label (one speaker).
THESIS_SPEAKER = "thesis"


def _candidates() -> list[Path]:
    """Places to look for the corpus, in order (environment variable first)."""
    env = os.environ.get(THESIS_ENV, "").strip()
    if env:
        return [Path(env).expanduser()]
    out = [Path.cwd().parent / THESIS_RELATIVE]
    out += [parent / THESIS_RELATIVE for parent in Path(__file__).resolve().parents]
    return out


def find_thesis_corpus() -> Path | None:
    """The thesis corpus folder, or ``None`` when it is not found.

    Looks at ``$VGIM_THESIS_CORPUS`` when set (and only there), else ``<cwd>/../shared/datasets/
    artificial-speech/reshuffledv2`` (the layout of a checkout next to ``shared/``), else the same relative
    path next to every folder above this package file. A candidate counts when it is a folder holding a
    ``train`` or ``test`` sub-folder.
    """
    for path in _candidates():
        if path.is_dir() and any((path / s).is_dir() for s in THESIS_SPLITS):
            return path.resolve()
    return None


#: Default corpus location: the folder found by :func:`find_thesis_corpus` at import time, else the place a
#: checkout next to ``shared/`` would have it (``<cwd>/../shared/...``).
THESIS_CORPUS: Path = find_thesis_corpus() or (Path.cwd().parent / THESIS_RELATIVE)


@dataclass
class ThesisFile:
    """One word file of the corpus before loading.

    Attributes
    ----------
    path
        The audio file.
    split
        ``"train"``/``"test"`` from its folder (``""`` for a flat folder).
    labels
        ``word`` (``"babidi"``), ``syllables`` (``"ba-bi-di"``), ``consonants`` (``"b-b-d"``), ``vowels``
        (``"a-i-i"``), ``take`` (``"1"``) and ``speaker`` (``"thesis"``).
    """

    path: Path
    split: str
    labels: dict[str, str]


def _resolve_root(root: str | Path | None) -> Path:
    if root is None:
        found = find_thesis_corpus()
        if found is None:
            looked = ", ".join(str(p) for p in _candidates()[:3])
            raise FileNotFoundError(f"thesis corpus not found (looked in {looked}); set ${THESIS_ENV}")
        return found
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"thesis corpus folder {path} does not exist or is not a folder")
    return path


def list_thesis_files(
    root: str | Path | None = None, *, split: str | None = None
) -> tuple[list[ThesisFile], list[tuple[str, str]]]:
    """The word files of a thesis-layout folder, with labels parsed from their names (reads no audio).

    Parameters
    ----------
    root
        Corpus folder with ``train/`` and/or ``test/`` (scanned recursively); a folder with neither is read
        as one flat folder with split ``""``. ``None``: :func:`find_thesis_corpus`.
    split
        ``"train"`` or ``"test"`` for one split folder; ``None`` for all (train first).

    Returns
    -------
    files : list of ThesisFile
        Sorted by split, then path.
    skipped : list of (str, str)
        ``(path, reason)`` for audio files whose names are not ``<syl><syl><syl>_<n>``.

    Raises
    ------
    FileNotFoundError
        The corpus (or the requested split folder) does not exist.
    """
    base = _resolve_root(root)
    present = [s for s in THESIS_SPLITS if (base / s).is_dir()]
    if split is not None:
        if not (base / split).is_dir():
            raise FileNotFoundError(f"{base} has no split folder {split!r}; split folders: {present or 'none'}")
        folders = [(base / split, split)]
    else:
        folders = [(base / s, s) for s in present] or [(base, "")]
    files: list[ThesisFile] = []
    skipped: list[tuple[str, str]] = []
    for folder, name in folders:
        for path in find_audio_files(folder):
            labels = word_labels(path.stem, THESIS_PATTERN, SYLLABLE_PATTERN)
            if labels is None:
                skipped.append((str(path), "file name is not <syl><syl><syl>_<n> (syllables b/d/g + a/i/u)"))
                continue
            files.append(ThesisFile(path, name, {**labels, "speaker": THESIS_SPEAKER}))
    return files, skipped


def fit_length(
    wave: np.ndarray, segments: list[tuple[int, int]] | None, length: int
) -> tuple[np.ndarray, list[tuple[int, int]] | None]:
    """Crop (keeping the start) or zero-pad (at the end) a wave to ``length`` samples.

    Parameters
    ----------
    wave
        Mono waveform, shape ``[samples]``.
    segments
        Syllable spans in samples (end exclusive) or ``None``.
    length
        Target length in samples (>= 1).

    Returns
    -------
    wave : np.ndarray
        Shape ``[length]``, same dtype.
    segments : list or None
        Spans clipped to ``[0, length)``; spans starting at or after ``length`` are dropped (so after a crop
        the first ``len(segments)`` syllable labels still line up). Padding leaves them unchanged (the zeros
        belong to no syllable).
    """
    if length < 1:
        raise ValueError(f"length must be >= 1 samples, got {length}")
    n = int(wave.shape[0])
    if n >= length:
        out = wave[:length].copy()
    else:
        out = np.zeros(length, dtype=wave.dtype)
        out[:n] = wave
    if segments is not None:
        segments = [(s, min(e, length)) for s, e in segments if s < length]
    return out, segments


def load_thesis_corpus(
    root: str | Path | None = None,
    *,
    split: str | None = None,
    sample_rate: int = SAMPLE_RATE,
    length: int | None = None,
    segment: bool = True,
    params: SegmentParams | None = None,
    limit: int | None = None,
    min_rms: float = 1e-4,
    progress: bool = True,
    workers: int = 2,
) -> AudioCorpus:
    """Load the thesis corpus (or any folder in its layout) with labels, splits and syllable segments.

    Parameters
    ----------
    root
        Corpus folder (``<root>/train/*.wav``, ``<root>/test/*.wav``); ``None``: :func:`find_thesis_corpus`.
    split
        ``"train"``, ``"test"`` or ``None`` for both (train first).
    sample_rate
        Every wave is resampled to this rate (Hz); segments are in samples at this rate.
    length
        When given, every wave is cropped (the first ``length`` samples are kept) or zero-padded at the end to
        exactly this many samples, after segmentation; see :func:`fit_length`. The thesis uses 10240.
    segment
        Split every word into three syllables (:func:`vgim.data.segment.segment_syllables` on the resampled
        wave) and store them in :attr:`Utterance.segments`; ``False`` leaves ``segments`` at ``None``.
    params
        Segmentation parameters (``None``: defaults).
    limit
        Load at most this many files per split (sorted order), e.g. for quick tests.
    min_rms
        Files quieter than this RMS are skipped as silent.
    progress
        Show a tqdm progress bar for more than 50 files.
    workers
        Reader threads.

    Returns
    -------
    AudioCorpus
        ``float32`` waves ``[samples]`` at ``sample_rate``; labels ``word``, ``syllables``, ``consonants``,
        ``vowels``, ``take``, ``speaker``; :attr:`Utterance.split` from the folder; unusable files (bad name,
        unreadable, empty, NaN/Inf, silent, too short to segment) listed in ``skipped`` and logged.

    Raises
    ------
    FileNotFoundError
        The corpus or split folder does not exist.
    ValueError
        Bad ``length``/``limit``, or no usable file at all (the reasons are summarised).
    """
    if length is not None and length < 1:
        raise ValueError(f"length must be >= 1 samples, got {length}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    files, skipped = list_thesis_files(root, split=split)
    if limit is not None:
        taken: Counter[str] = Counter()
        kept: list[ThesisFile] = []
        for f in files:
            if taken[f.split] < limit:
                kept.append(f)
                taken[f.split] += 1
        files = kept
    results = read_words(
        [f.path for f in files],
        sample_rate,
        params,
        segment=segment,
        min_rms=min_rms,
        progress=progress,
        workers=workers,
        desc="loading thesis corpus",
    )
    utterances: list[Utterance] = []
    waves: list[np.ndarray] = []
    for f, res in zip(files, results, strict=True):
        if isinstance(res, str):
            skipped.append((str(f.path), res))
            continue
        wave, seg = res
        segments = list(seg.segments) if seg is not None else None
        if length is not None:
            wave, segments = fit_length(wave, segments, length)
        utterances.append(Utterance(str(f.path), dict(f.labels), segments, f.split))
        waves.append(wave)
    for path, reason in skipped:
        log.warning("skipping %s: %s", path, reason)
    if not utterances:
        kinds = Counter(re.split(r": | \(", reason, maxsplit=1)[0] for _, reason in skipped)
        raise ValueError(f"no usable file in the thesis corpus {root or THESIS_CORPUS}: skipped {dict(kinds)}")
    corpus = AudioCorpus(utterances, waves, sample_rate, skipped)
    log.info("loaded thesis corpus: %s", corpus.describe())
    return corpus
