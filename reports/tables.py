"""Build the report tables (ours beside the paper's numbers) and write them as Markdown/CSV/LaTeX.

Every table is a ``Table``: a frame of display strings whose first column labels the rows, a
title and a caption that states profile, datasets, epochs, probe and seeds read from the run
configs. One builder per table *shape* serves all suites (``reports.suites.SUITES``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hallucinator.rundir import write_atomic

from .aggregate import Collection
from .paper import load_paper_numbers
from .stats import mean_std, paired_gains
from .suites import (DATASET_LABELS, METHOD_LABELS, METHOD_ORDER, PROBE_LABELS, PROBE_ORDER,
                     SUITES, level_sort_key)

DASH = "—"
TRANSFER_COLUMNS = [("imagenet1k", "top1", "IN-1k top-1"), ("voc", "bbox_AP", "VOC AP"),
                    ("voc", "bbox_AP50", "VOC AP50"), ("voc", "bbox_AP75", "VOC AP75"),
                    ("coco", "bbox_AP", "COCO APbb"), ("coco", "bbox_AP50", "COCO APbb50"),
                    ("coco", "bbox_AP75", "COCO APbb75"), ("coco", "segm_AP", "COCO APmk"),
                    ("coco", "segm_AP50", "COCO APmk50"), ("coco", "segm_AP75", "COCO APmk75")]


@dataclass
class Table:
    """A rendered table: display strings, with its title, caption and PDF column groups."""

    name: str
    title: str
    caption: str
    frame: pd.DataFrame
    col_groups: list[list[str]] = field(default_factory=list)
    index_cols: int = 1  # leading columns repeated on every PDF page part


def fmt(mean: float, std: float = math.nan, n: int | None = None, digits: int = 2) -> str:
    """``"88.31 ± 0.12"``; the std is omitted when undefined; ``(n=k)`` appended if given."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return DASH
    text = f"{mean:.{digits}f}" + ("" if std is None or math.isnan(std) else f" ± {std:.{digits}f}")
    return text + (f" (n={n})" if n is not None else "")


def method_label(method: str, variant: str = "baseline") -> str:
    label = METHOD_LABELS.get(method, method)
    return label if variant in ("baseline", "hallucinator") else f"{label} [{variant}]"


