"""Split three-syllable words into syllables with an amplitude envelope and an Otsu threshold.

The method follows the V-GIM thesis (section 4.1.1):

1. **Envelope** -- the maximum of ``|wave|`` over a sliding window of ``window_s`` (20 ms), sampled every
   ``hop_s`` (5 ms).
2. **Threshold** -- ``|wave|`` is cut into non-overlapping bins of ``bin_s``; the ``percentile`` (90th) of
   every bin gives one value per bin, and Otsu's method (:func:`skimage.filters.threshold_otsu`) on the
   histogram of those values gives the file's threshold between quiet (consonant closure) and loud (vowel)
   levels.
3. **Loud regions** -- runs of envelope frames above the threshold; runs separated by a dip shorter than
   ``min_gap_s`` are merged, runs shorter than ``min_region_s`` (a lone consonant burst) are dropped.
4. **Cuts** -- with exactly ``n_segments`` loud regions, one cut in every gap between consecutive regions,
   at the gap's deepest envelope point (the middle of the frames within ``dip_tolerance`` of the minimum).
   Otherwise (*fallback*) the cuts are the candidate dips closest to ``k / n_segments`` of the file
   (``k = 1 .. n_segments - 1``: one third and two thirds), each used once and kept in order. Candidates are
   the gap dips; when there are fewer gap dips than boundaries, local minima of the envelope with a
   prominence of at least ``min_prominence * threshold`` are added (a dip between two vowels that does not
   reach below the threshold). A boundary left without any candidate is cut at exactly its fraction.

The segments cover the whole file: ``[(0, cut1), (cut1, cut2), (cut2, n)]``, end exclusive, in samples at
the rate of the waveform given.

:func:`segment_corpus` applies this to a folder of words and writes one WAV per syllable, zero-padded to a
common length, with ``cuts.csv``, ``manifest.csv`` (loadable by :func:`vgim.data.corpus.load_corpus`) and
optional figures (:func:`plot_segmentation`).
"""

from __future__ import annotations

import csv
import itertools
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import find_peaks
from skimage.filters import threshold_otsu
from tqdm.auto import tqdm

from vgim.audio import AudioError, check_audio, find_audio_files, read_audio, write_audio
from vgim.data.corpus import SEGMENT_RATE

__all__ = [
    "SPLIT_FOLDERS",
    "SYLLABLE_PATTERN",
    "WORD_PATTERN",
    "SegmentParams",
    "SegmentReport",
    "SegmentResult",
    "amplitude_envelope",
    "otsu_threshold",
    "plot_segmentation",
    "segment_corpus",
    "segment_syllables",
    "word_labels",
]

log = logging.getLogger("vgim")

#: File stem of a word recording: ``babidi_1`` -> word ``babidi``, take ``1`` (the thesis corpus naming).
WORD_PATTERN = r"(?P<word>(?:[bdg][aiu])+)_(?P<take>\d+)"
#: One syllable of a word: a consonant followed by a vowel.
SYLLABLE_PATTERN = r"(?P<consonant>[bdg])(?P<vowel>[aiu])"
#: Folder names (first folder below the corpus root) taken as the ``split`` of the files inside.
SPLIT_FOLDERS: frozenset[str] = frozenset({"train", "test", "val", "valid", "validation", "dev"})

_PROGRESS_MIN_FILES = 50


