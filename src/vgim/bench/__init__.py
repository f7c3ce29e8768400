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

The package, one file per idea (everything listed in ``__all__`` is re-exported here):

- :mod:`vgim.bench.flops`: the analytic multiply-adds and FLOPs (:func:`encoder_macs`, :func:`head_macs`,
  :func:`train_step_flops`);
- :mod:`vgim.bench.machine`: the machine (:class:`MachineInfo`, :func:`machine_info`) and its busy time;
- :mod:`vgim.bench.memory`: the peak-memory measurement and :func:`~vgim.bench.memory.memory_profile`;
- :mod:`vgim.bench.cases`: one case's timed training steps in fresh processes (:func:`bench_case`,
  :class:`CaseResult`);
- :mod:`vgim.bench.speed`: feature extraction and matmul speed (:func:`measure_features`,
  :func:`measure_matmul`);
- :mod:`vgim.bench.runner`: the whole bench in rounds (:func:`run_bench`, :class:`BenchResult`, the case
  names :data:`CPC`, :data:`GIM_ALL`, :data:`GIM_ONE`);
- :mod:`vgim.bench.report`: the plain-text report (:func:`format_bench`).
"""

from vgim.bench.cases import CaseResult, bench_case
from vgim.bench.flops import encoder_macs, head_macs, train_step_flops
from vgim.bench.machine import MachineInfo, machine_info
from vgim.bench.report import format_bench
from vgim.bench.runner import CPC, GIM_ALL, GIM_ONE, BenchResult, run_bench
from vgim.bench.speed import measure_features, measure_matmul

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
