"""The converted weights inside detectron2's R50-C4, the configs, and CPU smoke fine-tunes."""
import json
import math

import pytest
import torch

from transfer_helpers import TRANSFER, run_script

CONFIGS = TRANSFER / "configs"


def build_cfg(name, *opts):
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIGS / name))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    return cfg


def backbone_keys(state):
    """Model keys that come from the pretrained ResNet-50 (res5 lives in the C4 ROI head)."""
    return {k for k in state if k.startswith("backbone.")
            or (k.startswith("roi_heads.res5.") and not k.startswith("roi_heads.res5.norm."))}


def test_converted_resnet50_loads_fully_and_matches_torchvision(detectron2, torchvision_r50):
    import d2_heads  # noqa: F401
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    tv, _, pkl = torchvision_r50
    model = build_model(build_cfg("voc_r50c4.yaml")).eval()
    checkpointer = DetectionCheckpointer(model)
    incompatible = checkpointer._load_model(checkpointer._load_file(str(pkl)))
    wanted = backbone_keys(model.state_dict())
    assert len(wanted) == 318
    assert not set(incompatible.missing_keys) & wanted, "backbone keys not loaded"
    assert not incompatible.unexpected_keys, incompatible.unexpected_keys
    # every backbone tensor holds exactly the converted value
    d2_state, tv_state = model.state_dict(), tv.state_dict()
    import convert
    by_name = {convert.rename(k): v for k, v in tv_state.items() if not k.startswith("fc.")}
    for key in wanted:
        short = key[len("backbone."):] if key.startswith("backbone.") else key[len("roi_heads."):]
        assert torch.equal(d2_state[key], by_name[short]), key

    x = torch.randn(2, 3, 96, 128)
    tv_res4 = torch.nn.Sequential(tv.conv1, tv.bn1, tv.relu, tv.maxpool, tv.layer1, tv.layer2,
                                  tv.layer3)
    with torch.no_grad():
        res4 = model.backbone(x)["res4"]
        expected = tv_res4(x)
        torch.testing.assert_close(res4, expected, rtol=1e-4, atol=1e-4)
        res5 = model.roi_heads.res5[:3](res4)
        torch.testing.assert_close(res5, tv.layer4(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, mask, classes", [("voc_r50c4.yaml", False, 20),
                                                  ("coco_r50c4.yaml", True, 80)])
def test_protocol_configs_build_the_extra_norm_c4_model(detectron2, name, mask, classes):
    import d2_heads
    from detectron2.modeling import build_model

    cfg = build_cfg(name)
    assert cfg.MODEL.BACKBONE.FREEZE_AT == 0 and not cfg.MODEL.RESNETS.STRIDE_IN_1X1
    assert cfg.INPUT.FORMAT == "RGB" and cfg.SOLVER.IMS_PER_BATCH == 16
    assert cfg.MODEL.WEIGHTS == "" and cfg.TEST.PRECISE_BN.ENABLED
    model = build_model(cfg)
    assert isinstance(model.roi_heads, d2_heads.Res5ROIHeadsExtraNorm)
    assert isinstance(model.roi_heads.res5.norm, torch.nn.BatchNorm2d)
    assert model.roi_heads.box_predictor.cls_score.out_features == classes + 1
    assert hasattr(model.roi_heads, "mask_head") == mask


def test_missing_datasets_are_named(detectron2, tmp_path, monkeypatch):
    import d2_data
    from detectron2.data.datasets import register_pascal_voc

    register_pascal_voc("test_missing_voc", str(tmp_path / "nowhere"), "test", 2007)
    with pytest.raises(FileNotFoundError) as err:
        d2_data.check_datasets(["test_missing_voc", "no_such_dataset"])
    message = str(err.value)
    assert "test_missing_voc: missing " + str(tmp_path / "nowhere") in message
    assert "no_such_dataset: not a registered dataset" in message
    assert "DETECTRON2_DATASETS" in message and "smoke_data.py" in message


