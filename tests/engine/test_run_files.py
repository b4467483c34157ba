"""The run directory against hostile use: one writer for `evaluate` as for `pretrain`, `--baseline`
only in a directory of its own, run-directory JSON that is not JSON named in one line (exit 3),
torn log lines kept for the reports to flag, and odd image files as named data errors (exit 3)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hallucinator import evaluate as evaluate_cli
from hallucinator import pretrain as pretrain_cli
from hallucinator import rundir
from hallucinator.presets import load_config
from hallucinator.training.run_lock import RunDirLock
from hallucinator.training.step_diagnostics import read_steps
from hallucinator.training.trainer import Trainer

from engine_support import ROOT, TINY, needs_fmnist, pretrain, write_png_folder

ARGS = ["--config", "smoke/mocov2", *TINY, "epochs=1", "knn_every=0", "eval_train_subset=256", "eval_test_subset=128"]


def _cfg(out, *extra):
    return load_config("smoke/mocov2", [*ARGS[2:], f"output_dir={out}", "run_name=r", *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    Trainer(_cfg(out), show_progress=False).fit()
    return out / "r"


@pytest.fixture()
def run(finished, tmp_path):
    """A private copy of a finished 1-epoch run."""
    return shutil.copytree(finished, tmp_path / "r")


def _snapshot(directory):
    """Every file's bytes but the lock's (an empty file that taking the directory may create)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and p.name != rundir.LOCK}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----- item 2: one writer per run directory for evaluate ------------------------------------------
