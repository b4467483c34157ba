"""The PDF shows every row of every table, in TrueType (Type 42) fonts; text read back with pypdf."""
import csv
import re

import matplotlib.pyplot as plt
import pandas as pd
import pypdf

from reports.build import build_suite
from reports.pdf import table_pages, write_pdf
from reports.tables import Table



def _squash(text: str) -> str:
    """Text without whitespace: table cells wrap inside their boxes, so line breaks move."""
    return re.sub(r"\s+", "", text)


def _pdf_text(path) -> str:
    """The text drawn inside the pages' printable area (a table run off the page is still in the file)."""
    parts = []
    for page in pypdf.PdfReader(path).pages:
        box = page.mediabox
        margin = 0.03 * float(box.height)  # the table area ends 4% above the page bottom

        def keep(text, cm, tm, font, size):
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            if float(box.left) <= x <= float(box.right) and float(box.bottom) + margin <= y <= float(box.top):
                parts.append(text)
        page.extract_text(visitor_text=keep)
    return _squash("".join(parts))


def _csv_rows(path):
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("# ")]
    return list(csv.reader(lines))[1:]


def test_long_table_keeps_every_row(tmp_path):
    """60 rows, a few wrapping to two lines: the old pagination by character counts ran rows off the page."""
    frame = pd.DataFrame({"run": [f"row{i:03d}" for i in range(60)],
                          "note": [("long text " * (1 + 5 * (i % 9 == 0))).strip() for i in range(60)],
                          "top-1 accuracy of the fast linear probe (all labels), mean ± std over seeds":
                          [f"{50 + i / 7:.2f}" for i in range(60)]})
    table = Table("t", "A long table", "caption " * 60, frame)
    pages = table_pages(table)
    assert len(pages) > 1
    write_pdf(tmp_path / "t.pdf", pages, "t")
    text = _pdf_text(tmp_path / "t.pdf")
    missing = [r for r in frame.itertuples(index=False) if not all(_squash(v) in text for v in r)]
    assert missing == []


def test_pages_hold_no_pyplot_state(tmp_path):
    """A report of many pages: pyplot warned past 20 open figures and kept every page in memory."""
    plt.close("all")
    frame = pd.DataFrame({"run": [f"row{i:03d}" for i in range(800)], "top-1": [f"{i / 9:.2f}" for i in range(800)]})
    pages = table_pages(Table("t", "A very long table", "caption", frame))
    assert len(pages) > 20 and plt.get_fignums() == []
    assert write_pdf(tmp_path / "t.pdf", pages, "t") == [title for title, _ in pages]
    assert len(pypdf.PdfReader(tmp_path / "t.pdf").pages) == len(pages)


def test_every_csv_row_of_a_suite_is_in_its_pdf(runs_root, tmp_path):
    result = build_suite(runs_root, tmp_path / "out", "table1")
    text = _pdf_text(result.pdf)
    tables = [p for p in result.files if p.suffix == ".csv" and p.name.startswith("table1_")]
    assert len(tables) >= 4
    for path in tables:
        for row in _csv_rows(path):
            assert all(_squash(cell) in text for cell in row), (path.name, row)


def test_fonts_are_truetype_not_type3(runs_root, tmp_path):
    result = build_suite(runs_root, tmp_path / "out", "table1")
    fonts = set()
    for page in pypdf.PdfReader(result.pdf).pages:
        for font in page["/Resources"].get("/Font", {}).values():
            fonts.add(str(font.get_object()["/Subtype"]))
    assert fonts and "/Type3" not in fonts, fonts
