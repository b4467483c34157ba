"""End to end: run dirs -> PDF + tables via the CLI entry point; figures from saved files."""
import re

import pandas as pd
import pytest
from reports_fixtures import make_run

from reports.build import build_suite, main

PAGE = re.compile(rb"/Type\s*/Page\b(?!s)")


def _pages(pdf):
    return len(PAGE.findall(pdf.read_bytes()))


def test_table1_pdf_end_to_end(runs_root, tmp_path):
    out = tmp_path / "out"
    result = build_suite(runs_root, out, "table1")
    pdf = out / "table1" / "table1.pdf"
    assert result.pdf == pdf and pdf.stat().st_size > 20_000
    # title + 3 gain tables + summary + paper table + curves + problems + 2 provenance pages
    assert len(result.pages) == 10 and _pages(pdf) == len(result.pages)
    assert result.pages[0] == "Title" and "Problems" in result.pages
    assert any(p.startswith("Training curves") for p in result.pages)
    for ext in ("md", "csv", "tex"):
        assert (out / "table1" / f"table1_demo_linear.{ext}").exists()
    problems = pd.read_csv(out / "table1" / "problems.csv")
    assert sorted(problems[problems.excluded].run_dir) == [
        "table1/demo/corrupt_run", "table1/demo/failed_run", "table1/demo/running_run"]
    prov = pd.read_csv(out / "table1" / "provenance.csv")
    assert set(prov.device_name) == {"cpu (test fixture)"} and len(prov) == 8


def test_figure_suites(tmp_path):
    runs = tmp_path / "runs"
    for seed in range(2):
        make_run(runs, f"b{seed}", suite="fig4", seed=seed)
        make_run(runs, f"h{seed}", suite="fig4", seed=seed, hallucinator=True)
        make_run(runs, f"s{seed}", suite="fig4", seed=seed, extrapolation="symmetric")
        make_run(runs, f"b{seed}", suite="fig5", seed=seed, features=True)
        make_run(runs, f"h{seed}", suite="fig5", seed=seed, features=True, hallucinator=True)
    fig4 = build_suite(runs, tmp_path / "out", "fig4")
    assert any(p.startswith("Fig. 4") for p in fig4.pages)
    fig5 = build_suite(runs, tmp_path / "out", "fig5")
    assert any(p.startswith("Fig. 5") for p in fig5.pages)
    assert _pages(fig5.pdf) == len(fig5.pages)
    assert (tmp_path / "out" / "fig5" / "figure_01.png").stat().st_size > 10_000


def test_cli_no_finished_runs(runs_root, tmp_path, capsys):
    make_run(runs_root, "only_running", suite="table2", status="running", top1=None)
    assert main(["--suite", "table2", "--runs", str(runs_root), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "No finished runs for suite 'table2'" in err and "only_running" in err


def test_cli_builds_and_filters_profile(runs_root, tmp_path, capsys):
    assert main(["--suite", "table1", "--runs", str(runs_root), "--out", str(tmp_path),
                 "--profile", "demo"]) == 0
    assert "table1.pdf" in capsys.readouterr().out
    assert main(["--suite", "table1", "--runs", str(runs_root), "--out", str(tmp_path),
                 "--profile", "paper"]) == 1


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--suite" in capsys.readouterr().out
