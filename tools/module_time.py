"""Where a GIM training step spends its time, module by module (BENCHMARKS.md, "Why the targets are not met").

For each of the `gim` preset's six modules, at batch 8 x 20480 samples of random audio, as training runs them
(mode `together`, freed memory kept for reuse): the encoder block's forward, the InfoNCE head's forward, the
backward of both, and the module's Adam step; median of 8 steps after 2 untimed ones, in milliseconds.

Usage: .venv/bin/python tools/module_time.py
"""
import statistics
import time
from collections import defaultdict

import torch

from vgim.allocator import keep_freed_memory
from vgim.config import load_config
from vgim.data.batches import Batch
from vgim.model import Stack
from vgim.objective import Objective
from vgim.train.loop import make_optimisers

keep_freed_memory()  # as vgim.train.loop.train does on CPU
torch.manual_seed(0); torch.set_flush_denormal(True)
cfg = load_config("gim")
stack = Stack(cfg.model); obj = Objective(stack, cfg.objective)
opts = make_optimisers(stack, obj, 1e-4)
x = 0.1 * torch.randn(8, 1, 20480)
times = defaultdict(list)
PARTS = ["encoder forward", "head forward", "backward", "Adam"]


def step(record):
    h = x; module_input = h.transpose(1, 2)
    for m in range(stack.n_modules):
        t0 = time.perf_counter()
        out = stack.block(m)(h, sample=True)
        t1 = time.perf_counter()
        loss = obj.module_loss(m, out, module_input, Batch(x)).loss
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opts[m].step(); opts[m].zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        if record:
            for part, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[m, part].append(dt)
        module_input = out.c.detach(); h = module_input.transpose(1, 2)


for _ in range(2): step(False)
for _ in range(8): step(True)
print(f"{'module':<8}" + "".join(f"{p:>17}" for p in PARTS) + f"{'total':>10}")
grand = 0.0
for m in range(stack.n_modules):
    row = [statistics.median(times[m, p]) * 1000 for p in PARTS]
    grand += sum(row)
    print(f"{m + 1:<8}" + "".join(f"{v:>17.1f}" for v in row) + f"{sum(row):>10.1f}")
print(f"sum of medians: {grand:.0f} ms per step")
