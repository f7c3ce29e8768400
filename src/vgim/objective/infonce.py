"""InfoNCE with the log-bilinear score, negative sampling, and the Gaussian KL term.

For every scored position ``t`` and step ``k = 1..K`` the positive is ``z_{t+k}`` of the same sequence
and the score is ``f_k(z, c_t) = exp(z^T W_k c_t)``. The loss is the cross-entropy of picking the positive
among ``1 + n_negatives`` candidates, averaged over batch and positions for each ``k`` and then averaged
over ``k``. ``log(1 + n_negatives) - L_k`` is the InfoNCE lower bound on ``I(z_{t+k}; c_t)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgim.config import NegativeStrategy, ObjectiveConfig
from vgim.data.batches import Batch
from vgim.model.bottleneck import gaussian_kl
from vgim.objective.base import Head, HeadOutput, HeadSpec, register_head

# Above this many (prediction, frame) pairs the negatives are gathered instead of scored densely.
DENSE_SCORE_LIMIT = 1 << 22

__all__ = [
    "InfoNCE",
    "InfoNCEOutput",
    "gaussian_kl",
    "sample_negatives",
    "sample_shared_negatives",
    "candidate_sequences",
]


@dataclass
class InfoNCEOutput:
    """``loss``: scalar (mean over k); ``loss_k``, ``accuracy_k``, ``mi_bound_k``: ``[K]``.

    ``positions`` (``[P]``) are the scored context frames and ``negatives`` (``[B, P, K, N]``) the flat
    indices into ``z.reshape(B * T, C)`` of each candidate set's negatives, kept for inspection and tests
    (with shared negatives, an expanded view of the ``[B, P, N]`` draws: the same for every ``k``).
    """

    loss: Tensor
    loss_k: Tensor
    accuracy_k: Tensor
    mi_bound_k: Tensor
    positions: Tensor
    negatives: Tensor


def candidate_sequences(
    n_batch: int, strategy: NegativeStrategy, speakers: Tensor | None, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """For each sequence ``b``, the sequences its negatives may come from.

    Returns ``members [B, M]`` (row ``b`` lists candidate sequences, padded with its last entry),
    ``counts [B]`` and ``self_rank [B]``: where ``b`` itself sits in its row, or -1 if it is not a candidate.
    """
    ar = torch.arange(n_batch, device=device)
    if strategy == "batch":
        members = ar.expand(n_batch, n_batch)
        return members, torch.full((n_batch,), n_batch, device=device), ar
    if strategy == "same_sequence":
        return ar[:, None], torch.ones(n_batch, dtype=torch.long, device=device), torch.zeros_like(ar)
    if strategy == "other_sequences":
        if n_batch < 2:
            raise ValueError("negatives='other_sequences' needs a batch of at least 2 sequences")
        others = torch.stack([torch.cat([ar[:b], ar[b + 1 :]]) for b in range(n_batch)])
        return others, torch.full((n_batch,), n_batch - 1, device=device), torch.full_like(ar, -1)
    if strategy == "same_speaker":
        if speakers is None:
            raise ValueError("negatives='same_speaker' needs speaker labels in the batch")
        same = speakers[:, None] == speakers[None, :]  # [B, B]
        counts = same.sum(dim=1)
        # Stable sort puts each row's same-speaker sequences first, in batch order.
        order = torch.sort((~same).to(torch.int8), dim=1, stable=True).indices
        pad_to = int(counts.max())
        members = order[:, :pad_to]
        self_rank = (same.long().cumsum(dim=1) - 1).gather(1, ar[:, None]).squeeze(1)
        return members, counts, self_rank
    raise ValueError(f"unknown negative sampling strategy {strategy!r}")


def sample_negatives(
    n_batch: int,
    n_time: int,
    target_times: Tensor,
    n_negatives: int,
    strategy: NegativeStrategy,
    speakers: Tensor | None = None,
) -> Tensor:
    """Draw negatives for every (sequence, position, step) without ever drawing the positive.

    ``target_times`` is ``[P, K]``: the frame ``t + k`` of each positive. Returns flat indices
    ``b' * n_time + t'`` of shape ``[B, P, K, N]``. Each sequence's candidate pool (all frames of its
    candidate sequences) is enumerated; when the sequence is its own candidate, one draw is made from a
    pool one smaller and indices at or past the positive are shifted up by one, which excludes the
    positive exactly while keeping every other candidate equally likely.
    """
    device = target_times.device
    members, counts, self_rank = candidate_sequences(n_batch, strategy, speakers, device)
    n_pos, n_k = target_times.shape
    includes_self = self_rank >= 0
    pool = counts * n_time - includes_self.long()  # [B]
    if int(pool.min()) < 1:
        raise ValueError(f"negatives={strategy!r}: no candidate frames besides the positive")
    shape = (n_batch, n_pos, n_k, n_negatives)
    r = (torch.rand(shape, device=device) * pool.view(-1, 1, 1, 1)).long()
    r = torch.minimum(r, (pool - 1).view(-1, 1, 1, 1))
    pos_rank = self_rank.clamp(min=0).view(-1, 1, 1, 1) * n_time + target_times.view(1, n_pos, n_k, 1)
    r = r + (includes_self.view(-1, 1, 1, 1) & (r >= pos_rank)).long()
    seq = members.gather(1, (r // n_time).view(n_batch, -1)).view(shape)
    return seq * n_time + r % n_time


def sample_shared_negatives(
    n_batch: int,
    n_time: int,
    positions: Tensor,
    n_predictions: int,
    n_negatives: int,
    strategy: NegativeStrategy,
    speakers: Tensor | None = None,
) -> Tensor:
    """One set of negatives per (sequence, position), shared by all ``K`` steps.

    ``positions`` is ``[P]``: the scored context frames ``t``. None of a position's negatives is any of its
    ``K`` positives ``z_{t+1} .. z_{t+K}`` of the same sequence: those ``K`` frames form one contiguous
    block of the candidate pool, so one draw from a pool ``K`` smaller with indices at or past the block
    shifted up by ``K`` excludes them exactly and keeps every other candidate equally likely. Returns flat
    indices ``b' * n_time + t'`` of shape ``[B, P, N]``.
    """
    device = positions.device
    members, counts, self_rank = candidate_sequences(n_batch, strategy, speakers, device)
    n_pos = positions.numel()
    includes_self = self_rank >= 0
    pool = counts * n_time - includes_self.long() * n_predictions  # [B]
    if int(pool.min()) < 1:
        raise ValueError(f"negatives={strategy!r}: no candidate frames besides the positives")
    shape = (n_batch, n_pos, n_negatives)
    r = (torch.rand(shape, device=device) * pool.view(-1, 1, 1)).long()
    r = torch.minimum(r, (pool - 1).view(-1, 1, 1))
    first = self_rank.clamp(min=0).view(-1, 1, 1) * n_time + (positions + 1).view(1, n_pos, 1)
    r = r + n_predictions * (includes_self.view(-1, 1, 1) & (r >= first)).long()
    seq = members.gather(1, (r // n_time).view(n_batch, -1)).view(shape)
    return seq * n_time + r % n_time


GATHER_CHUNK = 1024  # prediction rows per chunk of gathered negatives (their [chunk, N, C] block fits in cache)


class _GatheredScores(torch.autograd.Function):
    """``scores[r, n] = pred[r] . z[idx[r, n]]`` in chunks of rows, without keeping the gathered negatives.

    Autograd over ``index_select`` and a product would hold the ``[R, N, C]`` block of negatives (and its
    gradient) for the backward; here the forward keeps only ``pred``, ``z`` and ``idx`` and the backward
    gathers again chunk by chunk. On the thesis network's batch of 171 x 52 frames (1.2 M candidate pairs)
    this op's forward and backward take about a quarter of the time of the autograd version (measured on the
    2-core CPU with ``tools/gather_check.py``).
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, pred: Tensor, z: Tensor, idx: Tensor) -> Tensor:
        n_rows, n_neg = idx.shape
        out = pred.new_empty(n_rows, n_neg)
        for a in range(0, n_rows, GATHER_CHUNK):
            b = min(n_rows, a + GATHER_CHUNK)
            negatives = z.index_select(0, idx[a:b].reshape(-1)).view(b - a, n_neg, -1)
            out[a:b] = torch.bmm(negatives, pred[a:b].unsqueeze(2)).squeeze(2)
        ctx.save_for_backward(pred, z, idx)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        pred, z, idx = ctx.saved_tensors  # type: ignore[attr-defined]
        n_rows, n_neg = idx.shape
        want_pred, want_z = ctx.needs_input_grad[:2]  # type: ignore[attr-defined]
        grad = grad.contiguous()
        grad_pred = torch.empty_like(pred) if want_pred else None
        if grad_pred is not None:
            for a in range(0, n_rows, GATHER_CHUNK):
                b = min(n_rows, a + GATHER_CHUNK)
                negatives = z.index_select(0, idx[a:b].reshape(-1)).view(b - a, n_neg, -1)
                grad_pred[a:b] = torch.bmm(grad[a:b].unsqueeze(1), negatives).squeeze(1)
        grad_z = None
        if want_z:
            # grad_z[j] = sum over (r, n) with idx[r, n] = j of grad[r, n] * pred[r]: a sparse [M, R] matrix
            # times pred (several times faster on a CPU than index_add_ of the [R * N, C] products)
            rows = torch.arange(n_rows, device=idx.device).repeat_interleave(n_neg)
            spread = torch.sparse_coo_tensor(
                torch.stack([idx.reshape(-1), rows]), grad.reshape(-1), (z.shape[0], n_rows), check_invariants=False
            )
            grad_z = torch.sparse.mm(spread, pred)
        return grad_pred, grad_z, None


