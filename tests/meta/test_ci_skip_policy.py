"""In CI an unexpected skip fails the run; only tests marked ``cuda`` may skip (tests/conftest.py)."""
import os
from pathlib import Path

pytest_plugins = "pytester"

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
SKIPPING = '''
import pytest

def test_skips_for_missing_data():
    pytest.skip("data absent")

@pytest.mark.cuda
def test_needs_a_gpu():
    pytest.skip("no GPU")

def test_runs():
    assert True
'''


def _run(pytester, monkeypatch, ci: str | None):
    pytester.makeconftest(CONFTEST.read_text())  # it imports its helpers from tests/
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(CONFTEST.parent), os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_sample=SKIPPING)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_unexpected_skip_fails_in_ci(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, "true")
    result.assert_outcomes(passed=1, failed=1, skipped=1)  # the cuda test may skip; the other fails
    result.stdout.fnmatch_lines(["*unexpected skip in CI*data absent*"])
    assert result.ret != 0


def test_skips_stay_skips_outside_ci(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, None)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == 0
