"""Disentanglement: the Mutual Information Gap between latent dimensions and known factors (V-GIM thesis 4.7).

- :func:`mig`: the Mutual Information Gap (Chen et al., 2018) between latent dimensions and known factors;
- :func:`disentanglement` measures it per module on per-syllable pooled latents (:func:`syllable_latents`)
  with the factors speaker, consonant, vowel and (binned) pitch (:func:`syllable_factors`);
- :func:`plot_mi_matrix` draws the mutual information matrix.

Modules are 0-based indices (``model.block(m)``); plots label them ``m1``, ``m2``, ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vgim.data.corpus import AudioCorpus
from vgim.evaluate.probes import pool_features, probe_labels
from vgim.interpret.activations import module_outputs, new_figure, save_figure
from vgim.model.stack import Stack

__all__ = [
    "DEFAULT_FACTORS",
    "MIGResult",
    "discretise",
    "disentanglement",
    "mig",
    "plot_mi_matrix",
    "syllable_factors",
    "syllable_latents",
]

#: ``factor name -> manifest column`` used by :func:`disentanglement`; ``pitch`` is per word and binned.
DEFAULT_FACTORS: dict[str, str] = {"speaker": "speaker", "consonant": "consonants", "vowel": "vowels", "pitch": "pitch"}


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


@dataclass
class MIGResult:
    """Mutual Information Gap of a set of latents with respect to known factors.

    Attributes
    ----------
    mi : np.ndarray
        ``[C, F]`` mutual information between latent dimension ``c`` (discretised) and factor ``f``,
        divided by the factor's entropy (``0`` = independent, ``1`` = the dimension determines the factor).
    factor_names : list of str
        ``[F]`` factor names (columns of ``mi``).
    entropy : np.ndarray
        ``[F]`` entropy of each factor in nats.
    gaps : np.ndarray
        ``[F]`` normalised MI of the best dimension minus that of the second best.
    best_dims : np.ndarray
        ``[F]`` int, the dimension with the highest MI for each factor.
    mig : float
        Mean of ``gaps`` over the factors.
    n_examples : int
        Number of examples ``N`` the estimate used.
    n_bins : int
        Bins per latent dimension.
    """

    mi: np.ndarray
    factor_names: list[str]
    entropy: np.ndarray
    gaps: np.ndarray
    best_dims: np.ndarray
    mig: float
    n_examples: int
    n_bins: int
    second_dims: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (the MI matrix as nested lists)."""
        return {
            "mig": self.mig,
            "gaps": {f: float(g) for f, g in zip(self.factor_names, self.gaps, strict=True)},
            "best_dims": {f: int(d) for f, d in zip(self.factor_names, self.best_dims, strict=True)},
            "entropy": {f: float(h) for f, h in zip(self.factor_names, self.entropy, strict=True)},
            "n_examples": self.n_examples,
            "n_bins": self.n_bins,
            "mi": self.mi.tolist(),
        }


