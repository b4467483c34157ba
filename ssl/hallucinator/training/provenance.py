"""Where a run came from: git state, software, hardware, command line, times (run.json)."""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from .. import distributed

REPO = Path(__file__).resolve().parents[3]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``, else ``platform``) and the kernels torch
    dispatches to on it (e.g. AVX512): CPU results differ between machines by these."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return f"{model}, {torch.backends.cpu.get_cpu_capability()} kernels"


def collect(device: torch.device, world_size: int, seed: int) -> dict[str, Any]:
    status = _git("status", "--porcelain", "--untracked-files=no")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU: {cpu_name()} ({torch.get_num_threads()} threads)"
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device_name": name,
        "world_size": world_size,
        "process_group": distributed.backend(),
        "seed": seed,
        "python": platform.python_version(),
        "host": platform.node(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "start_time": now(),
    }

