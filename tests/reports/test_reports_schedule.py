"""The schedule suite: its runs, the trend statistic on a hand-computed example, its tables and figure."""
from __future__ import annotations

import math

import numpy as np
import pytest
from reports_fixtures import make_run

from benchmarks.suites import build_suite, schedule_length
from hallucinator import rundir
from reports.aggregate import optimizer_steps
from reports.build import build_suite as build_report
from reports.schedule import paired_differences, schedule_figures
from reports.stats import log_trend


def test_schedule_suite_runs_seed_paired_lengths_and_references():
    specs = build_suite("schedule", "demo")
    names = [s.name for s in specs]
    assert len(names) == len(set(names)) == 5 + 5 * 3 * 2 + 3
    epochs = {s.name: next(o for o in s.overrides if o.startswith("epochs=")) for s in specs if not s.baseline}
    for seed in range(5):
        assert f"random-init-s{seed}" in names
        for mult, ep in ((1, 3), (3, 9), (10, 30)):  # the demo trains 3 epochs = 468 steps
            for arm in ("baseline", "paper"):
                assert epochs[f"x{mult}-{arm}-s{seed}"] == f"epochs={ep}"
    warm = [s for s in specs if s.row == "warmup"]
    assert [s.name for s in warm] == ["x10-warmup-s0", "x10-warmup-s1", "x10-warmup-s2"]
    assert all("hallucinator_preset=warmup" in s.overrides and "epochs=30" in s.overrides for s in warm)
    by_name = {s.name: s for s in specs}
    assert by_name["x3-paper-s2"].preset == "demo/mocov2-hal" and by_name["x3-baseline-s2"].preset == "demo/mocov2"
    assert all({"fast_linear", "fast_linear_1k", "knn"} <= set(s.probes) for s in specs)
    # seed-major order: seed 0 holds every length before seed 1 starts
    assert names.index("x10-warmup-s0") < names.index("x1-baseline-s1")
    # explicit seeds restrict both the pairs and the warm-up runs
    two = build_suite("schedule", "demo", seeds=[3, 4])
    assert {s.name for s in two if s.row == "warmup"} == {"x10-warmup-s3"}
    assert schedule_length("x10-paper-s0") == 10
    with pytest.raises(ValueError):
        schedule_length("random-init-s0")


def test_optimizer_steps_from_config():
    assert optimizer_steps({"train_subset": 20000, "batch_size": 128, "epochs": 30}) == 4680
    assert optimizer_steps({"train_subset": None, "batch_size": 128, "epochs": 3}) is None
    assert optimizer_steps({"train_subset": True, "batch_size": 128, "epochs": 3}) is None


def test_log_trend_known_answer():
    # gains 1.0 x log10(steps) + residuals {-e, 0, +e} at each of 100, 1000, 10000 steps: the OLS slope is
    # exactly 1.0; SSE = 6e^2, s^2 = 6e^2 / 7, Sxx = 6 -> SE = e / sqrt(7); t_{0.975, 7} = 2.3646 (t table)
    e = 0.3
    x = np.repeat([100.0, 1000.0, 10000.0], 3)
    y = np.log10(x) + np.tile([-e, 0.0, e], 3)
    t = log_trend(x, y)
    assert t.n == 9 and t.slope == pytest.approx(1.0)
    half = 2.3646 * e / math.sqrt(7)
    assert t.lo == pytest.approx(1.0 - half, abs=1e-3) and t.hi == pytest.approx(1.0 + half, abs=1e-3)
    assert t.p < 0.001 and t.format().startswith("+1.00 [+0.73, +1.27] per 10x")
    flat = log_trend(x, np.tile([-e, 0.0, e], 3))
    assert flat.slope == pytest.approx(0.0, abs=1e-12) and flat.lo < 0 < flat.hi and flat.p > 0.99
    one_length = log_trend([468.0, 468.0, 468.0], [1.0, 2.0, 3.0])
    assert math.isnan(one_length.slope) and "one length" in one_length.format()
    with pytest.raises(ValueError):
        log_trend([1.0, 2.0], [1.0])


# paired (baseline, paper) top-1 per seed at each length: gains -1, 0, +1 on average
ARMS = {3: [(70.0, 69.0), (71.0, 69.5), (69.0, 68.5)],
        9: [(74.0, 74.0), (75.0, 75.5), (73.0, 72.5)],
        30: [(78.0, 79.0), (79.0, 79.5), (77.0, 78.5)]}

# a minimal step record: keys it lacks read as NaN
STEP_RECORD = {"step": 0, "epoch": 0, "q_pairwise_cos": 0.3, "q_erank": 9.0, "grad_share_extra": 0.5}


@pytest.fixture(scope="module")
def schedule_report(tmp_path_factory):
    """The schedule report of 3 lengths x 3 seed pairs, 2 warm-up runs and 3 random-weight runs (built once)."""
    tmp = tmp_path_factory.mktemp("schedule")
    root = tmp / "runs"
    for epochs, pairs in ARMS.items():
        for seed, (wo, w) in enumerate(pairs):
            common = dict(suite="schedule", seed=seed, epochs=epochs, metrics_epochs=2)
            base = make_run(root, f"x{epochs // 3}-baseline-s{seed}", row="baseline", top1=wo,
                            epoch_time_s=(1.0 + seed) * epochs, **common)
            paper = make_run(root, f"x{epochs // 3}-paper-s{seed}", row="paper", hallucinator=True, top1=w,
                             probe_seconds=10.0 + seed, **common)
            for run in (base, paper):  # one step record each, so the step-records table has a row per arm
                rundir.append_jsonl(run / rundir.STEPS, STEP_RECORD)
    for seed in range(2):
        warm = make_run(root, f"x10-warmup-s{seed}", row="warmup", hallucinator=True, top1=80.0, suite="schedule",
                        seed=seed, epochs=30, metrics_epochs=2, hallucinator_preset="warmup")
        rundir.append_jsonl(warm / rundir.STEPS, STEP_RECORD)
    for seed in range(3):
        make_run(root, f"random-init-s{seed}", row="random-init", top1=60.0 + seed, suite="schedule", seed=seed,
                 kind="random-init", metrics_epochs=0, probe_seconds=5.0)
    return build_report(root, tmp / "out", "schedule", "demo"), tmp / "out" / "schedule"


