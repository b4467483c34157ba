"""Config parsing: presets, typed overrides, YAML files, --help."""
import pytest

from hallucinator.config import ConfigError, TrainConfig, apply_overrides
from hallucinator.presets import load_config
from hallucinator.presets import PRESETS
from hallucinator.pretrain import build_parser

from engine_support import pretrain


def test_every_paper_table_cell_has_a_preset():
    for m in ("mocov1", "mocov2", "simclr", "simsiam"):
        for tag in (m, f"{m}-hal"):
            for ds in ("cifar10", "cifar100", "tiny_imagenet", "stl10", "in200", "imagenet"):
                cfg = PRESETS[f"{tag}-{ds}"]
                assert cfg.method == m and cfg.hallucinator == tag.endswith("-hal")
                assert cfg.crop_p == (0.5 if cfg.hallucinator else None)
    assert PRESETS["mocov2-cifar10"].backbone == "resnet18_cifar" and PRESETS["mocov2-cifar10"].epochs == 500
    assert PRESETS["simsiam-imagenet"].backbone == "resnet50" and PRESETS["simsiam-imagenet"].epochs == 100


def test_overrides_are_typed():
    cfg = load_config("mocov2-cifar10", ["lr=1e-3", "epochs=3", "hallucinator=true", "beta_range=0,1", "crop_p=none"])
    assert (cfg.lr, cfg.epochs, cfg.hallucinator, cfg.beta_range, cfg.crop_p) == (1e-3, 3, True, (0.0, 1.0), None)


@pytest.mark.parametrize("override,message", [("epoch=3", "unknown config key"), ("epochs=three", "integer"),
                                              ("hallucinator=maybe", "true/false"), ("lr=-1", "lr must be"),
                                              ("precision=fp8", "precision"), ("beta_range=0.1", "2 comma")])
def test_bad_overrides_fail_naming_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("mocov2-cifar10", [override])


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        apply_overrides(TrainConfig(), {"learning_rate": 0.1})
    assert "valid keys" in str(e.value) and "lr" in str(e.value)


def test_yaml_file_with_preset(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("preset: simclr-hal-cifar100\nepochs: 7\nbatch_size: 256\n")
    cfg = load_config(str(f), ["seed=3"])
    assert (cfg.method, cfg.dataset, cfg.epochs, cfg.batch_size, cfg.seed) == ("simclr", "cifar100", 7, 256, 3)
    f.write_text("epochs: 7\nfoo: 1\n")
    with pytest.raises(ConfigError, match="foo"):
        load_config(str(f))


def test_help_lists_presets_and_keys():
    text = build_parser().format_help()
    assert "mocov2-hal-cifar10" in text and "demo/simsiam-hal" in text
    assert "beta_range" in text and "default: 0.5" in text


def test_cli_rejects_bad_key_before_any_work():
    res = pretrain("--config", "smoke/mocov2", "epoch=1")
    assert res.returncode == 2 and "unknown config key" in res.stderr and "valid keys" in res.stderr


def _alias_bomb() -> str:
    """A ~330-byte "billion laughs" (the issue's was 325): nine levels of nine aliases, 9^9 leaves once expanded."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(lines[:-1]) + "\nbeta_range: [" + ",".join(["*h"] * 9) + "]\n"


def test_yaml_alias_bomb_is_refused_at_once_naming_the_file(tmp_path):
    f = tmp_path / "bomb.yaml"
    f.write_text(_alias_bomb())
    assert len(f.read_bytes()) < 400
    res = pretrain("--config", str(f), f"output_dir={tmp_path / 'out'}", timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith("config error:") and str(f) in lines[0] and "aliases" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["seed: &s 3\nknn_k: *s\n", "beta_range: &r [0, 1]\n", "epochs: 3\nepochs: 5\n",
                                  "preset: smoke/mocov2\nlr: 0.1\nlr: 0.2\n"])
def test_yaml_aliases_anchors_and_duplicate_keys_are_refused(tmp_path, text):
    f = tmp_path / "run.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=r"run\.yaml: .*(anchors and aliases|duplicate key)"):
        load_config(str(f))


def test_override_values_refuse_aliases():
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_config("smoke/mocov2", ["beta_range=&a [0, *a]"])


@pytest.mark.parametrize("name", ["..", ".", "../../x", "a/b", "a\\b", "", "a\x00b", ".hidden", "x" * 256])
def test_run_name_must_be_one_plain_path_component(name):
    with pytest.raises(ConfigError, match="^run_name="):
        apply_overrides(TrainConfig(), {"run_name": name})


def test_run_name_accepts_plain_names():
    assert load_config("smoke/mocov2", ["run_name=mocov2-hal_s0.v2"]).run_name == "mocov2-hal_s0.v2"


def test_cli_refuses_a_run_name_that_leaves_output_dir(tmp_path):
    out = tmp_path / "a" / "b"
    res = pretrain("--config", "smoke/mocov2", f"output_dir={out}", "run_name=../../x", timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("config error: run_name="), res.stderr
    assert not (tmp_path / "x").exists() and not out.exists()