def test_install_script_is_a_fast_no_op_when_detectron2_imports(detectron2):
    proc = run_script([TRANSFER / "install_detectron2.py"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already importable" in proc.stdout


def test_summary_of_trials(tmp_path):
    import d2_results

    dirs = []
    for i, ap in enumerate([50.0, 52.0, 54.0]):
        dirs.append(tmp_path / f"trial_{i}")
        d2_results.write_json(dirs[-1] / "results.json", {
            "task": "coco", "weights": "w.pkl", "config": "c", "profile": "full", "trial": i,
            "bbox": {"AP": ap, "AP50": 80.0, "AP75": None},
            "segm": {"AP": ap - 5, "AP50": 70.0, "AP75": 40.0}})
    summary = d2_results.summarize_trials(dirs, tmp_path / "summary.json")
    assert summary["trials"] == 3
    assert summary["bbox"]["AP"]["mean"] == pytest.approx(52.0)
    assert summary["bbox"]["AP"]["std"] == pytest.approx(2.0)
    assert summary["bbox"]["AP75"] == {"mean": None, "std": None, "values": [None] * 3}
    assert summary["segm"]["AP"]["mean"] == pytest.approx(47.0)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def check_results(path, task, iterations, tasks=("bbox",)):
    results = json.loads(path.read_text())
    assert results["task"] == task and results["iterations"] == iterations
    assert results["device"] == "cpu x1" and results["profile"] == "smoke"
    for t in tasks:
        for metric in ("AP", "AP50", "AP75"):
            value = results[t][metric]
            assert isinstance(value, float) and 0.0 <= value <= 100.0 and math.isfinite(value)
    return results


@pytest.mark.slow
def test_smoke_voc_finetune_evaluate_resume_and_trials(detectron2, smoke_root, torchvision_r50,
                                                       tmp_path):
    env = {"TRANSFER_SMOKE_DATA": str(smoke_root)}
    out = tmp_path / "voc"
    base = [TRANSFER / "train_net.py", "--config", "smoke_voc_r50c4.yaml"]
    proc = run_script([*base, "--weights", torchvision_r50[2], "SOLVER.MAX_ITER", "2",
                       "OUTPUT_DIR", out], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first = check_results(out / "results.json", "voc", 2)
    assert first["seconds_per_iter"] > 0 and first["datasets"]["test"] == "smoke_voc_test"

    # resumable: continue the same run to 3 iterations from its last checkpoint
    proc = run_script([*base, "--weights", torchvision_r50[2], "--resume", "SOLVER.MAX_ITER", "3",
                       "OUTPUT_DIR", out], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Starting training from iteration 2" in proc.stdout + proc.stderr
    check_results(out / "results.json", "voc", 3)

    # repeated trials (evaluation only of the fine-tuned model) -> trial_i/ and summary.json
    proc = run_script([*base, "--eval-only", "--trials", "2", "--weights",
                       out / "model_final.pth", "OUTPUT_DIR", tmp_path / "trials"], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "trials" / "summary.json").read_text())
    assert summary["trials"] == 2 and summary["task"] == "voc"
    assert summary["bbox"]["AP"]["std"] == pytest.approx(0.0, abs=1e-6)  # same model twice
    for i in range(2):
        check_results(tmp_path / "trials" / f"trial_{i}" / "results.json", "voc", 0)
        log = (tmp_path / "trials" / f"trial_{i}" / "log.txt").read_text()
        assert log.count("Total inference time") == 1  # each trial logs to its own file only


@pytest.mark.slow
def test_smoke_coco_mask_rcnn_runs_and_reports_box_and_mask_ap(detectron2, smoke_root,
                                                               torchvision_r50, tmp_path):
    out = tmp_path / "coco"
    proc = run_script([TRANSFER / "train_net.py", "--config", "smoke_coco_r50c4.yaml",
                       "--weights", torchvision_r50[2], "SOLVER.MAX_ITER", "2", "OUTPUT_DIR", out],
                      {"TRANSFER_SMOKE_DATA": str(smoke_root)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_results(out / "results.json", "coco", 2, tasks=("bbox", "segm"))


def test_train_net_names_missing_datasets_and_refuses_bad_arguments(detectron2, tmp_path):
    proc = run_script([TRANSFER / "train_net.py", "--config", "voc_r50c4.yaml", "--random-init"],
                      {"DETECTRON2_DATASETS": str(tmp_path / "datasets")}, timeout=300)
    assert proc.returncode == 2
    assert f"voc_2007_test: missing {tmp_path / 'datasets' / 'VOC2007'}" in proc.stderr
    assert "$DETECTRON2_DATASETS" in proc.stderr
    proc = run_script([TRANSFER / "train_net.py", "--config", "nope.yaml"], timeout=300)
    assert proc.returncode == 2 and "voc_r50c4.yaml" in proc.stderr


def test_train_net_prints_no_third_party_deprecation_noise(detectron2):
    """detectron2's import-time torch.jit.script warning is silenced (run_script would hide it)."""
    import os
    import subprocess
    import sys

    from transfer_helpers import REPO_ROOT, TRANSFER
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([sys.executable, str(TRANSFER / "train_net.py"), "--help"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "usage:" in proc.stdout
    assert "Warning" not in proc.stderr, proc.stderr
