"""Features and linear probes of the LibriSpeech recipe: every module of a feature source, phones per label
frame and speakers per utterance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vgim.evaluate.baselines import mfcc_features
from vgim.evaluate.frame_probe import AlignMode, align_features, frame_phone_probe
from vgim.evaluate.pooling import pool_utterance
from vgim.evaluate.probes import ProbeResult, linear_probe
from vgim.experiments.librispeech.inputs import Split
from vgim.frames import SAMPLE_RATE, FrameInfo
from vgim.model.stack import Stack

__all__ = ["TASKS", "Extract", "ProbeSettings", "SpeakerPool", "Task", "mfcc_extract", "probe_source", "stack_extract"]

Task = Literal["phone", "speaker"]
TASKS: tuple[Task, ...] = ("phone", "speaker")
SpeakerPool = Literal["mean", "last"]
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


def _collect(
    extract: Extract,
    frames: Sequence[FrameInfo],
    split: Split,
    *,
    align: AlignMode,
    speaker_pool: SpeakerPool,
    desc: str,
    progress: bool,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per module: the sampled label frames' features ``[N, C]`` and one pooled vector per utterance ``[U, C]``."""
    from tqdm.auto import tqdm

    n_modules = len(frames)
    rows: list[np.ndarray | None] = [None] * n_modules
    pooled: list[list[np.ndarray]] = [[] for _ in range(n_modules)]
    pos = 0
    utts = split.corpus.utterances
    for u, wave in enumerate(tqdm(split.corpus.waves, desc=desc, unit="utt", disable=not progress, leave=False)):
        feats = extract(wave)
        take = split.frames[u]
        for m in range(n_modules):
            try:
                aligned = align_features(feats[m], frames[m], int(split.phones[u].shape[0]), mode=align)
            except ValueError as err:
                raise ValueError(f"{utts[u].labels.get('utterance', utts[u].path)}: {err}") from err
            block = rows[m]
            if block is None:
                block = rows[m] = np.empty((split.n_frames, aligned.shape[1]), dtype=np.float32)
            block[pos : pos + take.shape[0]] = aligned[take]
            pooled[m].append(pool_utterance(feats[m], speaker_pool).astype(np.float32))
        pos += take.shape[0]
    return [r if r is not None else np.zeros((0, 0), np.float32) for r in rows], [np.stack(p) for p in pooled]


@dataclass(frozen=True)
class ProbeSettings:
    """The phone probe's schedule, the frame alignment and speaker pooling, and the probes' seed."""

    epochs: int
    batch_size: int
    lr: float
    align: AlignMode
    speaker_pool: SpeakerPool
    seed: int


def probe_source(
    name: str,
    extract: Extract,
    frames: Sequence[FrameInfo],
    train: Split,
    test: Split,
    settings: ProbeSettings,
    *,
    tasks: Sequence[Task] = TASKS,
    progress: bool,
) -> list[ProbeResult]:
    """Probe every module of one feature source for ``tasks``; rows named ``name`` (one module) or
    ``"<name> m<k>"``."""
    kw: dict[str, Any] = {"align": settings.align, "speaker_pool": settings.speaker_pool, "progress": progress}
    xtr, ptr = _collect(extract, frames, train, desc=f"features {name} (train)", **kw)
    xte, pte = _collect(extract, frames, test, desc=f"features {name} (test)", **kw)
    ytr, yte = train.frame_labels(), test.frame_labels()
    out: list[ProbeResult] = []
    for m in range(len(frames)):
        row = name if name == "MFCC" else f"{name} m{m + 1}"
        if "phone" in tasks:
            out.append(
                frame_phone_probe(
                    xtr[m],
                    ytr,
                    xte[m],
                    yte,
                    epochs=settings.epochs,
                    batch_size=settings.batch_size,
                    lr=settings.lr,
                    seed=settings.seed,
                    task="phone",
                    features=row,
                )
            )
        if "speaker" in tasks:
            out.append(
                linear_probe(
                    ptr[m], train.speakers, pte[m], test.speakers, task="speaker", features=row, seed=settings.seed
                )
            )
        xtr[m] = xte[m] = np.zeros((0, 0), np.float32)  # free this module's frames before the next one's probe
    return out
