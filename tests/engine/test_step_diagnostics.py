"""Step diagnostics (steps.jsonl): known answers, and they leave training untouched."""
import json

import pytest
import torch
from torch import nn

from hallucinator import checkpoint, rundir
from hallucinator.methods.base import StepOutput
from hallucinator.training.step_diagnostics import (StepDiagnostics, effective_rank, mean_pairwise_cosine,
                                                    read_steps)

from engine_support import TINY, needs_fmnist, pretrain

DOCUMENTED_KEYS = {"step", "epoch", "lr", "loss", "q_norm", "k_norm", "q_hat_norm", "sim_qk", "sim_qhat_k",
                   "q_pairwise_cos", "q_hat_pairwise_cos", "q_erank", "lambda", "extra_weight",
                   "grad_norm_pair", "grad_norm_extra", "grad_share_extra"}


def test_pairwise_cosine_known_answers():
    assert mean_pairwise_cosine(torch.ones(5, 3) * 2.0) == pytest.approx(1.0)       # collapsed
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0)                 # orthogonal
    assert mean_pairwise_cosine(torch.tensor([[1.0, 0.0], [-3.0, 0.0]])) == pytest.approx(-1.0)
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])                         # cosines .7071, 0, .7071
    assert mean_pairwise_cosine(x) == pytest.approx(2 * 0.5 ** 0.5 / 3, rel=1e-6)


def test_effective_rank_known_answers():
    assert effective_rank(torch.ones(6, 4)) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(torch.eye(4) * 3.0) == pytest.approx(4.0, rel=1e-5)


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.backbone = nn.Linear(2, 1, bias=False)
        self.record_pair_losses = False


def test_gradient_share_of_the_extra_pair_hand_computed(tmp_path):
    model = _Toy()
    diag = StepDiagnostics(model, tmp_path, every=2, write=True, grads=True)
    x = torch.tensor([[3.0, 4.0]])
    y = model.encoder.backbone(x).sum()
    pair, extra = y, 2.0 * y                       # |dL/dW| = 5 and 10
    q, k = torch.tensor([[1.0, 0.0]]).repeat(2, 1), torch.tensor([[0.0, 1.0]]).repeat(2, 1)
    out = StepOutput(loss=(pair + 0.5 * extra) / 1.5, q=q, k=k, q_hat=k.clone(), lam=torch.tensor(0.05),
                     pair_losses=(pair, extra, 0.5))
    diag.begin(4)
    assert model.record_pair_losses
    rec = diag.record(out, 4, 1, 0.1)
    assert rec["grad_norm_pair"] == pytest.approx(5.0) and rec["grad_norm_extra"] == pytest.approx(10.0)
    assert rec["grad_share_extra"] == pytest.approx(0.5 * 10 / (5 + 0.5 * 10))
    assert rec["sim_qk"] == pytest.approx(0.0) and rec["sim_qhat_k"] == pytest.approx(1.0)
    assert rec["q_pairwise_cos"] == pytest.approx(1.0) and rec["lambda"] == pytest.approx(0.05)
    assert model.encoder.backbone.weight.grad is None          # autograd.grad leaves .grad alone
    assert not model.record_pair_losses
    assert diag.record(out, 5, 1, 0.1) is None                 # not a recorded step
    assert set(read_steps(tmp_path)[0]) == DOCUMENTED_KEYS
    assert tuple(read_steps(tmp_path)[0]) == rundir.STEP_KEYS   # in the order the module declares


def test_truncate_keeps_steps_before_the_checkpoint(tmp_path):
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (0, 5, 10, 15)) + '{"step": 2')
    StepDiagnostics(_Toy(), tmp_path, every=5, write=True, grads=False).truncate(10)
    assert [r["step"] for r in read_steps(tmp_path)] == [0, 5]


@pytest.mark.bit_exact  # CPU, fp32, deterministic algorithms
@needs_fmnist
def test_diagnostics_do_not_change_training(tmp_path):
    args = ["--config", "smoke/mocov2-hal", *TINY, "epochs=1", "knn_every=0", "augment_on=cpu"]
    on = pretrain(*args, "diag_every=3", f"output_dir={tmp_path}", "run_name=diag_on")
    off = pretrain(*args, "diag_every=0", f"output_dir={tmp_path}", "run_name=diag_off")
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    a, b = checkpoint.load(tmp_path / "diag_on" / "checkpoint.pt"), checkpoint.load(tmp_path / "diag_off" / "checkpoint.pt")
    for key, value in a["model"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["rng_cpu"], b["rng_cpu"])             # no draw from the training RNG
    recs = read_steps(tmp_path / "diag_on")
    assert [r["step"] for r in recs] == [0, 3, 6] and all(set(r) == DOCUMENTED_KEYS for r in recs)
    assert all(0.0 <= r["grad_share_extra"] <= 1.0 and r["q_hat_norm"] > 0 for r in recs)
    assert not (tmp_path / "diag_off" / "steps.jsonl").exists()


def _released_model_configs():
    """One tiny model config per distinct method setting of the ``released/`` presets."""
    import dataclasses
    from hallucinator.methods.factory import model_config_from
    from hallucinator.presets import PRESETS
    tiny = dict(backbone="resnet18_cifar", width=4, in_channels=1, dim=16, proj_hidden=None, pred_hidden=8,
                queue_size=48)
    seen = {}
    for name, cfg in PRESETS.items():
        if name.startswith("released/"):
            m = dataclasses.replace(model_config_from(cfg), **tiny)
            seen.setdefault(repr(m), (name, m))
    return sorted(seen.values(), key=lambda t: t[0])


def _train_steps(model_cfg, tmp_path, every: int, steps: int = 3) -> dict:
    import warnings
    from hallucinator import build_method
    torch.manual_seed(0)
    model = build_method(model_cfg)
    opt = torch.optim.SGD(model.optimizer_groups(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    diag = StepDiagnostics(model, tmp_path, every=every, write=False, grads=True)
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        x1, x2 = torch.randn(8, 1, 8, 8, generator=g), torch.randn(8, 1, 8, 8, generator=g)
        diag.begin(step)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                     # one-process shuffle-BN warning
            out = model(x1, x2)
        rec = diag.record(out, step, 0, 0.1)
        assert (rec is not None) == (every > 0)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    return model.state_dict()


@pytest.mark.parametrize("name, model_cfg", _released_model_configs(), ids=lambda v: v if isinstance(v, str) else "")
def test_released_methods_train_the_same_with_diagnostics_on_and_off(name, model_cfg, tmp_path):
    """Recording every step must not change the weights (issue 25 item 11: the fused SimCLR loss)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                    # tiny tensors: threads only contend
    try:
        on, off = _train_steps(model_cfg, tmp_path, every=1), _train_steps(model_cfg, tmp_path, every=0)
    finally:
        torch.set_num_threads(threads)
    for key, value in off.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(on[key], value), f"{name}: {key}"
