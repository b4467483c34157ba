#!/usr/bin/env python
"""Rehearse Table 7 on CPU: the paper's ImageNet pre-training, conversion and both fine-tunes.

    python transfer/rehearse_table7.py --data DIR --runs RUNS [--methods mocov2,mocov2-hal]

For each method (default MoCoV2 with and without the Hallucinator; the paper's Table 7 also has
MoCoV1):
1. pretrains the preset ``<method>-imagenet-200ep`` under ``torchrun --nproc_per_node 2`` (gloo)
   on ``DIR/imagenet`` (written by ``benchmarks/rehearsal_data.py``) with only sizes overridden
   (a full-width ResNet-50, so that it converts), and evaluates it with the ``linear`` probe;
2. converts the checkpoint with ``convert.py``;
3. fine-tunes the protocol configs ``voc_r50c4.yaml`` and ``coco_r50c4.yaml`` on detectron2's
   builtin ``voc_2007_*``/``voc_2012_trainval`` and ``coco_2017_*`` sets, written here in
   detectron2's layout under ``DIR/detectron2`` (``$DETECTRON2_DATASETS``), for two iterations
   at 128 px. Overriding protocol keys records the runs under profile ``custom``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from smoke_data import voc_xml

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PRETRAIN_SIZES = ("epochs=1", "train_subset=16", "batch_size=8", "queue_size=16", "knn_train_subset=16",
                  "metrics_batch=16", "eval_train_subset=16", "eval_test_subset=16", "num_workers=1", "threads=1",
                  "image_size=64")
FINETUNE_SIZES = ("MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)", "SOLVER.WARMUP_ITERS", "1",
                  "SOLVER.IMS_PER_BATCH", "2", "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128",
                  "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128",
                  "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32", "MODEL.RPN.POST_NMS_TOPK_TEST", "50",
                  "TEST.PRECISE_BN.NUM_ITER", "1", "DATALOADER.NUM_WORKERS", "0")
IMAGES = {"voc_2007_trainval": 2, "voc_2012_trainval": 2, "voc_2007_test": 2, "coco_train2017": 2, "coco_val2017": 2}


def _scene(rng: np.random.Generator, n_objects: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A 160x120 picture of filled rectangles on a noisy ground, and their boxes (0-based, inclusive)."""
    ground = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    image = Image.fromarray(ground)
    draw = ImageDraw.Draw(image)
    boxes = []
    for _ in range(n_objects):
        x1, y1 = int(rng.integers(0, 100)), int(rng.integers(0, 70))
        x2, y2 = x1 + int(rng.integers(25, 60)), y1 + int(rng.integers(25, 50))
        draw.rectangle((x1, y1, x2, y2), fill=tuple(int(c) for c in rng.integers(0, 256, size=3)))
        boxes.append((x1, y1, x2, y2))
    return image, boxes


def write_voc(root: Path, rng: np.random.Generator, classes: list[str]) -> None:
    """VOC2007 (trainval, test) and VOC2012 (trainval): JPEGImages, Annotations, ImageSets/Main."""
    for year, split, n in ((2007, "trainval", 2), (2012, "trainval", 2), (2007, "test", 2)):
        base = root / f"VOC{year}"
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        ids = [f"{year}_{split}_{i:06d}" for i in range(n)]
        for k, image_id in enumerate(ids):
            image, boxes = _scene(rng, 2)
            image.save(base / "JPEGImages" / f"{image_id}.jpg", format="JPEG")
            names = [classes[(k + j) % len(classes)] for j in range(len(boxes))]
            vboxes = [(x1 + 1, y1 + 1, x2 + 1, y2 + 1, False) for x1, y1, x2, y2 in boxes]  # VOC is 1-based
            (base / "Annotations" / f"{image_id}.xml").write_bytes(voc_xml(f"{image_id}.jpg", 160, 120, vboxes, names))
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")


