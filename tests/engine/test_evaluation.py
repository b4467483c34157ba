"""Probes on known answers: kNN, L-BFGS logistic regression, class-balanced subsets, linear probe."""
import numpy as np
import pytest
import torch
from engine_support import TINY, needs_fmnist
from hallucinator.presets import load_config
from hallucinator.data import InMemoryImageDataset
from hallucinator.data.imagenet import load_image_folder
from hallucinator.evaluate import evaluate
from hallucinator.evaluation.features import extract_features
from hallucinator.evaluation.fast_probe import balanced_subset, logistic_regression_top1
from hallucinator.evaluation.knn import knn_top1
from hallucinator.evaluation.linear_probe import linear_probe
from hallucinator.metrics import uniformity
from hallucinator.training.trainer import Trainer
from PIL import Image
from torch import nn


def test_knn_known_answer():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    test = torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.6, 0.4]])
    assert knn_top1(train, labels, test, torch.tensor([0, 1, 0]), k=2) == pytest.approx(100.0)
    assert knn_top1(train, labels, test, torch.tensor([1, 0, 0]), k=2) == pytest.approx(100 / 3)
    # unlabelled memory items (label -1) never vote
    assert knn_top1(torch.cat([train, test]), torch.cat([labels, torch.tensor([-1, -1, -1])]), test,
                    torch.tensor([0, 1, 0]), k=1) == pytest.approx(100.0)


def test_logistic_regression_separable_and_chance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g)
    y = (x[:, 0] > 0).long()
    assert logistic_regression_top1(x[:300], y[:300], x[300:], y[300:]) >= 97.0
    noise_y = torch.randint(0, 2, (400,), generator=g)
    assert logistic_regression_top1(x[:300], noise_y[:300], x[300:], noise_y[300:]) < 70.0


def test_logistic_regression_float32_matches_float64():
    """The default float32 solve classifies as the float64 reference does (10 classes, 64-d, noisy)."""
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(10, 64, generator=g)
    y = torch.randint(0, 10, (3000,), generator=g)
    x = centers[y] + 4.0 * torch.randn(3000, 64, generator=g)
    x[:, :4] = 3.0 + 1e-4 * torch.randn(3000, 4, generator=g)  # near-constant columns, as image borders are
    args = (x[:2000], y[:2000], x[2000:], y[2000:])
    top32 = logistic_regression_top1(*args)
    top64 = logistic_regression_top1(*args, dtype=torch.float64)
    assert 40.0 < top64 < 99.0, f"the check needs a non-trivial problem, float64 gave {top64}"
    assert abs(top32 - top64) <= 0.5, f"float32 {top32} vs float64 {top64} (1000 test items)"


def test_balanced_subset():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20 + [-1] * 10)
    idx = balanced_subset(labels, 30, seed=0)
    assert len(idx) == 30 and len(set(idx.tolist())) == 30
    assert torch.bincount(labels[idx], minlength=3).tolist() == [10, 10, 10]
    assert torch.equal(idx, balanced_subset(labels, 30, seed=0))


def test_linear_probe_learns_and_leaves_backbone_untouched(tmp_path):
    g = torch.Generator().manual_seed(0)
    imgs = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
    targets = torch.arange(64) % 2
    imgs[targets == 1, :, :14, :] = 255  # class 1: bright top half (the probe's flips keep it)
    imgs[targets == 0, :, 14:, :] = 255
    imgs = (imgs.float() * 0.8 + torch.rand(imgs.shape, generator=g) * 50).clamp(0, 255).to(torch.uint8)
    ds = InMemoryImageDataset(imgs, targets, ["a", "b"])
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 1)),
                             nn.Flatten())
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    res = linear_probe(backbone, 8, ds, ds, "fashion_mnist", torch.device("cpu"), tmp_path, epochs=3, lr=1.0,
                       milestones=(2,), batch_size=16, num_workers=0, show_progress=False)
    assert set(res) >= {"top1", "top1_best", "best_epoch", "history"} and len(res["history"]) == 3
    assert res["top1"] == res["history"][-1] and res["top1_best"] == max(res["history"])
    assert res["top1"] >= 90.0, f"2 separable classes (chance 50 %): the probe reached only {res['top1']}"
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in before.items())  # BN stats frozen too
    # resumable: a second call with more epochs continues from the saved 3
    res2 = linear_probe(backbone, 8, ds, ds, "fashion_mnist", torch.device("cpu"), tmp_path, epochs=4, lr=1.0,
                        milestones=(2,), batch_size=16, num_workers=0, show_progress=False)
    assert res2["history"][:3] == res["history"] and len(res2["history"]) == 4


