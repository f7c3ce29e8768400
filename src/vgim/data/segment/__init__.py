"""Split three-syllable words into syllables with an amplitude envelope and an Otsu threshold.

The method (V-GIM thesis, section 4.1.1) is described in :mod:`vgim.data.segment.syllables`
(:func:`segment_syllables` for one waveform). The other modules of this package:

* :mod:`vgim.data.segment.words` -- labels parsed from word file names (:func:`word_labels`), the split
  folder, and reading (and segmenting) many files with threads (:func:`read_words`);
* :mod:`vgim.data.segment.plot` -- the figure of one segmented word (:func:`plot_segmentation`);
* :mod:`vgim.data.segment.folders` -- :func:`segment_corpus`, which applies the method to a folder of words and
  writes one WAV per syllable, zero-padded to a common length, with ``cuts.csv``, ``manifest.csv`` (loadable by
  :func:`vgim.data.corpus.load_corpus`) and optional figures.

Every public name is re-exported here, so ``from vgim.data.segment import segment_corpus`` works.
"""

from __future__ import annotations

from vgim.data.segment.folders import SegmentReport, segment_corpus
from vgim.data.segment.plot import plot_segmentation
from vgim.data.segment.syllables import (
    SegmentParams,
    SegmentResult,
    amplitude_envelope,
    otsu_threshold,
    segment_syllables,
)
from vgim.data.segment.words import SPLIT_FOLDERS, SYLLABLE_PATTERN, WORD_PATTERN, read_words, split_of, word_labels

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
    "read_words",
    "segment_corpus",
    "segment_syllables",
    "split_of",
    "word_labels",
]
