"""Word recordings: labels parsed from file names, the split folder, and reading (and segmenting) many files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vgim.audio import AudioError, check_audio, read_audio
from vgim.data.corpus import PROGRESS_MIN_FILES
from vgim.data.segment.syllables import SegmentParams, SegmentResult, segment_syllables

__all__ = ["SPLIT_FOLDERS", "SYLLABLE_PATTERN", "WORD_PATTERN", "read_words", "split_of", "word_labels"]


#: File stem of a word recording: ``babidi_1`` -> word ``babidi``, take ``1`` (the thesis corpus naming).
WORD_PATTERN = r"(?P<word>(?:[bdg][aiu])+)_(?P<take>\d+)"
#: One syllable of a word: a consonant followed by a vowel.
SYLLABLE_PATTERN = r"(?P<consonant>[bdg])(?P<vowel>[aiu])"
#: Folder names (first folder below the corpus root) taken as the ``split`` of the files inside.
SPLIT_FOLDERS: frozenset[str] = frozenset({"train", "test", "val", "valid", "validation", "dev"})


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


def split_of(path: Path, root: Path) -> str:
    """The ``split`` of ``path``: its first folder below ``root`` if that is in :data:`SPLIT_FOLDERS`, else ``""``."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 and parts[0].lower() in SPLIT_FOLDERS else ""


def read_words(
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

    Shared by :func:`vgim.data.segment.segment_corpus` and :func:`vgim.data.thesis.load_thesis_corpus`. Files are
    read with :func:`vgim.audio.read_audio` at ``sample_rate`` and checked with :func:`vgim.audio.check_audio`.
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

    show = progress and len(paths) > PROGRESS_MIN_FILES
    if workers <= 1 or len(paths) <= 1:
        return list(tqdm(map(work, paths), total=len(paths), desc=desc, unit="file", disable=not show))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(work, paths), total=len(paths), desc=desc, unit="file", disable=not show))
