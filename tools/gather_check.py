"""Time InfoNCE's negative scores, forward and backward, the autograd way against ``gathered_scores``.

The shapes are the thesis network's module 1 on one batch (171 crops of 52 frames, 51 positions x 12 steps,
10 negatives, 32 channels). Run on a quiet machine: ``python tools/gather_check.py``.
"""

import time

import torch

from vgim.objective.infonce import gathered_scores


def autograd_scores(pred: torch.Tensor, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return (pred.unsqueeze(1) * z.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)).sum(-1)


def main(rounds: int = 5) -> None:
    torch.manual_seed(0)
    rows, n_neg, channels, frames = 171 * 51 * 12, 10, 32, 171 * 52
    pred = torch.randn(rows, channels, requires_grad=True)
    z = torch.randn(frames, channels, requires_grad=True)
    idx = torch.randint(0, frames, (rows, n_neg))
    for name, fn in (("autograd", autograd_scores), ("gathered_scores", gathered_scores)):
        fn(pred, z, idx).square().sum().backward()  # warm-up
        t0 = time.perf_counter()
        for _ in range(rounds):
            fn(pred, z, idx).square().sum().backward()
        print(f"{name}: {(time.perf_counter() - t0) / rounds * 1000:.0f} ms per forward + backward")


if __name__ == "__main__":
    main()
