"""CLI: build one suite's report (PDF + Markdown/CSV/LaTeX tables) from saved run directories.

    python -m reports.build --suite table1 --runs runs/ --out reports/out/ [--profile demo]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from hallucinator.rundir import write_atomic

from .aggregate import Collection, collect
from .dynamics import dynamics_figures, dynamics_tables
from .figures import build_figures
from .pdf import frame_pages, table_pages, text_page, title_page, write_pdf
from .schedule import schedule_figures, schedule_tables
from .suites import SUITES
from .tables import build_tables, write_tables

PROVENANCE_KEYS = ["git_commit", "git_dirty", "device_name", "torch", "cuda", "world_size",
                   "wall_time_s", "start_time", "end_time"]


@dataclass
class BuildResult:
    """What a build wrote: the PDF, its page titles, and every other file."""

    pdf: Path | None
    pages: list[str]
    files: list[Path]
    collection: Collection


class NoFinishedRuns(RuntimeError):
    """Raised when a suite has no finished run to report (the message says what was found)."""


def provenance_frame(coll: Collection) -> pd.DataFrame:
    """One row per included run (pre-training or transfer) with its run.json provenance."""
    frames = []
    for kind, df in (("pretrain", coll.runs), ("transfer", coll.transfer)):
        if df.empty:
            continue
        cols = {f"prov_{k}": k for k in PROVENANCE_KEYS if f"prov_{k}" in df}
        part = df[["run_name", "profile"] + list(cols)].rename(columns=cols)
        part.insert(2, "kind", [f"baseline ({k}), not pretrained" if k != "pretrain" else k
                                for k in df["kind"]] if "kind" in df else kind)
        frames.append(part)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    if "git_commit" in out:
        out["git_commit"] = [(str(c)[:10] if isinstance(c, str) else "?") +
                             ("+dirty" if d is True else "") for c, d in
                             zip(out["git_commit"], out.get("git_dirty", [None] * len(out)))]
        out = out.drop(columns=[c for c in ("git_dirty",) if c in out])
    return out


def _provenance_summary(prov: pd.DataFrame) -> list[str]:
    def uniq(col):
        return ", ".join(sorted({str(v) for v in prov[col].dropna()})) if col in prov else "n/a"
    wall = pd.to_numeric(prov.get("wall_time_s"), errors="coerce") if "wall_time_s" in prov else pd.Series(dtype=float)
    dirty = prov["git_commit"].str.endswith("+dirty").sum() if "git_commit" in prov else 0
    return [f"git commits      : {uniq('git_commit')}",
            f"dirty work trees : {dirty} of {len(prov)} runs",
            f"devices          : {uniq('device_name')}",
            f"torch / cuda     : {uniq('torch')} / {uniq('cuda') or 'none'}",
            f"world sizes      : {uniq('world_size')}",
            f"profiles         : {uniq('profile')}",
            f"wall time        : {wall.sum() / 3600:.2f} h total over {wall.notna().sum()} runs "
            f"(max {wall.max() / 60 if wall.notna().any() else float('nan'):.1f} min)",
            f"first start      : {prov['start_time'].dropna().min() if 'start_time' in prov else 'n/a'}",
            f"last end         : {prov['end_time'].dropna().max() if 'end_time' in prov else 'n/a'}"]


def figure_provenance(prov: pd.DataFrame) -> str:
    """One line naming the machine(s), dates and commit(s) the runs of a figure came from."""
    def uniq(col):
        return ", ".join(sorted({str(v) for v in prov[col].dropna()})) if col in prov else "?"
    days = sorted({str(v)[:10] for v in prov["start_time"].dropna()}) if "start_time" in prov else []
    when = days[0] if len(days) == 1 else (f"{days[0]} to {days[-1]}" if days else "?")
    return f"{uniq('device_name')}; {when}; commit {uniq('git_commit')}"


def _relative(frame: pd.DataFrame, runs: Path) -> pd.DataFrame:
    frame = frame.copy()
    frame["run_dir"] = [str(Path(p).relative_to(runs)) if str(p).startswith(str(runs)) else p
                        for p in frame["run_dir"]]
    return frame


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda f: frame.to_csv(f, index=False))


def build_suite(runs: str | Path, out: str | Path, suite: str, profile: str | None = None) -> BuildResult:
    """Read ``runs``, write ``out/<suite>/<suite>.pdf`` and the tables beside it.

    Raises:
        NoFinishedRuns: no finished run (or transfer result) of ``suite`` under ``runs``; the
            problems table is still written so the reasons can be read.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    runs, out_dir = Path(runs), Path(out) / suite
    coll = collect(runs, suite=suite, profile=profile)
    problems = _relative(coll.problems, runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(problems, out_dir / "problems.csv")
    files = [out_dir / "problems.csv"]
    if coll.runs.empty and coll.transfer.empty:
        what = f" profile {profile!r}" if profile else ""
        excl = problems[problems.excluded]
        detail = "".join(f"\n  {r.run_dir}: {r.reason}" for r in excl.itertuples())
        raise NoFinishedRuns(
            f"No finished runs for suite {suite!r}{what} under {runs}/ "
            f"({len(excl)} run dir(s) found but excluded){':' if detail else '.'}{detail}\n"
            f"Train and evaluate runs first (run dirs need run.json status 'finished' and eval.json).")
    tables = build_tables(coll, suite) + dynamics_tables(coll.runs, suite)
    if SUITES[suite].shape == "schedule":
        tables = schedule_tables(coll.results, coll.runs) + tables
    files += write_tables(tables, out_dir)
    if not coll.results.empty:
        _write_csv(coll.results, out_dir / "results.csv")
        files.append(out_dir / "results.csv")
    if not coll.transfer.empty:
        _write_csv(coll.transfer, out_dir / "transfer.csv")
        files.append(out_dir / "transfer.csv")
    prov = provenance_frame(coll)
    _write_csv(prov, out_dir / "provenance.csv")
    files.append(out_dir / "provenance.csv")

    figures = build_figures(coll.runs, suite) + dynamics_figures(coll.runs, suite)
    if SUITES[suite].shape == "schedule":
        figures = schedule_figures(coll.results, figure_provenance(prov)) + figures
    for i, (_, fig) in enumerate(figures, 1):
        png = out_dir / f"figure_{i:02d}.png"
        write_atomic(png, lambda f: fig.savefig(f, format="png", dpi=110), binary=True)
        files.append(png)
    body = [p for t in tables for p in table_pages(t)] + figures
    excluded = problems[problems.excluded]
    if problems.empty:
        body.append(text_page("Problems", ["No problems: every run directory found was used."]))
    else:
        body += frame_pages("Problems", f"{len(excluded)} run(s) excluded from all numbers; "
                            f"{len(problems) - len(excluded)} warning(s) on runs that were kept. "
                            "Reasons as detected from config.json / run.json / eval.json / metrics.jsonl.",
                            problems[["run_dir", "profile", "excluded", "reason"]])
    summary = _provenance_summary(prov)
    body.append(text_page("Provenance (from run.json)", summary))
    body += frame_pages("Provenance per run", "From each included run's run.json.", prov)
    facts = [f"runs root      : {runs}", f"profile filter : {profile or 'all'}",
             f"profiles       : {', '.join(sorted(set(coll.runs.get('profile', pd.Series(dtype=str))) | set(coll.transfer.get('profile', pd.Series(dtype=str)))))}",
             f"finished runs  : {len(coll.runs) + len(coll.transfer)} (used)",
             f"excluded runs  : {len(excluded)} (see Problems)",
             f"warnings       : {len(problems) - len(excluded)}",
             f"generated      : {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
             "", "All numbers are read from saved run", "directories; paper numbers are",
             "transcribed and labelled 'paper'."]
    pages = [title_page(suite, SUITES[suite].title, facts, [t for t, _ in body])] + body
    pdf = out_dir / f"{suite}.pdf"
    titles = write_pdf(pdf, pages, f"Hallucinator reproduction — {suite}")
    return BuildResult(pdf, titles, files + [pdf], coll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports.build",
        description="Build one suite's report from saved run directories: a PDF (title, tables "
                    "beside the paper's numbers, figures, problems, provenance) plus Markdown/CSV/"
                    "LaTeX tables, under OUT/SUITE/. Never reads live training objects.",
        epilog="Run dirs: RUNS/<suite>/<profile>/<run>/ with config.json, run.json, metrics.jsonl, "
               "eval.json (features_2d.npz for fig5; results.json for table7 transfer runs). "
               "Unfinished, failed or corrupt runs are listed on the Problems page, never averaged. "
               "Exit status 1 when the suite has no finished run.")
    parser.add_argument("--suite", required=True, choices=sorted(SUITES),
                        help="which suite to report (paper table or figure)")
    parser.add_argument("--runs", default="runs", type=Path, help="runs root (default: runs/)")
    parser.add_argument("--out", default=Path("reports/out"), type=Path,
                        help="output root; files go to OUT/SUITE/ (default: reports/out/)")
    parser.add_argument("--profile", default=None,
                        help="only this profile (smoke|demo|paper); default: every profile found, "
                             "each in its own tables")
    args = parser.parse_args(argv)
    if not args.runs.exists():
        print(f"error: runs root {args.runs} does not exist", file=sys.stderr)
        return 1
    try:
        result = build_suite(args.runs, args.out, args.suite, args.profile)
    except NoFinishedRuns as err:
        print(err, file=sys.stderr)
        return 1
    except OSError as err:  # e.g. a full disk: every output is atomic, so none is left truncated
        print(f"error: cannot write the report under {args.out / args.suite}: {err}", file=sys.stderr)
        return 1
    coll = result.collection
    print(f"{args.suite}: {len(coll.runs) + len(coll.transfer)} finished run(s) used, "
          f"{int(coll.problems.excluded.sum())} excluded (see Problems page)")
    print(f"wrote {result.pdf} ({len(result.pages)} pages) and {len(result.files) - 1} other files "
          f"in {result.pdf.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
