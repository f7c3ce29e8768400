from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import vgim
from conftest import tiny_config, toy_waves
from vgim.config import Config
from vgim.data.batches import Batch, CropBatches
from vgim.model import Stack
from vgim.objective import Objective
from vgim.train import get_lr, load_checkpoint, train


def _batches(cfg: Config) -> CropBatches:
    return CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=cfg.train.seed)


def _eval_losses(cfg: Config, stack: Stack, objective: Objective) -> list[float]:
    """Mean loss per module on fixed held-out batches, with fixed sampling noise."""
    batches = CropBatches(toy_waves(seed=99), cfg.data.crop_samples, 8, seed=123)
    totals = [0.0] * stack.n_modules
    with torch.no_grad():
        for step in range(8):
            torch.manual_seed(step)
            x = batches.batch(step).audio
            for m, ml in enumerate(objective(stack(x, sample=False), Batch(x))):
                totals[m] += float(ml.stats["infonce"]) / 8
    return totals


@pytest.mark.parametrize("mode", ["together", "sequential", "end_to_end"])
def test_training_lowers_each_module_loss(tmp_path: Path, mode: str) -> None:
    cfg = tiny_config(mode=mode, steps=150, variational=True, beta=0.001)
    torch.manual_seed(cfg.train.seed)
    stack0 = Stack(cfg.model)
    before = _eval_losses(cfg, stack0, Objective(stack0, cfg.objective))
    train(cfg, tmp_path / "run", batches=_batches(cfg), progress=False)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    stack = Stack(cfg.model)
    stack.load_state_dict(state["model"])
    objective = Objective(stack, cfg.objective)
    objective.load_state_dict(state["objective"])
    after = _eval_losses(cfg, stack, objective)
    trained = [1] if mode == "end_to_end" else [0, 1]  # end to end trains only the last module's W_k
    for m in trained:
        assert after[m] < before[m] - 0.05, (mode, m, before, after)


@pytest.mark.parametrize(
    ("head", "bottleneck"),
    [("infonce", "gaussian"), ("reconstruction", "identity"), ("apc", "identity"), ("infonce", "vq"), ("apc", "vq")],
)
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path: Path, head: str, bottleneck: str) -> None:
    cfg = tiny_config(steps=20, bottleneck=bottleneck, beta=0.0 if bottleneck == "identity" else 0.01)
    cfg.objective.head = head
    train(cfg, tmp_path / "full", batches=_batches(cfg), progress=False)
    part = train(cfg, tmp_path / "part", batches=_batches(cfg), progress=False, stop_after=10)
    assert part.step == 10
    assert not (tmp_path / "part" / "export").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, tmp_path / "part", batches=_batches(cfg), progress=False)
    done = train(cfg, tmp_path / "part", batches=_batches(cfg), progress=False, resume=True)
    assert done.step == 20
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["objective"]:
        assert torch.equal(a["objective"][key], b["objective"][key]), key
    # metrics were not duplicated by the resume
    with (tmp_path / "part" / "metrics.csv").open() as f:
        steps = [(r["step"], r["module"]) for r in csv.DictReader(f)]
    assert len(steps) == len(set(steps))


