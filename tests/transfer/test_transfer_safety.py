"""Weights that cannot hurt or fool the transfer scripts (issue 15 items 1-2, issue 13 item 5).

The payloads here are harmless: unpickled, they would create a marker file. Each test checks the
marker never appears and that the refusal comes before any dataset is read (the datasets point
to an empty folder, whose error would otherwise be printed).
"""
import os
import pickle

import numpy as np
import pytest
import torch
import torchvision

import convert
import d2_results
import safe_weights
from test_transfer_convert import hallucinator_checkpoint
from transfer_helpers import TRANSFER, run_script


class MarkerPayload:
    """Unpickling this calls os.system (posix.system), which would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "payload-ran"
    yield path
    assert not path.exists(), "the pickle's payload ran"


def write_evil_pkl(path, marker_path, converted=None):
    """A converted-looking .pkl whose __source__ carries the payload."""
    data = dict(converted or {"model": {}, "__author__": "x", "matching_heuristics": True})
    data["__source__"] = MarkerPayload(marker_path)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def train_net(tmp_path, *args):
    env = {"DETECTRON2_DATASETS": str(tmp_path / "no-datasets")}
    return run_script([TRANSFER / "train_net.py", "--config", "voc_r50c4.yaml", *map(str, args)],
                      env, timeout=300)


def refused_before_datasets(proc, *messages):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "datasets not found" not in proc.stderr  # checked before any dataset
    for message in messages:
        assert message in proc.stderr, proc.stderr[-2000:]


def test_safe_reader_refuses_a_code_carrying_pkl(torchvision_r50, tmp_path, marker):
    with open(torchvision_r50[2], "rb") as f:
        good = pickle.load(f)  # our own file, written by the fixture
    evil = write_evil_pkl(tmp_path / "evil.pkl", marker, good)
    with pytest.raises(safe_weights.UnsafeWeightsError, match="refused for safety.*posix.system"):
        safe_weights.read_pkl(evil)
    with pytest.raises(safe_weights.UnsafeWeightsError):
        safe_weights.load_weights(evil)
    # the provenance reader behind results.json refuses it too (and runs nothing)
    assert "unreadable provenance" in d2_results.weights_source(str(evil))["origin"]
    assert safe_weights.read_pkl(torchvision_r50[2])["__source__"]["input"] == "torchvision"


def test_train_net_refuses_a_code_carrying_pkl_before_datasets(detectron2, torchvision_r50,
                                                                 tmp_path, marker):
    with open(torchvision_r50[2], "rb") as f:
        good = pickle.load(f)
    evil = write_evil_pkl(tmp_path / "evil.pkl", marker, good)
    proc = train_net(tmp_path, "--weights", evil)
    refused_before_datasets(proc, "refused for safety", "posix.system")
    assert proc.stderr.count("error:") == 1
    # an override of MODEL.WEIGHTS is checked the same way, and --runs reads nothing unsafe
    proc = train_net(tmp_path, "--runs", tmp_path / "runs", "MODEL.WEIGHTS", evil)
    refused_before_datasets(proc, "refused for safety")


def test_convert_refuses_a_code_carrying_checkpoint_for_safety(tmp_path, marker, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"model": MarkerPayload(marker)}, evil)
    assert convert.main([str(evil), str(tmp_path / "out.pkl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "refused for safety" in err and "posix.system" in err
    assert "weights_only=False" not in err  # never suggests the unsafe route
    assert not (tmp_path / "out.pkl").exists()


def test_detectron2_gets_the_checked_state_not_pickle_load(detectron2, torchvision_r50, tmp_path,
                                                           marker):
    import d2_heads  # noqa: F401
    from detectron2.modeling import build_model
    from test_transfer_detectron2 import build_cfg
    from train_net import SafeCheckpointer

    model = build_model(build_cfg("voc_r50c4.yaml"))
    checkpoint = SafeCheckpointer(model).load(str(torchvision_r50[2]))
    assert checkpoint["__source__"]["input"] == "torchvision"
    tv = torchvision_r50[0].state_dict()
    assert torch.equal(model.state_dict()["backbone.res3.2.conv1.weight"],
                       tv["layer2.2.conv1.weight"])
    with open(torchvision_r50[2], "rb") as f:
        evil = write_evil_pkl(tmp_path / "evil.pkl", marker, pickle.load(f))
    with pytest.raises(safe_weights.UnsafeWeightsError):
        SafeCheckpointer(model).load(str(evil))


def _pkl_without(tmp_path, source_pkl, drop=(), reshape=(), extra=()):
    with open(source_pkl, "rb") as f:
        data = pickle.load(f)
    model = {k: v for k, v in data["model"].items() if k not in drop}
    model.update({k: np.zeros((3,), np.float32) for k in (*reshape, *extra)})
    data["model"] = model
    path = tmp_path / f"bad{len(list(tmp_path.glob('bad*')))}.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def test_backbone_problems_are_listed(torchvision_r50, tmp_path):
    bad = _pkl_without(tmp_path, torchvision_r50[2], drop=["res4.5.conv2.weight"],
                       reshape=["stem.conv1.weight"], extra=["res4.6.conv1.weight"])
    with pytest.raises(safe_weights.WeightsError) as err:
        safe_weights.load_weights(bad)
    text = str(err.value)
    assert "3 problem(s)" in text and "missing res4.5.conv2.weight" in text
    assert "wrong shape stem.conv1.weight: (3,) != (64, 3, 7, 7)" in text
    assert "unexpected res4.6.conv1.weight" in text
    tv_pth = tmp_path / "tv.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tv_pth)
    with pytest.raises(safe_weights.WeightsError, match="no 'model' state dict.*convert.py"):
        safe_weights.load_weights(tv_pth)
    with pytest.raises(safe_weights.WeightsError, match="expected converted weights"):
        safe_weights.load_weights(tv_pth.rename(tmp_path / "tv.pt"))


def test_train_net_refuses_unusable_weights_and_implicit_random_init(detectron2, torchvision_r50,
                                                                     tmp_path):
    tv_pth = tmp_path / "tv.pth"  # an unconverted torchvision file
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tv_pth)
    refused_before_datasets(train_net(tmp_path, "--weights", tv_pth), "no 'model' state dict")
    r18ish = _pkl_without(tmp_path, torchvision_r50[2],
                          drop=[k for k in safe_weights.backbone_shapes() if ".conv3." in k])
    refused_before_datasets(train_net(tmp_path, "--weights", r18ish),
                            "missing res2.0.conv3.weight", "missing res5.2.conv3.weight")
    refused_before_datasets(train_net(tmp_path), "no weights", "--random-init")
    refused_before_datasets(train_net(tmp_path, "--random-init", "--weights", torchvision_r50[2]),
                            "exclude each other")
    # explicit random init gets past the weights check (to the missing datasets)
    proc = train_net(tmp_path, "--random-init", "--method", "mocov2", "--hallucinator")
    assert proc.returncode == 2 and "datasets not found" in proc.stderr
    assert "weights: method random-init, hallucinator False" in proc.stdout


def test_random_init_is_labelled_random_init_whatever_the_flags_say():
    src = d2_results.weights_source("", method="mocov2", hallucinator=True)
    assert (src["method"], src["hallucinator"]) == ("random-init", False)


def test_convert_refuses_non_finite_weights_and_overwriting_its_input(torchvision_r50, tmp_path,
                                                                      capsys):
    model, pth, _ = torchvision_r50
    state = dict(model.state_dict())
    state["layer3.1.bn2.running_var"] = state["layer3.1.bn2.running_var"].clone()
    state["layer3.1.bn2.running_var"][0] = float("nan")
    nan = tmp_path / "nan.pth"
    torch.save(hallucinator_checkpoint(state), nan)
    assert convert.main([str(nan), str(tmp_path / "out.pkl")]) == 2
    err = capsys.readouterr().err
    assert "non-finite weights" in err and "layer3.1.bn2.running_var" in err
    before = pth.read_bytes()
    assert convert.main([str(pth), str(pth)]) == 2
    assert "is the input checkpoint" in capsys.readouterr().err
    assert pth.read_bytes() == before
    assert not list(tmp_path.glob("*.pkl"))


def test_grey_first_conv_is_replicated_over_rgb(torchvision_r50, tmp_path):
    """Known answer: the converted RGB conv1 on a grey image repeated 3x equals the grey conv1."""
    model, _, _ = torchvision_r50
    state = dict(model.state_dict())
    grey_w = torch.randn(64, 1, 7, 7)
    state["conv1.weight"] = grey_w
    ckpt = tmp_path / "grey.pth"
    torch.save(hallucinator_checkpoint(state), ckpt)
    result = convert.convert(ckpt, tmp_path / "grey.pkl")
    assert result["source"]["grey_conv1"] is True
    rgb_w = torch.from_numpy(safe_weights.read_pkl(tmp_path / "grey.pkl")["model"]
                             ["stem.conv1.weight"])
    assert rgb_w.shape == (64, 3, 7, 7)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), rgb_w),
                               torch.nn.functional.conv2d(x, grey_w), rtol=1e-5, atol=1e-5)
    rgb = torch.rand(1, 3, 16, 16)  # an RGB image sees the grey kernel on its channel mean
    torch.testing.assert_close(torch.nn.functional.conv2d(rgb, rgb_w),
                               torch.nn.functional.conv2d(rgb.mean(1, keepdim=True), grey_w),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["resnet50", "resnet18"])
def test_torchvision_export_loads_strictly(arch, tmp_path):
    torch.manual_seed(1)
    net = getattr(torchvision.models, arch)(weights=None)
    ckpt = tmp_path / "ckpt.pth"
    torch.save(hallucinator_checkpoint(net.state_dict(), backbone=arch), ckpt)
    out = tmp_path / "tv.pth"
    assert convert.main([str(ckpt), str(out), "--to", "torchvision"]) == 0
    fresh = getattr(torchvision.models, arch)(weights=None)
    result = fresh.load_state_dict(torch.load(out, weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in net.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(fresh.state_dict()[key], value), key
    assert not fresh.fc.weight.any() and not fresh.fc.bias.any()
    if arch == "resnet18":  # detectron2's R50-C4 still takes ResNet-50 only
        with pytest.raises(convert.ConversionError, match="needs 'resnet50'"):
            convert.convert(ckpt, tmp_path / "r18.pkl")


def test_torchvision_export_refuses_a_cifar_stem(tmp_path):
    r18 = torchvision.models.resnet18(weights=None).state_dict()
    ckpt = tmp_path / "cifar.pth"
    torch.save(hallucinator_checkpoint(r18, "resnet18_cifar"), ckpt)
    with pytest.raises(convert.ConversionError, match="'resnet18_cifar'"):
        convert.convert(ckpt, tmp_path / "tv.pth", to="torchvision")
