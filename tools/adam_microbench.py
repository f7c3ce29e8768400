"""One Adam step over GIM's 23.1 M trained parameters (six 12 x 512 x 512 heads and four 512 x 512 x 4 kernels,
about the `gim` preset's sizes), one thread: the per-parameter loop, the multi-tensor (foreach) and the fused
kernel. Quoted in BENCHMARKS.md.

Usage: .venv/bin/python tools/adam_microbench.py
"""
import torch, time
torch.set_num_threads(1)
ps=[torch.nn.Parameter(torch.randn(12*512,512)) for _ in range(6)]+[torch.nn.Parameter(torch.randn(512,512,4)) for _ in range(4)]
n=sum(p.numel() for p in ps); print("params M", n/1e6)
for kw in [dict(foreach=False), dict(foreach=True), dict(fused=True)]:
    opt=torch.optim.Adam(ps, lr=1e-4, **kw)
    for p in ps: p.grad=torch.randn_like(p)
    opt.step()
    t=time.perf_counter()
    for _ in range(5): opt.step()
    print(kw, (time.perf_counter()-t)/5)
