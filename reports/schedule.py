"""The schedule suite: how the Hallucinator's paired gain moves with training length.

Runs (``benchmarks/suites.py``, ``_schedule``) carry their arm as ``row``: ``baseline`` (MoCoV2),
``paper`` (the paper's Hallucinator + center crop), ``warmup`` (the stabilised variant, longest
length only) and ``random-init`` (the encoder with random weights, one per seed). Every
comparison is seed-paired at one length; the trend is the least-squares slope of the paired
gains on log10(steps) (``reports.stats.log_trend``).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hallucinator import rundir  # noqa: E402

from .aggregate import read_metrics  # noqa: E402
from .pdf import PAGE  # noqa: E402
from .stats import log_trend, mean_std, paired_gains  # noqa: E402
from .suites import PROBE_LABELS, PROBE_ORDER  # noqa: E402
from .tables import DASH, Table, describe, fmt  # noqa: E402

ARMS = ("baseline", "paper", "warmup")
ARM_LABELS = {"baseline": "MoCoV2", "paper": "+ Hallucinator (paper)", "warmup": "+ Hallucinator (warmup)",
              "random-init": "random weights"}
ARM_COLORS = {"baseline": "tab:blue", "paper": "tab:red", "warmup": "tab:orange", "random-init": "tab:gray"}


def _probes(res: pd.DataFrame) -> list[str]:
    present = set(res.probe)
    return [p for p in PROBE_ORDER if p in present] + sorted(present - set(PROBE_ORDER))


def _length(res: pd.DataFrame) -> pd.DataFrame:
    """Pretrained rows with an ``x`` column: optimizer steps, or epochs where steps are unknown."""
    pre = res[res.kind == "pretrain"].copy()
    steps = pd.to_numeric(pre["steps"], errors="coerce") if "steps" in pre else pd.Series(np.nan, pre.index)
    pre["x"] = steps if steps.notna().all() else pd.to_numeric(pre["epochs"], errors="coerce")
    pre["x_unit"] = "steps" if steps.notna().all() else "epochs"
    return pre


def gains_by_length(res: pd.DataFrame, treat: str = "paper", control: str = "baseline") -> pd.DataFrame:
    """Per (probe, length): the paired gain of arm ``treat`` over arm ``control`` (seeds matched)."""
    pre = _length(res)
    return paired_gains(pre, ["probe", "x"], pre.row == treat, pre.row == control)


def paired_differences(res: pd.DataFrame, treat: str = "paper", control: str = "baseline") -> pd.DataFrame:
    """One row per (probe, length, seed) present in both arms: ``diff`` = treat - control top-1."""
    pre = _length(res)
    a = pre[pre.row == treat].groupby(["probe", "x", "seed"]).top1.mean()
    b = pre[pre.row == control].groupby(["probe", "x", "seed"]).top1.mean()
    both = pd.concat([a.rename("treat"), b.rename("control")], axis=1, join="inner").reset_index()
    return both.assign(diff=both.treat - both.control)


def trend_table(res: pd.DataFrame, profile: str) -> Table:
    """Per probe: the slope of the paired gain on log10(length) with its 95 % CI."""
    diffs, pre = paired_differences(res), _length(res)
    unit = pre.x_unit.iloc[0] if len(pre) else "steps"
    rows = []
    for probe in _probes(res):
        d = diffs[diffs.probe == probe]
        t = log_trend(d.x, d["diff"]) if len(d) else None
        lengths = ", ".join(f"{int(x)}" for x in sorted(set(d.x)))
        rows.append({"Probe": PROBE_LABELS.get(probe, probe), f"Lengths ({unit})": lengths or DASH,
                     "Pairs": str(len(d)), "Slope of gain per 10x length [95 % CI]": t.format() if t else DASH})
    caption = (f"Profile {profile}. Each seed-paired difference (Hallucinator - baseline, top-1 points) at each "
               f"length is one observation of an ordinary least-squares fit on log10({unit}); the interval is "
               "the two-sided t interval of the slope (n - 2 degrees of freedom). A slope whose interval "
               "excludes 0 means the gain changes with training length.")
    return Table(f"schedule_trend_{profile}", "Trend of the gain with training length", caption, pd.DataFrame(rows))


def length_table(res: pd.DataFrame, profile: str, probe: str) -> Table:
    """One row per length: each arm's mean ± std, the paired gains, random weights as the first row."""
    sub = res[res.probe == probe]
    pre = _length(sub)
    unit = pre.x_unit.iloc[0] if len(pre) else "steps"
    stats = mean_std(pre, ["row", "x"])
    gain = gains_by_length(sub)
    warm = gains_by_length(sub, "warmup", "baseline")
    warm_paper = gains_by_length(sub, "warmup", "paper")

    def cell(arm, x):
        hit = stats[(stats.row == arm) & (stats.x == x)]
        return fmt(hit["mean"].iloc[0], hit["std"].iloc[0], int(hit["n"].iloc[0])) if len(hit) else DASH

    def gcell(frame, x):
        hit = frame[(frame.probe == probe) & (frame.x == x)]
        if not len(hit):
            return DASH
        n = int(hit.n_pairs.iloc[0])
        return hit.ci.iloc[0].format() + (f" (n={n})" if n > 1 else "")

    rows = []
    ref = sub[sub.row == "random-init"]
    if len(ref):
        rows.append({unit.capitalize(): "0 (random weights)", ARM_LABELS["baseline"]: fmt(ref.top1.mean(), ref.top1.std(ddof=1)
                     if len(ref) > 1 else float("nan"), len(ref)), ARM_LABELS["paper"]: DASH,
                     "Gain [95 % CI]": DASH, ARM_LABELS["warmup"]: DASH, "Warmup - baseline": DASH,
                     "Warmup - paper": DASH})
    for x in sorted(set(pre.x)):
        rows.append({unit.capitalize(): f"{int(x)}", ARM_LABELS["baseline"]: cell("baseline", x),
                     ARM_LABELS["paper"]: cell("paper", x), "Gain [95 % CI]": gcell(gain, x),
                     ARM_LABELS["warmup"]: cell("warmup", x), "Warmup - baseline": gcell(warm, x),
                     "Warmup - paper": gcell(warm_paper, x)})
    caption = (describe(sub, profile, probe) + " Gains are seed-paired differences in top-1 points with a "
               "two-sided 95 % t interval; (n=...) counts runs or pairs. The random-weights row is the same "
               "encoder untrained, one per seed, on the same probe.")
    return Table(f"schedule_{profile}_{probe}", f"Gain against training length: {PROBE_LABELS.get(probe, probe)}",
                 caption, pd.DataFrame(rows), index_cols=1)


