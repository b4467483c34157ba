"""The released code's recipe options (issue 10): schedule, heads, optimiser groups, presets,
crop warm-up, shuffle-BN warning. Known answers, not "it runs"."""
import math

import pytest
import torch
from torch import nn

from hallucinator import ModelConfig, build_method
from hallucinator.config import ConfigError
from hallucinator.presets import load_config
from hallucinator.presets import PRESETS
from hallucinator.training.pipeline import SeededTwoViews
from hallucinator.training.schedule import build_schedule, epoch_cosine, warmup_cosine


def test_epoch_cosine_is_the_released_per_epoch_schedule():
    lrs = epoch_cosine(0.5, epochs=4, steps_per_epoch=3, min_ratio=0.1)
    # lr_e = 0.05 + 0.45 (1 + cos(pi e / 4)) / 2, held for the 3 steps of the epoch
    expect = [0.05 + 0.45 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert torch.allclose(lrs, torch.tensor(expect, dtype=torch.float64).repeat_interleave(3))
    assert lrs[0] == 0.5 and lrs[-1] > 0.05
    with pytest.raises(ValueError, match="no warmup"):
        build_schedule("epoch_cosine", 0.5, 4, 3, warmup_epochs=1)
    with pytest.raises(ValueError, match="lr_schedule"):
        build_schedule("step", 0.5, 4, 3)


def test_cosine_min_ratio_and_default_unchanged():
    assert warmup_cosine(1.0, 5)[-1].item() == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 5)))
    assert warmup_cosine(1.0, 3, min_ratio=0.1)[0].item() == 1.0
    assert warmup_cosine(1.0, 2, min_ratio=0.1)[1].item() == pytest.approx(0.1 + 0.9 * 0.5)


def test_simclr_released_projector_and_loss_scale():
    bn = build_method(ModelConfig(method="simclr", width=4))
    released = build_method(ModelConfig(method="simclr", width=4, proj_batch_norm=False, base_temperature=0.07))
    assert any(isinstance(m, nn.BatchNorm1d) for m in bn.encoder.projector)
    lin = [m for m in released.encoder.projector if isinstance(m, nn.Linear)]
    assert [type(m) for m in released.encoder.projector] == [nn.Linear, nn.ReLU, nn.Linear]
    assert all(m.bias is not None for m in lin)
    from hallucinator.losses import nt_xent
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    assert nt_xent(a, b, 0.5, base_temperature=0.07).item() == pytest.approx(nt_xent(a, b, 0.5).item() * 0.5 / 0.07)


def test_simclr_joint_forward_uses_batch_statistics_of_both_views():
    torch.manual_seed(0)
    joint = build_method(ModelConfig(method="simclr", width=4, in_channels=1, simclr_forward="joint"))
    per_view = build_method(ModelConfig(method="simclr", width=4, in_channels=1))
    per_view.load_state_dict(joint.state_dict())
    x1, x2 = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8) + 2.0
    z = joint.encoder(torch.cat([x1, x2]))
    out_j, out_p = joint(x1, x2), per_view(x1, x2)
    assert torch.allclose(out_j.q, z[:4], atol=1e-5) and torch.allclose(out_j.k, z[4:], atol=1e-5)
    assert not torch.allclose(out_j.q, out_p.q, atol=1e-3)   # per-view BN normalises each view alone
    with pytest.raises(ValueError, match="simclr_forward"):
        build_method(ModelConfig(method="simclr", simclr_forward="both"))


def test_simsiam_released_projector_zero_init_and_predictor_lr_group():
    m = build_method(ModelConfig(method="simsiam", width=4, proj_layers=3, zero_init_residual=True, fix_pred_lr=True))
    assert sum(isinstance(x, nn.Linear) for x in m.encoder.projector) == 3
    assert all(blk.bn2.weight.abs().sum() == 0 for stage in (m.encoder.backbone.layer1, m.encoder.backbone.layer4)
               for blk in stage)
    groups = m.optimizer_groups()
    fixed = [g for g in groups if g["fix_lr"]]
    assert len(fixed) == 1 and {id(p) for p in fixed[0]["params"]} == {id(p) for p in m.predictor.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    assert sum(isinstance(x, nn.Linear) for x in build_method(ModelConfig(method="simsiam", width=4)).encoder.projector) == 2


def test_released_simsiam_bug_leaves_h_out_of_the_optimizer_but_passes_gradient():
    torch.manual_seed(0)
    m = build_method(ModelConfig(method="simsiam", width=4, in_channels=1, hallucinator=True, train_hallucinator=False,
                                 fix_pred_lr=True))
    in_groups = {id(p) for g in m.optimizer_groups() for p in g["params"]}
    assert not any(id(p) in in_groups for p in m.hallucinator.parameters())
    m(torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)).loss.backward()
    assert all(p.grad is None for p in m.hallucinator.parameters())
    assert m.encoder.backbone.conv1.weight.grad.abs().sum() > 0


