"""Eq 3 / Eq 4 on hand-computed tensors, the averaging of the two pairs, gradients, presets."""
import pytest
import torch
from torch import nn

from hallucinator import HALLUCINATOR_PRESETS, Hallucinator, ModelConfig, SymmetricExtrapolation, build_method
from hallucinator.losses import info_nce, nt_xent
from hallucinator.methods.base import SiameseMethod


def test_eq3_extrapolation_hand_computed():
    h = Hallucinator(dim=2, layers=0)
    q, k = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])
    out = h.extrapolate(q, k, torch.tensor(0.5))
    assert torch.equal(out, torch.tensor([[1.5 * 1 - 0.5 * 3, 1.5 * 2 + 0.5 * 1]]))  # [0, 3.5]


def test_n0_gives_exactly_q_prime():
    h = Hallucinator(dim=3, layers=0, beta=(0.25, 0.25))
    q, k = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.equal(h(q, k), (1.25) * q - 0.25 * k)
    assert len(list(h.parameters())) == 0


def test_eq4_mlp_on_concatenation_hand_computed():
    h = Hallucinator(dim=2, layers=2, hidden=3, beta=(0.5, 0.5))
    first, second = h.net[0], h.net[2]
    assert (first.in_features, first.out_features, second.out_features) == (4, 3, 2)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, -1.0]]))
        first.bias.zero_()
        second.weight.copy_(torch.tensor([[1.0, 1.0, 0], [0, 0, 1.0]]))
        second.bias.copy_(torch.tensor([0.0, 1.0]))
    q, k = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])
    # q' = [0, 3.5]; [q, q'] = [1, 2, 0, 3.5] -> hidden relu([1, 0, -3.5]) = [1, 0, 0] -> [1, 1]
    assert torch.equal(h(q, k), torch.tensor([[1.0, 1.0]]))


def test_default_widths_match_released_code():
    h = Hallucinator(dim=128)  # MoCo head: 256 -> 256 -> 128
    linears = [m for m in h.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 256), (256, 256), (256, 128)]
    assert sum(isinstance(m, nn.ReLU) for m in h.net) == 2


@pytest.mark.bit_exact  # CPU, fp32, deterministic algorithms
def test_lambda_range_seeding_and_per_sample():
    h = Hallucinator(dim=4, beta=(0.2, 0.3), seed=3)
    lams = torch.stack([h.sample_lambda(8) for _ in range(2000)])
    assert lams.shape == (2000,) and lams.min() >= 0.2 and lams.max() <= 0.3
    assert abs(lams.mean().item() - 0.25) < 0.005
    same = Hallucinator(dim=4, beta=(0.2, 0.3), seed=3)
    assert torch.equal(same.sample_lambda(1), Hallucinator(dim=4, beta=(0.2, 0.3), seed=3).sample_lambda(1))
    assert Hallucinator(dim=4, per_sample=True).sample_lambda(6).shape == (6, 1)


@pytest.mark.bit_exact  # CPU, fp32, deterministic algorithms
def test_lambda_generator_state_travels_in_state_dict():
    a = Hallucinator(dim=4, seed=1)
    a.sample_lambda(1)
    b = Hallucinator(dim=4, seed=99)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.sample_lambda(1), b.sample_lambda(1))


def test_presets_and_bad_arguments():
    assert HALLUCINATOR_PRESETS["paper"].beta == (0.0, 0.1)
    assert HALLUCINATOR_PRESETS["table5"].beta == (0.0, 1.0)
    assert Hallucinator.from_preset("non-parametric", dim=8).layers == 0
    with pytest.raises(ValueError):
        Hallucinator(dim=4, beta=(0.5, 0.1))
    with pytest.raises(ValueError):
        Hallucinator.from_preset("nope", dim=4)
    with pytest.raises(ValueError):
        Hallucinator(dim=4)(torch.randn(2, 4), torch.randn(3, 4))


class _Toy(SiameseMethod):
    rowwise_loss = True


def test_hook_averages_the_two_pairs_losses():
    m = _Toy(hallucinator=Hallucinator(dim=3, seed=0))
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    loss_fn = lambda a, b: ((a - b) ** 2).sum(1).mean()  # noqa: E731
    loss, _, _, q_hat = m.contrast(q, k, loss_fn)
    assert loss.item() == pytest.approx(0.5 * (loss_fn(q, k) + loss_fn(q_hat, k)).item(), rel=1e-6)
    fused = _Toy(hallucinator=Hallucinator(dim=3, seed=0), fuse_pairs=True)
    fused.hallucinator.load_state_dict(m.hallucinator.state_dict())
    # the fused single call over 2N rows gives the same value
    m2 = _Toy(hallucinator=Hallucinator(dim=3, seed=0))
    m2.hallucinator.load_state_dict(fused.hallucinator.state_dict())
    assert fused.contrast(q, k, loss_fn)[0].item() == pytest.approx(m2.contrast(q, k, loss_fn)[0].item(), rel=1e-6)


