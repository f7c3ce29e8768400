"""Segment a folder of words into one zero-padded WAV per syllable, with ``cuts.csv`` and ``manifest.csv``.

:func:`segment_corpus` applies :func:`vgim.data.segment.syllables.segment_syllables` to every word below a folder;
the ``manifest.csv`` it writes is loadable by :func:`vgim.data.corpus.load_corpus`, and the optional figures are
drawn by :func:`vgim.data.segment.plot.plot_segmentation`.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from vgim.audio import find_audio_files, write_audio
from vgim.data.corpus import SEGMENT_RATE
from vgim.data.segment.plot import plot_segmentation
from vgim.data.segment.syllables import SegmentParams, SegmentResult
from vgim.data.segment.words import SYLLABLE_PATTERN, WORD_PATTERN, read_words, split_of, word_labels
from vgim.frames import SAMPLE_RATE

__all__ = ["SegmentReport", "segment_corpus"]

log = logging.getLogger("vgim")


@dataclass
class SegmentReport:
    """Summary of :func:`segment_corpus`.

    Attributes
    ----------
    out_dir
        The output folder.
    n_files
        Words segmented.
    n_exact
        Words with exactly ``n_segments`` loud regions (cut at their dips, no fallback).
    n_fallback
        Words decided by the fallback rule.
    regions_found
        Number of loud regions -> number of words.
    lengths_ms
        Every syllable's length in milliseconds before padding, shape ``[n_files * n_segments]``.
    pad_length
        Common length of the written syllable files, in samples at ``sample_rate``.
    n_cropped
        Syllables longer than ``pad_length`` (only with ``pad_to``), cropped around their centre.
    sample_rate
        Rate of the written files and of the sample counts in ``cuts.csv``.
    n_segments
        Syllables per word.
    skipped
        ``(path, reason)`` for every file left out.
    figures
        PNG files written.
    """

    out_dir: Path
    n_files: int
    n_exact: int
    n_fallback: int
    regions_found: dict[int, int]
    lengths_ms: np.ndarray
    pad_length: int
    n_cropped: int
    sample_rate: int
    n_segments: int = 3
    skipped: list[tuple[str, str]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def length_stats(self) -> dict[str, float]:
        """Syllable lengths in ms: ``min``, ``p5``, ``p25``, ``median``, ``p75``, ``p95``, ``max``."""
        if self.lengths_ms.size == 0:
            return {}
        q = np.percentile(self.lengths_ms, [0, 5, 25, 50, 75, 95, 100])
        return dict(zip(("min", "p5", "p25", "median", "p75", "p95", "max"), (float(v) for v in q), strict=True))

    def describe(self) -> str:
        """A few lines: counts, region histogram, syllable length spread, padding, skipped files."""
        pct = 100 * self.n_exact / self.n_files if self.n_files else 0.0
        regions = ", ".join(f"{k}: {v}" for k, v in sorted(self.regions_found.items()))
        stats = ", ".join(f"{k} {v:.0f}" for k, v in self.length_stats().items())
        lines = [
            f"{self.n_files} words segmented into {self.lengths_ms.size} syllables ({self.out_dir})",
            f"exactly {self.n_segments} loud regions (cut at the dips): {self.n_exact} ({pct:.1f} %); "
            f"fallback rule: {self.n_fallback}",
            f"loud regions found -> words: {regions or 'none'}",
            f"syllable length (ms): {stats or 'n/a'}",
            f"padded to {self.pad_length} samples ({1000 * self.pad_length / self.sample_rate:.0f} ms) "
            f"at {self.sample_rate} Hz; cropped: {self.n_cropped}",
            f"skipped files: {len(self.skipped)}; figures: {len(self.figures)}",
        ]
        return "\n".join(lines)


@dataclass
class _Word:
    path: Path
    rel: str
    labels: dict[str, str]
    split: str
    syllables: list[str]


def _fit(wave: np.ndarray, length: int, pad: Literal["center", "end"]) -> tuple[np.ndarray, tuple[int, int], bool]:
    """Zero-pad (or crop) ``wave`` to ``length``; returns the new wave, the span of the original, cropped?"""
    n = int(wave.shape[0])
    if n > length:
        start = (n - length) // 2 if pad == "center" else 0
        return wave[start : start + length], (0, length), True
    offset = (length - n) // 2 if pad == "center" else 0
    out = np.zeros(length, dtype=np.float32)
    out[offset : offset + n] = wave
    return out, (offset, offset + n), False


def _collect_words(
    root: Path, label_pattern: str, syllable_pattern: str, n_segments: int, skipped: list[tuple[str, str]]
) -> list[_Word]:
    """The audio files under ``root`` whose names parse into ``n_segments`` syllables (others -> skipped)."""
    words: list[_Word] = []
    for f in find_audio_files(root):
        labels = word_labels(f.stem, label_pattern, syllable_pattern) if label_pattern else {}
        if labels is None:
            skipped.append((str(f), f"file name does not match label pattern {label_pattern}"))
            continue
        syllables = labels["syllables"].split("-") if "syllables" in labels else [""] * n_segments
        if len(syllables) != n_segments:
            skipped.append((str(f), f"word {labels.get('word')!r} has {len(syllables)} syllables, not {n_segments}"))
            continue
        words.append(_Word(f, f.relative_to(root).as_posix(), labels, split_of(f, root), syllables))
    return words


def _segment_words(
    words: list[_Word],
    params: SegmentParams,
    sample_rate: int,
    min_rms: float,
    progress: bool,
    workers: int,
    skipped: list[tuple[str, str]],
) -> list[tuple[_Word, np.ndarray, SegmentResult]]:
    """Read and segment every word; unusable files go to ``skipped``."""
    results = read_words(
        [w.path for w in words], sample_rate, params, min_rms=min_rms, progress=progress, workers=workers
    )
    done: list[tuple[_Word, np.ndarray, SegmentResult]] = []
    for w, res in zip(words, results, strict=True):
        if isinstance(res, str):
            skipped.append((str(w.path), res))
        elif res[1] is not None:
            done.append((w, res[0], res[1]))
    return done


def _write_syllables(
    out: Path,
    w: _Word,
    wave: np.ndarray,
    res: SegmentResult,
    pad_length: int,
    pad: Literal["center", "end"],
    sample_rate: int,
    syllable_pattern: str,
    with_split: bool,
    rows: list[dict[str, str]],
) -> int:
    """Write the padded syllable files of one word, append their manifest rows; returns how many were cropped."""
    rel = Path(w.rel)
    scale = SEGMENT_RATE / sample_rate
    extra = {k: v for k, v in w.labels.items() if k not in ("word", "syllables", "consonants", "vowels")}
    n_cropped = 0
    for k, ((s, e), syl) in enumerate(zip(res.segments, w.syllables, strict=True)):
        name = (rel.parent / f"{rel.stem}_s{k}{'_' + syl if syl else ''}.wav").as_posix()
        fitted, (a, b), cropped = _fit(wave[s:e], pad_length, pad)
        n_cropped += cropped
        write_audio(out / name, fitted, sample_rate)
        m = re.fullmatch(syllable_pattern, syl) if syl else None
        groups = m.groupdict() if m else {}
        row = {
            "path": name,
            "syllable": syl,
            "consonant": groups.get("consonant") or "",
            "vowel": groups.get("vowel") or "",
            "position": str(k),
            "word": w.labels.get("word", ""),
            "source": rel.stem,
            **extra,
        }
        if with_split:
            row["split"] = w.split
        a16 = round(a * scale)
        row["segments"] = f"{a16}:{max(round(b * scale), a16 + 1)}"
        rows.append(row)
    return n_cropped


def _cut_row(w: _Word, res: SegmentResult, sample_rate: int) -> dict[str, str]:
    return {
        "file": w.rel,
        "split": w.split,
        "word": w.labels.get("word", ""),
        **{f"cut{j + 1}": str(c) for j, c in enumerate(res.cuts)},
        "n_regions_found": str(res.n_regions_found),
        "fallback": str(int(res.fallback)),
        "threshold": f"{res.threshold:.5f}",
        **{f"len_s{j}": str(e - s) for j, (s, e) in enumerate(res.segments)},
        "sample_rate": str(sample_rate),
    }


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def segment_corpus(
    root: str | Path,
    out_dir: str | Path,
    *,
    label_pattern: str = WORD_PATTERN,
    syllable_pattern: str = SYLLABLE_PATTERN,
    params: SegmentParams | None = None,
    figures: bool | int = False,
    pad_to: int | None = None,
    pad: Literal["center", "end"] = "center",
    sample_rate: int = SAMPLE_RATE,
    min_rms: float = 1e-4,
    progress: bool = True,
    workers: int = 2,
) -> SegmentReport:
    """Segment every word under ``root`` and write one zero-padded WAV per syllable.

    Outputs in ``out_dir``:

    * ``<folder>/<stem>_s<k>_<syllable>.wav``, ``k`` = 0, 1, 2, in the same sub-folder as the word file below
      ``root`` (e.g. ``train/babidi_1.wav`` -> ``train/babidi_1_s0_ba.wav``), mono PCM_16 at ``sample_rate``.
      The ``split`` of a word is its first folder below ``root`` when that is one of :data:`SPLIT_FOLDERS`
      (``train``, ``test``, ...). Every syllable is
      zero-padded to a common length, the longest syllable or ``pad_to`` samples: with ``pad="center"``
      (default, as in the thesis) the zeros are split between front and back (the extra sample at the back),
      with ``pad="end"`` all zeros go at the end. Syllables longer than ``pad_to`` are cropped (centred crop
      for ``"center"``, the start kept for ``"end"``).
    * ``cuts.csv`` -- one row per word: ``file`` (relative to ``root``), ``split``, ``word``, ``cut1``..,
      ``n_regions_found``, ``fallback`` (0/1), ``threshold``, ``len_s0``.. (syllable lengths in samples) and
      ``sample_rate`` (the rate of all sample counts).
    * ``manifest.csv`` -- one row per syllable file: ``path`` (relative to ``out_dir``), ``syllable``,
      ``consonant``, ``vowel``, ``position`` (0-based), ``word``, ``source`` (the word file's stem), the other
      named groups of ``label_pattern`` (e.g. ``take``), ``split`` (only when some file has one) and
      ``segments`` (the span of the unpadded syllable inside the file, at 16 kHz). Load it with
      ``load_corpus(out_dir, manifest="manifest.csv")``.
    * ``figures/<folder>/<stem>.png`` -- :func:`plot_segmentation` for all words (``figures=True``) or the
      first ``figures`` words in sorted order (an int).

    Parameters
    ----------
    root
        Folder scanned recursively for audio files (e.g. the thesis corpus with ``train/`` and ``test/``).
    out_dir
        Output folder (created; existing files of the same name are overwritten).
    label_pattern
        Regular expression for the whole file stem; see :func:`word_labels`. Files that do not match, or whose
        word does not have ``n_segments`` syllables, are skipped. ``""`` accepts every file without labels
        (the syllable files are then named ``<stem>_s<k>.wav``).
    syllable_pattern
        Regular expression for one syllable of the ``word`` group.
    params
        Segmentation parameters (``None``: defaults).
    figures
        ``True`` for a figure per word, an int for the first N words (sorted order), ``False``/0 for none.
    pad_to
        Common length in samples; ``None`` uses the longest syllable.
    pad
        Where the zeros go: ``"center"`` or ``"end"``.
    sample_rate
        Files are read and resampled to this rate; segmentation and output use it.
    min_rms
        Files quieter than this RMS are skipped as silent.
    progress
        Show a tqdm progress bar for more than 50 files.
    workers
        Reader threads.

    Returns
    -------
    SegmentReport
        Counts, the syllable length spread and the skipped files (:meth:`SegmentReport.describe`).

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    ValueError
        Bad ``pad``/``pad_to``/``params``, or no usable file at all (the reasons are summarised).
    """
    p = params if params is not None else SegmentParams()
    p.validate()
    if pad not in ("center", "end"):
        raise ValueError(f"pad must be 'center' or 'end', got {pad!r}")
    if pad_to is not None and pad_to < 1:
        raise ValueError(f"pad_to must be >= 1 samples, got {pad_to}")
    root_path, out = Path(root), Path(out_dir)
    if not root_path.is_dir():
        raise FileNotFoundError(f"corpus folder {root_path} does not exist or is not a folder")

    skipped: list[tuple[str, str]] = []
    words = _collect_words(root_path, label_pattern, syllable_pattern, p.n_segments, skipped)
    done = _segment_words(words, p, sample_rate, min_rms, progress, workers, skipped)
    for path, reason in skipped:
        log.warning("skipping %s: %s", path, reason)
    if not done:
        reasons = sorted({r for _, r in skipped})
        raise ValueError(
            f"no usable word under {root_path}: {len(skipped)} files skipped (reasons: {reasons or 'none'})"
        )

    lengths = np.array([[e - s for s, e in res.segments] for _, _, res in done], dtype=np.int64)
    pad_length = int(pad_to) if pad_to is not None else int(lengths.max())
    n_fig = len(done) if figures is True else max(0, int(figures))
    has_split = any(w.split for w, _, _ in done)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    cut_rows: list[dict[str, str]] = []
    fig_paths: list[Path] = []
    n_cropped = 0
    for i, (w, wave, res) in enumerate(done):
        n_cropped += _write_syllables(
            out, w, wave, res, pad_length, pad, sample_rate, syllable_pattern, has_split, rows
        )
        cut_rows.append(_cut_row(w, res, sample_rate))
        if i < n_fig:
            png = out / "figures" / Path(w.rel).with_suffix(".png")
            fig_paths.append(plot_segmentation(wave, sample_rate, res, png, title=w.rel, labels=w.syllables))
    _write_csv(out / "manifest.csv", rows)
    _write_csv(out / "cuts.csv", cut_rows)

    regions: dict[int, int] = {}
    for _, _, res in done:
        regions[res.n_regions_found] = regions.get(res.n_regions_found, 0) + 1
    n_fallback = sum(res.fallback for _, _, res in done)
    report = SegmentReport(
        out_dir=out,
        n_files=len(done),
        n_exact=len(done) - n_fallback,
        n_fallback=n_fallback,
        regions_found=regions,
        lengths_ms=lengths.reshape(-1) * 1000.0 / sample_rate,
        pad_length=pad_length,
        n_cropped=n_cropped,
        sample_rate=sample_rate,
        n_segments=p.n_segments,
        skipped=skipped,
        figures=fig_paths,
    )
    log.info("segmented %s:\n%s", root_path, report.describe())
    return report