@needs_fmnist
def test_a_second_evaluate_on_a_held_run_is_refused_and_changes_nothing(run, capsys):
    rundir.write_json(run / rundir.EVAL, {"status": "finished", "probes": {"knn": {"top1": 50.0}}})
    before = _snapshot(run)
    with RunDirLock(run):  # what a first evaluate (or pretrain) holds while it writes
        assert evaluate_cli.main([str(run), "--probes", "fast_linear_1k"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error:") and "in use by another process" in line
    assert _snapshot(run) == before


@needs_fmnist
def test_evaluate_keeps_a_probe_that_reached_eval_json_after_it_started(run, monkeypatch):
    """The write merges with the file as it is then, not as it was read at the start."""
    knn = evaluate_cli.knn_top1

    def knn_while_another_probe_lands(*args, **kwargs):
        rundir.write_json(run / rundir.EVAL, {"status": "finished", "probes": {"fast_linear_1k": {"top1": 42.0}}})
        return knn(*args, **kwargs)
    monkeypatch.setattr(evaluate_cli, "knn_top1", knn_while_another_probe_lands)
    assert evaluate_cli.main([str(run), "--probes", "knn"]) == 0
    probes = json.loads((run / rundir.EVAL).read_text())["probes"]
    assert probes["fast_linear_1k"] == {"top1": 42.0} and "top1" in probes["knn"]


@needs_fmnist
@pytest.mark.slow
def test_two_concurrent_evaluates_lose_no_probe(run):
    cmd = [sys.executable, "-m", "hallucinator.evaluate", str(run), "--probes"]
    procs = {p: subprocess.Popen([*cmd, p], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in ("knn", "fast_linear_1k")}
    results = {p: (proc.wait(300), proc.stderr.read()) for p, proc in procs.items()}
    probes = json.loads((run / rundir.EVAL).read_text())["probes"]
    for probe, (code, err) in results.items():
        if code == 0:
            assert probe in probes  # every evaluate that says it succeeded kept its result
        else:
            assert code == 1 and "in use by another process" in _one_line(err)
    assert any(code == 0 for code, _ in results.values())


# ----- item 3: --baseline only into a directory of its own ------------------------------------------
@needs_fmnist
@pytest.mark.parametrize("existing", ["pretrain", "raw-pixels", "random-init-seed-1"])
def test_baseline_refuses_a_directory_holding_another_run_and_changes_nothing(run, capsys, existing):
    if existing != "pretrain":  # a reference encoder of another kind, or of another config
        shutil.rmtree(run)
        kind = existing.removesuffix("-seed-1")
        evaluate_cli._write_baseline_run(run, _cfg(run.parent, "seed=1"), kind)
    before = _snapshot(run)
    code = evaluate_cli.main([str(run), "--baseline", "random-init", "--config", "smoke/mocov2", "--probes", "knn",
                              *TINY])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("config error:") and str(run) in line
    assert ("different configuration" in line) if existing == "random-init-seed-1" else (f"holds a {existing} run" in line)
    assert _snapshot(run) == before


@needs_fmnist
def test_baseline_may_add_probes_to_its_own_directory(tmp_path):
    args = [str(tmp_path / "rand"), "--baseline", "random-init", "--config", "smoke/mocov2", *TINY,
            "eval_train_subset=256", "eval_test_subset=128", "--probes"]
    assert evaluate_cli.main([*args, "knn"]) == 0
    assert evaluate_cli.main([*args, "fast_linear", "row=random-init"]) == 0  # a non-defining key may differ
    assert set(json.loads((tmp_path / "rand" / rundir.EVAL).read_text())["probes"]) == {"knn", "fast_linear"}


# ----- item 5: a run directory's JSON that is not JSON --------------------------------------------
BAD_JSON = {"torn": b'{"status": "runn', "binary": b"\xff\xfe\x00\x81garbage", "not-an-object": b"[1, 2]"}


@needs_fmnist
@pytest.mark.parametrize("content", BAD_JSON.values(), ids=BAD_JSON.keys())
@pytest.mark.parametrize("name,command", [(rundir.RUN, "pretrain"), (rundir.CONFIG, "evaluate"),
                                          (rundir.EVAL, "evaluate"), (rundir.RUN, "evaluate --baseline")])
def test_a_json_file_that_is_not_json_is_one_data_error_line_naming_it(run, capsys, name, command, content):
    (run / name).write_bytes(content)
    before = _snapshot(run)
    if command == "pretrain":  # re-running resumes the run: it reads run.json
        code = pretrain_cli.main([*ARGS, f"output_dir={run.parent}", "run_name=r"])
    elif command == "evaluate":
        code = evaluate_cli.main([str(run), "--probes", "knn"])
    else:
        code = evaluate_cli.main([str(run), "--baseline", "random-init", "--config", "smoke/mocov2", *TINY])
    line = _one_line(capsys.readouterr().err)
    assert code == 3 and line.startswith("data error:") and str(run / name) in line
    assert _snapshot(run) == before


# ----- item 4: torn log lines are kept ----------------------------------------------------------------
def test_keep_jsonl_drops_later_records_and_keeps_torn_lines(tmp_path):
    log = tmp_path / "steps.jsonl"
    log.write_bytes(b'{"step": 1}\n{"step": 2, "lo\n{"step": 2}\n\xff\xfe\n{"step": 3}\n{"step": 4, "l')
    rundir.keep_jsonl(log, "step", 2)
    assert log.read_bytes() == b'{"step": 1}\n{"step": 2, "lo\n{"step": 2}\n\xff\xfe\n{"step": 4, "l\n'
    (tmp_path / "r").mkdir()
    log.rename(tmp_path / "r" / "steps.jsonl")
    assert read_steps(tmp_path / "r") == [{"step": 1}, {"step": 2}]  # the record after a torn line is read


@needs_fmnist
def test_rerunning_a_finished_run_keeps_its_torn_last_metrics_line_for_the_report(run):
    from reports.aggregate import read_metrics
    line = (run / rundir.METRICS).read_text()
    torn = line[: len(line) // 2]
    (run / rundir.METRICS).write_text(torn)  # the epoch's line, cut by a full disk
    Trainer(_cfg(run.parent), show_progress=False).fit()
    assert json.loads((run / rundir.RUN).read_text())["status"] == "finished"
    assert (run / rundir.METRICS).read_text() == torn + "\n"
    _, warnings = read_metrics(run / rundir.METRICS)
    assert warnings == ["metrics.jsonl: last line truncated (ignored)"]


# ----- item 6 at the command line: odd image files are data errors (exit 3) naming the file -----------
@pytest.mark.slow
@pytest.mark.parametrize("odd", ["animated-gif", "self-symlink"])
def test_odd_image_file_stops_pretraining_with_exit_3_naming_it(tmp_path, odd):
    write_png_folder(tmp_path / "data", per_class=20)
    bad = tmp_path / "data" / "train" / "n01440764" / "000.png"
    bad.unlink()
    if odd == "animated-gif":
        frames = [Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)) for i in range(3)]
        bad = bad.with_suffix(".gif")
        frames[0].save(bad, save_all=True, append_images=frames[1:], loop=0)
    else:
        os.symlink(bad.name, bad)
    args = ["--config", "smoke/mocov2", "dataset=imagenet", f"data_root={tmp_path / 'data'}", "in_channels=3",
            "image_size=16", "augment=small", "width=4", "batch_size=8", "train_subset=40", "epochs=1", "knn_every=0",
            "threads=1", "augment_on=cpu", "num_workers=0", "metrics_batch=8", "queue_size=64",
            f"output_dir={tmp_path}"]
    res = pretrain(*args, "on_corrupt=error", "run_name=strict")
    line = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "data error: Corrupt or unreadable image file:" in line and str(bad) in line
    res = pretrain(*args, "on_corrupt=skip", "run_name=skip")
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((tmp_path / "skip" / rundir.METRICS).read_text())["skipped_images"] == 1
