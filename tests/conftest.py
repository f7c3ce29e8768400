from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from vgim.config import Config, LayerSpec, ModelConfig, ObjectiveConfig, TrainConfig


def tiny_config(
    modules: list[int] | None = None,
    variational: bool = False,
    beta: float = 0.0,
    bottleneck: str = "",
    mode: str = "together",
    steps: int = 30,
) -> Config:
    """A few-thousand-parameter stack with 10 ms frames: conv(10/5), conv(8/4), conv(4/2)x3, GRU."""
    layers = [
        LayerSpec("conv", 16, 10, 5, 2),
        LayerSpec("conv", 16, 8, 4, 2),
        LayerSpec("conv", 16, 4, 2, 2),
        LayerSpec("conv", 16, 4, 2, 2),
        LayerSpec("conv", 16, 4, 2, 1),
        LayerSpec("gru", 16),
    ]
    cfg = Config(
        name="tiny",
        model=ModelConfig(
            layers=layers,
            modules=modules or [3, 3],
            bottleneck=bottleneck or ("gaussian" if variational else "identity"),
        ),
        objective=ObjectiveConfig(n_predictions=4, n_negatives=8, beta=beta, max_positions=32),
        train=TrainConfig(mode=mode, steps=steps, batch_size=4, lr=3e-3, checkpoint_every=10, log_every=5),  # type: ignore[arg-type]
    )
    cfg.data.crop_samples = 6400
    return cfg


def preset_step(name: str) -> tuple[torch.Tensor, dict[int, Any]]:
    """One training forward pass of preset ``name`` on two crops of noise: the loss and each module's losses."""
    from vgim.config import load_config
    from vgim.data.batches import Batch
    from vgim.model import Stack
    from vgim.objective import Objective
    from vgim.train.loop import forward_losses

    cfg = load_config(name)
    stack = Stack(cfg.model)
    batch = Batch(0.1 * torch.randn(2, 1, cfg.data.crop_samples))
    loss, losses, _ = forward_losses(stack, Objective(stack, cfg.objective), batch, cfg.train.mode)
    return loss, dict(losses)


def toy_waves(n: int = 12, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """Predictable 'speech-like' audio: harmonic tones whose pitch glides slowly, with syllable-rate AM."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    waves = []
    for _ in range(n):
        f0 = rng.uniform(100, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
        phase = 2 * np.pi * np.cumsum(f0) / 16000
        tone = sum(np.sin(h * phase) / h for h in range(1, 6))
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6))
        wave = 0.3 * env * tone + 0.01 * rng.standard_normal(t.shape)
        waves.append(wave.astype(np.float32))
    return waves


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
