"""evaluate on hostile inputs: unreadable test images skipped (never scored twice) and full disks."""
import errno
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from hallucinator import rundir
from hallucinator.augmentations import Normalize
from hallucinator.data import DATASETS, build_dataset, in200_classes
from hallucinator.evaluate import evaluate
from hallucinator.evaluation.features import extract_features
from hallucinator.evaluation.linear_probe import linear_probe
from hallucinator.presets import load_config
from hallucinator.training.run_lock import RunDirLock, RunDirLockedError


def _folder(root: Path, good_per_class: int, corrupt: dict[str, int]) -> dict[str, list[str]]:
    """An ImageNet layout (train/ and val/, two classes of flat-colour 16 px JPEGs), with
    ``corrupt[split]`` garbage files in class 0 of that split, sorted between the good ones."""
    wnids = in200_classes()[:2]
    bad: dict[str, list[str]] = {"train": [], "val": []}
    for split in ("train", "val"):
        for c, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(good_per_class):
                colour = (200, 30, 30) if c == 0 else (30, 30, 200)
                Image.new("RGB", (16, 16), tuple(v + 5 * i for v in colour)).save(folder / f"{i}_good.JPEG")
            if c == 0:
                for i in range(corrupt.get(split, 0)):
                    path = folder / f"{i}_zbad.JPEG"  # sorts after i_good: its neighbour is readable
                    path.write_bytes(b"\xff\xd8 not a jpeg" * 20)
                    bad[split].append(str(path))
    return bad


def test_skipped_test_image_is_dropped_not_replaced_by_its_neighbour(tmp_path):
    bad = _folder(tmp_path, good_per_class=3, corrupt={"val": 2})
    test = build_dataset("imagenet", tmp_path, "test", on_corrupt="skip")
    assert len(test) == 8
    backbone = torch.nn.Flatten()
    with pytest.warns(RuntimeWarning, match="skipping"):
        feats, labels = extract_features(backbone, test, "imagenet", torch.device("cpu"), size=16, batch_size=3)
    readable = [i for i in range(len(test)) if test.path(i) not in bad["val"]]
    assert labels.tolist() == [int(test.targets[i]) for i in readable]  # each readable image once, in order
    info = DATASETS["imagenet"]
    expected = Normalize(info.mean, info.std)(torch.stack([test[i][0] for i in readable])).flatten(1)
    assert torch.allclose(feats, expected)
    assert test.num_skipped == 2 and set(test.skipped_files) == set(bad["val"])


def test_evaluate_from_python_takes_the_run_lock(tmp_path):
    """A second writer is refused before it reads or writes anything, as the CLI's is."""
    _folder(tmp_path / "data", good_per_class=2, corrupt={})
    cfg = load_config("demo/mocov2", ["dataset=imagenet", "in_channels=3", f"data_root={tmp_path / 'data'}",
                                      "image_size=16", "knn_k=3", "num_workers=0", "threads=1"])
    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.EVAL).write_text('{"status": "finished", "probes": {}}')
    with RunDirLock(run):  # e.g. a pretraining still writing this directory
        with pytest.raises(RunDirLockedError, match="in use by another process"):
            evaluate(run, ["knn"], cfg, baseline="raw-pixels", show_progress=False)
    assert (run / rundir.EVAL).read_text() == '{"status": "finished", "probes": {}}'
    result = evaluate(run, ["knn"], cfg, baseline="raw-pixels", show_progress=False)  # free again: it runs
    assert result["status"] == "finished" and "knn" in result["probes"]


def test_evaluate_counts_only_scored_images_and_records_skips(tmp_path):
    _folder(tmp_path / "data", good_per_class=4, corrupt={"train": 1, "val": 2})
    cfg = load_config("demo/mocov2", ["dataset=imagenet", "in_channels=3", f"data_root={tmp_path / 'data'}",
                                      "on_corrupt=skip", "image_size=16", "knn_k=3", "num_workers=0", "threads=1"])
    with pytest.warns(RuntimeWarning, match="skipping"):
        result = evaluate(tmp_path / "run", ["knn", "fast_linear"], cfg, baseline="raw-pixels", show_progress=False)
    for probe in ("knn", "fast_linear"):
        res = result["probes"][probe]
        assert (res["n_test"], res["skipped_test"]) == (8, 2), res
        assert (res["n_train"], res["skipped_train"]) == (8, 1), res
        assert res["top1"] == 100.0  # flat colours: every scored image is right, none counted twice


