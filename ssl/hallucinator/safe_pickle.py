"""Unpickling without running code: a pickle may reference only the globals its caller admits.

Used for the two pickle formats this suite must read: CIFAR batches (``data/cifar.py``) and
detectron2 ``.pkl`` weights (``transfer/safe_weights.py``). Both hold numpy arrays in plain
containers; any other global (``posix.system``, ``builtins.eval``, ...) is refused before it is
looked up, so nothing from the file runs.
"""
from __future__ import annotations

import pickle
from typing import IO, Any

# An ndarray or numpy scalar rebuilt from its dtype, under numpy 1 (numpy.core) and 2 (numpy._core).
NUMPY_ARRAYS = frozenset({
    *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
      for name in ("_reconstruct", "scalar")),
    ("numpy", "ndarray"), ("numpy", "dtype"),
})


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle references ``module.name``, which the caller did not admit; nothing of it ran."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class _Restricted(pickle.Unpickler):
    def __init__(self, file: IO[bytes], allowed: frozenset, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise RefusedGlobal(module, name)
        return super().find_class(module, name)


def load(file: IO[bytes], allowed: frozenset, encoding: str = "latin1") -> Any:
    """The object pickled in the open binary ``file``, admitting only the ``(module, name)`` globals
    in ``allowed``. Raises ``RefusedGlobal`` for any other, and pickle's own errors for a corrupt file."""
    return _Restricted(file, allowed, encoding).load()
