"""Center-suppressed crop statistics (a test that can fail) and the backbones' layout."""
import pytest
import torch
import torchvision
from scipy.stats import chisquare

from hallucinator import CenterSuppressedResizedCrop, TwoViews, build_backbone, recipe, sample_crop_boxes


def _centre_fractions(alpha, n=20000, size=200, p=0.5):
    torch.manual_seed(0)
    boxes = sample_crop_boxes(n, size, size, scale=(0.0004, 0.0004), ratio=(1.0, 1.0), p=p, alpha=alpha)
    cy = boxes[:, 0].double() + boxes[:, 2].double() / 2
    lo, hi = size * (1 - p) / 2, size * (1 + p) / 2
    return ((cy - lo) / (hi - lo)).clamp(0, 1 - 1e-9)


def test_centre_histogram_is_u_shaped_for_alpha_below_one():
    hist = torch.histc(_centre_fractions(0.3).float(), bins=10, min=0, max=1)
    assert hist[0] > 1.8 * hist[4:6].mean() and hist[9] > 1.8 * hist[4:6].mean()
    assert (hist[:5].diff() < 0).all() and (hist[5:].diff() > 0).all()  # falls then rises


def test_centre_histogram_is_flat_for_alpha_one_and_peaked_for_alpha_two():
    flat = torch.histc(_centre_fractions(1.0).float(), bins=10, min=0, max=1)
    assert chisquare(flat.numpy()).pvalue > 1e-3  # uniform not rejected
    peaked = torch.histc(_centre_fractions(2.0).float(), bins=10, min=0, max=1)
    assert chisquare(peaked.numpy()).pvalue < 1e-6 and peaked[4:6].mean() > 1.5 * peaked[0]


@pytest.mark.parametrize("h,w,p", [(32, 32, 0.5), (64, 40, 0.3), (96, 200, 1.0), (28, 28, None)])
def test_crops_stay_inside_the_image(h, w, p):
    torch.manual_seed(1)
    boxes = sample_crop_boxes(5000, h, w, scale=(0.08, 1.0), p=p, alpha=0.1)
    top, left, bh, bw = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (bh >= 1).all() and (bw >= 1).all()
    assert (top + bh <= h).all() and (left + bw <= w).all()


def test_crop_transform_output_and_bad_arguments():
    img = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    out = CenterSuppressedResizedCrop(24, p=0.5, alpha=0.6)(img)
    assert out.shape == (3, 24, 24) and out.dtype == torch.uint8
    q, k = TwoViews(recipe("mocov2", size=24, crop_p=0.5))(img)
    assert q.shape == k.shape == (3, 24, 24) and q.dtype == torch.uint8
    with pytest.raises(ValueError):
        CenterSuppressedResizedCrop(24, p=1.5)
    with pytest.raises(ValueError):
        CenterSuppressedResizedCrop(24, alpha=0.0)


@pytest.mark.parametrize("name,tv", [("resnet50", torchvision.models.resnet50), ("resnet18", torchvision.models.resnet18)])
def test_width_64_matches_torchvision_layout(name, tv):
    ours = {k: v.shape for k, v in build_backbone(name).state_dict().items()}
    ref = {k: v.shape for k, v in tv().state_dict().items() if not k.startswith("fc.")}
    assert ours == ref


def test_cifar_stem_and_width():
    net = build_backbone("resnet18_cifar", width=16, in_channels=1)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 128) and net.out_dim == 128
    assert build_backbone("resnet50", width=8).out_dim == 256
    with pytest.raises(ValueError):
        build_backbone("vgg16")
