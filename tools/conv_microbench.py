"""Throughput of the CPC encoder's layers alone, forward + backward, against the matmul figure of `vgim bench`
(BENCHMARKS.md, "Why the targets are not met"): what PyTorch's CPU kernels reach on these exact shapes.

Each conv layer of the `cpc` preset at batch 8 x 20480 samples runs forward + backward (input gradient for
all but the first layer, weight gradient for all), then the GRU over the 128 frames; achieved GFLOP/s =
3 x 2 x multiply-adds / median time of 5 runs, as `vgim.bench` counts them.

Usage: .venv/bin/python tools/conv_microbench.py
"""
import statistics, time
import torch
from vgim.config import load_config

torch.manual_seed(0)
torch.set_flush_denormal(True)  # as vgim.bench and training do
cfg = load_config("cpc").model
B, n = 8, 20480
x = torch.randn(B, 1, n)
c_in, total_s, total_flop = 1, 0.0, 0.0


def timed(fn):
    fn()
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


for i, spec in enumerate(cfg.layers):
    if spec.kind == "conv":
        conv = torch.nn.Conv1d(c_in, spec.channels, spec.kernel, spec.stride, spec.padding)
        inp = x.detach().requires_grad_(i > 0)
        out = conv(inp)
        macs = B * out.shape[-1] * spec.channels * c_in * spec.kernel
        def run():
            conv.zero_grad(set_to_none=True)
            torch.relu(conv(inp)).sum().backward()
        s = timed(run)
        name = f"conv {i + 1} ({c_in}->{spec.channels}, k{spec.kernel}/s{spec.stride}, {out.shape[-1]} frames)"
        x, c_in = torch.relu(out).detach(), spec.channels
    else:
        gru = torch.nn.GRU(c_in, spec.channels, batch_first=True)
        inp = x.transpose(1, 2).contiguous().requires_grad_(True)
        macs = B * inp.shape[1] * 3 * spec.channels * (c_in + spec.channels)
        def run():
            gru.zero_grad(set_to_none=True)
            gru(inp)[0].sum().backward()
        s = timed(run)
        name = f"GRU ({c_in}->{spec.channels}, {inp.shape[1]} steps)"
    flop = 3 * 2 * macs
    total_s += s
    total_flop += flop
    print(f"{name:48s} {s * 1000:8.1f} ms  {flop / 1e9:7.2f} GFLOP  {flop / s / 1e9:7.1f} GFLOP/s")
a = torch.randn(2048, 2048); b = torch.randn(2048, 2048)
mm = 2 * 2048**3 / min(timed(lambda: a @ b) for _ in range(1))
print(f"{'encoder layers together':48s} {total_s * 1000:8.1f} ms  {total_flop / 1e9:7.2f} GFLOP  {total_flop / total_s / 1e9:7.1f} GFLOP/s")
print(f"fp32 matmul 2048 x 2048: {mm / 1e9:.1f} GFLOP/s; layers alone reach {total_flop / total_s / mm:.2f} of it")
