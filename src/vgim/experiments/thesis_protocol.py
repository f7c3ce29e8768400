"""The thesis's probe protocol inside ``vgim experiment thesis`` (``--protocol thesis|both``).

:mod:`vgim.evaluate.thesis_probe` pads, encodes and probes; this module runs it for every (model, seed) of
the experiment, adds the label-subset study and the thesis's t-SNE maps, and writes the tables: the
thesis protocol's own, the label subsets (and their plot) and the two protocols side by side.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgim.evaluate.evaluation import EvaluationSplit
from vgim.evaluate.probes import ProbeResult
from vgim.evaluate.thesis_probe import (
    PaddedSyllables,
    SubsetPoint,
    ThesisMaps,
    ThesisProbeConfig,
    flatten_maps,
    label_subset_study,
    longest_syllable,
    mfcc_maps,
    model_maps,
    padded_syllables,
    run_thesis_probes,
)
from vgim.interpret.activations import new_figure, save_figure
from vgim.interpret.maps import THESIS_TSNE, plot_tsne, tsne_map
from vgim.model.stack import Stack

__all__ = [
    "PROTOCOLS",
    "ProtocolData",
    "plot_label_subsets",
    "prepare_protocol",
    "protocol_seed",
    "side_by_side_table",
    "subset_summary",
    "subset_table",
]

#: ``--protocol`` values: today's (whole word, mean pooling, logistic regression), the thesis's, both.
PROTOCOLS = ("vgim", "thesis", "both")


@dataclass
class ProtocolData:
    """What every seed shares: the padded syllables of both splits and the MFCC maps of them."""

    cfg: ThesisProbeConfig
    train: PaddedSyllables
    test: PaddedSyllables
    mfcc: ThesisMaps
    pad_source: str  # how the fixed length was chosen, in words


def prepare_protocol(split: EvaluationSplit, cfg: ThesisProbeConfig) -> ProtocolData:
    """Pad every syllable of ``split`` to ``cfg.pad_samples`` (0: the longest syllable of both splits)."""
    longest = longest_syllable([split.train, split.test])
    length = cfg.pad_samples or longest
    source = "the longest syllable of the corpus" if not cfg.pad_samples else f"the corpus's longest: {longest}"
    train, test = padded_syllables(split.train, length), padded_syllables(split.test, length)
    mfcc = ThesisMaps(mfcc_maps(train.waves), mfcc_maps(test.waves), first_module=True)
    return ProtocolData(cfg, train, test, mfcc, source)


def protocol_seed(
    data: ProtocolData,
    stacks: Mapping[str, Stack],
    trained: Sequence[str],
    seed: int,
    tsne_dir: Path | None = None,
) -> tuple[list[ProbeResult], list[SubsetPoint]]:
    """One seed of the thesis protocol: the probes of MFCC and of every module of every stack, the
    label-subset study of the ``trained`` stacks' modules and (with ``tsne_dir``) their t-SNE maps."""
    maps: dict[str, ThesisMaps] = {"MFCC": data.mfcc}
    subset_maps: dict[str, ThesisMaps] = {}
    for name, stack in stacks.items():
        these = model_maps(stack, data.train, data.test, name, data.cfg.encode_batch)
        maps |= these
        if name in trained:
            subset_maps |= these
    results = run_thesis_probes(maps, data.train, data.test, cfg=data.cfg, seed=seed)
    points = label_subset_study(subset_maps, data.train, data.test, cfg=data.cfg, seed=seed)
    if tsne_dir is not None:
        labels = data.test.labels["syllables"].tolist()
        for name, m in subset_maps.items():
            points_2d = tsne_map(flatten_maps(m.test), labels, seed=seed, **THESIS_TSNE)
            slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower())
            title = f"{name}: t-SNE of flattened per-syllable maps ({len(labels)} test syllables)"
            plot_tsne(points_2d, labels, tsne_dir / f"tsne_{slug}.png", title, "syllable")
    return results, points


