"""The run directory as ``hallucinator.rundir`` defines it: files, keys, logs, and resuming rules."""
import json
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hallucinator import rundir
from hallucinator.config import from_dict, to_dict
from hallucinator.presets import load_config
from hallucinator import checkpoint
from hallucinator.training.trainer import Trainer

from engine_support import ROOT, TINY, needs_fmnist, pretrain


def test_write_json_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "run.json"
    rundir.write_json(path, {"status": "running"})
    with pytest.raises(TypeError):
        rundir.write_json(path, {"status": object()})  # not serialisable: the old file stays
    assert json.loads(path.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_metric_record_has_exactly_the_declared_keys():
    assert list(rundir.metric_record({"epoch": 1, "loss": 2.0})) == list(rundir.METRIC_KEYS)
    with pytest.raises(KeyError, match="lambda"):
        rundir.metric_record({"epoch": 1, "lambda": 0.1})


def test_one_list_of_keys_that_do_not_define_a_run(tmp_path):
    """Resuming (checkpoint) and grouping seeds (reports) ignore the same keys."""
    from reports.aggregate import config_id
    a = to_dict(load_config("smoke/mocov2"))
    b = {**a, "row": "other", "output_dir": "elsewhere", "threads": 7, "tensorboard": False}
    checkpoint.check_compatible(a, b, tmp_path / "c.pt")  # no error
    assert config_id(a) == config_id(b) == config_id({**a, "seed": 3})
    c = {**a, "epochs": a["epochs"] + 1}
    assert config_id(c) != config_id(a)
    with pytest.raises(checkpoint.ConfigMismatchError) as err:
        checkpoint.check_compatible(a, c, tmp_path / "c.pt")
    assert "\n" not in str(err.value) and f"epochs: checkpoint {a['epochs']}, now {a['epochs'] + 1}" in str(err.value)


@needs_fmnist
def test_training_writes_the_run_directory_and_refuses_to_extend_it(tmp_path, capsys):
    common = [*TINY, "knn_every=0", f"output_dir={tmp_path}", "run_name=r", "suite=fig4", "row=mocov2-hal"]
    cfg = load_config("smoke/mocov2-hal", [*common, "epochs=1", "diag_every=3"])
    Trainer(cfg, show_progress=False).fit()
    out = capsys.readouterr().out
    run = tmp_path / "r"
    assert out.splitlines()[0].startswith(f"run {run} on CPU")
    assert f"run {run} on cpu: finished at epoch 1/1\n" in out  # no "step 0" after a whole epoch
    assert "S(q_hat,k)" in out and " lr " in out
    assert from_dict(json.loads((run / rundir.CONFIG).read_text())).row == "mocov2-hal"
    info = json.loads((run / rundir.RUN).read_text())
    # the CPU is named with the kernels torch uses on it: CPU results differ between machines by these
    assert info["device_name"].startswith("CPU: ") and torch.backends.cpu.get_cpu_capability() in info["device_name"]
    assert info["status"] == "finished" and info["kind"] == rundir.KIND_PRETRAIN and set(info) <= set(rundir.RUN_KEYS) | set(rundir.ROW_KEYS)
    # the device settings as requested and as used, in run.json, the banner and (resolved) config.json
    assert info["settings"]["precision"] == {"requested": "auto", "used": "fp32"}
    assert info["settings"]["augment_on"] == {"requested": "device", "used": "device"}
    assert "precision fp32 (auto), channels_last False (auto)" in out.splitlines()[0]
    assert json.loads((run / rundir.CONFIG).read_text())["channels_last"] is False
    [line] = (run / rundir.METRICS).read_text().splitlines()
    assert list(json.loads(line)) == list(rundir.METRIC_KEYS)
    events = EventAccumulator(str(run / rundir.TENSORBOARD))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "similarity/S(q,k)", "similarity/S(q_hat,k)", "uniformity/G2"} <= scalars
    steps = [json.loads(line) for line in (run / rundir.STEPS).read_text().splitlines()]
    assert steps and {"steps/grad_share_extra", "steps/q_erank", "steps/sim_qhat_k"} <= scalars  # step records too
    assert [e.step for e in events.Scalars("steps/q_erank")] == [r["step"] for r in steps]
    res = pretrain("--config", "smoke/mocov2-hal", *common, "epochs=2")
    assert res.returncode == 2 and res.stderr.startswith("config error:") and len(res.stderr.strip().splitlines()) == 1
    assert "epochs: checkpoint 1, now 2" in res.stderr and "Traceback" not in res.stderr


@needs_fmnist
def test_baseline_writes_a_config_its_own_loader_accepts(tmp_path):
    run = tmp_path / "random"
    res = subprocess.run([sys.executable, "-m", "hallucinator.evaluate", str(run), "--baseline", "random-init",
                          "--config", "smoke/mocov2", "--probes", "knn", *TINY, "eval_train_subset=256",
                          "eval_test_subset=128", "row=random-init"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    cfg = from_dict(json.loads((run / rundir.CONFIG).read_text()))  # loads: no invented method/backbone names
    assert cfg.method == "mocov2" and cfg.row == "random-init"
    info = json.loads((run / rundir.RUN).read_text())
    assert info["kind"] == "random-init" and info["wall_time_s"] is None
    probe = json.loads((run / rundir.EVAL).read_text())["probes"]["knn"]
    assert (probe["n_train"], probe["n_test"]) == (256, 128)


def test_the_optimizer_key_chooses_the_optimiser(monkeypatch):
    """Config key ``optimizer`` is read (not a dead name): its allowed values are the built ones."""
    import typing

    import torch

    from hallucinator import config
    from hallucinator.training import device_settings, step
    assert typing.get_args(config.Optimizer) == tuple(step.OPTIMIZERS)
    seen = []
    monkeypatch.setitem(step.OPTIMIZERS, "sgd", lambda groups, cfg: seen.append(cfg.optimizer) or torch.optim.SGD(groups, lr=cfg.lr))
    cfg = device_settings.resolve(load_config("smoke/mocov2", ["width=4", "queue_size=64"]), torch.device("cpu"))
    assert isinstance(step.build_step(cfg, torch.device("cpu")).optimizer, torch.optim.SGD) and seen == ["sgd"]


def test_run_statuses_are_the_ones_written_and_read(tmp_path):
    """A run.json status outside ``rundir.RUN_STATUSES`` is refused by the writer's check and named by the reports."""
    from reports.aggregate import RunProblem, _status
    (tmp_path / rundir.RUN).write_text(json.dumps({"status": "done"}))
    with pytest.raises(RunProblem, match="unknown run.json status 'done' \\(one of running, finished, interrupted, failed\\)"):
        _status(tmp_path)
    trainer = Trainer.__new__(Trainer)  # only the status check, no run
    trainer.is_main = False
    with pytest.raises(ValueError, match="not one of"):
        trainer._write_run_json(status="done")
    trainer._write_run_json(status="finished")  # a known status passes (rank != 0 writes nothing)
