"""Training batches read from disk crop by crop, in ``DataLoader`` worker processes.

:class:`CropBatches` needs every training file decoded into memory first (LibriSpeech train-clean-100 is
about 23 GB as float32 at 16 kHz). :class:`StreamingBatches` draws exactly the same crops -- the same
step-seeded generator, the same draws in the same order -- but knows only each file's length (from its
header, read once by :func:`scan_files`) and reads just the samples a crop needs. :func:`iter_batches`
runs either source in ``DataLoader`` worker processes, so the next batches are being read, resampled and
augmented while the model trains on the current one.

A crop of a file at another rate than 16 kHz is placed on the file's 16 kHz time line (its length is
``ceil(frames * SAMPLE_RATE / rate)``, the length :func:`vgim.audio.read_audio` would give), and the native
samples under it, plus enough context for the resampling filter, are read and resampled with
:func:`vgim.audio.resample`. The read starts on the resampler's period (an input sample that falls exactly
on an output sample), so every output sample is computed from the same input samples with the same filter
taps as when the whole file is resampled.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from vgim.audio import AudioError, check_path, check_rate, peak_gain, resample
from vgim.data.batches import Batch, StepBatches, step_rng
from vgim.data.corpus import PROGRESS_MIN_FILES, CorpusEntry, corpus_entries, skip_summary
from vgim.frames import SAMPLE_RATE

if TYPE_CHECKING:
    from vgim.config import Config

__all__ = ["StreamFile", "StreamingBatches", "iter_batches", "scan_files", "streaming_batches"]

log = logging.getLogger("vgim")

#: Batches each ``DataLoader`` worker keeps ready ahead of the training loop.
PREFETCH_BATCHES = 4


@dataclass
class StreamFile:
    """One training file as the stream sees it (from its header; no audio decoded).

    Attributes
    ----------
    path
        The audio file.
    frames
        Length in samples at the file's own rate.
    rate
        The file's sample rate (Hz).
    samples
        Length in samples at the training rate, ``ceil(frames * sample_rate / rate)``: what crops are drawn over.
    labels
        Label name -> value, as :func:`vgim.data.corpus.load_corpus` gives them.
    gain
        Applied to every crop read: ``1 / peak`` for a float file whose samples go beyond ``[-1, 1]`` (found by
        one pass over the file at scan time), as :func:`vgim.audio.read_audio` scales it; else 1.
    """

    path: str
    frames: int
    rate: int
    samples: int
    labels: dict[str, str] = field(default_factory=dict)
    gain: float = 1.0


def _rates(rate: int, sample_rate: int) -> tuple[int, int]:
    """``(up, down)``: the reduced resampling factors from ``rate`` to ``sample_rate``."""
    g = math.gcd(rate, sample_rate)
    return sample_rate // g, rate // g


#: libsndfile subtypes whose samples can lie outside [-1, 1] (integer formats are scaled into the range).
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


def _peak(path: str) -> float:
    """The largest absolute mono sample of a file (channels averaged as in ``read_audio``), read in blocks."""
    peak = 0.0
    for block in sf.blocks(path, blocksize=1 << 16, dtype="float32", always_2d=True):
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        if mono.size:
            peak = max(peak, float(np.max(np.abs(mono))))
    return peak


def _probe(entry: CorpusEntry, sample_rate: int, min_samples: int) -> tuple[StreamFile | None, str]:
    try:
        check_path(entry.path)
        info = sf.info(str(entry.path))
        frames, rate = int(info.frames), int(info.samplerate)
        if frames > 0:
            check_rate(rate, entry.path)
    except AudioError as err:
        return None, err.reason
    except Exception as err:  # never crash for one bad file
        return None, f"unreadable: {err}"
    if frames <= 0 or rate <= 0:
        return None, "empty (0 samples)"
    up, down = _rates(rate, sample_rate)
    samples = -(-frames * up // down)
    if samples < min_samples:
        return None, f"shorter than one crop ({samples} < {min_samples} samples)"
    gain = 1.0
    if info.subtype in _FLOAT_SUBTYPES:
        try:
            peak = _peak(str(entry.path))
        except Exception as err:  # never crash for one bad file
            return None, f"unreadable: {err}"
        gain = peak_gain(peak)
        if gain != 1.0:
            log.warning("%s: samples peak at %.3g, outside [-1, 1]; scaled by 1/%.3g to peak 1", entry.path, peak, peak)
    return StreamFile(str(entry.path), frames, rate, samples, entry.labels, gain), ""


def scan_files(
    root: str | Path,
    *,
    manifest: str = "",
    label_pattern: str = "",
    split: str = "",
    sample_rate: int = SAMPLE_RATE,
    min_samples: int = 0,
    progress: bool = True,
    workers: int = 0,
) -> tuple[list[StreamFile], list[tuple[str, str]]]:
    """The files of a corpus with their lengths, from their headers (:func:`soundfile.info`).

    Takes the same arguments as :func:`vgim.data.corpus.load_corpus` and lists the same files in the same
    order, but decodes no audio, so it cannot see NaN/Inf values or silence (``min_rms``). Files that are
    unreadable, empty, shorter than ``min_samples`` (at ``sample_rate``), missing or mislabelled are
    skipped, each logged as a warning with its reason, then a summary with the count.

    Parameters
    ----------
    workers
        Header-reading threads; ``0`` picks ``min(8, cpu_count)``.

    Returns
    -------
    files, skipped
        The usable files and ``(path, reason)`` for every file left out.

    Raises
    ------
    FileNotFoundError
        ``root`` or the manifest does not exist.
    ValueError
        As :func:`load_corpus`, including when no file at all is usable.
    """
    skipped: list[tuple[str, str]] = []
    entries, total, source = corpus_entries(root, manifest, label_pattern, split, sample_rate, skipped)
    if workers <= 0:
        workers = min(8, os.cpu_count() or 1)

    def probe(entry: CorpusEntry) -> tuple[StreamFile | None, str]:
        return _probe(entry, sample_rate, min_samples)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        bar = tqdm(
            pool.map(probe, entries),
            total=len(entries),
            desc="reading audio headers",
            unit="file",
            disable=not (progress and len(entries) > PROGRESS_MIN_FILES),
        )
        results = list(zip(entries, bar, strict=True))
    files: list[StreamFile] = []
    for entry, (found, reason) in results:
        if found is None:
            skipped.append((str(entry.path), reason))
        else:
            files.append(found)
    for path, reason in skipped:
        log.warning("skipping %s: %s", path, reason)
    if skipped:
        log.warning("%s: %s", source, skip_summary(skipped, total))
    if not files:
        raise ValueError(f"no usable audio in {source}: {skip_summary(skipped, total)}")
    hours = sum(f.samples for f in files) / sample_rate / 3600
    log.info("streaming %s: %d files, %.1f h, %d skipped", source, len(files), hours, len(skipped))
    return files, skipped


class StreamingBatches(Dataset[Batch]):
    """Step-seeded random crops read from disk: the batches :class:`CropBatches` would give.

    Item ``step`` of this map-style dataset is the whole batch of that step for ``rank`` (see
    :meth:`batch`), so a ``DataLoader(dataset, batch_size=None, sampler=range(start, end))`` yields the
    training batches in order, whichever worker made them. For the same files (at ``sample_rate``),
    ``crop_samples``, ``batch_size``, ``seed``, ``speakers`` and ``augment``, ``batch(step, rank)`` equals
    ``CropBatches(waves, ...).batch(step, rank)`` sample for sample.

    Parameters
    ----------
    files
        The training files (:func:`scan_files`); at any sample rate.
    crop_samples, batch_size, seed, speakers, augment
        As :class:`CropBatches`: a file shorter than a crop is read whole and zero-padded at the end.
    sample_rate
        The training rate (Hz) every crop is resampled to.
    rank
        The rank whose batches ``dataset[step]`` returns (distributed training; 0 otherwise).
    """

    def __init__(
        self,
        files: Sequence[StreamFile],
        crop_samples: int,
        batch_size: int,
        seed: int = 0,
        speakers: Sequence[str] | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        sample_rate: int = SAMPLE_RATE,
        rank: int = 0,
    ) -> None:
        if not files:
            raise ValueError("no audio files to draw training crops from")
        if crop_samples < 1 or batch_size < 1:
            raise ValueError(f"crop_samples and batch_size must be >= 1, got {crop_samples} and {batch_size}")
        if speakers is not None and len(speakers) != len(files):
            raise ValueError(f"{len(speakers)} speakers for {len(files)} files")
        if rank < 0:
            raise ValueError(f"rank must be >= 0, got {rank}")
        self.files = list(files)
        self.crop_samples = crop_samples
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.sample_rate = sample_rate
        self.rank = rank
        self.speaker_ids: np.ndarray | None = None
        if speakers is not None:
            names = sorted(set(speakers))
            index = {s: i for i, s in enumerate(names)}
            self.speaker_ids = np.array([index[s] for s in speakers], dtype=np.int64)

    @property
    def steps_per_epoch(self) -> int:
        """Steps that draw as many crops as there are files: ``ceil(files / batch_size)``."""
        return -(-len(self.files) // self.batch_size)

    def __getitem__(self, step: int) -> Batch:
        return self.batch(int(step), self.rank)

    def batch(self, step: int, rank: int = 0) -> Batch:
        """The batch of ``step`` for process ``rank``: ``audio`` ``[batch, 1, crop_samples]``.

        The random draws are those of :meth:`CropBatches.batch`, in the same order: the files, then per
        row the crop start (only when the file is longer than a crop) and the augmentation.
        """
        rng = step_rng(self.seed, step, rank)
        idx = rng.integers(0, len(self.files), size=self.batch_size)
        out = np.zeros((self.batch_size, self.crop_samples), dtype=np.float32)
        for row, i in enumerate(idx):
            f = self.files[i]
            span = f.samples - self.crop_samples
            start = int(rng.integers(0, span + 1)) if span > 0 else 0
            crop = self.read_crop(f, start, min(self.crop_samples, f.samples - start))
            if self.augment is not None:
                crop = self.augment(crop, rng)
            out[row, : crop.shape[0]] = crop
        speakers = torch.from_numpy(self.speaker_ids[idx]) if self.speaker_ids is not None else None
        return Batch(torch.from_numpy(out).unsqueeze(1), speakers)

    def read_crop(self, f: StreamFile, start: int, length: int) -> np.ndarray:
        """Samples ``[start, start + length)`` of ``f`` at ``sample_rate``, mono, ``float32`` ``[length]``.

        A file that cannot be read here, or whose crop holds NaN/Inf, gives zeros (with a warning naming
        it): the batch stays a function of the step, and one damaged file does not end a long run.
        """
        try:
            crop = self._read(f, start, length)
        except Exception as err:  # never crash for one bad file
            log.warning("%s: unreadable crop at sample %d (%s); using silence", f.path, start, err)
            return np.zeros(length, dtype=np.float32)
        if not np.isfinite(crop).all():
            log.warning("%s: NaN or Inf in the crop at sample %d; using silence", f.path, start)
            return np.zeros(length, dtype=np.float32)
        if crop.shape[0] < length:  # the header promised more samples than the file holds
            crop = np.concatenate([crop, np.zeros(length - crop.shape[0], dtype=np.float32)])
        return crop

    def _read(self, f: StreamFile, start: int, length: int) -> np.ndarray:
        if f.rate == self.sample_rate:
            return _read_mono(f.path, start, start + length, f.gain)
        up, down = _rates(f.rate, self.sample_rate)
        # scipy's resample_poly filter reaches 10 * max(up, down) samples either side in the upsampled
        # signal, i.e. that / up input samples; one more covers the rounding of the output positions.
        margin_in = -(-10 * max(up, down) // up) + 1
        margin_out = -(-margin_in * up // down)
        # Output sample j sits at input position j * down / up. Starting the read at a multiple of ``up``
        # output samples (``down`` input samples) keeps every output on the whole file's grid and phase.
        first = max(0, (start - margin_out) // up) * up
        lo = first // up * down
        hi = min(f.frames, -(-(start + length) * down // up) + margin_in)
        wave = resample(_read_mono(f.path, lo, hi, f.gain), f.rate, self.sample_rate)
        return np.ascontiguousarray(wave[start - first : start - first + length], dtype=np.float32)


def _read_mono(path: str, start: int, stop: int, gain: float = 1.0) -> np.ndarray:
    """Frames ``[start, stop)`` of ``path`` as ``float32`` mono (channels averaged and ``gain`` applied as in
    ``read_audio``)."""
    data, _ = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    mono: np.ndarray = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if gain != 1.0:
        mono = mono * np.float32(gain)
    return np.ascontiguousarray(mono)


class _Steps(Dataset[Batch]):
    """Any :class:`StepBatches` as a map-style dataset: item ``step`` is ``source.batch(step, rank)``."""

    def __init__(self, source: StepBatches, rank: int) -> None:
        self.source = source
        self.rank = rank

    def __getitem__(self, step: int) -> Batch:
        return self.source.batch(int(step), self.rank)


def iter_batches(
    source: StepBatches,
    steps: range,
    *,
    workers: int = 0,
    rank: int = 0,
    pin_memory: bool = False,
    prefetch: int = PREFETCH_BATCHES,
) -> Iterator[Batch]:
    """The batches of ``steps``, in order, made by ``workers`` processes ahead of the consumer.

    Parameters
    ----------
    source
        :class:`StreamingBatches`, :class:`CropBatches` or anything with ``batch(step, rank)``; it is
        copied into each worker (forked, so in-memory waves are shared, not duplicated, on Linux).
    steps
        The steps to yield, e.g. ``range(start, end)``.
    workers
        ``DataLoader`` worker processes; ``0`` makes every batch in this process when it is asked for.
    rank
        The process rank in a distributed run (see :func:`vgim.data.batches.step_rng`).
    pin_memory
        Return batches in page-locked memory (for asynchronous copies to a CUDA device).
    prefetch
        Batches each worker keeps ready.

    Notes
    -----
    Batches are pure functions of (seed, step, rank), and the ``DataLoader`` returns them in sampler order,
    so the result does not depend on ``workers``. Workers live for this one pass over ``steps`` (a
    persistent pool would only help a loader iterated several times) and stop when it is exhausted.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if len(steps) == 0:
        return
    if workers == 0:
        for step in steps:
            yield source.batch(step, rank)
        return
    loader = DataLoader(
        _Steps(source, rank),
        batch_size=None,
        sampler=steps,
        num_workers=workers,
        prefetch_factor=prefetch,
        persistent_workers=False,
        pin_memory=pin_memory,
        # Its own generator: starting the workers must not consume the global torch RNG of the model.
        generator=torch.Generator().manual_seed(0),
    )
    yield from loader