def test_simsiam_both_views_draw_two_lambdas():
    m = build_method(ModelConfig(method="simsiam", width=4, in_channels=1, hallucinator=True))
    calls = []
    sample = m.hallucinator.sample_lambda
    m.hallucinator.sample_lambda = lambda n: calls.append(n) or sample(n)
    m(torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8))
    assert calls == [4, 4]
    with pytest.raises(ValueError, match="hallucinate_views"):
        build_method(ModelConfig(method="simsiam", hallucinate_views="key"))


def test_shuffle_bn_warns_once_when_training_in_one_process():
    import warnings
    m = build_method(ModelConfig(method="mocov2", width=4, in_channels=1, queue_size=16, shuffle_bn=True))
    x = torch.randn(4, 1, 8, 8)
    with pytest.warns(UserWarning, match="no effect in one process"):
        m(x, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m(x, x)                                                  # once only
        quiet = build_method(ModelConfig(method="mocov2", width=4, in_channels=1, queue_size=16, shuffle_bn=False))
        quiet(x, x)


def test_released_presets():
    base, hal = PRESETS["released/moco-cifar10"], PRESETS["released/moco-hal-cifar10"]
    assert (base.method, base.temperature, base.batch_size, base.queue_size) == ("mocov1", 0.2, 504, 65520)
    assert (hal.method, hal.temperature, hal.batch_size, hal.queue_size) == ("mocov2", 0.2, 512, 65536)
    assert (hal.lr_schedule, hal.lr_min_ratio, hal.beta_alpha, hal.crop_p) == ("epoch_cosine", 0.1, 0.1, 0.5)
    assert PRESETS["released/simclr-hal-tiny_imagenet"].crop_p == 0.7
    s = PRESETS["released/simsiam-hal-cifar10"]
    assert (s.train_hallucinator, s.fix_pred_lr, s.proj_layers, s.zero_init_residual) == (False, True, 3, True)
    c = PRESETS["released/simclr-hal-cifar10"]
    assert (c.base_temperature, c.proj_batch_norm, c.fuse_pairs) == (0.07, False, True)
    assert PRESETS["released/simclr-cifar10"].simclr_forward == "joint"
    im = PRESETS["released/mocov2-hal-imagenet"]
    assert (im.crop_p, im.beta_alpha, im.crop_warmup_epochs, im.lr_min_ratio) == (0.6, 0.6, 20, 0.0)
    # the paper-faithful family stays the default: H trained, plain cosine, p 0.5
    p = PRESETS["simsiam-hal-cifar10"]
    assert (p.train_hallucinator, p.lr_schedule, p.crop_p, p.fix_pred_lr) == (True, "cosine", 0.5, True)
    with pytest.raises(ConfigError, match="no warmup"):
        load_config("released/moco-cifar10", ["warmup_epochs=1"])


def test_crop_warmup_epochs_pick_the_plain_views_first():
    base = [(torch.zeros(1, 2, 2), 0)] * 3
    full, plain = (lambda img, rng: ("full", "full")), (lambda img, rng: ("plain", "plain"))
    ds = SeededTwoViews(base, full, seed=0, warmup_views=plain, warmup_epochs=2)
    assert [ds[e * 3 + 1][0] for e in range(4)] == ["plain", "plain", "full", "full"]




@pytest.mark.fmnist
def test_trainer_keeps_the_predictor_at_base_lr_and_runs_the_crop_warmup(tmp_path):
    from hallucinator.training.trainer import Trainer
    cfg = load_config("smoke/simsiam-hal", ["train_subset=256", "batch_size=64", "width=4", "metrics_batch=64",
                                            "knn_every=0", "threads=1", "epochs=2", "max_steps_per_epoch=1",
                                            "fix_pred_lr=true", "lr_schedule=epoch_cosine", "warmup_epochs=0",
                                            "lr_min_ratio=0.1", "crop_warmup_epochs=1", f"output_dir={tmp_path}"])
    trainer = Trainer(cfg, show_progress=False)
    data, used = trainer.data, []  # the demo/smoke path: batched views on the device
    assert data.warmup_batch_views.query.cfg.crop_p is None and data.batch_views.query.cfg.crop_p == cfg.crop_p is not None
    for name in ("warmup_batch_views", "batch_views"):
        views = getattr(data, name)
        setattr(data, name, lambda *a, _v=views, _n=name: used.append(_n) or _v(*a))
    trainer.fit()
    assert used == ["warmup_batch_views", "batch_views"]  # epoch 1 plain crops, epoch 2 center-suppressed
    lrs = {g["fix_lr"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs[True] == cfg.lr                                   # predictor: constant
    assert lrs[False] == pytest.approx(0.05 + 0.45 * (1 + math.cos(math.pi / 2)) / 2)   # epoch 1 of 2
