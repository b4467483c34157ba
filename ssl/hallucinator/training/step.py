"""The trainer's step: model placement and one optimisation step, shared by the trainer and
``benchmarks.speed`` (so the benchmark times exactly what training runs).

``build_step`` builds the method and its step from a resolved config; ``place_model`` puts a built method on its device with the resolved config's layout (SyncBN,
channels_last, ``compile``) and wraps it for DDP; ``TrainStep`` holds the optimiser, the grad
scaler and the autocast dtype, and runs one step:

    out = step(x1, x2, lr, inspect=None)   # layout -> autocast forward -> inspect(out) -> backward -> SGD

Nothing here reads a device tensor on the host: with bf16/fp32 the step queues its kernels and
returns (fp16's GradScaler checks for inf on the host inside ``scaler.step``).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from .. import precision
from ..config import TrainConfig
from ..heads import Encoder
from ..methods import build_method, model_config_from
from ..methods.base import SiameseMethod, StepOutput

COMPILE_BACKEND = "inductor"  # the tests use "aot_eager" (same tracing and guards, no code generation)


def compile_encoders(model: nn.Module) -> int:
    """``torch.compile`` (in place, state_dict keys unchanged) every ``Encoder`` of ``model``: the
    backbone + projector of each branch, which hold all the convolutions. The loss, the
    Hallucinator and the MoCo queue stay eager, so their Python state (the Hallucinator's call
    counter and lambda generator, the queue pointer, one-time warnings) never enters a graph and
    cannot force a recompilation. Returns the number of encoders compiled."""
    encoders = [m for m in model.modules() if isinstance(m, Encoder)]
    for m in encoders:
        m.compile(backend=COMPILE_BACKEND)
    return len(encoders)


def place_model(model: SiameseMethod, cfg: TrainConfig, device: torch.device, world_size: int,
                local_rank: int) -> tuple[SiameseMethod, nn.Module]:
    """(model, module to call): ``model`` on ``device`` with SyncBN and channels_last as configured,
    and the module the step calls (a DDP wrapper with several processes, else the model itself).

    DDP does not broadcast buffers: the MoCo queue (the largest buffer) is identical on every rank
    by construction (each rank enqueues the same gathered keys), and BN running statistics are only
    read outside training; ``distributed.sync_buffers`` makes them rank 0's before they are used.
    """
    model = model.to(device)
    if cfg.sync_bn and world_size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if cfg.channels_last is True:
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:
        compile_encoders(model)
    module: nn.Module = model
    if world_size > 1:
        module = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None, broadcast_buffers=False)
    return model, module


class TrainStep:
    """One optimisation step of a resolved config (``device_settings.resolve``).

    Args:
        model: the method (its parameters, state_dict and diagnostics).
        module: what the step calls, ``module(x1, x2) -> StepOutput`` (the model or its DDP wrapper).
        optimizer: the optimiser; param groups with ``fix_lr`` keep ``base_lr``.
        cfg: the resolved config (precision, channels_last, compile).
        device: the training device.
    """

    def __init__(self, model: SiameseMethod, module: nn.Module, optimizer: torch.optim.Optimizer,
                 cfg: TrainConfig, device: torch.device) -> None:
        if "auto" in (cfg.precision, cfg.channels_last):
            raise ValueError("TrainStep needs a resolved config (training/device_settings.resolve)")
        self.model, self.module, self.optimizer, self.base_lr = model, module, optimizer, cfg.lr
        self.device, self.channels_last = device, cfg.channels_last
        self.precision = cfg.precision
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor, lr: float,
                 inspect: Optional[Callable[[StepOutput], None]] = None) -> StepOutput:
        """One step at learning rate ``lr``; ``inspect(out)`` runs after the forward pass and
        before the backward pass (the trainer's finiteness check and step diagnostics)."""
        if self.channels_last:
            x1, x2 = x1.contiguous(memory_format=torch.channels_last), x2.contiguous(memory_format=torch.channels_last)
        for g in self.optimizer.param_groups:
            g["lr"] = self.base_lr if g.get("fix_lr") else lr
        with precision.autocast(self.device, self.precision):
            out = self.module(x1, x2)
        if inspect is not None:
            inspect(out)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out.loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return out


# config key ``optimizer`` -> its optimiser over ``model.optimizer_groups()`` (the paper and the
# released code train every method with SGD; LARS is not needed at these batch sizes)
OPTIMIZERS = {
    "sgd": lambda groups, cfg: torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.sgd_momentum,
                                               weight_decay=cfg.weight_decay),
}


def build_optimizer(model: SiameseMethod, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The run's optimiser (config key ``optimizer``) over ``model.optimizer_groups()``."""
    return OPTIMIZERS[cfg.optimizer](model.optimizer_groups(), cfg)


def build_step(cfg: TrainConfig, device: torch.device, world_size: int = 1, local_rank: int = 0) -> TrainStep:
    """The method of a resolved ``cfg`` (built from the global torch RNG), placed, with its optimiser and step."""
    model, module = place_model(build_method(model_config_from(cfg)), cfg, device, world_size, local_rank)
    return TrainStep(model, module, build_optimizer(model, cfg), cfg, device)
