"""The training-dynamics figure, the collapse warning and the stabilise table, on hand-made runs."""
from __future__ import annotations

import json

import pytest
from reports_fixtures import make_run

from reports.aggregate import collapse_of, collect
from reports.build import build_suite
from reports.dynamics import dynamics_figures, dynamics_tables


def _steps(run, cos_last: float, hal: bool) -> None:
    recs = []
    for i, step in enumerate((0, 10, 20)):
        recs.append({"step": step, "epoch": 0, "lr": 0.5, "loss": 5.0, "q_norm": 2.0, "k_norm": 1.0,
                     "q_hat_norm": (0.5, 50.0, 5.0)[i] if hal else None, "sim_qk": 0.5, "sim_qhat_k": 0.1 if hal else None,
                     "q_pairwise_cos": 0.3 if step < 20 else cos_last, "q_hat_pairwise_cos": 0.99 if hal else None,
                     "q_erank": (20.0, 12.0, 16.0)[i], "lambda": 0.05 if hal else None, "extra_weight": 1.0 if hal else None,
                     "grad_norm_pair": 1.0 if hal else None, "grad_norm_extra": 27.0 if hal else None,
                     "grad_share_extra": (27 / 28, 0.1, 0.4)[i] if hal else None})
    (run / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def _stabilise_root(tmp_path):
    root = tmp_path / "runs"
    top1 = {"baseline": (70.0, 71.0, 72.0), "paper": (68.0, 68.5, 70.0), "residual": (71.0, 72.5, 72.0)}
    for level, values in top1.items():
        for seed, v in enumerate(values):
            extra = {} if level == "baseline" else {"hallucinator": True, "hallucinator_preset": level}
            run = make_run(root, f"{level}-s{seed}", suite="stabilise", row=level, seed=seed, top1=v,
                           dataset="fashion_mnist", **extra)
            _steps(run, 0.97 if level == "paper" else 0.4, level != "baseline")
    return root


def test_collapse_known_answers(tmp_path):
    run = make_run(tmp_path, "r", top1=50.0)
    assert collapse_of(run, {}) == ""                                      # G2 0.25, no steps file
    _steps(run, 0.97, hal=True)
    assert collapse_of(run, {}) == "mean pairwise cosine = 0.9700 (last step)"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1]) | {"g2": 1.0}
    (run / "metrics.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    assert collapse_of(run, {}).startswith("G2 = 1.0000 (last epoch)")


def test_collapsed_runs_are_flagged_on_the_problems_page(tmp_path):
    coll = collect(_stabilise_root(tmp_path), suite="stabilise")
    flagged = coll.problems[coll.problems.reason.str.contains("collapsed")]
    assert sorted(flagged.run_dir.map(lambda p: p.split("/")[-1])) == ["paper-s0", "paper-s1", "paper-s2"]
    assert not flagged.excluded.any()


def test_dynamics_figure_has_one_line_per_level(tmp_path):
    coll = collect(_stabilise_root(tmp_path), suite="stabilise")
    figs = dynamics_figures(coll.runs, "stabilise")
    assert len(figs) == 1 and figs[0][0].startswith("Training dynamics")
    axes = figs[0][1].axes
    assert len(axes) == 6
    labels = [l.get_label() for l in axes[0].lines if not l.get_label().startswith("_")]
    assert labels == ["baseline", "paper", "residual"]
    cos_panel = axes[2]
    paper_mean = [l for l in cos_panel.lines if l.get_label() == "paper"][0]
    assert list(paper_mean.get_ydata()) == pytest.approx([0.3, 0.3, 0.97])


def test_stabilise_table_has_gains_vs_baseline_and_vs_paper(tmp_path):
    root = _stabilise_root(tmp_path)
    for seed, v in enumerate((70.5, 71.0, 72.5)):  # sorts before "paper": the controls must still lead
        _steps(make_run(root, f"normalized-s{seed}", suite="stabilise", row="normalized", seed=seed, top1=v,
                        dataset="fashion_mnist", hallucinator=True, hallucinator_preset="normalized"), 0.4, True)
    res = build_suite(root, tmp_path / "out", "stabilise")
    md = (tmp_path / "out" / "stabilise").glob("stabilise_*_linear.md")
    text = next(md).read_text()
    assert "Δ vs paper [95% CI]" in text and "Δ vs baseline [95% CI]" in text
    levels = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")][1:]
    assert levels[:4] == ["baseline", "paper", "normalized", "residual"], "the two controls lead, then the variants"
    row = [line for line in text.splitlines() if line.startswith("| residual")][0]
    # residual - baseline: +1, +1.5, 0 -> mean +0.83; residual - paper: +3, +4, +2 -> +3.00 [+0.52, +5.48]
    assert "+0.83" in row and "+3.00 [+0.52, +5.48]" in row
    assert any(t.startswith("Training dynamics") for t in res.pages)
    assert any(t.startswith("Step records") for t in res.pages)
    assert (tmp_path / "out" / "stabilise" / "stabilise_demo_fashion_mnist_mocov2_dynamics.md").exists()
    caption = text.split("\n\n")[0] if text.startswith("**") else text
    assert all(f"paper-s{i}: mean pairwise cosine = 0.9700" in caption for i in range(3))


def test_dynamics_table_known_answers(tmp_path):
    """Share 27/28, 0.1, 0.4 (first, min, last differ); ||q_hat|| 0.5, 50, 5 (max is not the last);
    effective rank 20, 12, 16; last cosine 0.97 (paper) or 0.4."""
    coll = collect(_stabilise_root(tmp_path), suite="stabilise")
    (table,) = dynamics_tables(coll.runs, "stabilise")
    rows = {r["variant"]: r for r in table.frame.to_dict("records")}
    assert list(rows) == ["baseline", "paper", "residual"]
    assert rows["baseline"]["extra pair's gradient share: first → min → last"] == "—"
    assert rows["baseline"]["max ‖q̂‖"] == "—"
    assert rows["paper"]["extra pair's gradient share: first → min → last"] == "0.964 → 0.100 → 0.400"
    assert rows["paper"]["max ‖q̂‖"] == "50"
    assert rows["paper"]["last pairwise cosine of q (per seed)"] == "0.97/0.97/0.97"
    assert rows["residual"]["last pairwise cosine of q (per seed)"] == "0.40/0.40/0.40"
    assert rows["baseline"]["last effective rank of q (per seed)"] == "16.00/16.00/16.00"
    assert rows["paper"]["seeds"] == "0,1,2"
    assert "records every 10 steps" in table.caption and "step 20" in table.caption


def test_dynamics_table_needs_a_hallucinator_run(tmp_path):
    root = tmp_path / "runs"
    for seed in range(2):
        _steps(make_run(root, f"baseline-s{seed}", suite="stabilise", row="baseline", seed=seed, top1=70.0,
                        dataset="fashion_mnist"), 0.4, hal=False)
    assert dynamics_tables(collect(root, suite="stabilise").runs, "stabilise") == []


def test_sparse_step_records_say_why_and_hats_are_drawn(tmp_path):
    root = _stabilise_root(tmp_path)
    dense = dynamics_figures(collect(root, suite="stabilise").runs, "stabilise")[0][1]
    assert "ONLY" not in dense._suptitle.get_text()
    titles = [ax.get_title() for ax in dense.axes]
    assert r"$S(\hat{q}, k)$  (Eq 5)" in titles and r"$S(q, k)$  (Eq 5)" in titles  # the hat is mathtext
    for run in (root / "stabilise" / "demo").iterdir():  # one record per run, as a 32-step smoke run at diag_every=50
        first = (run / "steps.jsonl").read_text().splitlines()[0]
        (run / "steps.jsonl").write_text(first + "\n")
    sparse = dynamics_figures(collect(root, suite="stabilise").runs, "stabilise")[0][1]
    assert "ONLY 1 record(s)" in sparse._suptitle.get_text() and "diag_every" in sparse._suptitle.get_text()


def test_runs_of_several_lengths_are_not_averaged_together(tmp_path):
    root = tmp_path / "runs"
    for epochs in (3, 9):
        for row, hal in (("baseline", False), ("paper", True)):
            run = make_run(root, f"x{epochs // 3}-{row}-s0", suite="schedule", row=row, hallucinator=hal,
                           epochs=epochs, top1=70.0)
            _steps(run, 0.4, hal)
    fig = dynamics_figures(collect(root, suite="schedule").runs, "schedule")[0][1]
    labels = set(fig.axes[0].get_legend_handles_labels()[1])
    assert labels == {"baseline, 468 steps", "baseline, 1404 steps", "paper, 468 steps", "paper, 1404 steps"}
