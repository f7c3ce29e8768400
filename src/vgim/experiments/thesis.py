"""The V-GIM thesis experiment on its own corpus of recorded three-syllable words.

GIM (beta = 0) and V-GIM (beta > 0) are trained on the training words; every module is probed with a
linear classifier for syllable (9 classes), vowel (3) and consonant (3) on the syllables of the segmented
words: the probe is fitted on the training words' syllables and scored on the held-out words' syllables.
Baselines on the same split and probe: MFCC, a randomly initialised encoder and a fully supervised
encoder of the same architecture. Repeated over seeds; mean and standard deviation.

Two probe protocols (``protocol``): ``"vgim"`` encodes the whole word, mean-pools the frames of each syllable
and fits logistic regression (:mod:`vgim.evaluate.probes`); ``"thesis"`` is the thesis's own, every
syllable padded to one length and encoded on its own, its map flattened into a linear layer, with a
label-subset study and t-SNE maps (:mod:`vgim.evaluate.thesis_probe`, :mod:`vgim.experiments.thesis_protocol`);
``"both"`` (the default) runs the two on the same models and shows them side by side.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import vgim
from vgim.config import load_config
from vgim.data.corpus import AudioCorpus
from vgim.evaluate.evaluation import EvaluationSplit, mfcc_feature_set, model_feature_sets, random_init_model
from vgim.evaluate.probes import FeatureSet, ProbeResult, ProbeTask, run_probes
from vgim.evaluate.supervised import train_supervised
from vgim.evaluate.thesis_probe import SubsetPoint, ThesisProbeConfig
from vgim.experiments.thesis_protocol import (
    PROTOCOLS,
    plot_label_subsets,
    prepare_protocol,
    protocol_seed,
    side_by_side_table,
    subset_summary,
    subset_table,
)
from vgim.model.stack import Stack
from vgim.train.loop import batches_from_corpus
from vgim.train.rundir import RunDir

__all__ = [
    "THESIS_REPORTED",
    "THESIS_REPORTED_VOWEL",
    "THESIS_TASKS",
    "ExperimentResult",
    "aggregate",
    "reported_cells",
    "run_thesis_experiment",
]

log = logging.getLogger("vgim")

THESIS_TASKS = (
    ProbeTask("syllable", "syllables", "segment"),
    ProbeTask("vowel", "vowels", "segment"),
    ProbeTask("consonant", "consonants", "segment"),
)

# Syllable accuracy (%) per module reported by the thesis (module 1, module 2).
THESIS_REPORTED = {"GIM": (53.7, 30.1), "V-GIM": (50.8, 41.7)}
# Vowel accuracy (%) reported by the thesis: V-GIM module 1, max-pooled over time, linear layer without bias.
THESIS_REPORTED_VOWEL = {"V-GIM": 85.38}


def reported_cells() -> dict[tuple[str, str], float]:
    """The thesis's reported accuracies as ``{(features, task): %}``, e.g. ``("GIM m1", "syllable")``."""
    cells = {
        (f"{name} m{m + 1}", "syllable"): acc for name, accs in THESIS_REPORTED.items() for m, acc in enumerate(accs)
    }
    return cells | {(f"{name} m1", "vowel"): acc for name, acc in THESIS_REPORTED_VOWEL.items()}


@dataclass
class ExperimentResult:
    """What :func:`run_thesis_experiment` wrote. ``per_seed``/``summary``: the vgim protocol's results (empty
    under ``protocol="thesis"``); ``thesis_per_seed``/``thesis_summary``/``label_subsets``: the thesis
    protocol's (empty under ``"vgim"``); ``table``: the markdown printed (both protocols' tables)."""

    out_dir: Path
    per_seed: dict[int, list[ProbeResult]]
    summary: list[dict[str, float | str | int]]
    table: str
    seconds: dict[str, float] = field(default_factory=dict)
    protocol: str = "vgim"
    thesis_per_seed: dict[int, list[ProbeResult]] = field(default_factory=dict)
    thesis_summary: list[dict[str, float | str | int]] = field(default_factory=list)
    label_subsets: list[dict[str, float | str | int]] = field(default_factory=list)


