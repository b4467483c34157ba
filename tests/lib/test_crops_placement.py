"""Crop placement against the released ContrastiveCrop sampler, written here from its formula.

Released rule (CC ``ContrastiveCrop.py`` ~43-50), per axis with image side S, crop side s and the
central box [S (1 - p) / 2, S (1 + p) / 2]:
    lo = max(int(S (1 - p) / 2) - s // 2, 0),   hi = min(int(S (1 + p) / 2) - s // 2, S - s),
    top = lo + int((hi - lo) * B),  B ~ Beta(alpha, alpha).
So P(top = lo + k | s) = F((k + 1) / (hi - lo)) - F(k / (hi - lo)), F the Beta CDF (top = lo when hi = lo).
"""
import random

import pytest
import torch
from scipy.stats import beta as beta_dist
from scipy.stats import chisquare

from hallucinator import TwoViews, recipe
from hallucinator.crops import CenterSuppressedResizedCrop, sample_crop_box, sample_crop_boxes

S, P, ALPHA, N = 28, 0.5, 0.6, 20000


def _draw(sampler: str, placement: str, n: int = N, alpha: float = ALPHA, size: int = S) -> torch.Tensor:
    if sampler == "batched":
        torch.manual_seed(0)
        return sample_crop_boxes(n, size, size, (0.2, 1.0), p=P, alpha=alpha, placement=placement)
    rng = random.Random(0)
    return torch.tensor([sample_crop_box(rng, size, size, (0.2, 1.0), p=P, alpha=alpha, placement=placement)
                         for _ in range(n)])