@needs_fmnist
def test_features_2d_probe_writes_what_fig5_reads(tmp_path):
    cfg = load_config("smoke/mocov2-hal", [*TINY, "dim=2", "epochs=1", "knn_every=0", "eval_test_subset=300",
                                           f"output_dir={tmp_path}", "run_name=r"])
    Trainer(cfg, show_progress=False).fit()
    res = evaluate(tmp_path / "r", ["features_2d"], cfg, show_progress=False)
    data = np.load(tmp_path / "r" / "features_2d.npz")
    assert data["features"].shape == (300, 2) and data["labels"].shape == (300,)
    assert np.allclose(np.linalg.norm(data["features"], axis=1), 1.0, atol=1e-5)
    assert res["probes"]["features_2d"]["g2"] == pytest.approx(uniformity(torch.from_numpy(data["features"])).item(), rel=1e-5)


def _variable_size_image_folder(root):
    """ImageNet's layout (train/ and val/ class folders) of JPEGs in 5 different sizes, 2 classes:
    class 0 bright on the left, class 1 bright on the right (a flip-free split a probe can learn)."""
    sizes = [(40, 30), (23, 57), (64, 64), (31, 45), (50, 26)]
    for split in ("train", "val"):
        for c, wnid in enumerate(("n00000001", "n00000002")):
            d = root / split / wnid
            d.mkdir(parents=True)
            for i, (w, h) in enumerate(sizes):
                a = np.full((h, w, 3), 20, np.uint8)
                (a[:, : w // 2] if c == 0 else a[:, w // 2:])[:] = 230
                Image.fromarray(a).save(d / f"{wnid}_{i}.JPEG", quality=90)
    return (load_image_folder("imagenet", root, "train"), load_image_folder("imagenet", root, "test"))


def _tiny_backbone():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 2)), nn.Flatten())


def test_linear_probe_evaluates_a_folder_of_variable_size_jpegs(tmp_path):
    """The probe's test pass batches images of different sizes (resized per sample, then collated)."""
    train, test = _variable_size_image_folder(tmp_path / "data")
    assert len({tuple(test[i][0].shape) for i in range(len(test))}) == 5  # the check needs mixed sizes
    res = linear_probe(_tiny_backbone(), 8, train, test, "imagenet", torch.device("cpu"), tmp_path, epochs=1,
                       lr=1.0, milestones=(1,), batch_size=4, num_workers=0, size=16, show_progress=False)
    assert len(res["history"]) == 1 and 0.0 <= res["top1"] <= 100.0


def test_probe_monitor_and_features_share_one_eval_loop(tmp_path):
    """The features, the probe's test pass and the monitor's G2 images are the same eval batches."""
    from hallucinator.evaluation import linear_probe as lp
    from hallucinator.evaluation.batches import eval_batches
    from hallucinator.evaluation.monitor import Monitor
    _, test = _variable_size_image_folder(tmp_path / "data")
    backbone = _tiny_backbone().eval()
    feats, labels = extract_features(backbone, test, "imagenet", torch.device("cpu"), size=16, batch_size=3)
    x = torch.cat([b for b, _ in eval_batches(test, "imagenet", torch.device("cpu"), 16, batch_size=3)])
    assert x.shape == (10, 3, 16, 16)
    torch.testing.assert_close(feats, backbone(x))
    clf = nn.Linear(8, 2)
    expect = 100.0 * (clf(backbone(x)).argmax(1) == labels).double().mean().item()
    assert lp._evaluate(backbone, clf, test, "imagenet", 16, torch.device("cpu"), 4, 0) == pytest.approx(expect)
    cfg = load_config("smoke/mocov2", ["dataset=imagenet", "in_channels=3", "image_size=16", "metrics_batch=6"])
    torch.testing.assert_close(Monitor(cfg, test, None).probe, x[:6])
