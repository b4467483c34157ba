"""The transcribed paper numbers parse and have the shape of the paper's Tables 1-7."""
import math

from reports.paper import load_paper_numbers


def _value(table, **where):
    df = load_paper_numbers(table)
    for k, v in where.items():
        df = df[df[k] == v]
    assert len(df) == 1, where
    return df["value"].iloc[0]


def test_all_tables_present_and_numeric():
    df = load_paper_numbers()
    assert set(df.table) == {f"table{i}" for i in range(1, 8)}
    vals = df.value_num.dropna()
    assert ((vals > 0) & (vals < 100)).all()
    assert df.value_num.isna().sum() == 1  # only the '-' of Random init in Table 7


def test_table1_shape():
    t1 = load_paper_numbers("table1")
    assert len(t1) == 32
    assert set(t1.method) == {"mocov1", "mocov2", "simclr", "simsiam"}
    assert set(t1.dataset) == {"cifar10", "cifar100", "tiny_imagenet", "stl10"}
    assert t1.groupby(["method", "dataset"]).hallucinator.nunique().eq(2).all()
    assert _value("table1", method="mocov1", dataset="cifar10", hallucinator=False) == "88.31"
    assert _value("table1", method="simsiam", dataset="stl10", hallucinator=True) == "88.16"
    assert _value("table1", method="mocov2", dataset="tiny_imagenet", hallucinator=True) == "47.95"


def test_table2_shape():
    t2 = load_paper_numbers("table2")
    assert len(t2) == 16
    assert t2.groupby(["method", "hallucinator"]).size().eq(2).all()  # 8 rows x {IN-200, IN-1K}
    assert set(t2.dataset) == {"imagenet200", "imagenet1k"}
    assert _value("table2", method="mocov1", hallucinator=True, dataset="imagenet1k") == "59.17"
    assert _value("table2", method="simclr", hallucinator=False, dataset="imagenet200") == "62.22"


def test_ablation_tables_shape():
    t3, t4 = load_paper_numbers("table3"), load_paper_numbers("table4")
    t5, t6 = load_paper_numbers("table5"), load_paper_numbers("table6")
    assert len(t3) == 6 and len(t4) == 6 and len(t5) == 5 and len(t6) == 5
    assert list(t4.level) == ["0.9", "0.8", "0.7", "0.6", "0.5", "0.4"]
    assert list(t6.level) == ["0", "1", "2", "3", "4"]
    assert "(0, 1)" in set(t5.level)
    assert _value("table3", level="baseline") == "62.57"
    assert _value("table3", level="cc+ae+h") == "63.58"
    assert _value("table4", level="0.6") == "63.56"
    assert _value("table5", level="(-0.5, 0)") == "62.80"
    assert _value("table6", level="0") == "62.85"


def test_table7_shape():
    t7 = load_paper_numbers("table7")
    rows = t7.groupby(["method", "hallucinator"]).size()
    assert len(rows) == 7 and rows.eq(10).all()  # 7 rows x 10 columns
    missing = t7[t7.value == "-"]
    assert len(missing) == 1
    assert missing.iloc[0][["method", "dataset", "metric"]].tolist() == ["random-init", "imagenet1k", "top1"]
    assert math.isnan(missing.value_num.iloc[0])
    assert _value("table7", method="mocov2", hallucinator=True, dataset="coco", metric="segm_AP75") == "36.4"
    assert _value("table7", method="supervised", hallucinator=False, dataset="voc", metric="bbox_AP") == "53.5"
