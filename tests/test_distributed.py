"""Data-parallel training: two CPU processes (gloo) started by ``torchrun``, checked against one process.

The test starts ``torchrun --nproc_per_node 2`` on this very file; :func:`_worker` (below) runs in each rank.
Every rank works in a directory of its own (``rank0/``, ``rank1/``) and trains into the *relative* run
directories ``full`` and ``part``: whatever rank 1 might write would land under ``rank1/``, so an empty
``rank1/`` proves that only rank 0 writes a run. Each rank reports the batches it saw and its final
weights in ``rank{r}-*.pt`` beside those folders.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from conftest import tiny_config, toy_waves
from vgim.config import Config
from vgim.data.batches import Batch, CropBatches
from vgim.model import Stack
from vgim.objective import Objective
from vgim.train import load_checkpoint, train
from vgim.train.loop import backward_step, make_optimisers, step_seed

STEPS = 6
MODES = ["together", "sequential", "end_to_end"]


def _config(mode: str = "together") -> Config:
    cfg = tiny_config(mode=mode, steps=STEPS, variational=True, beta=0.01)
    cfg.train.checkpoint_every = 3
    cfg.train.log_every = 2
    return cfg


def _batches(cfg: Config) -> CropBatches:
    return CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=cfg.train.seed)


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------------------
# The worker: what every rank runs under torchrun.


class _Recording:
    """Crop batches that note the digest of every batch drawn, by step."""

    def __init__(self, inner: CropBatches) -> None:
        self.inner = inner
        self.seen: dict[int, str] = {}

    def batch(self, step: int, rank: int = 0) -> Batch:
        b = self.inner.batch(step, rank)
        self.seen[step] = _digest(b.audio)
        return b


def _worker(base: Path) -> None:
    import vgim.train.loop as loop

    rank = int(os.environ["RANK"])
    built: list[torch.nn.Module] = []

    class RecordingStack(Stack):  # keeps the trained model in reach once train() has returned
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            built.append(self)

    class RecordingObjective(Objective):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            built.append(self)

    loop.Stack = RecordingStack  # type: ignore[misc]
    loop.Objective = RecordingObjective  # type: ignore[misc]
    os.chdir(base / f"rank{rank}")

    def run(name: str, cfg: Config, **kwargs: Any) -> dict[str, Any]:
        built.clear()
        batches = _Recording(_batches(cfg))
        result = train(cfg, name, batches=batches, progress=False, **kwargs)
        stack, objective = built
        return {
            "step": result.step,
            "final": result.final,
            "seen": batches.seen,
            "model": {k: v.clone() for k, v in stack.state_dict().items()},
            "objective": {k: v.clone() for k, v in objective.state_dict().items()},
        }

    report: dict[str, Any] = {}
    for mode in MODES:
        report[mode] = run(mode, _config(mode))
    assert not dist.is_initialized(), "train() must destroy the process group it created"

    # A run killed after 3 steps, then resumed on both ranks. Rank 1 reads a copy of rank 0's checkpoint
    # (its own folder holds no run, as rank 1 never writes one).
    report["part"] = run("part", _config(), stop_after=3)
    if rank == 0:
        (base / "part-written").touch()
    else:
        while not (base / "part-written").exists():
            time.sleep(0.05)
        shutil.copytree(base / "rank0" / "part", base / "rank1" / "part")
    report["copy_before"] = _tree(Path("part"))
    report["resumed"] = run("part", _config(), resume=True)
    report["copy_after"] = _tree(Path("part"))
    torch.save(report, base / f"rank{rank}-report.pt")


# --------------------------------------------------------------------------------------------------------
# The test.


def _tree(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: size and digest (a changed or added file changes the tree)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _reference_ddp(cfg: Config, n_ranks: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Data-parallel training simulated in one process: each step, every rank's gradients (its own batch and
    its own seed), averaged, then one Adam step per module. What ``train`` under torchrun should compute."""
    t = cfg.train
    torch.set_flush_denormal(True)
    torch.manual_seed(t.seed)
    stack = Stack(cfg.model)
    objective = Objective(stack, cfg.objective)
    optimisers = make_optimisers(stack, objective, t.lr)
    params = list(stack.parameters()) + list(objective.parameters())
    batches = _batches(cfg)
    stack.train()
    objective.train()
    for step in range(t.steps):
        per_rank = []
        for rank in range(n_ranks):
            for p in params:
                p.grad = None
            torch.manual_seed(step_seed(t.seed, step, rank))
            backward_step(stack, objective, batches.batch(step, rank), t.mode)
            per_rank.append([p.grad for p in params])
        for p, grads in zip(params, zip(*per_rank, strict=True), strict=True):
            p.grad = None if grads[0] is None else torch.stack(grads).sum(0).div_(n_ranks)
        for opt in optimisers:
            opt.step()
    return stack.state_dict(), objective.state_dict()


@pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is not available"
)
def test_two_processes_train_like_one_process_averaging_both_batches(tmp_path: Path) -> None:
    for rank in range(2):
        (tmp_path / f"rank{rank}").mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__]
    proc = subprocess.run(cmd + [str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    reports = [torch.load(tmp_path / f"rank{r}-report.pt", weights_only=True) for r in range(2)]
    rank0 = tmp_path / "rank0"

    # both ranks end with bit-identical weights, in every mode, and report the same (averaged) losses
    for run in MODES + ["part", "resumed"]:
        a, b = reports[0][run], reports[1][run]
        for part in ["model", "objective"]:
            for key in a[part]:
                assert torch.equal(a[part][key], b[part][key]), (run, part, key)
                assert torch.isfinite(a[part][key]).all(), (run, key)
        assert a["step"] == b["step"]
        assert a["final"] == b["final"], run

    # ... having seen different batches at every step; rank 0 sees what a single process would see
    batches = _batches(_config())
    for step in range(STEPS):
        seen = [reports[r]["together"]["seen"][step] for r in range(2)]
        assert seen[0] != seen[1], step
        assert seen[0] == _digest(batches.batch(step).audio)
        assert seen[1] == _digest(batches.batch(step, 1).audio)

    # only rank 0 wrote the runs; rank 1's folder holds just the checkpoint copy it resumed from, unchanged
    for mode in MODES:
        for name in ["config.json", "metrics.csv", "checkpoints/last.pt", "export/model.safetensors"]:
            assert (rank0 / mode / name).exists(), (mode, name)
    assert sorted(p.name for p in (tmp_path / "rank1").iterdir()) == ["part"]
    assert reports[1]["copy_after"] == reports[1]["copy_before"]
    assert reports[0]["copy_after"] != reports[0]["copy_before"]  # rank 0 did write its run
    state = load_checkpoint(tmp_path / "rank1" / "part" / "checkpoints" / "last.pt")
    assert state["step"] == 3 and state["world_size"] == 2
    lines = (rank0 / "together" / "metrics.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * (STEPS // 2)  # header + one row per module per logged step, written once

    # killed after 3 steps and resumed on both ranks: the same weights as the uninterrupted run
    full = load_checkpoint(rank0 / "together" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(rank0 / "part" / "checkpoints" / "last.pt")
    assert resumed["step"] == STEPS
    for key in full["model"]:
        assert torch.equal(full["model"][key], resumed["model"][key]), key
        assert torch.equal(full["model"][key], reports[1]["resumed"]["model"][key]), key

    # the run is, bit for bit, one process averaging the gradients of both ranks' batches ...
    model, heads = _reference_ddp(_config(), n_ranks=2)
    for key, value in model.items():
        assert torch.equal(full["model"][key], value), key
    for key, value in heads.items():
        assert torch.equal(full["objective"][key], value), key
    # ... which is not what one process on rank 0's batches alone computes
    single = train(_config(), tmp_path / "single", batches=_batches(_config()), progress=False)
    assert single.step == STEPS
    one = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    assert any(not torch.equal(one["model"][k], full["model"][k]) for k in one["model"])
    assert "world_size" in one and one["world_size"] == 1


def test_one_process_stays_single_and_bad_setups_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from vgim.train.distributed import setup_distributed

    for key in ["WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"]:
        monkeypatch.delenv(key, raising=False)
    ddp, device = setup_distributed(torch.device("cpu"))
    assert (ddp.rank, ddp.world_size, ddp.enabled, ddp.is_main, device) == (0, 1, False, True, torch.device("cpu"))
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE not set; start the job with"):
        setup_distributed(torch.device("cpu"), enable=True)
    with pytest.raises(ValueError, match=r"CPU \(gloo\) or CUDA \(nccl\)"):
        setup_distributed(torch.device("mps"), enable=True)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
