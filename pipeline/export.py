"""`crmclean export`: the golden master (and optionally xref, quarantine, review queue) as files.

The master is the product; downstream teams read it in spreadsheets and data tools, not SQL.
CSV and XLSX cells that a spreadsheet would run as a formula are neutralised (`safe_export`);
Parquet keeps the values exactly (no spreadsheet opens it). Personal data is masked unless the
caller asks for it (`show_pii`), with the same policy as the report (`masking`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import CrmcleanError
from .masking import mask_frame, mask_text, masker_for
from .safe_export import neutralize_frame

TABLES = {"master": "master_customer", "xref": "customer_xref", "quarantine": "quarantine", "review": "review_queue"}
FORMATS = (".csv", ".xlsx", ".parquet")


@dataclass(frozen=True)
class Exported:
    table: str
    path: Path
    rows: int


def export_tables(frames: dict[str, pd.DataFrame], target: Path, show_pii: bool = False) -> list[Exported]:
    """Write each frame; the first goes to `target`, others beside it (`<stem>.<table><suffix>`),
    or as further sheets of one workbook for `.xlsx`."""
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise CrmcleanError(f"{target}: unsupported export format {suffix or '(none)'}; use {', '.join(FORMATS)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shown = {name: frame if show_pii else _mask_summaries(mask_frame(frame)) for name, frame in frames.items()}
    if suffix == ".xlsx":
        _write_workbook(shown, target)
        return [Exported(name, target, len(frame)) for name, frame in shown.items()]
    written = []
    for i, (name, frame) in enumerate(shown.items()):
        path = target if i == 0 else target.with_name(f"{target.stem}.{name}{suffix}")
        if suffix == ".csv":
            neutralize_frame(frame).to_csv(path, index=False, encoding="utf-8-sig")
        else:
            frame.to_parquet(path, index=False)
        written.append(Exported(name, path, len(frame)))
    return written


def _write_workbook(frames: dict[str, pd.DataFrame], path: Path) -> None:
    """One sheet per table; every cell a string cell (never a formula), headers bold, filters on."""
    import xlsxwriter

    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    with xlsxwriter.Workbook(str(path), options) as book:
        bold = book.add_format({"bold": True})
        for name, frame in frames.items():
            sheet = book.add_worksheet(name[:31])
            for c, column in enumerate(frame.columns):
                sheet.write_string(0, c, str(column), bold)
                sheet.set_column(c, c, min(max(len(str(column)) + 2, 12), 40))
            for r, row in enumerate(frame.astype(object).itertuples(index=False, name=None), start=1):
                for c, value in enumerate(row):
                    if value is not None and not (isinstance(value, float) and value != value):
                        _write_cell(sheet, r, c, value)
            sheet.freeze_panes(1, 0)
            if len(frame.columns):
                sheet.autofilter(0, 0, max(len(frame), 1), len(frame.columns) - 1)


def _write_cell(sheet, row: int, col: int, value) -> None:
    """Numbers stay numbers; everything else is a string cell (xlsxwriter never makes it a formula)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        sheet.write_number(row, col, value)
    else:
        sheet.write_string(row, col, str(value))


def _mask_summaries(frame: pd.DataFrame) -> pd.DataFrame:
    """review_queue's `summary_l`/`summary_r` hold both records as JSON ({field: value}): each
    value masked by its field's rule (mask_frame sees only the column name)."""
    for column in ("summary_l", "summary_r"):
        if column in frame:
            frame = frame.assign(**{column: frame[column].map(_mask_json_fields)})
    return frame


def _mask_json_fields(text):
    import json

    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return mask_text(text)
    if not isinstance(data, dict):
        return text if text is None or text != text else mask_text(text)
    masked = {k: (masker_for(str(k)) or (lambda v: v))(v) if v not in (None, "") else v for k, v in data.items()}
    return json.dumps(masked, ensure_ascii=False)
