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
"""

from __future__ import annotations

import json
import math
from collections import Counter
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
from vgim.train.metrics import FIXED_COLUMNS, metrics_path, read_metrics

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
    "curve_columns",
    "read_metrics",
    "syllable_factors",
    "syllable_latents",
]

#: ``factor name -> manifest column`` used by :func:`disentanglement`; ``pitch`` is per word and binned.
DEFAULT_FACTORS: dict[str, str] = {"speaker": "speaker", "consonant": "consonants", "vowel": "vowels", "pitch": "pitch"}

MetricsSource = str | Path | Mapping[str, str | Path]


# ---------------------------------------------------------------------------------------------------------
# posterior collapse


def latent_kl(model: Stack, waves: Sequence[np.ndarray], module: int, sample_rate: int = 16000) -> np.ndarray:
    """Per-dimension ``KL(q(z|x) || N(0, 1))`` of a variational module, averaged over frames.

    ``KL_c = 0.5 * (mu_c^2 + sigma_c^2 - log sigma_c^2 - 1)`` at every frame, averaged over all frames of
    all ``waves`` (frame-weighted). Summing the result over ``c`` gives the KL term of the training loss
    (which sums over channels and averages over time and batch).

    Parameters
    ----------
    model : Stack
        The encoder.
    waves : sequence of np.ndarray
        ``[U]`` mono waveforms ``[samples]`` at ``sample_rate``.
    module : int
        0-based module index.
    sample_rate : int
        Sample rate of ``waves`` in Hz.

    Returns
    -------
    np.ndarray
        ``[C]`` float64, the latent's per-dimension KL in nats.

    Raises
    ------
    ValueError
        If the module is not variational (GIM, CPC, or a GRU-only module), is out of range, or ``waves``
        is empty.
    """
    if not 0 <= module < model.n_modules:
        raise ValueError(f"module {module} out of range: the model has modules 0..{model.n_modules - 1}")
    if not model.block(module).variational:
        raise ValueError(f"module {module} (m{module + 1}) is deterministic: it has no posterior, so no KL")
    if len(waves) == 0:
        raise ValueError("no waveforms given")
    total: np.ndarray | None = None
    count = 0
    for wave in waves:
        out = module_outputs(model, wave, sample_rate, upto=module)[module]
        assert out.mu is not None and out.logvar is not None
        mu, logvar = out.mu[0].double(), out.logvar[0].double()  # [T, C]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)
        s = kl.sum(dim=0).cpu().numpy()
        total = s if total is None else total + s
        count += int(kl.shape[0])
    assert total is not None
    return total / count


def active_dimensions(kl: np.ndarray, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose KL exceeds ``threshold`` (nats); the rest have collapsed.

    Parameters
    ----------
    kl : np.ndarray
        ``[C]`` per-dimension KL (:func:`latent_kl`).
    threshold : float
        Collapse threshold in nats.

    Returns
    -------
    int
        ``#{c : kl[c] > threshold}``.
    """
    return int(np.count_nonzero(np.asarray(kl, dtype=np.float64) > threshold))