def write_coco(root: Path, rng: np.random.Generator, categories: list[dict]) -> None:
    """coco/{train2017,val2017}/*.jpg and coco/annotations/instances_{train,val}2017.json (polygons)."""
    (root / "coco" / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train2017", "val2017"):
        folder = root / "coco" / split
        folder.mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for i in range(IMAGES[f"coco_{split}"]):
            image, boxes = _scene(rng, 2)
            name = f"{i + 1:012d}.jpg"
            image.save(folder / name, format="JPEG")
            images.append({"id": i + 1, "file_name": name, "width": 160, "height": 120})
            for j, (x1, y1, x2, y2) in enumerate(boxes):
                x2, y2 = min(x2, 159), min(y2, 119)
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "iscrowd": 0,
                             "category_id": categories[(i + j) % len(categories)]["id"],
                             "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                             "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]]})
        coco = {"info": {"description": "rehearsal"}, "licenses": [], "images": images, "annotations": anns,
                "categories": categories}
        (root / "coco" / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))


def write_detection_data(root: Path, seed: int = 0) -> Path:
    """detectron2's builtin VOC and COCO layouts under ``root``, with the builtin class lists."""
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES
    from detectron2.data.datasets.pascal_voc import CLASS_NAMES

    rng = np.random.default_rng(seed)
    write_voc(root, rng, list(CLASS_NAMES))
    write_coco(root, rng, [{"id": c["id"], "name": c["name"], "supercategory": "thing"}
                           for c in COCO_CATEGORIES if c["isthing"]])
    return root


def _run(cmd: list[str], failed: list[str], env: dict | None = None) -> bool:
    """Runs ``cmd`` from the repository root; a failure is appended to ``failed`` (the caller goes on)."""
    print("[rehearse_table7] $ " + " ".join(cmd), flush=True)
    ok = subprocess.run(cmd, cwd=REPO_ROOT, env=env).returncode == 0
    if not ok:
        failed.append(" ".join(cmd[1:4]) + " ...")
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="the rehearsal's data (DIR/imagenet must exist)")
    p.add_argument("--runs", type=Path, required=True, help="runs root (table7 runs land in RUNS/table7/)")
    p.add_argument("--methods", default="mocov2,mocov2-hal", help="from mocov1, mocov1-hal, mocov2, mocov2-hal")
    args = p.parse_args(argv)
    data, runs = args.data.resolve(), args.runs.resolve()
    if not (data / "imagenet" / "train").is_dir():
        p.error(f"{data}/imagenet/train is missing: run `python -m benchmarks.rehearse` (it writes the data)")
    d2_root = write_detection_data(data / "detectron2")
    env = {**os.environ, "DETECTRON2_DATASETS": str(d2_root)}
    pretrain_out = runs / "table7-pretrain" / "paper"
    failed: list[str] = []
    for method in args.methods.split(","):
        name = f"{method}-imagenet-200ep"
        if not _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "hallucinator.pretrain",
              "--config", name, f"data_root={data / 'imagenet'}", *PRETRAIN_SIZES, f"output_dir={pretrain_out}",
              f"run_name={name}"], failed):
            continue
        run_dir = pretrain_out / name
        _run([sys.executable, "-m", "hallucinator.evaluate", str(run_dir), "--probes", "linear",
              "--linear-epochs", "2", "--linear-batch", "8"], failed)
        weights = run_dir / "r50.pkl"
        if not _run([sys.executable, str(HERE / "convert.py"), str(run_dir / "checkpoint.pt"), str(weights)], failed):
            continue
        for config in ("voc_r50c4.yaml", "coco_r50c4.yaml"):
            _run([sys.executable, str(HERE / "train_net.py"), "--config", config, "--weights", str(weights),
                  "--runs", str(runs), *FINETUNE_SIZES], failed, env=env)
    print("[rehearse_table7] " + (f"FAILED: {failed}" if failed else "every step passed"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