@dataclass
class SegmentParams:
    """Parameters of :func:`segment_syllables` (durations in seconds).

    Attributes
    ----------
    window_s
        Length of the sliding window whose maximum of ``|wave|`` is the envelope (the thesis: 0.02 s).
    hop_s
        Hop between envelope frames; the cut points are placed on this grid.
    percentile
        Percentile of ``|wave|`` taken in every threshold bin (the thesis: the 90th).
    bin_s
        Length of the non-overlapping bins whose percentiles are thresholded with Otsu's method.
    otsu_bins
        Number of histogram bins for Otsu's method.
    n_segments
        Syllables per word.
    min_region_s
        Loud regions shorter than this are dropped (consonant bursts, clicks).
    min_gap_s
        Loud regions separated by a quiet gap shorter than this are merged (flicker inside a vowel).
    dip_tolerance
        Envelope frames within ``dip_tolerance * threshold`` of a gap's minimum are all "the dip"; the cut is
        at their middle (the max-filtered envelope has flat steps).
    min_prominence
        Fallback only, when there are fewer gap dips than boundaries: envelope minima whose prominence is at
        least ``min_prominence * threshold`` are candidate cuts too.

    Notes
    -----
    ``min_region_s`` was tuned on the thesis corpus (``docs/segmentation.md``): 0.08 s drops the voiced
    closure (prevoicing) before the first consonant, which often rises above the threshold for 30-70 ms,
    while real vowels last 100 ms or more.
    """

    window_s: float = 0.02
    hop_s: float = 0.005
    percentile: float = 90.0
    bin_s: float = 0.02
    otsu_bins: int = 64
    n_segments: int = 3
    min_region_s: float = 0.08
    min_gap_s: float = 0.015
    dip_tolerance: float = 0.05
    min_prominence: float = 0.5

    def validate(self) -> None:
        """Raise ValueError for impossible values (names the parameter)."""
        for name in ("window_s", "hop_s", "bin_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SegmentParams.{name} must be > 0, got {getattr(self, name)}")
        for name in ("min_region_s", "min_gap_s", "dip_tolerance", "min_prominence"):
            if getattr(self, name) < 0:
                raise ValueError(f"SegmentParams.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.percentile <= 100:
            raise ValueError(f"SegmentParams.percentile must be in [0, 100], got {self.percentile}")
        if self.n_segments < 1 or self.otsu_bins < 2:
            raise ValueError(
                f"SegmentParams.n_segments must be >= 1 and otsu_bins >= 2, got {self.n_segments}, {self.otsu_bins}"
            )


@dataclass
class SegmentResult:
    """Syllable segmentation of one word.

    Attributes
    ----------
    cuts
        The ``n_segments - 1`` interior cut points in samples, increasing.
    segments
        ``n_segments`` contiguous spans ``(start, end)`` in samples, end exclusive, covering ``[0, n)``.
    threshold
        The Otsu threshold on the envelope (amplitude, full scale 1.0).
    envelope
        Sliding-window maximum of ``|wave|``, shape ``[frames]``.
    envelope_times
        Centre sample of every envelope frame, shape ``[frames]`` (``int64``).
    regions
        Loud regions ``(start, end)`` in samples after merging and dropping, end exclusive.
    n_regions_found
        ``len(regions)``.
    fallback
        True when the number of loud regions was not ``n_segments`` and the ``k / n_segments`` rule decided.
    """

    cuts: list[int]
    segments: list[tuple[int, int]]
    threshold: float
    envelope: np.ndarray
    envelope_times: np.ndarray
    regions: list[tuple[int, int]]
    n_regions_found: int
    fallback: bool


def _frames(seconds: float, rate: float) -> int:
    return max(1, round(seconds * rate))


def _check_wave(wave: np.ndarray, sample_rate: int, source: str, min_samples: int) -> np.ndarray:
    if sample_rate <= 0:
        raise ValueError(f"{source}: sample_rate must be positive, got {sample_rate}")
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioError(source, f"expected a mono waveform of shape [samples], got shape {wave.shape}")
    check_audio(wave, source, min_samples=min_samples)
    return wave


def amplitude_envelope(
    wave: np.ndarray, sample_rate: int, window_s: float = 0.02, hop_s: float = 0.005
) -> tuple[np.ndarray, np.ndarray]:
    """Sliding-window maximum of ``|wave|``.

    Parameters
    ----------
    wave
        Mono waveform, shape ``[samples]``.
    sample_rate
        Sample rate in Hz.
    window_s, hop_s
        Window length and hop in seconds.

    Returns
    -------
    envelope : np.ndarray
        ``float64``, shape ``[frames]`` with ``frames = ceil(samples / hop)``; frame ``i`` is the maximum of
        ``|wave|`` over the window centred on sample ``i * hop``.
    times : np.ndarray
        ``int64`` centre sample of every frame, shape ``[frames]``.
    """
    win = _frames(window_s, sample_rate)
    hop = _frames(hop_s, sample_rate)
    full = maximum_filter1d(np.abs(np.asarray(wave, dtype=np.float64)), size=win, mode="constant", cval=0.0)
    times = np.arange(0, full.shape[0], hop, dtype=np.int64)
    return full[times], times


def otsu_threshold(
    wave: np.ndarray, sample_rate: int, bin_s: float = 0.02, percentile: float = 90.0, nbins: int = 64
) -> float:
    """Per-file loudness threshold: Otsu's method on the per-bin percentiles of ``|wave|``.

    Parameters
    ----------
    wave
        Mono waveform, shape ``[samples]`` (at least two bins long).
    sample_rate
        Sample rate in Hz.
    bin_s
        Bin length in seconds; an incomplete last bin is ignored.
    percentile
        Percentile of ``|wave|`` per bin, in ``[0, 100]``.
    nbins
        Histogram bins for :func:`skimage.filters.threshold_otsu`.

    Returns
    -------
    float
        The threshold, placed midway between the largest bin value Otsu's method assigns to the quiet class and
        the smallest one it assigns to the loud class (the common value when all bins are equal, e.g. silence).
    """
    size = _frames(bin_s, sample_rate)
    n_bins = int(wave.shape[0]) // size
    if n_bins < 2:
        raise ValueError(f"need at least 2 bins of {size} samples for a threshold, got {wave.shape[0]} samples")
    bins = np.abs(np.asarray(wave[: n_bins * size], dtype=np.float64)).reshape(n_bins, size)
    values = np.percentile(bins, percentile, axis=1)
    t = float(threshold_otsu(values, nbins=nbins))
    # Every threshold inside an empty stretch of the histogram splits the values the same way; skimage returns
    # the lowest such bin centre (just above the quiet class). Use the midpoint between the two classes.
    below, above = values[values <= t], values[values > t]
    if below.size and above.size:
        t = float(below.max() + above.min()) / 2
    return t


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean ``[n]`` array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _loud_regions(
    envelope: np.ndarray, threshold: float, min_gap: int, min_region: int
) -> tuple[np.ndarray, np.ndarray]:
    """Runs of ``envelope > threshold`` (in frames), gaps shorter than ``min_gap`` merged, short runs dropped."""
    starts, ends = _runs(envelope > threshold)
    if starts.size > 1:
        keep_gap = (starts[1:] - ends[:-1]) >= min_gap
        starts = starts[np.concatenate(([True], keep_gap))]
        ends = ends[np.concatenate((keep_gap, [True]))]
    long = (ends - starts) >= min_region
    return starts[long], ends[long]


def _dip(envelope: np.ndarray, lo: int, hi: int, tolerance: float) -> int:
    """Frame index of the deepest point of ``envelope[lo:hi]`` (middle of the near-minimum frames)."""
    gap = envelope[lo:hi]
    near = np.flatnonzero(gap <= gap.min() + tolerance)
    return lo + int(near[near.shape[0] // 2])


def _fallback_cuts(dips: list[int], n: int, n_segments: int) -> list[int]:
    """Fallback cuts: the candidate ``dips`` (samples) closest to ``k * n / n_segments``, ``k = 1 .. n_segments-1``.

    Every dip is used at most once and the cuts stay increasing: as many boundaries as possible get a dip
    (all of them when there are enough), by the order-preserving assignment with the smallest total distance
    to the targets; boundaries left without a dip are cut at exactly their fraction of the file.
    """
    targets = [k * n / n_segments for k in range(1, n_segments)]
    # Only the len(targets) + 1 dips nearest to each target can matter; this keeps the search tiny.
    near = {d for t in targets for d in sorted(set(dips), key=lambda d: abs(d - t))[: len(targets) + 1]}
    dips = sorted(near)
    n_use = min(len(dips), len(targets))
    best: tuple[float, list[int]] | None = None
    # Choose which targets get a dip and which dips they get (both in order); tiny search for 3 syllables.
    for tsel in itertools.combinations(range(len(targets)), n_use):
        for dsel in itertools.combinations(range(len(dips)), n_use):
            cuts = [round(t) for t in targets]
            for ti, di in zip(tsel, dsel, strict=True):
                cuts[ti] = dips[di]
            if any(b <= a for a, b in itertools.pairwise(cuts)):
                continue
            cost = sum(abs(cuts[ti] - targets[ti]) for ti in tsel)
            if best is None or cost < best[0]:
                best = (cost, cuts)
    return best[1] if best is not None else [round(t) for t in targets]


def segment_syllables(
    wave: np.ndarray,
    sample_rate: int,
    params: SegmentParams | None = None,
    *,
    source: str | Path = "waveform",
) -> SegmentResult:
    """Split one word into ``params.n_segments`` syllables (see the module docstring for the method).

    Parameters
    ----------
    wave
        Mono waveform, shape ``[samples]``, finite, at least two threshold bins and ``n_segments`` samples
        long.
    sample_rate
        Sample rate in Hz; all outputs are in samples at this rate.
    params
        Window, threshold and fallback parameters; ``None`` uses the defaults.
    source
        File name (or description) used in error messages.

    Returns
    -------
    SegmentResult
        Cuts, contiguous segments covering ``[0, samples)``, threshold, envelope and diagnostics.

    Raises
    ------
    vgim.audio.AudioError
        (a ValueError) naming ``source``: not 1-D, empty, NaN/Inf, or too short to segment.
    ValueError
        Invalid ``params`` or ``sample_rate``.
    """
    p = params if params is not None else SegmentParams()
    p.validate()
    bin_len = _frames(p.bin_s, sample_rate) if sample_rate > 0 else 1
    wave = _check_wave(wave, sample_rate, str(source), max(2 * bin_len, p.n_segments))
    n = int(wave.shape[0])
    hop = _frames(p.hop_s, sample_rate)

    envelope, times = amplitude_envelope(wave, sample_rate, p.window_s, p.hop_s)
    threshold = otsu_threshold(wave, sample_rate, p.bin_s, p.percentile, p.otsu_bins)
    min_gap = max(1, round(p.min_gap_s * sample_rate / hop))
    min_region = max(1, round(p.min_region_s * sample_rate / hop))
    starts, ends = _loud_regions(envelope, threshold, min_gap, min_region)
    tol = p.dip_tolerance * threshold
    dips = [_dip(envelope, int(e), int(s), tol) for e, s in zip(ends[:-1], starts[1:], strict=True)]
    dip_samples = [int(times[d]) for d in dips]

    fallback = starts.shape[0] != p.n_segments
    if not fallback:
        cuts = dip_samples
    else:
        if len(dip_samples) < p.n_segments - 1:
            minima, _ = find_peaks(-envelope, prominence=max(p.min_prominence * threshold, 1e-12))
            dip_samples = dip_samples + [int(times[i]) for i in minima]
        cuts = _fallback_cuts(dip_samples, n, p.n_segments)
    # Keep every segment non-empty even for degenerate inputs.
    for i in range(len(cuts)):
        cuts[i] = min(max(cuts[i], (cuts[i - 1] + 1) if i else 1), n - (len(cuts) - i))
    bounds = [0, *cuts, n]
    regions = [(int(times[s]), min(int(times[e - 1]) + hop, n)) for s, e in zip(starts, ends, strict=True)]
    return SegmentResult(
        cuts=cuts,
        segments=[(bounds[i], bounds[i + 1]) for i in range(p.n_segments)],
        threshold=threshold,
        envelope=envelope,
        envelope_times=times,
        regions=regions,
        n_regions_found=len(regions),
        fallback=fallback,
    )


# ---------------------------------------------------------------------------------------------------------
# Figures


def plot_segmentation(
    wave: np.ndarray,
    sample_rate: int,
    result: SegmentResult,
    path: str | Path,
    title: str = "",
    labels: list[str] | None = None,
) -> Path:
    """Save a PNG of the waveform with its envelope, threshold, loud regions and cuts.

    Parameters
    ----------
    wave
        The segmented waveform, shape ``[samples]``.
    sample_rate
        Its sample rate in Hz (the time axis is in seconds).
    result
        The output of :func:`segment_syllables` for ``wave``.
    path
        Output PNG (parent folders are created).
    title
        Figure title; the number of loud regions and whether the fallback decided are appended.
    labels
        Optional syllable names written above the segments.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(wave.shape[0]) / sample_rate
    fig: Figure = plt.figure(figsize=(9, 3.2), dpi=80)
    try:
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(t, wave, color="0.6", linewidth=0.4, label="waveform")
        ax.plot(result.envelope_times / sample_rate, result.envelope, color="tab:red", linewidth=1.0, label="envelope")
        ax.axhline(result.threshold, color="tab:blue", linestyle="--", linewidth=1.0, label="threshold")
        for i, (s, e) in enumerate(result.regions):
            ax.axvspan(
                s / sample_rate, e / sample_rate, color="tab:orange", alpha=0.12, label="loud" if i == 0 else None
            )
        for i, c in enumerate(result.cuts):
            ax.axvline(c / sample_rate, color="black", linewidth=1.5, label="cut" if i == 0 else None)
        top = float(max(np.abs(wave).max(), result.threshold)) * 1.1 or 1.0
        if labels:
            for (s, e), name in zip(result.segments, labels, strict=False):
                ax.text((s + e) / 2 / sample_rate, top * 0.92, name, ha="center", va="top", fontsize=11)
        ax.set_ylim(-top, top)
        ax.set_xlim(0, wave.shape[0] / sample_rate)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("amplitude (full scale)")
        how = "fallback 1/3-2/3 rule" if result.fallback else "dips between loud regions"
        ax.set_title(f"{title}  [{result.n_regions_found} loud regions; {how}]".strip(), fontsize=10)
        ax.legend(loc="lower right", fontsize=7, ncol=5)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------
# Folders


def word_labels(
    stem: str, label_pattern: str = WORD_PATTERN, syllable_pattern: str = SYLLABLE_PATTERN
) -> dict[str, str] | None:
    """Labels parsed from a file stem such as ``babidi_1``.

    Parameters
    ----------
    stem
        File name without extension.
    label_pattern
        Regular expression matched against the whole stem; its named groups become labels. A ``word`` group
        is split into syllables with ``syllable_pattern``.
    syllable_pattern
        Regular expression for one syllable, with optional ``consonant`` and ``vowel`` groups; the word must
        be an exact sequence of its matches.

    Returns
    -------
    dict or None
        ``None`` when the stem (or its word) does not match. Otherwise the named groups plus, with a ``word``
        group, ``syllables`` (``"ba-bi-di"``), ``consonants`` (``"b-b-d"``) and ``vowels`` (``"a-i-i"``).
    """
    m = re.fullmatch(label_pattern, stem)
    if m is None:
        return None
    labels = {k: (v or "") for k, v in m.groupdict().items()}
    word = labels.get("word")
    if word is None:
        return labels
    syl = list(re.finditer(syllable_pattern, word))
    if not syl or "".join(s.group(0) for s in syl) != word:
        return None
    labels["syllables"] = "-".join(s.group(0) for s in syl)
    labels["consonants"] = "-".join(s.groupdict().get("consonant") or "" for s in syl)
    labels["vowels"] = "-".join(s.groupdict().get("vowel") or "" for s in syl)
    return labels


def _split_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 and parts[0].lower() in SPLIT_FOLDERS else ""


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
        words.append(_Word(f, f.relative_to(root).as_posix(), labels, _split_of(f, root), syllables))
    return words


def _read_words(
    paths: Sequence[Path],
    sample_rate: int,
    params: SegmentParams | None,
    *,
    segment: bool = True,
    min_rms: float = 1e-4,
    progress: bool = True,
    workers: int = 2,
    desc: str = "segmenting",
) -> list[tuple[np.ndarray, SegmentResult | None] | str]:
    """Read (and segment) every file with threads, in order; a string instead of a result is a skip reason.

    Shared by :func:`segment_corpus` and :func:`vgim.data.thesis.load_thesis_corpus`. Files are read with
    :func:`vgim.audio.read_audio` at ``sample_rate`` and checked with :func:`vgim.audio.check_audio`.
    """

    def work(path: Path) -> tuple[np.ndarray, SegmentResult | None] | str:
        try:
            wave = read_audio(path, sample_rate)
            check_audio(wave, path, min_rms=min_rms)
            return wave, (segment_syllables(wave, sample_rate, params, source=path) if segment else None)
        except AudioError as err:
            return err.reason
        except Exception as err:  # never crash for one bad file
            return f"unreadable: {type(err).__name__}: {err}"

    show = progress and len(paths) > _PROGRESS_MIN_FILES
    if workers <= 1 or len(paths) <= 1:
        return list(tqdm(map(work, paths), total=len(paths), desc=desc, unit="file", disable=not show))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(work, paths), total=len(paths), desc=desc, unit="file", disable=not show))


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
    results = _read_words(
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
    sample_rate: int = 16000,
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
