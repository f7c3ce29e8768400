"""Audio corpora loaded into memory from a folder of files or a CSV manifest, skipping bad files.

Two ways to describe a corpus:

* **folder mode** -- every audio file under ``root`` (recursively, sorted), labels parsed from the file stem
  with ``label_pattern``, a regular expression with named groups, e.g.
  ``r"(?P<speaker>[a-z]+)_(?P<word>\\w+)_\\d+"``. The pattern must match the *whole* stem
  (:func:`re.fullmatch`); files that do not match are skipped, never given empty labels.
* **manifest mode** -- a CSV file with a ``path`` column; every other column is a label, except ``split``
  (stored in :attr:`Utterance.split`) and ``segments`` (syllable bounds ``"s0:e0;s1:e1;..."`` in samples
  at 16 kHz, end exclusive).

Files that cannot be used (unreadable, empty, NaN/Inf, too short, silent, missing, mislabelled) are skipped;
each is logged as a warning on the ``"vgim"`` logger and recorded as ``(path, reason)`` in
:attr:`AudioCorpus.skipped`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vgim.audio import check_audio, read_audio
from vgim.data.listing import SEGMENT_RATE, CorpusEntry, corpus_entries
from vgim.frames import SAMPLE_RATE

__all__ = [
    "PROGRESS_MIN_FILES",
    "SEGMENT_RATE",
    "AudioCorpus",
    "CorpusEntry",
    "MissingLabelError",
    "Utterance",
    "collect_corpus",
    "corpus_entries",
    "file_loader",
    "load_corpus",
    "map_ordered",
    "skip_summary",
]

log = logging.getLogger("vgim")

#: Show a progress bar only for corpora with more files than this.
PROGRESS_MIN_FILES = 50


class MissingLabelError(KeyError, ValueError):
    """A label that some utterance of a corpus lacks (a ``KeyError`` for lookups, a ``ValueError`` for users)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class Utterance:
    """One audio file of a corpus.

    Attributes
    ----------
    path
        The file the audio was read from.
    labels
        Label name -> value (from the manifest columns or the ``label_pattern`` groups).
    segments
        Syllable bounds ``(start, end)`` in samples at the corpus sample rate, end exclusive, or ``None``.
    split
        The manifest's ``split`` value (``""`` when there is none).
    """

    path: str
    labels: dict[str, str]
    segments: list[tuple[int, int]] | None = None
    split: str = ""


@dataclass
class AudioCorpus:
    """Utterances with their waveforms in memory.

    Attributes
    ----------
    utterances
        Metadata, aligned with ``waves``.
    waves
        ``float32`` mono waveforms, each of shape ``[samples]`` at ``sample_rate``.
    sample_rate
        Sample rate in Hz of every wave (and of the segments).
    skipped
        ``(path, reason)`` for every file that was left out while loading.
    rescaled
        ``(path, peak)`` for every float file whose samples went beyond ``[-1, 1]`` and were scaled down to
        peak 1 (see :func:`vgim.audio.read_audio`).
    """

    utterances: list[Utterance]
    waves: list[np.ndarray]
    sample_rate: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rescaled: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.utterances) != len(self.waves):
            raise ValueError(f"{len(self.utterances)} utterances but {len(self.waves)} waves")

    def __len__(self) -> int:
        return len(self.utterances)

    def labels(self, key: str) -> list[str]:
        """The value of label ``key`` for every utterance, in order.

        Raises
        ------
        MissingLabelError
            Some utterance has no label ``key`` (a ``KeyError`` and a ``ValueError``; the message names the
            file, how many lack it and lists the labels that exist).
        """
        out: list[str] = []
        for u in self.utterances:
            if key not in u.labels:
                known = sorted({k for v in self.utterances for k in v.labels})
                n = sum(key not in v.labels for v in self.utterances)
                raise MissingLabelError(
                    f"label {key!r} missing for {u.path} ({n} of {len(self.utterances)} files lack it); labels in "
                    f"this corpus: {known or 'none'} (labels come from manifest columns or label_pattern groups)"
                )
            out.append(u.labels[key])
        return out

    def splits(self) -> list[str]:
        """The distinct non-empty ``split`` values, sorted."""
        return sorted({u.split for u in self.utterances if u.split})

    def subset(self, split: str) -> AudioCorpus:
        """The utterances whose ``split`` equals ``split`` (waves are shared, not copied).

        Raises
        ------
        ValueError
            No utterance belongs to ``split`` (the message lists the splits that exist).
        """
        keep = [i for i, u in enumerate(self.utterances) if u.split == split]
        if not keep:
            raise ValueError(f"no utterance in split {split!r}; splits in this corpus: {self.splits() or 'none'}")
        return self.take(keep)

    def take(self, indices: list[int]) -> AudioCorpus:
        """The utterances at ``indices``, in that order (waves are shared, not copied)."""
        return AudioCorpus(
            utterances=[self.utterances[i] for i in indices],
            waves=[self.waves[i] for i in indices],
            sample_rate=self.sample_rate,
            skipped=list(self.skipped),
            rescaled=list(self.rescaled),
        )

    def total_seconds(self) -> float:
        """Total duration of the waves in seconds."""
        return sum(int(w.shape[0]) for w in self.waves) / self.sample_rate

    def describe(self) -> str:
        """One line: number of files, total minutes, skipped count."""
        return (
            f"{len(self)} files, {self.total_seconds() / 60:.1f} min at {self.sample_rate} Hz, "
            f"{len(self.skipped)} skipped"
        )


