"""One benchmark case: time and measure training steps of a config, in fresh processes (part of
:mod:`vgim.bench`)."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import queue
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from vgim.allocator import fix_mmap_threshold, is_glibc, keep_freed_memory
from vgim.bench.machine import sync
from vgim.bench.memory import PeakMemory
from vgim.config import Config, load_config
from vgim.model.stack import Stack, n_frames

__all__ = ["CaseResult", "StepCallback", "bench_case"]

StepCallback = Callable[[str, int, float], None]  # (phase, step index in the pass, seconds)


@dataclass
class CaseResult:
    """One training-step case.

    ``step_seconds``: the timed steps (after ``warmup_seconds``). ``peak_bytes``: peak memory above the
    baseline (``baseline_bytes``), measured as ``memory_method`` says. ``rss_peak_bytes`` (CPU): the peak
    RSS increase of the (first) timing process itself, which allocates as training does.
    """

    name: str
    config: str
    mode: str
    active: int | None
    step_seconds: list[float]
    warmup_seconds: list[float]
    peak_bytes: int | None
    baseline_bytes: int | None
    memory_method: str
    rss_peak_bytes: int | None
    parameters: int
    trained_parameters: int
    cpu_seconds: float = 0.0  # CPU time used by the case's processes
    # Where the memory goes (see memory_profile): tensors saved for the backward (the largest amount held
    # at once), one set of gradients of the trained parameters, and Adam's two moments of them.
    saved_bytes: int | None = None
    saved_per_module: list[int] | None = None
    # Median step time of each timing process (one per round, see run_bench), in order.
    round_seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        return statistics.median(self.step_seconds)


@dataclass
class _Pass:
    """What one process measured."""

    step_seconds: list[float]
    warmup_seconds: list[float]
    peak_bytes: int | None
    baseline_bytes: int | None
    memory_method: str
    parameters: int
    trained_parameters: int
    cpu_seconds: float = 0.0  # CPU time of the whole process (isolated passes only)


def _run_pass(
    cfg: Config,
    mode: str,
    active: int | None,
    *,
    batch_size: int,
    samples: int,
    steps: int,
    warmup: int,
    device: str,
    threads: int,
    max_seconds: float,
    fixed_malloc: bool = False,
    keep_freed: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> _Pass:
    """Build the model, prime it, then run (and time) ``warmup + steps`` training steps in this process."""
    from vgim.data.batches import Batch
    from vgim.objective.losses import Objective
    from vgim.train.loop import backward_step, make_optimisers, module_params, resolve_device

    if threads > 0:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    fixed = fix_mmap_threshold() if fixed_malloc else False
    kept = keep_freed_memory() if keep_freed and dev.type == "cpu" and not fixed_malloc else False
    torch.set_flush_denormal(True)  # as vgim.train.loop.train does
    torch.manual_seed(0)
    stack = Stack(cfg.model).to(dev)
    objective = Objective(stack, cfg.objective).to(dev)
    stack.train()
    objective.train()
    optimisers = make_optimisers(stack, objective, cfg.train.lr)
    audio = Batch(0.1 * torch.randn(batch_size, cfg.model.in_channels, samples, device=dev))
    trained_once: set[int] = set()

    # Priming: one forward + backward on a 1-sequence batch pages in the library code the steps use, so
    # the RSS increase below is the steps' data rather than code (no optimiser step: Adam's state counts).
    short = samples // 4
    prime_samples = short if min(n_frames(cfg.model, short)) > cfg.objective.n_predictions else samples
    prime = Batch(audio.audio[:1, :, :prime_samples].clone())
    backward_step(stack, objective, prime, mode, active)
    for p in list(stack.parameters()) + list(objective.parameters()):
        p.grad = None
    del prime

    def _step_module(m: int, _loss: torch.Tensor) -> None:
        optimisers[m].step()
        optimisers[m].zero_grad(set_to_none=True)

    memory = PeakMemory(dev)
    memory.start()
    warm: list[float] = []
    timed: list[float] = []
    for i in range(warmup + steps):
        sync(dev)
        t0 = time.perf_counter()
        for opt in optimisers:
            opt.zero_grad(set_to_none=True)
        # as the trainer does: each module's optimiser steps (and frees its gradients) after its backward
        loss, _, trained = backward_step(stack, objective, audio, mode, active, update=_step_module)
        sync(dev)
        dt = time.perf_counter() - t0
        trained_once.update(trained)
        del loss
        (warm if i < warmup else timed).append(dt)
        if on_step is not None:
            on_step(i, dt)
        # Over budget: stop once two timed steps are in and the next would cross max_seconds.
        if len(timed) >= 2 and sum(timed) + statistics.mean(timed) > max_seconds:
            break
    method = memory.method
    if dev.type == "cpu":
        if fixed:
            method += "; glibc mmap threshold fixed at 128 KiB"
        else:
            method += "; freed memory kept for reuse (as in training)" if kept else "; default malloc settings"
    return _Pass(
        step_seconds=timed,
        warmup_seconds=warm,
        peak_bytes=memory.peak(),
        baseline_bytes=memory.baseline,
        memory_method=method,
        parameters=sum(p.numel() for p in stack.parameters()) + sum(p.numel() for p in objective.parameters()),
        trained_parameters=sum(p.numel() for m in sorted(trained_once) for p in module_params(stack, objective, m)),
    )


def _pass_worker(messages: Any, kwargs: dict[str, Any]) -> None:
    """Entry point of a case's process: runs one pass, reports each step and the result on ``messages``."""
    try:
        result = _run_pass(**kwargs, on_step=lambda i, dt: messages.put(("step", (i, dt))))
        result.cpu_seconds = time.process_time()
        messages.put(("done", result))
    except BaseException:  # noqa: BLE001 - report any failure to the parent
        messages.put(("error", traceback.format_exc()))


