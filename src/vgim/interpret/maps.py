"""t-SNE maps of pooled representations (V-GIM thesis section 4.5).

Features are pooled exactly as the linear probes pool them (:func:`vgim.evaluate.probes.pool_features`,
:func:`vgim.evaluate.probes.probe_labels`): the mean over a syllable's frames for syllable, vowel and
consonant, the mean over the utterance for speaker. :func:`draw_maps` draws one map per module and label.
The thesis protocol (:mod:`vgim.experiments.thesis_protocol`) maps flattened per-syllable maps with the
thesis's settings, :data:`THESIS_TSNE`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgim.data.corpus import AudioCorpus
from vgim.evaluate.evaluation import corpus_features
from vgim.evaluate.probes import DEFAULT_TASKS, ProbeTask, available_tasks, probe_dataset
from vgim.frames import FrameInfo
from vgim.interpret.activations import new_figure, save_figure
from vgim.model.stack import Stack

__all__ = ["THESIS_TSNE", "draw_maps", "plot_tsne", "pooled_examples", "tsne_map"]

#: The thesis's t-SNE settings (:func:`tsne_map` keywords): random init, perplexity 30, learning rate 200,
#: 1000 iterations, on the raw (not standardised) flattened per-syllable maps.
THESIS_TSNE: dict[str, Any] = {
    "init": "random",
    "perplexity": 30.0,
    "learning_rate": 200.0,
    "n_iterations": 1000,
    "standardise": False,
}


def _standardise(x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def tsne_map(
    features: np.ndarray,
    labels: Sequence[str],
    *,
    seed: int = 0,
    perplexity: float = 30.0,
    init: str = "pca",
    learning_rate: float | str = "auto",
    n_iterations: int = 1000,
    standardise: bool = True,
) -> np.ndarray:
    """Two-dimensional t-SNE embedding of (by default standardised) features.

    Each feature dimension is standardised (zero mean, unit variance; constant dimensions are only
    centred) before :class:`sklearn.manifold.TSNE` (by default PCA initialisation, automatic learning
    rate, 1000 iterations; the thesis's settings are :data:`THESIS_TSNE`). The labels are not used by the
    embedding; they are checked against ``features`` so that the returned points line up with the labels
    passed to :func:`plot_tsne`.

    Parameters
    ----------
    features : np.ndarray
        ``[N, C]`` pooled features.
    labels : sequence of str
        ``[N]`` labels of the rows.
    seed : int
        Random state of t-SNE.
    perplexity : float
        t-SNE perplexity; clipped to ``max(1, (N - 1) / 3)`` for small ``N`` (t-SNE needs ``perplexity < N``).
    init, learning_rate
        Passed to TSNE (``"pca"`` falls back to ``"random"`` for fewer than 2 rows or dimensions).
    n_iterations : int
        Optimisation iterations (TSNE's ``max_iter``, ``n_iter`` before scikit-learn 1.5).
    standardise : bool
        Standardise every dimension first.

    Returns
    -------
    np.ndarray
        ``[N, 2]`` float64 map coordinates (zeros when ``N < 2``).

    Raises
    ------
    ValueError
        If ``features`` is not 2-D, not finite, or its rows do not match ``labels``.
    """
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N, C], got shape {x.shape}")
    if x.shape[0] != len(labels):
        raise ValueError(f"features have {x.shape[0]} rows but there are {len(labels)} labels")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or inf")
    if perplexity <= 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    n = x.shape[0]
    if n < 2 or x.shape[1] == 0:
        return np.zeros((n, 2))
    if standardise:
        x = _standardise(x)
    perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    start = init if min(n, x.shape[1]) >= 2 else "random"
    # scikit-learn renamed n_iter to max_iter in 1.5 (and removed n_iter in 1.7)
    iterations = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    options: dict[str, Any] = {iterations: n_iterations}
    tsne = TSNE(n_components=2, perplexity=perp, init=start, learning_rate=learning_rate, random_state=seed, **options)
    return np.asarray(tsne.fit_transform(x), dtype=np.float64)


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    if n <= 10:
        cmap, pos = colormaps["tab10"], [i / 10 + 0.05 for i in range(n)]
    elif n <= 20:
        cmap, pos = colormaps["tab20"], [i / 20 + 0.025 for i in range(n)]
    else:
        cmap, pos = colormaps["turbo"], list(np.linspace(0.05, 0.95, n))
    return [tuple(float(v) for v in cmap(p)) for p in pos]  # type: ignore[misc]


def plot_tsne(
    points: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    title: str,
    label_name: str,
) -> Path:
    """Scatter plot of a 2-D map, one colour per class, with a legend; compact classes are also named at
    their median.

    Parameters
    ----------
    points : np.ndarray
        ``[N, 2]`` map coordinates (e.g. from :func:`tsne_map`).
    labels : sequence of str
        ``[N]`` class of every point.
    path : str or Path
        Output PNG.
    title : str
        Plot title.
    label_name : str
        What the labels are (legend title), e.g. ``"syllable"``.

    Returns
    -------
    Path
        ``path``.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must be [N, 2], got shape {p.shape}")
    y = np.asarray([str(v) for v in labels])
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"{p.shape[0]} points but {y.shape[0]} labels")
    classes = sorted(set(y.tolist()))
    colours = _colours(len(classes))
    size = float(np.clip(3000.0 / max(1, p.shape[0]), 6.0, 60.0))
    n_cols = 1 + (len(classes) - 1) // 20 if classes else 1
    fig = new_figure(7.0 + 1.1 * n_cols, 6.0)
    ax = fig.subplots()
    for cls, colour in zip(classes, colours, strict=True):
        sel = y == cls
        ax.scatter(p[sel, 0], p[sel, 1], s=size, color=colour, alpha=0.75, linewidths=0, label=f"{cls} ({sel.sum()})")
    # Name each compact class at its median; a class spread over the map (median distance to its median
    # more than half that of all points) would get a label in empty space, so it only has the legend.
    overall = float(np.median(np.linalg.norm(p - np.median(p, axis=0), axis=1))) if p.shape[0] else 0.0
    if len(classes) <= 30 and overall > 0:
        for cls, colour in zip(classes, colours, strict=True):
            med = np.median(p[y == cls], axis=0)
            if np.median(np.linalg.norm(p[y == cls] - med, axis=1)) > 0.5 * overall:
                continue
            ax.annotate(
                cls,
                (float(med[0]), float(med[1])),
                ha="center",
                va="center",
                fontsize=11,
                fontweight="bold",
                color="black",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": colour, "alpha": 0.6, "linewidth": 0},
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title, fontsize=11)
    if classes:
        ax.legend(
            title=label_name, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=n_cols, fontsize=9, markerscale=1.5
        )
    return save_figure(fig, path)


def pooled_examples(
    features: Sequence[np.ndarray],
    frames: FrameInfo,
    corpus: AudioCorpus,
    task: ProbeTask,
    pool: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    """Pool one module's features of a corpus (``[U]`` arrays ``[T_u, C]``, aligned with
    ``corpus.utterances``) into labelled examples ``x [N, C']``, ``y [N]`` for ``task``, as the probes do:
    :func:`vgim.evaluate.probes.probe_dataset` with the corpus's labels and segments."""
    if len(features) != len(corpus):
        raise ValueError(f"{len(features)} feature arrays but the corpus has {len(corpus)} utterances")
    labels = [u.labels for u in corpus.utterances]
    segments = [u.segments for u in corpus.utterances]
    return probe_dataset(features, frames, labels, segments, task.key, task.level, pool)


def draw_maps(
    model: Stack,
    corpus: AudioCorpus,
    out_dir: str | Path,
    *,
    tasks: Sequence[ProbeTask] = DEFAULT_TASKS,
    name: str = "",
    seed: int = 0,
    perplexity: float = 30.0,
    features: Sequence[Sequence[np.ndarray]] | None = None,
) -> list[Path]:
    """t-SNE maps of every module's pooled representation, one PNG per module and label.

    One t-SNE is fitted per module and pooling level and shared by the labels of that level (syllable,
    vowel and consonant colour the same per-syllable map; speaker uses the per-utterance map). Tasks whose
    labels (or segments) the corpus lacks are left out.

    Parameters
    ----------
    model : Stack
        The encoder; each module's representation ``c`` (``mu``-based for V-GIM, no sampling) is mapped.
    corpus : AudioCorpus
        Utterances to map (e.g. the test split).
    out_dir : str or Path
        Folder for the PNGs (created), named ``[<name>_]m<module>_<task>.png``.
    tasks : sequence of ProbeTask
        Labels to colour by (default: syllable, vowel, consonant, speaker).
    name : str
        Model name used in titles and file names (e.g. ``"V-GIM"``).
    seed, perplexity
        Passed to :func:`tsne_map`.
    features : sequence of (sequence of np.ndarray), optional
        Precomputed ``corpus_features(model, corpus.waves)`` (per module, per utterance ``[T, C]``).

    Returns
    -------
    list of Path
        The files written, in module then task order.
    """
    labels = [u.labels for u in corpus.utterances]
    segments = [u.segments for u in corpus.utterances]
    usable = available_tasks(tasks, labels, segments)
    if not usable:
        raise ValueError(f"none of the tasks {[t.name for t in tasks]} has labels in this corpus")
    feats = features if features is not None else corpus_features(model, corpus.waves, corpus.sample_rate)
    if len(feats) != model.n_modules:
        raise ValueError(f"features for {len(feats)} modules but the model has {model.n_modules}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"{_slug(name)}_" if name else ""
    files: list[Path] = []
    for m in range(model.n_modules):
        maps: dict[str, np.ndarray] = {}
        for task in usable:
            x, y = pooled_examples(feats[m], model.frames[m], corpus, task)
            if task.level not in maps:
                maps[task.level] = tsne_map(x, y.tolist(), seed=seed, perplexity=perplexity)
            unit = "syllables" if task.level == "segment" else "utterances"
            title = f"{name + ' ' if name else ''}m{m + 1}: t-SNE of mean-pooled features ({len(y)} {unit})"
            png = out / f"{prefix}m{m + 1}_{task.name}.png"
            files.append(plot_tsne(maps[task.level], y.tolist(), png, title, task.name))
    return files


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text).strip("_").lower() or "model"