def test_schedule_report_tables_and_figure(schedule_report):
    result, out = schedule_report
    table = (out / "schedule_demo_linear.md").read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| ")}
    # the demo's 20k images at batch 128: 156 steps per epoch
    assert set(rows) >= {"0 (random weights)", "468", "1404", "4680"}
    assert rows["0 (random weights)"][0] == "61.00 ± 1.00 (n=3)"
    assert rows["468"][:3] == ["70.00 ± 1.00 (n=3)", "69.00 ± 0.50 (n=3)", "-1.00 [-2.24, +0.24] (n=3)"]
    assert rows["4680"][2].startswith("+1.00 [") and rows["4680"][3] == "80.00 ± 0.00 (n=2)"
    assert rows["4680"][4].startswith("+1.50 [") and rows["468"][3] == "—"
    trend = (out / "schedule_trend_demo.md").read_text()
    line = next(line for line in trend.splitlines() if line.startswith("| linear probe, final epoch"))
    assert "468, 1404, 4680" in line and "| 9 |" in line
    d = paired_differences(result.collection.results[result.collection.results.probe == "linear"])
    expected = log_trend(d.x, d["diff"])
    assert len(d) == 9 and expected.slope == pytest.approx(np.polyfit(np.log10(d.x), d["diff"], 1)[0])
    assert expected.slope > 1.5  # the gains go -1 -> 0 -> +1 over one decade of steps
    assert expected.format() in line
    assert "Gain against training length (demo)" in result.pages


def test_schedule_arms_are_separate_cells_and_lengths_sort_numerically(schedule_report):
    result, out = schedule_report
    # the paper's Hallucinator and the warm-up variant are both "hallucinator" runs: the summary
    # must not average them into one cell, and no mixed-config warning may result
    summary = [line for line in (out / "schedule_demo_summary.md").read_text().splitlines()
               if line.startswith("| MoCoV2") and "| linear |" in line and "| 30 |" in line]
    by_arm = {line.split("|")[4].strip(): line for line in summary}
    assert set(by_arm) == {"baseline", "paper", "warmup"}
    assert "80.00 ± 0.00" in by_arm["warmup"] and "| 3 |" in by_arm["paper"]
    assert not result.collection.problems.reason.str.contains("differing configs").any()
    dyn = next(out.glob("schedule_demo_*_dynamics.md")).read_text()
    labels = [line.split("|")[1].strip() for line in dyn.splitlines() if line.startswith("| ") and "steps" in line]
    assert labels == [f"{arm}, {n} steps" for arm in ("baseline", "paper") for n in (468, 1404, 4680)] + [
        "warmup, 4680 steps"]


def test_schedule_cost_table_medians_per_length_and_arm(schedule_report):
    _, out = schedule_report
    table = (out / "schedule_cost_demo.md").read_text()
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[3:-1]]
            for line in table.splitlines() if line.startswith("| ")}
    # baseline epochs take (1 + seed) x epochs s each, 2 epochs logged: seeds 0-2 sum to 2, 4, 6 x epochs
    assert rows[("468", "MoCoV2")] == ["3", "12 [6, 18] (n=3)", "6.0 [3.0, 9.0] (n=6)", "—"]
    assert rows[("4680", "MoCoV2")][1] == "120 [60, 180] (n=3)"
    # the paper arm: 1 s epochs, the linear probe's seconds 10, 11, 12
    assert rows[("1404", "+ Hallucinator (paper)")] == ["3", "2 [2, 2] (n=3)", "1.0 [1.0, 1.0] (n=6)",
                                                         "11 [10, 12] (n=3)"]
    assert rows[("0 (random weights)", "random weights")] == ["3", "—", "—", "5 [5, 5] (n=3)"]
    assert rows[("4680", "+ Hallucinator (warmup)")][0] == "2"
    assert "cpu (test fixture)" in table


def test_schedule_figure_plots_every_pair(schedule_report):
    result, _ = schedule_report
    res = result.collection.results
    (title, fig), = schedule_figures(res, "CPU (test); 2026-11-25; commit 0123")
    axes = np.array(fig.axes).reshape(-1, 2)
    assert axes.shape == (2, 2)  # linear and linear_best probes, gain | accuracy
    gain_ax, acc_ax = axes[0]
    assert gain_ax.get_xscale() == "log" and acc_ax.get_xscale() == "log"
    dots = [c for c in gain_ax.collections if c.get_offsets().shape[0] and c.get_label().endswith("per seed")]
    assert sorted(c.get_offsets().shape[0] for c in dots) == [2, 9]  # warmup pairs, paper pairs
    assert "commit 0123" in fig._suptitle.get_text()
    assert title == "Gain against training length (demo)"
