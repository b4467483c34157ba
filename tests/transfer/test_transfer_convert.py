"""transfer/convert.py: torchvision / project / MoCo checkpoints -> detectron2 names."""
import pickle
import re

import numpy as np
import pytest
import torch
import torchvision

import convert
from hallucinator.methods import factory
from transfer_helpers import TRANSFER, run_script


def hallucinator_checkpoint(backbone_state, backbone="resnet50"):
    model = {"encoder.backbone." + k: v for k, v in backbone_state.items() if not k.startswith("fc.")}
    model.update({"encoder.projector.0.weight": torch.zeros(4, 4),
                  "encoder.projector.2.weight": torch.zeros(4, 4),
                  "momentum_encoder.backbone.conv1.weight": torch.zeros(1),
                  "predictor.0.weight": torch.zeros(1), "hallucinator.layers.0.weight": torch.zeros(1),
                  "queue": torch.zeros(8, 4), "queue_ptr": torch.zeros(1, dtype=torch.long)})
    return {"format": "hallucinator-checkpoint/1",
            "config": {"backbone": backbone, "method": "mocov2"}, "model": model}


def test_every_resnet50_key_gets_a_unique_detectron2_name():
    keys = list(convert.reference_resnet50_shapes())
    names = [convert.rename(k) for k in keys]
    assert len(set(names)) == len(keys) == 318
    assert convert.rename("conv1.weight") == "stem.conv1.weight"
    assert convert.rename("bn1.running_var") == "stem.conv1.norm.running_var"
    assert convert.rename("layer1.0.bn3.weight") == "res2.0.conv3.norm.weight"
    assert convert.rename("layer4.0.downsample.0.weight") == "res5.0.shortcut.weight"
    assert convert.rename("layer3.5.downsample.1.bias") == "res4.5.shortcut.norm.bias"
    assert all(re.fullmatch(r"(stem|res[2-5]\.\d+)\.[\w.]+", n) for n in names)
    with pytest.raises(convert.ConversionError, match="unmapped"):
        convert.rename("layer1.0.se.fc.weight")


def test_torchvision_state_dict_converts(torchvision_r50, tmp_path):
    model, pth, _ = torchvision_r50
    out = tmp_path / "r50.pkl"
    proc = run_script([TRANSFER / "convert.py", pth, out])
    assert proc.returncode == 0, proc.stderr
    assert "mapped 318/318" in proc.stdout and "dropped fc* (2 entries)" in proc.stdout
    with open(out, "rb") as f:
        data = pickle.load(f)
    assert data["matching_heuristics"] is True and len(data["model"]) == 318
    src = model.state_dict()
    np.testing.assert_array_equal(data["model"]["res4.5.conv2.norm.running_mean"],
                                  src["layer3.5.bn2.running_mean"].numpy())
    np.testing.assert_array_equal(data["model"]["stem.conv1.weight"], src["conv1.weight"].numpy())


def test_project_checkpoint_converts_and_reports_dropped(torchvision_r50, tmp_path, capsys):
    model, _, _ = torchvision_r50
    ckpt = tmp_path / "ckpt.pth"
    torch.save(hallucinator_checkpoint(model.state_dict()), ckpt)
    result = convert.convert(ckpt, tmp_path / "out.pkl")
    printed = capsys.readouterr().out
    assert len(result["mapped"]) == 318
    for group in ("encoder.projector", "momentum_encoder", "predictor", "hallucinator",
                  "queue", "queue_ptr"):
        assert f"dropped {group}*" in printed
    with open(tmp_path / "out.pkl", "rb") as f:
        weights = pickle.load(f)["model"]
    np.testing.assert_array_equal(weights["res5.2.conv3.weight"],
                                  model.state_dict()["layer4.2.conv3.weight"].numpy())


def test_moco_format_converts(torchvision_r50, tmp_path):
    model, _, _ = torchvision_r50
    state = {"module.encoder_q." + k: v for k, v in model.state_dict().items()}
    state.update({"module.encoder_k.conv1.weight": torch.zeros(1), "module.queue": torch.zeros(2)})
    ckpt = tmp_path / "moco.pth.tar"
    torch.save({"state_dict": state, "epoch": 200, "arch": "resnet50"}, ckpt)
    result = convert.convert(ckpt, tmp_path / "moco.pkl")
    assert len(result["mapped"]) == 318 and "module.encoder_k.conv1.weight" in result["dropped"]


