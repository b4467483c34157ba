"""Known answers of Eq 5 and Eq 6."""
import math

import pytest
import torch
from scipy.special import i0

from hallucinator.metrics import positive_similarity, uniformity


def test_uniformity_of_uniform_circle_is_e4_i0_4():
    expected = math.exp(-4) * i0(4.0)
    assert expected == pytest.approx(0.2070, abs=5e-5)
    n = 3000
    theta = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    circle = torch.stack([theta.cos(), theta.sin()], 1) * 3.0  # scale is removed by normalisation
    # n evenly spaced points: the all-pairs mean is e^-4 I0(4); without the n self-pairs (value 1)
    # the mean over distinct pairs is (n E - 1) / (n - 1).
    assert uniformity(circle).item() == pytest.approx((n * expected - 1) / (n - 1), abs=1e-5)
    torch.manual_seed(0)
    random_dirs = torch.randn(4000, 2)
    assert uniformity(random_dirs, chunk=512).item() == pytest.approx(expected, abs=3e-3)


def test_uniformity_of_collapsed_features_is_one_and_lower_is_more_uniform():
    assert uniformity(torch.ones(50, 8)).item() == pytest.approx(1.0, abs=1e-6)
    torch.manual_seed(0)
    clustered = torch.randn(500, 2) * 0.1 + torch.tensor([1.0, 0.0])
    assert uniformity(clustered) > uniformity(torch.randn(500, 2))


def test_uniformity_two_points_closed_form():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # |a-b|^2 = 2 -> exp(-4)
    assert uniformity(x).item() == pytest.approx(math.exp(-4), rel=1e-6)


def test_positive_similarity():
    x = torch.randn(10, 5)
    assert positive_similarity(x, x * 2.0).item() == pytest.approx(1.0, abs=1e-6)
    assert positive_similarity(x, -x).item() == pytest.approx(-1.0, abs=1e-6)
    assert positive_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])).item() == pytest.approx(2 ** -0.5)
    with pytest.raises(ValueError):
        positive_similarity(x, x[:3])