def _method_key(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _show(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _values(series) -> str:
    """Sorted distinct non-missing values as text ('n/a' if none)."""
    vals = {_show(v) for v in series
            if v is not None and v != "" and not (isinstance(v, float) and math.isnan(v))}
    vals = sorted(vals, key=lambda v: (len(v), v))
    return ", ".join(vals) if vals else "n/a"


def describe(res: pd.DataFrame, profile: str, probe: str) -> str:
    """Caption text: profile, datasets, backbone, epochs, batch, probe details and seeds."""
    datasets = _values(DATASET_LABELS.get(d, d) for d in res["dataset"])
    bb = _values(f"{b} (width {_show(w)})" if w is not None and w == w else str(b)
                 for b, w in zip(res["backbone"], res["width"]))
    seeds = _values(res["seed"])
    extra = []
    if probe in ("linear", "linear_best"):
        extra.append(f"{_values(res['probe_epochs'])} probe epochs")
    if probe == "knn":
        extra.append(f"k={_values(res['k'])}")
    if _values(res["labels"]) != "n/a":
        extra.append(f"labels: {_values(res['labels'])}")
    pre = res[res["kind"] == "pretrain"] if "kind" in res else res
    refs = sorted(set(res["kind"]) - {"pretrain"}) if "kind" in res else []
    text = (f"Profile {profile}; dataset(s) {datasets}; backbone {bb}; pre-training epochs "
            f"{_values(pre['epochs'])}; batch size {_values(pre['batch_size'])}; probe: "
            f"{PROBE_LABELS.get(probe, probe)} top-1 % ({'; '.join(extra)}); seeds {seeds}. "
            "Cells: mean ± std over seeds (std omitted for one seed).")
    if refs:
        text += (f" Reference encoders ({', '.join(METHOD_LABELS.get(r, r) for r in refs)}) are "
                 "baselines, not pretrained: the epochs and batch size above are the pretraining runs'.")
    return text + collapse_note(res)


def collapse_note(res: pd.DataFrame) -> str:
    """Caption sentence naming the runs whose embedding collapsed ('' when none did)."""
    if "collapse" not in res:
        return ""
    hit = res[res["collapse"].fillna("") != ""].drop_duplicates("run_name")
    if hit.empty:
        return ""
    return (" COLLAPSED embeddings (G2 or pairwise cosine near 1; see Problems): "
            + "; ".join(f"{r.run_name}: {r.collapse}" for r in hit.itertuples()) + ".")


def _n_note(stats: pd.DataFrame) -> tuple[bool, str]:
    ns = sorted(set(int(n) for n in stats["n"]))
    return (len(ns) == 1, f" n={ns[0]} run(s) per cell." if len(ns) == 1 else " n per cell in parentheses.")


def gain_table(res: pd.DataFrame, suite: str, profile: str, probe: str) -> Table:
    """Table 1/2 shape: rows = methods; columns = dataset x {w/o, w/, gain [95% CI], paper}."""
    res = res.copy()
    stats = mean_std(res, ["method", "variant", "dataset"])
    uniform, n_note = _n_note(stats)
    arm = {"baseline": "w/o", "hallucinator": "w/"}
    gains = paired_gains(res, ["method", "dataset"], res.variant == "hallucinator",
                         res.variant == "baseline")
    paper = load_paper_numbers(SUITES[suite].paper_table)
    datasets = sorted(res.dataset.unique(), key=lambda d: (d not in set(paper.dataset), d))
    rows_keys = sorted({(m, v if v not in arm else "") for m, v in zip(stats.method, stats.variant)},
                       key=lambda mv: (_method_key(mv[0]), mv[1]))
    frame_rows, groups, no_paper = [], [], []
    for ds in datasets:
        label = DATASET_LABELS.get(ds, ds)
        group = [f"{label} w/o", f"{label} w/", f"{label} gain [95% CI]"]
        if ds in set(paper.dataset):
            group += [f"{label} paper w/o", f"{label} paper w/"]
        else:
            no_paper.append(label)
        groups.append(group)
    for method, odd_variant in rows_keys:
        row = {"Method": method_label(method, odd_variant or "baseline")}
        for ds, group in zip(datasets, groups):
            for variant, col in (("baseline", group[0]), ("hallucinator", group[1])):
                v = odd_variant or variant
                hit = stats[(stats.method == method) & (stats.variant == v) & (stats.dataset == ds)]
                if odd_variant and variant == "hallucinator":
                    hit = hit.iloc[0:0]
                row[col] = fmt(hit["mean"].iloc[0], hit["std"].iloc[0],
                               None if uniform else int(hit["n"].iloc[0])) if len(hit) else DASH
            g = gains[(gains.method == method) & (gains.dataset == ds)]
            row[group[2]] = DASH
            if len(g) and not odd_variant:
                unmatched = g["unmatched"].iloc[0]
                row[group[2]] = g["ci"].iloc[0].format() + (f"; excluded {unmatched}" if unmatched else "")
            if len(group) == 5:
                for h, col in ((False, group[3]), (True, group[4])):
                    p = paper[(paper.method == method) & (paper.hallucinator == h) & (paper.dataset == ds)]
                    row[col] = p["value"].iloc[0] if len(p) and not odd_variant else DASH
        frame_rows.append(row)
    caption = (describe(res, profile, probe) + n_note + " Gain = w/ − w/o, mean over "
               "seed-matched pairs with a paired 95% t-interval (unmatched seeds excluded). "
               f"Paper columns: linear-probe top-1 transcribed from the paper's "
               f"{SUITES[suite].paper_table.replace('table', 'Table ')} "
               f"({paper.note.iloc[0] if len(paper) else ''}); a different setting from ours "
               "unless the caption says otherwise.")
    if no_paper:
        caption += (f" No paper column for {', '.join(no_paper)}: the paper does not report "
                    f"{'this dataset' if len(no_paper) == 1 else 'these datasets'}, so its numbers "
                    "(other datasets, other recipe) are on their own page (\"Paper's Table\"), not beside ours.")
    return Table(f"{suite}_{profile}_{probe}", f"{suite.replace('table', 'Table ')} — ours vs paper "
                 f"(profile {profile}, {PROBE_LABELS.get(probe, probe)})", caption,
                 pd.DataFrame(frame_rows), groups)


def ablation_table(res: pd.DataFrame, suite: str, profile: str, probe: str) -> Table:
    """Tables 3-6 shape: one row per level of the suite's varying key, paper value beside."""
    spec = SUITES[suite]
    res = res.copy()
    res["setting"] = [f"{METHOD_LABELS.get(m, m)} / {DATASET_LABELS.get(d, d)}"
                      for m, d in zip(res.method, res.dataset)]
    stats = mean_std(res, ["setting", "level"])
    uniform, n_note = _n_note(stats)
    control = res.level == "baseline"
    per_level = []
    for key in res[~control].groupby(["setting", "level"]).groups:
        sub = res[(res.setting == key[0]) & ((res.level == key[1]) | control)]
        g = paired_gains(sub, ["setting"], sub.level == key[1], sub.level == "baseline")
        per_level.append((key, g["ci"].iloc[0] if len(g) else None))
    delta = dict(per_level)
    second = {}  # Δ against a second control level (stabilise: the paper's Hallucinator)
    if spec.second_control:
        for key in res[~control & (res.level != spec.second_control)].groupby(["setting", "level"]).groups:
            sub = res[(res.setting == key[0]) & res.level.isin([key[1], spec.second_control])]
            g = paired_gains(sub, ["setting"], sub.level == key[1], sub.level == spec.second_control)
            second[key] = g["ci"].iloc[0] if len(g) else None
    paper = load_paper_numbers(spec.paper_table) if spec.paper_table else load_paper_numbers().iloc[:0]
    paper_order = list(paper.level)
    levels = sorted(set(stats.level) | set(paper_order),
                    key=lambda l: (l != "baseline", l != spec.second_control,
                                   paper_order.index(l) if l in paper_order else len(paper_order),
                                   level_sort_key(suite, l)))
    multi = stats.setting.nunique() > 1
    rows = []
    for setting in sorted(stats.setting.unique()):
        for level in levels:
            hit = stats[(stats.setting == setting) & (stats.level == level)]
            p = paper[paper.level == level]
            if hit.empty and p.empty:
                continue
            ci = delta.get((setting, level))
            row = {spec.key: level}
            if multi:
                row["setting"] = setting
            row.update({
                "ours top-1": fmt(hit["mean"].iloc[0], hit["std"].iloc[0],
                                  None if uniform else int(hit["n"].iloc[0])) if len(hit) else DASH,
                "Δ vs baseline [95% CI]": ci.format() if ci is not None else DASH})
            if spec.second_control:
                ci2 = second.get((setting, level))
                row[f"Δ vs {spec.second_control} [95% CI]"] = ci2.format() if ci2 is not None else DASH
            row["seeds"] = hit["seeds"].iloc[0] if len(hit) else DASH
            if spec.paper_table:
                row["paper top-1"] = p["value"].iloc[0] if len(p) else DASH
            rows.append(row)
    key_note = {"modules": "cc = center cropping, ae = asymmetric extrapolation, h = hallucination "
                "(row labels as recorded by each run); 'baseline' has none of them.",
                "hallucinator_preset": "'baseline' = MoCoV2 without the Hallucinator (plain crop); 'paper' = "
                "the paper's Hallucinator + center crop; warmup / residual / normalized = 'paper' with one "
                "stabilising change (hallucinator.hallucinator docstring)."}.get(
                    spec.key, f"Varying key: {spec.key} (row labels as recorded by each run); "
                    "'baseline' = the same method without the Hallucinator.")
    caption = (describe(res, profile, probe) + n_note + " " + key_note + " Δ = level − baseline "
               "over seed-matched pairs, paired 95% t-interval.")
    if spec.second_control:
        caption += f" The second Δ column is level − '{spec.second_control}', paired the same way."
    if spec.paper_table:
        caption += (" Paper column: transcribed from the "
                    f"paper's {spec.paper_table.replace('table', 'Table ')} (MoCoV2, ResNet-50, IN-200, "
                    "linear probe), a different setting from ours unless stated.")
    frame = pd.DataFrame(rows)
    return Table(f"{suite}_{profile}_{probe}", f"{suite.replace('table', 'Table ')} — {spec.title} "
                 f"(profile {profile}, {PROBE_LABELS.get(probe, probe)})", caption, frame)


def summary_table(res: pd.DataFrame, suite: str, profile: str) -> Table:
    """Every (method, variant, dataset, level, probe) cell of one profile: mean ± std, seeds."""
    stats = mean_std(res, ["method", "variant", "dataset", "level", "probe", "epochs"])
    stats = stats.assign(_p=[PROBE_ORDER.index(p) if p in PROBE_ORDER else 99 for p in stats.probe],
                         _m=[_method_key(m) for m in stats.method])
    stats = stats.sort_values(["_p", "dataset", "_m", "variant", "level"])
    frame = pd.DataFrame({
        "method": [method_label(m) for m in stats.method], "variant": stats.variant,
        "dataset": [DATASET_LABELS.get(d, d) for d in stats.dataset], "level": stats.level,
        "probe": stats.probe, "epochs": stats.epochs, "n": stats.n,
        "top-1 (mean ± std)": [fmt(m, s) for m, s in zip(stats["mean"], stats["std"])],
        "seeds": stats.seeds})
    if not (frame.level != "").any():
        frame = frame.drop(columns="level")
    caption = (f"All result cells of suite {suite}, profile {profile}, one row per configuration "
               "and probe; top-1 % mean ± std over seeds, read from eval.json. "
               "Probes: " + "; ".join(f"{p} = {PROBE_LABELS[p]}" for p in PROBE_ORDER
                                      if p in set(stats.probe)) + "." + collapse_note(res))
    return Table(f"{suite}_{profile}_summary", f"{suite}: all results (profile {profile})",
                 caption, frame.reset_index(drop=True))


def transfer_table(coll: Collection, profile: str) -> Table:
    """Table 7 shape: one row per method and source (ours / paper); 10 metric columns."""
    tr = coll.transfer[coll.transfer.profile == profile]
    rows = []
    paper = load_paper_numbers("table7")
    order = list(dict.fromkeys(paper.method))  # the paper's row order, then any others
    arms = sorted({(m, h) for m, h in zip(tr.method, tr.hallucinator)} |
                  {(m, h) for m, h in zip(paper.method, paper.hallucinator)},
                  key=lambda mh: (order.index(mh[0]) if mh[0] in order else len(order),
                                  _method_key(mh[0]), mh[1]))
    for method, hall in arms:
        label = METHOD_LABELS.get(method, method) + (" + Hallucinator" if hall else "")
        mine = tr[(tr.method == method) & (tr.hallucinator == hall)]
        if len(mine):
            n = mine.trial.nunique()
            moco = "; VOC: MoCo reports a 5-trial mean" if "voc" in set(mine.task) and n < 5 else ""
            row = {"Method": label, "source": f"ours (n={n} trials{moco})",
                   "pre-training": _pretraining(mine)}
            for ds, metric, col in TRANSFER_COLUMNS:
                if ds == "imagenet1k":
                    row[col] = _pretrain_top1(mine)
                    continue
                vals = mine[mine.task == ds][metric] if metric in mine else pd.Series(dtype=float)
                vals = vals.dropna()
                row[col] = fmt(vals.mean(), vals.std(ddof=1) if len(vals) > 1 else math.nan) if len(vals) else DASH
            rows.append(row)
        pap = paper[(paper.method == method) & (paper.hallucinator == hall)]
        if len(pap):
            row = {"Method": label, "source": "paper",
                   "pre-training": {"random-init": DASH, "supervised": "IN-1k, supervised"}.get(
                       method, "IN-1k, 200 ep")}
            for ds, metric, col in TRANSFER_COLUMNS:
                p = pap[(pap.dataset == ds) & (pap.metric == metric)]
                row[col] = p["value"].iloc[0] if len(p) else DASH
            rows.append(row)
    rows += _transfer_gain_rows(tr)
    iters = _values(tr.iterations) if len(tr) else "n/a"
    caption = (f"Profile {profile}; detection transfer results read from results.json "
               f"(VOC: Faster R-CNN R50-C4 bbox AP; COCO: Mask R-CNN R50-C4 bbox/mask AP); "
               f"iterations {iters}; trials {_values(tr.trial) if len(tr) else 'n/a'}; cells mean ± std "
               "over trials. Ours' IN-1k top-1 is the linear probe (final epoch) of the linked "
               "pretrain_run when that run is finished and evaluated, else —. Paper rows: transcribed "
               "from the paper's Table 7 (200-epoch IN-1K pre-training; the paper's Random-init "
               "VOC AP75 of 57.27 is printed as is). VOC: MoCo reports the mean of 5 trials; ours "
               "is the mean over the n trials shown (n=5 is MoCo's protocol). Pre-training: "
               "epochs and source checkpoint recorded in the converted weights."
               + (" Profile custom: runs that override protocol keys or are evaluation-only "
                  f"(overridden: {_values(tr.protocol_deviations)}); not protocol results."
                  if profile == "custom" and "protocol_deviations" in tr else ""))
    return Table(f"table7_{profile}", f"Table 7 — transfer, ours vs paper (profile {profile})",
                 caption, pd.DataFrame(rows),
                 [["pre-training", "IN-1k top-1", "VOC AP", "VOC AP50", "VOC AP75"],
                  ["COCO APbb", "COCO APbb50", "COCO APbb75", "COCO APmk", "COCO APmk50", "COCO APmk75"]],
                 index_cols=2)


def _pretraining(mine: pd.DataFrame) -> str:
    """Pre-training epochs and source checkpoint (``<run dir>/<file>``) of a row's runs."""
    if set(mine.method) == {"random-init"}:
        return "none (random init)"
    cols = [c for c in ("pretrain_epochs", "pretrain_checkpoint") if c in mine]
    found = []
    for _, r in mine.drop_duplicates(cols).iterrows() if cols else []:
        ep, ck = r.get("pretrain_epochs"), r.get("pretrain_checkpoint")
        ep = "? ep" if ep is None or (isinstance(ep, float) and math.isnan(ep)) else f"{int(ep)} ep"
        ck = "/".join(Path(ck).parts[-2:]) if isinstance(ck, str) and ck else "unknown source"
        found.append(f"{ep}, {ck}")
    return "; ".join(sorted(set(found))) or DASH


def _pretrain_top1(mine: pd.DataFrame) -> str:
    vals = mine.drop_duplicates("pretrain_run")["pretrain_top1"].dropna().astype(float)
    return fmt(vals.mean(), vals.std(ddof=1) if len(vals) > 1 else math.nan) if len(vals) else DASH


def _transfer_gain_rows(tr: pd.DataFrame) -> list[dict]:
    """Paired (by trial) Hallucinator gain per method, one row per method with both arms."""
    rows = []
    for method in sorted(set(tr.method), key=_method_key) if len(tr) else []:
        sub = tr[tr.method == method]
        if sub.hallucinator.nunique() < 2:
            continue
        row = {"Method": f"{METHOD_LABELS.get(method, method)} gain", "source": "ours, w/ − w/o [95% CI]",
               "pre-training": DASH}
        for ds, metric, col in TRANSFER_COLUMNS:
            part = sub[sub.task == ds] if ds != "imagenet1k" else sub.iloc[0:0]
            if part.empty or metric not in part:
                row[col] = DASH
                continue
            g = paired_gains(part, ["task"], part.hallucinator, ~part.hallucinator, pair="trial", value=metric)
            row[col] = g["ci"].iloc[0].format(1) if len(g) else DASH
        rows.append(row)
    return rows


def paper_reference_table(suite: str) -> Table | None:
    """The paper's own table in its printed shape (for the PDF and as files)."""
    spec = SUITES.get(suite)
    if spec is None or spec.paper_table is None:
        return None
    p = load_paper_numbers(spec.paper_table)
    if spec.shape == "gain":
        p = p.assign(col=[f"{DATASET_LABELS.get(d, d)} {'w/' if h else 'w/o'}"
                          for d, h in zip(p.dataset, p.hallucinator)])
        frame = p.pivot_table(index="method", columns="col", values="value", aggfunc="first", sort=False)
        frame = frame.reindex(sorted(frame.index, key=_method_key))
        frame.index = [METHOD_LABELS.get(m, m) for m in frame.index]
        frame = frame.reset_index().rename(columns={"index": "Method"})
    elif spec.shape == "ablation":
        frame = pd.DataFrame({spec.key: p.level, "top-1 (%)": p.value})
    else:
        p = p.assign(row=[METHOD_LABELS.get(m, m) + (" + Hallucinator (Ours)" if h else "")
                          for m, h in zip(p.method, p.hallucinator)],
                     col=[{(d, m): c for d, m, c in TRANSFER_COLUMNS}[(d, m)] for d, m in zip(p.dataset, p.metric)])
        frame = p.pivot_table(index="row", columns="col", values="value", aggfunc="first", sort=False)
        frame = frame[[c for _, _, c in TRANSFER_COLUMNS]].reset_index().rename(columns={"row": "Method"})
    frame.columns.name = None
    return Table(f"{suite}_paper_reference", f"Paper's {spec.paper_table.replace('table', 'Table ')} (transcribed)",
                 f"Numbers as printed in the paper ({p.note.iloc[0]}); reference only, not produced "
                 "by this code.", frame)


def build_tables(coll: Collection, suite: str) -> list[Table]:
    """All tables of ``suite``: per profile, one shaped table per probe, plus a summary."""
    spec = SUITES[suite]
    tables: list[Table] = []
    if spec.shape == "transfer":
        for profile in sorted(set(coll.transfer.profile)) if len(coll.transfer) else []:
            tables.append(transfer_table(coll, profile))
    res = coll.results
    for profile in sorted(set(res.profile)) if len(res) else []:
        sub = res[res.profile == profile]
        if spec.shape in ("gain", "ablation"):
            for probe in [p for p in PROBE_ORDER if p in set(sub.probe)] + \
                         sorted(set(sub.probe) - set(PROBE_ORDER)):
                build = gain_table if spec.shape == "gain" else ablation_table
                tables.append(build(sub[sub.probe == probe], suite, profile, probe))
        tables.append(summary_table(sub, suite, profile))
    ref = paper_reference_table(suite)
    if ref is not None:
        tables.append(ref)
    return tables


# ---------------------------------------------------------------- writers

def _cells(table: Table) -> tuple[list[str], list[list[str]]]:
    frame = table.frame.fillna(DASH)
    return [str(c) for c in frame.columns], [[str(v) for v in row] for row in frame.itertuples(index=False)]


def pipe_table(frame: pd.DataFrame) -> str:
    """A frame as a GitHub Markdown pipe table (missing cells as a dash, ``|`` escaped): the one
    Markdown table writer of the suite (reports, benchmarks and GPU checks alike)."""
    frame = frame.fillna(DASH)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(table: Table) -> str:
    """GitHub Markdown: bold title, caption, pipe table."""
    return f"**{table.title}.** {table.caption}\n\n{pipe_table(table.frame)}\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "±": r"$\pm$", "Δ": r"$\Delta$", "−": r"$-$", "—": "--"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment with the caption (needs \\usepackage{booktabs})."""
    head, body = _cells(table)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{\textbf{{{tex_escape(table.title)}.}} {tex_escape(table.caption)}}}",
             rf"\label{{tab:{table.name}}}",
             r"\begin{tabular}{l" + "c" * (len(head) - 1) + "}", r"\toprule",
             " & ".join(map(tex_escape, head)) + r" \\", r"\midrule"]
    lines += [" & ".join(map(tex_escape, r)) + r" \\" for r in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """CSV of the displayed cells; the title and caption ride on one leading ``#`` line."""
    return f"# {table.title}. {table.caption}\n" + table.frame.fillna(DASH).to_csv(index=False)


def write_tables(tables: list[Table], out_dir: Path) -> list[Path]:
    """Write ``<name>.md/.csv/.tex`` for each table plus ``tables.md`` with all of them, each
    atomically (``write_atomic``)."""
    paths = []
    for t in tables:
        for ext, render in (("md", to_markdown), ("csv", to_csv), ("tex", to_latex)):
            path = out_dir / f"{t.name}.{ext}"
            text = render(t)
            write_atomic(path, lambda f: f.write(text))
            paths.append(path)
    text = "\n".join(to_markdown(t) for t in tables)
    write_atomic(out_dir / "tables.md", lambda f: f.write(text))
    return paths