def subset_summary(points: Sequence[SubsetPoint]) -> list[dict[str, float | str | int]]:
    """Mean and std over seeds of the label-subset accuracy (%), per (features, labels per class)."""
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for p in points:
        groups[(p.features, p.labels_per_class)].append(100 * p.accuracy)
    rows: list[dict[str, float | str | int]] = []
    for (features, n), accs in groups.items():
        a = np.array(accs)
        rows.append(
            {
                "features": features,
                "labels_per_class": n,
                "n_seeds": len(accs),
                "accuracy_mean": float(a.mean()),
                "accuracy_std": float(a.std(ddof=1)) if len(accs) > 1 else 0.0,
            }
        )
    return rows


def subset_table(rows: Sequence[Mapping[str, float | str | int]]) -> str:
    """Markdown: one row per feature set, one column per labels-per-class count."""
    counts = sorted({int(r["labels_per_class"]) for r in rows})
    features = list(dict.fromkeys(str(r["features"]) for r in rows))
    cell = {(str(r["features"]), int(r["labels_per_class"])): r for r in rows}
    lines = ["| features | " + " | ".join(str(n) for n in counts) + " |", "|---|" + "---:|" * len(counts)]
    for f in features:
        cells = [
            f"{float(c['accuracy_mean']):.1f} ± {float(c['accuracy_std']):.1f}" if (c := cell.get((f, n))) else "-"
            for n in counts
        ]
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_label_subsets(rows: Sequence[Mapping[str, float | str | int]], path: Path, chance: float) -> Path:
    """Syllable accuracy against labelled syllables per class (log2 axis), one line per model and module,
    error bars the std over seeds; ``chance`` (%) as a dotted line."""
    fig = new_figure(7.0, 4.5)
    ax = fig.subplots()
    for f in dict.fromkeys(str(r["features"]) for r in rows):
        mine = sorted((r for r in rows if r["features"] == f), key=lambda r: int(r["labels_per_class"]))
        ax.errorbar(
            [int(r["labels_per_class"]) for r in mine],
            [float(r["accuracy_mean"]) for r in mine],
            yerr=[float(r["accuracy_std"]) for r in mine],
            marker="o",
            capsize=3,
            label=f,
        )
    counts = sorted({int(r["labels_per_class"]) for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.axhline(chance, color="grey", linestyle=":", label="chance")
    ax.set_xlabel("labelled syllables per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Thesis protocol: flattened syllable probe on label subsets", fontsize=11)
    ax.legend(fontsize=9)
    return save_figure(fig, path)


def side_by_side_table(
    vgim_rows: Sequence[Mapping[str, float | str | int]],
    thesis_rows: Sequence[Mapping[str, float | str | int]],
    tasks: Sequence[str],
    reported: Mapping[tuple[str, str], float],
) -> str:
    """Markdown: per feature set and task, the vgim protocol's accuracy and the thesis protocol's (mean ±
    std over seeds), and for the tasks the thesis reports the thesis's number (``reported[(features, task)]``)."""
    cells: dict[tuple[str, str, str], str] = {}
    features: list[str] = []
    for protocol, rows in (("vgim", vgim_rows), ("thesis", thesis_rows)):
        for r in rows:
            f = str(r["features"])
            features += [f] if f not in features else []
            cells[(protocol, f, str(r["task"]))] = f"{float(r['accuracy_mean']):.1f} ± {float(r['accuracy_std']):.1f}"
    with_reported = {t for _, t in reported}
    head = [f"{t}: {p}" for t in tasks for p in ("vgim", "thesis", "reported") if p != "reported" or t in with_reported]
    lines = ["| features | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for f in features:
        row = []
        for t in tasks:
            row += [cells.get(("vgim", f, t), "-"), cells.get(("thesis", f, t), "-")]
            if t in with_reported:
                row.append(f"*{reported[(f, t)]:.1f}*" if (f, t) in reported else "")
        lines.append(f"| {f} | " + " | ".join(row) + " |")
    return "\n".join(lines)
