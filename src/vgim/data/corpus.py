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

import csv
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vgim.audio import AUDIO_EXTENSIONS, AudioError, check_audio, check_path, find_audio_files, read_audio

__all__ = ["SEGMENT_RATE", "AudioCorpus", "MissingLabelError", "Utterance", "load_corpus"]

log = logging.getLogger("vgim")

#: Sample rate (Hz) of the ``segments`` column in manifests.
SEGMENT_RATE = 16000

#: Show a progress bar only for corpora with more files than this.
_PROGRESS_MIN_FILES = 50

_RESERVED_COLUMNS = ("path", "split", "segments")


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
        return AudioCorpus(
            utterances=[self.utterances[i] for i in keep],
            waves=[self.waves[i] for i in keep],
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


@dataclass
class _Entry:
    """A candidate file before loading."""

    path: Path
    labels: dict[str, str]
    segments: list[tuple[int, int]] | None = None
    split: str = ""


def _reason_kind(reason: str) -> str:
    """Short category of a skip reason for the summary (text before the first ``":"`` or ``" ("``)."""
    cut = [i for i in (reason.find(":"), reason.find(" (")) if i > 0]
    return reason[: min(cut)] if cut else reason


def _summary(skipped: list[tuple[str, str]], total: int) -> str:
    kinds = Counter(_reason_kind(r) for _, r in skipped)
    reasons = ", ".join(f"{k}: {n}" for k, n in kinds.most_common())
    return f"skipped {len(skipped)} of {total} files (reasons: {reasons or 'none'})"


def _compile_pattern(label_pattern: str) -> re.Pattern[str] | None:
    if not label_pattern:
        return None
    try:
        pattern = re.compile(label_pattern)
    except re.error as err:
        raise ValueError(f"invalid label_pattern {label_pattern!r}: {err}") from err
    if not pattern.groupindex:
        log.warning("label_pattern %r has no named groups (?P<name>...): no labels will be parsed", label_pattern)
    return pattern


def _pattern_labels(pattern: re.Pattern[str], stem: str) -> dict[str, str] | None:
    m = pattern.fullmatch(stem)
    if m is None:
        return None
    return {k: (v if v is not None else "") for k, v in m.groupdict().items()}


def _mismatch_reason(pattern: re.Pattern[str]) -> str:
    return f"file name does not match label pattern {pattern.pattern}"


def _parse_segments(text: str) -> list[tuple[int, int]]:
    """Parse ``"s0:e0;s1:e1;..."`` into ``[(s0, e0), ...]``; raises ValueError on malformed input."""
    out: list[tuple[int, int]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        start_text, sep, end_text = part.partition(":")
        if not sep:
            raise ValueError(f"{part!r} is not start:end")
        start, end = int(start_text), int(end_text)
        if start < 0 or end <= start:
            raise ValueError(f"{part!r} needs 0 <= start < end")
        out.append((start, end))
    if not out:
        raise ValueError("no segment")
    return out


def _scale_segments(segments: list[tuple[int, int]], sample_rate: int) -> list[tuple[int, int]]:
    if sample_rate == SEGMENT_RATE:
        return list(segments)
    r = sample_rate / SEGMENT_RATE
    return [(round(s * r), max(round(e * r), round(s * r) + 1)) for s, e in segments]


def _folder_entries(
    root: Path, pattern: re.Pattern[str] | None, skipped: list[tuple[str, str]]
) -> tuple[list[_Entry], int]:
    if not root.is_dir():
        raise ValueError(
            f"corpus root {root} is a file, not a folder of audio (for a CSV manifest keep the folder as the "
            "root and give the CSV as the manifest: data.manifest or --manifest)"
        )
    broken: list[Path] = []
    files = find_audio_files(root, broken=broken)
    for link in broken:
        skipped.append((str(link), f"broken symbolic link (its target {os.readlink(link)} does not exist)"))
    entries: list[_Entry] = []
    for f in files:
        labels: dict[str, str] = {}
        if pattern is not None:
            parsed = _pattern_labels(pattern, f.stem)
            if parsed is None:
                skipped.append((str(f), _mismatch_reason(pattern)))
                continue
            labels = parsed
        entries.append(_Entry(path=f, labels=labels))
    return entries, len(files) + len(broken)


def _resolve_manifest(root: Path, manifest: str) -> Path:
    path = Path(manifest)
    if not path.is_absolute() and not path.exists():
        path = root / manifest
    if not path.is_file():
        raise FileNotFoundError(f"manifest {manifest} not found (also looked for {root / manifest})")
    return path


def _read_manifest(manifest_path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The columns and ``(line, row)`` of every row of a CSV manifest.

    Raises ValueError naming the file: not UTF-8, no ``path`` column, a duplicate column, or a ragged row
    (more or fewer cells than the header: an unquoted comma in a path, a cell lost).
    """
    try:
        with manifest_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            columns = [c.strip() for c in header]
            raw = [(reader.line_num, cells) for cells in reader]
    except UnicodeDecodeError as err:
        raise ValueError(f"manifest {manifest_path} is not UTF-8 text ({err}); save it as UTF-8") from err
    except csv.Error as err:
        raise ValueError(f"manifest {manifest_path}: not a readable CSV file ({err})") from err
    if "path" not in columns:
        raise ValueError(f"manifest {manifest_path} has no 'path' column; columns found: {columns}")
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        raise ValueError(f"manifest {manifest_path}: duplicate column(s) {dupes}")
    rows: list[tuple[int, dict[str, str]]] = []
    for line, cells in raw:
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) != len(columns):
            raise ValueError(
                f"manifest {manifest_path} line {line}: {len(cells)} cells but the header has {len(columns)} "
                f"({', '.join(columns)}); quote cells that contain commas"
            )
        rows.append((line, {k: v.strip() for k, v in zip(columns, cells, strict=True) if k}))
    return columns, rows


def _check_manifest_rows(manifest_path: Path, rows: list[tuple[int, dict[str, str]]]) -> None:
    """Refuse a file listed on several rows: with different labels the corpus would hold both, and in two
    splits the probe would be scored on its own training data."""
    base = manifest_path.parent
    seen: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        rel = row.get("path", "")
        if not rel:
            continue
        key = os.path.normpath(Path(rel) if Path(rel).is_absolute() else (base / rel).absolute())
        if key not in seen:
            seen[key] = (line, row)
            continue
        first_line, first = seen[key]
        if first.get("split", "") != row.get("split", ""):
            raise ValueError(
                f"manifest {manifest_path}: {rel} is in split {first.get('split', '')!r} (line {first_line}) and in "
                f"split {row.get('split', '')!r} (line {line}); a file in both the training and the test split "
                "makes a probe score on its own training data"
            )
        raise ValueError(
            f"manifest {manifest_path}: {rel} is listed twice (lines {first_line} and {line}); give each file one row"
        )


def _manifest_entries(
    manifest_path: Path,
    pattern: re.Pattern[str] | None,
    split: str,
    sample_rate: int,
    skipped: list[tuple[str, str]],
) -> tuple[list[_Entry], int]:
    columns, rows = _read_manifest(manifest_path)
    _check_manifest_rows(manifest_path, rows)
    label_cols = [c for c in columns if c not in _RESERVED_COLUMNS and c]
    if split and "split" in columns:
        present = sorted({r.get("split", "") for _, r in rows})
        rows = [(line, r) for line, r in rows if r.get("split", "") == split]
        if not rows:
            raise ValueError(f"manifest {manifest_path} has no row with split {split!r}; splits found: {present}")
    base = manifest_path.parent
    entries: list[_Entry] = []
    empty: dict[str, list[int]] = {}
    for line, row in rows:
        rel = row["path"]
        if not rel:
            skipped.append((f"{manifest_path} (line {line}: empty path)", "empty path"))
            continue
        path = Path(rel) if Path(rel).is_absolute() else base / rel
        labels: dict[str, str] = {}
        if pattern is not None:
            parsed = _pattern_labels(pattern, path.stem)
            if parsed is None:
                skipped.append((str(path), _mismatch_reason(pattern)))
                continue
            labels.update(parsed)
        for c in label_cols:
            if row.get(c, ""):
                labels[c] = row[c]
            else:  # an empty cell is no label, never a class named ""
                labels.pop(c, None)
                empty.setdefault(c, []).append(line)
        segments: list[tuple[int, int]] | None = None
        seg_text = row.get("segments", "")
        if seg_text:
            try:
                segments = _scale_segments(_parse_segments(seg_text), sample_rate)
            except ValueError as err:
                skipped.append((str(path), f"malformed segments {seg_text!r}: {err}"))
                continue
        try:
            check_path(path)
        except AudioError as err:
            skipped.append((str(path), err.reason))
            continue
        entries.append(_Entry(path=path, labels=labels, segments=segments, split=row.get("split", "")))
    for c, lines in empty.items():
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        log.warning(
            "manifest %s: %d row(s) leave label column %r empty (line %s); those files have no %r label",
            manifest_path,
            len(lines),
            c,
            shown,
            c,
        )
    return entries, len(rows)


def _loader(
    sample_rate: int, min_samples: int, min_rms: float, rescaled: list[tuple[str, float]] | None = None
) -> Callable[[_Entry], tuple[np.ndarray | None, str]]:
    def load(entry: _Entry) -> tuple[np.ndarray | None, str]:
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


def _map_ordered(
    fn: Callable[[_Entry], tuple[np.ndarray | None, str]], entries: list[_Entry], workers: int
) -> Iterator[tuple[np.ndarray | None, str]]:
    if workers <= 1 or len(entries) <= 1:
        yield from map(fn, entries)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, entries)


def _corpus_entries(
    root: str | Path,
    manifest: str,
    label_pattern: str,
    split: str,
    sample_rate: int,
    skipped: list[tuple[str, str]],
) -> tuple[list[_Entry], int, str]:
    """The candidate files of a corpus (folder or manifest mode), before any audio is read.

    Returns the entries, the number of files considered (including those already appended to ``skipped``)
    and a description of the source for log messages. Raises as :func:`load_corpus` does.
    """
    from vgim.config import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:  # once here, not once per file
        raise ValueError(f"sample_rate must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got {sample_rate}")
    root_path = Path(root)
    if not root_path.exists():
        raise FileNotFoundError(f"corpus root {root_path} does not exist")
    pattern = _compile_pattern(label_pattern)
    if manifest:
        manifest_path = _resolve_manifest(root_path, manifest)
        entries, total = _manifest_entries(manifest_path, pattern, split, sample_rate, skipped)
        return entries, total, f"manifest {manifest_path}"
    entries, total = _folder_entries(root_path, pattern, skipped)
    if total == 0:
        raise ValueError(f"no audio files found under {root_path} (extensions: {', '.join(sorted(AUDIO_EXTENSIONS))})")
    return entries, total, str(root_path)


def load_corpus(
    root: str | Path,
    *,
    manifest: str = "",
    label_pattern: str = "",
    split: str = "",
    sample_rate: int = 16000,
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
    entries, total, source = _corpus_entries(root, manifest, label_pattern, split, sample_rate, skipped)
    if workers <= 0:
        workers = min(8, os.cpu_count() or 1)
    rescaled: list[tuple[str, float]] = []
    load = _loader(sample_rate, min_samples, min_rms, rescaled)
    results = _map_ordered(load, entries, workers)
    bar = tqdm(
        results,
        total=len(entries),
        desc="loading audio",
        unit="file",
        disable=not (progress and len(entries) > _PROGRESS_MIN_FILES),
    )
    corpus = _collect(entries, bar, skipped, total, source, sample_rate, _utterance)
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


def _utterance(entry: _Entry, wave: np.ndarray) -> Utterance:
    segments = entry.segments
    if segments is not None:
        n = int(wave.shape[0])
        segments = [(s, min(e, n)) for s, e in segments]
    return Utterance(str(entry.path), entry.labels, segments, entry.split)


def _collect(
    entries: Sequence[_Entry],
    loaded: Iterable[tuple[np.ndarray | None, str]],
    skipped: list[tuple[str, str]],
    total: int,
    source: str,
    sample_rate: int,
    utterance: Callable[[_Entry, np.ndarray], Utterance],
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
        log.warning("%s: %s", source, _summary(skipped, total))
    if not utterances:
        raise ValueError(f"no usable audio in {source}: {_summary(skipped, total)}")
    corpus = AudioCorpus(utterances, waves, sample_rate, skipped)
    log.info("loaded %s: %s", source, corpus.describe())
    return corpus
