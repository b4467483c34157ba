"""How the command-line tools report a failure: one line and a non-zero exit code, or the
traceback when ``--debug`` is given or ``HALLUCINATOR_DEBUG`` is set (to anything but 0)."""
from __future__ import annotations

import os
import sys

DEBUG_ENV = "HALLUCINATOR_DEBUG"
HINT = f"(--debug or {DEBUG_ENV}=1 shows the traceback)"


def debug_requested(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def report(exc: BaseException) -> int:
    """Prints ``exc`` as one ``<kind> error: ...`` line on stderr; returns the exit code.

    2: configuration, 3: data (missing, malformed or corrupt files, a run directory's JSON files
    included), 1: anything else.
    Only a missing dataset keeps its multi-line message (the layout it expects).
    """
    from .config import ConfigError
    from .data import CorruptImageError, DatasetFormatError, DatasetNotFoundError
    from .checkpoint import ConfigMismatchError
    from .rundir import RunFileError

    if isinstance(exc, (ConfigError, ConfigMismatchError)):
        kind, code = "config", 2
    elif isinstance(exc, (DatasetNotFoundError, DatasetFormatError, CorruptImageError, RunFileError)):
        kind, code = "data", 3
    else:
        kind, code = "", 1
    text = str(exc)
    if "\nOriginal Traceback" in text:  # re-raised from a DataLoader worker: keep the original message
        marker = f"{type(exc).__name__}: "
        hits = [line for line in text.splitlines() if marker in line]
        text = hits[-1].split(marker, 1)[1] if hits else text
    if not isinstance(exc, DatasetNotFoundError):
        text = " ".join(text.split())
    if kind == "" and type(exc).__module__ == "builtins" and not isinstance(exc, OSError):
        text = f"{type(exc).__name__}: {text}"
    print(f"{kind + ' ' if kind else ''}error: {text} {HINT}", file=sys.stderr, flush=True)
    return code
