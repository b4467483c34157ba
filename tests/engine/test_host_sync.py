"""The per-step training path reads nothing from the device on the host (issue 22): no ``.item()``,
``bool()``/``float()``/``int()`` on tensors, ``.tolist()`` or ``torch.tensor`` from Python lists,
except on the steps that log (the finiteness check every ``nan_check_every`` steps, the step
diagnostics every ``diag_every`` steps). Counted by patching those entry points around a real
trainer epoch with on-device augmentation, run on the CPU with the crop sampler's non-CPU path
(``crops.EARLY_EXIT_DEVICES`` emptied), i.e. exactly the code a GPU runs."""
import traceback

import torch

from hallucinator import crops
from hallucinator.presets import load_config
from hallucinator.training.trainer import Trainer

from engine_support import TINY, needs_fmnist

ENTRY_POINTS = ("item", "tolist", "__bool__", "__float__", "__int__")
# Host-side by construction: the Hallucinator's lambda comes from its own CPU generator and is
# applied as a Python float (hallucinator.py, ``extrapolate``); it never touches the device.
HOST_ONLY = {("hallucinator.py", "extrapolate")}


def _record_host_reads(monkeypatch, buckets):
    def site():
        frame = traceback.extract_stack(limit=4)[-3]
        return frame.filename.rsplit("/", 1)[-1], frame.name

    for name in ENTRY_POINTS:
        real = getattr(torch.Tensor, name)

        def patched(self, *a, _real=real, _name=name, **k):
            buckets[-1].append((_name, *site()))
            return _real(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, patched)
    real_tensor = torch.tensor

    def tensor(*a, **k):
        buckets[-1].append(("torch.tensor", *site()))
        return real_tensor(*a, **k)
    monkeypatch.setattr(torch, "tensor", tensor)


def _epoch_host_reads(tmp_path, monkeypatch, sync_free: bool):
    """Host reads per step of one epoch: ``[before step 0, step 0, step 1, ..., after the last]``."""
    if sync_free:
        monkeypatch.setattr(crops, "EARLY_EXIT_DEVICES", ())
    cfg = load_config("smoke/mocov2-hal", [*TINY, "epochs=1", "knn_every=0", "augment_on=device", "diag_every=3",
                                           "max_steps_per_epoch=8", f"output_dir={tmp_path}", "run_name=r"])
    trainer = Trainer(cfg, show_progress=False)
    trainer.nan_check_every = 4  # as on a GPU (25), shortened
    buckets = [[]]
    epoch = trainer.data.epoch

    def marked(*a, **k):
        for batch in epoch(*a, **k):
            buckets.append([])
            yield batch
        buckets.append([])
    monkeypatch.setattr(trainer.data, "epoch", marked)
    _record_host_reads(monkeypatch, buckets)
    trainer.fit()
    monkeypatch.undo()
    return buckets, trainer


@needs_fmnist
def test_device_augmented_steps_read_the_device_only_on_logging_steps(tmp_path, monkeypatch):
    buckets, trainer = _epoch_host_reads(tmp_path, monkeypatch, sync_free=True)
    steps = buckets[1:-1]
    assert len(steps) == 8
    for i, reads in enumerate(steps):
        device_reads = [r for r in reads if r[1:] not in HOST_ONLY]
        logging = i % trainer.nan_check_every == 0 or i % trainer.cfg.diag_every == 0
        if logging:
            assert device_reads, f"step {i} logs but read nothing (the check is not counting)"
        else:
            assert device_reads == [], f"step {i} reads the device on the host: {device_reads}"
    assert trainer.model.hallucinator.last_lambda.device.type == "cpu"  # HOST_ONLY really is host-side


@needs_fmnist
def test_the_cpu_crop_sampler_reads_its_flag_on_the_host(tmp_path, monkeypatch):
    """The CPU keeps its early stop (and its random stream): the counter sees it, so it would see
    the same read on a GPU if the sync-free path were not taken."""
    buckets, _ = _epoch_host_reads(tmp_path, monkeypatch, sync_free=False)
    assert ("__bool__", "crops.py", "sample_crop_boxes") in buckets[2]
