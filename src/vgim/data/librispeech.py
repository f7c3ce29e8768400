"""LibriSpeech in its standard layout, the CPC phone alignments and splits.

Layout (as unpacked from openslr.org; ``<root>/LibriSpeech/<subset>`` is found too)::

    <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt     # lines "<utt-id> TRANSCRIPT"

The CPC paper (van den Oord et al., 2018) probes phones and speakers on ``train-clean-100`` with

* ``converted_aligned_phones.txt`` -- one line per utterance: the id, then one integer phone label
  (41 classes, ``0..40``) per 10 ms frame (160 samples at 16 kHz): label ``j`` covers samples
  ``[160 j, 160 (j + 1))``; read with :func:`read_alignments`;
* ``train_split.txt`` / ``test_split.txt`` -- one utterance id per line; read with :func:`read_split`.

:func:`load_librispeech` reuses the loading machinery of :mod:`vgim.data.corpus` (threaded reading,
resampling, bad-file skipping with reasons in :attr:`AudioCorpus.skipped`).
:func:`vgim.data.librispeech_fixture.make_librispeech_fixture` writes a few seconds of synthetic audio in the
same layout, with alignments that match the audio, for tests and demos; it never downloads anything.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vgim.data.corpus import (
    PROGRESS_MIN_FILES,
    AudioCorpus,
    CorpusEntry,
    Utterance,
    collect_corpus,
    file_loader,
    map_ordered,
)
from vgim.frames import SAMPLE_RATE

__all__ = [
    "DEFAULT_SUBSET",
    "N_PHONES",
    "PHONE_FRAME_HOP",
    "corpus_alignments",
    "load_librispeech",
    "read_alignments",
    "read_split",
    "subset_dir",
]

log = logging.getLogger("vgim")

#: The subset the CPC probes use.
DEFAULT_SUBSET = "train-clean-100"
#: Samples (at 16 kHz) per phone-label frame of ``converted_aligned_phones.txt`` (10 ms).
PHONE_FRAME_HOP = 160
#: Number of phone classes in ``converted_aligned_phones.txt`` (labels ``0..40``).
N_PHONES = 41

_ID_RE = re.compile(r"(?P<speaker>\d+)-(?P<chapter>\d+)-(?P<utt>\d+)")


# ---------------------------------------------------------------------------- text files


def read_split(path: str | Path) -> list[str]:
    """Utterance ids of a CPC split file (``train_split.txt`` / ``test_split.txt``).

    Parameters
    ----------
    path
        Text file with one utterance id (e.g. ``103-1240-0000``) per line; blank lines are ignored and
        surrounding white space is stripped.

    Returns
    -------
    list of str
        The ids in file order.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        A line holds more than one token (file name and line number in the message), or an id repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} not found")
    ids: list[str] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) > 1:
                raise ValueError(f"{path}:{lineno}: expected one utterance id per line, got {line.strip()!r}")
            uid = parts[0]
            if uid in seen:
                raise ValueError(f"{path}:{lineno}: utterance id {uid!r} repeats line {seen[uid]}")
            seen[uid] = lineno
            ids.append(uid)
    return ids


