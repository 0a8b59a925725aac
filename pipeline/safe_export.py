"""CSV/XLSX exports a spreadsheet cannot turn into code.

A cell such as `=HYPERLINK("http://x","y")` taken from a customer record would run as a formula
when the file is opened in Excel/LibreOffice (CSV/formula injection). Every text cell starting
with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`; XLSX cells are written as strings only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .errors import CrmcleanError

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> str:
    """Cell text that a spreadsheet shows as text (None/NaN → empty)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    return "'" + text if _runs(text) else text


def _runs(text: str) -> bool:
    """A spreadsheet would run it, or it already wears apostrophes in front of such a text: the
    latter get one more too, so that `unneutralize` always removes exactly the one it added."""
    return text.lstrip("'").startswith(DANGEROUS_PREFIXES)


def unneutralize(value: Any) -> str:
    """Undo `neutralize` when reading a filled-in file back (keys must round-trip)."""
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    return text[1:] if text.startswith("'") and _runs(text) else text


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as neutralised text; headers too (they can come from source files)."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        col = frame[column]
        uniq = pd.unique(col.astype(object))
        out[neutralize(column)] = col.astype(object).map(dict(zip(uniq, (neutralize(v) for v in uniq))))
    return out.reset_index(drop=True)


def write_table(
    frame: pd.DataFrame, path: Path, sheet_name: str = "review", choices: dict[str, list[str]] | None = None
) -> Path:
    """Write `.csv` (UTF-8 with BOM so Excel reads Chinese) or `.xlsx` by extension.

    `choices` (XLSX only): column → allowed values, offered as a drop-down (empty stays allowed).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    safe = neutralize_frame(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".csv", ".txt"):
        safe.to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix in (".xlsx", ".xlsm"):
        _write_xlsx(safe, path, sheet_name, choices or {})
    else:
        raise CrmcleanError(f"{path}: unsupported export format {suffix or '(none)'}; use .csv or .xlsx")
    return path


def _write_xlsx(safe: pd.DataFrame, path: Path, sheet_name: str, choices: dict[str, list[str]]) -> None:
    import xlsxwriter

    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    with xlsxwriter.Workbook(str(path), options) as book:
        sheet = book.add_worksheet(sheet_name[:31])
        bold = book.add_format({"bold": True})
        for c, name in enumerate(safe.columns):
            sheet.write_string(0, c, str(name), bold)
            sheet.set_column(c, c, min(max(len(str(name)) + 2, 12), 40))
        for r, row in enumerate(safe.itertuples(index=False, name=None), start=1):
            for c, value in enumerate(row):
                if value:
                    sheet.write_string(r, c, value)
        for column, allowed in choices.items():
            if column in safe.columns and len(safe):
                c = list(safe.columns).index(column)
                sheet.data_validation(
                    1, c, len(safe), c, {"validate": "list", "source": list(allowed), "ignore_blank": True}
                )
        sheet.freeze_panes(1, 0)
        if len(safe.columns):
            sheet.autofilter(0, 0, max(len(safe), 1), len(safe.columns) - 1)
