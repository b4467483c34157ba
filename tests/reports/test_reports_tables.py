"""Tables: ours beside the paper's numbers, with captions read from the run configs."""
from reports_fixtures import make_run, make_transfer

from reports.aggregate import collect
from reports.tables import build_tables, tex_escape, to_csv, to_latex, to_markdown


def _by_name(tables):
    return {t.name: t for t in tables}


def test_gain_table(runs_root):
    tables = _by_name(build_tables(collect(runs_root, suite="table1"), "table1"))
    assert {"table1_demo_linear", "table1_demo_linear_best", "table1_demo_knn",
            "table1_demo_summary", "table1_paper_reference"} <= set(tables)
    t = tables["table1_demo_linear"]
    row = t.frame.set_index("Method").loc["MoCoV2"]
    assert row["CIFAR-10 w/o"].startswith("61.00 ± 1.00")
    assert row["CIFAR-10 w/"].startswith("62.50 ± 1.50")
    assert row["CIFAR-10 gain [95% CI]"] == "+1.50 [+0.26, +2.74]"
    assert (row["CIFAR-10 paper w/o"], row["CIFAR-10 paper w/"]) == ("87.21", "89.23")
    simclr = t.frame.set_index("Method").loc["SimCLR"]
    assert "no seed-matched pairs" in simclr["CIFAR-10 gain [95% CI]"]
    for needle in ("Profile demo", "CIFAR-10", "pre-training epochs 5", "seeds 0, 1, 2, 5",
                   "linear probe, final epoch", "10 probe epochs"):
        assert needle in t.caption, needle
    assert "BEST epoch" in tables["table1_demo_linear_best"].title
    assert "87.21" in tables["table1_paper_reference"].frame.to_string()


def test_writers_contain_caption_and_paper_numbers(runs_root):
    t = _by_name(build_tables(collect(runs_root, suite="table1"), "table1"))["table1_demo_linear"]
    md, tex, csv = to_markdown(t), to_latex(t), to_csv(t)
    for text in (md, tex, csv):
        assert "87.21" in text and "89.23" in text and "Profile demo" in text
    assert md.count("\n|") >= 4 and "| MoCoV2 |" in md
    assert r"\caption{" in tex and r"\toprule" in tex and r"61.00 $\pm$ 1.00" in tex
    assert csv.startswith("# Table 1") and "\nMethod," in csv
    assert tex_escape("a_b 5% & ±") == r"a\_b 5\% \& $\pm$"


def test_ablation_table(tmp_path):
    for seed in range(2):
        make_run(tmp_path, f"base{seed}", suite="table4", seed=seed, top1=59.0 + seed, row="baseline")
        for p in (0.5, 0.6):
            make_run(tmp_path, f"p{p}s{seed}", suite="table4", seed=seed, crop_p=p,
                     hallucinator=True, row=f"{p:g}", top1=60.0 + p + seed)
    t = _by_name(build_tables(collect(tmp_path, suite="table4"), "table4"))["table4_demo_linear"]
    frame = t.frame.set_index("crop_p")
    assert list(frame.index) == ["baseline", "0.9", "0.8", "0.7", "0.6", "0.5", "0.4"]
    assert frame.loc["0.5", "paper top-1"] == "63.58" and frame.loc["0.9", "ours top-1"] == "—"
    assert frame.loc["0.6", "ours top-1"] == "61.10 ± 0.71"
    assert frame.loc["0.6", "Δ vs baseline [95% CI]"] == "+1.60 [+1.60, +1.60]"
    assert "Varying key: crop_p" in t.caption and "seeds 0, 1" in t.caption


def test_transfer_table(tmp_path):
    make_run(tmp_path, "pre_hall", suite="table2", dataset="imagenet", hallucinator=True, top1=63.5)
    for trial in range(2):
        for hall in (False, True):
            make_transfer(tmp_path, f"voc{hall}{trial}", "voc", "mocov2", hall, trial, 50 + hall + trial,
                          pretrain_run="table2/demo/pre_hall" if hall else "table2/demo/missing")
    t = _by_name(build_tables(collect(tmp_path, suite="table7"), "table7"))["table7_demo"]
    f = t.frame
    ours = f[(f.Method == "MoCoV2 + Hallucinator") & f.source.str.startswith("ours")].iloc[0]
    assert ours["VOC AP"] == "51.50 ± 0.71" and ours["COCO APbb"] == "—"
    assert ours["IN-1k top-1"] == "63.50"  # from the linked, finished pre-training run
    base = f[(f.Method == "MoCoV2") & f.source.str.startswith("ours")].iloc[0]
    assert base["IN-1k top-1"] == "—"
    paper = f[(f.Method == "Random init") & (f.source == "paper")].iloc[0]
    assert paper["IN-1k top-1"] == "-" and paper["VOC AP75"] == "57.27"
    gain = f[f.Method == "MoCoV2 gain"].iloc[0]
    assert gain["VOC AP"] == "+1.0 [+1.0, +1.0]"
    assert "Profile demo" in t.caption and "trials 0, 1" in t.caption
