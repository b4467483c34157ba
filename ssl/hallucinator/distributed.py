"""The one place that talks to ``torch.distributed``.

Every function is a no-op (or the identity) in a single process, so each method runs and is
tested on a CPU without a process group. Under torchrun/SLURM, the engine calls ``init``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def backend() -> str | None:
    """The process group's backend ("nccl", "gloo"), or None without one."""
    return str(dist.get_backend()) if is_initialized() else None


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int


def launch_info() -> DistInfo:
    """This process's rank, local rank and world size from torchrun or SLURM variables (no
    process group is created); ``DistInfo(0, 0, 1)`` for a plain single process.

    torchrun sets RANK/LOCAL_RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT. Under ``srun`` without
    torchrun, SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS are used and MASTER_ADDR/MASTER_PORT must
    be exported by the job script.
    """
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistInfo(int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), int(env["WORLD_SIZE"]))
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        r, lr, ws = int(env["SLURM_PROCID"]), int(env["SLURM_LOCALID"]), int(env["SLURM_NTASKS"])
        env.setdefault("RANK", str(r))
        env.setdefault("WORLD_SIZE", str(ws))
        env.setdefault("LOCAL_RANK", str(lr))
        if "MASTER_ADDR" not in env:
            raise RuntimeError("SLURM launch without torchrun: export MASTER_ADDR and MASTER_PORT")
        return DistInfo(r, lr, ws)
    return DistInfo(0, 0, 1)


def init(device: torch.device | None = None, backend: str | None = None) -> DistInfo:
    """Initialises the process group of a torchrun/SLURM launch (see ``launch_info``); nothing in
    a plain single process. Under a launcher the group exists even with one process (gpu-check's
    torchrun step relies on it).

    The backend is ``backend`` when given, else nccl when ``device`` is a CUDA device and gloo
    otherwise (None = CPU): it follows the device the run uses, never whether CUDA merely exists.
    A CUDA ``device`` becomes this process's current device.
    """
    info = launch_info()
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # launch_info sets them under SLURM
    if launched and not is_initialized():
        cuda = device is not None and device.type == "cuda"
        backend = backend or ("nccl" if cuda else "gloo")
        if backend == "nccl" and not cuda:
            raise RuntimeError(f"the nccl backend needs a CUDA device, this process uses {device or 'the CPU'}; "
                               "use dist_backend=gloo or device=cuda")
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def shutdown() -> None:
    if is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return torch.cat(out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        n = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * n:(dist.get_rank() + 1) * n]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenates ``x`` (equal-sized) from every rank along dim 0, gradients flowing back.

    With each rank's loss taken over its local rows against the gathered columns and DDP's
    gradient averaging, the gradients equal those of one process on the whole batch.
    """
    return _GatherWithGrad.apply(x) if world_size() > 1 else x


@torch.no_grad()
def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenates ``x`` from every rank along dim 0, without gradient (e.g. MoCo's keys)."""
    if world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out)


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ranks (for logging); a detached copy, ``x`` itself is untouched."""
    x = x.detach().clone()
    if world_size() > 1:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x /= world_size()
    return x


def agree_max(value: int, device: torch.device | str = "cpu") -> int:
    """The largest ``value`` over ranks, the same on every rank (one tiny all_reduce); ``value``
    itself in one process. Every rank must call it at the same point (e.g. a stop decision)."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def broadcast_(x: torch.Tensor, src: int = 0) -> torch.Tensor:
    """In-place broadcast from ``src`` (no-op in one process)."""
    if world_size() > 1:
        dist.broadcast(x, src)
    return x


@torch.no_grad()
def sync_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers on every rank (BN statistics, before they are read); no-op in one process."""
    if world_size() > 1:
        for b in module.buffers():
            dist.broadcast(b, 0)


@torch.no_grad()
def batch_shuffle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's shuffle-BN: returns this rank's shard of the globally shuffled batch and the
    permutation needed to undo it. In one process there is nothing to shuffle across."""
    if world_size() == 1:
        return x, torch.arange(x.shape[0], device=x.device)
    x_all = gather(x)
    perm = broadcast_(torch.randperm(x_all.shape[0], device=x.device))
    n = x.shape[0]
    mine = perm.view(world_size(), n)[rank()]
    return x_all[mine], torch.argsort(perm)


@torch.no_grad()
def batch_unshuffle(x: torch.Tensor, unshuffle: torch.Tensor) -> torch.Tensor:
    """Inverse of ``batch_shuffle`` for the outputs computed on the shuffled shard."""
    if world_size() == 1:
        return x
    n = x.shape[0]
    return gather(x)[unshuffle.view(world_size(), n)[rank()]]
