"""The training loop: three ways to train one stack, checkpoints, metrics, export.

Modes (``train.mode``):

- ``together``: every module is trained at every step on its own loss; each module's input is detached,
  so no gradient crosses a module boundary (GIM, V-GIM).
- ``sequential``: the steps are split evenly over the modules; module m is trained alone while modules
  before it run frozen under ``torch.no_grad()`` (their activations are never kept for backward).
- ``end_to_end``: no gradient cut; the loss is the last module's InfoNCE (plus ``beta * KL`` of every
  variational module), back-propagated through the whole stack (CPC).
- ``frozen``: the encoder (``init_model``, a trained run's) runs without gradient and only the heads train
  (decoders). Its checkpoint holds the encoder's SHA-256 instead of its weights, and the finished run
  exports no encoder: it is the one the run started from, which that run holds already.

Every module has its own Adam optimiser over its encoder parameters and its ``W_k``.

Several processes: started by ``torchrun`` (``WORLD_SIZE > 1``), :func:`train` trains data-parallel
(:mod:`vgim.train.distributed`): each rank draws its own batch of ``train.batch_size`` crops (a function of
seed, step and rank, so ``--resume`` stays exact), each trained module's gradients are averaged over the
ranks, and only rank 0 writes the run directory::

    torchrun --nproc_per_node 2 -m vgim train --preset gim-small --out runs/ddp

Mixed precision: ``train.precision = "bf16"`` runs the encoder's forward passes under
``torch.autocast(dtype=torch.bfloat16)`` (CPU, or a CUDA GPU with bfloat16); its outputs are cast back to
float32 before the objective, so the InfoNCE scores, losses, gradients and Adam stay in float32.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vgim.allocator import keep_freed_memory
from vgim.config import Config, ConfigError, resume_config, validate
from vgim.data.batches import Batch, StepBatches
from vgim.data.source import batches_from_corpus, build_batches
from vgim.data.stream import iter_batches
from vgim.model.stack import Stack
from vgim.objective.losses import ModuleLoss, Objective, total_penalty
from vgim.train.checkpoint import (
    FROZEN_ENCODER,
    encoder_fingerprint,
    export_model,
    load_checkpoint,
    restore_encoder,
    save_checkpoint,
)
from vgim.train.device import autocast, autocast_dtype, resolve_device
from vgim.train.distributed import Distributed, all_reduce_gradients, setup_distributed
from vgim.train.metrics import MetricsWriter
from vgim.train.optim import get_lr, make_adam, make_optimisers, module_params
from vgim.train.rundir import CHECKPOINT, CONFIG, EXPORT_DIR, RunDir

__all__ = [
    "TrainResult",
    "autocast_dtype",
    "backward_step",
    "forward_losses",
    "batches_from_corpus",
    "build_batches",
    "export_model",
    "get_lr",
    "load_checkpoint",
    "make_adam",
    "resolve_device",
    "save_checkpoint",
    "train",
]

log = logging.getLogger("vgim")


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The torch seed of one step (negatives, sampling noise) on process ``rank``; rank 0 and a single process
    share it, as they share the batch (:func:`vgim.data.batches.step_rng`)."""
    if rank == 0:
        return (seed * 1_000_003 + step) % (2**63 - 1)
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]) % (2**63 - 1)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    final: dict[int, dict[str, float]] = field(default_factory=dict)  # module -> last logged scalars
    seconds: float = 0.0


