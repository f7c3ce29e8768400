"""Data-parallel training over several processes (``torchrun``), gradient-isolated module by module.

Every process (rank) holds a full copy of the stack and of the ``W_k`` heads, starts from the same
weights (broadcast from rank 0), draws its own batch at each step and back-propagates it exactly as a
single process would. Then, for each module trained at that step, the gradients of that module's
parameters are averaged over the ranks with one all-reduce of a flattened buffer, so every rank applies
the same update with its own (identical) Adam and the copies stay bit-identical. Modules are reduced
one by one, never merged into one graph: gradient isolation is kept, and in ``sequential`` mode only the
active module is communicated.

The backend is ``gloo`` on CPU and ``nccl`` on CUDA, where rank r uses ``cuda:LOCAL_RANK``. The process
group comes from the environment ``torchrun`` sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``)::

    torchrun --nproc_per_node 2 -m vgim train --preset gim-small --out runs/ddp
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Distributed", "all_reduce_gradients", "setup_distributed"]

log = logging.getLogger("vgim")


@dataclass
class Distributed:
    """This process's place in the job: ``rank`` of ``world_size``; ``owns_group`` when :func:`setup_distributed`
    created the process group (and :meth:`close` destroys it)."""

    rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes the run directory and shows progress."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's values."""
        if self.enabled:
            for tensor in tensors:
                dist.broadcast(tensor, src=0)

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average ``tensor`` over the ranks, in place (a no-op in a single process)."""
        if self.enabled:
            dist.all_reduce(tensor)
            tensor.div_(self.world_size)
        return tensor

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False


_groups_made = 0  # process groups this process has made (see setup_distributed)


def _env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup_distributed(device: torch.device, enable: bool | None = None) -> tuple[Distributed, torch.device]:
    """Join the process group this process was started in, and the device it should train on.

    ``enable``: None joins when ``torchrun`` started more than one process (``WORLD_SIZE > 1``) or a process
    group already exists; True always (``torchrun --nproc_per_node 1`` works too); False never. A process
    group that already exists (made by the caller) is used and left open; one made here is destroyed by
    :meth:`Distributed.close`. On CUDA rank r trains on ``cuda:LOCAL_RANK``.
    """
    if enable is False or not dist.is_available():
        if enable:
            raise RuntimeError("distributed training needs torch.distributed, which this torch build lacks")
        return Distributed(), device
    existing = dist.is_initialized()
    if enable is None and not existing and _env_world_size() <= 1:
        return Distributed(), device
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"distributed training runs on CPU (gloo) or CUDA (nccl); train.device is {device}")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owns = False
    if not existing:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE") if k not in os.environ]
        if missing:
            raise ValueError(f"distributed training: {', '.join(missing)} not set; start the job with torchrun")
        backend = "nccl" if device.type == "cuda" else "gloo"
        # A fresh key prefix per group: the store (torchrun's) outlives a destroyed group, and a group made
        # again under the default prefix can read the stale addresses of the last one and hang.
        global _groups_made
        store, rank, world_size = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"vgim/{_groups_made}", store)
        dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size)
        _groups_made += 1
        owns = True
    ddp = Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), owns_group=owns)
    log.info("distributed: rank %d of %d on %s (%s)", ddp.rank, ddp.world_size, device, dist.get_backend())
    return ddp, device


def all_reduce_gradients(params: Sequence[torch.nn.Parameter], ddp: Distributed) -> None:
    """Average the gradients of ``params`` (one module's) over the ranks with one all-reduce.

    The gradients are flattened into one buffer, reduced and copied back. A parameter without a gradient
    on some rank counts as zero there; it keeps ``grad = None`` only when no rank has a gradient for it
    (so Adam skips it exactly as in a single process). One flag per parameter rides in the same buffer.
    """
    if not ddp.enabled or not params:
        return
    grads = [p.grad for p in params]
    ref = next((g for g in grads if g is not None), params[0])
    parts = [g.reshape(-1) if g is not None else ref.new_zeros(p.numel()) for p, g in zip(params, grads, strict=True)]
    flags = ref.new_tensor([float(g is not None) for g in grads])
    flat = torch.cat([*parts, flags])
    dist.all_reduce(flat)
    flat.div_(ddp.world_size)
    present = (flat[-len(params) :] > 0).tolist()
    offset = 0
    for p, part, has_grad in zip(params, parts, present, strict=True):
        n = part.numel()
        if has_grad:
            reduced = flat[offset : offset + n].view_as(p)
            if p.grad is None:
                p.grad = reduced.clone()
            else:
                p.grad.copy_(reduced)
        offset += n
