"""Dates → ISO `YYYY-MM-DD`.

Day-first versus month-first cannot be decided from one value ("03/07/1985"), so it is decided
per column per source from the data (`infer_day_first`) before records are chunked, and passed
in. A value that is still ambiguous is kept (month-first) and flagged `ambiguous_day_month`.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache

import pandas as pd

from .text import clean_text, flag_for

_MONTHS = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
_MON = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_TIME = r"(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[ap]\.?m\.?)?\s*(?:z|utc|gmt|[+-]\d{2}:?\d{2})?)?"

_YMD_RE = re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})" + _TIME + r"$", re.I)
_CJK_RE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?" + r"(?:\s*\d{1,2}[:时点].*)?$")
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_AB_Y_RE = re.compile(r"^(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4}|\d{2})" + _TIME + r"$", re.I)
_D_MON_Y_RE = re.compile(
    r"^(\d{1,2})(?:st|nd|rd|th)?[\s\-/.]*" + _MON + r"[\s\-/.,]*(\d{4}|\d{2})" + _TIME + r"$", re.I
)
_MON_D_Y_RE = re.compile(r"^" + _MON + r"[\s\-/.]*(\d{1,2})(?:st|nd|rd|th)?[\s,]+(\d{4})" + _TIME + r"$", re.I)
_SERIAL_RE = re.compile(r"^(\d{5})(?:\.\d+)?$")
_PARTIAL_RE = re.compile(r"^(\d{4})(?:\s*[-/.年]\s*(\d{1,2})\s*月?)?$")  # 1985, 1985-03, 1985年3月

EXCEL_EPOCH = date(1899, 12, 30)  # Excel's 1900 system, including its phantom 1900-02-29
DEFAULT_SERIAL_RANGE = (10_000, 73_050)  # 1927-05-18 … 2099-12-31: anything else is not a date


def _year(y: str, two_digit_pivot: int) -> int:
    value = int(y)
    if len(y) == 2:
        value += 1900 if value > two_digit_pivot else 2000
    return value


def _build(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


@lru_cache(maxsize=300_000)
def standardize_date(
    raw,
    day_first: bool | None = None,
    field: str = "date",
    today: date | None = None,
    serial_min: int = DEFAULT_SERIAL_RANGE[0],
    serial_max: int = DEFAULT_SERIAL_RANGE[1],
) -> tuple[str | None, str]:
    """raw → (ISO date or None, flag). `day_first` is the column's decision (None = unknown)."""
    text, codes = clean_text(raw)
    if text is None:
        return None, flag_for(raw, None, codes)
    flags = list(codes)
    today = today or date.today()
    pivot = today.year % 100
    result: date | None = None
    matched = True
    if m := _YMD_RE.match(text) or _CJK_RE.match(text):
        result = _build(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    elif m := _COMPACT_RE.match(text):
        result = _build(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    elif m := _SERIAL_RE.match(text):
        serial = int(m.group(1))
        if serial_min <= serial <= serial_max:
            result = EXCEL_EPOCH + timedelta(days=serial)
            flags.append("excel_serial")
        else:
            matched = False
    elif m := _AB_Y_RE.match(text):
        a, b, y = int(m.group(1)), int(m.group(2)), _year(m.group(3), pivot)
        if a > 12 and b <= 12:
            result = _build(y, b, a)
        elif b > 12 and a <= 12:
            result = _build(y, a, b)
        elif day_first is None:
            result = _build(y, a, b)
            if a != b:
                flags.append("ambiguous_day_month")
        else:
            result = _build(y, b, a) if day_first else _build(y, a, b)
    elif m := _D_MON_Y_RE.match(text):
        result = _build(_year(m.group(3), pivot), _MONTHS[m.group(2).lower().rstrip(".")], int(m.group(1)))
    elif m := _MON_D_Y_RE.match(text):
        result = _build(int(m.group(3)), _MONTHS[m.group(1).lower().rstrip(".")], int(m.group(2)))
    else:
        matched = False
    if result is None and not matched and field == "birth_date" and (m := _PARTIAL_RE.match(text)):
        return _partial_date(raw, int(m.group(1)), m.group(2), today, flags)
    if result is None:
        return None, flag_for(raw, None, flags + (["invalid"] if matched else ["invalid", "unrecognized"]))
    if result.year < 1900 or (field == "birth_date" and result > today) or result > today + timedelta(days=366):
        flags.append("implausible")  # kept: an old or odd date still tells records apart
    iso = result.isoformat()
    return iso, flag_for(raw, iso, flags)


def _partial_date(raw, year: int, month: str | None, today: date, codes: list[str]) -> tuple[str | None, str]:
    """A birth year (`1985`) or year and month (`1985-03`) in reduced ISO precision, flagged
    `partial`: the matcher compares it by year (its first four characters)."""
    if month is not None and not 1 <= int(month) <= 12:
        return None, flag_for(raw, None, codes + ["invalid"])
    iso = f"{year:04d}" if month is None else f"{year:04d}-{int(month):02d}"
    codes = codes + ["partial"]
    if year < 1900 or year > today.year:
        codes.append("implausible")
    return iso, flag_for(raw, iso, codes)


def infer_day_first(values: pd.Series) -> bool | None:
    """Majority vote over values like a/b/yyyy: a > 12 proves day-first, b > 12 month-first."""
    counts = values.dropna().value_counts()  # each distinct value parsed once, weighted by its count
    if counts.empty:
        return None
    text = pd.Series(counts.index.astype(str), index=range(len(counts))).str.strip()
    parts = text.str.extract(r"^(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*\d{2,4}\b")
    weight = pd.Series(counts.to_numpy(), index=parts.index)
    parts = parts.dropna()
    if parts.empty:
        return None
    a = parts[0].astype(int)
    b = parts[1].astype(int)
    w = weight[parts.index]
    day_votes = int(w[(a > 12) & (b <= 12)].sum())
    month_votes = int(w[(b > 12) & (a <= 12)].sum())
    if day_votes == month_votes:
        return None
    return day_votes > month_votes