def aggregate(per_seed: dict[int, list[ProbeResult]]) -> list[dict[str, float | str | int]]:
    """Mean and standard deviation over seeds of accuracy and macro-F1, per (features, task)."""
    groups: dict[tuple[str, str], list[ProbeResult]] = defaultdict(list)
    order: list[tuple[str, str]] = []
    for results in per_seed.values():
        for r in results:
            key = (r.features, r.task)
            if key not in groups:
                order.append(key)
            groups[key].append(r)
    rows: list[dict[str, float | str | int]] = []
    for key in order:
        rs = groups[key]
        acc = np.array([r.accuracy for r in rs]) * 100
        f1 = np.array([r.macro_f1 for r in rs]) * 100
        rows.append(
            {
                "features": key[0],
                "task": key[1],
                "n_seeds": len(rs),
                "accuracy_mean": float(acc.mean()),
                "accuracy_std": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                "macro_f1_mean": float(f1.mean()),
                "macro_f1_std": float(f1.std(ddof=1)) if len(rs) > 1 else 0.0,
                "n_test": rs[0].n_test,
            }
        )
    return rows


def summary_table(rows: list[dict[str, float | str | int]], tasks: Sequence[str]) -> str:
    features: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for r in rows:
        f = str(r["features"])
        if f not in features:
            features.append(f)
        cells[(f, str(r["task"]))] = f"{r['accuracy_mean']:.1f} ± {r['accuracy_std']:.1f}"
    lines = ["| features | " + " | ".join(tasks) + " |", "|---|" + "---:|" * len(tasks)]
    for f in features:
        lines.append(f"| {f} | " + " | ".join(cells.get((f, t), "-") for t in tasks) + " |")
    return "\n".join(lines)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")


def _train_run(preset: str, run_dir: Path, split: EvaluationSplit, overrides: list[str], progress: bool) -> None:
    cfg = load_config(preset, overrides)
    # a run folder of another config is an error, never silently reused; a finished one is reused
    RunDir(run_dir).train_or_reuse(cfg, lambda: batches_from_corpus(cfg, split.train), progress=progress)


