"""transfer/ -> reports/: provenance in the .pkl, results.json in the reports' layout, Table 7.

No fine-tuning here: results.json is written by d2_results (what train_net.py calls) from a
synthetic detectron2 evaluation payload.
"""
import json
import pickle
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

import convert
import d2_results
from test_transfer_convert import hallucinator_checkpoint
from transfer_helpers import REPO_ROOT, TRANSFER, run_script


def fake_pretrain_run(folder, top1=67.9):
    """A finished pre-training run directory (what reports.aggregate.load_run accepts)."""
    folder.mkdir(parents=True)
    config = {"suite": "table2", "profile": "paper", "row": "mocov2", "method": "mocov2", "hallucinator": True,
              "dataset": "imagenet", "backbone": "resnet50", "epochs": 200, "seed": 0}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "run.json").write_text(json.dumps({"status": "finished"}))
    (folder / "eval.json").write_text(json.dumps(
        {"status": "finished", "probes": {"linear": {"top1": top1, "epochs": 100}}}))
    return folder


@pytest.fixture(scope="module")
def hallucinator_pkl(torchvision_r50, tmp_path_factory):
    """A converted MoCoV2 + Hallucinator project checkpoint inside a finished pretrain run."""
    model, _, _ = torchvision_r50
    run = fake_pretrain_run(tmp_path_factory.mktemp("pretrain") / "mocov2-hal")
    ckpt = hallucinator_checkpoint(model.state_dict())
    ckpt["config"].update(hallucinator=True, epochs=200, dataset="imagenet")
    torch.save(ckpt, run / "checkpoint.pt")
    pkl = run.parent / "mocov2_hal.pkl"
    convert.convert(run / "checkpoint.pt", pkl)
    return run, pkl


def detectron2_eval(ap):
    """What detectron2's PascalVOCDetectionEvaluator returns (extra keys included)."""
    return {"bbox": {"AP": ap, "AP50": ap + 25.0, "AP75": ap + 6.0, "APs": 1.0}}


def write_run(root, weights, trial=None, trials=1, ap=57.0, config="voc_r50c4.yaml",
              deviations=(), **over):
    """results.json as train_net.py --runs ROOT writes it (same d2_results calls)."""
    source = d2_results.weights_source(str(weights), **over)
    profile = d2_results.profile_of(config, deviations)
    name = d2_results.table7_name("voc", source["method"], source["hallucinator"])
    out = d2_results.table7_run_dir(root, profile, name, trial if trials > 1 else None)
    d2_results.write_json(out / "results.json", d2_results.results_payload(
        task="voc", config_file=str(TRANSFER / "configs" / config), source=source,
        results=detectron2_eval(ap), weights=str(weights), trial=trial or 0, opts=[],
        deviations=deviations,
        datasets={"train": ["voc_2007_trainval"], "test": "voc_2007_test"}, iterations=24000,
        seconds_per_iter=0.5, device="cuda x8"))
    return out, name, profile


def test_convert_embeds_provenance(hallucinator_pkl, torchvision_r50):
    run, pkl = hallucinator_pkl
    with open(pkl, "rb") as f:
        data = pickle.load(f)
    source = data["__source__"]
    assert source["method"] == "mocov2" and source["hallucinator"] is True
    assert source["pretrain_run"] == str(run.resolve())
    assert source["checkpoint"] == str((run / "checkpoint.pt").resolve())
    assert source["pretrain"]["epochs"] == 200 and source["input"] == "hallucinator-checkpoint"
    assert data["matching_heuristics"] is True and len(data["model"]) == 318
    # a plain torchvision state dict: origin unknown, no pretraining run to link
    with open(torchvision_r50[2], "rb") as f:
        plain = pickle.load(f)["__source__"]
    assert plain["method"] == "unknown" and plain["hallucinator"] is False
    assert plain["pretrain_run"] is None and plain["input"] == "torchvision"


