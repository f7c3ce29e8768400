"""Profile one training step of a preset by operator (BENCHMARKS.md, "Why the targets are not met").

Usage: .venv/bin/python tools/profile_step.py gim together
"""
import sys

import torch

from vgim.allocator import keep_freed_memory
from vgim.config import load_config
from vgim.data.batches import Batch
from vgim.model import Stack
from vgim.objective import Objective
from vgim.train.loop import backward_step, make_optimisers

keep_freed_memory()  # as vgim.train.loop.train does on CPU
torch.manual_seed(0); torch.set_flush_denormal(True)
name, mode = sys.argv[1], sys.argv[2]
cfg = load_config(name)
stack = Stack(cfg.model); obj = Objective(stack, cfg.objective)
opts = make_optimisers(stack, obj, 1e-4)
def upd(m, l):
    opts[m].step(); opts[m].zero_grad(set_to_none=True)
b = Batch(0.1 * torch.randn(8, 1, 20480))
for _ in range(2):
    backward_step(stack, obj, b, mode, None, update=upd)
from torch.profiler import ProfilerActivity, profile

with profile(activities=[ProfilerActivity.CPU]) as prof:
    backward_step(stack, obj, b, mode, None, update=upd)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
