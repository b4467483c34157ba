"""Fixtures of the detection-transfer tests: transfer/ on sys.path, detectron2, smoke data."""
import sys
from pathlib import Path

import pytest

sys.path[:0] = [p for p in (str(Path(__file__).resolve().parent),
                            str(Path(__file__).resolve().parents[2] / "transfer"))
                if p not in sys.path]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: CPU fine-tuning runs (minutes); deselect with -m 'not slow'")


@pytest.fixture(scope="session")
def detectron2():
    try:
        import detectron2  # noqa: F401
        import detectron2.engine  # noqa: F401
    except ImportError as err:
        pytest.skip(f"detectron2 is not importable ({err}); install it with "
                    f"`python transfer/install_detectron2.py` (make setup does)")
    return detectron2


@pytest.fixture(scope="session")
def smoke_root():
    """The smoke datasets that ``make setup`` built (``python transfer/smoke_data.py``)."""
    import smoke_data
    root = smoke_data.default_root()
    if not (root / f".complete-v{smoke_data.VERSION}").exists():
        pytest.skip(f"the detection smoke data is not in {root}: run `make setup` (or `make test-data`) once")
    return root


@pytest.fixture(scope="session")
def torchvision_r50(tmp_path_factory):
    """A torchvision ResNet-50 with non-trivial BN statistics, its state dict file and .pkl."""
    import torch
    import torchvision
    import convert

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    folder = tmp_path_factory.mktemp("r50")
    pth, pkl = folder / "resnet50.pth", folder / "resnet50.pkl"
    torch.save(model.state_dict(), pth)
    convert.convert(pth, pkl)
    return model.eval(), pth, pkl
