"""Inputs of the LibriSpeech recipe: path checks, the utterances of a split file, their phone labels and the
sampled label frames of the phone probe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgim.data.corpus import AudioCorpus
from vgim.data.librispeech import corpus_alignments, load_librispeech, subset_dir

__all__ = ["Split", "check_inputs", "load_split"]


@dataclass
class Split:
    """One side of the probe: audio, phone labels, speakers and the label frames the phone probe uses."""

    corpus: AudioCorpus
    phones: list[np.ndarray]  # [U] int64 [L_u]
    speakers: list[str]
    frames: list[np.ndarray]  # [U] sorted indices into phones[u]: the sampled label frames

    @property
    def n_frames(self) -> int:
        return sum(int(f.shape[0]) for f in self.frames)

    def frame_labels(self) -> np.ndarray:
        return np.concatenate([p[f] for p, f in zip(self.phones, self.frames, strict=True)])


def check_inputs(root: Path, subset: str, files: dict[str, Path]) -> None:
    """Fail before any work when a path is wrong, naming every missing one."""
    missing = [f"{what} {path}" for what, path in files.items() if not path.is_file()]
    try:
        subset_dir(root, subset)
    except (FileNotFoundError, NotADirectoryError) as err:
        missing.insert(0, str(err))
    if missing:
        raise FileNotFoundError("missing input: " + "; ".join(missing))


def _sample_frames(phones: Sequence[np.ndarray], budget: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    """A uniform sample of at most ``budget`` label frames over all utterances, as sorted indices per utterance."""
    lengths = np.array([p.shape[0] for p in phones], dtype=np.int64)
    total = int(lengths.sum())
    if budget is None or budget >= total:
        return [np.arange(n) for n in lengths]
    if budget < 1:
        raise ValueError(f"frame budgets must be >= 1 or None, got {budget}")
    chosen = np.sort(rng.choice(total, size=budget, replace=False))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    bounds = np.searchsorted(chosen, starts)
    return [chosen[bounds[u] : bounds[u + 1]] - starts[u] for u in range(len(phones))]


def load_split(
    root: Path,
    subset: str,
    ids: list[str],
    alignments: dict[str, np.ndarray],
    name: str,
    budget: int | None,
    rng: np.random.Generator,
    progress: bool,
) -> Split:
    """Load the utterances ``ids`` with their phone labels and sample at most ``budget`` label frames."""
    corpus = load_librispeech(root, subset, utterances=ids, progress=progress)
    try:
        phones = corpus_alignments(corpus, alignments)
    except KeyError as err:
        raise ValueError(f"{name} split: {err.args[0]}") from None
    return Split(corpus, phones, corpus.labels("speaker"), _sample_frames(phones, budget, rng))
