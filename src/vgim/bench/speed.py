"""Feature extraction and matmul speed (part of :mod:`vgim.bench`)."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from vgim.bench.machine import sync
from vgim.config import Config, load_config
from vgim.frames import SAMPLE_RATE
from vgim.model.stack import Stack

__all__ = ["measure_features", "measure_matmul"]


@torch.no_grad()
def measure_features(
    cfg: Config | str, seconds: float = 10.0, reps: int = 3, device: str = "auto"
) -> tuple[float, float]:
    """``Stack.extract_features`` speed on ``seconds`` of random 16 kHz audio: returns
    (multiple of real time, wall seconds per call)."""
    from vgim.train.loop import resolve_device

    config = load_config(cfg) if isinstance(cfg, str) else cfg
    model_cfg = dataclasses.replace(config.model, bottleneck="identity", bottleneck_options={})
    torch.manual_seed(0)
    dev = resolve_device(device)
    stack = Stack(model_cfg).to(dev).eval()
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    stack.extract_features(wave)  # warm-up
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        stack.extract_features(wave)
    sync(dev)
    per_call = (time.perf_counter() - t0) / reps
    return seconds / per_call, per_call


def measure_matmul(n: int = 2048, reps: int = 5, device: str = "auto", dtype: torch.dtype = torch.float32) -> float:
    """``torch.matmul`` throughput of ``n x n`` by ``n x n`` in ``dtype`` (default fp32) in FLOP/s (``2 n^3``
    per product), from the fastest of ``reps`` timed products after one untimed one."""
    from vgim.train.loop import resolve_device

    dev = resolve_device(device)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dev, dtype)
    b = torch.randn(n, n, generator=g).to(dev, dtype)
    out = torch.empty(n, n, device=dev, dtype=dtype)
    torch.matmul(a, b, out=out)  # warm-up
    sync(dev)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=out)
        sync(dev)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best
