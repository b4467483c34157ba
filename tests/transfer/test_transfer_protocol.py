"""MoCo's detection protocol exactly (issue 15 items 3, 5, 7): the merged configs, what counts
as a protocol run, and the pinned detectron2 wheel."""
import hashlib
import sys

import pytest

import d2_results
import install_detectron2 as inst
from transfer_helpers import TRANSFER

# The values of MoCo's released detection configs (facebookresearch/moco, detection/configs/:
# Base-RCNN-C4-BN.yaml, pascal_voc_R_50_C4_24k[_moco].yaml, coco_R_50_C4_2x[_moco].yaml), written
# out as facts. Every other key keeps detectron2's default in MoCo's setup.
MOCO_BASE = {
    "MODEL.META_ARCHITECTURE": "GeneralizedRCNN",
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000, "MODEL.RPN.POST_NMS_TOPK_TEST": 1000,
    "MODEL.ROI_HEADS.NAME": "Res5ROIHeadsExtraNorm", "MODEL.BACKBONE.FREEZE_AT": 0,
    "MODEL.RESNETS.NORM": "naiveSyncBN", "TEST.PRECISE_BN.ENABLED": True,
    "SOLVER.IMS_PER_BATCH": 16, "SOLVER.BASE_LR": 0.02,
    # the *_moco.yaml files: torchvision-style RGB input
    "MODEL.PIXEL_MEAN": [123.675, 116.280, 103.530], "MODEL.PIXEL_STD": [58.395, 57.120, 57.375],
    "MODEL.RESNETS.STRIDE_IN_1X1": False, "INPUT.FORMAT": "RGB",
}
MOCO = {
    "voc_r50c4.yaml": dict(MOCO_BASE, **{
        "MODEL.MASK_ON": False, "MODEL.ROI_HEADS.NUM_CLASSES": 20,
        "INPUT.MIN_SIZE_TRAIN": (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800),
        "INPUT.MIN_SIZE_TEST": 800,
        "DATASETS.TRAIN": ("voc_2007_trainval", "voc_2012_trainval"),
        "DATASETS.TEST": ("voc_2007_test",),
        "SOLVER.STEPS": (18000, 22000), "SOLVER.MAX_ITER": 24000, "SOLVER.WARMUP_ITERS": 100}),
    "coco_r50c4.yaml": dict(MOCO_BASE, **{
        "MODEL.MASK_ON": True,
        "INPUT.MIN_SIZE_TRAIN": (640, 672, 704, 736, 768, 800), "INPUT.MIN_SIZE_TEST": 800,
        "DATASETS.TRAIN": ("coco_2017_train",), "DATASETS.TEST": ("coco_2017_val",),
        "SOLVER.STEPS": (120000, 160000), "SOLVER.MAX_ITER": 180000}),
}
# keys where ours differs on purpose: MoCo's point at a model-zoo download / "See Instructions"
# (ours: "" = pass --weights), and OUTPUT_DIR ("" = runs/transfer/<config>).
OURS_ONLY = {"MODEL.WEIGHTS": "", "OUTPUT_DIR": ""}


def flatten(node, prefix=""):
    from detectron2.config import CfgNode

    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        out.update(flatten(value, name + ".") if isinstance(value, CfgNode) else {name: value})
    return out


def set_key(cfg, key, value):
    *parents, leaf = key.split(".")
    for p in parents:
        cfg = cfg[p]
    assert leaf in cfg, f"{key} is not a detectron2 key"
    cfg[leaf] = value


@pytest.mark.parametrize("name", sorted(MOCO))
def test_merged_config_equals_moco_field_by_field(detectron2, name):
    from detectron2.config import get_cfg

    expected = get_cfg()  # detectron2's defaults, then MoCo's values
    for key, value in {**MOCO[name], **OURS_ONLY}.items():
        set_key(expected, key, value)
    ours = get_cfg()
    ours.merge_from_file(str(TRANSFER / "configs" / name))
    want, got = flatten(expected), flatten(ours)
    assert set(want) == set(got)

    def same(a, b):
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == pytest.approx(b) if isinstance(a, float) else a == b
    diff = {k: (got[k], want[k]) for k in want if not same(got[k], want[k])}
    assert not diff, diff
    if name == "coco_r50c4.yaml":
        assert got["SOLVER.WARMUP_ITERS"] == 1000  # detectron2's default, kept by MoCo's COCO


