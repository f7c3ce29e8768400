"""The run directory: one writer at a time, a folder of another config refused, finished runs reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tiny_config, toy_waves
from vgim.data.batches import CropBatches
from vgim.train import train
from vgim.train.rundir import RunDir, RunLockedError


def _batches(cfg):  # type: ignore[no-untyped-def]
    return CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=cfg.train.seed)


def test_a_second_writer_is_refused_while_the_first_holds_the_run(tmp_path: Path) -> None:
    cfg = tiny_config(steps=5)
    run = RunDir(tmp_path / "run")
    with run.lock():
        with pytest.raises(RunLockedError, match=r"being written by another vgim process \(pid \d+\)"):
            train(cfg, run.path, batches=_batches(cfg), progress=False)
        assert not run.checkpoint.exists()
    # released with its holder: the run can be trained now
    train(cfg, run.path, batches=_batches(cfg), progress=False)
    assert run.is_finished()


def test_train_or_reuse_reuses_the_same_config_and_refuses_another(tmp_path: Path) -> None:
    cfg = tiny_config(steps=5)
    run = RunDir(tmp_path / "run")
    assert run.saved_config() is None
    assert run.train_or_reuse(cfg, lambda: _batches(cfg)) is False
    mtime = run.export.stat().st_mtime_ns
    cfg.name = "renamed"
    cfg.train.threads = 1  # neither the name nor the thread count defines a run
    assert run.train_or_reuse(cfg, lambda: _batches(cfg)) is True
    assert run.export.stat().st_mtime_ns == mtime
    other = tiny_config(steps=6)
    with pytest.raises(ValueError, match="holds a run with another config"):
        run.train_or_reuse(other, lambda: _batches(other))
    (run.path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json: not a readable vgim config"):
        run.check_config(cfg)


def test_an_unfinished_run_is_resumed(tmp_path: Path) -> None:
    cfg = tiny_config(steps=10)
    run = RunDir(tmp_path / "run")
    train(cfg, run.path, batches=_batches(cfg), progress=False, stop_after=5)
    assert run.has_checkpoint() and not run.is_finished()
    assert run.train_or_reuse(cfg, lambda: _batches(cfg)) is False
    assert run.is_finished()


def test_the_cli_says_a_run_is_locked_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from vgim.cli import main

    run = RunDir(tmp_path / "run")
    with run.lock():
        assert main(["train", "--preset", "gim-small", "--out", str(run.path), "--quiet", "train.steps=1"]) == 2
    err = capsys.readouterr().err
    assert "being written by another vgim process" in err and "Traceback" not in err
