"""Run folders shared by the experiments: train a config into a folder, or reuse the run already there.

A killed experiment is simply started again: a finished run (``export/model.safetensors``) whose saved config
is the one asked for is reused, an unfinished one is resumed from its last checkpoint, and a folder holding
a run of another config is an error (rather than a table that silently mixes configs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vgim.config import Config, config_from_dict
from vgim.data.corpus import AudioCorpus
from vgim.train.loop import CHECKPOINT, batches_from_corpus, train

__all__ = ["EXPORT", "check_run_config", "is_finished", "train_or_reuse"]

#: The exported weights of a finished run, relative to the run folder.
EXPORT = "export/model.safetensors"


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config without what does not define the run: its name and the torch thread count."""
    out = {k: v for k, v in cfg.items() if k != "name"}
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k != "threads"}
    return out


def is_finished(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished (exported) run."""
    return (Path(run_dir) / EXPORT).exists()


def check_run_config(cfg: Config, run_dir: str | Path) -> None:
    """Raise ``ValueError`` when ``run_dir`` holds a run whose config differs from ``cfg`` (name and thread
    count aside).

    The saved config is read through the dataclasses, so fields added since the run was saved take their
    defaults and do not count as a difference.
    """
    saved = Path(run_dir) / "config.json"
    if not saved.exists():
        return
    old = json.loads(config_from_dict(json.loads(saved.read_text())).to_json())
    if _comparable(old) != _comparable(json.loads(cfg.to_json())):
        raise ValueError(f"{run_dir} holds a run with another config than {cfg.name!r}: use another --out")


def train_or_reuse(cfg: Config, run_dir: str | Path, corpus: AudioCorpus, *, progress: bool = False) -> bool:
    """Train ``cfg`` on ``corpus`` into ``run_dir`` unless it is already finished there.

    Returns ``True`` when a finished run was reused, ``False`` when this call trained (or resumed) it.

    Raises
    ------
    ValueError
        ``run_dir`` holds a run of another config.
    """
    run_dir = Path(run_dir)
    check_run_config(cfg, run_dir)
    if is_finished(run_dir):
        return True
    resume = (run_dir / CHECKPOINT).exists()
    train(cfg, run_dir, batches=batches_from_corpus(cfg, corpus), resume=resume, progress=progress)
    return False
