"""The machine a bench runs on: CPU, cores, torch, load, and the machine-wide busy time (part of
:mod:`vgim.bench`)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

__all__ = ["MachineInfo", "machine_busy_seconds", "machine_info", "sync"]


@dataclass
class MachineInfo:
    cpu: str
    cores: int  # logical CPUs this process may run on
    torch_version: str
    threads: int  # torch intra-op threads used by every measurement
    device: str
    device_name: str
    python: str
    load_average: float | None  # 1-minute load average when the bench started


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_info(device: torch.device, threads: int) -> MachineInfo:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model()
    return MachineInfo(
        cpu=_cpu_model(),
        cores=_cores(),
        torch_version=torch.__version__,
        threads=threads,
        device=str(device),
        device_name=name,
        python=platform.python_version(),
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have spent busy since boot (``/proc/stat``), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
