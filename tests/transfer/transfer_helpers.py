"""Helpers shared by the detection-transfer tests (a uniquely named module, not conftest)."""
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TRANSFER = REPO_ROOT / "transfer"


def run_script(args, env=None, timeout=600):
    """Runs a transfer/ script in a fresh interpreter from the repo root; returns the process."""
    full_env = dict(os.environ, PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
