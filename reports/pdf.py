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
from matplotlib.figure import Figure  # noqa: E402

from hallucinator.rundir import write_atomic  # noqa: E402

from .tables import DASH, Table  # noqa: E402

PAGE = (11.69, 8.27)  # A4 landscape, inches
MAX_COLS = 10
CAPTION_CHARS = 175   # caption characters per line at 8 pt across the page
CAPTION_LINE = 0.0155  # one 8-pt caption line, in figure fractions
# PDF fonts: TrueType (Type 42) embedding; conference checkers reject Type 3 bitmap fonts.
PDF_RC = {"pdf.fonttype": 42, "ps.fonttype": 42}


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(str(text), width, break_long_words=True) or [""]


def _page(title: str, subtitle: str = "") -> tuple[plt.Figure, plt.Axes]:
    """A page with a title, the wrapped caption under it, and an empty axes below the caption.

    Pages are plain ``Figure`` objects, not pyplot's: a report of hundreds of pages holds no pyplot
    state, and each page is freed once written."""
    fig = Figure(figsize=PAGE)
    fig.text(0.04, 0.955, title, fontsize=14, weight="bold", va="top")
    top = 0.9
    if subtitle:
        lines = _wrap(subtitle, CAPTION_CHARS)
        fig.text(0.04, 0.915, "\n".join(lines), fontsize=8, va="top")
        top = 0.915 - CAPTION_LINE * len(lines) - 0.02
    ax = fig.add_axes((0.03, 0.04, 0.94, top - 0.04))
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


def _widths(header: list[str], rows: list[list[str]]) -> list[int]:
    """Characters per column (10-70), from the widest cell of the whole table (all its pages)."""
    return [max(10, min(70, max([len(h) // 2 + 1] + [len(r[i]) for r in rows])))
            for i, h in enumerate(header)]


def _wrapped(row: list[str], widths: list[int]) -> list[str]:
    return ["\n".join(_wrap(v, w)) for v, w in zip(row, widths)]


def _height(cells: list[str], fontsize: float) -> float:
    """Height of one table row in axes fractions of a table page: wrapped lines + padding."""
    return 0.02 * fontsize / 8 * (max(c.count("\n") + 1 for c in cells) + 0.6)


def _draw_table(ax: plt.Axes, head: list[str], body: list[list[str]], widths: list[int],
                fontsize: float, axes_height: float) -> None:
    """Draw wrapped ``head`` + ``body`` at the top of ``ax``, row heights from their wrapped lines."""
    tab = ax.table(cellText=body or [[""] * len(head)], colLabels=head, loc="upper center", cellLoc="center",
                   colWidths=[w / sum(widths) for w in widths])
    tab.auto_set_font_size(False)
    tab.set_fontsize(fontsize)
    rows = [head] + (body or [[""] * len(head)])
    for (r, _), cell in tab.get_celld().items():
        cell.set_height(_height(rows[r], fontsize) / axes_height)
        if r == 0:
            cell.set_facecolor("#e8e8e8")
            cell.set_text_props(weight="bold")


def _row_pages(head: list[str], body: list[list[str]], fontsize: float, room: float) -> list[list[list[str]]]:
    """Split ``body`` into pages whose rows, under the repeated header, fit in ``room``."""
    pages, cur, used = [], [], _height(head, fontsize)
    for row in body:
        h = _height(row, fontsize)
        if cur and used + h > room:
            pages.append(cur)
            cur, used = [], _height(head, fontsize)
        cur.append(row)
        used += h
    return pages + [cur]


def table_pages(table: Table) -> list[tuple[str, plt.Figure]]:
    """One or more pages for ``table``: columns, then rows, split so every row is on some page."""
    frame = table.frame.fillna(DASH).astype(str)
    chunks = _column_chunks(table) if len(frame.columns) else [[]]
    caption_lines = len(_wrap(table.caption, CAPTION_CHARS)) if table.caption else 0
    # axes height (figure fractions) as _page makes it; table rows are sized in these units
    axes_height = (0.915 - CAPTION_LINE * caption_lines - 0.02 if table.caption else 0.9) - 0.04
    layouts = []
    for cols in chunks:
        rows = frame[cols].values.tolist()
        fontsize = 8 if len(cols) <= 8 else 7
        widths = _widths(cols, rows)
        # characters that fit across the table at this font size (~0.62 em per character)
        fit = int(0.94 * PAGE[0] * 72 / (0.62 * fontsize))
        if sum(widths) > fit:
            widths = [max(6, w * fit // sum(widths)) for w in widths]
        head = ["\n".join(_wrap(h, max(8, w))) for h, w in zip(cols, widths)]
        body = [_wrapped(r, widths) for r in rows]
        layouts += [(head, part, widths, fontsize) for part in _row_pages(head, body, fontsize, 0.97 * axes_height)]
    pages = []
    for i, (head, part, widths, fontsize) in enumerate(layouts, 1):
        title = table.title + (f" (part {i}/{len(layouts)})" if len(layouts) > 1 else "")
        fig, ax = _page(title, table.caption)
        _draw_table(ax, head, part, widths, fontsize, axes_height)
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
    fig = Figure(figsize=PAGE)
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
    """Write ``pages`` to ``path`` in order (atomically: a failed write leaves the previous PDF or
    none, never a truncated one), close the figures, return the page titles."""
    def write(f) -> None:
        with matplotlib.rc_context(PDF_RC), PdfPages(f) as pdf:
            for _, fig in pages:
                pdf.savefig(fig)
            info = pdf.infodict()
            info["Title"] = title
            info["CreationDate"] = datetime.now(timezone.utc)

    try:
        write_atomic(path, write, binary=True)
    finally:
        for _, fig in pages:
            plt.close(fig)
    return [t for t, _ in pages]
