"""The paper's reported numbers (Tables 1-7), transcribed into ``paper_numbers.csv``.

Columns: ``table, method, hallucinator, dataset, key, level, metric, value, note``.
``value`` is the string printed in the paper ('-' where the paper has no number); the loader
adds ``value_num`` (float, NaN for '-'). Ablation rows (Tables 3-6) carry the varying ``key``
and its ``level`` spelled as the runs record their ``row`` label (benchmarks/suites.py).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

PAPER_CSV = Path(__file__).with_name("paper_numbers.csv")


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    df = pd.read_csv(PAPER_CSV, dtype=str, keep_default_na=False)
    df["hallucinator"] = df["hallucinator"].map({"True": True, "False": False})
    if df["hallucinator"].isna().any():
        raise ValueError("paper_numbers.csv: hallucinator must be True/False")
    df["value_num"] = pd.to_numeric(df["value"].where(df["value"] != "-"), errors="raise")
    return df


def load_paper_numbers(table: str | None = None) -> pd.DataFrame:
    """Return the transcribed numbers, optionally only those of ``table`` (e.g. ``"table1"``)."""
    df = _load()
    if table is not None:
        df = df[df["table"] == table]
    return df.reset_index(drop=True).copy()
