from __future__ import annotations

import dataclasses
import statistics

import pytest

from vgim.allocator import is_glibc
from vgim.bench import (
    CPC,
    GIM_ALL,
    GIM_ONE,
    bench_case,
    encoder_macs,
    format_bench,
    head_macs,
    run_bench,
    train_step_flops,
)
from vgim.config import Config, LayerSpec, ModelConfig, ObjectiveConfig, TrainConfig, load_config


def _big_first_module(modules: list[int], mode: str) -> Config:
    """Module 0 is a wide conv over many frames (its activations dominate); the rest is tiny."""
    layers = [
        LayerSpec("conv", 256, 10, 5, 2),
        LayerSpec("conv", 16, 8, 4, 2),
        LayerSpec("conv", 16, 4, 2, 1),
        LayerSpec("gru", 16),
    ]
    return Config(
        name=f"big0-{mode}",
        model=ModelConfig(layers=layers, modules=modules),
        objective=ObjectiveConfig(n_predictions=4, n_negatives=8, max_positions=32),
        train=TrainConfig(mode=mode),  # type: ignore[arg-type]
    )


def test_encoder_macs_of_one_conv_layer() -> None:
    cfg = ModelConfig(layers=[LayerSpec("conv", 32, 10, 5, 2)], modules=[1])
    # T_out = (1000 + 2*2 - 10) // 5 + 1 = 199 frames; MACs = B * T_out * C_out * C_in * kernel
    assert encoder_macs(cfg, 4, 1000) == 4 * 199 * 32 * 1 * 10
    assert train_step_flops(cfg, 4, 1000) == 6 * 4 * 199 * 32 * 10


def test_encoder_macs_with_gru_and_paper_model() -> None:
    cfg = ModelConfig(layers=[LayerSpec("conv", 8, 4, 4, 0), LayerSpec("gru", 6)], modules=[2])
    # 100 samples -> 25 frames of 8 channels; GRU: 3 gates * H * (C_in + H) per frame
    assert encoder_macs(cfg, 2, 100) == 2 * 25 * 8 * 1 * 4 + 2 * 25 * 3 * 6 * (8 + 6)
    cpc = load_config("cpc").model
    # frames: 20480 -> 4095 -> 1023 -> 512 -> 257 -> 128
    expected = 8 * (4095 * 512 * 10 + 1023 * 512 * 512 * 8 + 512 * 512 * 512 * 4 + 257 * 512 * 512 * 4)
    expected += 8 * 128 * (512 * 512 * 4 + 3 * 256 * (512 + 256))
    assert encoder_macs(cpc, 8, 20480) == expected
    # GIM has the same layers: the encoder cost does not depend on the module split
    assert encoder_macs(load_config("gim").model, 8, 20480) == expected


def test_head_macs() -> None:
    cfg = _big_first_module([1, 3], "together")
    # module 0: 1000 samples -> 199 frames, P = min(32, 199 - 4); z = c = 256 channels
    m0 = 2 * 32 * 4 * 256 * (256 + 1 + 8)
    assert head_macs(cfg, 2, 1000, modules=[0]) == m0
    # module 1: 199 -> 49 -> 24 frames, P = 20; z = 16, c = 16 (GRU)
    assert head_macs(cfg, 2, 1000) == m0 + 2 * 20 * 4 * 16 * (16 + 1 + 8)