def _active_module(mode: str, step: int, total: int, n_modules: int) -> int | None:
    """In sequential mode, the module trained at ``step``; otherwise None (all modules)."""
    if mode != "sequential":
        return None
    per = max(1, math.ceil(total / n_modules))
    return min(n_modules - 1, step // per)


def forward_losses(
    stack: Stack,
    objective: Objective,
    batch: Batch,
    mode: str,
    active: int | None = None,
    *,
    amp_dtype: torch.dtype | None = None,
    modules: Sequence[int] = (),
) -> tuple[torch.Tensor, dict[int, ModuleLoss], list[int]]:
    """One training forward pass: the loss to back-propagate, each module's losses, the modules trained.

    ``mode`` is ``together``, ``sequential`` (train module ``active`` only, earlier ones frozen),
    ``end_to_end`` (the last module's head loss plus ``beta`` times every module's penalty, the gradient
    uncut, a GRU-only last module's targets included: CPC on the whole network) or ``frozen`` (the encoder
    runs without gradient on its deterministic latents; every module's head is trained on them: decoders,
    probes). ``amp_dtype`` (see :func:`autocast_dtype`) runs the stack under autocast; the objective always
    runs in float32. ``modules`` (``together`` and ``frozen``) limits the losses to those modules.
    """
    amp = autocast(batch.audio.device.type, amp_dtype)
    if mode == "frozen":
        wanted = sorted(modules) if modules else list(range(stack.n_modules))
        with torch.no_grad(), amp:
            outputs = stack(batch.audio, sample=False, upto=wanted[-1])
        outputs = [o.float() for o in outputs]
        inputs = [batch.audio.transpose(1, 2)] + [o.c for o in outputs[:-1]]
        losses = {m: objective.module_loss(m, outputs[m], inputs[m], batch) for m in wanted}
        return torch.stack([ml.loss for ml in losses.values()]).sum(), losses, wanted
    if mode == "sequential":
        if active is None:
            raise ValueError("sequential mode needs the active module")
        with amp:
            outputs = stack(batch.audio, upto=active, frozen_below=active)
        outputs = [o.float() for o in outputs]
        losses = {active: objective(outputs, batch, start=active)[0]}
        return losses[active].loss, losses, [active]
    if mode == "together":
        with amp:
            outputs = stack(batch.audio, cut_gradients=True)
        outputs = [o.float() for o in outputs]
        losses = dict(enumerate(objective(outputs, batch)))
        return torch.stack([ml.loss for ml in losses.values()]).sum(), losses, list(range(stack.n_modules))
    if mode != "end_to_end":
        raise ValueError(f"train.mode must be together, sequential or end_to_end, got {mode!r}")
    with amp:
        outputs = stack(batch.audio, cut_gradients=False)
    outputs = [o.float() for o in outputs]
    last = stack.n_modules - 1
    module_input = batch.audio.transpose(1, 2) if last == 0 else outputs[last - 1].c
    ml = objective.module_loss(last, outputs[last], module_input, batch, cut_input=False)
    total_loss = ml.loss
    if objective.cfg.beta > 0 and last > 0:
        total_loss = total_loss + objective.cfg.beta * total_penalty(outputs[:-1], batch.audio.device)
    return total_loss, {last: ml}, list(range(stack.n_modules))


def backward_step(
    stack: Stack,
    objective: Objective,
    batch: Batch,
    mode: str,
    active: int | None = None,
    *,
    amp_dtype: torch.dtype | None = None,
    update: Callable[[int, torch.Tensor], None] | None = None,
    modules: Sequence[int] = (),
) -> tuple[torch.Tensor, dict[int, ModuleLoss], list[int]]:
    """Forward and backward of one training step, and (with ``update``) each trained module's update.

    Returns the summed loss (detached), each module's losses and the modules trained. In ``together``
    mode each module's loss is back-propagated as soon as that module has run, and its graph is freed
    before the next module starts: the gradients are those of the summed loss (no gradient crosses a
    module boundary), but only one module's activations are held at a time, so the peak memory is that
    of the largest module rather than of the whole stack. The other modes call :func:`forward_losses`.
    ``amp_dtype`` runs each module's forward pass under autocast (the backward runs outside it).

    ``update(m, loss_m)`` is called once per trained module with its gradients in place (in
    ``together`` mode right after that module's backward, before the next module runs; otherwise after
    the one backward); the trainer steps module m's optimiser and frees its gradients there, so only
    one module's gradients exist at a time. The next module's input was computed before the update, so
    the result equals updating every module at the end of the step. Without ``update`` the gradients
    are left accumulated. ``modules`` (``together`` and ``frozen`` modes) trains only those modules; the
    others run without gradient.
    """
    if mode != "together":
        total, module_losses, trained = forward_losses(
            stack, objective, batch, mode, active, amp_dtype=amp_dtype, modules=modules
        )
        total.backward()
        if update is not None:
            for m in trained:
                update(m, module_losses[m].loss.detach() if m in module_losses else total.detach())
        return total.detach(), module_losses, trained
    sample = stack.training
    h = batch.audio
    module_input = h.transpose(1, 2)
    losses: dict[int, ModuleLoss] = {}
    wanted = set(modules) if modules else set(range(stack.n_modules))
    for m in range(max(wanted) + 1):
        with autocast(h.device.type, amp_dtype), torch.set_grad_enabled(m in wanted):
            out = stack.block(m)(h, sample=sample)
        if amp_dtype is not None:
            out = out.float()
        if m not in wanted:
            module_input = out.c.detach()
            h = module_input.transpose(1, 2)
            continue
        ml = objective.module_loss(m, out, module_input, batch)
        ml.loss.backward()
        losses[m] = ml.detached()
        if update is not None:
            update(m, losses[m].loss)
        module_input = out.c.detach()
        h = module_input.transpose(1, 2)
    total = torch.stack([ml.loss for ml in losses.values()]).sum()
    return total, losses, sorted(wanted)


def train(
    cfg: Config,
    run_dir: str | Path,
    *,
    batches: StepBatches | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    distributed: bool | None = None,
    init_model: dict[str, torch.Tensor] | None = None,
    overrides: list[str] | None = None,
) -> TrainResult:
    """Train ``cfg`` into ``run_dir``; with ``resume`` continue from ``run_dir/checkpoints/last.pt``.

    ``init_model``: encoder weights (a :class:`Stack` state dict) to start from instead of a fresh
    initialisation, e.g. a trained run's for ``train.mode = "frozen"`` (decoders, probes on top of it). A
    frozen run is resumed with the same ``init_model``: its checkpoint keeps only the encoder's SHA-256
    (:func:`~vgim.train.checkpoint.encoder_fingerprint`), and another encoder is refused with a ValueError.

    ``overrides`` (``section.key=value``, with ``resume`` only): changes to the run's saved config, limited to
    :data:`vgim.config.RESUME_SAFE_KEYS` (the step budget and the logging and checkpoint intervals).

    ``stop_after`` ends the process-local loop after that many steps without finishing the run (used to
    simulate a killed run in tests); the checkpoint written at that point is resumable.

    ``distributed``: None trains data-parallel when ``torchrun`` started several processes (``WORLD_SIZE >
    1``) or the caller made a process group; True always joins one, False never (see
    :mod:`vgim.train.distributed`). Every rank calls ``train`` with the same arguments and returns the same
    result; only rank 0 writes ``run_dir``. ``train.batch_size`` is per process.
    """
    validate(cfg)  # a Config built in code is checked as a config file is
    run_dir = Path(run_dir)
    # One writer per run directory: a second training into it stops here with a clear message. Under
    # torchrun only rank 0 writes, so only rank 0 locks.
    writer = os.environ.get("RANK", "0") == "0"
    with RunDir(run_dir).lock() if writer else contextlib.nullcontext():
        return _train_locked(cfg, run_dir, batches, resume, progress, stop_after, distributed, init_model, overrides)


def _train_locked(
    cfg: Config,
    run_dir: Path,
    batches: StepBatches | None,
    resume: bool,
    progress: bool,
    stop_after: int | None,
    distributed: bool | None,
    init_model: dict[str, torch.Tensor] | None,
    overrides: list[str] | None,
) -> TrainResult:
    ckpt_path = run_dir / CHECKPOINT
    state: dict[str, Any] | None = None
    if overrides and not resume:
        raise ValueError(
            "train(overrides=...) applies to a resumed run only; give a new run's overrides to load_config"
        )
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        state = load_checkpoint(ckpt_path)  # every rank reads it
        # The run's own config; ``overrides`` may change only RESUME_SAFE_KEYS (others raise ConfigError).
        cfg = resume_config(state["config"], overrides)
        if cfg.train.steps < int(state["step"]):
            raise ConfigError(
                f"train.steps={cfg.train.steps} is fewer than the {state['step']} steps {run_dir} has already trained"
            )
        log.info("resuming %s from step %d", run_dir, state["step"])
    elif ckpt_path.exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose a new --out")
    device = resolve_device(cfg.train.device)
    amp_dtype = autocast_dtype(cfg.train.precision, device)
    ddp, device = setup_distributed(device, distributed)
    try:
        return _train(cfg, run_dir, state, device, amp_dtype, ddp, batches, progress, stop_after, init_model)
    finally:
        ddp.close()


def _mean_over_ranks(
    total: torch.Tensor, losses: dict[int, ModuleLoss], ddp: Distributed
) -> tuple[torch.Tensor, dict[int, ModuleLoss]]:
    """The step's summed loss and each module's loss and stats averaged over the ranks (one all-reduce)."""
    if not ddp.enabled:
        return total, losses
    modules = sorted(losses)
    names = {m: sorted(losses[m].stats) for m in modules}
    parts = [total.reshape(1)]
    for m in modules:
        parts += [losses[m].loss.reshape(1)] + [losses[m].stats[k].reshape(-1) for k in names[m]]
    flat = ddp.mean_(torch.cat([x.detach().to(total.device, torch.float32) for x in parts]))
    pieces = iter(flat.split([x.numel() for x in parts]))
    mean_total = next(pieces)[0]
    out: dict[int, ModuleLoss] = {}
    for m in modules:
        loss = next(pieces)[0]
        stats = {k: next(pieces).reshape(losses[m].stats[k].shape) for k in names[m]}
        out[m] = ModuleLoss(loss=loss, stats=stats)
    return mean_total, out


def _train(
    cfg: Config,
    run_dir: Path,
    state: dict[str, Any] | None,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    ddp: Distributed,
    batches: StepBatches | None,
    progress: bool,
    stop_after: int | None,
    init_model: dict[str, torch.Tensor] | None = None,
) -> TrainResult:
    """The body of :func:`train` once the device and the process group are set."""
    from tqdm.auto import tqdm

    ckpt_path = run_dir / CHECKPOINT
    if ddp.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / CONFIG)

    t = cfg.train
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    # Denormal floats (values below ~1e-38, e.g. shrinking variances) make CPU arithmetic up to 100x slower.
    torch.set_flush_denormal(True)
    if device.type == "cpu":
        # Reuse freed activations instead of having the kernel map and zero them again every step.
        keep_freed_memory()
    torch.manual_seed(t.seed)
    stack = Stack(cfg.model).to(device)
    objective = Objective(stack, cfg.objective, cfg.data.sample_rate).to(device)
    if init_model is not None:
        stack.load_state_dict(init_model, strict=True)
    frozen = t.mode == "frozen"
    if frozen:
        stack.requires_grad_(False)
    optimisers = make_optimisers(stack, objective, t.lr, t.weight_decay, t.mode)
    start = 0
    if state is not None:
        restore_encoder(stack, state, ckpt_path, init_model is not None)
        objective.load_state_dict(state["objective"], strict=True)
        for opt, opt_state in zip(optimisers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        start = int(state["step"])
        if ddp.is_main and int(state.get("world_size", 1)) != ddp.world_size:
            log.warning(
                "resuming a run trained with %d process(es) on %d: the batches differ from an uninterrupted run",
                int(state.get("world_size", 1)),
                ddp.world_size,
            )
    # The same seed gives every rank the same initial weights already; rank 0's copy makes it certain.
    ddp.broadcast_([*stack.state_dict().values(), *objective.state_dict().values()])
    # The frozen encoder never changes (eval mode, no gradient): its fingerprint is taken once.
    fingerprint = encoder_fingerprint(stack.state_dict()) if frozen else ""
    if batches is None:
        # Rank 0 first: it may synthesise or cache the corpus that the other ranks then read.
        if not ddp.is_main:
            ddp.barrier()
        batches = build_batches(cfg, progress=progress and ddp.is_main)
        if ddp.is_main:
            ddp.barrier()

    metrics = MetricsWriter(run_dir, start if state is not None else None) if ddp.is_main else None
    epoch_steps = int(getattr(batches, "steps_per_epoch", 0))
    if t.lr_schedule == "exponential" and epoch_steps < 1:
        raise ValueError(
            f"train.lr_schedule = 'exponential' decays per epoch, and this batch source ({type(batches).__name__}) "
            "has no steps_per_epoch"
        )

    def checkpoint(step: int) -> None:
        if not ddp.is_main:
            return
        save_checkpoint(
            ckpt_path,
            {
                "step": step,
                **({FROZEN_ENCODER: fingerprint} if frozen else {"model": stack.state_dict()}),
                "objective": objective.state_dict(),
                "optimizers": [o.state_dict() for o in optimisers],
                "config": cfg.to_dict(),
                "world_size": ddp.world_size,
            },
        )

    stack.train(not frozen)  # a frozen encoder runs deterministically (no sampling, no codebook updates)
    objective.train()
    result = TrainResult(run_dir=run_dir, step=start)
    end = t.steps if stop_after is None else min(t.steps, start + stop_after)
    bar = tqdm(
        range(start, end),
        initial=start,
        total=t.steps,
        disable=not (progress and ddp.is_main),
        desc=cfg.name,
        unit="step",
    )
    t0 = time.perf_counter()
    audio_seconds = 0.0
    # data.workers > 0: worker processes make the next batches while this one trains (the same batches).
    fetched = iter_batches(
        batches, range(start, end), workers=cfg.data.workers, rank=ddp.rank, pin_memory=device.type == "cuda"
    )
    for step, host_batch in zip(bar, fetched, strict=True):
        torch.manual_seed(step_seed(t.seed, step, ddp.rank))
        batch = host_batch.to(device)
        active = _active_module(t.mode, step, t.steps, stack.n_modules)
        if active is None:
            seg_step, seg_total = step, t.steps
        else:
            per = math.ceil(t.steps / stack.n_modules)
            seg_step, seg_total = step - active * per, per
        lr = get_lr(seg_step, seg_total, t, epoch_steps)
        for opt in optimisers:
            for group in opt.param_groups:
                group["lr"] = lr

        def update(m: int, loss: torch.Tensor, step: int = step) -> None:
            # The same decision on every rank: a NaN on any rank makes the mean NaN.
            if not torch.isfinite(ddp.mean_(loss.detach().reshape(1).clone())).all():
                saved = f"the last checkpoint is {ckpt_path}" if ckpt_path.exists() else "no checkpoint was written yet"
                raise FloatingPointError(
                    f"module {m + 1}'s loss became {float(loss)} at step {step} (not applied; {saved}). "
                    "Lower train.lr or set train.grad_clip."
                )
            params = module_params(stack, objective, m, t.mode)
            all_reduce_gradients(params, ddp)
            if t.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, t.grad_clip)
            optimisers[m].step()
            optimisers[m].zero_grad(set_to_none=True)

        for opt in optimisers:
            opt.zero_grad(set_to_none=True)
        total_loss, losses, trained = backward_step(
            stack, objective, batch, t.mode, active, amp_dtype=amp_dtype, update=update, modules=t.modules
        )
        total_loss, losses = _mean_over_ranks(total_loss, losses, ddp)
        audio_seconds += ddp.world_size * batch.audio.shape[0] * batch.audio.shape[-1] / cfg.data.sample_rate
        done = step + 1
        if done % t.log_every == 0 or done == t.steps:
            if metrics is not None:
                metrics.log(done, lr, {m: ml.columns() for m, ml in losses.items()})
            result.final.update({m: ml.scalars() for m, ml in losses.items()})
            elapsed = time.perf_counter() - t0
            bar.set_postfix(
                {f"L{m}": f"{ml.loss.item():.3f}" for m, ml in losses.items()}
                | {"xRT": f"{audio_seconds / max(elapsed, 1e-9):.0f}"}
            )
        if done % t.checkpoint_every == 0 or done == end:
            checkpoint(done)
        result.step = done
    bar.close()
    if metrics is not None:
        metrics.close()
    result.seconds = time.perf_counter() - t0
    if result.step >= t.steps and ddp.is_main and not frozen:  # a frozen encoder is its source run's export
        export_model(stack, cfg, run_dir / EXPORT_DIR)
    return result
