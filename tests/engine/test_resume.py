"""Kill a run and re-run the same command: the result equals the uninterrupted run bit for bit.

Every test here runs on the CPU (conftest's pin, also in the pretrain subprocesses), fp32, with
deterministic algorithms in this process (marker ``bit_exact``)."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from hallucinator import checkpoint

from engine_support import ROOT, TINY, assert_same_weights, needs_fmnist, pretrain

# Device: CPU (tests/conftest.py pins it), fp32, deterministic algorithms (the bit_exact marker);
# bit-equality holds on one machine, not across machines.
pytestmark = pytest.mark.bit_exact
ARGS = ["--config", "smoke/mocov2-hal", *TINY, "epochs=3", "knn_every=0", "diag_every=5"]


def _final(run_dir):
    return checkpoint.load(run_dir / "checkpoint.pt")


def _interrupted_run(out, sig, wait_for_epoch, args):
    cmd = [sys.executable, "-m", "hallucinator.pretrain", *args, f"output_dir={out}", "run_name=r"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = out / "r" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= wait_for_epoch:
            break
        time.sleep(0.05)
    time.sleep(0.4)  # into the next epoch
    assert proc.poll() is None, "run ended before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(60)
    return proc


@needs_fmnist
@pytest.mark.parametrize("sig,augment_on", [(signal.SIGKILL, "cpu"), (signal.SIGTERM, "cpu"), (signal.SIGTERM, "device")])
def test_killed_run_resumes_bit_for_bit(tmp_path, sig, augment_on):
    """Per-sample CPU augmentation and the batched on-device path (the demo's) both resume exactly."""
    args = [*ARGS, f"augment_on={augment_on}"]
    ref = pretrain(*args, f"output_dir={tmp_path / 'ref'}", "run_name=r")
    assert ref.returncode == 0, ref.stderr
    proc = _interrupted_run(tmp_path / "cut", sig, wait_for_epoch=1, args=args)
    state = _final(tmp_path / "cut" / "r")
    if sig == signal.SIGTERM:  # SIGTERM saves a mid-epoch checkpoint and exits 128+15
        assert proc.returncode == 128 + signal.SIGTERM
        assert state["step"] > 0 or state["epoch"] > 1
        assert json.loads((tmp_path / "cut" / "r" / "run.json").read_text())["status"] == "interrupted"
    res = pretrain(*args, f"output_dir={tmp_path / 'cut'}", "run_name=r")
    assert res.returncode == 0, res.stderr
    assert "resumed" in res.stdout
    assert_same_weights(_final(tmp_path / "ref" / "r"), _final(tmp_path / "cut" / "r"))
    lines = (tmp_path / "cut" / "r" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    ref_loss = [json.loads(line)["loss"] for line in (tmp_path / "ref" / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [json.loads(line)["loss"] for line in lines][-1] == pytest.approx(ref_loss[-1], rel=1e-9)
    steps = (tmp_path / "cut" / "r" / "steps.jsonl").read_text()    # step diagnostics: same records
    assert steps == (tmp_path / "ref" / "r" / "steps.jsonl").read_text() and steps.count("\n") == 5


@needs_fmnist
def test_on_device_batches_depend_only_on_their_position():
    """The batched (augment_on=device) path seeds its own generator from (seed, epoch, step, rank):
    a resumed epoch yields the same batches from its start step, and the global RNG is untouched."""
    from hallucinator.presets import load_config
    from hallucinator.training.pipeline import TrainData

    cfg = load_config("smoke/mocov2-hal", ["train_subset=512", "batch_size=64", "augment_on=device"])
    data = TrainData(cfg, torch.device("cpu"), rank=0, world=1)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    full = list(data.epoch(1))
    assert torch.equal(torch.get_rng_state(), before)
    resumed = list(TrainData(cfg, torch.device("cpu"), rank=0, world=1).epoch(1, start_step=3))
    assert len(full) == 8 and len(resumed) == 5
    for (a1, a2), (b1, b2) in zip(full[3:], resumed):
        assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(full[0][0], list(data.epoch(2))[0][0])  # a new epoch draws new views


class _FakeCuda:
    """torch.cuda's RNG entry points on a CPU-only machine with ``visible`` GPUs: setting the state
    of a device that is not visible raises, as CUDA does."""

    def __init__(self, monkeypatch, visible: int) -> None:
        self.visible, self.states = visible, {}
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": self.states[torch.device(device).index or 0].clone())
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [self.states[i].clone() for i in range(visible)])
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set_state)
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: [self.set_state(s, i) for i, s in enumerate(states)])

    def set_state(self, state, device="cuda"):
        index = device if isinstance(device, int) else (torch.device(device).index or 0)
        if index >= self.visible:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index} ({self.visible} visible)")
        self.states[index] = state.clone()


@needs_fmnist
def test_resume_with_fewer_visible_gpus_restores_the_device_in_use(tmp_path, monkeypatch):
    """A checkpoint whose ``rng_cuda`` holds 2 devices' states (as get_rng_state_all wrote them)
    resumes on a machine with 1 visible GPU: that GPU gets entry 0, the saving process's device.
    The trainer then saves only the state of the device in use. Without CUDA here, the trainer's
    device is set to a fake cuda:0 after construction and torch.cuda's RNG functions are replaced."""
    from hallucinator.presets import load_config
    from hallucinator.training.trainer import Trainer

    cfg = load_config("smoke/mocov2-hal", [*TINY, "epochs=1", "knn_every=0", f"output_dir={tmp_path}", "run_name=r"])
    trainer = Trainer(cfg, show_progress=False)
    try:
        cuda = _FakeCuda(monkeypatch, visible=1)
        cuda.states = {0: torch.zeros(16, dtype=torch.uint8)}
        trainer.device = torch.device("cuda", 0)
        saved = [torch.full((16,), 10 + i, dtype=torch.uint8) for i in range(2)]
        checkpoint.save_atomic({**trainer._state(), "rng_cuda": saved}, tmp_path / "ckpt.pt")
        rng_cpu = torch.get_rng_state()
        torch.manual_seed(99)
        trainer._load(tmp_path / "ckpt.pt")
        assert list(cuda.states) == [0] and torch.equal(cuda.states[0], saved[0])
        assert torch.equal(torch.get_rng_state(), rng_cpu)
        state = trainer._state()
        assert len(state["rng_cuda"]) == 1 and torch.equal(state["rng_cuda"][0], saved[0])
    finally:
        trainer._lock.release()
