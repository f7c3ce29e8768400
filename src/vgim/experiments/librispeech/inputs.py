"""Inputs of the LibriSpeech recipe: path checks, the utterances of a split file, their phone labels, the
sampled label frames of the phone probe, and extra unlabelled training audio."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vgim.data.corpus import AudioCorpus, load_corpus
from vgim.data.librispeech import corpus_alignments, load_librispeech, subset_dir
from vgim.train.rundir import RunDir

__all__ = [
    "ExtraAudio",
    "Split",
    "check_inputs",
    "check_training_data",
    "load_extra_audio",
    "load_split",
    "merge_training_audio",
]

log = logging.getLogger("vgim")

TRAINING_DATA_FILE = "training-data.json"


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


@dataclass
class ExtraAudio:
    """Unlabelled audio the presets train on beside the training split (never probed)."""

    source: str
    corpus: AudioCorpus
    left_out: int  # utterances of the source dropped because a split file names them

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": len(self.corpus),
            "minutes": round(self.corpus.total_seconds() / 60, 2),
            "left_out_split_utterances": self.left_out,
            "skipped": len(self.corpus.skipped),
        }


def load_extra_audio(path: str | Path, exclude: set[str], progress: bool) -> ExtraAudio:
    """The audio of ``path`` (a manifest CSV: its ``train`` rows when it has a ``split`` column; or a folder)
    without the utterances named in ``exclude`` (the split files' ids, matched with the file stems), so no
    test utterance is trained on and no training utterance counted twice.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Nothing usable is left (the message says how much was excluded).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"extra training audio {path}: no such file or folder")
    if path.is_file():
        corpus = load_corpus(path.parent, manifest=str(path), split="train", min_samples=1, progress=progress)
    else:
        corpus = load_corpus(path, min_samples=1, progress=progress)
    keep = [i for i, u in enumerate(corpus.utterances) if Path(u.path).stem not in exclude]
    if not keep:
        raise ValueError(
            f"extra training audio {path}: all {len(corpus)} usable files are utterances of the split files; "
            "nothing is left to add"
        )
    kept = corpus.take(keep)
    extra = ExtraAudio(str(path), kept, len(corpus) - len(keep))
    log.info(
        "extra training audio %s: %s; %d utterances of the split files left out",
        path,
        kept.describe(),
        extra.left_out,
    )
    return extra


def merge_training_audio(train: AudioCorpus, extra: ExtraAudio | None) -> AudioCorpus:
    """The training split's audio followed by the extra audio (waves shared, not copied)."""
    if extra is None:
        return train
    return AudioCorpus(
        utterances=[*train.utterances, *extra.corpus.utterances],
        waves=[*train.waves, *extra.corpus.waves],
        sample_rate=train.sample_rate,
        skipped=[*train.skipped, *extra.corpus.skipped],
        rescaled=[*train.rescaled, *extra.corpus.rescaled],
    )


def check_training_data(run_dir: Path, data: dict[str, Any]) -> None:
    """Record what a run folder trains on (``training-data.json``) or, when it holds a record, check it is the
    same: a finished run trained on other audio is never reused as if it were this one. A run folder from
    before the record existed counts as trained on the training split alone.

    Raises
    ------
    ValueError
        The folder's run trained (or started training) on other audio.
    """
    record = run_dir / TRAINING_DATA_FILE
    if record.is_file():
        old = json.loads(record.read_text(encoding="utf-8"))
    elif RunDir(run_dir).saved_config() is not None:
        old = {"train_utterances": data["train_utterances"], "extra_audio": None}
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return
    if old != data:
        raise ValueError(
            f"{run_dir} holds a run trained on other audio ({json.dumps(old)}; this experiment: {json.dumps(data)}); "
            "choose another --out or remove the folder"
        )
    if not record.is_file():
        record.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
