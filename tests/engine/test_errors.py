"""Bad input gets a clear error and loses nothing."""
import json
import pickle

import pytest
import torch

from hallucinator.presets import load_config
from hallucinator import checkpoint
from hallucinator.training.trainer import NonFiniteLossError, Trainer

from engine_support import TINY, needs_fmnist, pretrain


def test_missing_dataset_is_one_clear_message(tmp_path):
    res = pretrain("--config", "mocov2-cifar10", f"data_root={tmp_path / 'nope'}", "epochs=1", f"output_dir={tmp_path}")
    assert res.returncode == 3
    assert "cifar-10-batches-py" in res.stderr and "https://www.cs.toronto.edu/~kriz/cifar.html" in res.stderr
    assert "Traceback" not in res.stderr


@needs_fmnist
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    """Device: CPU. The weights turn NaN in epoch 2 of a run whose epoch-1 checkpoint is in the SAME directory:
    the run stops, says why, and that checkpoint still holds the epoch-1 weights."""
    cfg = load_config("smoke/simclr", [*TINY, "epochs=2", "knn_every=0", f"output_dir={tmp_path}", "run_name=r"])
    trainer = Trainer(cfg, show_progress=False)
    steps, calls, at_epoch_end = trainer.data.steps_per_epoch, [0], {}
    forward = trainer.ddp.forward

    def poisoned(x1, x2):  # the first step of epoch 2: remember the saved weights, then break them
        calls[0] += 1
        if calls[0] == steps + 1:
            at_epoch_end.update({k: v.clone() for k, v in trainer.model.state_dict().items()})
            with torch.no_grad():
                trainer.model.encoder.backbone.conv1.weight.fill_(float("nan"))
        return forward(x1, x2)

    trainer.ddp.forward = poisoned
    with pytest.raises(NonFiniteLossError, match="loss is nan"):
        trainer.fit()
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["status"] == "failed" and "nan" in info["error"]
    kept = checkpoint.load(tmp_path / "r" / "checkpoint.pt")
    assert kept["epoch"] == 1 and at_epoch_end, "the poisoned step never ran"
    assert all(torch.equal(kept["model"][k], v) for k, v in at_epoch_end.items())
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_corrupt_and_untrusted_checkpoints_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="cannot load"):
        checkpoint.load(junk)

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))
    evil = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, evil)
    with pytest.raises(checkpoint.CheckpointError, match="weights-only"):
        checkpoint.load(evil)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(checkpoint.CheckpointError, match="not a hallucinator-checkpoint"):
        checkpoint.load(foreign)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "a": torch.ones(2)}, path)
    with pytest.raises((pickle.PicklingError, AttributeError)):  # local objects cannot be pickled
        checkpoint.save_atomic({"format": checkpoint.FORMAT, "bad": lambda: 0}, path)  # unpicklable
    assert torch.equal(checkpoint.load(path)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


@needs_fmnist
def test_checkpoint_from_another_config_is_refused(tmp_path):
    common = [*TINY, "epochs=1", "knn_every=0", f"output_dir={tmp_path}", "run_name=r"]
    assert pretrain("--config", "smoke/mocov2", *common).returncode == 0
    res = pretrain("--config", "smoke/mocov2", *common, "lr=0.1")
    assert res.returncode == 2 and res.stderr.startswith("config error:") and "different configuration" in res.stderr
    assert "lr" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@needs_fmnist
def test_a_bf16_channels_last_run_finishes_on_cpu_and_records_its_settings(tmp_path):
    """End to end through the trainer (that the step really computes in bf16 on channels_last tensors
    is checked inside the step by test_device_settings.py::test_forced_bf16_and_channels_last_reach_the_step_on_cpu)."""
    cfg = load_config("smoke/mocov2-hal", [*TINY, "epochs=1", "knn_every=0", "precision=bf16", "channels_last=true",
                                           "fuse_pairs=true", f"output_dir={tmp_path}", "run_name=r"])
    trainer = Trainer(cfg, show_progress=False)
    metrics = trainer.fit()
    assert metrics["epoch"] == 1 and torch.isfinite(torch.tensor(metrics["loss"]))
    assert trainer.model.encoder.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["status"] == "finished"
    assert info["settings"]["precision"]["used"] == "bf16" and info["settings"]["channels_last"]["used"] is True
