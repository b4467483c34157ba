"""Stabilised Hallucinator variants (residual H, loss-weight warm-up, normalised q): known answers."""
import pytest
import torch

from hallucinator import HALLUCINATOR_PRESETS, Hallucinator, ModelConfig, build_method
from hallucinator.losses import info_nce
from hallucinator.methods.base import SiameseMethod


def _loss(a, b):  # a pair loss with no shared state: mean squared difference
    return (a - b).pow(2).sum(1).mean()


def test_residual_at_init_returns_exactly_the_extrapolation():
    h = Hallucinator(dim=4, beta=(0.05, 0.05), residual=True)
    q, k = torch.randn(6, 4), torch.randn(6, 4)
    assert torch.equal(h(q, k), 1.05 * q - 0.05 * k)          # Eq 3 alone: H's last layer is zero
    paper = Hallucinator(dim=4, beta=(0.05, 0.05))
    assert not torch.allclose(paper(q, k), 1.05 * q - 0.05 * k)


def test_residual_learns_away_from_the_extrapolation():
    h = Hallucinator(dim=4, beta=(0.05, 0.05), residual=True)
    q, k = torch.randn(6, 4), torch.randn(6, 4)
    h(q, k).pow(2).sum().backward()
    last = h.net[-1]
    assert last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0


def test_residual_needs_an_mlp():
    with pytest.raises(ValueError, match="residual"):
        Hallucinator(dim=4, layers=0, residual=True)


def test_warmup_weights_rise_linearly_and_weight_zero_is_the_baseline_loss():
    method = SiameseMethod(hallucinator=Hallucinator(dim=3, warmup_steps=4, seed=0))
    q, k = torch.randn(5, 3), torch.randn(5, 3)
    weights, losses = [], []
    for _ in range(6):
        loss, _, _, q_hat = method.contrast(q, k, _loss)
        w = method.hallucinator.last_weight
        weights.append(w)
        losses.append((loss, _loss(q, k), _loss(q_hat, k), w))
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    loss0, pair0, _, _ = losses[0]
    assert torch.equal(loss0, pair0)                             # w = 0: exactly the baseline loss
    loss2, pair2, extra2, _ = losses[2]
    assert torch.allclose(loss2, (pair2 + 0.5 * extra2) / 1.5)
    loss5, pair5, extra5, _ = losses[5]
    assert torch.equal(loss5, 0.5 * (pair5 + extra5))            # w = 1: the paper's average


def test_warmup_counts_training_calls_only_and_resumes_from_the_state_dict():
    h = Hallucinator(dim=3, warmup_steps=10)
    q, k = torch.randn(2, 3), torch.randn(2, 3)
    h.eval()
    h(q, k)
    assert h.extra_pair_weight() == 0.0                          # eval calls do not advance it
    h.train()
    for _ in range(3):
        h(q, k)
    other = Hallucinator(dim=3, warmup_steps=10)
    other.load_state_dict(h.state_dict())
    assert other.extra_pair_weight() == pytest.approx(0.3)


def test_normalized_variant_is_invariant_to_the_scale_of_q():
    h = Hallucinator(dim=4, beta=(0.1, 0.1), normalize=True)
    q, k = torch.randn(3, 4), torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    assert torch.allclose(h(q, k), h(10.0 * q, k), atol=1e-6)
    unit = torch.nn.functional.normalize(q, dim=1)
    assert torch.allclose(h.extrapolate(unit, k, 0.1), 1.1 * unit - 0.1 * k)


def test_presets_default_paper_and_named_variants():
    assert HALLUCINATOR_PRESETS["paper"].warmup_steps == 0
    assert not HALLUCINATOR_PRESETS["paper"].residual and not HALLUCINATOR_PRESETS["paper"].normalize
    assert Hallucinator.from_preset("residual", 8).residual
    assert Hallucinator.from_preset("normalized", 8).normalize
    assert Hallucinator.from_preset("warmup", 8, warmup_steps=7).warmup_steps == 7
    with pytest.raises(ValueError, match="unknown Hallucinator preset"):
        Hallucinator.from_preset("stable-ish", 8)


def test_factory_builds_variants_and_the_warmup_override():
    m = build_method(ModelConfig(method="mocov2", backbone="resnet18_cifar", width=4, in_channels=1,
                                 queue_size=64, hallucinator=True, hallucinator_preset="warmup",
                                 hallucinator_warmup_steps=3))
    assert m.hallucinator.warmup_steps == 3 and not m.hallucinator.residual
    r = build_method(ModelConfig(method="simclr", width=4, in_channels=1, hallucinator=True,
                                 hallucinator_preset="residual"))
    assert r.hallucinator.residual and torch.count_nonzero(r.hallucinator.net[-1].weight) == 0


@pytest.mark.bit_exact  # CPU, fp32, deterministic algorithms
def test_warmup_zero_moco_step_equals_the_baseline_step():
    cfg = dict(method="mocov2", width=4, in_channels=1, queue_size=64, seed=0)
    base = build_method(ModelConfig(**cfg))
    hal = build_method(ModelConfig(**cfg, hallucinator=True, hallucinator_preset="warmup"))
    missing, unexpected = hal.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("hallucinator.") for k in missing)
    x1, x2 = torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16)
    torch.manual_seed(1)
    lb = base(x1, x2).loss
    torch.manual_seed(1)
    lh = hal(x1, x2).loss
    assert torch.equal(lb, lh)


def test_fused_pairs_fall_back_to_separate_losses_during_warmup():
    queue = torch.nn.functional.normalize(torch.randn(16, 3), dim=1)
    method = type("Fused", (SiameseMethod,), {"rowwise_loss": True})(
        hallucinator=Hallucinator(dim=3, warmup_steps=2), fuse_pairs=True)
    q, k = torch.randn(4, 3), torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    loss, *_ = method.contrast(q, k, lambda a, b: info_nce(a, b, queue, 0.2))
    assert torch.equal(loss, info_nce(q, k, queue, 0.2))
