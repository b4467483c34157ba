"""The released/ presets, config file by config file (issue 25).

Known answers transcribed from the released configs (authors' configs/small, configs/IN200,
configs/IN1K; ContrastiveCrop's configs/small for SimCLR/SimSiam), not from presets.py.
"""
import math
import re

import pytest
import torch
from torch import nn

from hallucinator import ModelConfig, build_method
from hallucinator.config import ConfigError
from hallucinator.methods.factory import model_config_from
from hallucinator.presets import PRESETS, load_config
from hallucinator.training.schedule import build_schedule, multistep

RELEASED = sorted(n for n in PRESETS if n.startswith("released/"))

# preset -> (Linear layers of the MoCo head, T, global batch, K, schedule) as the config file writes
# them (IN-1K -hal: 256, see docs/fidelity.md; CIFAR-100/STL-10/Tiny -hal: 512 for 504).
MOCO = {
    "released/moco-cifar10": (1, 0.2, 504, 65520, "epoch_cosine"),
    "released/moco-cifar100": (2, 0.2, 504, 65520, "epoch_cosine"),
    "released/moco-stl10": (1, 0.2, 504, 65520, "epoch_cosine"),
    "released/moco-tiny_imagenet": (1, 0.2, 504, 65520, "epoch_cosine"),
    "released/moco-hal-cifar10": (2, 0.2, 512, 65536, "epoch_cosine"),
    "released/moco-hal-cifar100": (2, 0.2, 512, 65536, "epoch_cosine"),
    "released/moco-hal-stl10": (2, 0.2, 512, 65536, "epoch_cosine"),
    "released/moco-hal-tiny_imagenet": (2, 0.2, 512, 65536, "epoch_cosine"),
    "released/mocov1-in200": (1, 0.2, 259, 65786, "multistep"),
    "released/mocov1-hal-in200": (2, 0.2, 259, 65786, "multistep"),
    "released/mocov2-in200": (2, 0.2, 259, 65786, "epoch_cosine"),
    "released/mocov2-hal-in200": (2, 0.2, 259, 65786, "epoch_cosine"),
    "released/mocov1-imagenet": (1, 0.07, 256, 65536, "multistep"),
    "released/mocov1-hal-imagenet": (2, 0.2, 256, 65536, "epoch_cosine"),
    "released/mocov2-imagenet": (2, 0.2, 259, 65786, "epoch_cosine"),
    "released/mocov2-hal-imagenet": (2, 0.2, 256, 65536, "epoch_cosine"),
}


def test_every_moco_config_file_has_a_preset():
    assert sorted(n for n in RELEASED if "/moco" in n) == sorted(MOCO)


@pytest.mark.parametrize("name", sorted(MOCO))
def test_moco_head_temperature_batch_queue_and_schedule_per_preset(name):
    layers, temperature, batch, queue, schedule = MOCO[name]
    cfg = PRESETS[name]
    assert (cfg.batch_size, cfg.queue_size, cfg.lr_schedule) == (batch, queue, schedule)
    small = model_config_from(load_config(name, ["backbone=resnet18_cifar", "width=4", "queue_size=16"]))
    model = build_method(small)
    assert sum(isinstance(m, nn.Linear) for m in model.encoder.projector) == layers
    assert model.temperature == temperature


@pytest.mark.parametrize("name", RELEASED)
def test_every_released_preset_names_the_config_file_it_mirrors(name):
    cfg = PRESETS[name]
    m = re.fullmatch(r"(inferred from )?([\w.-]+/[\w.-]+):configs/(small/)?(\w+)/(\w+)_(rcrop|ccrop|center_hallucinate)\.py",
                     cfg.source)
    assert m, cfg.source
    inferred, repo, _, folder, stem, kind = m.groups()
    method, hal, dataset = re.fullmatch(r"released/(\w+?)(-hal)?-(\w+)", name).groups()
    assert folder == {"cifar10": "cifar10", "cifar100": "cifar100", "stl10": "stl10", "tiny_imagenet": "tiny200",
                      "in200": "IN200", "imagenet": "IN1K"}[dataset]
    assert stem == method and (kind != "rcrop") == bool(hal) == cfg.hallucinator
    # the authors ship MoCo only; SimCLR/SimSiam come from ContrastiveCrop, their -hal presets inferred
    assert repo.startswith("jingwu6/") == method.startswith("moco")
    assert bool(inferred) == (bool(hal) and not method.startswith("moco"))


