"""Supervised baselines of the LibriSpeech recipe: their architecture and their (reused) training runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

import vgim
from vgim.config import Config, load_config
from vgim.evaluate.supervised import train_supervised_crops
from vgim.experiments.librispeech.inputs import Split
from vgim.experiments.librispeech.probing import Task
from vgim.model.stack import Stack
from vgim.train.rundir import RunDir

__all__ = ["SUPERVISED", "baseline_config", "supervised_baseline"]

SUPERVISED = ("supervised", "greedy supervised")


def supervised_baseline(
    cfg: Config,
    run_dir: Path,
    train: Split,
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


def baseline_config(configs: dict[str, Config], preset: str | None, overrides: list[str]) -> Config:
    """The baselines' architecture: ``preset`` (with the overrides), else the trained preset with the most
    modules (so greedy supervised has modules to cut between); never variational."""
    if preset is not None:
        cfg = load_config(preset, overrides)
    else:
        cfg = max(configs.values(), key=lambda c: len(c.model.modules))
    model = dataclasses.replace(cfg.model, bottleneck="identity", bottleneck_options={})
    objective = dataclasses.replace(cfg.objective, beta=0.0)
    return dataclasses.replace(cfg, name=f"{cfg.name}-baseline", model=model, objective=objective)
