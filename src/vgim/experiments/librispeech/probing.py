"""Features and linear probes of the LibriSpeech recipe: every module of a feature source, phones per label
frame and speakers per window (or utterance), as the :class:`~vgim.experiments.librispeech.protocol.ProbeSettings`
say."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vgim.evaluate.baselines import mfcc_features
from vgim.evaluate.frame_probe import align_features, frame_phone_probe
from vgim.evaluate.linear import adam_probe
from vgim.evaluate.pooling import pool_utterance
from vgim.evaluate.probes import ProbeResult, linear_probe
from vgim.experiments.librispeech.inputs import Split
from vgim.experiments.librispeech.protocol import ProbeSettings, SpeakerPool
from vgim.frames import SAMPLE_RATE, FrameInfo
from vgim.model.stack import Stack

__all__ = ["TASKS", "Extract", "Task", "mfcc_extract", "probe_source", "speaker_windows", "stack_extract"]

log = logging.getLogger("vgim")

Task = Literal["phone", "speaker"]
TASKS: tuple[Task, ...] = ("phone", "speaker")
#: ``extract(wave)``: one ``[time, channels]`` array per module of a feature source.
Extract = Callable[[np.ndarray], list[np.ndarray]]


def stack_extract(model: Stack) -> Extract:
    """The features of every module of ``model`` (16 kHz input)."""

    def extract(wave: np.ndarray) -> list[np.ndarray]:
        return [f.float().cpu().numpy() for f in model.extract_features(wave, SAMPLE_RATE)]

    return extract


def mfcc_extract(wave: np.ndarray) -> list[np.ndarray]:
    """The MFCC baseline as a one-module feature source (16 kHz input)."""
    return [mfcc_features(wave, SAMPLE_RATE)]


def speaker_windows(n_samples: int, window: int | None, *, full_only: bool = False) -> list[tuple[int, int]]:
    """The ``(start, end)`` sample spans of the speaker examples of an utterance of ``n_samples``.

    ``window=None``: the whole utterance. Else the non-overlapping windows ``[k W, (k + 1) W)`` that fit; an
    utterance shorter than one window is one (shorter) example, or none with ``full_only``.
    """
    if window is None:
        return [(0, n_samples)]
    n = n_samples // window
    if n == 0:
        return [] if full_only else [(0, n_samples)]
    return [(k * window, (k + 1) * window) for k in range(n)]


def _pool(feats: np.ndarray, pool: SpeakerPool) -> np.ndarray:
    return (feats.reshape(-1) if pool == "flat" else pool_utterance(feats, pool)).astype(np.float32)


@dataclass
class _Collected:
    """Per module: the sampled label frames' features ``[N, C]`` (``None``: module not collected) and one
    pooled vector per speaker example ``[E, C]``; the speaker of every example."""

    frames: list[np.ndarray | None]
    pooled: list[np.ndarray]
    speakers: list[str]


def _collect(
    extract: Extract,
    frames: Sequence[FrameInfo],
    split: Split,
    settings: ProbeSettings,
    *,
    phone_modules: Sequence[int],
    speakers: bool,
    desc: str,
    progress: bool,
) -> _Collected:
    """One pass over ``split``: the phone frames of ``phone_modules`` and (``speakers``) the speaker vectors of
    every module, each window encoded on its own."""
    from tqdm.auto import tqdm

    n_modules = len(frames)
    rows: list[np.ndarray | None] = [None] * n_modules
    pooled: list[list[np.ndarray]] = [[] for _ in range(n_modules)]
    who: list[str] = []
    pos = 0
    utts = split.corpus.utterances
    full_only = settings.speaker_pool == "flat"
    for u, wave in enumerate(tqdm(split.corpus.waves, desc=desc, unit="utt", disable=not progress, leave=False)):
        whole = settings.speaker_window is None and speakers
        feats = extract(wave) if phone_modules or whole else []
        take = split.frames[u]
        for m in phone_modules:
            try:
                aligned = align_features(
                    feats[m], frames[m], int(split.phones[u].shape[0]), mode=settings.align, pairing=settings.pairing
                )
            except ValueError as err:
                raise ValueError(f"{utts[u].labels.get('utterance', utts[u].path)}: {err}") from err
            block = rows[m]
            if block is None:
                block = rows[m] = np.empty((split.n_frames, aligned.shape[1]), dtype=np.float32)
            block[pos : pos + take.shape[0]] = aligned[take]
        pos += take.shape[0]
        if not speakers:
            continue
        for start, end in speaker_windows(wave.shape[0], settings.speaker_window, full_only=full_only):
            window_feats = feats if whole else extract(wave[start:end])
            for m in range(n_modules):
                pooled[m].append(_pool(window_feats[m], settings.speaker_pool))
            who.append(split.speakers[u])
    empty = np.zeros((0, 0), np.float32)
    return _Collected(rows, [np.stack(p) if p else empty for p in pooled], who)


def _module_chunks(channels: Sequence[int], n_frames: int, memory_bytes: float) -> list[list[int]]:
    """Modules grouped so that each group's float32 phone frames fit ``memory_bytes`` (one module at least)."""
    chunks: list[list[int]] = [[]]
    used = 0.0
    for m, c in enumerate(channels):
        size = 4.0 * n_frames * c
        if chunks[-1] and used + size > memory_bytes:
            chunks.append([])
            used = 0.0
        chunks[-1].append(m)
        used += size
    return chunks