def _context() -> Any:
    """Fresh processes: ``forkserver`` where available, else ``spawn``.

    Forkserver children fork from a server process that has only imported modules (never run a step), so
    each case starts as clean as a spawned process but without paying the imports again. ``torch._dynamo``
    is preloaded because the first ``torch.optim.Adam`` imports it (about a second).
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["vgim.bench", "vgim.train.loop", "torch._dynamo"])
        return ctx
    return mp.get_context("spawn")


def _isolated_pass(kwargs: dict[str, Any], name: str, on_step: Callable[[int, float], None] | None) -> _Pass:
    ctx = _context()
    messages = ctx.Queue()
    proc = ctx.Process(target=_pass_worker, args=(messages, kwargs), daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, payload = messages.get(timeout=0.5)
            except queue.Empty:
                if proc.is_alive():
                    continue
                try:  # the last message may have landed just as the process ended
                    kind, payload = messages.get(timeout=2.0)
                except queue.Empty:
                    raise RuntimeError(
                        f"benchmark case {name!r} died (exit code {proc.exitcode}). Its process re-imports the "
                        "main script: in a script, call the bench under `if __name__ == '__main__':`"
                    ) from None
            if kind == "step":
                if on_step is not None:
                    on_step(*payload)
            elif kind == "done":
                assert isinstance(payload, _Pass)
                return payload
            else:
                raise RuntimeError(f"benchmark case {name!r} failed:\n{payload}")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join()


def bench_case(
    cfg: Config | str,
    mode: str,
    active: int | None = None,
    *,
    name: str = "",
    batch_size: int = 8,
    samples: int = 20480,
    steps: int = 3,
    warmup: int = 1,
    device: str = "auto",
    threads: int = 0,
    max_seconds: float = 90.0,
    isolate: bool = True,
    measure_memory: bool = True,
    on_step: StepCallback | None = None,
) -> CaseResult:
    """Time ``warmup + steps`` training steps of ``cfg`` (a Config or a preset name) in ``mode`` and
    measure their peak memory.

    With ``isolate`` (the default) every pass runs in a fresh process, so its memory is not masked by
    what earlier work left in this process's allocator. On CPU with glibc a second process repeats 2
    steps with a fixed mmap threshold for ``peak_bytes`` (see :func:`vgim.allocator.fix_mmap_threshold`);
    the timing process, which allocates as training does (:func:`vgim.allocator.keep_freed_memory`), gives
    ``rss_peak_bytes``. Without ``isolate`` everything runs here, with this process's malloc settings.
    Timed steps stop early (keeping at least 2) when the next one would take the timed total past
    ``max_seconds``. ``on_step(phase, index, seconds)`` is called after every step, ``phase``
    being ``"warm-up"``, ``"step"`` or ``"memory"``. ``measure_memory=False`` skips the memory process
    (``peak_bytes`` is then the timing process's own figure).
    """
    from vgim.train.loop import resolve_device

    if steps < 2:
        raise ValueError("bench_case needs at least 2 timed steps")
    config = load_config(cfg) if isinstance(cfg, str) else cfg
    name = name or f"{config.name} {mode}"
    kwargs: dict[str, Any] = dict(
        cfg=config,
        mode=mode,
        active=active,
        batch_size=batch_size,
        samples=samples,
        steps=steps,
        warmup=warmup,
        device=device,
        threads=threads,
        max_seconds=max_seconds,
    )

    def timing_step(i: int, dt: float) -> None:
        if on_step is not None:
            on_step("warm-up" if i < warmup else "step", i, dt)

    def memory_step(i: int, dt: float) -> None:
        if on_step is not None:
            on_step("memory", i, dt)

    if not isolate:
        timing = _run_pass(**kwargs, on_step=timing_step)
    else:  # the timing process allocates as training does (vgim.train.loop.train keeps freed memory on CPU)
        timing = _isolated_pass(kwargs | dict(keep_freed=True), name, timing_step)
    on_cpu = resolve_device(device).type == "cpu"
    memory = timing
    if measure_memory and on_cpu and isolate and is_glibc():
        memory_kwargs = kwargs | dict(steps=2, warmup=0, max_seconds=math.inf, fixed_malloc=True)
        memory = _isolated_pass(memory_kwargs, name, memory_step)
    return CaseResult(
        name=name,
        config=config.name,
        mode=mode,
        active=active,
        step_seconds=timing.step_seconds,
        warmup_seconds=timing.warmup_seconds,
        peak_bytes=memory.peak_bytes,
        baseline_bytes=memory.baseline_bytes,
        memory_method=memory.memory_method,
        rss_peak_bytes=timing.peak_bytes if on_cpu else None,
        parameters=timing.parameters,
        trained_parameters=timing.trained_parameters,
        cpu_seconds=timing.cpu_seconds + (memory.cpu_seconds if memory is not timing else 0.0),
        round_seconds=[statistics.median(timing.step_seconds)],
    )
