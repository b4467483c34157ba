"""Device choice on a machine where CUDA is visible, tested on a CPU machine with torch.cuda mocked:
the tests' CPU pin, the run's device per local rank, and the process group's backend."""
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from hallucinator import distributed
from hallucinator.config import ConfigError
from hallucinator.presets import load_config
from hallucinator.device import pick_device


def test_tests_not_marked_cuda_are_pinned_to_the_cpu():
    """conftest's autouse pin: no CUDA device here, and none in a process this test starts."""
    assert torch.cuda.is_available() is False and torch.cuda.device_count() == 0
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    out = subprocess.run([sys.executable, "-c", "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "''"


def _gpus(monkeypatch, n):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_pick_device_refuses_a_local_rank_without_its_gpu(monkeypatch):
    """On a one-GPU machine the second process of a launch must not ask for cuda:1."""
    _gpus(monkeypatch, 1)
    cfg = load_config("smoke/simclr", [])
    assert pick_device(cfg, 0) == torch.device("cuda", 0)
    with pytest.raises(RuntimeError, match=r"local rank 1 needs cuda:1 but 1 CUDA device\(s\) are visible"):
        pick_device(cfg, 1)
    assert pick_device(load_config("smoke/simclr", ["device=cpu"]), 1) == torch.device("cpu")


@pytest.fixture
def fake_group(monkeypatch):
    """A 2-process torchrun environment whose process group is recorded, not created."""
    calls = {}
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.update(backend=backend, **kw))
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.update(set_device=d))
    return calls


def test_init_backend_follows_the_device_not_cuda_presence(monkeypatch, fake_group):
    _gpus(monkeypatch, 2)  # CUDA exists, but the run is configured for the CPU
    info = distributed.init(device=torch.device("cpu"))
    assert fake_group == {"backend": "gloo", "rank": 0, "world_size": 2} and info.world_size == 2
    fake_group.clear()
    distributed.init(device=torch.device("cuda", 0))
    assert fake_group["backend"] == "nccl" and fake_group["set_device"] == torch.device("cuda", 0)
    fake_group.clear()
    distributed.init(device=torch.device("cuda", 0), backend="gloo")  # a configured backend wins
    assert fake_group["backend"] == "gloo"
    with pytest.raises(RuntimeError, match="nccl backend needs a CUDA device"):
        distributed.init(device=torch.device("cpu"), backend="nccl")


def test_dist_backend_nccl_on_cpu_is_a_config_error():
    with pytest.raises(ConfigError, match="dist_backend=nccl needs CUDA"):
        load_config("smoke/simclr", ["device=cpu", "dist_backend=nccl"])


@pytest.mark.bit_exact
def test_bit_exact_tests_run_with_deterministic_algorithms_on_the_cpu():
    assert torch.are_deterministic_algorithms_enabled() and not torch.cuda.is_available()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_other_tests_keep_the_default_determinism():
    assert not torch.are_deterministic_algorithms_enabled()
