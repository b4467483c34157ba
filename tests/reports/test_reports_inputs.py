"""reports.build on hostile inputs and a full disk: a bad run goes to the Problems page, and no
output is ever left truncated."""
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import json

import numpy as np
import pandas as pd
import pytest
from reports_fixtures import make_run

from hallucinator import rundir
from reports.aggregate import collect, read_steps
from reports.build import build_suite, main
from reports.dynamics import dynamics_figures, dynamics_tables
from reports.figures import uniformity_figures

ROOT = Path(__file__).resolve().parents[2]


def _fig5_runs(root: Path) -> Path:
    make_run(root, "b0", suite="fig5", features=True)
    make_run(root, "h0", suite="fig5", features=True, hallucinator=True)
    return root


def _file_size_limit(limit: int):
    """A child whose writes past ``limit`` bytes in one file fail (EFBIG), as a disk that fills up."""
    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_writes


@pytest.mark.slow  # two builds, one in a fresh interpreter: ~30 s on 2 cores
def test_full_disk_leaves_the_previous_pdf_and_png_whole(tmp_path):
    runs, out = _fig5_runs(tmp_path / "runs"), tmp_path / "out"
    build_suite(runs, out, "fig5")
    before = {p.name: p.read_bytes() for p in (out / "fig5").iterdir()}
    big = sorted(name for name, data in before.items() if len(data) > 30_000)
    assert "fig5.pdf" in big and "figure_01.png" in big  # the files the full disk truncated
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "ssl"), str(ROOT)])}
    res = subprocess.run([sys.executable, "-m", "reports.build", "--suite", "fig5", "--runs", str(runs),
                          "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         preexec_fn=_file_size_limit(30_000))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: cannot write"), res.stderr
    after = {p.name: p.read_bytes() for p in (out / "fig5").iterdir()}
    assert set(after) == set(before)  # no temporary file left behind
    for name in big:
        assert after[name] == before[name], f"{name} was overwritten by a partial file"


class _OpensAFile:
    """Unpickling this calls ``open(marker, "w")``: if the file appears, a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _huge_claim(path: Path) -> None:
    """An npz of ~1.5 MB whose .npy header claims a 200M x 2 float64 array (3.2 GB)."""
    import io
    import zipfile
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (200_000_000, 2)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("features.npy", header.getvalue() + bytes(1_500_000))


BAD_FEATURES = {
    "text": lambda p, m: p.write_text("features,labels\n0.1,0.2\n"),
    "empty": lambda p, m: p.write_bytes(b""),
    "pickle": lambda p, m: np.savez(p, features=np.array([_OpensAFile(m)] * 4, dtype=object)),
    "one_d": lambda p, m: np.savez(p, features=np.zeros(10), labels=np.zeros(10, dtype=int), g2=0.5),
    "no_key": lambda p, m: np.savez(p, embedding=np.zeros((10, 2))),
    "huge_claim": lambda p, m: _huge_claim(p),
    "nan": lambda p, m: np.savez(p, features=np.full((10, 2), np.nan)),
    "labels_mismatch": lambda p, m: np.savez(p, features=np.ones((10, 2)), labels=np.zeros(3, dtype=int)),
}


@pytest.mark.parametrize("kind", sorted(BAD_FEATURES))
def test_bad_features_2d_goes_to_problems_and_fig5_keeps_the_good_panel(tmp_path, kind):
    good = make_run(tmp_path, "good", suite="fig5", features=True, hallucinator=True, row="mocov2-hal")
    bad = make_run(tmp_path, "bad", suite="fig5", features=True, row="mocov2")
    marker = tmp_path / "pickle_ran"
    path = bad / "features_2d.npz"
    BAD_FEATURES[kind](path, marker)  # over the good file the fixture wrote (np.savez keeps a .npz name)
    coll = collect(tmp_path, suite="fig5")
    assert set(coll.runs.run_name) == {"good", "bad"}  # its probes still count; only its panel is gone
    [reason] = coll.problems[coll.problems.run_dir == str(bad)].reason
    assert "features_2d.npz" in reason and "no Fig 5 panel" in reason, reason
    [(_, fig)] = uniformity_figures(coll.runs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 1 and "seed" in titles[0]  # the good run's panel only
    assert not marker.exists()
    assert good.exists()


def _steps_record(step: int) -> dict:
    rec = {k: 0.5 for k in rundir.STEP_KEYS}
    rec.update(step=step, epoch=step // 10 + 1, q_norm=1.0, q_hat_norm=2.0)
    return rec


def test_garbage_steps_lines_are_skipped_and_listed_not_a_crash(tmp_path):
    run = make_run(tmp_path, "r", suite="fig4", hallucinator=True)
    good = [json.dumps(_steps_record(s)) for s in (0, 50, 100)]
    garbage = [
        '{"step": 150, "q_erank": ' + "9" * 400 + "}",  # an int too big for a float: the value is NaN
        '{"step": "abc", "q_norm": 1.0}',                 # a string step
        "42",                                             # a bare number
        '{"step": 1e999, "q_norm": 1.0}',                 # an infinite step
    ]
    data = ("\n".join(good[:2] + garbage + good[2:]) + "\n").encode() + b'\xff\xfe{"step": 7}\n'
    (run / rundir.STEPS).write_bytes(data)
    frame, warnings = read_steps(run / rundir.STEPS)
    assert list(frame.step) == [0, 50, 100, 150] and np.isnan(frame.q_erank.iloc[-1])
    assert len(warnings) == 4 and all(w.startswith("steps.jsonl: ") for w in warnings), warnings
    coll = collect(tmp_path, suite="fig4")
    reasons = " | ".join(coll.problems.reason)
    assert "steps.jsonl: line 4 has no numeric step" in reasons and "steps.jsonl: last line truncated" in reasons
    assert dynamics_figures(coll.runs, "fig4") and dynamics_tables(coll.runs, "fig4")


def test_steps_lines_lacking_keys_read_as_nan_not_a_crash(tmp_path):
    # valid JSON objects that carry only some keys (an older writer, a hand-trimmed file)
    run = make_run(tmp_path, "r", suite="fig4", hallucinator=True)
    (run / rundir.STEPS).write_text('{"step": 0, "grad_share_extra": 0.4}\n{"step": 10, "q_erank": 5}\n')
    frame, warnings = read_steps(run / rundir.STEPS)
    assert set(rundir.STEP_KEYS) <= set(frame.columns) and not warnings
    assert frame.q_hat_norm.isna().all() and list(frame.q_erank.isna()) == [True, False]
    coll = collect(tmp_path, suite="fig4")
    assert dynamics_figures(coll.runs, "fig4") and dynamics_tables(coll.runs, "fig4")


def test_build_with_every_kind_of_bad_input_finishes_and_lists_them(tmp_path, capsys):
    runs = tmp_path / "runs"
    make_run(runs, "good", suite="fig5", features=True, hallucinator=True, row="mocov2-hal")
    for kind in ("text", "pickle", "huge_claim"):
        bad = make_run(runs, kind, suite="fig5", features=True, row="mocov2", seed=len(kind))
        BAD_FEATURES[kind](bad / "features_2d.npz", tmp_path / "pickle_ran")
    (runs / "fig5" / "demo" / "good" / rundir.STEPS).write_bytes(
        (json.dumps(_steps_record(0)) + "\n" + '{"step": "x"}\n42\n').encode() + b"\xff\n")
    assert main(["--suite", "fig5", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    problems = pd.read_csv(tmp_path / "out" / "fig5" / "problems.csv")
    for kind in ("text", "pickle", "huge_claim"):
        assert problems[problems.run_dir.str.endswith(kind)].reason.str.contains("features_2d.npz").any(), kind
    assert problems.reason.str.contains("steps.jsonl").sum() == 3
    assert not (tmp_path / "pickle_ran").exists()


def test_inputs_over_their_size_cap_exclude_the_run_with_the_reason(tmp_path, monkeypatch):
    from reports import aggregate
    good = make_run(tmp_path, "good", suite="fig4", hallucinator=True)
    big_log = make_run(tmp_path, "big_log", suite="fig4", seed=1)
    big_json = make_run(tmp_path, "big_json", suite="fig4", seed=2)
    monkeypatch.setattr(aggregate, "MAX_LOG_BYTES", 4096)
    monkeypatch.setattr(aggregate, "MAX_JSON_BYTES", 4096)
    with open(big_log / rundir.METRICS, "a") as f:
        f.write((json.dumps({"epoch": 9, "loss": 1.0}) + "\n") * 200)
    eval_json = json.loads((big_json / rundir.EVAL).read_text())
    rundir.write_json(big_json / rundir.EVAL, {**eval_json, "padding": "x" * 5000})
    coll = collect(tmp_path, suite="fig4")
    assert list(coll.runs.run_name) == [good.name]
    reasons = dict(zip(coll.problems.run_dir, coll.problems.reason))
    assert reasons[str(big_log)].startswith("metrics.jsonl is ") and "over the 4096 a report reads" in reasons[str(big_log)]
    assert reasons[str(big_json)].startswith("eval.json is")


def test_a_run_written_into_its_profile_folder_does_not_hide_the_runs_beside_it(tmp_path):
    siblings = [make_run(tmp_path, f"s{seed}", suite="fig4", seed=seed) for seed in range(3)]
    profile_dir = siblings[0].parent  # what run_name=. wrote before run names were checked
    for name in ("config.json", "run.json", "eval.json", "metrics.jsonl"):
        (profile_dir / name).write_bytes((siblings[0] / name).read_bytes())
    (siblings[0] / "tensorboard").mkdir()
    (siblings[0] / "tensorboard" / "config.json").write_text("{}")  # never read as a run
    coll = collect(tmp_path, suite="fig4")
    found = set(coll.runs.run_dir) | set(coll.problems.run_dir)
    assert {str(s) for s in siblings} <= found and str(profile_dir) in found
    assert not any("tensorboard" in d for d in found)
