"""Objectives as heads (InfoNCE, APC; :mod:`vgim.objective.base`), negative sampling, the per-module loss."""

from vgim.model.bottleneck import gaussian_kl
from vgim.objective.base import HEADS, Head, HeadOutput, HeadSpec, build_head, register_head
from vgim.objective.infonce import InfoNCE, InfoNCEOutput, candidate_sequences, sample_negatives
from vgim.objective.losses import ModuleLoss, Objective

__all__ = [
    "HEADS",
    "Head",
    "HeadOutput",
    "HeadSpec",
    "InfoNCE",
    "InfoNCEOutput",
    "ModuleLoss",
    "Objective",
    "build_head",
    "candidate_sequences",
    "gaussian_kl",
    "register_head",
    "sample_negatives",
]