@pytest.mark.filterwarnings("ignore:skipping")
def test_linear_probe_scores_each_readable_test_image_once(tmp_path):
    _folder(tmp_path / "data", good_per_class=3, corrupt={"val": 2})
    train = build_dataset("imagenet", tmp_path / "data", "train", on_corrupt="skip")
    test = build_dataset("imagenet", tmp_path / "data", "test", on_corrupt="skip")
    res = linear_probe(torch.nn.Flatten(), 3 * 16 * 16, train, test, "imagenet", torch.device("cpu"), tmp_path,
                       epochs=1, batch_size=4, num_workers=0, size=16, show_progress=False)  # test read by workers
    assert res["n_test"] == 6 and test.num_skipped == 2
    assert res["top1"] * 6 / 100 == pytest.approx(round(res["top1"] * 6 / 100))  # a whole number of 6 images


def _baseline_args(tmp_path: Path, probes: str) -> list[str]:
    """evaluate's command line for a random-init encoder with a 2-D embedding on the test folder."""
    return [str(tmp_path / "run"), "--baseline", "random-init", "--config", "demo/mocov2", "--probes", probes,
            "dataset=imagenet", "in_channels=3", f"data_root={tmp_path / 'data'}", "image_size=16", "dim=2",
            "knn_k=3", "num_workers=0", "threads=1"]


def _savez_on_full_disk(file, *args, **kw):
    """np.savez on a full disk: part of the file is written, then ENOSPC."""
    if hasattr(file, "write"):
        file.write(b"PK\x03\x04 partial")
    else:
        Path(file).write_bytes(b"PK\x03\x04 partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def _eval_json_fails_after(calls: int, real):
    """``write_json`` whose eval.json writes fail as on a full disk after ``calls`` good ones."""
    done = [0]

    def write_json(path, obj):
        if Path(path).name == "eval.json":
            if done[0] >= calls:
                raise OSError(errno.ENOSPC, "No space left on device")
            done[0] += 1
        return real(path, obj)
    return write_json


def test_full_disk_writing_features_2d_leaves_no_partial_file_and_records_the_failure(tmp_path, monkeypatch, capsys):
    from hallucinator import evaluate as ev
    _folder(tmp_path / "data", good_per_class=4, corrupt={})
    monkeypatch.setattr(ev.np, "savez", _savez_on_full_disk)
    assert ev.main(_baseline_args(tmp_path, "knn,features_2d")) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "No space left" in lines[0], lines
    assert "features_2d.npz" in lines[0]  # the file it could not write, not a temporary name
    run = tmp_path / "run"
    assert not (run / "features_2d.npz").exists()
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "eval.json", "run.json"]  # no temp file
    result = json.loads((run / "eval.json").read_text())
    assert result["status"] == "failed" and "No space left" in result["error"] and "knn" in result["probes"]


def test_full_disk_that_stays_full_puts_the_previous_eval_json_back(tmp_path, monkeypatch, capsys):
    from hallucinator import evaluate as ev
    _folder(tmp_path / "data", good_per_class=4, corrupt={})
    assert ev.main(_baseline_args(tmp_path, "knn")) == 0
    before = (tmp_path / "run" / "eval.json").read_bytes()
    capsys.readouterr()
    # fast_linear's result is written, then the disk is full: features_2d and the failure record both fail
    monkeypatch.setattr(ev, "write_json", _eval_json_fails_after(1, ev.write_json))
    monkeypatch.setattr(ev.np, "savez", _savez_on_full_disk)
    assert ev.main(_baseline_args(tmp_path, "knn,fast_linear,features_2d")) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "No space left" in lines[0], lines
    assert (tmp_path / "run" / "eval.json").read_bytes() == before  # "finished", as before this command
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock", "config.json", "eval.json", "run.json"]
