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
3. extracts every module's features of both splits and probes them: phones per label frame (each label
   frame gets the module frames whose centres fall in it, :func:`vgim.evaluate.frame_probe.align_features`)
   with :func:`vgim.evaluate.frame_probe.frame_phone_probe`; speakers on one vector per utterance (mean,
   or the last frame) with :func:`vgim.evaluate.probes.linear_probe`. Every speaker of the CPC split has
   utterances in both files, so the speaker probe uses the same utterance split;
4. runs the baselines on the same split and probes: MFCC, a randomly initialised encoder, a supervised
   encoder trained end to end and a "greedy supervised" one (each module with its own linear classifier,
   no gradient between modules), both trained once per task (phones, speakers) on random crops of the
   training split, like the papers' supervised rows;
5. writes ``results.md`` (our accuracies beside the papers') and ``results.json``.

LibriSpeech has about 36 million 10 ms frames; the probes' training and test frames are a seeded uniform
sample of at most ``max_train_frames`` / ``max_test_frames`` frames (``None``: all), held in memory as
float32 for every module of one model at a time. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

import vgim
from vgim.config import Config, load_config
from vgim.data.corpus import AudioCorpus
from vgim.data.librispeech import (
    DEFAULT_SUBSET,
    _subset_dir,
    corpus_alignments,
    load_librispeech,
    read_alignments,
    read_split,
)
from vgim.evaluate.baselines import mfcc_features, mfcc_frames
from vgim.evaluate.evaluation import random_init_model
from vgim.evaluate.frame_probe import AlignMode, align_features, frame_phone_probe
from vgim.evaluate.pooling import pool_utterance
from vgim.evaluate.probes import ProbeResult, linear_probe, results_to_json
from vgim.evaluate.supervised import train_supervised_crops
from vgim.frames import FrameInfo
from vgim.model.stack import Stack
from vgim.train.loop import batches_from_corpus
from vgim.train.rundir import RunDir

__all__ = [
    "PAPER_REPORTED",
    "PAPER_SOURCES",
    "LibriSpeechResult",
    "run_librispeech_experiment",
]

log = logging.getLogger("vgim")

#: Linear-probe accuracy (%) on LibriSpeech train-clean-100 reported by the papers: (phone, speaker).
PAPER_REPORTED: dict[str, tuple[float, float]] = {"MFCC": (39.7, 17.6), "CPC": (64.6, 97.4), "GIM": (62.5, 99.4)}
PAPER_SOURCES = (
    "van den Oord et al. 2018, Representation Learning with Contrastive Predictive Coding (MFCC, CPC); "
    "Loewe et al. 2019, Putting An End to End-to-End: Gradient-Isolated Learning of Representations (GIM)"
)

#: Row names of the presets whose numbers the papers report.
_DISPLAY = {"cpc": "CPC", "gim": "GIM", "vgim": "V-GIM"}
Task = Literal["phone", "speaker"]
_TASKS: tuple[Task, ...] = ("phone", "speaker")
SpeakerPool = Literal["mean", "last"]
_SUPERVISED = ("supervised", "greedy supervised")

#: ``extract(wave)``: one ``[time, channels]`` array per module of a feature source.
Extract = Callable[[np.ndarray], list[np.ndarray]]


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


@dataclass
class _Split:
    """One side of the probe: audio, phone labels, speakers and the label frames the phone probe uses."""

    corpus: AudioCorpus
    phones: list[np.ndarray]  # [U] int64 [L_u]
    speakers: list[str]
    frames: list[np.ndarray]  # [U] sorted indices into phones[u]: the sampled label frames

    @property
    def n_frames(self) -> int:
        return sum(int(f.shape[0]) for f in self.frames)

    def frame_labels(self) -> np.ndarray:
        return np.concatenate([p[f] for p, f in zip(self.phones, self.frames, strict=True)])


# ---------------------------------------------------------------------------- inputs


def _check_inputs(root: Path, subset: str, files: dict[str, Path]) -> None:
    """Fail before any work when a path is wrong, naming every missing one."""
    missing = [f"{what} {path}" for what, path in files.items() if not path.is_file()]
    try:
        _subset_dir(root, subset)
    except (FileNotFoundError, NotADirectoryError) as err:
        missing.insert(0, str(err))
    if missing:
        raise FileNotFoundError("missing input: " + "; ".join(missing))


def _spread(ids: list[str], n: int | None) -> list[str]:
    """At most ``n`` ids evenly spread over the list (every speaker keeps some utterances)."""
    if n is None or n >= len(ids):
        return ids
    if n < 1:
        raise ValueError(f"max_utterances must be >= 1 or None, got {n}")
    return [ids[i * len(ids) // n] for i in range(n)]


def _sample_frames(phones: Sequence[np.ndarray], budget: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    """A uniform sample of at most ``budget`` label frames over all utterances, as sorted indices per utterance."""
    lengths = np.array([p.shape[0] for p in phones], dtype=np.int64)
    total = int(lengths.sum())
    if budget is None or budget >= total:
        return [np.arange(n) for n in lengths]
    if budget < 1:
        raise ValueError(f"frame budgets must be >= 1 or None, got {budget}")
    chosen = np.sort(rng.choice(total, size=budget, replace=False))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    bounds = np.searchsorted(chosen, starts)
    return [chosen[bounds[u] : bounds[u + 1]] - starts[u] for u in range(len(phones))]


def _load_split(
    root: Path,
    subset: str,
    ids: list[str],
    alignments: dict[str, np.ndarray],
    name: str,
    budget: int | None,
    rng: np.random.Generator,
    progress: bool,
) -> _Split:
    corpus = load_librispeech(root, subset, utterances=ids, progress=progress)
    try:
        phones = corpus_alignments(corpus, alignments)
    except KeyError as err:
        raise ValueError(f"{name} split: {err.args[0]}") from None
    return _Split(corpus, phones, corpus.labels("speaker"), _sample_frames(phones, budget, rng))


# ---------------------------------------------------------------------------- features and probes


def _stack_extract(model: Stack) -> Extract:
    def extract(wave: np.ndarray) -> list[np.ndarray]:
        return [f.float().cpu().numpy() for f in model.extract_features(wave, 16000)]

    return extract


def _mfcc_extract(wave: np.ndarray) -> list[np.ndarray]:
    return [mfcc_features(wave, 16000)]


def _collect(
    extract: Extract,
    frames: Sequence[FrameInfo],
    split: _Split,
    *,
    align: AlignMode,
    speaker_pool: SpeakerPool,
    desc: str,
    progress: bool,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per module: the sampled label frames' features ``[N, C]`` and one pooled vector per utterance ``[U, C]``."""
    from tqdm.auto import tqdm

    n_modules = len(frames)
    rows: list[np.ndarray | None] = [None] * n_modules
    pooled: list[list[np.ndarray]] = [[] for _ in range(n_modules)]
    pos = 0
    utts = split.corpus.utterances
    for u, wave in enumerate(tqdm(split.corpus.waves, desc=desc, unit="utt", disable=not progress, leave=False)):
        feats = extract(wave)
        take = split.frames[u]
        for m in range(n_modules):
            try:
                aligned = align_features(feats[m], frames[m], int(split.phones[u].shape[0]), mode=align)
            except ValueError as err:
                raise ValueError(f"{utts[u].labels.get('utterance', utts[u].path)}: {err}") from err
            block = rows[m]
            if block is None:
                block = rows[m] = np.empty((split.n_frames, aligned.shape[1]), dtype=np.float32)
            block[pos : pos + take.shape[0]] = aligned[take]
            pooled[m].append(pool_utterance(feats[m], speaker_pool).astype(np.float32))
        pos += take.shape[0]
    return [r if r is not None else np.zeros((0, 0), np.float32) for r in rows], [np.stack(p) for p in pooled]


@dataclass(frozen=True)
class _ProbeSettings:
    epochs: int
    batch_size: int
    lr: float
    align: AlignMode
    speaker_pool: SpeakerPool
    seed: int


def _probe_source(
    name: str,
    extract: Extract,
    frames: Sequence[FrameInfo],
    train: _Split,
    test: _Split,
    settings: _ProbeSettings,
    *,
    tasks: Sequence[Task] = _TASKS,
    progress: bool,
) -> list[ProbeResult]:
    """Probe every module of one feature source for ``tasks``; rows named ``name`` (one module) or
    ``"<name> m<k>"``."""
    kw: dict[str, Any] = {"align": settings.align, "speaker_pool": settings.speaker_pool, "progress": progress}
    xtr, ptr = _collect(extract, frames, train, desc=f"features {name} (train)", **kw)
    xte, pte = _collect(extract, frames, test, desc=f"features {name} (test)", **kw)
    ytr, yte = train.frame_labels(), test.frame_labels()
    out: list[ProbeResult] = []
    for m in range(len(frames)):
        row = name if name == "MFCC" else f"{name} m{m + 1}"
        if "phone" in tasks:
            out.append(
                frame_phone_probe(
                    xtr[m],
                    ytr,
                    xte[m],
                    yte,
                    epochs=settings.epochs,
                    batch_size=settings.batch_size,
                    lr=settings.lr,
                    seed=settings.seed,
                    task="phone",
                    features=row,
                )
            )
        if "speaker" in tasks:
            out.append(
                linear_probe(
                    ptr[m], train.speakers, pte[m], test.speakers, task="speaker", features=row, seed=settings.seed
                )
            )
        xtr[m] = xte[m] = np.zeros((0, 0), np.float32)  # free this module's frames before the next one's probe
    return out


# ---------------------------------------------------------------------------- supervised baselines


def _supervised(
    cfg: Config,
    run_dir: Path,
    train: _Split,
    task: Task,
    *,
    greedy: bool,
    steps: int,
    seed: int,
    device: str,
    progress: bool,
) -> tuple[Stack, bool]:
    """Train (or reuse from ``run_dir``) a supervised encoder for ``task``; returns it and whether it was reused."""
    from vgim.train.loop import export_model

    ids = train.corpus.labels("utterance")
    settings = {
        "task": task,
        "greedy": greedy,
        "steps": steps,
        "seed": seed,
        "train_utterances": len(ids),
        "train_utterances_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
    }
    marker = run_dir / "supervised.json"
    export = run_dir / "export"
    if (export / "model.safetensors").exists() and marker.exists():
        RunDir(export).check_config(cfg)  # through the dataclasses: fields added since then take their defaults
        if json.loads(marker.read_text()) != settings:
            raise ValueError(f"{run_dir} holds a supervised baseline with other settings: use another --out")
        return vgim.load(export, device), True
    labels: list[np.ndarray] | list[str] = train.phones if task == "phone" else train.speakers
    stack = train_supervised_crops(
        cfg,
        train.corpus.waves,
        labels,
        level="frame" if task == "phone" else "utterance",
        steps=steps,
        greedy=greedy,
        seed=seed,
        progress=progress,
        device=device,
    )
    export_model(stack, cfg, export)
    marker.write_text(json.dumps(settings, indent=2) + "\n")
    return vgim.load(export, device), False


def _baseline_config(configs: dict[str, Config], preset: str | None, overrides: list[str]) -> Config:
    """The baselines' architecture: ``preset`` (with the overrides), else the trained preset with the most
    modules (so greedy supervised has modules to cut between); never variational."""
    if preset is not None:
        cfg = load_config(preset, overrides)
    else:
        cfg = max(configs.values(), key=lambda c: len(c.model.modules))
    model = dataclasses.replace(cfg.model, bottleneck="identity", bottleneck_options={})
    objective = dataclasses.replace(cfg.objective, beta=0.0)
    return dataclasses.replace(cfg, name=f"{cfg.name}-baseline", model=model, objective=objective)


# ---------------------------------------------------------------------------- table


def _row_order(results: Sequence[ProbeResult]) -> list[str]:
    return list(dict.fromkeys(r.features for r in results))


def _paper_key(row: str, last_rows: dict[str, str]) -> str | None:
    """The papers' row for our row: MFCC, and the last module of each model the papers report."""
    if row == "MFCC":
        return row
    return next((name for name, last in last_rows.items() if row == last and name in PAPER_REPORTED), None)


def _table(results: Sequence[ProbeResult], last_rows: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    cells = {(r.features, r.task): r.accuracy * 100 for r in results}
    lines = [
        "| features | phone | speaker | paper phone | paper speaker |",
        "|---|---:|---:|---:|---:|",
    ]
    rows: list[dict[str, Any]] = []
    for name in _row_order(results):
        key = _paper_key(name, last_rows)
        paper = PAPER_REPORTED.get(key) if key else None
        ours = [cells.get((name, t)) for t in _TASKS]
        fmt = ["-" if v is None else f"{v:.1f}" for v in ours]
        ref = ["-", "-"] if paper is None else [f"{v:.1f}" for v in paper]
        lines.append(f"| {name} | {' | '.join(fmt)} | {' | '.join(ref)} |")
        rows.append(
            {
                "features": name,
                "phone": ours[0],
                "speaker": ours[1],
                "paper_phone": None if paper is None else paper[0],
                "paper_speaker": None if paper is None else paper[1],
            }
        )
    return "\n".join(lines) + "\n", rows


# ---------------------------------------------------------------------------- the recipe


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
    baselines: bool = True,
    baseline_preset: str | None = None,
    supervised_steps: int | None = None,
    probe_epochs: int = 10,
    probe_batch_size: int = 1024,
    probe_lr: float = 1e-3,
    max_train_frames: int | None = 250_000,
    max_test_frames: int | None = 100_000,
    align: AlignMode = "mean",
    speaker_pool: SpeakerPool = "mean",
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
    baselines
        Also probe MFCC, a random-init encoder and the two supervised encoders.
    baseline_preset
        Architecture of the random-init and supervised encoders (with ``overrides``); default: the preset of
        ``presets`` with the most modules, without variational heads.
    supervised_steps
        Training steps of each supervised encoder (default: the baseline config's ``train.steps``, i.e.
        ``steps`` when given).
    probe_epochs, probe_batch_size, probe_lr
        The phone probe's schedule (:func:`frame_phone_probe`); ``quick``: at most 3 epochs.
    max_train_frames, max_test_frames
        Label frames sampled for the phone probe (``None``: all); ``quick``: at most 20000 / 10000.
    align
        How module frames are matched to 10 ms label frames (:func:`align_features`).
    speaker_pool
        ``"mean"`` over the utterance or its ``"last"`` frame (the context after the whole utterance).
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
    _check_inputs(root, subset, files)
    if not presets:
        raise ValueError("no presets to train")
    if quick:
        steps = 100 if steps is None else steps
        max_utterances = 200 if max_utterances is None else max_utterances
        probe_epochs = min(probe_epochs, 3)
        max_train_frames = min(max_train_frames or 20_000, 20_000)
        max_test_frames = min(max_test_frames or 10_000, 10_000)
    extra = [*overrides, f"train.seed={seed}"] + ([f"train.steps={steps}"] if steps is not None else [])
    configs = {preset: load_config(preset, extra) for preset in presets}
    run_dirs = {preset: out_dir / preset for preset in presets}
    base_cfg = _baseline_config(configs, baseline_preset, extra)
    for preset, cfg in configs.items():  # a wrong --out fails now, not after hours of training
        RunDir(run_dirs[preset]).check_config(cfg)
    if baselines:
        for label in _SUPERVISED:
            for task in _TASKS:
                RunDir(out_dir / f"{label.replace(' ', '-')}-{task}" / "export").check_config(base_cfg)
    dev = str(resolve_device(device))
    seconds: dict[str, float] = {}

    # data
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    labels = read_alignments(files["alignment file"])
    train_ids = _spread(read_split(files["train split file"]), max_utterances)
    test_ids = _spread(read_split(files["test split file"]), max_utterances)
    train = _load_split(root, subset, train_ids, labels, "train", max_train_frames, rng, progress)
    test = _load_split(root, subset, test_ids, labels, "test", max_test_frames, rng, progress)
    del labels
    seconds["load"] = time.perf_counter() - t
    log.info(
        "LibriSpeech: %d train / %d test utterances, %d speakers; phone probe on %d / %d label frames",
        len(train.corpus),
        len(test.corpus),
        len(set(train.speakers)),
        train.n_frames,
        test.n_frames,
    )
    settings = _ProbeSettings(probe_epochs, probe_batch_size, probe_lr, align, speaker_pool, seed)

    def probe(name: str, source: Stack | None, tasks: Sequence[Task] = _TASKS) -> list[ProbeResult]:
        t1 = time.perf_counter()
        if source is None:
            res = _probe_source(name, _mfcc_extract, [mfcc_frames(16000)], train, test, settings, progress=progress)
        else:
            extract = _stack_extract(source)
            res = _probe_source(name, extract, source.frames, train, test, settings, tasks=tasks, progress=progress)
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
        name = _DISPLAY.get(preset, preset)
        t = time.perf_counter()
        reused = RunDir(run_dirs[preset]).train_or_reuse(
            cfg, partial(batches_from_corpus, cfg, train.corpus), progress=progress
        )
        seconds[f"train {name}"] = time.perf_counter() - t
        runs[name] = {"preset": preset, "path": str(run_dirs[preset]), "reused": reused}
        model = vgim.load(run_dirs[preset], dev)
        last_rows[name] = f"{name} m{model.n_modules}"
        results += probe(name, model)

    if baselines:
        for label in _SUPERVISED:
            greedy = label.startswith("greedy")
            per_task: dict[str, list[ProbeResult]] = {}
            for task in _TASKS:
                run_dir = out_dir / f"{label.replace(' ', '-')}-{task}"
                t = time.perf_counter()
                stack, reused = _supervised(
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
                results += [per_task["phone"][m], per_task["speaker"][m]]

    table, rows = _table(results, last_rows)
    seconds["total"] = time.perf_counter() - t0
    chance = {task: next((r.chance for r in results if r.task == task), float("nan")) for task in _TASKS}
    header = _header(train, test, configs, quick, settings, chance, sup_steps if baselines else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = LibriSpeechResult(out_dir=out_dir, results=results, table=table, runs=runs, seconds=seconds)
    result.results_md.write_text(header + "\n" + table + "\n" + _footer() + "\n", encoding="utf-8")
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
                },
                "settings": {
                    "presets": list(presets),
                    "overrides": list(overrides),
                    "steps": {p: c.train.steps for p, c in configs.items()},
                    "supervised_steps": sup_steps if baselines else None,
                    "quick": quick,
                    "probe": dataclasses.asdict(settings),
                },
                "seconds": seconds,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    log.info("results: %s, %s", result.results_md, result.results_json)
    return result


def _header(
    train: _Split,
    test: _Split,
    configs: dict[str, Config],
    quick: bool,
    settings: _ProbeSettings,
    chance: dict[Task, float],
    sup_steps: int | None,
) -> str:
    steps = ", ".join(f"{_DISPLAY.get(p, p)} {c.train.steps}" for p, c in configs.items())
    lines = [
        "# LibriSpeech: linear probes of frozen features (accuracy, %)",
        "",
        ("**Quick smoke test: a few steps on a few utterances; not comparable with the papers.**\n" if quick else "")
        + f"Training and probe-training utterances: {len(train.corpus)} (train split); test utterances: "
        f"{len(test.corpus)} (test split); {len(set(train.speakers) | set(test.speakers))} speakers. "
        f"Training steps: {steps}"
        + (f"; supervised baselines {sup_steps} each" if sup_steps is not None else "")
        + ".",
        "",
        f"Phone: linear classifier per 10 ms label frame ({settings.epochs} epochs of Adam, lr {settings.lr:g}, "
        f"batch {settings.batch_size}; module frames matched to label frames by `{settings.align}`), trained on "
        f"{train.n_frames} of {sum(int(p.shape[0]) for p in train.phones)} training frames and scored on "
        f"{test.n_frames} of {sum(int(p.shape[0]) for p in test.phones)} test frames (uniform sample); "
        f"majority class {chance['phone'] * 100:.1f}%. Speaker: logistic regression on the utterance "
        f"{settings.speaker_pool}; majority class {chance['speaker'] * 100:.1f}%.",
        "",
        "Rows `<model> m<k>` are module k; the papers' numbers stand beside MFCC and the last module of CPC "
        "and GIM. Supervised rows: the phone column comes from an encoder trained on phones, the speaker "
        "column from one trained on speakers (same architecture as random init).",
    ]
    return "\n".join(lines) + "\n"


def _footer() -> str:
    return f"Papers: {PAPER_SOURCES}. Produced by `vgim experiment librispeech`."