def test_detectron2_loads_the_pkl_with_provenance(detectron2, hallucinator_pkl, torchvision_r50):
    import d2_heads  # noqa: F401
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model
    from test_transfer_detectron2 import build_cfg

    _, pkl = hallucinator_pkl
    model = build_model(build_cfg("voc_r50c4.yaml")).eval()
    checkpoint = DetectionCheckpointer(model).load(str(pkl))  # the public path train_net uses
    assert checkpoint["__source__"]["method"] == "mocov2"  # passed through, not interpreted
    state, tv = model.state_dict(), torchvision_r50[0].state_dict()
    assert torch.equal(state["backbone.res4.5.conv2.weight"], tv["layer3.5.conv2.weight"])
    assert torch.equal(state["roi_heads.res5.2.conv3.norm.running_var"],
                       tv["layer4.2.bn3.running_var"])


def test_provenance_flags_override(torchvision_r50, hallucinator_pkl, tmp_path):
    _, pth, _ = torchvision_r50
    out = tmp_path / "sup.pkl"
    proc = run_script([TRANSFER / "convert.py", pth, out, "--method", "supervised",
                       "--no-hallucinator"])
    assert proc.returncode == 0, proc.stderr
    assert "source: method supervised, hallucinator False" in proc.stdout
    assert d2_results.weights_source(str(out))["method"] == "supervised"
    # the project checkpoint's own record is overridden too
    run, _ = hallucinator_pkl
    res = convert.convert(run / "checkpoint.pt", tmp_path / "o.pkl", method="mocov1",
                          hallucinator=False)
    assert res["source"]["method"] == "mocov1" and res["source"]["hallucinator"] is False
    # train_net.py's --method / --hallucinator go through weights_source's overrides
    src = d2_results.weights_source(str(out), method="infomin", hallucinator=True)
    assert (src["method"], src["hallucinator"]) == ("infomin", True)
    assert "command line" in src["origin"]
    rand = d2_results.weights_source("")
    assert (rand["method"], rand["hallucinator"], rand["pretrain_run"]) == ("random-init", False, None)
    # weights that are not converted files: unknown, or the run that wrote them
    assert d2_results.weights_source(str(pth))["method"] == "unknown"
    ft, _, _ = write_run(tmp_path / "runs", out)
    (ft / "model_final.pth").write_bytes(b"")
    assert d2_results.weights_source(str(ft / "model_final.pth"))["method"] == "supervised"


def test_profiles_and_names():
    assert d2_results.profile_of("transfer/configs/voc_r50c4.yaml") == "paper"
    assert d2_results.profile_of("coco_r50c4.yaml") == "paper"
    assert d2_results.profile_of("smoke_voc_r50c4.yaml") == "smoke"
    assert d2_results.table7_name("voc", "mocov2", True, "lr 0.02") == "voc-mocov2-hal-lr-0.02"
    assert d2_results.table7_name("coco", "random-init", False) == "coco-random-init"


