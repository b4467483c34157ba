"""Device settings (training/device_settings.py): "auto" resolved per device, and the resolved
values really reach the trainer's step (training/step.py)."""
import pytest
import torch

from hallucinator.config import ConfigError
from hallucinator.presets import load_config
from hallucinator.training import device_settings
from hallucinator.training.step import build_step

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")


@pytest.fixture
def bf16_gpu(monkeypatch):
    """A CUDA device that supports bf16, as far as resolve can tell (no GPU needed)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


def _resolved(preset, device, *overrides):
    cfg = device_settings.resolve(load_config(preset, list(overrides)), device)
    return {k: getattr(cfg, k) for k in device_settings.RECORDED_KEYS}


def test_paper_presets_on_cuda_use_bf16_channels_last_cudnn_benchmark_and_device_augmentation(bf16_gpu):
    assert _resolved("mocov2-hal-cifar10", CUDA) == dict(precision="bf16", channels_last=True, cudnn_benchmark=True,
                                                         augment_on="device", compile=False)
    # ImageNet is decoded from files: no on-device augmentation
    assert _resolved("mocov2-in200", CUDA)["augment_on"] == "cpu"


def test_a_gpu_without_bf16_keeps_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert _resolved("simclr-cifar10", CUDA)["precision"] == "fp32"


def test_cpu_keeps_fp32_and_the_demo_profile_is_unchanged():
    assert _resolved("mocov2-cifar10", CPU) == dict(precision="fp32", channels_last=False, cudnn_benchmark=False,
                                                    augment_on="cpu", compile=False)
    assert _resolved("demo/mocov2-hal", CPU)["augment_on"] == "device"  # the demo preset sets it


def test_every_setting_can_be_turned_off_on_cuda(bf16_gpu):
    off = ["precision=fp32", "channels_last=false", "cudnn_benchmark=false", "augment_on=cpu"]
    assert _resolved("mocov2-cifar10", CUDA, *off) == dict(precision="fp32", channels_last=False,
                                                           cudnn_benchmark=False, augment_on="cpu", compile=False)
    with pytest.raises(ConfigError, match="channels_last='maybe' is not one of auto, true, false"):
        load_config("mocov2-cifar10", ["channels_last=maybe"])


def test_used_settings_and_banner_name_requested_and_used_values(bf16_gpu):
    req = load_config("mocov2-cifar10", ["channels_last=false"])
    used = device_settings.resolve(req, CUDA)
    settings = device_settings.used_settings(req, used)
    assert settings["precision"] == {"requested": "auto", "used": "bf16"}
    assert settings["channels_last"] == {"requested": False, "used": False}
    assert device_settings.describe(settings).startswith("precision bf16 (auto), channels_last False, ")


def test_apply_backend_sets_cudnn_benchmark(bf16_gpu):
    before = torch.backends.cudnn.benchmark
    try:
        device_settings.apply_backend(device_settings.resolve(load_config("mocov2-cifar10"), CUDA))
        assert torch.backends.cudnn.benchmark is True
        device_settings.apply_backend(device_settings.resolve(load_config("mocov2-cifar10"), CPU))
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = before


def _conv_inputs_of_one_step(*overrides):
    """Runs one trainer step; returns (input, weight, output) of the backbone's last conv (a
    1-channel first conv is contiguous in both layouts)."""
    cfg = device_settings.resolve(load_config("smoke/mocov2-hal", ["width=4", "batch_size=8", "queue_size=64",
                                                                   *overrides]), CPU)
    torch.manual_seed(0)
    step = build_step(cfg, CPU)
    conv = [m for m in step.model.encoder.backbone.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    seen = []
    conv.register_forward_hook(lambda m, inp, out: seen.append((inp[0], m.weight, out)))
    x = torch.randn(8, 1, 28, 28)
    step(x, torch.randn_like(x), lr=0.01)
    return seen[0]


def test_forced_bf16_and_channels_last_reach_the_step_on_cpu():
    x, w, out = _conv_inputs_of_one_step("precision=bf16", "channels_last=true")
    assert out.dtype == torch.bfloat16
    assert x.is_contiguous(memory_format=torch.channels_last) and w.is_contiguous(memory_format=torch.channels_last)
    x, w, out = _conv_inputs_of_one_step()  # auto on CPU: fp32, NCHW
    assert out.dtype == torch.float32 and not w.is_contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous(memory_format=torch.channels_last)


def test_a_resolved_checkpoint_matches_the_auto_config_it_came_from(tmp_path):
    from hallucinator import checkpoint
    from hallucinator.config import to_dict
    requested = load_config("smoke/mocov2")
    saved = to_dict(device_settings.resolve(requested, CPU))
    checkpoint.check_compatible(saved, to_dict(requested), tmp_path / "c.pt")  # evaluate with the preset: no error
    with pytest.raises(checkpoint.ConfigMismatchError, match="precision: checkpoint 'fp32', now 'bf16'"):
        checkpoint.check_compatible(saved, to_dict(load_config("smoke/mocov2", ["precision=bf16"])), tmp_path / "c.pt")