def discretise(values: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Equal-frequency binning of one variable.

    Bin edges are the ``1/n_bins, ..., (n_bins-1)/n_bins`` quantiles; equal values always share a bin (so
    a dimension that is mostly 0, e.g. after a ReLU, gets fewer effective bins rather than arbitrary ones).

    Parameters
    ----------
    values : np.ndarray
        ``[N]`` values.
    n_bins : int
        Number of bins (>= 1).

    Returns
    -------
    np.ndarray
        ``[N]`` int64 bin indices in ``[0, n_bins)``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {x.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if x.size == 0 or n_bins == 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, x, side="right").astype(np.int64)


def _codes(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    arr = np.asarray([str(v) for v in values])
    return np.unique(arr, return_inverse=True)[1].astype(np.int64).ravel()


def mig(latents: np.ndarray, factors: Mapping[str, Sequence[Any] | np.ndarray], n_bins: int = 20) -> MIGResult:
    """Mutual Information Gap (Chen et al., 2018) of latents with respect to discrete factors.

    Every latent dimension is discretised into ``n_bins`` equal-frequency bins (:func:`discretise`); the
    mutual information ``I(z_c; v_f)`` (:func:`sklearn.metrics.mutual_info_score`, nats) is divided by the
    factor's entropy ``H(v_f)``. For each factor the gap is the normalised MI of the best dimension minus
    that of the second best; MIG is the mean gap. A perfectly disentangled representation (one dimension
    per factor, determining it) has MIG 1; one whose dimensions all mix the factors has MIG ~ 0.

    The plug-in MI estimate is biased upwards by about ``(n_bins - 1)(n_values - 1) / (2N)`` nats, so use
    ``N`` well above ``n_bins * n_values``.

    Parameters
    ----------
    latents : np.ndarray
        ``[N, C]`` latent vectors.
    factors : mapping of str to sequence
        Factor name -> ``[N]`` discrete values (any hashable; compared as strings). Bin continuous factors
        first (e.g. with :func:`discretise`).
    n_bins : int
        Bins per latent dimension.

    Returns
    -------
    MIGResult
        MI matrix ``[C, F]``, gaps ``[F]``, best dimensions ``[F]`` and the MIG.

    Raises
    ------
    ValueError
        On shape mismatches, no factors, or a constant factor (zero entropy).
    """
    from sklearn.metrics import mutual_info_score

    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"latents must be [N, C] with C >= 1, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("latents contain NaN or inf")
    if not factors:
        raise ValueError("no factors given")
    n, c = z.shape
    names = list(factors)
    codes = []
    for name in names:
        v = factors[name]
        if len(v) != n:
            raise ValueError(f"factor {name!r} has {len(v)} values but there are {n} latent vectors")
        codes.append(_codes(v))
    entropy = np.array([float(mutual_info_score(v, v)) for v in codes])
    if np.any(entropy <= 0):
        constant = [f for f, h in zip(names, entropy, strict=True) if h <= 0]
        raise ValueError(f"factors with a single value (zero entropy): {constant}")
    binned = [discretise(z[:, d], n_bins) for d in range(c)]
    mi = np.array([[float(mutual_info_score(b, v)) for v in codes] for b in binned]) / entropy[None, :]
    order = np.argsort(-mi, axis=0, kind="stable")  # [C, F]
    best = order[0]
    top = mi[best, np.arange(len(names))]
    if c > 1:
        second = order[1]
        runner_up = mi[second, np.arange(len(names))]
    else:
        second = np.full(len(names), -1)
        runner_up = np.zeros(len(names))
    gaps = top - runner_up
    return MIGResult(
        mi=mi,
        factor_names=names,
        entropy=entropy,
        gaps=gaps,
        best_dims=best.astype(np.int64),
        mig=float(gaps.mean()),
        n_examples=n,
        n_bins=n_bins,
        second_dims=np.asarray(second, dtype=np.int64),
    )


def plot_mi_matrix(result: MIGResult, path: str | Path, title: str | None = None) -> Path:
    """Heatmap of the normalised MI between every latent dimension and every factor.

    Rows are factors (labelled with their gap), columns latent dimensions; the best dimension of every
    factor is boxed and its second best marked.

    Parameters
    ----------
    result : MIGResult
        From :func:`mig`.
    path : str or Path
        Output PNG.
    title : str, optional
        Plot title (default: the MIG).

    Returns
    -------
    Path
        ``path``.
    """
    mi = result.mi.T  # [F, C]
    n_f, n_c = mi.shape
    fig = new_figure(min(16.0, 3.0 + 0.16 * n_c), 1.6 + 0.55 * n_f)
    ax = fig.subplots()
    vmax = max(1e-6, float(mi.max()))
    im = ax.imshow(mi, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0, vmax=vmax)
    for f in range(n_f):
        b = int(result.best_dims[f])
        ax.add_patch(_rect(b - 0.5, f - 0.5))
        if result.second_dims.size == n_f and result.second_dims[f] >= 0:
            ax.plot(int(result.second_dims[f]), f, marker="x", color="white", markersize=6)
    names = [f"{name} (gap {g:.2f})" for name, g in zip(result.factor_names, result.gaps, strict=True)]
    ax.set_yticks(range(n_f), names)
    step = 1 if n_c <= 32 else 4 if n_c <= 128 else 16
    ax.set_xticks(range(0, n_c, step))
    ax.set_xlabel("latent dimension (box: best, x: second best)")
    fig.colorbar(im, ax=ax, label="I(z_c; factor) / H(factor)", pad=0.01)
    default = f"normalised mutual information, MIG = {result.mig:.3f} (N = {result.n_examples})"
    ax.set_title(title or default, fontsize=11)
    return save_figure(fig, path)


def _rect(x: float, y: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1.0, 1.0, fill=False, edgecolor="red", linewidth=1.5)


def syllable_factors(
    corpus: AudioCorpus, factors: Mapping[str, str] | None = None, pitch_bins: int = 4
) -> dict[str, np.ndarray]:
    """Per-syllable factor values of a corpus, in the order of :func:`vgim.evaluate.probes.pool_features`.

    A column whose values are ``"-"``-separated with one entry per syllable (``consonants``, ``vowels``)
    gives each syllable its entry; any other column (``speaker``, ``pitch``) is repeated for every syllable
    of the utterance. ``pitch`` (a per-word number) is binned into ``pitch_bins`` equal-frequency bins
    over the corpus's utterances.

    Parameters
    ----------
    corpus : AudioCorpus
        Every utterance needs syllable segments.
    factors : mapping of str to str, optional
        Factor name -> label column (default :data:`DEFAULT_FACTORS`); factors whose column is missing
        from some utterance are left out.
    pitch_bins : int
        Bins for the ``pitch`` factor.

    Returns
    -------
    dict of str to np.ndarray
        Factor name -> ``[N_syllables]`` str values.
    """
    spec = dict(DEFAULT_FACTORS if factors is None else factors)
    labels = [u.labels for u in corpus.utterances]
    segments = [u.segments for u in corpus.utterances]
    if any(s is None for s in segments):
        raise ValueError("every utterance needs syllable segments for per-syllable factors")
    counts = np.array([len(s or []) for s in segments])
    out: dict[str, np.ndarray] = {}
    for name, key in spec.items():
        if not labels or not all(key in lab for lab in labels):
            continue
        values = [lab[key] for lab in labels]
        if key == "pitch":
            bins = discretise(np.array([_float(v) for v in values]), pitch_bins)
            out[name] = np.repeat(np.array([f"bin{b}" for b in bins]), counts)
        elif all(len(v.split("-")) == n for v, n in zip(values, counts, strict=True)) and any("-" in v for v in values):
            out[name] = probe_labels(labels, segments, key, "segment")
        else:
            out[name] = np.repeat(np.array(values, dtype=str), counts)
    if not out:
        raise ValueError(f"the corpus has none of the factor columns {sorted(spec.values())}")
    return out


def syllable_latents(
    model: Stack,
    corpus: AudioCorpus,
    kind: Literal["latent", "representation"] = "latent",
) -> list[np.ndarray]:
    """Per-syllable mean of every module's deterministic latent.

    Parameters
    ----------
    model : Stack
        The encoder.
    corpus : AudioCorpus
        Utterances with syllable segments.
    kind : {"latent", "representation"}
        ``"latent"``: the module's ``z`` (``mu`` for a variational module, never sampled);
        ``"representation"``: its output ``c`` (GRU output when the module has a GRU).

    Returns
    -------
    list of np.ndarray
        One ``[N_syllables, C_m]`` float64 array per module, syllables in corpus order.
    """
    if kind not in ("latent", "representation"):
        raise ValueError(f"kind must be 'latent' or 'representation', got {kind!r}")
    segments = [u.segments for u in corpus.utterances]
    per_module: list[list[np.ndarray]] = [[] for _ in range(model.n_modules)]
    with torch.no_grad():
        for wave in corpus.waves:
            for m, out in enumerate(module_outputs(model, wave, corpus.sample_rate)):
                t = out.z if kind == "latent" else out.c
                per_module[m].append(t[0].double().cpu().numpy())
    return [
        pool_features(per_module[m], model.frames[m], segments, "segment").astype(np.float64)
        for m in range(model.n_modules)
    ]


def disentanglement(
    model: Stack,
    corpus: AudioCorpus,
    *,
    factors: Mapping[str, str] | None = None,
    n_bins: int = 20,
    pitch_bins: int = 4,
    kind: Literal["latent", "representation"] = "latent",
) -> dict[int, MIGResult]:
    """MIG of every module's per-syllable pooled latent with respect to speaker, consonant, vowel, pitch.

    Parameters
    ----------
    model : Stack
        The encoder (GIM or V-GIM).
    corpus : AudioCorpus
        Utterances with syllable segments and the factor columns (the embedded corpus has all of them).
    factors : mapping of str to str, optional
        Factor name -> label column (default :data:`DEFAULT_FACTORS`).
    n_bins : int
        Bins per latent dimension for :func:`mig`.
    pitch_bins : int
        Equal-frequency bins of the per-word ``pitch``.
    kind : {"latent", "representation"}
        See :func:`syllable_latents` (default: the latent ``z``, ``mu`` for V-GIM).

    Returns
    -------
    dict of int to MIGResult
        0-based module index -> its :class:`MIGResult`.
    """
    facts = syllable_factors(corpus, factors, pitch_bins)
    latents = syllable_latents(model, corpus, kind)
    return {m: mig(z, facts, n_bins) for m, z in enumerate(latents)}
