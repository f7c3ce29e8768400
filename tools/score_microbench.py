"""Time the InfoNCE scoring of one paper-size head (8 x 128 positions x 12 steps, 10 negatives, 512 channels),
forward + backward, in the ways compared in BENCHMARKS.md ("einsum+bmm" was the code before commit 2ae9623,
"mulsum+bmm" is the current one).

Usage: .venv/bin/python tools/score_microbench.py
"""
import torch, time
torch.manual_seed(0)
B,P,K,N,C = 8,128,12,10,512
pred = torch.randn(B,P,K,C, requires_grad=True)
pos = torch.randn(B,P,K,C, requires_grad=True)
neg = torch.randn(B,P,N,C, requires_grad=True)
def t(f, name):
    for _ in range(2): f()
    t0=time.perf_counter()
    for _ in range(3): f()
    print(f"{name}: {(time.perf_counter()-t0)/3*1000:.1f} ms")
def f_bmm():
    a = torch.einsum("bpkc,bpkc->bpk", pred, pos); b = pred @ neg.transpose(-1,-2)
    (a.sum()+b.sum()).backward()
def f_elem():
    a = (pred*pos).sum(-1); b = torch.stack([(pred*neg[:,:,n:n+1]).sum(-1) for n in range(N)], -1)
    (a.sum()+b.sum()).backward()
def f_mix():
    a = (pred*pos).sum(-1); b = pred @ neg.transpose(-1,-2)
    (a.sum()+b.sum()).backward()
def f_cat():
    # positives and negatives as one candidate set per (b,p): [K+N] candidates, one bmm; take diag for positives
    cand = torch.cat([pos.view(B,P,K,C), neg], 2)  # [B,P,K+N,C]
    s = pred @ cand.transpose(-1,-2)  # [B,P,K,K+N]
    a = s[..., :K].diagonal(dim1=-2, dim2=-1); b = s[..., K:]
    (a.sum()+b.sum()).backward()
def f_flat():
    # bmm with batch (b,p) flattened and contiguous operands
    p2 = pred.reshape(B*P, K, C); n2 = neg.reshape(B*P, N, C)
    b = torch.bmm(p2, n2.transpose(1,2)); a = (pred*pos).sum(-1)
    (a.sum()+b.sum()).backward()
for f,n in [(f_bmm,"einsum+bmm"),(f_elem,"elementwise"),(f_mix,"mulsum+bmm"),(f_cat,"cat one bmm"),(f_flat,"flat bmm")]: t(f,n)
