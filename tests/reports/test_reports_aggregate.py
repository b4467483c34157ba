"""Run directories -> results / problems: only finished, evaluated runs enter the numbers."""
import json


from reports_fixtures import make_run, make_transfer

from reports.aggregate import collect, read_metrics
from reports.suites import level_of


def _reason(coll, name):
    hit = coll.problems[coll.problems.run_dir.str.endswith(name)]
    assert len(hit) == 1, (name, coll.problems)
    return hit.iloc[0]


def test_only_finished_runs_in_numbers(runs_root):
    coll = collect(runs_root, suite="table1")
    names = set(coll.results.run_name)
    assert names == {f"mocov2_{a}_s{s}" for a in ("base", "hall") for s in range(3)} | {
        "simclr_base_s0", "simclr_hall_s5"}
    assert not {"corrupt_run", "failed_run", "running_run"} & set(coll.runs.run_name)
    assert "corrupt config.json" in _reason(coll, "corrupt_run").reason
    assert _reason(coll, "failed_run").reason == "failed: RuntimeError: loss is NaN"
    running = _reason(coll, "running_run")
    assert "unfinished" in running.reason and "no eval.json" in running.reason
    assert coll.problems.excluded.sum() == 3


def test_truncated_metrics_is_flagged_but_kept(runs_root):
    coll = collect(runs_root, suite="table1")
    warn = _reason(coll, "simclr_base_s0")
    assert not warn.excluded and "truncated" in warn.reason
    frame, warnings = read_metrics(runs_root / "table1/demo/simclr_base_s0/metrics.jsonl")
    assert len(frame) == 5 and warnings == ["metrics.jsonl: last line truncated (ignored)"]


def test_probe_rows_and_descriptors(runs_root):
    coll = collect(runs_root, suite="table1")
    r = coll.results
    row = r[(r.run_name == "mocov2_hall_s1") & (r.probe == "linear")].iloc[0]
    assert row.top1 == 64.0 and row.variant == "hallucinator" and row.seed == 1
    best = r[(r.run_name == "mocov2_hall_s1") & (r.probe == "linear_best")].iloc[0]
    assert best.top1 == 64.5
    assert set(r.probe) == {"linear", "linear_best", "knn"}


def test_finished_without_eval_and_bad_probe(tmp_path):
    make_run(tmp_path, "no_eval", top1=None)
    run = make_run(tmp_path, "bad_probe", seed=1)
    ev = json.loads((run / "eval.json").read_text())
    ev["probes"]["knn"] = {"top1": 250.0, "k": 20}
    (run / "eval.json").write_text(json.dumps(ev))
    bad_eval = make_run(tmp_path, "bad_eval", seed=2)
    (bad_eval / "eval.json").write_text('{"status": "finished", "probes": {"linear": {"top1": null}}}')
    coll = collect(tmp_path)
    assert "no eval.json" in _reason(coll, "no_eval").reason
    assert "no usable probe" in _reason(coll, "bad_eval").reason
    warn = _reason(coll, "bad_probe")
    assert not warn.excluded and "'knn'" in warn.reason
    assert set(coll.results.probe) == {"linear", "linear_best"}


def test_duplicates_and_filters(tmp_path):
    make_run(tmp_path, "a", seed=0, top1=50.0)
    make_run(tmp_path, "b", seed=0, top1=52.0)  # same recipe and seed: duplicate
    make_run(tmp_path, "c", seed=0, top1=40.0, profile="smoke")
    make_run(tmp_path, "d", seed=0, top1=40.0, suite="table2", dataset="in200")
    coll = collect(tmp_path, suite="table1", profile="demo")
    assert len(coll.runs) == 1
    assert "duplicate" in coll.problems[coll.problems.excluded].reason.iloc[0]
    assert set(collect(tmp_path, suite="table2").runs.run_name) == {"d"}


def test_transfer_records(tmp_path):
    make_transfer(tmp_path, "voc0", "voc", "mocov2", True, 0, 50.0)
    make_transfer(tmp_path, "coco0", "coco", "mocov2", False, 0, 35.0)
    broken = make_transfer(tmp_path, "coco1", "coco", "mocov2", False, 1, 35.0)
    res = json.loads((broken / "results.json").read_text())
    del res["segm"]
    (broken / "results.json").write_text(json.dumps(res))
    coll = collect(tmp_path, suite="table7")
    assert sorted(coll.transfer.run_name) == ["coco0", "voc0"]
    assert coll.transfer.set_index("run_name").loc["coco0", "segm_AP"] == 33.0
    assert "segm" in _reason(coll, "coco1").reason


def test_levels_are_the_recorded_row_labels(tmp_path):
    """Ablation rows come from config.json's ``row`` (written by benchmarks.run), not from guessing."""
    make_run(tmp_path, "base", suite="table5", row="baseline")
    make_run(tmp_path, "b01", suite="table5", hallucinator=True, beta_range=[0.0, 1.0], row="(0, 1)")
    make_run(tmp_path, "g", row="mocov2")
    coll = collect(tmp_path)
    levels = dict(zip(coll.runs.run_name, coll.runs.level))
    assert levels == {"base": "baseline", "b01": "(0, 1)", "g": ""}
    assert level_of("table3", "cc+ae+h") == "cc+ae+h" and level_of("fig4", "mocov2-hal") == ""


def test_run_without_row_label_is_excluded_with_the_reason(tmp_path):
    run = make_run(tmp_path, "old")
    cfg = json.loads((run / "config.json").read_text())
    del cfg["row"]
    (run / "config.json").write_text(json.dumps(cfg))
    coll = collect(tmp_path)
    assert coll.runs.empty and "row label" in _reason(coll, "old").reason


def test_interrupted_run_is_excluded(tmp_path):
    make_run(tmp_path, "stopped", status="interrupted", top1=None)
    coll = collect(tmp_path)
    assert coll.runs.empty and "interrupted" in _reason(coll, "stopped").reason


def test_duplicate_epochs_are_flagged_and_the_last_line_kept(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"epoch": 1, "loss": 5.0}, {"epoch": 1, "loss": 4.0}, {"epoch": 2, "loss": 3.0}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    frame, warnings = read_metrics(path)
    assert list(frame["epoch"]) == [1, 2] and list(frame["loss"]) == [4.0, 3.0]
    assert warnings == ["metrics.jsonl: duplicate epoch(s) [1] (the last line of each is kept)"]


def test_wrongly_typed_values_go_to_the_problems_page_not_a_crash(tmp_path):
    good = make_run(tmp_path, "good", top1=70.0)
    bad = make_run(tmp_path, "bad", top1=70.0)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "seed": "abc"}))
    coll = collect(tmp_path)
    assert list(coll.runs.run_name) == [good.name]
    [reason] = coll.problems[coll.problems.run_dir == str(bad)].reason
    assert reason.startswith("wrongly typed or missing value (ValueError")


def test_config_id_ignores_keys_added_later_at_their_default():
    """A run written before a config key existed and one written after (key at its default) are one recipe."""
    from reports.aggregate import DEFAULTS, config_id
    from reports_fixtures import engine_config
    new = engine_config("mocov2", suite="schedule", row="baseline")
    old = {k: v for k, v in new.items() if k not in ("lr_milestones", "lr_decay", "linear_drop_last", "lambda_per_rank")}
    assert len(old) < len(new) and all(new[k] == DEFAULTS[k] for k in set(new) - set(old))
    assert config_id(old) == config_id(new)
    assert config_id(new) != config_id({**new, "lr_decay": 0.5})          # a changed value is a changed recipe
    assert config_id(new) == config_id({**new, "seed": 7})                 # the seed is not part of the recipe