def test_crop_warmup_and_box_per_dataset():
    assert PRESETS["released/mocov1-hal-in200"].crop_warmup_epochs == 0       # IN200/*_center_hallucinate.py
    assert PRESETS["released/mocov2-hal-in200"].crop_warmup_epochs == 0
    assert PRESETS["released/mocov1-hal-imagenet"].crop_warmup_epochs == 20   # IN1K/*_center_hallucinate.py
    assert PRESETS["released/mocov2-hal-imagenet"].crop_warmup_epochs == 20
    assert {PRESETS[n].crop_p for n in RELEASED if n.endswith(("-in200", "-imagenet")) and "-hal" in n} == {0.6}
    assert PRESETS["released/moco-hal-tiny_imagenet"].crop_p == 0.7             # init_box (0.15, 0.85)
    assert PRESETS["released/moco-hal-stl10"].crop_p == 0.5


def test_imagenet_presets_use_the_released_imagenet_augmentation():
    """imagenet_pretrain_rcrop/ccrop: jitter (.4,.4,.4,.1) p 0.8, grey 0.2, blur p 0.5, for v1 too."""
    from hallucinator.augmentations import recipe
    for n in RELEASED:
        if n.endswith(("-in200", "-imagenet")):
            a = recipe(PRESETS[n].augment)
            assert (a.crop_scale, a.jitter, a.jitter_p, a.gray_p, a.blur_p, a.blur_sigma) == (
                (0.2, 1.0), (0.4, 0.4, 0.4, 0.1), 0.8, 0.2, 0.5, (0.1, 2.0)), n


def test_sync_bn_lambda_per_rank_and_probe_drop_last():
    for n in RELEASED:
        cfg = PRESETS[n]
        assert cfg.sync_bn == (cfg.method in ("simclr", "simsiam")), n   # MoCo: shuffle-BN, no SyncBN
        assert cfg.lambda_per_rank == cfg.hallucinator and cfg.linear_drop_last, n
    assert not PRESETS["mocov2-hal-cifar10"].lambda_per_rank and not PRESETS["mocov2-hal-cifar10"].linear_drop_last


def test_multistep_is_the_released_schedule_per_epoch():
    # released _get_lr: lr * decay ** #{m : epoch > m}, epochs 1-based; here epoch e (0-based) = e + 1
    lrs = multistep(0.03, epochs=100, steps_per_epoch=2, milestones=(60, 80), decay=0.0)
    per_epoch = lrs.view(100, 2)
    assert torch.equal(per_epoch[:, 0], per_epoch[:, 1])                          # held over the epoch
    expect = [0.03 * 0.0 ** sum(e + 1 > m for m in (60, 80)) for e in range(100)]
    assert per_epoch[:, 0].tolist() == expect
    assert per_epoch[59, 0] == 0.03 and per_epoch[60, 0] == 0.0                  # lr 0 from epoch 61 on
    tenth = multistep(1.0, 100, 1, (60, 80), 0.1)
    assert [tenth[59].item(), tenth[60].item(), tenth[79].item(), tenth[80].item()] == pytest.approx(
        [1.0, 0.1, 0.1, 0.01])
    cfg = PRESETS["released/mocov1-imagenet"]
    built = build_schedule(cfg.lr_schedule, cfg.lr, cfg.epochs, 3, cfg.warmup_epochs, cfg.lr_min_ratio,
                           cfg.lr_milestones, cfg.lr_decay)
    assert built[60 * 3 - 1] == 0.03 and built[60 * 3:].abs().sum() == 0
    cos = PRESETS["released/mocov1-hal-imagenet"]                                  # IN1K file: Cosine to 0
    built = build_schedule(cos.lr_schedule, cos.lr, cos.epochs, 1, 0.0, cos.lr_min_ratio, cos.lr_milestones, cos.lr_decay)
    assert built[50].item() == pytest.approx(0.03 * (1 + math.cos(math.pi * 50 / 100)) / 2)


