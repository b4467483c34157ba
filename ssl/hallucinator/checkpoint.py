"""Atomic, code-free checkpoints: plain types and tensors, loaded with ``weights_only=True``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig, to_dict
from .rundir import NON_DEFINING_KEYS, write_atomic

FORMAT = "hallucinator-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, foreign, or from another configuration."""


class ConfigMismatchError(CheckpointError):
    """The checkpoint was written by a configuration that differs in keys defining the run."""


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    """Saves ``state`` with ``rundir.write_atomic``: a kill mid-save leaves the previous checkpoint."""
    write_atomic(path, lambda f: torch.save(state, f), binary=True)


def remove_orphans(directory: str | Path) -> list[Path]:
    """Deletes temporary files that an interrupted ``save_atomic`` left in ``directory``.

    Call only while holding the directory (see ``run_lock``): a live writer's file would go too.
    """
    orphans = sorted(Path(directory).glob(".*.pt.*.tmp"))
    for p in orphans:
        p.unlink(missing_ok=True)
    return orphans


def non_finite_entries(weights: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors in a state dict that hold NaN or inf."""
    return [k for k, v in weights.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def require_finite(weights: dict[str, Any], what: str) -> None:
    """Raises ``CheckpointError`` naming the first entries of ``weights`` that are not finite."""
    bad = non_finite_entries(weights)
    if bad:
        raise CheckpointError(f"{what} has non-finite weights in {len(bad)} tensor(s), e.g. {', '.join(bad[:3])}")


def rng_state(device: torch.device) -> dict[str, Any]:
    """The random state a resume restores: the CPU generator and the generator of ``device`` if CUDA.

    Only the device in use is saved (a one-element ``rng_cuda`` list), not every visible device.
    """
    return {"rng_cpu": torch.get_rng_state(),
            "rng_cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else []}


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Restores ``rng_state``'s generators into this process: the CPU one, and entry 0 of
    ``rng_cuda`` into ``device`` whatever number of devices is visible now.

    Entry 0 is the saving process's device (rank 0's); every process seeds and draws alike, so
    each process's device generator equals it. Checkpoints that hold every visible device's state
    (``get_rng_state_all``) restore the same entry, so resuming on fewer or more GPUs works and is
    deterministic. A CPU run ignores saved CUDA states; a CUDA run of a CPU checkpoint keeps its seed.
    """
    torch.set_rng_state(state["rng_cpu"])
    cuda = state.get("rng_cuda") or []
    if cuda and device.type == "cuda":
        torch.cuda.set_rng_state(cuda[0], device)


def load(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint of this project without executing any code from the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # corrupt, truncated, or a pickle that needs code to load
        raise CheckpointError(f"cannot load {path} as a weights-only checkpoint: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint (format={state.get('format') if isinstance(state, dict) else type(state).__name__!r})")
    return state


def check_compatible(saved: dict[str, Any], current: dict[str, Any], path: str | Path, action: str = "resume") -> None:
    """Refuses to ``action`` (resume, evaluate) a checkpoint written with a different configuration."""
    saved = {**to_dict(TrainConfig()), **saved}  # a key added after it was written reads as its default
    # "auto" (training/device_settings.py: resolved at run start) matches the value it resolved to,
    # so a checkpoint of resolved values evaluates under the preset's "auto"
    diff = {k: (saved.get(k), current.get(k)) for k in set(saved) | set(current)
            if k not in NON_DEFINING_KEYS and saved.get(k) != current.get(k) and "auto" not in (saved.get(k), current.get(k))}
    if diff:
        keys = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in sorted(diff.items()))
        why = (" (the cosine schedule spans the configured epochs, so a run cannot be extended in place:"
               " a longer run is a new run)") if "epochs" in diff else ""
        raise ConfigMismatchError(f"{path} was written by a different configuration ({keys}){why}; refusing to "
                                  f"{action}. Use another run_name/output_dir for a new run, or restore those keys.")
