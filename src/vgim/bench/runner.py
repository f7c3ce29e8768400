"""The bench: every case in interleaved rounds, then feature and matmul speed (part of :mod:`vgim.bench`)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from vgim.allocator import is_glibc
from vgim.bench.cases import CaseResult, bench_case
from vgim.bench.flops import head_macs, train_step_flops
from vgim.bench.machine import MachineInfo, machine_busy_seconds, machine_info
from vgim.bench.memory import memory_profile, mib
from vgim.bench.speed import measure_features, measure_matmul
from vgim.config import Config, load_config

__all__ = ["CPC", "GIM_ALL", "GIM_ONE", "BenchResult", "run_bench"]


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
    """Run every measurement (see the :mod:`vgim.bench` docstring) and return the figures.

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
    busy_start, own_start = machine_busy_seconds(), time.process_time()
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
                        f"peak {mib(res.peak_bytes)} above baseline"
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
    busy_end = machine_busy_seconds()
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
