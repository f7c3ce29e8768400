"""glibc malloc settings: freed memory is kept for reuse in training, and the opt-out works."""

import os
import subprocess
import sys

import pytest

from vgim.allocator import is_glibc

pytestmark = pytest.mark.skipif(not is_glibc() or not os.path.exists("/proc/self/status"), reason="glibc only")

SCRIPT = """
import torch
from vgim.allocator import keep_freed_memory

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

applied = keep_freed_memory()
before = rss_mib()
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
x = None
print(int(applied), round(rss_mib() - before))
"""


def _run(env_value: str | None) -> tuple[int, int]:
    env = dict(os.environ)
    env.pop("VGIM_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["VGIM_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    applied, kept_mib = out.stdout.split()
    return int(applied), int(kept_mib)


def test_keep_freed_memory_keeps_a_freed_tensor_resident() -> None:
    applied, kept = _run(None)
    assert applied == 1
    assert kept >= 60  # the freed 64 MiB stays in the heap for the next step to reuse


def test_keep_freed_memory_opt_out_leaves_glibc_defaults() -> None:
    applied, kept = _run("0")
    assert applied == 0
    assert kept < 16  # glibc unmapped the 64 MiB block on free
