"""Table 7's rehearsal data: detectron2's own builtin readers load the VOC and COCO layouts written."""


def test_builtin_voc_and_coco_readers_load_the_written_layout(detectron2, tmp_path):
    from detectron2.data.datasets import load_coco_json, load_voc_instances
    from detectron2.data.datasets.pascal_voc import CLASS_NAMES
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

    from rehearse_table7 import IMAGES, write_detection_data

    root = write_detection_data(tmp_path)
    for year, split in ((2007, "trainval"), (2012, "trainval"), (2007, "test")):
        records = load_voc_instances(str(root / f"VOC{year}"), split, CLASS_NAMES)
        assert len(records) == IMAGES[f"voc_{year}_{split}"]
        for r in records:
            assert r["annotations"] and all(0 <= a["category_id"] < 20 for a in r["annotations"])
            assert all(0 <= a["bbox"][0] < a["bbox"][2] <= r["width"] for a in r["annotations"])
    things = {c["id"] for c in COCO_CATEGORIES if c["isthing"]}
    for split in ("train2017", "val2017"):
        records = load_coco_json(str(root / "coco" / "annotations" / f"instances_{split}.json"),
                                 str(root / "coco" / split))
        assert len(records) == IMAGES[f"coco_{split}"]
        for r in records:
            assert (root / "coco" / split / r["file_name"].rsplit("/", 1)[-1]).is_file()
            assert r["annotations"] and all(a["segmentation"] and a["category_id"] in things for a in r["annotations"])
