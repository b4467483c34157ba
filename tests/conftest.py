"""Shared pytest setup: the repository root is importable (benchmarks/, reports/, transfer/); every
test not marked ``cuda`` runs on the CPU, in this process and in every process it starts; in CI
(``CI=true``) a skipped test fails unless it is marked ``cuda``, so a green CI run ran every test."""
import os
import sys
from pathlib import Path

import pytest
import torch

from cpu_pin import cpu_only

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~30 s on a 2-core CPU")
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one; run alone with -m cuda)")
    config.addinivalue_line("markers", "fmnist: trains or evaluates on the real Fashion-MNIST (Debian's "
                            "dataset-fashion-mnist, installed by make setup); skipped without it")
    config.addinivalue_line("markers", "bit_exact: compares results bit for bit; runs on the CPU with "
                                       "torch.use_deterministic_algorithms(True) (fixture bit_exact_settings)")


def pytest_collection_modifyitems(config, items):
    """The one home of the suite's skip rules: ``cuda`` without a GPU, ``fmnist`` without the dataset."""
    from hallucinator.data.fashion_mnist import DEBIAN_DIR
    no_cuda = pytest.mark.skip(reason="needs CUDA")
    no_fmnist = pytest.mark.skip(reason=f"Fashion-MNIST not in {DEBIAN_DIR}: apt-get install dataset-fashion-mnist "
                                        "(make setup does it as root)")
    have_fmnist = (DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists()
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if "fmnist" in item.keywords and not have_fmnist:
            item.add_marker(no_fmnist)


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
@pytest.fixture(autouse=True)
def _cpu_unless_marked_cuda(request):
    """Pins every test not marked ``cuda`` to the CPU (``make test`` on a GPU machine tests the CPU
    path; the GPU path is ``-m cuda``). Module- or session-scoped fixtures that start processes
    use ``cpu_only`` themselves: they are set up before this fixture."""
    if request.node.get_closest_marker("cuda"):
        yield
        return
    with cpu_only():
        yield


@pytest.fixture(autouse=True)
def bit_exact_settings(request):
    """For tests marked ``bit_exact``: deterministic algorithms on (CPU, fp32 unless the test says
    otherwise), restored afterwards; subprocesses get CUBLAS_WORKSPACE_CONFIG for completeness."""
    if not request.node.get_closest_marker("bit_exact"):
        yield
        return
    was = torch.are_deterministic_algorithms_enabled()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was)