class Opaque:
    pass


def _bad_checkpoints(tmp_path, r50_state):
    r18 = torchvision.models.resnet18(weights=None).state_dict()
    r50_missing = {k: v for k, v in r50_state.items() if k != "layer2.3.bn1.weight"}
    r50_wrong = dict(r50_state, **{"conv1.weight": torch.zeros(64, 3, 3, 3)})
    cases = {
        "resnet18_plain": (r18, "not a ResNet-50 backbone (layer3 has 2 blocks"),
        "resnet18_cifar_project": (hallucinator_checkpoint(r18, "resnet18_cifar"),
                                   "backbone is 'resnet18_cifar'"),
        "resnet18_weights_labelled_resnet50": (hallucinator_checkpoint(r18),
                                               "not a ResNet-50 backbone"),
        "missing_key": (r50_missing, "1 missing keys ['layer2.3.bn1.weight']"),
        "wrong_shape": (r50_wrong, "wrong shapes: ['conv1.weight"),
        "unknown_format": ({"format": "something/9", "model": {}}, "unknown checkpoint format"),
        "arbitrary_object": ({"model": Opaque()}, "pickles the Python object"),
    }
    paths = {}
    for name, (obj, message) in cases.items():
        paths[name] = (tmp_path / f"{name}.pth", message)
        torch.save(obj, paths[name][0])
    good = (tmp_path / "resnet18_plain.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(good[: len(good) // 3])
    paths["truncated"] = (tmp_path / "truncated.pth", "corrupt or not a torch checkpoint")
    (tmp_path / "garbage.pth").write_bytes(b"\x00not a checkpoint" * 64)
    paths["garbage"] = (tmp_path / "garbage.pth", "corrupt or not a torch checkpoint")
    paths["absent"] = (tmp_path / "absent.pth", "no such file")
    return paths


def test_bad_checkpoints_are_refused_with_clear_errors(torchvision_r50, tmp_path, capsys):
    for name, (path, message) in _bad_checkpoints(tmp_path, torchvision_r50[0].state_dict()).items():
        assert convert.main([str(path), str(tmp_path / "out.pkl")]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (name, err)
        assert not (tmp_path / "out.pkl").exists()


@pytest.mark.parametrize("method", ["mocov2", "simsiam"])
def test_checkpoint_of_the_library_converts(method, tmp_path, capsys):
    """A checkpoint as the library's trainer writes it (format, config, model, optimizer...)."""
    cfg = factory.ModelConfig(method=method, backbone="resnet50", hallucinator=True, queue_size=256)
    model = factory.build_method(cfg)
    ckpt = tmp_path / "checkpoint.pth"
    torch.save({"format": "hallucinator-checkpoint/1",
                "config": {"method": method, "backbone": "resnet50"},
                "model": model.state_dict(), "optimizer": {}, "epoch": 1}, ckpt)
    result = convert.convert(ckpt, tmp_path / "out.pkl")
    assert len(result["mapped"]) == 318
    printed = capsys.readouterr().out
    assert "dropped hallucinator*" in printed
    assert ("dropped momentum_encoder*" in printed) == (method == "mocov2")
    with open(tmp_path / "out.pkl", "rb") as f:
        weights = pickle.load(f)["model"]
    online = model.state_dict()["encoder.backbone.layer2.1.conv2.weight"].numpy()
    np.testing.assert_array_equal(weights["res3.1.conv2.weight"], online)


def test_output_that_is_an_existing_directory_is_one_line_exit_2(torchvision_r50, tmp_path, capsys):
    out_dir = tmp_path / "existing"
    out_dir.mkdir()
    assert convert.main([str(torchvision_r50[1]), str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a directory" in err and len(err.strip().splitlines()) == 1
    assert list(out_dir.iterdir()) == []


def test_full_disk_while_writing_is_one_line_exit_1_and_no_partial_file(torchvision_r50, tmp_path, capsys,
                                                                         monkeypatch):
    import errno

    def no_space(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(convert.pickle, "dump", no_space)
    assert convert.main([str(torchvision_r50[1]), str(tmp_path / "out.pkl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "No space left" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file
