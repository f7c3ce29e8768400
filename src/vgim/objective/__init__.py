"""InfoNCE, negative sampling and the KL term; the per-module objective."""

from vgim.objective.infonce import InfoNCE, InfoNCEOutput, candidate_sequences, gaussian_kl, sample_negatives
from vgim.objective.losses import ModuleLoss, Objective

__all__ = [
    "InfoNCE",
    "InfoNCEOutput",
    "ModuleLoss",
    "Objective",
    "candidate_sequences",
    "gaussian_kl",
    "sample_negatives",
]
