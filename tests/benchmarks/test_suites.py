"""Suite definitions: every run resolves to a valid config; names are unique; profiles refuse what they cannot do."""
import pytest

from benchmarks.run import commands
from benchmarks.suites import build_suite
from hallucinator.presets import load_config

SUITES = ["table1", "table3", "table4", "table5", "table6", "fig4", "fig5", "stabilise"]


@pytest.mark.parametrize("suite", SUITES + ["table2"])
@pytest.mark.parametrize("profile", ["smoke", "demo", "paper"])
def test_every_run_has_a_valid_config(suite, profile, tmp_path):
    if suite == "table2" and profile != "paper":
        with pytest.raises(SystemExit, match="paper profile"):
            build_suite(suite, profile)
        return
    specs = build_suite(suite, profile, data_root="/data")
    assert len({s.name for s in specs}) == len(specs)
    for spec in specs:
        cfg = load_config(spec.preset, list(spec.overrides))
        assert cfg.profile == ("" if profile == "paper" else profile)
        first = commands(spec, suite, profile, tmp_path, gpus=0)[0]  # pretrain, or evaluate --baseline
        preset = first[first.index("--config") + 1]
        recorded = load_config(preset, [a for a in first if "=" in a and not a.startswith("--")])
        assert (recorded.suite, recorded.profile, recorded.row) == (suite, profile, spec.row)


@pytest.mark.parametrize("suite", ["table3", "table4", "table5", "table6"])
def test_ablation_rows_are_spelled_as_the_paper_levels(suite):
    """The recorded row labels meet the paper's numbers: every non-baseline row has a paper level."""
    from reports.paper import load_paper_numbers
    rows = {s.row for s in build_suite(suite, "demo")}
    assert "baseline" in rows and rows - {"baseline"} <= set(load_paper_numbers(suite).level)


def test_table1_demo_covers_methods_seeds_and_references():
    names = {s.name for s in build_suite("table1", "demo")}
    for m in ("mocov1", "mocov2", "simclr", "simsiam"):
        for seed in (0, 1, 2):
            assert {f"{m}-fashion_mnist-s{seed}", f"{m}-hal-fashion_mnist-s{seed}"} <= names
    assert {"random-init-fashion_mnist-s0", "raw-pixels-fashion_mnist"} <= names
    assert len(build_suite("table1", "paper", data_root="/d")) == 4 * 2 * 4


def test_table3_rows_switch_the_right_modules():
    specs = {s.name.rsplit("-s", 1)[0]: load_config(s.preset, list(s.overrides)) for s in build_suite("table3", "demo")}
    assert specs["baseline"].hallucinator is False and specs["baseline"].crop_p is None
    assert specs["cc"].crop_p == 0.5 and not specs["cc"].hallucinator
    assert specs["ae"].hallucinator and specs["ae"].hallucinator_layers == 0 and specs["ae"].crop_p is None
    assert specs["h"].beta_range == (0.0, 0.0)
    assert specs["cc+ae+h"].hallucinator and specs["cc+ae+h"].crop_p == 0.5


def test_paper_profile_needs_data_root():
    with pytest.raises(SystemExit, match="DATA_ROOT"):
        build_suite("table1", "paper")


def test_stabilise_demo_is_the_demo_recipe_per_variant_and_seed():
    """Each variant is the demo MoCoV2 recipe (no size overrides) with one change; random weights per seed."""
    specs = build_suite("stabilise", "demo")
    assert {s.row for s in specs} == {"baseline", "paper", "warmup", "residual", "normalized", "random-init"}
    assert len(specs) == 3 * 6
    demo = load_config("demo/mocov2-hal")
    for s in specs:
        cfg = load_config(s.preset, list(s.overrides))
        assert (cfg.width, cfg.batch_size, cfg.epochs, cfg.train_subset) == (demo.width, demo.batch_size, demo.epochs,
                                                                             demo.train_subset)
        assert cfg.hallucinator == (s.row not in ("baseline", "random-init"))
        assert cfg.hallucinator_preset == (s.row if s.row in ("warmup", "residual", "normalized") else "paper")
        assert bool(cfg.hallucinator_warmup_steps) == (s.row == "warmup")
