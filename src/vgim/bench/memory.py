"""Peak memory above a baseline (CUDA, Linux RSS, ``ru_maxrss``) and the tensors autograd saves for the
backward (part of :mod:`vgim.bench`; the methods are described in its docstring)."""

from __future__ import annotations

import gc

import torch

from vgim.config import Config
from vgim.model.stack import Stack

__all__ = ["PeakMemory", "memory_profile", "mib"]


def _status_kb(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None without ``/proc``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _maxrss_bytes() -> int:
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024


def _release_freed_memory() -> None:
    """Collect garbage and ask glibc to return freed heap memory to the OS (no-op elsewhere)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory above the level at :meth:`start`, for one device (see the :mod:`vgim.bench` docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.baseline: int | None = None
        self.method = "not measured"
        self._start_max = 0

    def start(self) -> None:
        _release_freed_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
        elif self.device.type == "cpu":
            rss = _status_kb("VmRSS")
            if rss is not None:
                self.baseline = rss * 1024
                reset = _reset_hwm()
                self.method = "RSS: VmHWM - VmRSS, " + (
                    "VmHWM reset by /proc/self/clear_refs" if reset else "VmHWM not resettable (upper bound)"
                )
            else:
                self.baseline = self._start_max = _maxrss_bytes()
                self.method = "ru_maxrss increase (lower bound)"

    def peak(self) -> int | None:
        if self.baseline is None:
            return None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return max(0, torch.cuda.max_memory_allocated(self.device) - self.baseline)
        hwm = _status_kb("VmHWM")
        if hwm is not None and not self.method.startswith("ru_maxrss"):
            return max(0, hwm * 1024 - self.baseline)
        return max(0, _maxrss_bytes() - self._start_max)


def memory_profile(
    cfg: Config, mode: str, active: int | None, batch_size: int, samples: int, device: str = "auto"
) -> tuple[int, list[int]]:
    """Bytes of the tensors autograd saves for the backward during one training step (each storage
    counted once), as :func:`vgim.train.loop.backward_step` runs it: in ``together`` mode one module's
    graph is freed before the next is built, so the figure is the largest module's, and the per-module
    list says which; otherwise the whole graph (one entry). Parameter gradients, optimiser state and the
    backward's temporaries come on top (see :func:`format_bench`)."""
    from vgim.data.batches import Batch
    from vgim.objective.losses import Objective
    from vgim.train.loop import backward_step, resolve_device

    dev = resolve_device(device)
    torch.manual_seed(0)
    stack = Stack(cfg.model).to(dev)
    objective = Objective(stack, cfg.objective).to(dev)
    stack.train()
    storages: dict[int, int] = {}
    per_module: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = max(storages.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    def module_done(m: int, _loss: torch.Tensor) -> None:
        if mode == "together":
            per_module.append(sum(storages.values()))
            storages.clear()

    audio = Batch(0.1 * torch.randn(batch_size, cfg.model.in_channels, samples, device=dev))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        backward_step(stack, objective, audio, mode, active, update=module_done)
    if mode != "together":
        per_module = [sum(storages.values())]
    return max(per_module), per_module


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.0f} MiB"
