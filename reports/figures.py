"""Figures from saved run files (metrics.jsonl, features_2d.npz); matplotlib Agg only.

Each builder takes the ``runs`` frame of a ``Collection`` and returns ``(title, Figure)`` pairs
(an empty list when the runs hold no data for it), never touching live training objects.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402
from scipy.stats import gaussian_kde  # noqa: E402

from .aggregate import read_metrics  # noqa: E402
from .stats import gaussian_potential, uniform_circle_g2  # noqa: E402
from .suites import DATASET_LABELS, METHOD_LABELS  # noqa: E402

PAGE = (11.69, 8.27)  # A4 landscape, inches
VARIANT_COLORS = {"baseline": "tab:blue", "hallucinator": "tab:red",
                  "symmetric extrapolation": "tab:green"}


def _label(row) -> str:
    return f"{METHOD_LABELS.get(row.method, row.method)} {row.variant}"


def _metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Concatenate metrics.jsonl of all runs, tagged with method/variant/dataset/seed."""
    frames = []
    for row in runs.itertuples():
        path = Path(row.run_dir) / "metrics.jsonl"
        if not path.exists():
            continue
        m, _ = read_metrics(path)
        if m.empty or "epoch" not in m:
            continue
        frames.append(m.assign(profile=row.profile, method=row.method, variant=row.variant,
                               dataset=row.dataset,
                               seed=row.seed, run_name=row.run_name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def similarity_figures(runs: pd.DataFrame) -> list[tuple[str, plt.Figure]]:
    """Fig. 4: positive-pair cosine similarity S(q,k) and S(q̂,k) per epoch, mean ± std over seeds."""
    m = _metrics(runs)
    if m.empty or "sim_qk" not in m or m["sim_qk"].notna().sum() == 0:
        return []
    out = []
    for (profile, ds), part in m.groupby(["profile", "dataset"]):
        where = f"{DATASET_LABELS.get(ds, ds)}, profile {profile}"
        fig, ax = plt.subplots(figsize=PAGE)
        for (method, variant), grp in part.groupby(["method", "variant"]):
            color = VARIANT_COLORS.get(variant, "tab:gray")
            for col, style, what in (("sim_qk", "-", "S(q, k)"), ("sim_qhat_k", "--", "S(q̂, k)")):
                if col not in grp or grp[col].notna().sum() == 0:
                    continue
                agg = grp.groupby("epoch")[col].agg(["mean", "std", "count"])
                label = f"{METHOD_LABELS.get(method, method)} {variant}: {what} (n={grp.seed.nunique()})"
                ax.plot(agg.index, agg["mean"], style, color=color, label=label,
                        marker="o" if len(agg) < 30 else None, ms=3)
                if agg["count"].max() > 1:
                    ax.fill_between(agg.index, agg["mean"] - agg["std"].fillna(0),
                                    agg["mean"] + agg["std"].fillna(0), color=color, alpha=0.15)
        ax.set(xlabel="epoch", ylabel="positive-pair cosine similarity",
               title=f"Positive-pair similarity over training — {where} "
                     "(solid: S(q,k), dashed: S(q̂,k); band: ±1 std over seeds)")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        out.append((f"Fig. 4 — similarity ({where})", fig))
    return out


def _angle_kde(angles: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Periodic KDE of angles on [-π, π] (data wrapped ±2π, renormalised)."""
    wrapped = np.concatenate([angles - 2 * np.pi, angles, angles + 2 * np.pi])
    kde = gaussian_kde(wrapped, bw_method=gaussian_kde(angles).factor / 3 if len(angles) > 2 else None)
    return 3 * kde(grid)


def uniformity_figures(runs: pd.DataFrame, max_panels: int = 4) -> list[tuple[str, plt.Figure]]:
    """Fig. 5: KDE of l2-normalised 2-D features and of their angles, with each panel's G2."""
    rows = [r for r in runs.itertuples() if (Path(r.run_dir) / "features_2d.npz").exists()]
    if not rows:
        return []
    g2_uniform = uniform_circle_g2(2.0)
    out = []
    for start in range(0, len(rows), max_panels):
        chunk = rows[start:start + max_panels]
        fig, axes = plt.subplots(2, max_panels, figsize=PAGE, squeeze=False,
                                 gridspec_kw={"height_ratios": [1.6, 1]})
        for j, row in enumerate(chunk):
            data = np.load(Path(row.run_dir) / "features_2d.npz")
            x = np.asarray(data["features"], dtype=float)
            x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
            g2 = gaussian_potential(x)
            where = f"{DATASET_LABELS.get(row.dataset, row.dataset)}, {row.profile}"
            stored = f", stored {float(data['g2']):.4f}" if "g2" in data.files else ""
            ax = axes[0, j]
            grid = np.linspace(-1.3, 1.3, 120)
            # Gaussian KDE with a fixed absolute bandwidth (0.05 on the unit circle): a histogram
            # smoothed by a Gaussian filter, which stays visible even for collapsed features.
            hist, _, _ = np.histogram2d(x[:, 1], x[:, 0], bins=len(grid), range=[[-1.3, 1.3], [-1.3, 1.3]])
            dens = gaussian_filter(hist, sigma=0.05 / (grid[1] - grid[0]))
            ax.imshow(dens, extent=(-1.3, 1.3, -1.3, 1.3), origin="lower", cmap="viridis")
            ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="w", lw=0.5, ls=":"))
            ax.set(aspect="equal", xticks=[], yticks=[],
                   title=f"{_label(row)}, seed {row.seed}\n{where}\nG2 = {g2:.4f}{stored}\n"
                         f"(uniform: {g2_uniform:.4f})")
            ax.title.set_fontsize(9)
            theta = np.linspace(-np.pi, np.pi, 361)
            ang = np.arctan2(x[:, 1], x[:, 0])
            axb = axes[1, j]
            axb.plot(theta, _angle_kde(ang, theta), color="k", lw=1.2, label="all")
            labels = data["labels"] if "labels" in data.files else None
            if labels is not None and len(np.unique(labels)) <= 10:
                for c in np.unique(labels):
                    sel = ang[labels == c]
                    if len(sel) > 2:
                        axb.plot(theta, _angle_kde(sel, theta) * len(sel) / len(ang), lw=0.8,
                                 label=f"class {c} (× share)")
            axb.axhline(1 / (2 * np.pi), color="gray", ls="--", lw=0.8, label="uniform")
            axb.set(xlabel="angle (rad)", ylabel="density", xlim=(-np.pi, np.pi))
            axb.set_ylim(bottom=0)
            axb.legend(fontsize=6)
        for j in range(len(chunk), max_panels):
            axes[0, j].axis("off")
            axes[1, j].axis("off")
        fig.suptitle("Uniformity of l2-normalised 2-D features: Gaussian KDE (top) and angle KDE "
                     f"(bottom); G2 = mean exp(−2‖x−y‖²), uniform reference e⁻⁴·I0(4) = {g2_uniform:.4f}",
                     fontsize=10)
        fig.tight_layout()
        out.append((f"Fig. 5 — uniformity (panels {start + 1}-{start + len(chunk)})", fig))
    return out


def curve_figures(runs: pd.DataFrame) -> list[tuple[str, plt.Figure]]:
    """Loss and kNN accuracy per epoch: one page per dataset, one column per method."""
    m = _metrics(runs)
    if m.empty:
        return []
    out = []
    for (profile, ds), part in m.groupby(["profile", "dataset"]):
        where = f"{DATASET_LABELS.get(ds, ds)}, profile {profile}"
        methods = sorted(part.method.unique())
        fig, axes = plt.subplots(2, len(methods), figsize=PAGE, squeeze=False, sharex=True)
        for j, method in enumerate(methods):
            for run_name, grp in part[part.method == method].groupby("run_name"):
                variant = grp.variant.iloc[0]
                kw = dict(color=VARIANT_COLORS.get(variant, "tab:gray"), lw=1, alpha=0.8)
                if "loss" in grp:
                    axes[0, j].plot(grp.epoch, grp["loss"], **kw)
                if "knn_top1" in grp and grp["knn_top1"].notna().any():
                    axes[1, j].plot(grp.epoch, grp["knn_top1"], marker=".", **kw)
            axes[0, j].set(title=METHOD_LABELS.get(method, method), ylabel="training loss")
            axes[1, j].set(xlabel="epoch", ylabel="kNN top-1 (%)")
            for ax in axes[:, j]:
                ax.grid(alpha=0.3)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        variants = [v for v in VARIANT_COLORS if v in set(part.variant)]
        fig.legend([Line2D([], [], color=VARIANT_COLORS[v]) for v in variants], variants,
                   loc="lower center", ncol=len(variants), fontsize=9)
        fig.suptitle(f"Training curves — {where} (one line per run and seed)", fontsize=11)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        out.append((f"Training curves ({where})", fig))
    return out


def build_figures(runs: pd.DataFrame, suite: str) -> list[tuple[str, plt.Figure]]:
    """The figures of ``suite``: Fig. 4 / Fig. 5 for their suites, training curves for all."""
    if runs.empty:
        return []
    figs = []
    if suite == "fig4":
        figs += similarity_figures(runs)
    if suite == "fig5":
        figs += uniformity_figures(runs)
    return figs + curve_figures(runs)
