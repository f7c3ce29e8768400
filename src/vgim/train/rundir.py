"""A run directory, the unit users pass around: its layout, its config check, its lock, train-or-reuse.

::

    RUN/config.json              the resolved config (the model is rebuilt from it)
    RUN/metrics.csv              one row per module per logged step (:mod:`vgim.train.metrics`)
    RUN/tensorboard/             the same scalars for TensorBoard
    RUN/checkpoints/last.pt      weights, heads, optimisers, step and config (written atomically)
    RUN/export/model.safetensors the encoder's weights once the run has finished, with export/config.json
                                 (not for ``train.mode = "frozen"``: decoders train on another run's encoder,
                                 unchanged, so their checkpoint keeps its SHA-256 instead and nothing exports it)
    RUN/.lock                    held by the process writing the run (released when it ends)

A finished run is one with ``export/model.safetensors``. A run directory holding another config is refused
(:meth:`RunDir.check_config`) by every command that trains into one, so a table never silently mixes configs.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vgim.config import Config, config_from_dict

if TYPE_CHECKING:
    from vgim.data.batches import StepBatches

__all__ = ["CHECKPOINT", "CONFIG", "EXPORT", "EXPORT_DIR", "METRICS", "RunDir", "RunLockedError"]

CONFIG = "config.json"
METRICS = "metrics.csv"
CHECKPOINT = "checkpoints/last.pt"
EXPORT_DIR = "export"
EXPORT = f"{EXPORT_DIR}/model.safetensors"
LOCK = ".lock"


class RunLockedError(FileExistsError):
    """Another process is writing the run directory (a :class:`FileExistsError`: the run is there, in use)."""


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config without what does not define the run: its name and the torch thread count."""
    out = {k: v for k, v in cfg.items() if k != "name"}
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k != "threads"}
    return out


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """``key: old -> new`` for every leaf where two config dicts differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(k), new.get(k), f"{where}.{k}" if where else str(k))
        return out
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


class RunDir:
    """The files of one training run under ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / CONFIG
        self.metrics_path = self.path / METRICS
        self.checkpoint = self.path / CHECKPOINT
        self.export_dir = self.path / EXPORT_DIR
        self.export = self.path / EXPORT

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def is_finished(self) -> bool:
        """Whether the run has finished (its weights are exported)."""
        return self.export.exists()

    def has_checkpoint(self) -> bool:
        return self.checkpoint.exists()

    def saved_config(self) -> Config | None:
        """The run's config, read through the dataclasses (fields added since take their defaults); None
        when the folder holds none. Raises ValueError naming the file when it does not parse."""
        path = self.config_path if self.config_path.exists() else self.export_dir / CONFIG
        if not path.exists():
            return None
        try:
            return config_from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: not a readable vgim config ({err})") from err

    def check_config(self, cfg: Config) -> None:
        """Raise ``ValueError`` when the folder holds a run whose config differs from ``cfg`` (its name and
        thread count aside)."""
        saved = self.saved_config()
        if saved is None:
            return
        diff = _differences(_comparable(json.loads(saved.to_json())), _comparable(json.loads(cfg.to_json())))
        if diff:
            shown = "; ".join(diff[:5]) + ("; ..." if len(diff) > 5 else "")
            raise ValueError(
                f"{self.path} holds a run with another config than {cfg.name!r} ({shown}): use another --out"
            )

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock while writing it: a second writer gets :class:`RunLockedError` at once
        instead of mixing its rows and checkpoints with the first's. The lock is the kernel's (``flock``),
        so it goes with the process that held it, however that process ends."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise RunLockedError(
                    f"{self.path} is being written by another vgim process (pid {holder}); "
                    "wait for it to finish or choose another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)

    def train_or_reuse(self, cfg: Config, batches: Callable[[], StepBatches], *, progress: bool = False) -> bool:
        """Train ``cfg`` on the batches that ``batches()`` makes (called only when there is training to do)
        here, unless the same config has finished here already; resume an unfinished run of it. Returns
        True when a finished run was reused.

        Raises ValueError when the folder holds a run of another config.
        """
        from vgim.train.loop import train

        self.check_config(cfg)
        if self.is_finished():
            return True
        train(cfg, self.path, batches=batches(), resume=self.has_checkpoint(), progress=progress)
        return False
