"""benchmarks.run --override / --linear-epochs: sizes change, the suite's own rows do not."""
import pytest

from benchmarks.run import check_overrides, commands, main
from benchmarks.suites import build_suite
from hallucinator.presets import load_config


def _specs(suite="table4"):
    return build_suite(suite, "paper", data_root="/data")


def test_overrides_follow_each_runs_own_keys_and_reach_pretraining_and_evaluation(tmp_path):
    specs = _specs()
    ov = check_overrides(specs, ["epochs=1", "width=4"])
    for spec in specs:
        pre, ev = commands(spec, "table4", "paper", tmp_path, gpus=2, overrides=ov, eval_args=("--linear-epochs", "2"))
        assert "torch.distributed.run" in pre[2] and "--nproc_per_node=2" in pre
        keys = [a for a in pre if "=" in a and not a.startswith("--")]
        cfg = load_config(spec.preset, keys)
        own = load_config(spec.preset, list(spec.overrides))
        assert (cfg.epochs, cfg.width) == (1, 4)
        assert (cfg.crop_p, cfg.hallucinator, cfg.batch_size) == (own.crop_p, own.hallucinator, own.batch_size)
        assert ev[-2:] == ["--linear-epochs", "2"]


def test_baseline_commands_carry_the_overrides(tmp_path):
    spec = next(s for s in build_suite("table1", "demo") if s.baseline == "random-init")
    (cmd,) = commands(spec, "table1", "demo", tmp_path, gpus=0, overrides=("width=2",),
                      eval_args=("--linear-batch", "8"))
    assert "width=2" in cmd and cmd[cmd.index("--linear-batch") + 1] == "8"


@pytest.mark.parametrize("bad, says", [("crop_p=0.3", "suite itself sets 'crop_p'"),
                                       ("output_dir=/x", "suite itself sets 'output_dir'"),
                                       ("epochs=zero", "epochs expects an integer"),
                                       ("no_such_key=1", "unknown config key")])
def test_bad_overrides_are_one_line_errors(bad, says):
    with pytest.raises(SystemExit, match=says):
        check_overrides(_specs(), [bad])


def test_dry_run_prints_the_overridden_commands(capsys):
    assert main(["--suite", "fig5", "--profile", "paper", "--data-root", "/d", "--gpus", "2", "--dry-run",
                 "--override", "epochs=1", "--linear-epochs", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all("epochs=1" in line for line in lines if "hallucinator.pretrain" in line)
    assert any("--linear-epochs 3" in line for line in lines)
