"""Seconds per training step of a preset (with overrides) on random audio, one torch thread, and the
operators that take the time. Quoted in docs/thesis-study.md (shared negatives at 128 channels):

    .venv/bin/python tools/step_time.py tools/gim-thesis-improved-128ch.toml objective.share_negatives=false
    .venv/bin/python tools/step_time.py tools/gim-thesis-improved-128ch.toml

Usage: .venv/bin/python tools/step_time.py PRESET_OR_TOML [section.key=value ...]
"""
import sys
import time

import torch

from vgim.allocator import keep_freed_memory
from vgim.config import load_config
from vgim.data.batches import Batch
from vgim.model import Stack
from vgim.objective import Objective
from vgim.train.loop import backward_step, make_optimisers

keep_freed_memory()  # as vgim.train.loop.train does on CPU
torch.set_num_threads(1); torch.manual_seed(0); torch.set_flush_denormal(True)
cfg = load_config(sys.argv[1], sys.argv[2:])
stack = Stack(cfg.model); obj = Objective(stack, cfg.objective)
opts = make_optimisers(stack, obj, 1e-4)
def upd(m, l):
    opts[m].step(); opts[m].zero_grad(set_to_none=True)
b = Batch(0.1 * torch.randn(cfg.train.batch_size, 1, cfg.data.crop_samples))
for _ in range(3): backward_step(stack, obj, b, cfg.train.mode, None, update=upd)
t=time.perf_counter()
for _ in range(5): backward_step(stack, obj, b, cfg.train.mode, None, update=upd)
print("s/step", (time.perf_counter()-t)/5)
from torch.profiler import ProfilerActivity, profile

with profile(activities=[ProfilerActivity.CPU]) as prof:
    backward_step(stack, obj, b, cfg.train.mode, None, update=upd)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