def _released_top_pmf(side: int, alpha: float = ALPHA, size: int = S) -> torch.Tensor:
    """P(top = t | crop side) over t = 0..size-1, from the released formula."""
    S = size
    lo = max(int(S * (1 - P) / 2) - side // 2, 0)
    hi = min(int(S * (1 + P) / 2) - side // 2, S - side)
    pmf = torch.zeros(S, dtype=torch.float64)
    if hi == lo:
        pmf[lo] = 1.0
        return pmf
    edges = beta_dist.cdf([k / (hi - lo) for k in range(hi - lo + 1)], alpha, alpha)
    pmf[lo:hi] = torch.tensor(edges[1:] - edges[:-1])
    return pmf


def _chi2_against_released(tops: torch.Tensor, sides: torch.Tensor, alpha: float = ALPHA, size: int = S) -> float:
    """Chi-square p-value of the (side, top) table against the released formula's expectation."""
    observed, expected = [], []
    for side in sides.unique().tolist():
        sel = sides == side
        exp = _released_top_pmf(side, alpha, size) * int(sel.sum())
        obs = torch.bincount(tops[sel], minlength=size).double()
        keep = exp > 0
        if obs[~keep].sum() > 0:
            return 0.0  # a position the released rule never produces
        observed.append(obs[keep])
        expected.append(exp[keep])
    obs, exp = torch.cat(observed), torch.cat(expected)
    big = exp >= 5  # pool the sparse cells into one
    obs = torch.cat([obs[big], obs[~big].sum().view(1)])
    exp = torch.cat([exp[big], exp[~big].sum().view(1)])
    return float(chisquare(obs.numpy(), exp.numpy() * obs.sum().item() / exp.sum().item()).pvalue)


@pytest.mark.parametrize("sampler", ["batched", "per-sample"])
@pytest.mark.parametrize("alpha, size", [(ALPHA, S), (0.1, 28), (0.1, 32)])
def test_corner_histogram_matches_the_released_formula(sampler, alpha, size):
    """At alpha 0.1 (every small-scale released config) Python's float64 betavariate returned exactly
    1.0 in ~1.2 % of draws, putting the corner on ``hi``, which the float32 sampler never does (issue 25)."""
    boxes = _draw(sampler, "released", alpha=alpha, size=size)
    assert _chi2_against_released(boxes[:, 0], boxes[:, 2], alpha, size) > 1e-3  # rows: top | height
    assert _chi2_against_released(boxes[:, 1], boxes[:, 3], alpha, size) > 1e-3  # columns: left | width


def test_per_sample_beta_never_reaches_one_at_alpha_01():
    from hallucinator.crops import BETA_MAX, beta_variate
    rng = random.Random(0)
    draws = [beta_variate(rng, 0.1) for _ in range(20000)]
    assert max(draws) == BETA_MAX < 1.0                        # clamped where float64 gave 1.0
    assert sum(d == BETA_MAX for d in draws) > 100             # ~10 % sit at the float32 ceiling, as in torch


@pytest.mark.parametrize("sampler", ["batched", "per-sample"])
def test_centre_clamp_rule_is_rejected_by_the_same_test(sampler):
    boxes = _draw(sampler, "centre-clamp")
    assert _chi2_against_released(boxes[:, 0], boxes[:, 2]) < 1e-6


@pytest.mark.parametrize("sampler", ["batched", "per-sample"])
def test_border_touching_share_at_28px_alpha_06(sampler):
    """Share of crops touching the top or bottom border: released ~0.30, centre-clamp ~0.63 (issue 10)."""
    def share(boxes):
        return float(((boxes[:, 0] == 0) | (boxes[:, 0] + boxes[:, 2] == S)).double().mean())

    released = _draw(sampler, "released")
    expected = sum(float(_released_top_pmf(s)[0] + (_released_top_pmf(s)[S - s] if s < S else 0))
                   for s in released[:, 2].tolist()) / N  # from the formula, given the drawn heights
    assert abs(share(released) - expected) < 4.5 * (expected * (1 - expected) / N) ** 0.5
    assert 0.28 < share(released) < 0.33
    assert 0.58 < share(_draw(sampler, "centre-clamp")) < 0.68


def test_fallback_is_the_central_crop_and_bad_placement_raises():
    # a 10 x 100 image cannot hold a square of >= 99 % of its area: torchvision's central fallback
    torch.manual_seed(0)
    box = sample_crop_boxes(3, 10, 100, (0.99, 1.0), ratio=(1.0, 1.0), p=0.5)
    assert box.tolist() == [[0, 45, 10, 10]] * 3
    assert sample_crop_box(random.Random(0), 10, 100, (0.99, 1.0), ratio=(1.0, 1.0), p=0.5) == (0, 45, 10, 10)
    with pytest.raises(ValueError, match="placement"):
        sample_crop_boxes(2, 28, 28, placement="centre")
    with pytest.raises(ValueError, match="placement"):
        CenterSuppressedResizedCrop(24, placement="corner")
    with pytest.raises(ValueError, match="placement"):
        TwoViews(recipe("grey", crop_p=0.5, crop_placement="corner"))


@pytest.mark.bit_exact  # CPU, fp32, deterministic algorithms
def test_per_sample_views_are_a_function_of_the_generator():
    img = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    views = TwoViews(recipe("grey", size=28, crop_p=0.5))
    a, b = views(img, random.Random(7)), views(img, random.Random(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = views(img, random.Random(8))
    assert not (torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]))


def test_run_config_carries_the_placement_and_refuses_unknown_ones():
    from hallucinator.config import ConfigError
    from hallucinator.presets import load_config
    from hallucinator.training.pipeline import augment_config
    assert augment_config(load_config("smoke/mocov2-hal", [])).crop_placement == "released"
    assert augment_config(load_config("smoke/mocov2-hal", ["crop_placement=centre-clamp"])).crop_placement == "centre-clamp"
    with pytest.raises(ConfigError, match="crop_placement"):
        load_config("smoke/mocov2-hal", ["crop_placement=corner"])


@pytest.mark.parametrize("p", [None, 0.5])
def test_sync_free_crop_rounds_accept_the_same_boxes_as_the_early_stop(monkeypatch, p):
    """Off the CPU every rejection round runs (no host read); each box still takes its first
    accepted (scale, ratio) draw, so its size equals the early-stopping sampler's on the same stream."""
    from hallucinator import crops
    def sizes():
        g = torch.Generator().manual_seed(3)
        boxes = crops.sample_crop_boxes(2000, 28, 20, scale=(0.2, 1.0), p=p, generator=g)
        assert ((boxes[:, 0] >= 0) & (boxes[:, 0] + boxes[:, 2] <= 28) & (boxes[:, 1] >= 0)
                & (boxes[:, 1] + boxes[:, 3] <= 20)).all()
        return boxes[:, 2:], g.get_state()
    early, early_state = sizes()
    monkeypatch.setattr(crops, "EARLY_EXIT_DEVICES", ())
    free, free_state = sizes()
    assert torch.equal(free, early)
    assert not torch.equal(free_state, early_state)  # all rounds ran: more draws than the early stop
