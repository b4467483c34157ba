"""Failures leave an honest record: checked config values, one writer per run directory,
"failed"/"finished" in run.json, one-line CLI errors, no leftovers, trusted checkpoints only."""
import json
import signal
import subprocess
import sys

import pytest
import torch

from hallucinator import evaluate as evaluate_cli
from hallucinator.config import ConfigError
from hallucinator.presets import load_config
from hallucinator import checkpoint
from hallucinator.training.run_lock import RunDirLock, RunDirLockedError
from hallucinator.training.trainer import NonFiniteLossError, Trainer

from engine_support import ROOT, TINY, needs_fmnist, pretrain, write_png_folder

ONE_EPOCH = [*TINY, "epochs=1", "knn_every=0"]


@pytest.mark.parametrize("override,message", [
    ("train_subset=-5", "train_subset must be >= 1"), ("lr=nan", "lr must be a finite number"),
    ("weight_decay=inf", "weight_decay must be a finite number"), ("crop_p=1.5", r"crop_p must be in \(0, 1\]"),
    ("crop_p=0", r"crop_p must be in \(0, 1\]"), ("beta_alpha=0", "beta_alpha must be > 0"),
    ("in_channels=3", "in_channels=3 but fashion_mnist images have 1 channel"),
    ("dataset=bar", "dataset='bar' is not one of cifar10"), ("method=foo", "method='foo' is not one of mocov1"),
    ("augment=baz", "augment='baz' is not one of small"), ("extrapolation=asym", "extrapolation='asym'"),
    ("hallucinate_at=x", "hallucinate_at='x'"), ("backbone=vgg", "backbone='vgg' is not one of resnet18"),
    ("hallucinator_preset=big", "hallucinator_preset='big'"), ("max_image_pixels=0", "max_image_pixels must be >= 1"),
])
def test_bad_values_fail_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke/mocov2", [override])


def test_choices_still_accept_their_values():
    cfg = load_config("smoke/simsiam-hal", ["extrapolation=none", "hallucinate_at=projector", "dataset=fashion_mnist"])
    assert (cfg.extrapolation, cfg.hallucinate_at) == ("none", "projector")


@pytest.mark.parametrize("content,message", [
    (b"epochs: [1, 2\n", "not a valid YAML config"),
    (b"epochs: !!python/object/apply:os.system ['echo hi']\n", "not a valid YAML config"),
    (b"preset: mocov2-cifar11\n", "unknown preset 'mocov2-cifar11'"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "cannot read as a text file"),
    (b"- 1\n- 2\n", "expected a mapping of config keys"),
])
def test_yaml_errors_are_one_config_error_line(tmp_path, content, message):
    f = tmp_path / "run.yaml"
    f.write_bytes(content)
    res = pretrain("--config", str(f), "--print-config")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error:") and message in lines[0]


def test_run_directory_has_one_writer(tmp_path):
    with RunDirLock(tmp_path / "r"):
        with pytest.raises(RunDirLockedError, match="in use by another process"):
            RunDirLock(tmp_path / "r").acquire()
        res = pretrain("--config", "smoke/mocov2", *ONE_EPOCH, f"output_dir={tmp_path}", "run_name=r")
    assert res.returncode == 1 and "in use by another process" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [".lock"]  # the refused run wrote nothing
    # a killed holder leaves no stale lock
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path[:0] = sys.argv[1:2]; "
                               "from hallucinator.training.run_lock import RunDirLock; "
                               f"lock = RunDirLock({str(tmp_path / 'k')!r}).acquire(); print('held', flush=True); time.sleep(60)",
                               str(ROOT / "ssl")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunDirLockedError):
        RunDirLock(tmp_path / "k").acquire()
    holder.kill()
    holder.wait(10)
    RunDirLock(tmp_path / "k").acquire().release()


def _trainer(tmp_path, *extra, preset="smoke/mocov2"):
    return Trainer(load_config(preset, [*ONE_EPOCH, f"output_dir={tmp_path}", "run_name=r", *extra]),
                   show_progress=False)


@needs_fmnist
def test_any_exception_marks_the_run_failed_with_its_reason(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)

    def disk_full():
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(trainer, "_train_epoch", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trainer.fit()
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["status"] == "failed" and "No space left on device" in info["error"]
    RunDirLock(tmp_path / "r").acquire().release()  # fit released the directory


@needs_fmnist
def test_signal_after_the_last_epoch_leaves_the_run_finished_and_no_leftovers(tmp_path, monkeypatch):
    run = tmp_path / "r"
    run.mkdir()
    orphan = run / ".checkpoint.pt.x1y2z3.tmp"  # a kill inside save_atomic leaves this
    orphan.write_bytes(b"partial")
    # a kill between the epoch-1 metrics line and its checkpoint: no checkpoint, one line
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "loss": 9.9}) + "\n")
    trainer = _trainer(tmp_path)
    measure = trainer.monitor.measure

    def signalled(*args):
        trainer.on_signal(signal.SIGTERM, None)  # SIGTERM lands during the last epoch's bookkeeping
        return measure(*args)
    monkeypatch.setattr(trainer.monitor, "measure", signalled)
    trainer.fit()
    assert trainer.interrupted is None
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert not orphan.exists()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1] and lines[0]["loss"] != 9.9


@needs_fmnist
def test_non_finite_weights_are_never_saved(tmp_path):
    trainer = _trainer(tmp_path)
    with torch.no_grad():  # training-mode BN ignores its running stats: the loss stays finite
        trainer.model.encoder.backbone.bn1.running_mean.fill_(float("inf"))
    with pytest.raises(NonFiniteLossError, match=r"weights became non-finite \(encoder.backbone.bn1.running_mean"):
        trainer.fit()
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"