def test_run_bench_on_a_tiny_model() -> None:
    gim = _big_first_module([1, 3], "together")
    cpc = dataclasses.replace(_big_first_module([4], "end_to_end"), name="big0-cpc")
    result = run_bench(
        batch_size=8,
        samples=16000,
        steps=2,
        warmup=1,
        rounds=2,
        device="cpu",
        threads=1,
        progress=False,
        cpc_preset=cpc,
        gim_preset=gim,
        feature_seconds=1.0,
        feature_reps=1,
        matmul_size=128,
        matmul_reps=2,
    )
    assert [c.name for c in result.cases] == [CPC, GIM_ALL, GIM_ONE]
    for case in result.cases:  # two rounds of 1 warm-up + 2 timed steps, one process each
        assert len(case.step_seconds) == 4 and len(case.warmup_seconds) == 2
        assert all(t > 0 for t in case.step_seconds + case.warmup_seconds)
        assert len(case.round_seconds) == 2
        assert case.round_seconds[0] == statistics.median(case.step_seconds[:2])
        assert case.round_seconds[1] == statistics.median(case.step_seconds[2:])
        assert case.seconds_per_step > 0
        assert isinstance(case.peak_bytes, int) and case.peak_bytes >= 0
        assert isinstance(case.baseline_bytes, int) and case.baseline_bytes > 0
        assert isinstance(case.rss_peak_bytes, int) and case.rss_peak_bytes >= 0
    all_modules, module_one = result.case(GIM_ALL), result.case(GIM_ONE)
    assert module_one.trained_parameters < all_modules.trained_parameters
    assert module_one.peak_bytes is not None and all_modules.peak_bytes is not None
    # module 0 holds nearly all of this model's activations, so the two peaks differ by allocator noise
    # (measured up to ~15 MB either way across runs); module 1 alone must not cost clearly more
    assert module_one.peak_bytes <= 1.25 * all_modules.peak_bytes
    # module 0's activations (8 x 3200 frames x 256 channels, float32 = 26 MB each) are seen
    assert module_one.peak_bytes > 26 * 2**20
    assert result.machine.threads == 1 and result.machine.cores >= 1 and result.machine.torch_version
    assert result.feature_realtime > 0 and result.matmul_flops_per_s > 0
    assert result.cpc_step_flops == train_step_flops(cpc.model, 8, 16000)
    assert result.cpc_flops_per_s > 0 and result.matmul_fraction > 0
    # saved-for-backward profile: module 0 of this model saves at least its 26 MB activation; in mode
    # together the figure is the largest module's, and module 1 alone holds what module 0 holds there
    for case in result.cases:
        assert case.saved_bytes is not None and case.saved_bytes > 26 * 2**20
        assert case.saved_per_module is not None and case.saved_bytes == max(case.saved_per_module)
    assert len(all_modules.saved_per_module or []) == 2
    assert module_one.saved_bytes == (all_modules.saved_per_module or [0])[0]
    assert result.rounds == 2
    gim_rounds, cpc_rounds = result.case(GIM_ALL).round_seconds, result.case(CPC).round_seconds
    assert result.round_time_ratios() == [g / c for g, c in zip(gim_rounds, cpc_rounds, strict=True)]
    assert result.ratios()["GIM step / CPC step (time)"] == statistics.median(result.round_time_ratios())
    if is_glibc():  # timing processes allocate as training does; the peak comes from the fixed-threshold one
        assert all("fixed at 128 KiB" in c.memory_method for c in result.cases)
    text = format_bench(result)
    for name in (
        CPC,
        GIM_ALL,
        GIM_ONE,
        "real time",
        "GFLOP/s",
        result.machine.cpu,
        "where the memory goes",
        "in each round",
    ):
        assert name in text
    assert all(v is not None and v > 0 for v in result.ratios().values())
    assert result.other_cpu_cores is None or result.other_cpu_cores >= 0
    assert all(c.cpu_seconds > 0 for c in result.cases)


def test_bench_case_in_process_and_errors() -> None:
    cfg = _big_first_module([1, 3], "together")
    phases: list[tuple[str, int]] = []
    res = bench_case(
        cfg,
        "sequential",
        1,
        batch_size=2,
        samples=4000,
        steps=2,
        warmup=1,
        isolate=False,
        device="cpu",
        on_step=lambda phase, i, dt: phases.append((phase, i)),
    )
    assert phases == [("warm-up", 0), ("step", 1), ("step", 2)]
    assert len(res.step_seconds) == 2 and res.active == 1
    assert res.trained_parameters < res.parameters  # module 1 only
    with pytest.raises(ValueError, match="at least 2"):
        bench_case(cfg, "together", steps=1)
    with pytest.raises(RuntimeError, match="failed"):
        bench_case(cfg, "sequential", None, batch_size=2, samples=4000, steps=2, warmup=0, device="cpu")
