"""One writer per run directory: an OS-level lock (``flock``) held while a process uses it.

The kernel drops the lock when its file is closed, including when the process dies (SIGKILL,
OOM), so a killed run never leaves a stale lock behind; the lock file itself stays, empty.
"""
from __future__ import annotations

import fcntl
from pathlib import Path

from .. import rundir


class RunDirLockedError(RuntimeError):
    """Another live process holds the run directory."""


class RunDirLock:
    """Exclusive, non-blocking lock on ``run_dir/.lock``; ``release`` is idempotent."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / rundir.LOCK
        self._file = None  # an open file object: closed (lock dropped) even if release is never called

    def acquire(self) -> "RunDirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise RunDirLockedError(f"{self.path.parent} is in use by another process (lock {self.path}); "
                                    "wait for it to finish or use another run_name/output_dir") from None
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