def test_run_directory_and_load(tmp_path: Path) -> None:
    cfg = tiny_config(steps=10)
    train(cfg, tmp_path / "run", batches=_batches(cfg), progress=False)
    run = tmp_path / "run"
    for name in [
        "config.json",
        "metrics.csv",
        "checkpoints/last.pt",
        "export/model.safetensors",
        "export/config.json",
    ]:
        assert (run / name).exists(), name
    assert any((run / "tensorboard").iterdir())
    model = vgim.load(run)
    from_ckpt = vgim.load(run / "checkpoints" / "last.pt")
    x = toy_waves(1)[0]
    for a, b in zip(model.extract_features(x), from_ckpt.extract_features(x), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(FileNotFoundError, match="not a vgim run"):
        vgim.load(tmp_path / "nothing")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable vgim checkpoint"):
        vgim.load(bad)


def test_lr_schedule() -> None:
    cfg = tiny_config().train
    cfg.warmup_steps = 10
    cfg.lr_schedule = "cosine"
    lrs = [get_lr(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(cfg.lr / 10)
    assert lrs[9] == pytest.approx(cfg.lr)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == pytest.approx(cfg.lr * 0.1, rel=0.05)


def test_files_shorter_than_a_crop_are_skipped_by_name(caplog: pytest.LogCaptureFixture) -> None:
    from vgim.data.corpus import AudioCorpus, Utterance
    from vgim.train import batches_from_corpus

    cfg = tiny_config()
    waves = toy_waves(3)
    waves[1] = waves[1][:1000]
    corpus = AudioCorpus([Utterance(f"f{i}.wav", {}) for i in range(3)], waves, 16000, [])
    with caplog.at_level("WARNING", logger="vgim"):
        batches = batches_from_corpus(cfg, corpus)
    assert len(batches.waves) == 2
    assert "f1.wav: shorter than one crop (1000 < 6400 samples)" in caplog.text
    cfg.data.pad_short = True
    assert len(batches_from_corpus(cfg, corpus).waves) == 3


@pytest.mark.parametrize("variational", [False, True])
def test_module_by_module_backward_equals_backward_of_the_summed_loss(variational: bool) -> None:
    """Mode ``together`` back-propagates each module as soon as it has run: same gradients as the sum."""
    from vgim.data.batches import Batch
    from vgim.train.loop import backward_step, forward_losses

    cfg = tiny_config(modules=[2, 2, 2], variational=variational, beta=0.01)
    torch.manual_seed(0)
    stack = Stack(cfg.model)
    objective = Objective(stack, cfg.objective)
    batch = Batch(0.1 * torch.randn(3, 1, 6400))
    params = list(stack.parameters()) + list(objective.parameters())
    if variational:
        # z = mu (no sampling noise), so both orders draw the same negatives; the KL terms still count.
        stack.eval()

    torch.manual_seed(1)
    total, losses, _ = forward_losses(stack, objective, batch, "together")
    total.backward()
    summed = [p.grad.clone() if p.grad is not None else None for p in params]
    for p in params:
        p.grad = None
    torch.manual_seed(1)  # the same negatives and the same reparameterisation noise
    total2, losses2, trained = backward_step(stack, objective, batch, "together")

    assert trained == [0, 1, 2]
    torch.testing.assert_close(total2, total.detach())
    assert not total2.requires_grad
    for m in losses:
        torch.testing.assert_close(losses2[m].loss, losses[m].loss.detach())
    assert all(g is not None for g in summed)
    for p, g in zip(params, summed, strict=True):
        assert p.grad is not None
        torch.testing.assert_close(p.grad, g)


def test_a_nan_loss_stops_the_run_without_applying_it_or_touching_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(steps=30)  # checkpoints every 10 steps
    calls = {"n": 0}
    real = Objective.module_loss

    def poisoned(self: Objective, m: int, *args: object, **kwargs: object) -> object:
        out = real(self, m, *args, **kwargs)  # type: ignore[arg-type]
        calls["n"] += 1
        if calls["n"] == 2 * 15 + 2:  # step 15, module 2
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(Objective, "module_loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"module 2's loss became nan at step 15 \(not applied"):
        train(cfg, tmp_path / "run", batches=_batches(cfg), progress=False)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_exponential_schedule_decays_once_per_epoch() -> None:
    cfg = Config().train
    cfg.lr, cfg.lr_schedule, cfg.lr_gamma = 0.01, "exponential", 0.5
    assert [get_lr(s, 100, cfg, epoch_steps=4) for s in (0, 3, 4, 8, 11)] == [0.01, 0.01, 0.005, 0.0025, 0.0025]


def test_fixed_crops_visit_every_file_once_per_epoch_at_one_offset() -> None:
    waves = [np.arange(100 + 10 * i, dtype=np.float32) + 1000 * i for i in range(7)]
    b = CropBatches(waves, 50, 3, seed=2, fixed=True)
    assert b.steps_per_epoch == 3
    epoch = [b.batch(s).audio[:, 0] for s in range(3)]
    assert [len(x) for x in epoch] == [3, 3, 1]  # the last batch holds the remainder
    firsts = sorted(int(row[0]) // 1000 for x in epoch for row in x)
    assert firsts == list(range(7))  # every file once
    starts = {int(row[0]) // 1000: int(row[0]) % 1000 for x in epoch for row in x}
    later = [b.batch(s).audio[:, 0] for s in range(3, 6)]
    assert {int(row[0]) // 1000: int(row[0]) % 1000 for x in later for row in x} == starts  # the same crops
    assert [int(r[0]) for r in epoch[0]] != [int(r[0]) for r in later[0]]  # in a new order
    assert len(set(starts.values())) > 1  # offsets drawn, not all at the start


def test_exponential_schedule_is_logged_per_epoch(tmp_path: Path) -> None:
    cfg = tiny_config(steps=8)
    cfg.train.lr_schedule, cfg.train.lr_gamma, cfg.train.log_every = "exponential", 0.5, 1
    cfg.data.crops = "fixed"
    batches = CropBatches(toy_waves(4), cfg.data.crop_samples, 2, seed=0, fixed=True)  # 4 files: 2 steps an epoch
    train(cfg, tmp_path / "run", batches=batches, progress=False)
    with open(tmp_path / "run" / "metrics.csv") as f:
        lrs = {int(r["step"]): float(r["lr"]) for r in csv.DictReader(f)}  # a row per module and step
    assert lrs == {s + 1: cfg.train.lr * 0.5 ** (s // 2) for s in range(8)}
