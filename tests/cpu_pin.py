"""The tests' CPU pin (used by conftest.py's autouse fixture and by fixtures that start processes)."""
import contextlib

import pytest
import torch


@contextlib.contextmanager
def cpu_only():
    """CUDA hidden: torch.cuda reports no device here, and CUDA_VISIBLE_DEVICES="" hides every GPU
    from the processes started meanwhile (pretrain subprocesses, torchrun, mp.spawn workers)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUDA_VISIBLE_DEVICES", "")
        mp.setattr(torch.cuda, "is_available", lambda: False)
        mp.setattr(torch.cuda, "device_count", lambda: 0)
        yield