def _epoch_seconds(run_dir: str) -> pd.Series:
    """A run's ``epoch_time_s`` per epoch from ``metrics.jsonl`` (empty without a log)."""
    path = Path(run_dir) / rundir.METRICS
    return read_metrics(path)[0]["epoch_time_s"].dropna() if path.exists() else pd.Series(dtype=float)


def _spread(values: pd.Series, digits: int = 0) -> str:
    """``"median [min, max] (n=k)"``, or a dash when no value is known."""
    v = values.dropna()
    if v.empty:
        return DASH
    return f"{v.median():.{digits}f} [{v.min():.{digits}f}, {v.max():.{digits}f}] (n={len(v)})"


def cost_table(runs: pd.DataFrame, res: pd.DataFrame, profile: str) -> Table:
    """Per length and arm, in seconds per run, median [min, max] over runs: the training loop (the
    sum of ``metrics.jsonl``'s ``epoch_time_s``, which survives a resume, unlike ``run.json``'s
    ``wall_time_s`` of the last start) and the probes (the sum of ``eval.json``'s ``seconds``)."""
    probe_s = res[res.profile == profile].groupby("run_dir")["seconds"].sum(min_count=1)
    runs = runs[runs.profile == profile].assign(
        length=lambda f: f.steps.where(f.kind == "pretrain", 0),
        epoch_s=lambda f: [_epoch_seconds(d) if k == "pretrain" else pd.Series(dtype=float)
                           for d, k in zip(f.run_dir, f.kind)],
        probe_s=lambda f: f.run_dir.map(probe_s))
    rank = {arm: i for i, arm in enumerate(("random-init",) + ARMS)}
    rows = []
    groups = runs.fillna({"length": -1}).groupby(["length", "row"])
    for (length, row), g in sorted(groups, key=lambda kv: (kv[0][0], rank.get(kv[0][1], 9))):
        steps = "unknown" if length < 0 else f"{int(length)}" if length else "0 (random weights)"
        rows.append({"Steps": steps, "Arm": ARM_LABELS.get(row, row),
                     "Runs": str(len(g)),
                     "Training loop (s)": _spread(pd.Series([e.sum() if len(e) else np.nan for e in g.epoch_s])),
                     "One epoch (s)": _spread(pd.concat([*g.epoch_s, pd.Series(dtype=float)]), digits=1),
                     "Probes (s)": _spread(g.probe_s)})
    devices = ", ".join(sorted({str(d) for d in runs.get("prov_device_name", pd.Series(dtype=str)).dropna()})) or "unknown"
    caption = (f"Profile {profile}; device(s): {devices}. Seconds per run, median [min, max] over runs. "
               "Training loop: per run, the sum of the epochs' epoch_time_s (metrics.jsonl): the optimizer "
               "steps, across resumes, without process start-up, the per-epoch monitors and checkpoint "
               "writes; time the machine spent on other work or paused is included, so a loaded machine "
               "inflates some runs (the median resists a few). One epoch: over every epoch of those runs "
               "(n counts epochs), the figure least moved by a busy machine. Probes: the sum of eval.json's "
               f"per-probe seconds ({', '.join(PROBE_LABELS.get(p, p) for p in _probes(res))}).")
    return Table(f"schedule_cost_{profile}", "Cost per run against training length", caption,
                 pd.DataFrame(rows), index_cols=2)


