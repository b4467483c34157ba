"""Training dynamics figure and collapse check, from each run's ``steps.jsonl``.

The step records (keys documented in ``hallucinator.training.step_diagnostics``) are plotted
per step: S(q,k) and S(q_hat,k) (Eq 5), the mean pairwise cosine and effective rank of q in the
batch, ||q_hat|| / ||q||, and the extra pair's share of the backbone gradient. One colour per
variant (or ablation level), the mean over seeds drawn bold and each seed thin.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hallucinator.training.step_diagnostics import read_steps  # noqa: E402

from .suites import DATASET_LABELS, METHOD_LABELS  # noqa: E402

PAGE = (11.69, 8.27)  # A4 landscape, inches
PANELS = [("sim_qk", "S(q, k)  (Eq 5)", False), ("sim_qhat_k", "S(q̂, k)  (Eq 5)", False),
          ("q_pairwise_cos", "mean pairwise cosine of q (1 = collapsed)", False),
          ("q_erank", "effective rank of q", False),
          ("norm_ratio", "||q̂|| / ||q||", True),
          ("grad_share_extra", "extra pair's share of backbone gradient", False)]


def steps_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """All runs' step records, tagged with method, label (level or variant), dataset, seed."""
    frames = []
    for row in runs.itertuples():
        recs = read_steps(Path(row.run_dir))
        if not recs:
            continue
        label = getattr(row, "level", "") or row.variant
        frames.append(pd.DataFrame(recs).assign(method=row.method, label=label, dataset=row.dataset,
                                                profile=row.profile, seed=row.seed, run_name=row.run_name))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df["norm_ratio"] = pd.to_numeric(df["q_hat_norm"], errors="coerce") / pd.to_numeric(df["q_norm"], errors="coerce")
    return df


def dynamics_figures(runs: pd.DataFrame, suite: str) -> list[tuple[str, plt.Figure]]:
    """One "training dynamics" page per (profile, dataset, method); [] without step records."""
    if runs.empty:
        return []
    df = steps_frame(runs)
    if df.empty:
        return []
    out = []
    for (profile, ds, method), part in df.groupby(["profile", "dataset", "method"]):
        where = f"{METHOD_LABELS.get(method, method)}, {DATASET_LABELS.get(ds, ds)}, profile {profile}"
        fig, axes = plt.subplots(2, 3, figsize=PAGE, squeeze=False)
        labels = sorted(part.label.unique(), key=lambda s: (s not in ("baseline", "none"), s != "paper", s))
        colors = dict(zip(labels, plt.cm.tab10(np.arange(len(labels)) % 10)))
        for ax, (key, title, log) in zip(axes.flat, PANELS):
            for label in labels:
                grp = part[part.label == label]
                vals = pd.to_numeric(grp[key], errors="coerce")
                if vals.notna().sum() == 0:
                    continue
                for _, seed_grp in grp.assign(_v=vals).groupby("seed"):
                    ax.plot(seed_grp.step, seed_grp._v, color=colors[label], lw=0.5, alpha=0.35)
                mean = grp.assign(_v=vals).groupby("step")._v.mean()
                ax.plot(mean.index, mean.values, color=colors[label], lw=1.8, label=label)
            ax.set(title=title, xlabel="step")
            if log:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=max(1, len(names)), fontsize=9)
        seeds = ",".join(str(s) for s in sorted(part.seed.unique()))
        fig.suptitle(f"Training dynamics — {where}, suite {suite}; seeds {seeds} (thin: each seed, bold: "
                     f"mean); records every {_every(part)} steps from steps.jsonl", fontsize=10)
        fig.tight_layout(rect=(0, 0.05, 1, 0.96))
        out.append((f"Training dynamics ({where})", fig))
    return out


def _every(part: pd.DataFrame) -> str:
    steps = np.unique(part.step.to_numpy())
    return str(int(np.diff(steps).min())) if len(steps) > 1 else "?"