def plot_latent_kl(
    kls: Mapping[str, np.ndarray],
    path: str | Path,
    threshold: float = 0.01,
    title: str | None = None,
) -> Path:
    """Bar charts of per-dimension KL, one panel per module (dimensions sorted by KL, log scale).

    Parameters
    ----------
    kls : mapping of str to np.ndarray
        Panel name (e.g. ``"V-GIM m1"``) -> ``[C]`` per-dimension KL.
    path : str or Path
        Output PNG.
    threshold : float
        Collapse threshold, drawn as a line; the title of each panel counts the active dimensions.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    if not kls:
        raise ValueError("no KL vectors to plot")
    floor = threshold / 100 if threshold > 0 else 1e-6
    fig = new_figure(9, 0.4 + 2.6 * len(kls))
    axes = fig.subplots(len(kls), 1, squeeze=False)[:, 0]
    for ax, (name, kl) in zip(axes, kls.items(), strict=True):
        v = np.asarray(kl, dtype=np.float64)
        order = np.argsort(-v, kind="stable")
        ranks = np.arange(v.shape[0])
        active = v[order] > threshold
        for sel, colour, label in ((active, "C0", "active"), (~active, "C3", "collapsed")):
            if np.any(sel):
                ax.bar(ranks[sel], np.maximum(v[order][sel], floor), width=0.85, color=colour, label=label)
        ax.axhline(threshold, color="0.3", linestyle="--", linewidth=1, label=f"threshold {threshold:g} nats")
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
        ax.set_xlim(-0.7, v.shape[0] - 0.3)
        ax.set_ylabel("KL (nats)")
        ax.set_title(
            f"{name}: {active_dimensions(v, threshold)} of {v.shape[0]} dimensions active, total KL {v.sum():.2f}",
            fontsize=10,
            loc="left",
        )
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("latent dimension, sorted by KL")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------------------
# metrics.csv


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def accuracy_per_k(metrics_csv: str | Path, average_last: int = 1) -> dict[int, np.ndarray]:
    """InfoNCE accuracy per prediction step at the last logged step of every module.

    Each logged value comes from one training batch; ``average_last > 1`` averages the last few logged
    steps to reduce that noise.

    Parameters
    ----------
    metrics_csv : str or Path
        A run's ``metrics.csv`` (or the run directory).
    average_last : int
        Number of last logged steps to average (1: the last one only).

    Returns
    -------
    dict of int to np.ndarray
        ``module -> [K]`` float64 accuracies for ``k = 1..K`` (the ``acc_k<k>`` columns of the module's
        row with the largest step, or their mean over the ``average_last`` largest steps).

    Raises
    ------
    ValueError
        If the file has no ``acc_k`` columns.
    """
    if average_last < 1:
        raise ValueError(f"average_last must be >= 1, got {average_last}")
    metrics = read_metrics(metrics_csv)
    out: dict[int, np.ndarray] = {}
    for m, cols in metrics.items():
        ks = sorted(int(c[len("acc_k") :]) for c in cols if c.startswith("acc_k") and c[len("acc_k") :].isdigit())
        if not ks:
            raise ValueError(f"{metrics_csv}: no acc_k<k> columns")
        row = np.array([np.mean(cols[f"acc_k{k}"][-average_last:]) for k in ks])
        while row.size and np.isnan(row[-1]):
            row = row[:-1]
        out[m] = row
    return out


def _runs(source: MetricsSource) -> dict[str, Path]:
    if isinstance(source, Mapping):
        return {str(k): metrics_path(v) for k, v in source.items()}
    path = metrics_path(source)
    return {"": path}


def _n_negatives(metrics_path: Path) -> int | None:
    try:
        cfg: dict[str, Any] = json.loads((metrics_path.parent / "config.json").read_text())
        return int(cfg["objective"]["n_negatives"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def plot_accuracy_per_k(
    metrics_csv: MetricsSource, path: str | Path, title: str | None = None, average_last: int = 1
) -> Path:
    """InfoNCE accuracy against the prediction step ``k``, one line per module (the CPC paper's Figure 3).

    Accuracy is the fraction of scored positions where the true ``z_{t+k}`` gets the highest score among
    itself and the negatives, at the last logged training step. Chance level ``1 / (1 + n_negatives)`` is
    drawn when the run's ``config.json`` sits next to ``metrics.csv``.

    Parameters
    ----------
    metrics_csv : str, Path or mapping of str to (str or Path)
        A run's ``metrics.csv`` (or run directory), or ``{run name: metrics.csv}`` to compare runs.
    path : str or Path
        Output PNG.
    title : str, optional
        Plot title.
    average_last : int
        Average the last this many logged steps (see :func:`accuracy_per_k`).

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.ticker import MaxNLocator

    runs = _runs(metrics_csv)
    fig = new_figure(7.5, 4.8)
    ax = fig.subplots()
    markers = "osD^v<>"
    chances: set[int] = set()
    colour = 0
    for r, (name, mpath) in enumerate(runs.items()):
        for m, acc in accuracy_per_k(mpath, average_last).items():
            label = f"{name} m{m + 1}".strip()
            ks = np.arange(1, acc.shape[0] + 1)
            ax.plot(
                ks,
                100 * acc,
                marker=markers[m % len(markers)],
                linestyle="-" if r == 0 else "--",
                color=f"C{colour % 10}",
                label=label,
            )
            colour += 1
        neg = _n_negatives(mpath)
        if neg is not None:
            chances.add(neg)
    for neg in sorted(chances):
        ax.axhline(100 / (1 + neg), color="0.4", linestyle=":", linewidth=1.2, label=f"chance (1 of {1 + neg})")
    ax.set_xlabel("prediction step k (frames of the module ahead)")
    ax.set_ylabel("InfoNCE accuracy (%)")
    ax.set_ylim(0, 100)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    when = "last logged step" if average_last == 1 else f"mean of the last {average_last} logged steps"
    ax.set_title(title or f"accuracy of picking the positive vs. prediction step ({when})", fontsize=11)
    return save_figure(fig, path)


def curve_columns(metrics: dict[int, dict[str, np.ndarray]]) -> list[str]:
    """The logged quantities worth a panel: ``loss`` and every scalar stat (not the per-k vectors)."""
    names: dict[str, None] = {"loss": None}
    for cols in metrics.values():
        stems = Counter(c.rstrip("0123456789") for c in cols if c[-1:].isdigit())
        for c in cols:
            if c in FIXED_COLUMNS or (c[-1:].isdigit() and stems[c.rstrip("0123456789")] > 1):
                continue
            if np.isfinite(cols[c]).any():
                names[c] = None
    return list(names)


CURVE_LABELS = {
    "loss": "loss (head + beta * penalty)",
    "infonce": "InfoNCE loss",
    "kl": "KL (nats, summed over dims)",
    "accuracy": "InfoNCE accuracy (mean over k)",
    "mi_bound": "InfoNCE bound on I(z; c) (nats)",
}


def plot_training_curves(metrics_csv: MetricsSource, path: str | Path, title: str | None = None) -> Path:
    """Every logged quantity of every module against the training step, one panel each: the loss, then the
    stats of the run's heads and bottlenecks (InfoNCE's loss, accuracy and bound, a Gaussian's KL, a VQ
    codebook's perplexity, APC's L1 ...), whatever ``metrics.csv`` holds.

    Parameters
    ----------
    metrics_csv : str, Path or mapping of str to (str or Path)
        A run's ``metrics.csv`` (or run directory), or ``{run name: metrics.csv}`` to compare runs.
    path : str or Path
        Output PNG.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    runs = {name: read_metrics(p) for name, p in _runs(metrics_csv).items()}
    keys = list(dict.fromkeys(k for metrics in runs.values() for k in curve_columns(metrics)))
    n_cols = 2 if len(keys) > 1 else 1
    n_rows = -(-len(keys) // n_cols)
    fig = new_figure(5.5 * n_cols, 3.5 * n_rows)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, sharex=True)).ravel()
    colour = 0
    for r, (name, metrics) in enumerate(runs.items()):
        for m, cols in metrics.items():
            label = f"{name} m{m + 1}".strip()
            for ax, key in zip(axes, keys, strict=False):
                if key in cols and np.isfinite(cols[key]).any():
                    ax.plot(
                        cols["step"],
                        cols[key],
                        color=f"C{colour % 10}",
                        linestyle="-" if r == 0 else "--",
                        linewidth=1.2,
                        label=label,
                    )
            colour += 1
    for ax, key in zip(axes, keys, strict=False):
        ax.set_ylabel(CURVE_LABELS.get(key, key))
        ax.grid(alpha=0.3)
        if key == "kl" and any(np.nanmax(np.asarray(ln.get_ydata(), dtype=float)) > 0 for ln in ax.get_lines()):
            ax.set_yscale("log")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    for ax in axes[max(0, len(keys) - n_cols) : len(keys)]:
        ax.set_xlabel("training step")
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "training curves")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------------------
# disentanglement


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