def streaming_batches(
    cfg: Config, root: str, manifest: str, *, progress: bool = True, rank: int = 0
) -> StreamingBatches:
    """:class:`StreamingBatches` over the corpus ``cfg.data`` names (``root`` / ``manifest`` resolved).

    Skips the files :func:`scan_files` finds unusable (shorter than a crop unless ``data.pad_short``), and
    applies the augmentation and speaker ids ``cfg`` asks for, as
    :func:`vgim.data.source.batches_from_corpus` does for an in-memory corpus.
    """
    from vgim.data.augment import Augmenter

    d = cfg.data
    files, _ = scan_files(
        root,
        manifest=manifest,
        label_pattern=d.label_pattern,
        split=d.split,
        sample_rate=d.sample_rate,
        min_samples=0 if d.pad_short else d.crop_samples,
        progress=progress,
    )
    speakers = None
    if cfg.objective.negatives == "same_speaker":
        missing = [f.path for f in files if d.speaker_key not in f.labels]
        if missing:
            known = sorted({k for f in files for k in f.labels})
            raise KeyError(
                f"label {d.speaker_key!r} missing for {missing[0]} ({len(missing)} files); "
                f"labels in this corpus: {known or 'none'}"
            )
        speakers = [f.labels[d.speaker_key] for f in files]
    augment = Augmenter.from_config(d)
    return StreamingBatches(
        files,
        d.crop_samples,
        cfg.train.batch_size,
        seed=cfg.train.seed,
        speakers=speakers,
        augment=augment if augment.enabled else None,
        sample_rate=d.sample_rate,
        rank=rank,
    )