def read_alignments(path: str | Path, *, n_classes: int | None = N_PHONES) -> dict[str, np.ndarray]:
    """Frame-level phone labels of the CPC file ``converted_aligned_phones.txt``.

    Parameters
    ----------
    path
        Text file, one line per utterance: the utterance id, then one integer label per 10 ms frame
        (:data:`PHONE_FRAME_HOP` samples at 16 kHz), separated by white space. Blank lines are ignored.
    n_classes
        Labels must lie in ``[0, n_classes)`` (41 phone classes by default); ``None`` only requires them to
        be non-negative.

    Returns
    -------
    dict of str to np.ndarray
        Utterance id -> ``int64`` labels, shape ``[frames]``, in file order.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Naming the file and line number: a line with an id but no labels, a label that is not an integer or
        is out of range, or a repeated utterance id.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"alignment file {path} not found")
    if n_classes is not None and n_classes < 1:
        raise ValueError(f"n_classes must be >= 1 or None, got {n_classes}")
    out: dict[str, np.ndarray] = {}
    lines: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            uid, tokens = parts[0], parts[1:]
            where = f"{path}:{lineno} (utterance {uid})"
            if not tokens:
                raise ValueError(f"{where}: no phone labels after the utterance id")
            try:
                labels = np.array([int(tok) for tok in tokens], dtype=np.int64)
            except ValueError:
                bad = next(i for i, tok in enumerate(tokens) if not _is_int(tok))
                raise ValueError(f"{where}: label {bad + 1} is {tokens[bad]!r}, not an integer phone label") from None
            bad_mask = labels < 0 if n_classes is None else (labels < 0) | (labels >= n_classes)
            if bad_mask.any():
                i = int(np.argmax(bad_mask))
                limit = f"[0, {n_classes})" if n_classes is not None else ">= 0"
                raise ValueError(f"{where}: label {i + 1} is {int(labels[i])}, outside {limit}")
            if uid in out:
                raise ValueError(f"{where}: utterance id repeats line {lines[uid]}")
            out[uid] = labels
            lines[uid] = lineno
    return out


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def _read_transcripts(path: Path) -> dict[str, str]:
    """``<utt-id> TRANSCRIPT`` lines of one ``.trans.txt`` file (an id without text gets ``""``)."""
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            uid, _, text = line.strip().partition(" ")
            if uid:
                out[uid] = text.strip()
    return out


# ---------------------------------------------------------------------------- audio


def subset_dir(root: Path, subset: str) -> Path:
    """The folder of ``subset`` below ``root`` (``root/<subset>`` or ``root/LibriSpeech/<subset>``; ``root`` itself
    for ``subset=""``).

    Raises
    ------
    FileNotFoundError
        ``root`` or the subset folder does not exist (the folders present are named).
    NotADirectoryError
        ``subset=""`` and ``root`` is not a folder.
    """
    if not root.exists():
        raise FileNotFoundError(f"LibriSpeech root {root} does not exist")
    if not subset:
        if not root.is_dir():
            raise NotADirectoryError(f"LibriSpeech root {root} is not a folder")
        return root
    for cand in (root / subset, root / "LibriSpeech" / subset):
        if cand.is_dir():
            return cand
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise FileNotFoundError(
        f"LibriSpeech subset {subset!r} not found: neither {root / subset} nor {root / 'LibriSpeech' / subset} "
        f"is a folder (folders in {root}: {present or 'none'})"
    )


def _labels(uid: str, m: re.Match[str], transcripts: dict[str, str] | None) -> dict[str, str]:
    labels = {"speaker": m["speaker"], "chapter": m["chapter"], "utterance": uid}
    if transcripts is not None and uid in transcripts:
        labels["text"] = transcripts[uid]
    return labels


def _scan_entries(base: Path, skipped: list[tuple[str, str]]) -> list[CorpusEntry]:
    """Every ``<speaker>/<chapter>/<id>.flac`` under ``base`` (sorted by relative path)."""
    files = sorted(
        (p for p in base.glob("*/*/*") if p.suffix.lower() == ".flac" and p.is_file()),
        key=lambda p: p.relative_to(base).as_posix(),
    )
    transcripts: dict[Path, dict[str, str] | None] = {}
    entries: list[CorpusEntry] = []
    for f in files:
        m = _ID_RE.fullmatch(f.stem)
        if m is None:
            skipped.append((str(f), "file name does not match <speaker>-<chapter>-<utterance>"))
            continue
        if (m["speaker"], m["chapter"]) != (f.parent.parent.name, f.parent.name):
            skipped.append((str(f), f"file name does not match its folders {f.parent.parent.name}/{f.parent.name}"))
            continue
        trans = transcripts.get(f.parent)
        if f.parent not in transcripts:
            tpath = f.parent / f"{m['speaker']}-{m['chapter']}.trans.txt"
            trans = _read_transcripts(tpath) if tpath.is_file() else None
            transcripts[f.parent] = trans
        entries.append(CorpusEntry(path=f, labels=_labels(f.stem, m, trans)))
    return entries


def _listed_entries(base: Path, ids: Sequence[str], skipped: list[tuple[str, str]]) -> list[CorpusEntry]:
    """The files of the given utterance ids, in the given order (repeats dropped)."""
    transcripts: dict[Path, dict[str, str] | None] = {}
    entries: list[CorpusEntry] = []
    for uid in dict.fromkeys(str(u).strip() for u in ids):
        m = _ID_RE.fullmatch(uid)
        if m is None:
            skipped.append((f"{base} (utterance {uid!r})", "not a LibriSpeech id <speaker>-<chapter>-<utterance>"))
            continue
        folder = base / m["speaker"] / m["chapter"]
        path = folder / f"{uid}.flac"
        if not path.is_file():
            skipped.append((str(path), "file not found"))
            continue
        if folder not in transcripts:
            tpath = folder / f"{m['speaker']}-{m['chapter']}.trans.txt"
            transcripts[folder] = _read_transcripts(tpath) if tpath.is_file() else None
        entries.append(CorpusEntry(path=path, labels=_labels(uid, m, transcripts[folder])))
    return entries


def load_librispeech(
    root: str | Path,
    subset: str = DEFAULT_SUBSET,
    *,
    utterances: Sequence[str] | None = None,
    max_utterances: int | None = None,
    progress: bool = True,
    sample_rate: int = SAMPLE_RATE,
    min_samples: int = 0,
    min_rms: float = 1e-4,
    workers: int = 0,
) -> AudioCorpus:
    """Load (part of) a LibriSpeech subset into memory, skipping (and logging) every unusable file.

    Parameters
    ----------
    root
        Folder holding ``<subset>/`` (or ``LibriSpeech/<subset>/``).
    subset
        Subset folder name, e.g. ``"train-clean-100"``; ``""`` when ``root`` is the subset folder itself.
    utterances
        Load only these utterance ids (e.g. :func:`read_split` of ``test_split.txt``), in this order; ids
        without a file are skipped with reason ``"file not found"``. ``None``: every ``.flac`` of the subset,
        sorted by path.
    max_utterances
        Keep at most this many candidate files (the first ones, before loading; bad files among them are
        skipped, not replaced).
    progress
        Show a progress bar (only for more than 50 files).
    sample_rate
        Every wave is resampled to this rate (Hz); LibriSpeech itself is 16 kHz.
    min_samples, min_rms
        Skip files shorter than ``min_samples`` or with an RMS below ``min_rms`` (as :func:`load_corpus`).
    workers
        Reading threads (0: ``min(8, cpu_count)``).

    Returns
    -------
    AudioCorpus
        Labels per utterance: ``speaker``, ``chapter``, ``utterance`` (the id, e.g. ``"103-1240-0000"``)
        and ``text`` when the chapter's ``.trans.txt`` has a line for it.

    Raises
    ------
    FileNotFoundError
        ``root`` or the subset folder does not exist.
    ValueError
        No candidate file, or none of them could be used (the message summarises the skip reasons).
    """
    if max_utterances is not None and max_utterances < 1:
        raise ValueError(f"max_utterances must be >= 1 or None, got {max_utterances}")
    base = subset_dir(Path(root), subset)
    skipped: list[tuple[str, str]] = []
    if utterances is None:
        entries = _scan_entries(base, skipped)
        if not entries and not skipped:
            raise ValueError(f"no <speaker>/<chapter>/<id>.flac files found under {base}")
    else:
        if isinstance(utterances, str):
            raise TypeError("utterances must be a list of ids, not a single string")
        entries = _listed_entries(base, utterances, skipped)
    if max_utterances is not None:
        entries = entries[:max_utterances]
    total = len(entries) + len(skipped)
    source = f"LibriSpeech {base}"

    if workers <= 0:
        workers = min(8, os.cpu_count() or 1)
    load = file_loader(sample_rate, min_samples, min_rms)
    bar = tqdm(
        map_ordered(load, entries, workers),
        total=len(entries),
        desc="loading LibriSpeech",
        unit="file",
        disable=not (progress and len(entries) > PROGRESS_MIN_FILES),
    )
    return collect_corpus(entries, bar, skipped, total, source, sample_rate, _utterance)


def _utterance(entry: CorpusEntry, wave: np.ndarray) -> Utterance:
    return Utterance(str(entry.path), entry.labels)


def corpus_alignments(corpus: AudioCorpus, alignments: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The phone labels of every utterance of ``corpus`` (by its ``utterance`` label), in corpus order.

    Raises
    ------
    KeyError
        Some utterance has no ``utterance`` label or no alignment (the message counts and names a few).
    """
    ids = corpus.labels("utterance")
    missing = [u for u in ids if u not in alignments]
    if missing:
        raise KeyError(
            f"{len(missing)} of {len(ids)} utterances have no phone alignment, e.g. {missing[:5]} "
            "(use the split files that come with the alignments)"
        )
    return [alignments[u] for u in ids]
