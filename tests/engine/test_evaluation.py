"""Probes on known answers: kNN, L-BFGS logistic regression, class-balanced subsets, linear probe."""
import numpy as np
import pytest
import torch
from engine_support import TINY, needs_fmnist
from hallucinator.presets import load_config
from hallucinator.data import InMemoryImageDataset
from hallucinator.data.imagenet import load_image_folder
from hallucinator.data.splits import spread
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
    assert lp._evaluate(backbone, clf, test, "imagenet", 16, torch.device("cpu"), 4, 0) == (pytest.approx(expect), 10)
    cfg = load_config("smoke/mocov2", ["dataset=imagenet", "in_channels=3", "image_size=16", "metrics_batch=6"])
    # a folder is listed class by class: the monitor's G2 images are spread over it, not its first 6
    spread_idx = [0, 2, 4, 5, 7, 9]
    torch.testing.assert_close(Monitor(cfg, test, None).probe, x[spread_idx])
    assert set(labels[spread_idx].tolist()) == set(labels.tolist())


class _AutocastSpy(nn.Module):
    """A backbone that records the autocast dtype active on the CPU at each call (None: off)."""

    def __init__(self):
        super().__init__()
        self.net, self.seen = _tiny_backbone(), []

    def forward(self, x):
        self.seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return self.net(x)


def test_linear_probe_runs_the_backbone_at_the_runs_precision(tmp_path):
    """precision=bf16: every backbone call, training and test pass, is under bf16 autocast; the
    classifier and its loss stay fp32."""
    train, test = _variable_size_image_folder(tmp_path / "data")
    spy = _AutocastSpy()
    res = linear_probe(spy, 8, train, test, "imagenet", torch.device("cpu"), tmp_path, epochs=1, lr=1.0,
                       milestones=(1,), batch_size=4, num_workers=0, size=16, show_progress=False, precision="bf16")
    assert len(spy.seen) == 3 + 3 and set(spy.seen) == {torch.bfloat16}  # 10 train + 10 test images, batch 4
    assert 0.0 <= res["top1"] <= 100.0
    spy.seen.clear()
    linear_probe(spy, 8, train, test, "imagenet", torch.device("cpu"), tmp_path / "fp32", epochs=1, lr=1.0,
                 milestones=(1,), batch_size=4, num_workers=0, size=16, show_progress=False)
    assert set(spy.seen) == {None}


@needs_fmnist
def test_evaluate_gives_the_probes_the_runs_precision_and_workers(tmp_path, monkeypatch):
    import hallucinator.evaluate as ev
    seen = {}
    monkeypatch.setattr(ev, "linear_probe", lambda *a, **kw: seen.update(kw) or {"top1": 50.0, "labels": "all"})
    cfg = load_config("smoke/mocov2", ["precision=bf16", "num_workers=6", "eval_train_subset=64", "eval_test_subset=32"])
    evaluate(tmp_path, ["linear"], cfg, baseline="random-init", show_progress=False)
    assert seen["precision"] == "bf16" and seen["num_workers"] == 6  # not capped at 4, not fp32


def test_monitor_knn_spreads_decodes_with_workers_and_stays_on_the_device(tmp_path, monkeypatch):
    """The kNN memory bank and queries are evenly spread (every class of a class-sorted folder),
    the files are decoded by cfg.num_workers DataLoader workers, and the features reach the kNN
    vote on the training device (extract_features(on_device=True)), at the run's precision."""
    from hallucinator.evaluation import batches, monitor
    train, test = _variable_size_image_folder(tmp_path / "data")
    workers, feature_calls, knn_devices = [], [], []
    real_loader, real_features, real_knn = batches.DataLoader, monitor.extract_features, monitor.knn_top1

    def loader(*a, **kw):
        workers.append(kw["num_workers"])
        return real_loader(*a, **{**kw, "num_workers": 0})  # recorded; decoded here to stay quick

    def features(*a, **kw):
        feature_calls.append((a[3], kw["on_device"], kw["precision"]))
        return real_features(*a, **kw)

    monkeypatch.setattr(batches, "DataLoader", loader)
    monkeypatch.setattr(monitor, "extract_features", features)
    monkeypatch.setattr(monitor, "knn_top1", lambda ftr, ltr, fte, lte, **kw: knn_devices.append(ftr.device) or real_knn(ftr, ltr, fte, lte, **kw))
    cfg = load_config("smoke/mocov2", ["dataset=imagenet", "in_channels=3", "image_size=16", "metrics_batch=4",
                                      "knn_train_subset=4", "knn_test_subset=2", "num_workers=3", "precision=bf16",
                                      "knn_every=1", "epochs=1", "width=4"])
    mon = monitor.Monitor(cfg, test, train)
    mem, queries = mon.knn_sets
    assert len(mem) == 4 and len(queries) == 2
    assert sorted({mem[i][1] for i in range(4)}) == [0, 1] and sorted(queries[i][1] for i in range(2)) == [0, 1]
    from hallucinator.methods import build_method, model_config_from
    torch.manual_seed(0)
    encoder = build_method(model_config_from(cfg)).encoder
    out = mon.measure(encoder, epoch=1, device=torch.device("cpu"))
    assert out["knn_top1"] is not None and out["g2"] is not None
    assert workers and set(workers) == {3}
    assert feature_calls == [(torch.device("cpu"), True, "bf16")] * 2 and knn_devices == [torch.device("cpu")]


def test_spread_subset_keeps_every_class_of_a_sorted_split():
    ds = InMemoryImageDataset(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), torch.arange(100) // 10, list("abcdefghij"))
    sub = spread(ds, 10)
    assert isinstance(sub, InMemoryImageDataset) and sorted(sub.targets.tolist()) == list(range(10))
    assert spread(ds, None) is ds and spread(ds, 100) is ds
