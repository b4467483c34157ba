"""Losses against naive loops and hand-computed values."""
import math

import pytest
import torch
import torch.nn.functional as F

from hallucinator.losses import info_nce, negative_cosine, nt_xent


def naive_info_nce(q, k, queue, t):
    total = 0.0
    for i in range(q.shape[0]):
        qi, ki = F.normalize(q[i], dim=0), F.normalize(k[i], dim=0)
        logits = [float(qi @ ki) / t] + [float(qi @ queue[j]) / t for j in range(queue.shape[0])]
        m = max(logits)
        total += -(logits[0] - m - math.log(sum(math.exp(x - m) for x in logits)))
    return total / q.shape[0]


def naive_nt_xent(a, b, t):
    views = [F.normalize(v, dim=0) for v in torch.cat([a, b])]
    n = a.shape[0]
    total = 0.0
    for i, vi in enumerate(views):
        partner = (i + n) % (2 * n)
        logits = {j: float(vi @ vj) / t for j, vj in enumerate(views) if j != i}
        m = max(logits.values())
        lse = m + math.log(sum(math.exp(x - m) for x in logits.values()))
        total += lse - logits[partner]
    return total / (2 * n)


@pytest.mark.parametrize("n,d,k,t", [(1, 3, 1, 0.07), (4, 8, 16, 0.2), (7, 5, 3, 1.0)])
def test_info_nce_matches_naive_loop(n, d, k, t):
    g = torch.Generator().manual_seed(n * 100 + d)
    q, key = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    queue = F.normalize(torch.randn(k, d, generator=g, dtype=torch.float64), dim=1)
    assert info_nce(q, key, queue, t).item() == pytest.approx(naive_info_nce(q, key, queue, t), rel=1e-6)


def test_info_nce_hand_computed():
    # q = k = e1 and one negative e2: logits [1/T, 0] -> loss = log(1 + e^{-1/T})
    q = torch.tensor([[2.0, 0.0]])
    loss = info_nce(q, q.clone(), torch.tensor([[0.0, 1.0]]), temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2.0)), rel=1e-6)


@pytest.mark.parametrize("n,d,t", [(1, 4, 0.5), (3, 2, 0.1), (6, 16, 1.0)])
def test_nt_xent_matches_naive_loop(n, d, t):
    g = torch.Generator().manual_seed(n * 7 + d)
    a, b = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    assert nt_xent(a, b, t).item() == pytest.approx(naive_nt_xent(a, b, t), rel=1e-6)


def test_nt_xent_hand_computed():
    # N=1: each view's only other view is its positive -> loss exactly 0.
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert nt_xent(a, b, 0.5).item() == pytest.approx(0.0, abs=1e-7)
    # N=2, a=[e1, e2], b=a: for view e1 the others are (e2, e1', e2) -> logits (0, 1/T, 0)
    a = torch.eye(2)
    t = 0.5
    expected = -(2.0 - math.log(math.exp(2.0) + 2.0))
    assert nt_xent(a, a.clone(), t).item() == pytest.approx(expected, rel=1e-6)


def test_negative_cosine_value_and_stop_gradient():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    z = torch.tensor([[1.0, 1.0], [0.0, -3.0]], requires_grad=True)
    loss = negative_cosine(p, z)
    assert loss.item() == pytest.approx(-(1 / math.sqrt(2) - 1.0) / 2, rel=1e-6)
    loss.backward()
    assert p.grad is not None and p.grad.abs().sum() > 0
    assert z.grad is None, "SimSiam's target z must receive no gradient"


@pytest.mark.parametrize("fn", [lambda: info_nce(torch.ones(2, 3), torch.ones(2, 3), torch.ones(4, 3), 0.0),
                                lambda: nt_xent(torch.ones(2, 3), torch.ones(3, 3), 0.5),
                                lambda: negative_cosine(torch.ones(2, 3), torch.ones(2, 4))])
def test_losses_reject_bad_arguments(fn):
    with pytest.raises(ValueError):
        fn()
