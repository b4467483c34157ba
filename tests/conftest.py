"""Shared pytest setup: the repository root is importable (benchmarks/, reports/, transfer/); in CI
(``CI=true``) a skipped test fails unless it is marked ``cuda``, so a green CI run ran every test."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~30 s on a 2-core CPU")
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one; run alone with -m cuda)")


def pytest_collection_modifyitems(config, items):
    import pytest
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, turn the skip of a test not marked ``cuda`` into a failure that names the reason."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and "cuda" not in item.keywords and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"unexpected skip in CI (only tests marked cuda may skip): {reason}"