def gathered_scores(pred: Tensor, z: Tensor, idx: Tensor) -> Tensor:
    """``pred [R, C]`` scored against the rows ``idx [R, N]`` of ``z [M, C]``: ``[R, N]``."""
    return _GatheredScores.apply(pred, z, idx)  # type: ignore[no-any-return]


@register_head("infonce")
class InfoNCE(Head):
    """The log-bilinear InfoNCE objective of one module (the head ``objective.head = "infonce"``).

    ``W_k`` for all ``k`` is one ``Linear(c_channels, K * z_channels)`` applied only at the scored
    positions, so long sequences cost only what is scored.

    ``share_negatives`` draws one set of negatives per scored position and scores it against the
    predictions of every ``k`` (:func:`sample_shared_negatives`) instead of a fresh set per ``k``: the
    gathered negatives, and their gradient, are ``K`` times smaller, and the scores become one batched
    matrix product. Each prediction still meets ``n_negatives`` negatives drawn uniformly from the
    strategy's pool, but the pool excludes all ``K`` positives of the position, not only its own.
    """

    def __init__(
        self,
        z_channels: int,
        c_channels: int,
        n_predictions: int = 12,
        n_negatives: int = 10,
        negatives: NegativeStrategy = "batch",
        max_positions: int = 0,
        share_negatives: bool = False,
        positions_per_k: bool = False,
    ) -> None:
        super().__init__()
        if positions_per_k and share_negatives:
            raise ValueError("positions_per_k and share_negatives cannot be combined")
        self.share_negatives = share_negatives
        self.positions_per_k = positions_per_k
        self.z_channels = z_channels
        self.n_predictions = n_predictions
        self.n_negatives = n_negatives
        self.negatives = negatives
        self.max_positions = max_positions
        self.W = nn.Linear(c_channels, n_predictions * z_channels, bias=False)

    @classmethod
    def build(cls, cfg: ObjectiveConfig, options: object, spec: HeadSpec) -> InfoNCE:
        return cls(
            spec.z_channels,
            spec.c_channels,
            n_predictions=cfg.n_predictions,
            n_negatives=cfg.n_negatives,
            negatives=cfg.negatives,
            max_positions=cfg.max_positions,
            share_negatives=cfg.share_negatives,
            positions_per_k=cfg.positions_per_k,
        )

    def forward(self, targets: Tensor, context: Tensor, batch: Batch) -> HeadOutput:
        """The head interface: :meth:`score` with the batch's speakers; stats ``infonce`` (the loss),
        ``accuracy`` and ``mi_bound`` (means over k) and ``acc_k`` (``[K]``)."""
        out = self.score(targets, context, batch.speakers)
        return HeadOutput(
            loss=out.loss,
            stats={
                "infonce": out.loss.detach(),
                "accuracy": out.accuracy_k.mean(),
                "mi_bound": out.mi_bound_k.mean(),
                "acc_k": out.accuracy_k,
            },
        )

    def positions(self, n_time: int, device: torch.device) -> Tensor:
        """The context frames scored this call (sorted): all valid ones, or a random subset. Valid are the
        ``t < T - K`` (one cut for every k), or with ``positions_per_k`` the ``t < T - 1`` (each k then
        scores only its own ``t < T - k``; see :meth:`score`)."""
        n_valid = n_time - (1 if self.positions_per_k else self.n_predictions)
        if n_time - self.n_predictions < 1:
            raise ValueError(
                f"a sequence of {n_time} frames is too short to predict {self.n_predictions} steps ahead; "
                "use longer crops or fewer prediction steps (objective.n_predictions)"
            )
        if 0 < self.max_positions < n_valid:
            return torch.randperm(n_valid, device=device)[: self.max_positions].sort().values
        return torch.arange(n_valid, device=device)

    def score(self, z: Tensor, c: Tensor, speakers: Tensor | None = None) -> InfoNCEOutput:
        """``z``: targets ``[B, T, C_z]``; ``c``: contexts ``[B, T, C_c]``; ``speakers``: ``[B]`` ids."""
        n_batch, n_time, n_ch = z.shape
        n_k = self.n_predictions
        ts = self.positions(n_time, z.device)  # [P]
        ks = torch.arange(1, n_k + 1, device=z.device)
        target_times = ts[:, None] + ks[None, :]  # [P, K]
        # positions_per_k: (t, k) is scored only where t + k < T; elsewhere the target is clamped to a real
        # frame so every index stays valid, and the mask drops that candidate set from the loss.
        valid = target_times < n_time if self.positions_per_k else None
        if valid is not None:
            target_times = target_times.clamp(max=n_time - 1)
        n_pos = ts.numel()
        if self.share_negatives:
            shared = sample_shared_negatives(n_batch, n_time, ts, n_k, self.n_negatives, self.negatives, speakers)
            neg_idx = shared.unsqueeze(2).expand(n_batch, n_pos, n_k, self.n_negatives)
        else:
            shared = None
            neg_idx = sample_negatives(n_batch, n_time, target_times, self.n_negatives, self.negatives, speakers)
        z_flat = z.reshape(n_batch * n_time, n_ch)
        n_rows = n_batch * n_pos * n_k
        if n_rows * z_flat.shape[0] <= DENSE_SCORE_LIMIT:
            # Small problems: score every prediction against every frame with one matmul and pick the
            # negatives' scores; many tiny gathers and batched products are far slower on a CPU.
            pred = self.W(c[:, ts]).view(n_batch, n_pos, n_k, n_ch)  # W_k c_t: [B, P, K, C]
            pos_logit = (pred * z[:, target_times]).sum(dim=-1, keepdim=True)  # with z_{t+k}
            all_scores = pred.reshape(n_rows, n_ch) @ z_flat.T  # [B * P * K, B * T]
            neg_logit = all_scores.gather(1, neg_idx.reshape(n_rows, -1)).view(neg_idx.shape)
        elif shared is None:
            # Long sequences, a set of negatives per k: the negatives' scores chunk by chunk (gathered_scores)
            pred = self.W(c[:, ts]).view(n_batch, n_pos, n_k, n_ch)
            pos_logit = (pred * z[:, target_times]).sum(dim=-1, keepdim=True)
            neg_logit = gathered_scores(pred.reshape(n_rows, n_ch), z_flat, neg_idx.reshape(n_rows, -1))
            neg_logit = neg_logit.view(neg_idx.shape)
        else:
            # Long sequences, shared negatives: gather the positives, the negatives and (when the contexts are
            # the latents themselves) the contexts in one index_select, so the backward builds one gradient of
            # z's size rather than one per gather.
            first = torch.arange(n_batch, device=z.device).view(-1, 1) * n_time  # [B, 1]
            parts = [
                (first.unsqueeze(2) + target_times).flatten(),
                shared.flatten(),
            ]
            same = c is z
            if same:
                parts.insert(0, (first + ts).flatten())
            picked = z_flat.index_select(0, torch.cat(parts))
            # split (not slicing): the backward concatenates the three gradients once
            sizes = [part.numel() for part in parts]
            pieces = list(picked.split(sizes))
            context = pieces.pop(0).view(n_batch, n_pos, n_ch) if same else c[:, ts]
            positive = pieces[0].view(n_batch, n_pos, n_k, n_ch)  # z_{t+k}
            negative = pieces[1]
            pred = self.W(context).view(n_batch, n_pos, n_k, n_ch)  # W_k c_t: [B, P, K, C]
            # (an elementwise product: einsum would make this 12288 tiny matrix products, far slower on a CPU)
            pos_logit = (pred * positive).sum(dim=-1, keepdim=True)
            negative = negative.view(n_batch, n_pos, self.n_negatives, n_ch)
            neg_logit = pred @ negative.transpose(-1, -2)  # [B, P, K, C] @ [B, P, C, N] -> [B, P, K, N]
        logits = torch.cat([pos_logit, neg_logit], dim=-1)  # [B, P, K, 1 + N]
        log_prob = F.log_softmax(logits, dim=-1)[..., 0]  # [B, P, K]
        correct = (pos_logit[..., 0] > neg_logit.max(dim=-1).values).float()
        if valid is None:
            loss_k = -log_prob.mean(dim=(0, 1))
            accuracy_k = correct.mean(dim=(0, 1)).detach()
        else:  # the mean over each k's own positions t < T - k
            weight = valid.to(log_prob.dtype)[None] / (n_batch * valid.sum(dim=0).clamp(min=1))
            loss_k = -(log_prob * weight).sum(dim=(0, 1))
            accuracy_k = (correct * weight).sum(dim=(0, 1)).detach()
        with torch.no_grad():
            mi_bound_k = math.log(1 + self.n_negatives) - loss_k.detach()
        return InfoNCEOutput(
            loss=loss_k.mean(),
            loss_k=loss_k,
            accuracy_k=accuracy_k,
            mi_bound_k=mi_bound_k,
            positions=ts,
            negatives=neg_idx,
        )