def test_results_reach_the_table7_report(hallucinator_pkl, torchvision_r50, tmp_path):
    from reports.aggregate import collect

    _, pkl = hallucinator_pkl
    root = tmp_path / "runs"
    dirs = [write_run(root, pkl, trial=i, trials=2, ap=57.0 + 2 * i)[0] for i in range(2)]
    _, name, profile = write_run(root, pkl, trial=1, trials=2, ap=59.0)
    d2_results.summarize_trials(dirs, d2_results.table7_summary_path(root, profile, name))
    write_run(root, torchvision_r50[2], ap=53.1, method="supervised")  # one trial, flag override
    write_run(root, "", ap=33.0)                                       # random init
    write_run(root, pkl, ap=99.0, deviations=["SOLVER.MAX_ITER"])      # not the protocol
    assert [p.name for p in (root / "table7" / "custom").iterdir()] == ["voc-mocov2-hal"]
    assert sorted(p.name for p in (root / "table7" / "paper").iterdir()) == [
        "voc-mocov2-hal-trial0", "voc-mocov2-hal-trial1", "voc-mocov2-hal.summary.json",
        "voc-random-init", "voc-supervised"]

    coll = collect(root, suite="table7")
    assert coll.problems.empty, coll.problems.to_dict("records")
    tr = coll.transfer.set_index("run_name")
    assert len(tr) == 5 and set(tr.profile) == {"paper", "custom"} and set(tr.suite) == {"table7"}
    tr = tr[tr.profile == "paper"]
    assert list(tr.loc[["voc-mocov2-hal-trial0", "voc-mocov2-hal-trial1"], "trial"]) == [0, 1]
    assert tr.loc["voc-mocov2-hal-trial1", "bbox_AP"] == 59.0
    assert bool(tr.loc["voc-mocov2-hal-trial0", "hallucinator"]) is True
    assert tr.loc["voc-mocov2-hal-trial0", "pretrain_top1"] == pytest.approx(67.9)
    assert tr.loc["voc-supervised", "method"] == "supervised"

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "reports.build", "--suite", "table7", "--runs",
                           str(root), "--out", str(out)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 finished run(s) used, 0 excluded" in proc.stdout
    table = (out / "table7" / "table7_paper.md").read_text()  # profile "paper", not the reference
    assert table.startswith("**Table 7 — transfer, ours vs paper (profile paper)")
    assert (out / "table7" / "table7_paper_reference.md").exists()
    rows = {line.split("|")[1].strip() + " / " + line.split("|")[2].strip(): line
            for line in table.splitlines() if line.startswith("| ")}
    ours = rows["MoCoV2 + Hallucinator / ours (n=2 trials; VOC: MoCo reports a 5-trial mean)"]
    assert "58.00 ± 1.41" in ours and "67.90" in ours       # VOC AP; IN-1k top-1 of pretrain_run
    assert "200 ep, mocov2-hal/checkpoint.pt" in ours        # pre-training epochs and source
    assert "IN-1k, 200 ep" in rows["MoCoV2 + Hallucinator / paper"]
    assert "none (random init)" in rows["Random init / ours (n=1 trials; VOC: MoCo reports a 5-trial mean)"]
    assert "mean of 5 trials" in (out / "table7" / "table7_paper.md").read_text()
    assert "57.4" in rows["MoCoV2 + Hallucinator / paper"]  # the paper's VOC AP
    assert "53.10" in rows["Supervised / ours (n=1 trials; VOC: MoCo reports a 5-trial mean)"]
    assert "53.5" in rows["Supervised / paper"]
    assert "33.00" in rows["Random init / ours (n=1 trials; VOC: MoCo reports a 5-trial mean)"]
    assert (out / "table7" / "table7.pdf").stat().st_size > 0
    assert "99.00" not in table  # the overridden run is only in the custom table
    custom = (out / "table7" / "table7_custom.md").read_text()
    assert "99.00" in custom and "not protocol results" in custom and "SOLVER.MAX_ITER" in custom


def test_train_net_places_runs_in_the_reports_layout(detectron2, hallucinator_pkl, tmp_path):
    import train_net

    _, pkl = hallucinator_pkl
    args = SimpleNamespace(config_file=str(TRANSFER / "configs" / "voc_r50c4.yaml"), opts=[],
                           weights=str(pkl), runs=str(tmp_path), tag="", trials=2, method=None,
                           hallucinator=None, eval_only=False)
    cfg = train_net.load_cfg(args, 1)
    assert cfg.OUTPUT_DIR == str(tmp_path / "table7" / "paper" / "voc-mocov2-hal-trial1")
    args.trials, args.tag, args.hallucinator = 1, "x", False
    cfg = train_net.load_cfg(args, 0)
    assert cfg.OUTPUT_DIR == str(tmp_path / "table7" / "paper" / "voc-mocov2-x")
    args.opts = ["SOLVER.MAX_ITER", "100", "SEED", "3"]  # a protocol key: not a paper run
    assert train_net.load_cfg(args, 0).OUTPUT_DIR == str(tmp_path / "table7" / "custom" /
                                                        "voc-mocov2-x")
    args.opts, args.eval_only = [], True
    assert "/custom/" in train_net.load_cfg(args, 0).OUTPUT_DIR
    args.runs = ""
    assert train_net.load_cfg(args, 0).OUTPUT_DIR == "runs/transfer/voc_r50c4"


def test_voc_row_is_the_mean_of_five_trials_as_moco_reports(hallucinator_pkl, tmp_path):
    from reports.aggregate import collect
    from reports.tables import transfer_table

    _, pkl = hallucinator_pkl
    root = tmp_path / "runs"
    for i in range(5):
        write_run(root, pkl, trial=i, trials=5, ap=50.0 + i)
    frame = transfer_table(collect(root, suite="table7"), "paper").frame
    ours = frame[frame.source.str.startswith("ours")].iloc[0]
    assert ours.source == "ours (n=5 trials)"  # MoCo's protocol: nothing to flag
    assert ours["VOC AP"] == "52.00 ± 1.58"   # mean and sample std of 50..54
