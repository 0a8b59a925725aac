"""Canonical fields that a source splits over several columns, joined back at ingest.

A birth date as `birth_year` + `birth_month` + `birth_day` becomes one ISO text before
standardize sees it; a partial date keeps what is there in reduced ISO precision (`1985-03`,
`1985`), which standardize keeps and flags `partial` and the matcher compares by year.
`street_number` + `address_1` + `address_2` becomes one address line.
"""

from __future__ import annotations

import re

from ..standardize.text import EMPTY_MARKERS

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_NUMBER_RE = re.compile(r"^\d{1,4}(?:\.0+)?$")  # Excel gives 1985 or, from a float cell, 1985.0
# "No value" in a date-part column: the markers of every field plus R's `NA` and Stata's/SAS's
# `.` (in a column of numbers `NA` cannot be Namibia or a surname, as it can elsewhere). Not `0`:
# a month or day 0 is as often a mistyped 10 or 1 (RLdata10000 has 8), so it stays invalid.
_MISSING_PARTS = EMPTY_MARKERS | {"na", "<na>", "nan", "."}


def _present(text: str | None) -> str | None:
    """The part as written, or None when it is blank or a missing-value marker."""
    if text is None or not text.strip() or text.strip().lower() in _MISSING_PARTS:
        return None
    return text.strip()


def _number(text: str | None) -> int | None:
    if text is None or not _NUMBER_RE.match(text.strip()):
        return None
    return int(float(text))


def _month(text: str | None) -> int | None:
    """3, 03, "Mar", "March", "3月" → 3; anything else None."""
    if text is None:
        return None
    value = _number(text.strip().rstrip("月"))
    if value is None:
        value = _MONTHS.get(text.strip().lower().rstrip(".")[:3])
    return value


def combine_birth_date(year: str | None, month: str | None, day: str | None) -> str | None:
    """ISO birth date from its parts: `YYYY-MM-DD`, or `YYYY-MM` / `YYYY` when the day / month
    is missing. No year: None (a day and month alone cannot be compared by the matcher). A part
    that is present but not a number/month name is passed on as written (`1985-13-40`), so
    standardize flags the value invalid instead of it silently becoming a partial date; a part that
    says "no value" (`NA`, `N/A`, `.`, blank) is missing, so `1930`+`4`+`NA` is the partial `1930-04`."""
    year, month, day = _present(year), _present(month), _present(day)
    if year is None:
        return None
    y = _number(year.rstrip("年"))
    m = _month(month) if month is not None else None
    d = _number(day.rstrip("日号")) if day is not None else None
    if y is None or y < 1000 or (month is not None and m is None) or (day is not None and d is None):
        return "-".join(p for p in (year, month, day) if p is not None)
    if m is None:
        return f"{y:04d}"
    if d is None:
        return f"{y:04d}-{m:02d}"
    return f"{y:04d}-{m:02d}-{d:02d}"


def combine_address(number: str | None, line1: str | None, line2: str | None) -> str | None:
    """`12` + `Wilkins Street` + `Rosedale` → `12 Wilkins Street, Rosedale` (parts in that order)."""
    head = " ".join(p for p in (number, line1) if p)
    return ", ".join(p for p in (head, line2) if p) or None
