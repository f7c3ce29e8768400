"""Does this CPU compute in bfloat16? Its model, its AVX-512 BF16 / AMX flags, torch's CPU capability, and
matmul throughput in fp32 and bf16 (``vgim.bench.speed.measure_matmul``). The bf16 issue's premise.

    python tools/bf16_check.py [N]    # N x N matmuls, default 1024 (emulated bf16 is slow: keep N small)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from vgim.bench.speed import measure_matmul


def main(n: int = 1024) -> None:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    wanted = [f for f in flags if f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f")]
    print(
        f"cpu: {model}; bf16 flags: {' '.join(wanted) or 'none'}; torch {torch.__version__}, "
        f"capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"
    )
    for dtype, reps in ((torch.float32, 5), (torch.bfloat16, 2)):
        flops = measure_matmul(n, reps, "cpu", dtype)
        print(f"{n}x{n} matmul {str(dtype).removeprefix('torch.')}: {flops / 1e9:.2f} GFLOP/s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
