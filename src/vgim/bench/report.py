"""The plain-text report of a bench (``vgim bench`` prints it; part of :mod:`vgim.bench`)."""

from __future__ import annotations

from vgim.bench.memory import mib
from vgim.bench.runner import BenchResult

__all__ = ["format_bench"]


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
            f"{max(c.step_seconds):>7.3f} {len(c.step_seconds):>5} {mib(c.peak_bytes):>9} "
            f"{mib(c.rss_peak_bytes):>25} {c.trained_parameters:>15,}"
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
            f"{c.name:<20} {mib(c.saved_bytes):>9} {mib(4 * c.trained_parameters):>9} "
            f"{mib(8 * c.trained_parameters):>9}  {per}"
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