def probe_source(
    name: str,
    extract: Extract,
    frames: Sequence[FrameInfo],
    train: Split,
    test: Split,
    settings: ProbeSettings,
    *,
    tasks: Sequence[Task] = TASKS,
    memory_gb: float = 16.0,
    progress: bool,
) -> list[ProbeResult]:
    """Probe every module of one feature source for ``tasks``; rows named ``name`` (one module) or
    ``"<name> m<k>"``.

    The phone frames of all modules of the source are held at once when they fit ``memory_gb`` (float32,
    train and test); else the modules are taken in groups that do, each group one more pass over the audio.
    """
    n_modules = len(frames)
    channels = [f.shape[1] for f in extract(np.zeros(max(settings.speaker_window or 0, 20480), np.float32))]
    groups = _module_chunks(channels, train.n_frames + test.n_frames, memory_gb * 2**30) if "phone" in tasks else []
    if len(groups) > 1:
        log.info("%s: phone frames of %d modules in %d passes (memory_gb=%g)", name, n_modules, len(groups), memory_gb)
    kw: dict[str, Any] = {"progress": progress}
    phone: dict[int, ProbeResult] = {}
    speaker: dict[int, ProbeResult] = {}
    ytr, yte = train.frame_labels(), test.frame_labels()
    utt_frames = [int(f.shape[0]) for f in train.frames]
    for g, modules in enumerate(groups or [[]]):
        with_speakers = "speaker" in tasks and g == 0
        if not modules and not with_speakers:
            continue
        part = f" {g + 1}/{len(groups)}" if len(groups) > 1 else ""
        kw["speakers"] = with_speakers
        ctr = _collect(extract, frames, train, settings, phone_modules=modules, desc=f"{name}{part} (train)", **kw)
        cte = _collect(extract, frames, test, settings, phone_modules=modules, desc=f"{name}{part} (test)", **kw)
        for m in modules:
            xtr, xte = ctr.frames[m], cte.frames[m]
            if xtr is None or xte is None:
                raise RuntimeError(f"{name}: module {m + 1}'s phone frames were not collected")
            phone[m] = frame_phone_probe(
                xtr,
                ytr,
                xte,
                yte,
                epochs=settings.epochs,
                batch_size=settings.batch_size,
                lr=settings.lr,
                standardise=settings.standardise,
                init=settings.init,
                groups=utt_frames,
                seed=settings.seed,
                task="phone",
                features=_row(name, m),
            )
            ctr.frames[m] = cte.frames[m] = None  # free this module's frames before the next one's probe
        if with_speakers:
            for m in range(n_modules):
                speaker[m] = _speaker_probe(ctr, cte, m, settings, _row(name, m))
    out: list[ProbeResult] = []
    for m in range(n_modules):
        out += [r for r in (phone.get(m), speaker.get(m)) if r is not None]
    return out


def _row(name: str, m: int) -> str:
    return name if name == "MFCC" else f"{name} m{m + 1}"


def _speaker_probe(train: _Collected, test: _Collected, m: int, settings: ProbeSettings, row: str) -> ProbeResult:
    if not test.speakers:
        raise ValueError(f"{row}: no speaker example in the test split (utterances shorter than the window?)")
    if settings.speaker_classifier == "lbfgs":
        return linear_probe(
            train.pooled[m],
            train.speakers,
            test.pooled[m],
            test.speakers,
            task="speaker",
            features=row,
            seed=settings.seed,
        )
    return adam_probe(
        train.pooled[m],
        train.speakers,
        test.pooled[m],
        test.speakers,
        epochs=settings.speaker_epochs,
        batch_size=settings.speaker_batch_size,
        lr=settings.speaker_lr,
        seed=settings.seed,
        standardise=settings.standardise,
        init=settings.init,
        task="speaker",
        features=row,
    )
