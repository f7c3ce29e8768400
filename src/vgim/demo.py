"""The main job: synthesise the embedded corpus in noise, train a V-GIM and a GIM, probe every module.

``vgim demo`` writes ``<out>/vgim-demo`` and ``<out>/gim-demo`` (run directories), and
``<out>/results.md`` / ``<out>/results.json`` (the probe table with the MFCC and random-init baselines),
then a report page per run (``<out>/<run>/report/index.html``: training curves, probes, t-SNE maps,
reconstructions with audio, traversals, activations, diagnostics; see :func:`vgim.report.build_report`).
Re-running it resumes unfinished runs and skips finished ones (and finished decoders).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import vgim
from vgim.config import load_config
from vgim.data.corpus import AudioCorpus, load_corpus
from vgim.data.source import corpus_location
from vgim.evaluate.evaluation import EvaluationSplit, evaluate_models
from vgim.evaluate.probes import ProbeResult
from vgim.evaluate.tables import results_table, results_to_json
from vgim.model.stack import Stack
from vgim.train.loop import batches_from_corpus
from vgim.train.rundir import RunDir

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger("vgim")

DEMO_MODELS = {"V-GIM": "vgim-demo", "GIM": "gim-demo"}


@dataclass
class DemoResult:
    out_dir: Path
    results: list[ProbeResult]
    table: str
    seconds: dict[str, float] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    """Model name -> the ``index.html`` of its report (empty when ``report=False``)."""


def _report_job(
    run_dir: Path, corpus: AudioCorpus, decoder_steps: int, seed: int, progress: bool
) -> tuple[Path, float]:
    """One report page (runs on one thread, in this process or a worker); its path and its seconds."""
    from vgim.report import build_report

    t = time.perf_counter()
    path = build_report(run_dir, corpus=corpus, decoder_steps=decoder_steps, progress=progress, seed=seed)
    return path, time.perf_counter() - t


def _build_reports(
    run_dirs: list[Path], corpus: AudioCorpus, decoder_steps: int, seed: int, jobs: int, progress: bool
) -> list[tuple[Path, float]]:
    """The report pages of ``run_dirs``, ``jobs`` at a time. A report runs on one thread, so on a machine of
    several cores the pages of several runs are built side by side in worker processes (quietly; a line
    when each is done)."""
    if jobs <= 1 or len(run_dirs) <= 1:
        return [_report_job(r, corpus, decoder_steps, seed, progress) for r in run_dirs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    log.info("building %d report pages, %d at a time", len(run_dirs), jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method)) as pool:
        futures = [pool.submit(_report_job, r, corpus, decoder_steps, seed, False) for r in run_dirs]
        out = []
        for r, f in zip(run_dirs, futures, strict=True):
            out.append(f.result())
            log.info("report of %s: %s (%.0f s)", r.name, out[-1][0], out[-1][1])
        return out


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    steps: int | None = None,
    seed: int = 0,
    overrides: list[str] | None = None,
    progress: bool = True,
    report: bool = True,
    report_decoder_steps: int = 200,
    models: dict[str, str] | None = None,
) -> DemoResult:
    """Run the whole demo; ``steps`` overrides each model's training budget (the presets' by default).

    With ``report`` (the default) each run ends with its report page, whose per-module decoders train
    for ``report_decoder_steps`` steps. ``models`` (display name -> preset) replaces the default V-GIM and
    GIM, e.g. to add the VQ-GIM, APC-GIM and VAE rows.
    """
    chosen = dict(models) if models else dict(DEMO_MODELS)
    configs = [load_config(preset, list(overrides or [])) for preset in chosen.values()]  # unknown: fails now
    data = configs[0].data  # every model trains and is probed on the corpus the first preset names
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    root, manifest = corpus_location(data, progress=progress)
    corpus = load_corpus(root, manifest=manifest, progress=progress)
    split = EvaluationSplit(corpus.subset("train"), corpus.subset("test"))
    seconds["corpus"] = time.perf_counter() - t0
    log.info("corpus %s: %d train / %d test utterances", root, len(split.train), len(split.test))

    trained: dict[str, Stack] = {}
    for name, preset in chosen.items():
        extra = list(overrides or []) + [f"train.seed={seed}"]
        if steps is not None:
            extra.append(f"train.steps={steps}")
        cfg = load_config(preset, extra)
        run_dir = out / preset
        t1 = time.perf_counter()
        # a folder holding a run of another config (other steps, seed or overrides) is refused, not reused
        RunDir(run_dir).train_or_reuse(cfg, partial(batches_from_corpus, cfg, split.train), progress=progress)
        seconds[f"train {preset}"] = time.perf_counter() - t1
        trained[name] = vgim.load(run_dir)

    t2 = time.perf_counter()
    results = evaluate_models(trained, split, seed=seed)
    seconds["probes"] = time.perf_counter() - t2
    table = results_table(results, "accuracy")
    snr = data.synthetic_noise_snr_db
    noise = f", every word in coloured noise at {snr[0]:g}-{snr[1]:g} dB SNR" if snr else ""
    header = (
        f"Linear-probe accuracy (%) on the held-out words of the embedded corpus{noise} "
        f"({len(split.train)} train / {len(split.test)} test utterances; syllable, vowel and consonant "
        "pooled per syllable, speaker per utterance).\n\n"
    )
    (out / "results.md").write_text(
        header + table + "\n\nMacro-F1 (%):\n\n" + results_table(results, "macro_f1") + "\n"
    )
    (out / "results.json").write_text(
        json.dumps({"results": results_to_json(results), "seconds": seconds}, indent=2) + "\n"
    )
    reports: dict[str, Path] = {}
    if report:
        t3 = time.perf_counter()
        jobs = min(len(chosen), os.cpu_count() or 1)
        built = _build_reports([out / p for p in chosen.values()], corpus, report_decoder_steps, seed, jobs, progress)
        for (name, preset), (path, secs) in zip(chosen.items(), built, strict=True):
            reports[name] = path
            seconds[f"report {preset}"] = secs
        seconds["reports (wall)"] = time.perf_counter() - t3
        (out / "results.json").write_text(
            json.dumps({"results": results_to_json(results), "seconds": seconds}, indent=2) + "\n"
        )
    return DemoResult(out_dir=out, results=results, table=table, seconds=seconds, reports=reports)
