"""Runs a command in its own session under a time limit; on timeout the whole process group ends.

A plain ``subprocess.run(timeout=...)`` kills only the direct child: torchrun's workers, the
processes of ``benchmarks.run`` and DataLoader workers would keep running (and keep the GPU).
"""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

GRACE_S = 10  # between SIGTERM (checkpoints are saved on it) and SIGKILL


@dataclass
class Finished:
    """How a command ended: ``rc`` None when it ran past its limit (its group was killed)."""

    rc: Optional[int]
    output: str

    @property
    def timed_out(self) -> bool:
        return self.rc is None


def run_group(cmd: list[str], limit_s: float, cwd: Optional[Path] = None, env: Optional[dict] = None,
              capture: bool = True) -> Finished:
    """Runs ``cmd`` as the leader of a new session; after ``limit_s`` seconds sends SIGTERM to its
    process group, then SIGKILL after ``GRACE_S``. Returns its exit code and output (stdout then
    stderr; empty when ``capture`` is False)."""
    pipe = subprocess.PIPE if capture else None
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=pipe, stderr=pipe, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit_s)
        return Finished(proc.returncode, (out or "") + (err or ""))
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        _signal_group(proc.pid, signal.SIGKILL)  # members that outlived the leader
        return Finished(None, (out or "") + (err or ""))


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
