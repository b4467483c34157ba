"""Datasets and evaluators of the transfer protocol.

The real datasets are detectron2's builtin ones (voc_2007_trainval, voc_2012_trainval,
voc_2007_test, coco_2017_train, coco_2017_val), found under $DETECTRON2_DATASETS (default
./datasets) in detectron2's layout (VOC2007/, VOC2012/, coco/train2017, coco/annotations/...).
The smoke datasets (transfer/smoke_data.py) are registered here under names that cannot collide
with the builtin ones: smoke_voc_{train,test} and smoke_coco_{train,val}.
"""
from __future__ import annotations

import os
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances, register_pascal_voc
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator

from smoke_data import default_root

SMOKE_VOC_CLASSES = ("tree",)


def register_smoke_datasets(root: str | Path | None = None) -> Path:
    """Registers the smoke datasets found in ``root`` (default: smoke_data.default_root())."""
    root = Path(root) if root else default_root()
    voc, coco = root / "smoke_voc", root / "smoke_coco"
    for split in ("train", "test"):
        name = f"smoke_voc_{split}"
        if name not in DatasetCatalog.list():
            register_pascal_voc(name, str(voc), split, 2007, SMOKE_VOC_CLASSES)
            MetadataCatalog.get(name).evaluator_type = "pascal_voc"
    for split in ("train", "val"):
        name = f"smoke_coco_{split}"
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, str(coco / "annotations" / "instances_smoke.json"),
                                    str(coco))
    return root


def _is_voc(meta) -> bool:
    return meta.get("evaluator_type") == "pascal_voc" or (
        meta.get("evaluator_type") is None and meta.get("dirname") is not None)


def required_paths(name: str) -> list[Path]:
    """Files a registered dataset reads (from its metadata)."""
    meta = MetadataCatalog.get(name)
    if _is_voc(meta):
        return [Path(meta.dirname) / "ImageSets" / "Main" / f"{meta.split}.txt",
                Path(meta.dirname) / "Annotations", Path(meta.dirname) / "JPEGImages"]
    if meta.get("json_file"):
        return [Path(meta.json_file), Path(meta.image_root)]
    return []


def check_datasets(names) -> None:
    """Raises FileNotFoundError naming every missing dataset file and how to provide it."""
    problems = []
    for name in names:
        if name not in DatasetCatalog.list():
            problems.append(f"  {name}: not a registered dataset")
            continue
        missing = [str(p) for p in required_paths(name) if not p.exists()]
        if missing:
            problems.append(f"  {name}: missing {', '.join(missing)}")
    if problems:
        raise FileNotFoundError(
            "datasets not found:\n" + "\n".join(problems) + "\n"
            f"Builtin VOC/COCO sets are read from $DETECTRON2_DATASETS (now "
            f"{os.environ.get('DETECTRON2_DATASETS', 'unset -> ./datasets')}) in detectron2's "
            "layout: VOC2007/, VOC2012/ (Annotations, ImageSets/Main, JPEGImages) and "
            "coco/{train2017,val2017,annotations/instances_*2017.json}. Smoke sets: run "
            "`python transfer/smoke_data.py` (location: $TRANSFER_SMOKE_DATA, default "
            ".cache/transfer_smoke).")


def task_of(name: str) -> str:
    """'voc' or 'coco', from the dataset's metadata."""
    meta = MetadataCatalog.get(name)
    if _is_voc(meta):
        return "voc"
    if meta.get("evaluator_type") == "coco" or meta.get("json_file"):
        return "coco"
    raise ValueError(f"dataset {name}: no VOC/COCO evaluator "
                     f"(evaluator_type={meta.get('evaluator_type')!r})")


def build_evaluator(cfg, name: str, output_folder: str):
    """PascalVOCDetectionEvaluator (AP over IoU .5:.95, AP50, AP75; 07 metric for year 2007) or
    COCOEvaluator (bbox, and segm with MODEL.MASK_ON). One evaluator per dataset: both report
    under the key "bbox"."""
    if task_of(name) == "voc":
        return PascalVOCDetectionEvaluator(name)
    tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
    return COCOEvaluator(name, tasks=tasks, distributed=True, output_dir=output_folder)
