"""Speed and memory benchmark of the paper architecture (``vgim bench``).

What is measured, at ``batch_size`` x ``samples`` of random audio (default 8 x 20480, the paper's crops):

- **Training step time**: forward + backward + Adam step, exactly as :func:`vgim.train.loop.train` does it
  (one Adam per module over its encoder block and its InfoNCE head, :func:`backward_step`), for three
  cases: CPC end to end (preset ``cpc``), GIM with all modules trained at once (preset ``gim``, mode
  ``together``) and GIM module 1 alone (preset ``gim``, mode ``sequential`` with module 0 active, which
  runs module 0 only). ``warmup`` untimed steps come first; the figure is the median of the timed steps.
  The timing processes allocate as training does on a CPU (:func:`vgim.allocator.keep_freed_memory`).
  They run in ``rounds``: each round times every case once, the cases interleaved, so that a change in a
  shared machine's speed during the bench affects all cases alike. A case's figure is the median over all
  rounds' timed steps; the GIM / CPC time ratio is the median of the rounds' own ratios (each compares two
  processes run a minute apart, so a slow spell of the machine does not pair one case's slow steps with
  the other's fast ones).
- **Peak memory above baseline**, each case in fresh processes (``forkserver``, else ``spawn``) so that
  memory one case freed but the allocator kept does not hide the next case's allocations. Before the
  baseline, one forward + backward on a 1-sequence batch pages in the library code the steps use (else
  tens of MB of code would count); the baseline is taken after that, once the model, the optimisers and
  the input batch exist; the peak covers every step after it (so Adam's moment buffers, allocated at the
  first step, count).

  - CUDA: ``torch.cuda.max_memory_allocated() - memory_allocated()`` after ``reset_peak_memory_stats()``
    (tensor memory only, not the caching allocator's reserve), in the timing process.
  - CPU on Linux: resident set size from ``/proc/self/status``. Baseline is ``VmRSS``; writing ``5`` to
    ``/proc/self/clear_refs`` resets the high-water mark ``VmHWM`` to the current RSS, so after the steps
    ``VmHWM - baseline`` is the peak increase. If the reset is refused, ``VmHWM`` may include an earlier
    (pre-baseline) peak, so the figure is an upper bound; the method string says which was used.
    With glibc's default settings the RSS peak depends on heap fragmentation (freed blocks below the
    dynamic mmap threshold, up to 32 MiB, stay resident), not only on what is alive: a model doing
    strictly less work can read higher. So ``peak_bytes`` comes from a second process per case that runs
    2 steps with the mmap threshold fixed at 128 KiB (``mallopt``), where RSS follows the live data; the
    timing process's own figure (allocating as training does) is kept as ``rss_peak_bytes``.
  - CPU without ``/proc``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` before and after the steps (a
    lower bound: any part of the peak below the pre-step maximum is not seen).
  - Apple MPS: not measured (``None``).
- **Feature extraction speed**: :meth:`Stack.extract_features` (eval mode, no grad, variational off) of the
  ``gim`` preset on ``feature_seconds`` of random audio, one untimed call then ``feature_reps`` timed
  ones, as a multiple of real time (seconds of audio per second of wall time).
- **FLOPs**: the analytic multiply-adds of the CPC training step's encoder (see :func:`encoder_macs`),
  FLOPs = 2 x MACs, forward + backward = 3 x forward, divided by the measured CPC step time, and compared
  with the machine's fp32 ``torch.matmul`` throughput on ``matmul_size`` x ``matmul_size`` matrices
  (``2 n^3`` FLOPs per product) at the same thread count.

The result also records the machine (CPU model, cores, torch version and threads) and, from
``/proc/stat``, how many cores other processes kept busy meanwhile: timings taken on a busy machine are
flagged in :func:`format_bench`.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import multiprocessing as mp
import os
import platform
import queue
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vgim.allocator import fix_mmap_threshold, is_glibc, keep_freed_memory
from vgim.config import Config, ModelConfig, load_config
from vgim.model.stack import Stack, n_frames

__all__ = [
    "CPC",
    "GIM_ALL",
    "GIM_ONE",
    "BenchResult",
    "CaseResult",
    "MachineInfo",
    "bench_case",
    "encoder_macs",
    "format_bench",
    "head_macs",
    "machine_info",
    "measure_features",
    "measure_matmul",
    "run_bench",
    "train_step_flops",
]

StepCallback = Callable[[str, int, float], None]  # (phase, step index in the pass, seconds)


# --------------------------------------------------------------------------------------------- FLOPs


def encoder_macs(cfg: ModelConfig, batch_size: int, samples: int) -> int:
    """Multiply-adds of one forward pass of the encoder's conv layers and GRU (biases, ReLU, pooling and
    the InfoNCE heads are not counted).

    - ``Conv1d``: ``B * T_out * C_out * C_in * kernel``, with ``T_out`` the layer's output length
      (the same arithmetic as :func:`vgim.model.n_frames`).
    - ``GRU`` (PyTorch's, three gates): ``B * T * 3 * H * (C_in + H)`` for the input and hidden
      projections, ``T`` the frame count it runs over.
    """
    length = samples
    channels = cfg.in_channels
    macs = 0
    for spec in cfg.layers:
        if spec.filters:  # a gabor bank is 2 x channels real filters on one input channel
            length = max(0, (length + 2 * spec.padding - spec.kernel) // spec.stride + 1)
            factor = 2 if spec.kind == "gabor" else 1
            macs += batch_size * length * factor * spec.channels * channels * spec.kernel
            channels = spec.channels
        elif spec.kind == "maxpool":
            length = max(0, (length + 2 * spec.padding - spec.kernel) // spec.stride + 1)
        else:
            macs += batch_size * length * 3 * spec.channels * (channels + spec.channels)
            channels = spec.channels
    assert length == n_frames(cfg, samples)[-1]
    return macs


def train_step_flops(cfg: ModelConfig, batch_size: int, samples: int) -> int:
    """FLOPs of one training step's encoder: ``3 * 2 * encoder_macs`` (a multiply-add is 2 FLOPs; the
    backward pass costs about twice the forward: gradients with respect to inputs and to weights)."""
    return 3 * 2 * encoder_macs(cfg, batch_size, samples)


def head_macs(cfg: Config, batch_size: int, samples: int, modules: list[int] | None = None) -> int:
    """Forward multiply-adds of the InfoNCE heads of ``modules`` (default: all): per head
    ``B * P * K * C_z * (C_c + 1 + N)`` for ``W_k c_t`` and the positive and ``N`` negative scores, with
    ``P = min(max_positions, T - K)`` scored positions. For information; not part of :func:`encoder_macs`."""
    stack_cfg = cfg.model
    frames = n_frames(stack_cfg, samples)
    o = cfg.objective
    out = 0
    in_channels = stack_cfg.in_channels
    i = 0
    for m, n_layers in enumerate(stack_cfg.modules):
        specs = stack_cfg.layers[i : i + n_layers]
        i += n_layers
        z_channels = in_channels
        for spec in specs:
            if spec.filters:
                z_channels = spec.channels
        c_channels = specs[-1].channels if specs[-1].kind == "gru" else z_channels
        if modules is None or m in modules:
            valid = frames[m] - o.n_predictions
            positions = min(o.max_positions, valid) if o.max_positions > 0 else valid
            out += batch_size * max(0, positions) * o.n_predictions * z_channels * (c_channels + 1 + o.n_negatives)
        in_channels = c_channels
    return out


# ------------------------------------------------------------------------------------------- machine


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


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have spent busy since boot (``/proc/stat``), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# -------------------------------------------------------------------------------------------- memory


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


class _PeakMemory:
    """Peak memory above the level at :meth:`start`, for one device (see the module docstring)."""

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


# ------------------------------------------------------------------------------------ training steps


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


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

    memory = _PeakMemory(dev)
    memory.start()
    warm: list[float] = []
    timed: list[float] = []
    for i in range(warmup + steps):
        _sync(dev)
        t0 = time.perf_counter()
        for opt in optimisers:
            opt.zero_grad(set_to_none=True)
        # as the trainer does: each module's optimiser steps (and frees its gradients) after its backward
        loss, _, trained = backward_step(stack, objective, audio, mode, active, update=_step_module)
        _sync(dev)
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


# ------------------------------------------------------------------------ features and matmul speed


@torch.no_grad()
def measure_features(
    cfg: Config | str, seconds: float = 10.0, reps: int = 3, device: str = "auto"
) -> tuple[float, float]:
    """``Stack.extract_features`` speed on ``seconds`` of random 16 kHz audio: returns
    (multiple of real time, wall seconds per call)."""
    from vgim.train.loop import resolve_device

    config = load_config(cfg) if isinstance(cfg, str) else cfg
    model_cfg = dataclasses.replace(config.model, bottleneck="identity", bottleneck_options={})
    torch.manual_seed(0)
    dev = resolve_device(device)
    stack = Stack(model_cfg).to(dev).eval()
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)
    stack.extract_features(wave)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        stack.extract_features(wave)
    _sync(dev)
    per_call = (time.perf_counter() - t0) / reps
    return seconds / per_call, per_call


def measure_matmul(n: int = 2048, reps: int = 5, device: str = "auto") -> float:
    """fp32 ``torch.matmul`` throughput of ``n x n`` by ``n x n`` in FLOP/s (``2 n^3`` per product), from
    the fastest of ``reps`` timed products after one untimed one."""
    from vgim.train.loop import resolve_device

    dev = resolve_device(device)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dev)
    b = torch.randn(n, n, generator=g).to(dev)
    out = torch.empty(n, n, device=dev)
    torch.matmul(a, b, out=out)  # warm-up
    _sync(dev)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=out)
        _sync(dev)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


# ------------------------------------------------------------------------------------------ the bench


@dataclass
class BenchResult:
    machine: MachineInfo
    batch_size: int
    samples: int
    warmup: int
    cases: list[CaseResult]
    feature_realtime: float  # seconds of audio per second of wall time
    feature_seconds: float  # audio length per call
    feature_call_seconds: float  # wall time per call
    cpc_step_flops: int  # analytic encoder FLOPs of one CPC training step
    cpc_head_flops: int  # analytic InfoNCE-head FLOPs of one CPC training step (3 x 2 x head_macs)
    gim_head_flops: int  # the same for GIM with all modules trained
    matmul_size: int
    matmul_flops_per_s: float
    total_seconds: float = 0.0
    # Average number of cores busy with other work while the bench ran: machine busy time (/proc/stat)
    # minus this process's and its case processes' CPU time, over the wall time. None without /proc.
    other_cpu_cores: float | None = None

    def case(self, name: str) -> CaseResult:
        for c in self.cases:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def cpc_flops_per_s(self) -> float:
        return self.cpc_step_flops / self.case(CPC).seconds_per_step

    @property
    def matmul_fraction(self) -> float:
        return self.cpc_flops_per_s / self.matmul_flops_per_s

    @property
    def rounds(self) -> int:
        return len(self.cases[0].round_seconds) if self.cases else 0

    def round_time_ratios(self) -> list[float]:
        """GIM / CPC step time within each round (both timed minutes apart at most)."""
        cpc, gim = self.case(CPC), self.case(GIM_ALL)
        return [g / c for g, c in zip(gim.round_seconds, cpc.round_seconds, strict=True)]

    def ratios(self) -> dict[str, float | None]:
        cpc, gim, one = self.case(CPC), self.case(GIM_ALL), self.case(GIM_ONE)

        def ratio(a: int | None, b: int | None) -> float | None:
            return a / b if a is not None and b else None

        # With several rounds, the median of the rounds' ratios: each compares two cases timed a minute apart
        time_ratio = (
            statistics.median(self.round_time_ratios())
            if self.rounds > 1
            else gim.seconds_per_step / cpc.seconds_per_step
        )
        return {
            "GIM step / CPC step (time)": time_ratio,
            "GIM peak / CPC peak (memory)": ratio(gim.peak_bytes, cpc.peak_bytes),
            "module-1 peak / CPC peak (memory)": ratio(one.peak_bytes, cpc.peak_bytes),
            "CPC achieved FLOP/s / matmul FLOP/s": self.matmul_fraction,
        }


CPC = "CPC end-to-end"
GIM_ALL = "GIM all modules"
GIM_ONE = "GIM module 1 alone"


def run_bench(
    *,
    batch_size: int = 8,
    samples: int = 20480,
    steps: int = 3,
    warmup: int = 1,
    rounds: int = 3,
    device: str = "auto",
    threads: int = 0,
    progress: bool = True,
    cpc_preset: Config | str = "cpc",
    gim_preset: Config | str = "gim",
    feature_seconds: float = 10.0,
    feature_reps: int = 3,
    matmul_size: int = 2048,
    matmul_reps: int = 5,
    max_case_seconds: float = 90.0,
) -> BenchResult:
    """Run every measurement (see the module docstring) and return the figures.

    ``cpc_preset`` / ``gim_preset`` (preset names or Configs) replace the paper architecture, e.g. with a
    tiny model in tests. ``threads > 0`` sets torch's intra-op threads for every measurement (this
    process's setting is restored afterwards); 0 keeps torch's default.

    The training cases run in child processes, which (as with any ``multiprocessing`` spawn or forkserver
    start) re-import the main script: call this under ``if __name__ == "__main__":`` in a script.
    """
    from tqdm.auto import tqdm

    from vgim.train.loop import resolve_device

    if steps < 2:
        raise ValueError("steps must be >= 2")
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    t_start = time.perf_counter()
    busy_start, own_start = _machine_busy_seconds(), time.process_time()
    cpc_cfg = load_config(cpc_preset) if isinstance(cpc_preset, str) else cpc_preset
    gim_cfg = load_config(gim_preset) if isinstance(gim_preset, str) else gim_preset
    cases: list[tuple[str, Config, str, int | None]] = [
        (CPC, cpc_cfg, "end_to_end", None),
        (GIM_ALL, gim_cfg, "together", None),
        (GIM_ONE, gim_cfg, "sequential", 0),
    ]
    old_threads = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    try:
        machine = machine_info(dev, torch.get_num_threads())
        memory_steps = 2 if dev.type == "cpu" and is_glibc() else 0
        per_case = rounds * (warmup + steps) + memory_steps
        bar = tqdm(total=len(cases) * per_case + 2, desc="bench", unit="step", disable=not progress)
        results: dict[str, CaseResult] = {}
        # Rounds: every case's timing process once per round, the cases interleaved, so that a change in the
        # machine's speed during the bench (frequent on shared virtual machines) hits every case alike.
        for r in range(rounds):
            for name, cfg, mode, active in cases:
                bar.set_description(name if rounds == 1 else f"{name}, round {r + 1}/{rounds}")
                done = 0

                def on_step(phase: str, i: int, dt: float) -> None:
                    nonlocal done
                    done += 1
                    bar.update(1)
                    n = memory_steps if phase == "memory" else warmup + steps
                    bar.set_postfix_str(f"{phase} {i + 1}/{n}: {dt:.2f} s")

                res = bench_case(
                    cfg,
                    mode,
                    active,
                    name=name,
                    batch_size=batch_size,
                    samples=samples,
                    steps=steps,
                    warmup=warmup,
                    device=device,
                    threads=machine.threads,
                    max_seconds=max_case_seconds,
                    measure_memory=r == 0,
                    on_step=on_step,
                )
                bar.update((warmup + steps + (memory_steps if r == 0 else 0)) - done)
                if r == 0:
                    res.saved_bytes, res.saved_per_module = memory_profile(
                        cfg, mode, active, batch_size, samples, device
                    )
                    results[name] = res
                else:
                    first = results[name]
                    first.step_seconds += res.step_seconds
                    first.warmup_seconds += res.warmup_seconds
                    first.round_seconds += res.round_seconds
                    first.cpu_seconds += res.cpu_seconds
                    res = first
                if progress and r == rounds - 1:
                    bar.write(
                        f"{name}: {res.seconds_per_step:.3f} s/step (median of {len(res.step_seconds)}), "
                        f"peak {_mib(res.peak_bytes)} above baseline"
                    )
        bar.set_description("feature extraction")
        realtime, per_call = measure_features(gim_cfg, feature_seconds, feature_reps, device)
        bar.update(1)
        bar.set_description("matmul")
        matmul = measure_matmul(matmul_size, matmul_reps, device)
        bar.update(1)
        bar.close()
    finally:
        torch.set_num_threads(old_threads)
    wall = time.perf_counter() - t_start
    busy_end = _machine_busy_seconds()
    other = None
    if busy_start is not None and busy_end is not None:
        own = time.process_time() - own_start + sum(c.cpu_seconds for c in results.values())
        other = max(0.0, (busy_end - busy_start - own) / wall)
    gim_macs = head_macs(gim_cfg, batch_size, samples)
    cpc_macs = head_macs(cpc_cfg, batch_size, samples, modules=[len(cpc_cfg.model.modules) - 1])
    return BenchResult(
        machine=machine,
        batch_size=batch_size,
        samples=samples,
        warmup=warmup,
        cases=list(results.values()),
        feature_realtime=realtime,
        feature_seconds=feature_seconds,
        feature_call_seconds=per_call,
        cpc_step_flops=train_step_flops(cpc_cfg.model, batch_size, samples),
        cpc_head_flops=6 * cpc_macs,
        gim_head_flops=6 * gim_macs,
        matmul_size=matmul_size,
        matmul_flops_per_s=matmul,
        total_seconds=wall,
        other_cpu_cores=other,
    )


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.0f} MiB"


def format_bench(result: BenchResult) -> str:
    """A plain-text report: machine, one row per case, feature speed, FLOPs and ratios."""
    m = result.machine
    lines = [
        f"machine: {m.cpu}, {m.cores} cores; device {m.device} ({m.device_name}); "
        f"torch {m.torch_version}, {m.threads} threads; python {m.python}",
        f"batch {result.batch_size} x {result.samples} samples of random audio; "
        f"{result.warmup} warm-up step(s) per process, then the median of the timed steps of "
        f"{result.rounds} round(s) (each round times every case once, in a fresh process)",
        "",
        f"{'case':<20} {'config':<8} {'mode':<11} {'s/step':>7} {'min':>7} {'max':>7} {'steps':>5} "
        f"{'peak':>9} {'peak RSS, as training':>25} {'trained params':>15}",
    ]
    for c in result.cases:
        lines.append(
            f"{c.name:<20} {c.config:<8} {c.mode:<11} {c.seconds_per_step:>7.3f} {min(c.step_seconds):>7.3f} "
            f"{max(c.step_seconds):>7.3f} {len(c.step_seconds):>5} {_mib(c.peak_bytes):>9} "
            f"{_mib(c.rss_peak_bytes):>25} {c.trained_parameters:>15,}"
        )
    lines += [
        "",
        "where the memory goes: saved = tensors autograd holds for the backward (largest module at a time in",
        "mode together); grads and Adam moments = 4 and 8 bytes per trained parameter (fp32)",
        f"{'case':<20} {'saved':>9} {'grads':>9} {'Adam':>9}  saved per module",
    ]
    for c in result.cases:
        per = (
            ""
            if not c.saved_per_module or len(c.saved_per_module) < 2
            else (" ".join(f"{b / 2**20:.0f}" for b in c.saved_per_module) + " MiB")
        )
        lines.append(
            f"{c.name:<20} {_mib(c.saved_bytes):>9} {_mib(4 * c.trained_parameters):>9} "
            f"{_mib(8 * c.trained_parameters):>9}  {per}"
        )
    lines.append("")
    methods = sorted({c.memory_method for c in result.cases})
    lines += [
        f"peak: above the baseline (model + optimisers + batch built), each case in fresh processes; "
        f"{'; '.join(methods)}",
        "peak RSS, as training: the same in the (first) timing process, which allocates as training does",
        "",
        f"feature extraction (gim, eval, {result.feature_seconds:g} s of audio): "
        f"{result.feature_realtime:.1f} x real time ({result.feature_call_seconds:.3f} s per call)",
        f"CPC training step, encoder conv + GRU: {result.cpc_step_flops / 1e9:.1f} GFLOP "
        "(3 x 2 x multiply-adds); achieved "
        f"{result.cpc_flops_per_s / 1e9:.1f} GFLOP/s",
        f"InfoNCE heads (not in the figure above): CPC {result.cpc_head_flops / 1e9:.1f} GFLOP/step, "
        f"GIM all modules {result.gim_head_flops / 1e9:.1f} GFLOP/step",
        f"fp32 matmul {result.matmul_size}x{result.matmul_size}: {result.matmul_flops_per_s / 1e9:.1f} GFLOP/s",
        "",
    ]
    for key, value in result.ratios().items():
        lines.append(f"{key:<38} {'n/a' if value is None else f'{value:.2f}'}")
    if result.rounds > 1:
        per_round = " ".join(f"{r:.2f}" for r in result.round_time_ratios())
        lines.append(f"GIM / CPC step time in each round: {per_round}")
    lines.append(f"total bench time {result.total_seconds:.0f} s")
    load = "n/a" if m.load_average is None else f"{m.load_average:.2f}"
    other = "n/a" if result.other_cpu_cores is None else f"{result.other_cpu_cores:.2f}"
    lines.append(f"1-min load average at start {load}; other processes used {other} cores on average meanwhile")
    if result.other_cpu_cores is not None and result.other_cpu_cores > 0.2:
        lines.append("WARNING: the machine was busy with other work during the bench; the timings are not reliable")
    return "\n".join(lines)