@needs_fmnist
def test_cli_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"\x00junk")
    args = ["--config", "smoke/mocov2", *ONE_EPOCH, f"output_dir={tmp_path}", "run_name=r"]
    res = pretrain(*args)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot load") and "--debug" in lines[0]
    res = pretrain(*args, "--debug")
    assert res.returncode == 1 and "Traceback" in res.stderr and "CheckpointError" in res.stderr  # raised as is


@needs_fmnist
def test_evaluate_refuses_a_checkpoint_that_does_not_fit(tmp_path, capsys):
    _trainer(tmp_path).fit()
    run = tmp_path / "r"
    config = json.loads((run / "config.json").read_text())
    args = [str(run), "--probes", "knn"]
    (run / "config.json").write_text(json.dumps({**config, "lr": 0.1}))
    assert evaluate_cli.main(args) == 2  # a configuration mismatch is a config error
    err = capsys.readouterr().err
    assert err.startswith("config error:") and "different configuration" in err
    (run / "config.json").write_text(json.dumps(config))
    state = checkpoint.load(run / "checkpoint.pt")
    state["model"]["encoder.backbone.conv1.weight"][0, 0, 0, 0] = float("nan")
    checkpoint.save_atomic(state, run / "checkpoint.pt")
    assert evaluate_cli.main(args) == 1
    err = capsys.readouterr().err
    assert "non-finite weights" in err and "encoder.backbone.conv1.weight" in err
    assert not (run / "eval.json").exists() or "top1" not in json.dumps(json.loads((run / "eval.json").read_text()))


@pytest.fixture()
def folder_with_corrupt_images(tmp_path):
    """ImageFolder of 2 classes x 40 small PNGs per split, one garbage file in each split."""
    write_png_folder(tmp_path / "data", per_class=40)
    for split in ("train", "val"):
        (tmp_path / "data" / split / "n01440764" / "000.png").write_bytes(b"\x89PNG garbage")
    return tmp_path / "data"


def test_on_corrupt_skip_is_honoured_by_training_monitor_and_evaluate(tmp_path, folder_with_corrupt_images):
    args = ["--config", "smoke/mocov2", "dataset=imagenet", f"data_root={folder_with_corrupt_images}",
            "in_channels=3", "image_size=16", "augment=small", "width=4", "batch_size=16", "train_subset=64",
            "epochs=1", "knn_every=1", "knn_train_subset=80", "metrics_batch=32", "queue_size=64", "threads=1",
            "augment_on=cpu", "on_corrupt=skip", "eval_test_subset=80", f"output_dir={tmp_path}", "run_name=r"]
    res = pretrain(*args)
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((tmp_path / "r" / "metrics.jsonl").read_text())
    assert metrics["skipped_images"] == 1 and metrics["knn_top1"] is not None and metrics["g2"] is not None
    res = subprocess.run([sys.executable, "-m", "hallucinator.evaluate", str(tmp_path / "r"), "--probes", "knn"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((tmp_path / "r" / "eval.json").read_text())["probes"]["knn"]["top1"] > 0


def test_a_bad_test_split_says_the_monitor_is_off(tmp_path, folder_with_corrupt_images):
    import shutil
    shutil.rmtree(folder_with_corrupt_images / "val")
    cfg = load_config("smoke/mocov2", ["dataset=imagenet", f"data_root={folder_with_corrupt_images}", "in_channels=3",
                                       "image_size=16", "augment=small", "width=4", "batch_size=16", "threads=1",
                                       "augment_on=cpu", "num_workers=0", "on_corrupt=skip", f"output_dir={tmp_path}", "run_name=r"])
    with pytest.warns(RuntimeWarning, match="kNN/G2 monitor off: .*imagenet.*Missing: val/"):
        trainer = Trainer(cfg, show_progress=False)
    trainer._lock.release()


def test_corrupt_image_in_a_worker_is_one_line_and_a_failed_run(tmp_path, folder_with_corrupt_images):
    val_bad = folder_with_corrupt_images / "val" / "n01440764" / "000.png"
    val_bad.write_bytes((val_bad.parent / "001.png").read_bytes())  # only training meets the corrupt file
    res = pretrain("--config", "smoke/mocov2", "dataset=imagenet", f"data_root={folder_with_corrupt_images}",
                   "in_channels=3", "image_size=16", "augment=small", "width=4", "batch_size=16", "train_subset=64",
                   "epochs=1", "knn_every=0", "threads=1", "augment_on=cpu", "num_workers=1", "on_corrupt=error",
                   "metrics_batch=16", f"output_dir={tmp_path}", "run_name=r")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "data error: Corrupt or unreadable image file:" in lines[-1] and "Caught" not in lines[-1]
    assert str(folder_with_corrupt_images / "train" / "n01440764" / "000.png") in lines[-1]
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["status"] == "failed" and "CorruptImageError" in info["error"]


@needs_fmnist
def test_a_failure_while_setting_up_a_resume_marks_the_run_failed(tmp_path, monkeypatch):
    from hallucinator.training import trainer as trainer_module
    _trainer(tmp_path).fit()
    run_json = tmp_path / "r" / "run.json"
    with pytest.raises(checkpoint.ConfigMismatchError):  # another config: not this run's failure
        _trainer(tmp_path, "lr=0.1")
    assert json.loads(run_json.read_text())["status"] == "finished"

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(trainer_module, "TrainData", broken)
    with pytest.raises(OSError, match="Input/output error"):
        _trainer(tmp_path)
    info = json.loads(run_json.read_text())
    assert info["status"] == "failed" and "Input/output error" in info["error"]
    RunDirLock(tmp_path / "r").acquire().release()  # the failed setup released the run directory
