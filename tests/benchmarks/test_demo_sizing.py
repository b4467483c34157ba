"""demo_sizing: every candidate is a valid demo config, and its table computes the gain over random weights."""
import json

from benchmarks.demo_sizing import CANDIDATES, _reference, markdown
from hallucinator.presets import load_config


def test_every_candidate_is_a_valid_demo_config():
    for name, overrides in CANDIDATES.items():
        cfg = load_config("demo/mocov2", list(overrides))
        assert name == (f"w{cfg.width}-s{cfg.image_size}-e{cfg.epochs}-n{cfg.train_subset // 1000}k-"
                        f"b{cfg.batch_size}-m{str(cfg.moco_momentum)[2:]}")
        assert _reference(overrides) == f"random-init-w{cfg.width}-s{cfg.image_size}"


def test_table_gives_the_gain_over_random_weights(tmp_path):
    log = tmp_path / "sizing.jsonl"
    log.write_text(json.dumps({"candidate": "c", "method": "mocov2", "top1": 74.92, "random_init_top1": 65.01,
                               "pretrain_min": 1.39, "total_min": 1.83, "seed": 0}) + "\n")
    assert markdown(log).splitlines()[-1] == "| c | mocov2 | 74.92 | 65.01 | +9.91 | 1.39 | 1.83 |"
