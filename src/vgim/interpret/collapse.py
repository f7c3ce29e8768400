"""Posterior collapse of a variational module: per-dimension ``KL(q(z|x) || N(0, 1))`` (V-GIM thesis 4.6).

- :func:`latent_kl` / :func:`active_dimensions`: per-dimension KL of a variational module; a collapsed
  dimension carries no information and has KL ~ 0; :func:`plot_latent_kl` draws it.

Modules are 0-based indices (``model.block(m)``); plots label them ``m1``, ``m2``, ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vgim.frames import SAMPLE_RATE
from vgim.interpret.activations import module_outputs, new_figure, save_figure
from vgim.model.stack import Stack

__all__ = ["active_dimensions", "latent_kl", "plot_latent_kl"]


def latent_kl(model: Stack, waves: Sequence[np.ndarray], module: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
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
