"""reports.build on hostile inputs and a full disk: a bad run goes to the Problems page, and no
output is ever left truncated."""
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reports_fixtures import make_run

from reports.build import build_suite

ROOT = Path(__file__).resolve().parents[2]


def _fig5_runs(root: Path) -> Path:
    for seed in range(2):
        make_run(root, f"b{seed}", suite="fig5", seed=seed, features=True)
        make_run(root, f"h{seed}", suite="fig5", seed=seed, features=True, hallucinator=True)
    return root


def _file_size_limit(limit: int):
    """A child whose writes past ``limit`` bytes in one file fail (EFBIG), as a disk that fills up."""
    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_writes


def test_full_disk_leaves_the_previous_pdf_and_png_whole(tmp_path):
    runs, out = _fig5_runs(tmp_path / "runs"), tmp_path / "out"
    build_suite(runs, out, "fig5")
    before = {p.name: p.read_bytes() for p in (out / "fig5").iterdir()}
    big = sorted(name for name, data in before.items() if len(data) > 30_000)
    assert "fig5.pdf" in big and "figure_01.png" in big  # the files the full disk truncated
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "ssl"), str(ROOT)])}
    res = subprocess.run([sys.executable, "-m", "reports.build", "--suite", "fig5", "--runs", str(runs),
                          "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         preexec_fn=_file_size_limit(30_000))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: cannot write"), res.stderr
    after = {p.name: p.read_bytes() for p in (out / "fig5").iterdir()}
    assert set(after) == set(before)  # no temporary file left behind
    for name in big:
        assert after[name] == before[name], f"{name} was overwritten by a partial file"