def _reason_kind(reason: str) -> str:
    """Short category of a skip reason for the summary (text before the first ``":"`` or ``" ("``)."""
    cut = [i for i in (reason.find(":"), reason.find(" (")) if i > 0]
    return reason[: min(cut)] if cut else reason


def skip_summary(skipped: list[tuple[str, str]], total: int) -> str:
    kinds = Counter(_reason_kind(r) for _, r in skipped)
    reasons = ", ".join(f"{k}: {n}" for k, n in kinds.most_common())
    return f"skipped {len(skipped)} of {total} files (reasons: {reasons or 'none'})"


def file_loader(
    sample_rate: int, min_samples: int, min_rms: float, rescaled: list[tuple[str, float]] | None = None
) -> Callable[[CorpusEntry], tuple[np.ndarray | None, str]]:
    def load(entry: CorpusEntry) -> tuple[np.ndarray | None, str]:
        try:
            wave = read_audio(entry.path, sample_rate, rescaled=rescaled)
            check_audio(wave, entry.path, min_samples=min_samples, min_rms=min_rms)
        except Exception as err:  # never crash for one bad file
            reason = getattr(err, "reason", None)
            return None, reason if isinstance(reason, str) else f"unreadable: {type(err).__name__}: {err}"
        if entry.segments is not None:
            n = int(wave.shape[0])
            # Allow a sample or two of rounding from resampling / segment scaling.
            slack = max(2, round(sample_rate / SEGMENT_RATE) + 1)
            if any(s >= n or e > n + slack for s, e in entry.segments):
                return None, f"segments extend past the end of the audio ({n} samples)"
        return wave, ""

    return load


def map_ordered(
    fn: Callable[[CorpusEntry], tuple[np.ndarray | None, str]], entries: list[CorpusEntry], workers: int
) -> Iterator[tuple[np.ndarray | None, str]]:
    if workers <= 1 or len(entries) <= 1:
        yield from map(fn, entries)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, entries)


