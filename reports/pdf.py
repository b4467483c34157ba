"""Assemble one PDF per suite (matplotlib PdfPages): title, tables, figures, problems, provenance."""
from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from .tables import DASH, Table  # noqa: E402

PAGE = (11.69, 8.27)  # A4 landscape, inches
MAX_COLS = 10
MAX_LINES = 26  # body text lines per table page


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(str(text), width, break_long_words=True) or [""]


def _page(title: str, subtitle: str = "") -> tuple[plt.Figure, plt.Axes]:
    fig = plt.figure(figsize=PAGE)
    fig.text(0.04, 0.955, title, fontsize=14, weight="bold", va="top")
    if subtitle:
        fig.text(0.04, 0.915, "\n".join(_wrap(subtitle, 175)), fontsize=8, va="top")
    ax = fig.add_axes((0.03, 0.04, 0.94, 0.78 if subtitle else 0.86))
    ax.axis("off")
    return fig, ax


def _column_chunks(table: Table) -> list[list[str]]:
    """Split the non-index columns into page-wide chunks, keeping ``col_groups`` together."""
    cols = list(table.frame.columns)
    label, rest = cols[:table.index_cols], cols[table.index_cols:]
    grouped = [g for g in table.col_groups if g]
    seen = {c for g in grouped for c in g}
    groups = grouped + [[c] for c in rest if c not in seen]
    chunks, cur = [], []
    for g in groups:
        if cur and len(label) + len(cur) + len(g) > MAX_COLS + 1:
            chunks.append(cur)
            cur = []
        cur += [c for c in g if c in rest]
    if cur or not chunks:
        chunks.append(cur)
    return [label + c for c in chunks]


def _draw_table(ax: plt.Axes, header: list[str], rows: list[list[str]], fontsize: float) -> None:
    """Draw a wrapped, auto-sized table at the top of ``ax``; row heights follow wrapped lines."""
    widths = [max(10, min(40, max([len(h) // 2 + 1] + [len(r[i]) for r in rows])))
              for i, h in enumerate(header)]
    head = ["\n".join(_wrap(h, max(12, w))) for h, w in zip(header, widths)]
    body = [["\n".join(_wrap(v, w)) for v, w in zip(r, widths)] for r in rows] or [[""] * len(header)]
    tab = ax.table(cellText=body, colLabels=head, loc="upper center", cellLoc="center",
                   colWidths=[w / sum(widths) for w in widths])
    tab.auto_set_font_size(False)
    tab.set_fontsize(fontsize)
    lines = [max(t.count("\n") + 1 for t in row) for row in [head] + body]
    line_h = 0.024 * fontsize / 8
    for (r, _), cell in tab.get_celld().items():
        cell.set_height(line_h * (lines[r] + 0.6))
        if r == 0:
            cell.set_facecolor("#e8e8e8")
            cell.set_text_props(weight="bold")


def table_pages(table: Table) -> list[tuple[str, plt.Figure]]:
    """One or more pages for ``table``: columns and rows split so the text stays legible."""
    frame = table.frame.fillna(DASH).astype(str)
    pages = []
    chunks = _column_chunks(table) if len(frame.columns) else [[]]
    for ci, cols in enumerate(chunks):
        rows = frame[cols].values.tolist()
        wraps = [max(1, max(len(v) // 40 + 1 for v in r)) for r in rows] or [1]
        row_chunks, cur, used = [], [], 0
        for r, n in zip(rows, wraps):
            if cur and used + n > MAX_LINES:
                row_chunks.append(cur)
                cur, used = [], 0
            cur.append(r)
            used += n
        row_chunks.append(cur)
        for ri, part in enumerate(row_chunks):
            n_parts = len(chunks) * len(row_chunks)
            idx = ci * len(row_chunks) + ri + 1
            title = table.title + (f" (part {idx}/{n_parts})" if n_parts > 1 else "")
            fig, ax = _page(title, table.caption)
            _draw_table(ax, cols, part, fontsize=8 if len(cols) <= 8 else 7)
            pages.append((title, fig))
    return pages


def text_page(title: str, lines: list[str]) -> tuple[str, plt.Figure]:
    fig, ax = _page(title)
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=10, family="monospace",
            transform=ax.transAxes)
    return title, fig


def frame_pages(title: str, intro: str, frame: pd.DataFrame) -> list[tuple[str, plt.Figure]]:
    """A plain DataFrame as table page(s) under ``title`` (problems, provenance)."""
    return table_pages(Table(title.lower().replace(" ", "_"), title, intro, frame))


def title_page(suite: str, description: str, facts: list[str], contents: list[str]) -> tuple[str, plt.Figure]:
    fig = plt.figure(figsize=PAGE)
    fig.text(0.5, 0.88, f"Hallucinator reproduction — suite {suite}", ha="center", fontsize=22, weight="bold")
    fig.text(0.5, 0.82, description, ha="center", fontsize=13)
    fig.text(0.5, 0.77, "Reproduction of Wu et al., \"Hallucination Improves the Performance of "
             "Unsupervised Visual Representation Learning\", ICCV 2023", ha="center", fontsize=10,
             style="italic")
    fig.text(0.08, 0.70, "\n".join(facts), va="top", fontsize=10, family="monospace")
    shown = contents[:28] + ([f"... and {len(contents) - 28} more pages"] if len(contents) > 28 else [])
    fig.text(0.55, 0.70, "Contents\n" + "\n".join(f"{i + 2:3d}. {c[:70]}" for i, c in enumerate(shown)),
             va="top", fontsize=8, family="monospace")
    return "Title", fig


def write_pdf(path: Path, pages: list[tuple[str, plt.Figure]], title: str) -> list[str]:
    """Write ``pages`` to ``path`` in order, close the figures, return the page titles."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with PdfPages(path) as pdf:
        for _, fig in pages:
            pdf.savefig(fig)
            plt.close(fig)
        info = pdf.infodict()
        info["Title"] = title
        info["CreationDate"] = datetime.now(timezone.utc)
    return [t for t, _ in pages]
