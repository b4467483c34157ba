"""Training dynamics figure and summary table, from each run's ``steps.jsonl``.

The step records (keys documented in ``hallucinator.training.step_diagnostics``) are plotted
per step: S(q,k) and S(q_hat,k) (Eq 5), the mean pairwise cosine and effective rank of q in the
batch, ||q_hat|| / ||q||, and the extra pair's share of the backbone gradient. One colour per
variant (or ablation level), the mean over seeds drawn bold and each seed thin. The summary
table gives, per variant, the extra pair's gradient share at the first record, its minimum and
its last record, the largest ||q_hat||, and the last pairwise cosine and effective rank of q
per seed.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hallucinator import rundir  # noqa: E402

from .aggregate import RunProblem, read_steps  # noqa: E402
from .pdf import PAGE  # noqa: E402
from .suites import DATASET_LABELS, METHOD_LABELS  # noqa: E402
from .tables import DASH, Table  # noqa: E402

# mathtext for the hat: the PDF font drops a combining circumflex, and S(q̂, k) read as "S(q, k)"
PANELS = [("sim_qk", r"$S(q, k)$  (Eq 5)", False), ("sim_qhat_k", r"$S(\hat{q}, k)$  (Eq 5)", False),
          ("q_pairwise_cos", "mean pairwise cosine of q (1 = collapsed)", False),
          ("q_erank", "effective rank of q", False),
          ("norm_ratio", r"$\|\hat{q}\| \,/\, \|q\|$", True),
          ("grad_share_extra", "extra pair's share of backbone gradient", False)]


def steps_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """All runs' step records, tagged with method, label (level or variant), dataset, seed.

    Read by ``aggregate.read_steps``: lines it cannot use are left out (and listed as warnings
    on the Problems page by ``aggregate.load_run``)."""
    frames = []
    # runs of several lengths (the schedule suite) are told apart by their steps, not averaged
    lengths = pd.to_numeric(runs["steps"], errors="coerce") if "steps" in runs else pd.Series(dtype=float)
    several = lengths[runs.get("kind", pd.Series("pretrain", index=runs.index)) == "pretrain"].nunique() > 1
    for row in runs.itertuples():
        path = Path(row.run_dir) / rundir.STEPS
        try:
            recs = read_steps(path)[0] if path.exists() else pd.DataFrame()
        except RunProblem:  # over the size cap: its run was already excluded with that reason
            continue
        if recs.empty:
            continue
        label = getattr(row, "level", "") or row.variant
        steps = getattr(row, "steps", None)
        arm, length = label, 0
        if several and steps == steps and steps:  # (steps == steps is False for NaN)
            arm, length = row.row or label, int(steps)
            label = f"{arm}, {length} steps"
        frames.append(recs.assign(method=row.method, label=label, arm=arm, length=length, dataset=row.dataset,
                                  profile=row.profile, seed=row.seed, run_name=row.run_name))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df["norm_ratio"] = pd.to_numeric(df["q_hat_norm"], errors="coerce") / pd.to_numeric(df["q_norm"], errors="coerce")
    return df


def _groups(runs: pd.DataFrame):
    """(profile, dataset, method, where, labels in display order, step records) per group."""
    df = steps_frame(runs) if not runs.empty else pd.DataFrame()
    if df.empty:
        return
    for (profile, ds, method), part in df.groupby(["profile", "dataset", "method"]):
        where = f"{METHOD_LABELS.get(method, method)}, {DATASET_LABELS.get(ds, ds)}, profile {profile}"
        order = part.drop_duplicates("label").set_index("label")
        labels = sorted(order.index, key=lambda s: (order.arm[s] not in ("baseline", "none"),
                                                    order.arm[s] != "paper", order.arm[s], order.length[s]))
        yield profile, ds, method, where, labels, part


def dynamics_figures(runs: pd.DataFrame, suite: str) -> list[tuple[str, plt.Figure]]:
    """One "training dynamics" page per (profile, dataset, method); [] without step records."""
    out = []
    for profile, ds, method, where, labels, part in _groups(runs):
        fig, axes = plt.subplots(2, 3, figsize=PAGE, squeeze=False)
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
                     f"mean); records every {_every(part)} steps from steps.jsonl" + _sparse_note(part), fontsize=10)
        fig.tight_layout(rect=(0, 0.05, 1, 0.96))
        out.append((f"Training dynamics ({where})", fig))
    return out


def dynamics_tables(runs: pd.DataFrame, suite: str) -> list[Table]:
    """One step-records summary table per (profile, dataset, method) that has a Hallucinator run.

    Per variant, means over seeds: the extra pair's gradient share at the first record, its
    minimum over records and its last record; the largest ||q_hat|| over records; and the last
    record's mean pairwise cosine (1 = collapsed) and effective rank of q, per seed.
    """
    out = []
    for profile, ds, method, where, labels, part in _groups(runs):
        if "grad_share_extra" not in part or pd.to_numeric(part.grad_share_extra, errors="coerce").notna().sum() == 0:
            continue
        rows = []
        for label in labels:
            grp = part[part.label == label].sort_values(["seed", "step"])
            per_seed = [g for _, g in grp.groupby("seed")]
            share = [pd.to_numeric(g.grad_share_extra, errors="coerce").dropna() for g in per_seed]
            share = [s for s in share if len(s)]
            q_hat = [pd.to_numeric(g.q_hat_norm, errors="coerce").max() for g in per_seed]
            q_hat = [v for v in q_hat if not np.isnan(v)]
            rows.append({
                "variant": label,
                "seeds": ",".join(str(int(g.seed.iloc[0])) for g in per_seed),
                "extra pair's gradient share: first → min → last": DASH if not share else
                " → ".join(f"{np.mean(v):.3f}" for v in ([s.iloc[0] for s in share], [s.min() for s in share],
                                                         [s.iloc[-1] for s in share])),
                "max ‖q̂‖": DASH if not q_hat else f"{np.mean(q_hat):,.0f}",
                **{f"last {name} of q (per seed)": "/".join(
                    f"{v:.2f}" for v in (pd.to_numeric(g[key], errors="coerce").iloc[-1] for g in per_seed))
                   for name, key in (("pairwise cosine", "q_pairwise_cos"), ("effective rank", "q_erank"))},
            })
        caption = (f"Step records of suite {suite} ({where}): records every {_every(part)} steps from "
                   "steps.jsonl; the last record is at step "
                   f"{int(part.step.max())}. Share and max ‖q̂‖ are means over seeds. The extra pair's share is "
                   "its fraction of the backbone gradient (½ when both pairs pull equally); a pairwise cosine "
                   "near 1 means the batch's q have collapsed to one direction.")
        out.append(Table(name=f"{suite}_{profile}_{ds}_{method}_dynamics", title=f"Step records ({where})",
                         caption=caption, frame=pd.DataFrame(rows)))
    return out


MIN_RECORDS = 3  # fewer records per run than this draw no curve, and the page says why


def _sparse_note(part: pd.DataFrame) -> str:
    """Why a dynamics page shows dots instead of curves ('' when every run has enough records)."""
    per_run = part.groupby("run_name").step.nunique()
    if per_run.min() >= MIN_RECORDS:
        return ""
    return (f"\nONLY {per_run.min()} record(s) in some runs: a record every diag_every steps over runs of "
            f"{int(part.step.max()) + 1}+ steps; set diag_every to about a tenth of the run's steps for curves")


def _every(part: pd.DataFrame) -> str:
    steps = np.unique(part.step.to_numpy())
    return str(int(np.diff(steps).min())) if len(steps) > 1 else "?"