def _train_all_parallel(
    tasks: list[tuple[str, Path, list[str]]], split: EvaluationSplit, jobs: int, progress: bool
) -> None:
    """Train every unfinished run of ``tasks`` in ``jobs`` worker processes, one torch thread each."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    for preset, run_dir, extra in tasks:
        RunDir(run_dir).check_config(load_config(preset, [*extra, "train.threads=1"]))
    todo = [t for t in tasks if not RunDir(t[1]).is_finished()]
    if not todo:
        return
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method)) as pool:
        futures = {
            pool.submit(_train_run, preset, run_dir, split, [*extra, "train.threads=1"], False): run_dir
            for preset, run_dir, extra in todo
        }
        for future in tqdm(as_completed(futures), total=len(futures), desc="training runs", disable=not progress):
            future.result()
            log.info("trained %s", futures[future])


def run_thesis_experiment(
    corpus: tuple[AudioCorpus, AudioCorpus],
    out_dir: str | Path = "runs/thesis",
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    models: dict[str, str | tuple[str, list[str]]] | None = None,
    steps: int | None = None,
    supervised_steps: int = 1500,
    overrides: Sequence[str] = (),
    baselines: bool = True,
    pool: str = "mean",
    jobs: int = 1,
    protocol: str = "both",
    thesis_probe: ThesisProbeConfig | None = None,
    progress: bool = True,
) -> ExperimentResult:
    """Run the study on ``corpus = (train words, test words)`` (segmented: utterances carry syllable
    segments). ``models`` maps a row name to a preset (default GIM and V-GIM with the thesis architecture);
    finished runs are reused, unfinished ones resumed.

    ``protocol`` is ``"vgim"`` (whole word, ``pool``-ed per syllable, logistic regression), ``"thesis"``
    (the thesis's: padded syllables encoded alone, flattened maps, a linear layer; settings
    ``thesis_probe``) or ``"both"``. ``jobs > 1`` first trains all (model, seed) runs in that many worker
    processes with one torch thread each (the small thesis models use a second thread poorly; on 2 cores,
    2 jobs train about twice as fast as one process); the supervised baselines, features and probes then
    run in this process as before.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    models = models or {"GIM": "gim-thesis", "V-GIM": "vgim-thesis"}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split = EvaluationSplit(*corpus)
    labels = [u.labels for u in split.train.utterances], [u.segments for u in split.train.utterances]
    test_labels = [u.labels for u in split.test.utterances], [u.segments for u in split.test.utterances]
    vgim_protocol, thesis_protocol = protocol in ("vgim", "both"), protocol in ("thesis", "both")
    seconds: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    mfcc = mfcc_feature_set(split) if vgim_protocol else {}
    seconds["mfcc"] += time.perf_counter() - t0
    probe_cfg = thesis_probe or ThesisProbeConfig()
    t1 = time.perf_counter()
    data = prepare_protocol(split, probe_cfg) if thesis_protocol else None
    seconds["thesis protocol: pad + MFCC"] += time.perf_counter() - t1

    def run_spec(name: str, spec: str | tuple[str, list[str]], seed: int) -> tuple[str, Path, list[str]]:
        preset, extra_overrides = (spec, []) if isinstance(spec, str) else spec
        extra = [*overrides, *extra_overrides, f"train.seed={seed}"]
        if steps is not None:
            extra.append(f"train.steps={steps}")
        return preset, out / f"{_slug(name)}-seed{seed}", extra

    if jobs > 1:
        t1 = time.perf_counter()
        tasks = [run_spec(name, spec, seed) for seed in seeds for name, spec in models.items()]
        _train_all_parallel(tasks, split, jobs, progress)
        seconds["train (parallel)"] += time.perf_counter() - t1
    per_seed: dict[int, list[ProbeResult]] = {}
    thesis_per_seed: dict[int, list[ProbeResult]] = {}
    points: list[SubsetPoint] = []
    for seed in seeds:
        stacks: dict[str, Stack] = {}
        for name, spec in models.items():
            preset, run_dir, extra = run_spec(name, spec, seed)
            t1 = time.perf_counter()
            _train_run(preset, run_dir, split, extra, progress)
            seconds[f"train {name}"] += time.perf_counter() - t1
            stacks[name] = vgim.load(run_dir)
        first = next(iter(stacks.values()), None)
        if baselines and first is not None and first.config is not None:
            stacks["random init"] = random_init_model(first, seed)
            t3 = time.perf_counter()
            sup_steps = supervised_steps if steps is None else min(steps, supervised_steps)
            stacks["supervised"] = train_supervised(
                first.config, split.train, steps=sup_steps, seed=seed, progress=progress
            )
            seconds["train supervised"] += time.perf_counter() - t3
        if vgim_protocol:
            t4 = time.perf_counter()
            sets: dict[str, FeatureSet] = dict(mfcc)
            for name, stack in stacks.items():
                sets |= model_feature_sets(stack, split, name)
            seconds["features"] += time.perf_counter() - t4
            t4 = time.perf_counter()
            per_seed[seed] = run_probes(
                sets, labels[0], labels[1], test_labels[0], test_labels[1], THESIS_TASKS, seed=seed, pool=pool
            )
            seconds["probes"] += time.perf_counter() - t4
        if data is not None:
            t5 = time.perf_counter()
            tsne_dir = out / "tsne" if seed == seeds[0] else None
            thesis_per_seed[seed], seed_points = protocol_seed(data, stacks, list(models), seed, tsne_dir)
            points += seed_points
            seconds["thesis protocol: encode + probes"] += time.perf_counter() - t5
        log.info("seed %d done (%.0f s so far)", seed, time.perf_counter() - t0)
    task_names = [t.name for t in THESIS_TASKS]
    rows = aggregate(per_seed)
    thesis_rows = aggregate(thesis_per_seed)
    subset_rows = subset_summary(points)
    reported = reported_cells()
    reported_md = "\n".join(
        f"| {name} (thesis) | " + " / ".join(f"{a:.1f}" for a in accs) + " |" for name, accs in THESIS_REPORTED.items()
    )
    n_seeds = f"mean ± std over {len(seeds)} seed(s)"
    parts: list[str] = []
    if vgim_protocol:
        parts.append(
            f"## vgim protocol\n\nLinear-probe accuracy (%, {n_seeds}) on the syllables of the {len(split.test)} "
            f"held-out words: each word encoded whole, its frames {pool}-pooled per syllable, logistic regression "
            f"fitted on the {len(split.train)} training words' syllables.\n\n" + summary_table(rows, task_names)
        )
    if data is not None:
        c = probe_cfg
        parts.append(
            f"## thesis protocol\n\nAccuracy (%, {n_seeds}) on the {data.test.waves.shape[0]} test syllables: every "
            f"syllable zero-padded (centred) to {data.train.length} samples ({data.pad_source}; "
            f"{data.train.n_cropped + data.test.n_cropped} centre-cropped) and encoded on its own; syllable and "
            "consonant: the module's map flattened; vowel: module 1 max-pooled over time, no bias. A linear "
            f"layer, cross-entropy, Adam lr {c.lr:g}, {c.epochs} epochs, minibatch {c.batch_size}, features "
            f"{'standardised' if c.standardise else 'not standardised'}; MFCC: the padded syllable's MFCC frames "
            f"(39 x T) flattened.\n\n" + summary_table(thesis_rows, task_names)
        )
        if subset_rows:
            chance = 100 / len(set(data.test.labels["syllables"].tolist()))
            plot_label_subsets(subset_rows, out / "label_subsets.png", chance)
            parts.append(
                f"### thesis protocol: label subsets\n\nSyllable accuracy (%, {n_seeds}) of the flattened probe "
                "trained on n labelled syllables per class (columns; drawn per seed), scored on all test "
                "syllables (`label_subsets.png`).\n\n" + subset_table(subset_rows)
            )
    if vgim_protocol and data is not None:
        parts.append(
            "## the two protocols side by side\n\n(reported: the thesis's own numbers, italic)\n\n"
            + side_by_side_table(rows, thesis_rows, task_names, reported)
        )
    table = "\n\n".join(parts)
    seconds["total"] = time.perf_counter() - t0
    (out / "results.md").write_text(
        table
        + "\n\nThe thesis's syllable accuracy (module 1 / module 2):\n\n| model | syllable |\n|---|---|\n"
        + reported_md
        + f"\n\nThe thesis's vowel accuracy (V-GIM module 1, max-pooled): {THESIS_REPORTED_VOWEL['V-GIM']:.2f}\n"
    )
    thesis_json = (
        {
            "settings": dataclasses.asdict(probe_cfg),
            "pad_samples": data.train.length,
            "pad_source": data.pad_source,
            "n_cropped": {"train": data.train.n_cropped, "test": data.test.n_cropped},
            "summary": thesis_rows,
            "per_seed": {s: [vars(r) for r in rs] for s, rs in thesis_per_seed.items()},
            "label_subsets": subset_rows,
            "label_subset_points": [vars(p) for p in points],
        }
        if data is not None
        else None
    )
    (out / "results.json").write_text(
        json.dumps(
            {
                "protocol": protocol,
                "summary": rows,
                "per_seed": {s: [vars(r) for r in rs] for s, rs in per_seed.items()},
                "thesis_protocol": thesis_json,
                "seconds": dict(seconds),
                "thesis_reported": THESIS_REPORTED,
                "thesis_reported_vowel": THESIS_REPORTED_VOWEL,
            },
            indent=2,
        )
        + "\n"
    )
    return ExperimentResult(
        out_dir=out,
        per_seed=per_seed,
        summary=rows,
        table=table,
        seconds=dict(seconds),
        protocol=protocol,
        thesis_per_seed=thesis_per_seed,
        thesis_summary=thesis_rows,
        label_subsets=subset_rows,
    )
