"""The papers' LibriSpeech study in one call: train CPC / GIM / V-GIM, probe every module, write the table.

The CPC paper (van den Oord et al. 2018) and the GIM paper (Loewe et al. 2019) train on LibriSpeech
``train-clean-100`` and probe the frozen features with two linear classifiers: frame-level phone
classification (41 classes, 10 ms label frames from ``converted_aligned_phones.txt``) and speaker
classification (251 speakers), on the utterance split of ``train_split.txt`` / ``test_split.txt``.
:func:`run_librispeech_experiment`

1. loads the utterances of both split files (:func:`vgim.data.librispeech.load_librispeech`) and their
   phone labels;
2. trains every preset (``cpc``, ``gim``, ``vgim``: the papers' settings) on the training split into
   ``<out>/<preset>``; a finished run whose config matches is reused and an unfinished one resumed, so a
   killed experiment is simply started again;
3. extracts every module's features of both splits and probes them as the probe protocol says
   (:mod:`~vgim.experiments.librispeech.protocol`; default ``"gim"``, the GIM paper's code): phones per
   10 ms label frame with :func:`vgim.evaluate.frame_probe.frame_phone_probe`, the frames paired with the
   labels by :func:`vgim.evaluate.frame_probe.align_features` (``"gim"``: the last ``len(labels)``
   outputs); speakers on one vector per 20480-sample window (or per utterance). Every speaker of the CPC
   split has utterances in both files, so the speaker probe uses the same utterance split;
4. runs the baselines on the same split and probes: MFCC, a randomly initialised encoder, a supervised
   encoder trained end to end and a "greedy supervised" one (each module with its own linear classifier,
   no gradient between modules), both trained once per task (phones, speakers) on random crops of the
   training split, like the papers' supervised rows;
5. writes ``results.md`` (our accuracies beside the papers') and ``results.json``.

LibriSpeech has about 36 million 10 ms frames; the ``"gim"`` protocol probes all of them, the ``"sampled"``
one a seeded uniform sample of at most ``max_train_frames`` / ``max_test_frames``. They are held in memory
as float32, for as many modules of one model at a time as fit ``probe_memory_gb`` (more passes over the
audio otherwise). Nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import vgim
from vgim.config import load_config
from vgim.data.librispeech import DEFAULT_SUBSET, read_alignments, read_split
from vgim.evaluate.baselines import mfcc_frames
from vgim.evaluate.evaluation import random_init_model
from vgim.evaluate.frame_probe import AlignMode, Pairing
from vgim.evaluate.probes import ProbeResult
from vgim.evaluate.tables import results_to_json
from vgim.experiments.librispeech.baselines import SUPERVISED, baseline_config, supervised_baseline
from vgim.experiments.librispeech.inputs import (
    check_inputs,
    check_training_data,
    load_extra_audio,
    load_split,
    merge_training_audio,
)
from vgim.experiments.librispeech.probing import TASKS, Task, mfcc_extract, probe_source, stack_extract
from vgim.experiments.librispeech.protocol import ProbeSettings, SpeakerPool, resolve_protocol
from vgim.experiments.librispeech.table import (
    DISPLAY,
    PAPER_REPORTED,
    PAPER_SOURCES,
    results_footer,
    results_header,
    results_table,
)
from vgim.frames import SAMPLE_RATE
from vgim.model.stack import Stack
from vgim.train.loop import batches_from_corpus
from vgim.train.rundir import RunDir

__all__ = ["LibriSpeechResult", "run_librispeech_experiment"]

log = logging.getLogger("vgim")


@dataclass
class LibriSpeechResult:
    """What :func:`run_librispeech_experiment` produced.

    Attributes
    ----------
    out_dir
        The output folder (run folders, ``results.md``, ``results.json``).
    results
        One :class:`ProbeResult` per (feature set, task); feature sets are named ``"<model> m<k>"`` or
        ``"MFCC"``.
    table
        The Markdown table of ``results.md`` (percent; the papers' numbers beside ours).
    runs
        Per row name (``"CPC"``, ``"supervised phone"``, ...): ``{"path": ..., "reused": bool}``.
    seconds
        Wall time per stage.
    """

    out_dir: Path
    results: list[ProbeResult]
    table: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def results_md(self) -> Path:
        return self.out_dir / "results.md"

    @property
    def results_json(self) -> Path:
        return self.out_dir / "results.json"


def _spread(ids: list[str], n: int | None) -> list[str]:
    """At most ``n`` ids evenly spread over the list (every speaker keeps some utterances)."""
    if n is None or n >= len(ids):
        return ids
    if n < 1:
        raise ValueError(f"max_utterances must be >= 1 or None, got {n}")
    return [ids[i * len(ids) // n] for i in range(n)]


def run_librispeech_experiment(
    root: str | Path,
    *,
    alignments: str | Path,
    train_split: str | Path,
    test_split: str | Path,
    subset: str = DEFAULT_SUBSET,
    presets: Sequence[str] = ("cpc", "gim", "vgim"),
    out: str | Path = "runs/librispeech",
    steps: int | None = None,
    overrides: Sequence[str] = (),
    max_utterances: int | None = None,
    extra_audio: str | Path | None = None,
    baselines: bool = True,
    baseline_preset: str | None = None,
    supervised_steps: int | None = None,
    protocol: str | ProbeSettings = "gim",
    pairing: Pairing | None = None,
    probe_epochs: int | None = None,
    probe_batch_size: int | None = None,
    probe_lr: float | None = None,
    max_train_frames: int | None = None,
    max_test_frames: int | None = None,
    align: AlignMode | None = None,
    speaker_pool: SpeakerPool | None = None,
    speaker_window: int | None = None,
    speaker_epochs: int | None = None,
    speaker_lr: float | None = None,
    probe_memory_gb: float = 16.0,
    seed: int = 0,
    device: str = "auto",
    quick: bool = False,
    progress: bool = True,
) -> LibriSpeechResult:
    """Train ``presets`` on the training split of LibriSpeech, probe them and the baselines, write the table.

    Parameters
    ----------
    root
        Folder holding ``<subset>/`` (or ``LibriSpeech/<subset>/``) in the layout of openslr.org.
    alignments, train_split, test_split
        The CPC files ``converted_aligned_phones.txt``, ``train_split.txt`` and ``test_split.txt``.
    subset
        The LibriSpeech subset folder (the papers: ``train-clean-100``).
    presets
        Presets to train (rows ``CPC``, ``GIM``, ``V-GIM`` for ``cpc``, ``gim``, ``vgim``; other presets keep
        their name), each into ``<out>/<preset>``.
    out
        Output folder: run folders, ``supervised-*`` baselines, ``results.md``, ``results.json``.
    steps
        Training steps of every preset (default: the presets'; ``quick``: 100).
    overrides
        ``section.key=value`` overrides applied to every preset (e.g. a smaller model).
    max_utterances
        Use at most this many utterances of each split file, evenly spread over it (every speaker keeps
        some); ``quick``: 200.
    extra_audio
        Unlabelled audio the presets also train on (not the baselines, and never probed): a manifest CSV (its
        ``train`` rows when it has a ``split`` column) or a folder, e.g. the other languages of
        ``vgim data prompts``. Files named like an utterance of either split file are left out.
    baselines
        Also probe MFCC, a random-init encoder and the two supervised encoders.
    baseline_preset
        Architecture of the random-init and supervised encoders (with ``overrides``); default: the preset of
        ``presets`` with the most modules, without variational heads.
    supervised_steps
        Training steps of each supervised encoder (default: the baseline config's ``train.steps``, i.e.
        ``steps`` when given).
    protocol
        The probe protocol: ``"gim"`` (the GIM paper's code) or ``"sampled"`` (the recipe's earlier
        choices), see :mod:`~vgim.experiments.librispeech.protocol`, or full :class:`ProbeSettings`. The
        arguments below change single settings of it; ``None`` keeps the protocol's.
    pairing
        ``"gim"`` (the last ``len(labels)`` outputs) or ``"centre"`` (by frame centres), see
        :func:`align_features`.
    probe_epochs, probe_batch_size, probe_lr
        The phone probe's schedule (:func:`frame_phone_probe`; batch size 0: one utterance per step);
        ``quick``: at most 3 epochs.
    max_train_frames, max_test_frames
        Label frames sampled for the phone probe (0: all); ``quick``: at most 20000 / 10000.
    align
        ``"mean"`` or ``"nearest"`` module frame(s) per label frame (:func:`align_features`).
    speaker_pool, speaker_window, speaker_epochs, speaker_lr
        One speaker vector per window of ``speaker_window`` samples (0: per utterance): the ``"mean"`` of its
        frames, the ``"last"`` (the context after the whole window) or all of them ``"flat"``; the Adam
        schedule of the speaker probe; ``quick``: at most 5 epochs.
    probe_memory_gb
        Memory for the phone probe's frames of one model (float32); more passes over the audio beyond it.
    seed
        Training seed of every preset and baseline, and seed of the probes and the frame sample.
    device
        Device of feature extraction and of the supervised baselines (``auto``: CUDA, MPS, else CPU); the
        presets train on their ``train.device``.
    quick
        A smoke test: few steps, few utterances, small probes (see above).
    progress
        Progress bars.

    Returns
    -------
    LibriSpeechResult

    Raises
    ------
    FileNotFoundError
        A path is wrong (every missing one is named), before anything is loaded.
    ValueError
        An output run folder holds another config, utterances lack phone labels, or the labels do not fit
        the audio.
    """
    from vgim.train.loop import resolve_device

    t0 = time.perf_counter()
    root, out_dir = Path(root), Path(out)
    files = {
        "alignment file": Path(alignments),
        "train split file": Path(train_split),
        "test split file": Path(test_split),
    }
    check_inputs(root, subset, files)
    if not presets:
        raise ValueError("no presets to train")
    settings = resolve_protocol(
        protocol,
        pairing=pairing,
        epochs=probe_epochs,
        batch_size=probe_batch_size,
        lr=probe_lr,
        max_train_frames=max_train_frames,
        max_test_frames=max_test_frames,
        align=align,
        speaker_pool=speaker_pool,
        speaker_window=speaker_window,
        speaker_epochs=speaker_epochs,
        speaker_lr=speaker_lr,
        seed=seed,
    )
    if quick:
        steps = 100 if steps is None else steps
        max_utterances = 200 if max_utterances is None else max_utterances
        settings = resolve_protocol(
            settings,
            epochs=min(settings.epochs, 3),
            speaker_epochs=min(settings.speaker_epochs, 5),
            max_train_frames=min(settings.max_train_frames or 20_000, 20_000),
            max_test_frames=min(settings.max_test_frames or 10_000, 10_000),
        )
    extra = [*overrides, f"train.seed={seed}"] + ([f"train.steps={steps}"] if steps is not None else [])
    configs = {preset: load_config(preset, extra) for preset in presets}
    run_dirs = {preset: out_dir / preset for preset in presets}
    base_cfg = baseline_config(configs, baseline_preset, extra)
    for preset, cfg in configs.items():  # a wrong --out fails now, not after hours of training
        RunDir(run_dirs[preset]).check_config(cfg)
    if baselines:
        for label in SUPERVISED:
            for task in TASKS:
                RunDir(out_dir / f"{label.replace(' ', '-')}-{task}" / "export").check_config(base_cfg)
    dev = str(resolve_device(device))
    seconds: dict[str, float] = {}

    # data
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    labels = read_alignments(files["alignment file"])
    train_ids = _spread(read_split(files["train split file"]), max_utterances)
    test_ids = _spread(read_split(files["test split file"]), max_utterances)
    train = load_split(root, subset, train_ids, labels, "train", settings.max_train_frames, rng, progress)
    test = load_split(root, subset, test_ids, labels, "test", settings.max_test_frames, rng, progress)
    del labels
    extra_data = None
    if extra_audio is not None:
        extra_data = load_extra_audio(
            extra_audio,
            {u for key in ("train split file", "test split file") for u in read_split(files[key])},
            progress,
        )
    training_audio = merge_training_audio(train.corpus, extra_data)
    training_data = {
        "train_utterances": len(train.corpus),
        "extra_audio": None if extra_data is None else {"source": extra_data.source, "files": len(extra_data.corpus)},
    }
    seconds["load"] = time.perf_counter() - t
    log.info(
        "LibriSpeech: %d train / %d test utterances, %d speakers; phone probe on %d / %d label frames; probe "
        "protocol %s",
        len(train.corpus),
        len(test.corpus),
        len(set(train.speakers)),
        train.n_frames,
        test.n_frames,
        settings.protocol,
    )
    # a corpus of one speaker (e.g. the English Asterisk prompts) has no speaker task: its column stays "-"
    active_tasks: tuple[Task, ...] = TASKS if len(set(train.speakers)) >= 2 else ("phone",)
    if "speaker" not in active_tasks:
        log.warning("the training split has one speaker (%s): the speaker probe is skipped", train.speakers[0])

    def probe(name: str, source: Stack | None, tasks: Sequence[Task] = active_tasks) -> list[ProbeResult]:
        t1 = time.perf_counter()
        kw: dict[str, Any] = {"tasks": tasks, "memory_gb": probe_memory_gb, "progress": progress}
        if source is None:
            res = probe_source(name, mfcc_extract, [mfcc_frames(SAMPLE_RATE)], train, test, settings, **kw)
        else:
            res = probe_source(name, stack_extract(source), source.frames, train, test, settings, **kw)
        seconds["probes"] = seconds.get("probes", 0.0) + time.perf_counter() - t1
        return res

    results: list[ProbeResult] = []
    runs: dict[str, dict[str, Any]] = {}
    last_rows: dict[str, str] = {}
    sup_steps = base_cfg.train.steps if supervised_steps is None else supervised_steps
    if baselines:
        results += probe("MFCC", None)
        results += probe("random init", random_init_model(Stack(base_cfg.model), seed))

    for preset, cfg in configs.items():
        name = DISPLAY.get(preset, preset)
        t = time.perf_counter()
        check_training_data(run_dirs[preset], training_data)
        reused = RunDir(run_dirs[preset]).train_or_reuse(
            cfg, partial(batches_from_corpus, cfg, training_audio), progress=progress
        )
        seconds[f"train {name}"] = time.perf_counter() - t
        runs[name] = {"preset": preset, "path": str(run_dirs[preset]), "reused": reused}
        model = vgim.load(run_dirs[preset], dev)
        last_rows[name] = f"{name} m{model.n_modules}"
        results += probe(name, model)

    if baselines:
        for label in SUPERVISED:
            greedy = label.startswith("greedy")
            per_task: dict[str, list[ProbeResult]] = {}
            for task in active_tasks:
                run_dir = out_dir / f"{label.replace(' ', '-')}-{task}"
                t = time.perf_counter()
                stack, reused = supervised_baseline(
                    base_cfg,
                    run_dir,
                    train,
                    task,
                    greedy=greedy,
                    steps=sup_steps,
                    seed=seed,
                    device=dev,
                    progress=progress,
                )
                seconds[f"train {label} {task}"] = time.perf_counter() - t
                runs[f"{label} {task}"] = {"path": str(run_dir), "reused": reused}
                per_task[task] = probe(label, stack, tasks=[task])
            # one row per module: the phone column from the phone-trained encoder, speakers from the other
            for m in range(len(per_task["phone"])):
                results += [per_task[task][m] for task in active_tasks]

    table, rows = results_table(results, last_rows)
    seconds["total"] = time.perf_counter() - t0
    chance = {task: next((r.chance for r in results if r.task == task), float("nan")) for task in TASKS}
    header = results_header(
        train,
        test,
        configs,
        quick,
        settings,
        chance,
        sup_steps if baselines else None,
        None if extra_data is None else extra_data.describe(),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    result = LibriSpeechResult(out_dir=out_dir, results=results, table=table, runs=runs, seconds=seconds)
    result.results_md.write_text(header + "\n" + table + "\n" + results_footer() + "\n", encoding="utf-8")
    result.results_json.write_text(
        json.dumps(
            {
                "table": rows,
                "results": results_to_json(results),
                "paper_reported": {k: {"phone": v[0], "speaker": v[1]} for k, v in PAPER_REPORTED.items()},
                "paper_sources": PAPER_SOURCES,
                "runs": runs,
                "data": {
                    "root": str(root),
                    "subset": subset,
                    "train_utterances": len(train.corpus),
                    "test_utterances": len(test.corpus),
                    "speakers": len(set(train.speakers) | set(test.speakers)),
                    "skipped": len(train.corpus.skipped) + len(test.corpus.skipped),
                    "train_label_frames": train.n_frames,
                    "test_label_frames": test.n_frames,
                    "train_label_frames_total": sum(int(p.shape[0]) for p in train.phones),
                    "test_label_frames_total": sum(int(p.shape[0]) for p in test.phones),
                    "extra_audio": None if extra_data is None else extra_data.describe(),
                },
                "settings": {
                    "presets": list(presets),
                    "overrides": list(overrides),
                    "steps": {p: c.train.steps for p, c in configs.items()},
                    "supervised_steps": sup_steps if baselines else None,
                    "quick": quick,
                    "probe": settings.describe(),
                },
                "seconds": seconds,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    # a second command with another --protocol rewrites results.md: each protocol's latest tables stay beside it
    # (results-gim.md, results-sampled.md; results-gim-custom.md where single settings were changed)
    tag = settings.protocol.rstrip("+") + ("-custom" if settings.protocol.endswith("+") else "")
    for path in (result.results_md, result.results_json):
        shutil.copyfile(path, path.with_name(f"{path.stem}-{tag}{path.suffix}"))
    log.info("results: %s, %s", result.results_md, result.results_json)
    return result
