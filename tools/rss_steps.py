"""Resident memory of a training process over many steps, with and without vgim's malloc settings
(BENCHMARKS.md, "Allocator"): does keeping freed memory for reuse let the heap grow step after step?

Runs PRESET (default `cpc`) at batch 8 x 20480 for STEPS steps (default 40) in two fresh processes, one with
`keep_freed_memory()` (as training does) and one with glibc's defaults, and prints VmRSS after every 10th
step and the high-water mark VmHWM, in MiB.

Usage: .venv/bin/python tools/rss_steps.py [PRESET] [STEPS]
"""
import os
import subprocess
import sys

CHILD = r"""
import sys, torch
from vgim.allocator import keep_freed_memory
applied = keep_freed_memory()
from vgim.config import load_config
from vgim.model import Stack
from vgim.objective import Objective
from vgim.data.batches import Batch
from vgim.train.loop import backward_step, make_optimisers
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) // 1024
torch.manual_seed(0); torch.set_flush_denormal(True)
cfg = load_config(sys.argv[1])
stack = Stack(cfg.model); obj = Objective(stack, cfg.objective)
opts = make_optimisers(stack, obj, 1e-4)
def upd(m, loss):
    opts[m].step(); opts[m].zero_grad(set_to_none=True)
rss = []
for i in range(int(sys.argv[2])):
    backward_step(stack, obj, Batch(0.1 * torch.randn(8, 1, 20480)), cfg.train.mode, None, update=upd)
    if (i + 1) % 10 == 0:
        rss.append(status("VmRSS"))
print("kept" if applied else "glibc defaults", "RSS after every 10th step:", rss, "MiB; VmHWM", status("VmHWM"), "MiB")
"""
preset = sys.argv[1] if len(sys.argv) > 1 else "cpc"
steps = sys.argv[2] if len(sys.argv) > 2 else "40"
for value in ("1", "0"):
    env = dict(os.environ, VGIM_KEEP_FREED_MEMORY=value)
    subprocess.run([sys.executable, "-c", CHILD, preset, steps], env=env, check=True)