def schedule_tables(res: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[Table]:
    """Every profile's length tables (one per probe), its trend table and, given the run frame,
    its cost table."""
    tables = []
    for profile in sorted(set(res.profile)) if len(res) else []:
        sub = res[res.profile == profile]
        tables += [length_table(sub, profile, probe) for probe in _probes(sub)]
        tables.append(trend_table(sub, profile))
        if runs is not None and not runs.empty:
            tables.append(cost_table(runs, res, profile))
    return tables


def schedule_figures(res: pd.DataFrame, provenance: str = "") -> list[tuple[str, plt.Figure]]:
    """Per profile: one row per probe; left the paired gain against length (log axis: every seed's
    difference a dot, the mean with its 95 % CI band), right each arm's accuracy against length."""
    out = []
    for profile in sorted(set(res.profile)) if len(res) else []:
        sub = res[res.profile == profile]
        pre = _length(sub)
        if pre.empty:
            continue
        unit = pre.x_unit.iloc[0]
        probes = _probes(sub)
        fig, axes = plt.subplots(len(probes), 2, figsize=PAGE, squeeze=False)
        lengths = sorted(set(pre.x))
        for r, probe in enumerate(probes):
            _gain_panel(axes[r, 0], sub[sub.probe == probe], probe, unit)
            _accuracy_panel(axes[r, 1], sub[sub.probe == probe], probe, unit)
            for ax in axes[r]:
                _length_axis(ax, lengths)
        axes[-1, 0].set_xlabel(f"training length ({unit}, log scale)")
        axes[-1, 1].set_xlabel(f"training length ({unit}, log scale)")
        seeds = ",".join(str(s) for s in sorted(set(pre.seed)))
        fig.suptitle(f"Schedule suite, profile {profile}: gain against training length (seeds {seeds})"
                     + (f"\n{provenance}" if provenance else ""), fontsize=10)
        fig.tight_layout()
        out.append((f"Gain against training length ({profile})", fig))
    return out


def _length_axis(ax, lengths: list[float]) -> None:
    """Log axis with one labelled tick per length trained (no minor ticks), half a step of margin."""
    ax.set_xscale("log")
    ax.set_xticks(lengths, [f"{int(x):,}" for x in lengths])
    ax.minorticks_off()
    ax.set_xlim(lengths[0] / 1.6, lengths[-1] * 1.6)


def _gain_panel(ax, res: pd.DataFrame, probe: str, unit: str) -> None:
    for treat, color, shift in (("paper", ARM_COLORS["paper"], 0.985), ("warmup", ARM_COLORS["warmup"], 1.015)):
        d = paired_differences(res, treat)
        if d.empty:
            continue
        ax.scatter(d.x * shift, d["diff"], s=14, color=color, alpha=0.7,
                   label=f"{ARM_LABELS[treat]} - MoCoV2, per seed")
        g = gains_by_length(res, treat).sort_values("x")
        if len(g) > 1:
            ax.plot(g.x, g.gain, color=color, lw=1.5, label="mean")
            ok = g.lo.notna()
            ax.fill_between(g.x[ok], g.lo[ok], g.hi[ok], color=color, alpha=0.15, label="95 % CI")
        elif len(g) == 1:
            ax.errorbar(g.x, g.gain, yerr=[g.gain - g.lo, g.hi - g.gain] if g.lo.notna().all() else None,
                        fmt="D", color=color, capsize=3)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("paired gain (top-1 points)")
    ax.set_title(f"{PROBE_LABELS.get(probe, probe)}: gain", fontsize=9)
    ax.legend(fontsize=6, loc="best")


def _accuracy_panel(ax, res: pd.DataFrame, probe: str, unit: str) -> None:
    pre = _length(res)
    stats = mean_std(pre, ["row", "x"])
    for arm in ARMS:
        s = stats[stats.row == arm].sort_values("x")
        if s.empty:
            continue
        ax.errorbar(s.x, s["mean"], yerr=s["std"].fillna(0), marker="o", ms=4, capsize=3,
                    color=ARM_COLORS[arm], label=ARM_LABELS[arm])
    ref = res[res.row == "random-init"]
    if len(ref):
        ax.axhline(ref.top1.mean(), color=ARM_COLORS["random-init"], ls="--", lw=1,
                   label=f"{ARM_LABELS['random-init']} ({len(ref)} seeds)")
    ax.set_ylabel("top-1 % (mean ± std over seeds)")
    ax.set_title(f"{PROBE_LABELS.get(probe, probe)}: accuracy", fontsize=9)
    ax.legend(fontsize=6, loc="best")
