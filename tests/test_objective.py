from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vgim.objective import InfoNCE, gaussian_kl, sample_negatives
from vgim.objective.infonce import sample_shared_negatives


def reference_infonce(
    z: torch.Tensor, c: torch.Tensor, W: torch.Tensor, positions: torch.Tensor, negatives: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow and obvious: loop over batch, position and step; score z^T W_k c_t for positive + negatives."""
    n_batch, n_time, n_ch = z.shape
    n_k = negatives.shape[2]
    flat = z.reshape(n_batch * n_time, n_ch)
    losses = torch.zeros(n_k)
    correct = torch.zeros(n_k)
    count = 0
    for b in range(n_batch):
        for p, t in enumerate(positions.tolist()):
            count += 1
            for k in range(1, n_k + 1):
                w_k = W[(k - 1) * n_ch : k * n_ch]  # [C_z, C_c]
                pred = w_k @ c[b, t]
                scores = [z[b, t + k] @ pred] + [flat[j] @ pred for j in negatives[b, p, k - 1].tolist()]
                s = torch.stack(scores)
                losses[k - 1] += -F.log_softmax(s, dim=0)[0]
                correct[k - 1] += float(s[0] > s[1:].max())
    return losses / count, correct / count


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("strategy", ["batch", "same_sequence", "other_sequences", "same_speaker"])
def test_fast_infonce_matches_reference(
    strategy: str, dense: bool, shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vgim.objective.infonce as infonce

    monkeypatch.setattr(infonce, "DENSE_SCORE_LIMIT", 1 << 30 if dense else 0)  # both scoring paths
    torch.manual_seed(1)
    head = InfoNCE(6, 5, n_predictions=3, n_negatives=4, negatives=strategy, max_positions=7, share_negatives=shared)  # type: ignore[arg-type]
    z = torch.randn(3, 20, 6)
    c = torch.randn(3, 20, 5)
    speakers = torch.tensor([0, 1, 0])
    out = head.score(z, c, speakers)
    ref_loss, ref_acc = reference_infonce(z, c, head.W.weight.detach(), out.positions, out.negatives)
    torch.testing.assert_close(out.loss_k.detach(), ref_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.accuracy_k, ref_acc)
    torch.testing.assert_close(out.mi_bound_k, math.log(5) - ref_loss, rtol=1e-5, atol=1e-5)
    assert out.positions.numel() == 7
    if shared:  # one draw per position, the same for every k
        assert torch.equal(out.negatives, out.negatives[:, :, :1].expand_as(out.negatives))


def test_scores_only_the_scored_positions() -> None:
    head = InfoNCE(4, 4, n_predictions=2, n_negatives=3, max_positions=5)
    out = head.score(torch.randn(2, 4000, 4), torch.randn(2, 4000, 4))
    assert out.positions.numel() == 5
    assert out.negatives.shape == (2, 5, 2, 3)


@pytest.mark.parametrize("strategy", ["batch", "same_sequence", "other_sequences", "same_speaker"])
def test_positive_is_never_a_negative(strategy: str) -> None:
    torch.manual_seed(0)
    n_batch, n_time, n_k = 6, 5, 3  # tiny pools make collisions likely if exclusion were approximate
    positions = torch.arange(n_time - n_k)
    target_times = positions[:, None] + torch.arange(1, n_k + 1)[None, :]
    speakers = torch.tensor([0, 0, 1, 1, 1, 2])
    for _ in range(200):
        neg = sample_negatives(n_batch, n_time, target_times, 16, strategy, speakers)  # type: ignore[arg-type]
        b = torch.arange(n_batch).view(-1, 1, 1, 1)
        positive = b * n_time + target_times.view(1, *target_times.shape, 1)
        assert not torch.any(neg == positive)
        seq = neg // n_time
        if strategy == "same_sequence":
            assert torch.all(seq == b)
        if strategy == "other_sequences":
            assert torch.all(seq != b)
        if strategy == "same_speaker":
            assert torch.all(speakers[seq] == speakers.view(-1, 1, 1, 1))
    # every non-positive candidate is reachable: same_sequence on one sequence covers all other frames
    neg = sample_negatives(1, 4, torch.tensor([[2]]), 4000, "same_sequence")
    assert set(neg.flatten().tolist()) == {0, 1, 3}


@pytest.mark.parametrize("strategy", ["batch", "same_sequence", "other_sequences", "same_speaker"])
def test_shared_negatives_exclude_every_positive_of_their_position(strategy: str) -> None:
    torch.manual_seed(0)
    n_batch, n_time, n_k = 6, 6, 3
    positions = torch.arange(n_time - n_k)
    speakers = torch.tensor([0, 0, 1, 1, 1, 2])
    b = torch.arange(n_batch).view(-1, 1, 1)
    for _ in range(200):
        neg = sample_shared_negatives(n_batch, n_time, positions, n_k, 16, strategy, speakers)  # type: ignore[arg-type]
        assert neg.shape == (n_batch, positions.numel(), 16)
        seq, time = neg // n_time, neg % n_time
        t = positions.view(1, -1, 1)
        assert not torch.any((seq == b) & (time > t) & (time <= t + n_k))
        if strategy == "same_sequence":
            assert torch.all(seq == b)
        if strategy == "other_sequences":
            assert torch.all(seq != b)
        if strategy == "same_speaker":
            assert torch.all(speakers[seq] == speakers.view(-1, 1, 1))
    # every other frame stays reachable: one sequence of 6 frames, position 1, K = 3 -> frames {0, 1, 5}
    neg = sample_shared_negatives(1, 6, torch.tensor([1]), 3, 4000, "same_sequence")
    assert set(neg.flatten().tolist()) == {0, 1, 5}


def test_negative_sampling_errors_are_clear() -> None:
    tt = torch.tensor([[1]])
    with pytest.raises(ValueError, match="speaker labels"):
        sample_negatives(2, 3, tt, 2, "same_speaker", None)
    with pytest.raises(ValueError, match="at least 2"):
        sample_negatives(1, 3, tt, 2, "other_sequences")
    with pytest.raises(ValueError, match="too short"):
        InfoNCE(2, 2, n_predictions=12).score(torch.randn(1, 10, 2), torch.randn(1, 10, 2))


def test_kl_equals_monte_carlo_estimate() -> None:
    torch.manual_seed(0)
    mu = torch.randn(2, 3, 4)
    logvar = torch.randn(2, 3, 4) * 0.5
    closed = gaussian_kl(mu, logvar)
    std = torch.exp(0.5 * logvar)
    q = torch.distributions.Normal(mu, std)
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean()  # sum over channels; mean over samples, batch, time
    assert abs(float(closed) - float(mc)) < 0.02 * float(closed) + 0.01
    assert float(gaussian_kl(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3))) == 0.0


@pytest.mark.parametrize("shared", [False, True])
def test_contexts_that_are_the_latents_match_the_reference_and_its_gradient(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module without a GRU predicts from ``c = z`` (one tensor): the fast path gathers both at once."""
    import vgim.objective.infonce as infonce

    monkeypatch.setattr(infonce, "DENSE_SCORE_LIMIT", 0)
    torch.manual_seed(2)
    head = InfoNCE(5, 5, n_predictions=3, n_negatives=4, max_positions=6, share_negatives=shared)
    z = torch.randn(2, 16, 5, requires_grad=True)
    torch.manual_seed(3)
    out = head.score(z, z)
    ref_loss, ref_acc = reference_infonce(z.detach(), z.detach(), head.W.weight.detach(), out.positions, out.negatives)
    torch.testing.assert_close(out.loss_k.detach(), ref_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.accuracy_k, ref_acc)
    (grad,) = torch.autograd.grad(out.loss, z)
    # the same loss through a separate copy of the contexts gives the same total gradient
    z2 = z.detach().clone().requires_grad_(True)
    c2 = z2 * 1.0
    head2 = InfoNCE(5, 5, n_predictions=3, n_negatives=4, max_positions=6, share_negatives=shared)
    head2.load_state_dict(head.state_dict())
    torch.manual_seed(3)
    out2 = head2.score(z2, c2)
    assert torch.equal(out2.negatives, out.negatives)
    (grad2,) = torch.autograd.grad(out2.loss, z2)
    torch.testing.assert_close(grad, grad2, rtol=1e-5, atol=1e-6)


def reference_per_k(
    z: torch.Tensor, c: torch.Tensor, W: torch.Tensor, positions: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """Each k's mean loss over its own positions t < T - k only (GIM's code), by loops."""
    n_batch, n_time, n_ch = z.shape
    n_k = negatives.shape[2]
    flat = z.reshape(n_batch * n_time, n_ch)
    losses = torch.zeros(n_k)
    for k in range(1, n_k + 1):
        w_k = W[(k - 1) * n_ch : k * n_ch]
        terms = []
        for b in range(n_batch):
            for p, t in enumerate(positions.tolist()):
                if t + k >= n_time:
                    continue
                pred = w_k @ c[b, t]
                s = torch.stack([z[b, t + k] @ pred] + [flat[j] @ pred for j in negatives[b, p, k - 1].tolist()])
                terms.append(-F.log_softmax(s, dim=0)[0])
        losses[k - 1] = torch.stack(terms).mean()
    return losses


@pytest.mark.parametrize("dense", [True, False])
def test_positions_per_k_score_each_step_at_its_own_positions(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import vgim.objective.infonce as infonce

    monkeypatch.setattr(infonce, "DENSE_SCORE_LIMIT", 1 << 30 if dense else 0)
    torch.manual_seed(4)
    head = InfoNCE(5, 5, n_predictions=4, n_negatives=3, max_positions=0, positions_per_k=True)
    z, c = torch.randn(3, 7, 5), torch.randn(3, 7, 5)
    out = head.score(z, c)
    assert out.positions.tolist() == list(range(6))  # t < T - 1: k = 1 uses all six, k = 4 the first three
    ref = reference_per_k(z, c, head.W.weight.detach(), out.positions, out.negatives)
    torch.testing.assert_close(out.loss_k.detach(), ref, rtol=1e-5, atol=1e-5)
    # one cut for every k leaves only t < T - K = 3 positions
    assert InfoNCE(5, 5, n_predictions=4, n_negatives=3, max_positions=0).score(z, c).positions.numel() == 3


def test_gathered_scores_match_autograd_values_and_gradients() -> None:
    from vgim.objective.infonce import gathered_scores

    torch.manual_seed(5)
    pred = torch.randn(2500, 4, dtype=torch.float64, requires_grad=True)  # more rows than one chunk
    z = torch.randn(40, 4, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 40, (2500, 3))
    weights = torch.randn(2500, 3, dtype=torch.float64)
    got = gathered_scores(pred, z, idx)
    want = (pred.unsqueeze(1) * z[idx]).sum(-1)
    torch.testing.assert_close(got, want)
    g_got = torch.autograd.grad((got * weights).sum(), (pred, z))
    g_want = torch.autograd.grad((want * weights).sum(), (pred, z))
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b)
