"""Exceptions raised by the dataset loaders."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is absent (or incomplete) under the root it was looked for in.

    The message names the dataset, the path that was inspected, the exact on-disk
    layout the loader expects and where to obtain the data. Nothing is ever
    downloaded at run time.

    Attributes:
        dataset: Registry name of the dataset (e.g. ``"cifar10"``).
        path: The directory or file that was looked at.
        layout: The expected directory tree, as text.
        source: Where to obtain the data (URL or install command), as text.
    """

    def __init__(
        self,
        dataset: str,
        path: str | Path | None,
        layout: str,
        source: str,
        detail: str = "",
    ) -> None:
        self.dataset = dataset
        self.path = None if path is None else Path(path)
        self.layout = layout
        self.source = source
        where = "no root directory was given" if path is None else f"looked in {path}"
        lines = [f"Dataset '{dataset}' not found: {where}."]
        if detail:
            lines.append(detail)
        lines += [
            "Expected layout:",
            layout.rstrip("\n"),
            f"Obtain it from: {source}",
            "(nothing is downloaded at run time; pass the directory that holds the layout above as root: data_root=DIR on the command line)",
        ]
        super().__init__("\n".join(lines))

    def __str__(self) -> str:  # FileNotFoundError would otherwise print "[Errno None]"
        return self.args[0]


class CorruptImageError(OSError):
    """An image file could not be read or decoded.

    Attributes:
        path: The offending file.
    """

    def __init__(self, path: str | Path, reason: str = "") -> None:
        self.path = Path(path)
        msg = f"Corrupt or unreadable image file: {path}"
        if reason:
            msg += f" ({reason})"
        msg += ". Pass on_corrupt='skip' to skip such files and count them."
        super().__init__(msg)

    def __str__(self) -> str:
        return self.args[0]


class DatasetFormatError(ValueError):
    """A dataset file exists but its content is not what the format promises.

    Truncated or mismatched files, labels outside the class range, and pickles that would
    need code to load all raise this, naming the file.

    Attributes:
        path: The offending file.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {reason}")


def check_labels(labels, num_classes: int, path: str | Path, allow_unlabeled: bool = False) -> None:
    """Raises DatasetFormatError unless every label is in ``0..num_classes-1`` (or -1 if allowed)."""
    import numpy as np

    labels = np.asarray(labels)
    low = -1 if allow_unlabeled else 0
    bad = (labels < low) | (labels >= num_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DatasetFormatError(
            path, f"label {int(labels[first])} at position {first} is outside 0..{num_classes - 1} "
                  f"({int(bad.sum())} such labels)")
