"""The device and the arithmetic of a run: ``train.device`` resolved (CUDA, then Apple MPS, then CPU) and checked,
and ``train.precision`` as the autocast dtype (bfloat16 where the device computes in it)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

__all__ = ["autocast", "autocast_dtype", "resolve_device"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU.

    Raises ValueError for a name torch does not know and for a CUDA or MPS device this torch cannot use
    (a CPU-only build, no GPU, or a GPU index past the last one).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device {name!r} is not a torch device (expected auto, cpu, cuda, cuda:N or mps)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {name!r} asked for, but {build}; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for, but Apple MPS is not available here; use cpu or auto")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` on ``device``: None for ``fp32``, bfloat16 for ``bf16``.

    Raises ValueError when ``device`` cannot compute in bfloat16.
    """
    if precision == "fp32":
        return None
    if precision != "bf16":
        raise ValueError(f"train.precision must be 'fp32' or 'bf16', got {precision!r}")
    if device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)):
        return torch.bfloat16
    raise ValueError(
        f"train.precision='bf16' needs a device with bfloat16 arithmetic (the CPU, or a CUDA GPU of compute "
        f"capability 8.0 or newer); {device} has none. Set train.precision=fp32."
    )


def autocast(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