def _views(n=6, c=3, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, s, s, generator=g), torch.randn(n, c, s, s, generator=g)


@pytest.mark.parametrize("method", ["mocov1", "mocov2", "simclr"])
def test_method_loss_is_mean_of_both_pairs(method):
    torch.manual_seed(0)
    model = build_method(ModelConfig(method=method, width=4, hallucinator=True, queue_size=32))
    queue = model.queue.clone() if hasattr(model, "queue") else None
    out = model(*_views())
    if queue is not None:
        t = model.temperature
        ref = 0.5 * (info_nce(out.q, out.k, queue, t) + info_nce(out.q_hat, out.k, queue, t))
    else:
        ref = 0.5 * (nt_xent(out.q, out.k, 0.5) + nt_xent(out.q_hat, out.k, 0.5))
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_moco_fused_pairs_equal_separate_pairs():
    cfg = dict(method="mocov2", width=4, hallucinator=True, queue_size=32)
    torch.manual_seed(1)
    a = build_method(ModelConfig(**cfg))
    b = build_method(ModelConfig(**cfg, fuse_pairs=True))
    b.load_state_dict(a.state_dict())
    x1, x2 = _views()
    la, lb = a(x1, x2).loss, b(x1, x2).loss
    assert la.item() == pytest.approx(lb.item(), rel=1e-6)
    with pytest.raises(ValueError, match="couples rows"):
        build_method(ModelConfig(method="simsiam", fuse_pairs=True))


@pytest.mark.parametrize("method", ["mocov1", "mocov2", "simclr", "simsiam"])
def test_gradients_reach_theta_and_encoder(method):
    torch.manual_seed(0)
    model = build_method(ModelConfig(method=method, width=4, hallucinator=True, queue_size=32))
    out = model(*_views())
    out.loss.backward()
    h_grads = [p.grad for p in model.hallucinator.parameters()]
    assert h_grads and all(g is not None and g.abs().sum() > 0 for g in h_grads)
    conv = model.encoder.backbone.conv1.weight.grad
    assert conv is not None and conv.abs().sum() > 0
    assert out.q_hat is not None and out.q_hat.shape == out.q.shape and out.lam is not None


def test_simsiam_projector_placement_and_targets_get_no_gradient():
    torch.manual_seed(0)
    for at in ("predictor", "projector"):
        model = build_method(ModelConfig(method="simsiam", width=4, hallucinator=True, hallucinate_at=at))
        out = model(*_views())
        out.loss.backward()
        assert all(p.grad is not None for p in model.hallucinator.parameters())
        # Targets: cut every path from z into the loss except the target one (the predictor sees
        # a detached copy, and so does H, which only sees predictor outputs or their inputs).
        # With stop-gradient targets the encoder must then receive no gradient at all.
        model = build_method(ModelConfig(method="simsiam", width=4, hallucinator=True, hallucinate_at=at))
        model.predictor = _DetachedInput(model.predictor)
        if at == "projector":
            model.hallucinator = _DetachedHallucinator(model.hallucinator)
        model(*_views()).loss.backward()
        grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
        assert all(float(g.abs().max()) == 0.0 for g in grads), "gradient reached the encoder through a target"
    with pytest.raises(ValueError):
        build_method(ModelConfig(method="simsiam", hallucinate_at="backbone"))


class _DetachedInput(nn.Module):
    """Wraps a module so that no gradient flows back into its inputs (test helper)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *xs):
        return self.inner(*(x.detach() for x in xs))


class _DetachedHallucinator(_DetachedInput):
    """``_DetachedInput`` that still reports the wrapped Hallucinator's lambda and loss weight."""

    @property
    def last_weight(self) -> float:
        return self.inner.last_weight

    @property
    def last_lambda(self):
        return self.inner.last_lambda


def test_symmetric_extrapolation_replaces_the_pair():
    s = SymmetricExtrapolation(seed=0)
    q, k = torch.randn(500, 4) * 7.0, torch.randn(500, 4)
    q_hat, k_hat = s(q, k)
    q, k = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(k, dim=1)  # mixed as unit vectors
    # q_hat - k_hat = (2 lam - 1)(q - k) with lam in [1, 2]: the pair is pushed apart
    ratio = ((q_hat - k_hat) / (q - k))[:, 0]
    lam = (ratio + 1) / 2
    assert lam.min() >= 1.0 and lam.max() <= 2.0 and abs(lam.mean().item() - 1.5) < 0.03
    assert torch.allclose(q_hat, lam[:, None] * q + (1 - lam[:, None]) * k, atol=1e-5)
    model = build_method(ModelConfig(method="mocov2", width=4, extrapolation="symmetric", queue_size=16))
    model(*_views()).loss.backward()
    with pytest.raises(ValueError):
        build_method(ModelConfig(method="mocov2", hallucinator=True, extrapolation="symmetric"))
