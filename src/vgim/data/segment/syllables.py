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
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import find_peaks
from skimage.filters import threshold_otsu

from vgim.audio import AudioError, check_audio

__all__ = ["SegmentParams", "SegmentResult", "amplitude_envelope", "otsu_threshold", "segment_syllables"]


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