def test_protocol_deviations_and_profiles():
    file_cfg = {"SOLVER.MAX_ITER": 24000, "SOLVER.BASE_LR": 0.02, "SEED": -1, "OUTPUT_DIR": ""}
    final = dict(file_cfg, **{"SOLVER.MAX_ITER": 100, "SEED": 3, "OUTPUT_DIR": "x"})
    opts = ["SOLVER.MAX_ITER", "100", "SEED", "3", "OUTPUT_DIR", "x", "SOLVER.BASE_LR", "0.02"]
    devs = d2_results.protocol_deviations(opts, file_cfg.get, final.get)
    assert devs == ["SOLVER.MAX_ITER"]  # same LR is no deviation; seeds and paths are free
    assert d2_results.profile_of("voc_r50c4.yaml") == "paper"
    assert d2_results.profile_of("voc_r50c4.yaml", devs) == "custom"
    assert d2_results.profile_of("coco_r50c4.yaml", eval_only=True) == "custom"
    assert d2_results.profile_of("smoke_voc_r50c4.yaml", devs, True) == "smoke"


def test_train_net_deviations_from_the_command_line(detectron2):
    from types import SimpleNamespace

    import train_net

    args = SimpleNamespace(config_file=str(TRANSFER / "configs" / "voc_r50c4.yaml"),
                           opts=["SOLVER.IMS_PER_BATCH", "8", "INPUT.MIN_SIZE_TEST", "800",
                                 "SOLVER.STEPS", "(100,)", "DATALOADER.NUM_WORKERS", "0"])
    assert train_net.deviations_of(args) == ["SOLVER.IMS_PER_BATCH", "SOLVER.STEPS"]


def test_results_record_protocol_status_and_provenance():
    payload = d2_results.results_payload(
        task="voc", config_file="voc_r50c4.yaml",
        source={"method": "mocov2", "hallucinator": True, "checkpoint": "/r/ck.pt",
                "pretrain": {"epochs": 200}},
        results={"bbox": {"AP": 1.0, "AP50": 2.0, "AP75": 3.0}}, deviations=["SOLVER.MAX_ITER"],
        eval_only=False, weights_sha256="ab")
    assert payload["profile"] == "custom" and payload["protocol_deviations"] == ["SOLVER.MAX_ITER"]
    assert payload["pretrain_epochs"] == 200 and payload["pretrain_checkpoint"] == "/r/ck.pt"
    assert d2_results.sha256_of("") is None


def test_sha256_pin_is_checked(tmp_path):
    good = tmp_path / "good.whl"
    good.write_bytes(b"abc")
    inst.check_sha256(good, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    with pytest.raises(RuntimeError, match="is not the pinned"):
        inst.check_sha256(good)
    # install() refuses a tampered cached download before rewriting or installing anything
    (tmp_path / inst.SAL_WHEEL).write_bytes(b"tampered")
    with pytest.raises(RuntimeError, match="refusing to install"):
        inst.install(sys.executable, tmp_path, force=True)
    assert not (tmp_path / inst.PURE_WHEEL).exists()


def test_cached_download_matches_the_pin():
    cached = inst.REPO_ROOT / ".cache" / "detectron2" / inst.SAL_WHEEL
    if not cached.exists():
        pytest.skip(f"{cached} not downloaded (install_detectron2.py downloads it)")
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == inst.SAL_WHEEL_SHA256


def test_table7_presets():
    from hallucinator.presets import PRESETS

    for method in ("mocov1", "mocov2"):
        for hal in (False, True):
            name = f"{method}{'-hal' if hal else ''}-imagenet-200ep"
            cfg, hundred = PRESETS[name], PRESETS[name.replace("-200ep", "")]
            assert (cfg.method, cfg.hallucinator, cfg.epochs) == (method, hal, 200)
            assert (cfg.dataset, cfg.backbone, cfg.width) == ("imagenet", "resnet50", 64)
            assert cfg.crop_p == (0.5 if hal else None) and cfg.output_dir != hundred.output_dir
            assert (cfg.lr, cfg.batch_size, cfg.augment) == (hundred.lr, hundred.batch_size,
                                                            hundred.augment)
    smoke = PRESETS["smoke/mocov2-hal-r50"]  # converts: full-width ImageNet-stem ResNet-50
    assert (smoke.backbone, smoke.width, smoke.in_channels, smoke.dataset) == (
        "resnet50", 64, 1, "fashion_mnist")