def load_corpus(
    root: str | Path,
    *,
    manifest: str = "",
    label_pattern: str = "",
    split: str = "",
    sample_rate: int = SAMPLE_RATE,
    min_samples: int = 0,
    min_rms: float = 1e-4,
    progress: bool = True,
    workers: int = 0,
) -> AudioCorpus:
    """Load a corpus into memory, skipping (and logging) every unusable file.

    Parameters
    ----------
    root
        Folder of audio files (folder mode), or the folder a relative ``manifest`` lives in.
    manifest
        CSV file with a ``path`` column; an absolute path, a path that exists relative to the working
        directory, or a path relative to ``root``. Paths inside it are relative to the manifest's folder
        (or absolute). Every other column is a label except ``split`` and ``segments``
        (``"s0:e0;s1:e1;..."``, samples at 16 kHz, end exclusive; scaled to ``sample_rate``).
    label_pattern
        Regular expression with named groups, matched against the whole file stem with
        :func:`re.fullmatch`; its groups become labels (manifest columns take precedence). Files whose stem
        does not match are skipped.
    split
        Keep only the manifest rows of this split. Ignored in folder mode and for manifests without a
        ``split`` column (so the default ``DataConfig.split = "train"`` works for plain folders).
    sample_rate
        Every wave is resampled to this rate (Hz).
    min_samples
        Skip files shorter than this (typically one training crop).
    min_rms
        Skip files whose RMS is below this (silent).
    progress
        Show a tqdm progress bar when there are more than 50 files.
    workers
        Reader threads; ``0`` picks ``min(8, cpu_count)``. Order is deterministic regardless.

    Returns
    -------
    AudioCorpus
        The usable files, in sorted (folder) or manifest order, with ``skipped`` filled in.

    Raises
    ------
    FileNotFoundError
        ``root`` or the manifest does not exist.
    ValueError
        The manifest has no ``path`` column, the split is empty, the pattern is invalid, or no file at all
        is usable (the message summarises the reasons).
    """
    skipped: list[tuple[str, str]] = []
    entries, total, source = corpus_entries(root, manifest, label_pattern, split, sample_rate, skipped)
    if workers <= 0:
        workers = min(8, os.cpu_count() or 1)
    rescaled: list[tuple[str, float]] = []
    load = file_loader(sample_rate, min_samples, min_rms, rescaled)
    results = map_ordered(load, entries, workers)
    bar = tqdm(
        results,
        total=len(entries),
        desc="loading audio",
        unit="file",
        disable=not (progress and len(entries) > PROGRESS_MIN_FILES),
    )
    corpus = collect_corpus(entries, bar, skipped, total, source, sample_rate, _utterance)
    kept = {u.path for u in corpus.utterances}
    corpus.rescaled = sorted((p, peak) for p, peak in rescaled if p in kept)
    if corpus.rescaled:
        log.warning(
            "%s: scaled %d of %d files down to peak 1: their float samples went beyond [-1, 1] (largest peak %.3g)",
            source,
            len(corpus.rescaled),
            len(corpus),
            max(peak for _, peak in corpus.rescaled),
        )
    return corpus


def _utterance(entry: CorpusEntry, wave: np.ndarray) -> Utterance:
    segments = entry.segments
    if segments is not None:
        n = int(wave.shape[0])
        segments = [(s, min(e, n)) for s, e in segments]
    return Utterance(str(entry.path), entry.labels, segments, entry.split)


def collect_corpus(
    entries: Sequence[CorpusEntry],
    loaded: Iterable[tuple[np.ndarray | None, str]],
    skipped: list[tuple[str, str]],
    total: int,
    source: str,
    sample_rate: int,
    utterance: Callable[[CorpusEntry, np.ndarray], Utterance],
) -> AudioCorpus:
    """The corpus of the entries that loaded; the others are added to ``skipped`` and every skip is logged by
    name and reason, with a summary. Raises ValueError when nothing loaded."""
    utterances: list[Utterance] = []
    waves: list[np.ndarray] = []
    for entry, (wave, reason) in zip(entries, loaded, strict=True):
        if wave is None:
            skipped.append((str(entry.path), reason))
            continue
        utterances.append(utterance(entry, wave))
        waves.append(wave)

    for path, reason in skipped:
        log.warning("skipping %s: %s", path, reason)
    if skipped:
        log.warning("%s: %s", source, skip_summary(skipped, total))
    if not utterances:
        raise ValueError(f"no usable audio in {source}: {skip_summary(skipped, total)}")
    corpus = AudioCorpus(utterances, waves, sample_rate, skipped)
    log.info("loaded %s: %s", source, corpus.describe())
    return corpus
