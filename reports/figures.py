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

from hallucinator import rundir  # noqa: E402

from .aggregate import RunProblem, read_features_2d, read_metrics  # noqa: E402
from .stats import uniform_circle_g2  # noqa: E402
from .pdf import PAGE  # noqa: E402
from .suites import DATASET_LABELS, METHOD_LABELS  # noqa: E402

VARIANT_COLORS = {"baseline": "tab:blue", "hallucinator": "tab:red",
                  "symmetric extrapolation": "tab:green"}


def _label(row) -> str:
    return f"{METHOD_LABELS.get(row.method, row.method)} {row.variant}"


def _metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Concatenate metrics.jsonl of all runs, tagged with method/variant/dataset/seed."""
    frames = []
    for row in runs.itertuples():
        path = Path(row.run_dir) / rundir.METRICS
        if not path.exists():
            continue
        m, _ = read_metrics(path)
        if m.empty or "epoch" not in m:
            continue
        frames.append(m.assign(profile=row.profile, method=row.method, variant=row.variant,
                               dataset=row.dataset,
                               seed=row.seed, run_name=row.run_name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _collapsed_note(runs: pd.DataFrame, profile: str, dataset: str) -> str:
    """'\nCOLLAPSED: <runs>' for the runs of this page whose embedding collapsed (see aggregate)."""
    if "collapse" not in runs:
        return ""
    hit = runs[(runs.profile == profile) & (runs.dataset == dataset) & (runs.collapse.fillna("") != "")]
    return f"\nCOLLAPSED (G2 or pairwise cosine near 1): {', '.join(hit.run_name)}" if len(hit) else ""


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
            for col, style, what in (("sim_qk", "-", r"$S(q, k)$"), ("sim_qhat_k", "--", r"$S(\hat{q}, k)$")):
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
                     r"(solid: $S(q, k)$, dashed: $S(\hat{q}, k)$; band: ±1 std over seeds)"
                     + _collapsed_note(runs, profile, ds))
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        out.append((f"Fig. 4 — similarity ({where})", fig))
    return out


VARIANT_ORDER = ("baseline", "hallucinator", "symmetric extrapolation")


def circular_bandwidth(angles: np.ndarray) -> float:
    """Kernel bandwidth (rad) from the data: Silverman's rule on the circular standard deviation.

    sigma = sqrt(-2 ln R), R = mean resultant length; h = 1.06 sigma n^(-1/5) (floored at 1e-6 rad).
    """
    n = len(angles)
    r = np.abs(np.mean(np.exp(1j * angles))) if n else 0.0
    sigma = np.sqrt(-2.0 * np.log(np.clip(r, 1e-300, 1.0)))
    return max(1.06 * float(sigma) * max(n, 1) ** -0.2, 1e-6)


def angle_grid(angles: np.ndarray, h: float, points: int = 721) -> np.ndarray:
    """A grid over [-pi, pi] refined around the data, so a peak narrower than its spacing is drawn."""
    base = np.linspace(-np.pi, np.pi, points)
    if h >= 2 * np.pi / points:
        return base
    offsets = h * np.linspace(-4, 4, 33)
    centers = np.quantile(angles, np.linspace(0, 1, 41)) if len(angles) else np.array([])
    fine = (centers[:, None] + offsets[None, :]).ravel()
    fine = (fine + np.pi) % (2 * np.pi) - np.pi
    return np.unique(np.concatenate([base, fine]))


def angle_density(angles: np.ndarray, grid: np.ndarray, h: float | None = None) -> np.ndarray:
    """Von Mises kernel density of ``angles`` on ``grid`` (integrates to 1 over the circle).

    Concentration kappa = 1 / h^2 with ``h`` from ``circular_bandwidth`` unless given; scaled
    Bessel function (i0e) so large kappa (narrow clusters) stays finite.
    """
    from scipy.special import i0e
    h = circular_bandwidth(angles) if h is None else h
    kappa = 1.0 / h ** 2
    out = np.zeros_like(grid, dtype=float)
    for i in range(0, len(angles), 2048):  # chunks bound the memory of the pairwise table
        diff = grid[:, None] - angles[None, i:i + 2048]
        out += np.exp(kappa * (np.cos(diff) - 1.0)).sum(1)
    return out / (len(angles) * 2 * np.pi * i0e(kappa))


def _fig5_order(row) -> tuple:
    v = VARIANT_ORDER.index(row.variant) if row.variant in VARIANT_ORDER else len(VARIANT_ORDER)
    return (row.profile, row.dataset, v, row.method, row.seed)


def uniformity_figures(runs: pd.DataFrame, max_panels: int = 4) -> list[tuple[str, plt.Figure]]:
    """Fig. 5: density of l2-normalised 2-D features and of their angles, with the run's stored G2.

    Panels in a fixed order (baseline first, as the paper), as many as there are runs per page.
    """
    rows = []  # the runs whose features_2d.npz passes read_features_2d (the others are on the Problems page)
    for r in sorted((r for r in runs.itertuples() if getattr(r, "has_features", False)), key=_fig5_order):
        try:
            rows.append((r, read_features_2d(Path(r.run_dir) / rundir.FEATURES_2D)))
        except RunProblem:
            continue
    if not rows:
        return []
    g2_uniform = uniform_circle_g2(2.0)
    out = []
    cmap = plt.get_cmap("tab10")
    for start in range(0, len(rows), max_panels):
        chunk = rows[start:start + max_panels]
        fig, axes = plt.subplots(2, len(chunk), figsize=PAGE, squeeze=False,
                                 gridspec_kw={"height_ratios": [1.4, 1]})
        classes = set()
        for j, (row, (x, labels, g2)) in enumerate(chunk):
            x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
            g2 = f"{g2:.4f}" if g2 is not None else "not stored"
            where = f"{DATASET_LABELS.get(row.dataset, row.dataset)}, {row.profile}"
            flag = f"\nCOLLAPSED: {row.collapse}" if getattr(row, "collapse", "") else ""
            ax = axes[0, j]
            grid = np.linspace(-1.3, 1.3, 120)
            # 2-D density: a histogram smoothed by a Gaussian of 0.05 (absolute, on the unit circle)
            hist, _, _ = np.histogram2d(x[:, 1], x[:, 0], bins=len(grid), range=[[-1.3, 1.3], [-1.3, 1.3]])
            dens = gaussian_filter(hist, sigma=0.05 / (grid[1] - grid[0]))
            ax.imshow(dens, extent=(-1.3, 1.3, -1.3, 1.3), origin="lower", cmap="viridis")
            ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="w", lw=0.5, ls=":"))
            ax.set(aspect="equal", xticks=[], yticks=[],
                   title=f"{_label(row)}, seed {row.seed}\n{where}\nG2 (Eq 6) = {g2}{flag}")
            ax.title.set_fontsize(9)
            if flag:
                ax.title.set_color("tab:red")
            ang = np.arctan2(x[:, 1], x[:, 0])
            axb = axes[1, j]
            if labels is not None and len(np.unique(labels)) <= 10:
                for c in np.unique(labels):
                    sel = ang[labels == c]
                    if len(sel) > 1:
                        g = angle_grid(sel, circular_bandwidth(sel))
                        axb.plot(g, angle_density(sel, g) * len(sel) / len(ang), lw=0.8, color=cmap(int(c) % 10))
                        classes.add(int(c))
            g = angle_grid(ang, circular_bandwidth(ang))
            axb.plot(g, angle_density(ang, g), color="k", lw=1.4)
            axb.axhline(1 / (2 * np.pi), color="gray", ls="--", lw=0.8)
            axb.set(xlabel="angle (rad)", ylabel="density", xlim=(-np.pi, np.pi))
            axb.set_ylim(bottom=0)
        handles = [Line2D([], [], color="k", lw=1.4), Line2D([], [], color="gray", ls="--")]
        names = ["all test images", "uniform (1/2π)"]
        handles += [Line2D([], [], color=cmap(c % 10), lw=1.2) for c in sorted(classes)]
        names += [f"class {c} (× its share)" for c in sorted(classes)]
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6), fontsize=9, frameon=False)
        fig.suptitle("Uniformity of l2-normalised 2-D features: density (top) and von Mises kernel density "
                     "of the angles, bandwidth from the data (bottom). G2 = mean exp(−2‖x−y‖²) as stored by "
                     f"the run; uniform on the circle: e⁻⁴·I0(4) = {g2_uniform:.4f}; 1 = all points equal.",
                     fontsize=9, wrap=True)
        fig.tight_layout(rect=(0, 0.07, 1, 0.95))
        out.append((f"Fig. 5 — uniformity (panels {start + 1}-{start + len(chunk)})", fig))
    return out


CURVES = (("loss", "training loss"), ("lr", "learning rate"), ("sim_qk", r"$S(q, k)$"),
          ("sim_qhat_k", r"$S(\hat{q}, k)$"), ("g2", "G2 (Eq 6)"), ("knn_top1", "kNN top-1 (%)"))


def curve_figures(runs: pd.DataFrame) -> list[tuple[str, plt.Figure]]:
    """Every per-epoch curve the runs record (loss, lr, S(q,k), S(q̂,k), G2, kNN): one page per
    dataset, one row per metric, one column per method, one line per run."""
    m = _metrics(runs)
    if m.empty:
        return []
    out = []
    for (profile, ds), part in m.groupby(["profile", "dataset"]):
        where = f"{DATASET_LABELS.get(ds, ds)}, profile {profile}"
        methods = sorted(part.method.unique())
        curves = [(k, name) for k, name in CURVES if k in part and part[k].notna().any()]
        fig, axes = plt.subplots(len(curves), len(methods), figsize=PAGE, squeeze=False, sharex=True)
        for j, method in enumerate(methods):
            for run_name, grp in part[part.method == method].groupby("run_name"):
                variant = grp.variant.iloc[0]
                kw = dict(color=VARIANT_COLORS.get(variant, "tab:gray"), lw=1, alpha=0.8,
                          marker="." if len(grp) < 30 else None)
                for i, (key, _) in enumerate(curves):
                    ok = grp[key].notna()
                    if ok.any():
                        axes[i, j].plot(grp.epoch[ok], grp[key][ok], **kw)
            axes[0, j].set_title(METHOD_LABELS.get(method, method), fontsize=10)
            axes[-1, j].set_xlabel("epoch")
            for i, (_, name) in enumerate(curves):
                ax = axes[i, j]
                ax.grid(alpha=0.3)
                ax.tick_params(labelsize=7)
                ax.ticklabel_format(axis="y", useOffset=False)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                if j == 0:
                    ax.set_ylabel(name, fontsize=8)
        variants = [v for v in VARIANT_COLORS if v in set(part.variant)]
        fig.legend([Line2D([], [], color=VARIANT_COLORS[v]) for v in variants], variants,
                   loc="lower center", ncol=len(variants), fontsize=9)
        fig.suptitle(f"Training curves — {where} (one line per run and seed; from metrics.jsonl)"
                     + _collapsed_note(runs, profile, ds), fontsize=11)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
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
