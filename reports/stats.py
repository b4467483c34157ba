"""Summary statistics: mean ± std over seeds and paired confidence intervals for gains."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps


def mean_std(df: pd.DataFrame, by: list[str], value: str = "top1",
             seed: str = "seed") -> pd.DataFrame:
    """Per group of ``by``: ``n``, ``mean``, ``std`` (ddof=1, NaN for n=1) and the ``seeds``."""
    cols = by + ["n", "mean", "std", "seeds"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = df.groupby(by, dropna=False, sort=True)
    out = g[value].agg(n="count", mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else math.nan)
    out["seeds"] = g[seed].agg(lambda s: ",".join(str(x) for x in sorted(s)))
    return out.reset_index()[cols]


@dataclass
class PairedCI:
    """Mean paired difference (treatment - control) with a two-sided t confidence interval.

    ``lo``/``hi`` are NaN when the interval is undefined (fewer than two pairs); ``note`` says why.
    """

    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    confidence: float = 0.95
    note: str = ""
    unmatched: list = field(default_factory=list)

    def format(self, digits: int = 2) -> str:
        """``"+1.23 [+0.50, +1.96]"``-style text, or the mean with the reason the CI is missing."""
        if self.n == 0:
            return "n/a (no seed-matched pairs)"
        if self.n < 2:
            return f"{self.mean:+.{digits}f} (CI undefined, n=1 pair)"
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def paired_ci(treatment, control, confidence: float = 0.95) -> PairedCI:
    """Paired t interval for mean(treatment - control) over matched pairs.

    Args:
        treatment: values with the Hallucinator (one per pair), shape (n,).
        control: the seed-matched values without it, shape (n,).
        confidence: two-sided coverage, 0.95 by default.

    CI = d̄ ± t_{1-α/2, n-1} · s_d / √n with s_d the sample std (ddof=1) of the differences.
    """
    t = np.asarray(treatment, dtype=float)
    c = np.asarray(control, dtype=float)
    if t.shape != c.shape or t.ndim != 1:
        raise ValueError(f"paired_ci needs two 1-D arrays of equal length, got {t.shape}, {c.shape}")
    d = t - c
    n = d.size
    if n == 0:
        return PairedCI(0, math.nan, math.nan, math.nan, math.nan, confidence,
                        "no seed-matched pairs")
    mean = float(d.mean())
    if n == 1:
        return PairedCI(1, mean, math.nan, math.nan, math.nan, confidence,
                        "CI undefined with n=1 pair")
    sd = float(d.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return PairedCI(n, mean, sd, mean - half, mean + half, confidence)


def paired_gains(df: pd.DataFrame, by: list[str], treat, control, pair: str = "seed",
                 value: str = "top1") -> pd.DataFrame:
    """Gain of ``treat`` rows over ``control`` rows per group ``by``, paired on ``pair``.

    Args:
        df: long results (one row per run and probe).
        by: columns defining a comparison (e.g. method, dataset, probe).
        treat, control: boolean masks (aligned with ``df``) picking the two arms.
        pair: the column matched between arms (seeds); unmatched values are excluded and listed.

    Returns one row per group: ``n_pairs, gain, sd, lo, hi, ci (PairedCI), unmatched``.
    """
    cols = by + ["n_pairs", "gain", "sd", "lo", "hi", "ci", "unmatched"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.copy()
    df[by] = df[by].astype(object).where(df[by].notna(), "")  # NaN keys would never match
    arms = [dict(iter(df[mask].groupby(by, sort=True))) for mask in (treat, control)]
    rows = []
    for key in sorted(arms[0].keys() & arms[1].keys(), key=str):
        a = arms[0][key].groupby(pair)[value].mean()
        b = arms[1][key].groupby(pair)[value].mean()
        common = sorted(set(a.index) & set(b.index))
        unmatched = [f"{'with' if s in a.index else 'without'}:{pair}={s}"
                     for s in sorted(set(a.index) ^ set(b.index))]
        ci = paired_ci(a.loc[common].to_numpy(), b.loc[common].to_numpy())
        ci.unmatched = unmatched
        key = key if isinstance(key, tuple) else (key,)
        rows.append(list(key) + [ci.n, ci.mean, ci.sd, ci.lo, ci.hi, ci, ", ".join(unmatched)])
    return pd.DataFrame(rows, columns=cols)


@dataclass
class Trend:
    """Least-squares slope of ``y`` on ``log10(x)`` with a two-sided t interval (n - 2 df).

    ``slope`` is the change of ``y`` per tenfold ``x``; ``lo``/``hi`` are NaN with fewer than three
    points or a single distinct ``x`` (``note`` says why); ``p`` tests slope = 0.
    """

    n: int
    slope: float
    lo: float
    hi: float
    p: float
    confidence: float = 0.95
    note: str = ""

    def format(self, digits: int = 2) -> str:
        if math.isnan(self.lo):
            return f"n/a ({self.note})" if math.isnan(self.slope) else f"{self.slope:+.{digits}f} ({self.note})"
        return f"{self.slope:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}] per 10x (p={self.p:.2g})"


def log_trend(x, y, confidence: float = 0.95) -> Trend:
    """OLS of y on log10(x): slope ± t_{1-α/2, n-2} · SE(slope), every (x, y) one observation."""
    x = np.log10(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"log_trend needs two 1-D arrays of equal length, got {x.shape}, {y.shape}")
    n = x.size
    if n < 3 or np.unique(x).size < 2:
        why = "fewer than 3 points" if n < 3 else "one length only"
        slope = math.nan if np.unique(x).size < 2 else float(np.polyfit(x, y, 1)[0])
        return Trend(n, slope, math.nan, math.nan, math.nan, confidence, why)
    fit = sps.linregress(x, y)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 2)) * float(fit.stderr)
    return Trend(n, float(fit.slope), float(fit.slope) - half, float(fit.slope) + half, float(fit.pvalue),
                 confidence)


def uniform_circle_g2(t: float = 2.0) -> float:
    """G_t of the uniform distribution on the unit circle: e^{-2t}·I0(2t) (0.2070 for t=2)."""
    from scipy.special import i0

    return float(np.exp(-2 * t) * i0(2 * t))
