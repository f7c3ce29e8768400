"""Diagnostics of a trained run: posterior collapse, training curves, accuracy per prediction step and
disentanglement (V-GIM thesis sections 4.6-4.7; CPC paper, Figure 3).

- :func:`latent_kl` / :func:`active_dimensions`: per-dimension ``KL(q(z|x) || N(0, 1))`` of a variational
  module; a collapsed dimension carries no information and has KL ~ 0.
- :func:`accuracy_per_k` / :func:`plot_accuracy_per_k`: how often InfoNCE picks the true ``z_{t+k}`` among
  the negatives, against the prediction step ``k``; :func:`plot_training_curves`.
- :func:`mig`: the Mutual Information Gap (Chen et al., 2018) between latent dimensions and known factors;
  :func:`disentanglement` measures it per module on per-syllable pooled latents with the factors speaker,
  consonant, vowel and (binned) pitch.

Modules are 0-based indices (``model.block(m)``, the ``module`` column of ``metrics.csv``); plots label them
``m1``, ``m2``, ...

The code lives in :mod:`vgim.interpret.collapse`, :mod:`vgim.interpret.curves` and
:mod:`vgim.interpret.disentangle`; this module re-exports their names (and
:func:`vgim.train.metrics.read_metrics`).
"""

from __future__ import annotations

from vgim.interpret.collapse import active_dimensions, latent_kl, plot_latent_kl
from vgim.interpret.curves import (
    CURVE_LABELS,
    MetricsSource,
    accuracy_per_k,
    curve_columns,
    plot_accuracy_per_k,
    plot_training_curves,
)
from vgim.interpret.disentangle import (
    DEFAULT_FACTORS,
    MIGResult,
    discretise,
    disentanglement,
    mig,
    plot_mi_matrix,
    syllable_factors,
    syllable_latents,
)
from vgim.train.metrics import read_metrics

__all__ = [
    "DEFAULT_FACTORS",
    "MIGResult",
    "accuracy_per_k",
    "active_dimensions",
    "discretise",
    "disentanglement",
    "latent_kl",
    "mig",
    "plot_accuracy_per_k",
    "plot_latent_kl",
    "plot_mi_matrix",
    "plot_training_curves",
    "CURVE_LABELS",
    "MetricsSource",
    "curve_columns",
    "read_metrics",
    "syllable_factors",
    "syllable_latents",
]
