"""The V-GIM thesis experiment on its own corpus of recorded three-syllable words.

GIM (beta = 0) and V-GIM (beta > 0) are trained on the training words; every module is probed with a
linear classifier for syllable (9 classes), vowel (3) and consonant (3) on the syllables of the segmented
words: the probe is fitted on the training words' syllables and scored on the held-out words' syllables.
Baselines on the same split and probe: MFCC, a randomly initialised encoder and a fully supervised
encoder of the same architecture. Repeated over seeds; mean and standard deviation.
"""

from __future__ import annotations

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
from vgim.model.stack import Stack
from vgim.train.loop import batches_from_corpus
from vgim.train.rundir import RunDir

__all__ = ["THESIS_REPORTED", "THESIS_TASKS", "ExperimentResult", "aggregate", "run_thesis_experiment"]

log = logging.getLogger("vgim")

THESIS_TASKS = (
    ProbeTask("syllable", "syllables", "segment"),
    ProbeTask("vowel", "vowels", "segment"),
    ProbeTask("consonant", "consonants", "segment"),
)

# Syllable accuracy (%) per module reported by the thesis (module 1, module 2).
THESIS_REPORTED = {"GIM": (53.7, 30.1), "V-GIM": (50.8, 41.7)}


@dataclass
class ExperimentResult:
    out_dir: Path
    per_seed: dict[int, list[ProbeResult]]
    summary: list[dict[str, float | str | int]]
    table: str
    seconds: dict[str, float] = field(default_factory=dict)


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
    progress: bool = True,
) -> ExperimentResult:
    """Run the study on ``corpus = (train words, test words)`` (segmented: utterances carry syllable
    segments). ``models`` maps a row name to a preset (default GIM and V-GIM with the thesis architecture);
    finished runs are reused, unfinished ones resumed.

    ``jobs > 1`` first trains all (model, seed) runs in that many worker processes with one torch thread
    each (the small thesis models use a second thread poorly; on 2 cores, 2 jobs train about twice as fast
    as one process); the supervised baselines, features and probes then run in this process as before.
    """
    models = models or {"GIM": "gim-thesis", "V-GIM": "vgim-thesis"}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split = EvaluationSplit(*corpus)
    labels = [u.labels for u in split.train.utterances], [u.segments for u in split.train.utterances]
    test_labels = [u.labels for u in split.test.utterances], [u.segments for u in split.test.utterances]
    seconds: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    mfcc = mfcc_feature_set(split)
    seconds["mfcc"] += time.perf_counter() - t0

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
    for seed in seeds:
        sets: dict[str, FeatureSet] = dict(mfcc)
        first: Stack | None = None
        for name, spec in models.items():
            preset, run_dir, extra = run_spec(name, spec, seed)
            t1 = time.perf_counter()
            _train_run(preset, run_dir, split, extra, progress)
            seconds[f"train {name}"] += time.perf_counter() - t1
            model = vgim.load(run_dir)
            first = first or model
            t2 = time.perf_counter()
            sets |= model_feature_sets(model, split, name)
            seconds["features"] += time.perf_counter() - t2
        if baselines and first is not None and first.config is not None:
            sets |= model_feature_sets(random_init_model(first, seed), split, "random init")
            t3 = time.perf_counter()
            sup_steps = supervised_steps if steps is None else min(steps, supervised_steps)
            sup = train_supervised(first.config, split.train, steps=sup_steps, seed=seed, progress=progress)
            seconds["train supervised"] += time.perf_counter() - t3
            sets |= model_feature_sets(sup, split, "supervised")
        t4 = time.perf_counter()
        per_seed[seed] = run_probes(
            sets, labels[0], labels[1], test_labels[0], test_labels[1], THESIS_TASKS, seed=seed, pool=pool
        )
        seconds["probes"] += time.perf_counter() - t4
        log.info("seed %d done (%.0f s so far)", seed, time.perf_counter() - t0)
    rows = aggregate(per_seed)
    table = summary_table(rows, [t.name for t in THESIS_TASKS])
    seconds["total"] = time.perf_counter() - t0
    reported = "\n".join(
        f"| {name} (thesis) | " + " / ".join(f"{a:.1f}" for a in accs) + " |" for name, accs in THESIS_REPORTED.items()
    )
    header = (
        f"Linear-probe accuracy (%, mean ± std over {len(seeds)} seed(s)) on the syllables of the "
        f"{len(split.test)} held-out words; probe fitted on the {len(split.train)} training words' syllables.\n\n"
    )
    (out / "results.md").write_text(
        header
        + table
        + "\n\nThe thesis's syllable accuracy (module 1 / module 2):\n\n| model | syllable |\n|---|---|\n"
        + reported
        + "\n"
    )
    (out / "results.json").write_text(
        json.dumps(
            {
                "summary": rows,
                "per_seed": {s: [vars(r) for r in rs] for s, rs in per_seed.items()},
                "seconds": dict(seconds),
                "thesis_reported": THESIS_REPORTED,
            },
            indent=2,
        )
        + "\n"
    )
    return ExperimentResult(out_dir=out, per_seed=per_seed, summary=rows, table=table, seconds=dict(seconds))
