"""The papers' LibriSpeech study in one call: train CPC / GIM / V-GIM, probe every module, write the table.

:func:`run_librispeech_experiment` (:mod:`~vgim.experiments.librispeech.recipe`, which describes the study)
uses :mod:`~vgim.experiments.librispeech.inputs` (paths, split files, phone labels, the frame sample),
:mod:`~vgim.experiments.librispeech.probing` (features and linear probes),
:mod:`~vgim.experiments.librispeech.baselines` (the supervised baselines) and
:mod:`~vgim.experiments.librispeech.table` (``results.md``).
"""

from __future__ import annotations

from vgim.experiments.librispeech.recipe import LibriSpeechResult, run_librispeech_experiment
from vgim.experiments.librispeech.table import PAPER_REPORTED, PAPER_SOURCES

__all__ = [
    "PAPER_REPORTED",
    "PAPER_SOURCES",
    "LibriSpeechResult",
    "run_librispeech_experiment",
]
