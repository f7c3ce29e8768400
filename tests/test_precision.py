"""Mixed precision (``train.precision = "bf16"``): the encoder under bfloat16 autocast, the rest in float32."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import tiny_config, toy_waves
from vgim.cli import main
from vgim.config import ConfigError, load_config
from vgim.data.batches import Batch, CropBatches
from vgim.model import Stack
from vgim.objective import Objective
from vgim.train import load_checkpoint, train
from vgim.train.loop import autocast_dtype, backward_step


def test_a_bf16_run_trains_and_records_its_precision(tmp_path: Path) -> None:
    cfg = tiny_config(steps=120, variational=True, beta=0.001)
    cfg.train.precision = "bf16"
    batches = CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=cfg.train.seed)
    train(cfg, tmp_path / "run", batches=batches, progress=False)

    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for m in ["0", "1"]:
        infonce = [float(r["infonce"]) for r in rows if r["module"] == m]
        assert all(math.isfinite(v) for v in infonce)
        first, last = sum(infonce[:3]) / 3, sum(infonce[-3:]) / 3
        assert last < first - 0.1, (m, first, last)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == "bf16"
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["config"]["train"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 for v in state["model"].values())  # the weights stay float32


@pytest.mark.parametrize("mode", ["together", "sequential", "end_to_end"])
def test_bf16_runs_the_encoder_in_bfloat16_and_the_objective_in_float32(mode: str) -> None:
    cfg = tiny_config(variational=True, beta=0.01, mode=mode)
    stack = Stack(cfg.model)
    objective = Objective(stack, cfg.objective)
    seen: list[torch.dtype] = []
    stack.blocks[0].encoder[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    total, losses, trained = backward_step(
        stack,
        objective,
        Batch(0.1 * torch.randn(2, 1, 6400)),
        mode,
        1 if mode == "sequential" else None,
        amp_dtype=torch.bfloat16,
    )
    assert seen == [torch.bfloat16]
    assert total.dtype == torch.float32 and torch.isfinite(total)
    assert all(ml.loss.dtype == torch.float32 for ml in losses.values())
    for m in trained:
        for p in list(stack.blocks[m].parameters()) + list(objective.heads[m].parameters()):
            assert p.grad is None or p.grad.dtype == torch.float32


def test_precision_option_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_config("gim-small").train.precision == "fp32"
    assert load_config("gim-small", ["train.precision=bf16"]).train.precision == "bf16"
    with pytest.raises(ConfigError, match=r"train.precision: expected one of \['fp32', 'bf16'\], got 'fp16'"):
        load_config("gim-small", ["train.precision=fp16"])
    assert main(["train", "--out", str(tmp_path / "r"), "train.precision=fp16"]) == 2
    assert "train.precision" in capsys.readouterr().err
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="bfloat16"):
        autocast_dtype("bf16", torch.device("mps"))