def test_multistep_keys_parse_and_validate():
    cfg = load_config("smoke/mocov2", ["warmup_epochs=0", "lr_schedule=multistep", "lr_milestones=1,2", "lr_decay=0.5"])
    assert (cfg.lr_milestones, cfg.lr_decay) == ((1, 2), 0.5)
    assert load_config("smoke/mocov2", ["lr_milestones=3"]).lr_milestones == (3,)
    for bad, match in (("lr_milestones=80,60", "increasing"), ("lr_milestones=0", "increasing"),
                       ("lr_decay=2", "lr_decay"), ("lr_milestones=a", "integer")):
        with pytest.raises(ConfigError, match=match):
            load_config("smoke/mocov2", ["warmup_epochs=0", "lr_schedule=multistep", bad])
    with pytest.raises(ConfigError, match="no warmup"):
        load_config("released/mocov1-imagenet", ["warmup_epochs=1"])


def test_lambda_per_rank_differs_across_ranks_and_keeps_one_generator_state(monkeypatch):
    from hallucinator import distributed
    from hallucinator.hallucinator import Hallucinator

    def draws(rank, world, per_rank=True):
        monkeypatch.setattr(distributed, "rank", lambda: rank)
        monkeypatch.setattr(distributed, "world_size", lambda: world)
        h = Hallucinator(8, per_rank=per_rank, seed=3)
        return [float(h.sample_lambda(4)) for _ in range(5)], h.get_extra_state()["generator"]

    (r0, s0), (r1, s1) = draws(0, 2), draws(1, 2)
    assert all(a != b for a, b in zip(r0, r1))                  # each rank its own lambda
    assert torch.equal(s0, s1)                                  # one generator state: a rank-0 checkpoint resumes all
    assert draws(0, 1)[0] == draws(0, 1, per_rank=False)[0]     # one process: the shared stream
    assert draws(1, 2, per_rank=False)[0] == draws(0, 2, per_rank=False)[0]
    assert all(0.0 <= x <= 0.1 for x in r0 + r1)
    assert build_method(ModelConfig(method="mocov2", width=4, in_channels=1, hallucinator=True, queue_size=16,
                                    lambda_per_rank=True)).hallucinator.per_rank


def test_linear_probe_drop_last_drops_the_incomplete_batch(tmp_path):
    from hallucinator.data import InMemoryImageDataset
    from hallucinator.evaluation.linear_probe import linear_probe

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.sizes = []
            self.flat = nn.Flatten()

        def forward(self, x):
            self.sizes.append(x.shape[0])
            return self.flat(nn.functional.adaptive_avg_pool2d(x, (2, 2)))

    train = InMemoryImageDataset(torch.zeros(10, 1, 28, 28, dtype=torch.uint8), torch.arange(10) % 2, ["a", "b"])
    test = InMemoryImageDataset(torch.zeros(3, 1, 28, 28, dtype=torch.uint8), torch.arange(3) % 2, ["a", "b"])
    seen = {}
    for drop in (False, True):
        rec = Recorder()
        linear_probe(rec, 4, train, test, "fashion_mnist", torch.device("cpu"), tmp_path / str(drop), epochs=1,
                     batch_size=4, num_workers=0, show_progress=False, drop_last=drop)
        seen[drop] = rec.sizes
    assert seen[False] == [4, 4, 2, 3] and seen[True] == [4, 4, 3]   # train batches, then the 3 test images




@pytest.mark.fmnist
def test_trainer_runs_the_multistep_keys(tmp_path):
    from hallucinator.training.trainer import Trainer
    cfg = load_config("smoke/mocov1", ["train_subset=256", "batch_size=64", "width=4", "metrics_batch=64", "knn_every=0",
                                       "threads=1", "epochs=2", "max_steps_per_epoch=1", "warmup_epochs=0",
                                       "lr_schedule=multistep", "lr_milestones=1", "lr_decay=0.25", "diag_every=0",
                                       "queue_size=64", f"output_dir={tmp_path}"])
    trainer = Trainer(cfg, show_progress=False)
    assert list(trainer.lrs) == [cfg.lr, cfg.lr * 0.25]
    trainer.fit()
    assert trainer.optimizer.param_groups[0]["lr"] == cfg.lr * 0.25
