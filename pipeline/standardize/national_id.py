"""National identification numbers (US SSN, Chinese 身份证号, UK National Insurance number,
FEBRL's soc_sec_id …): one canonical form so one person's number compares equal whatever
punctuation, spacing or case an export used.

`national_id_std` is the number's letters and digits, upper-case (`123-45-6789` →
`123456789`, `ab 12 34 56 c` → `AB123456C`, `11010519491231002x` → `11010519491231002X`).
What it never is:

* a placeholder (`000000000`, `123456789`, `999-99-9999`, all one character, `n/a`, `无`) or a
  masked number (`***-**-6789`, `XXX-XX-6789`, `110101********1234`): None, flag `placeholder`
  (masked: `masked;placeholder`) — a shared dummy or masked number would merge strangers;
* a number a spreadsheet already destroyed (`1.10105E+17`: the last digits are gone) or one
  with too few / too many characters to identify anyone: None, flag `invalid`;
* an 18-digit 身份证 whose check digit (ISO 7064 MOD 11-2) is wrong, or a US SSN written
  `ddd-dd-dddd` with an area, group or serial the SSA never issues (000, 666, 00, 0000):
  None, flag `invalid` — kept in the raw column, never published or matched as if it were right.

Which country a bare number belongs to is not known, so only the checks a number's own shape
proves are applied (an 18-digit number is treated as a 身份证 only when its digits 7–14 are a
real birth date and it starts with a province code digit 1–8).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

from .text import clean_text, flag_for, placeholder_form

MIN_LENGTH = 5  # fewer characters identify nobody (and FEBRL's soc_sec_id has 7)
MAX_LENGTH = 20

# Whole-cell values that mean "no number" (compared by placeholder_form), besides the markers
# empty in every field (text.EMPTY_MARKERS). Extended by rules.standardize.placeholders.national_id.
DEFAULT_PLACEHOLDERS = frozenset(
    {
        "na",
        "none",
        "not given",
        "not provided",
        "refused",
        "declined",
        "unknown",
        "x",
        "xx",
        "xxx",
        "no id",
        "no ssn",
        "none given",
        "pending",
        "applied for",
        "tbd",
        "see file",
        "on file",
        "无",
        "没有",
        "不详",
        "未提供",
        "待补",
        "待定",
        "空",
    }
)
# Numbers that are well-known dummies (besides runs and repeats, see is_dummy): the wallet-card
# and advertising SSNs 078-05-1120 and 219-09-9999, 457-55-5462 (published in an advert, then
# used by thousands), and the SSA's reserved advertising range 987-65-4320 … 987-65-4329.
KNOWN_DUMMIES = frozenset({"078051120", "219099999", "457555462"} | {f"98765432{d}" for d in range(10)})
_ASCENDING = "01234567890123456789"
_DESCENDING = "98765432109876543210"

_KEEP_RE = re.compile(r"[^0-9A-Z]+")
_SCIENTIFIC_RE = re.compile(
    r"^[+-]?\d(?:[.,]\d+)?E\+\d{1,3}$", re.I
)  # 1.10105E+17: Excel lost digits (it always writes the +)
_FLOAT_TAIL_RE = re.compile(r"^(\d{5,})\.0+$")  # 1804974.0: a number written by a float column
_MASKED_RE = re.compile(r"[*•●]|[Xx]{3}")  # XXX-XX-6789; a 身份证 ends in one X, a NINO has no XXX
_LABEL_RE = re.compile(
    r"^(?:(?:ssn|sin|nino|ni|national id|id|no|number|身份证(?:号码?)?|证件号码?)\s*[:#.]|#)\s*", re.I
)
_SSN_SHAPE_RE = re.compile(r"^(\d{3})-(\d{2})-(\d{4})$")
_CN_SHAPE_RE = re.compile(r"^[1-8]\d{16}[0-9X]$")
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"  # check character for (weighted sum mod 11) = 0 … 10


def cn_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a 身份证's first 17 digits."""
    return _CN_CHECK[sum(int(c) * w for c, w in zip(first17, _CN_WEIGHTS)) % 11]


def _looks_like_cn_id(value: str) -> bool:
    """18 characters, province digit 1–8, digits 7–14 a real birth date (1900 … today)."""
    if not _CN_SHAPE_RE.match(value):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def is_dummy(value: str) -> bool:
    """All one character, an ascending/descending digit run (123456789, 9876543), or a known
    advertising/test number."""
    if len(set(value)) == 1 or value in KNOWN_DUMMIES:
        return True
    return value.isdigit() and len(value) >= MIN_LENGTH and (value in _ASCENDING or value in _DESCENDING)


@lru_cache(maxsize=200_000)
def standardize_national_id(raw, placeholders: frozenset = DEFAULT_PLACEHOLDERS) -> tuple[str | None, str]:
    """raw → (national_id_std, flag). Never raises; see the module docstring for the rules."""
    text, codes = clean_text(raw)
    if text is None:
        return None, flag_for(raw, None, codes)
    if placeholder_form(text) in placeholders or placeholder_form(text) in DEFAULT_PLACEHOLDERS:
        return None, flag_for(raw, None, (*codes, "placeholder"))
    if _SCIENTIFIC_RE.match(text):  # the digits after the 6th were rounded away: unrecoverable
        return None, flag_for(raw, None, (*codes, "invalid"))
    if not text.isascii():  # Arabic-Indic, Devanagari … digits: the same number
        text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    text = _LABEL_RE.sub("", text, count=1) or text  # "SSN: 536-22-1234" → the number only
    tail = _FLOAT_TAIL_RE.match(text)
    if tail:
        text = tail.group(1)
    value = _KEEP_RE.sub("", text.upper())
    # ***-**-6789, 110101********1234: the export hid the number (checked on the compact value
    # too, so the standardized form is a fixed point: "00XX:X" is as masked as "00XXX")
    if _MASKED_RE.search(text) or _MASKED_RE.search(value):
        return None, flag_for(raw, None, (*codes, "masked", "placeholder"))
    ssn = _SSN_SHAPE_RE.match(text)
    if value and is_dummy(value):
        return None, flag_for(raw, None, (*codes, "placeholder"))
    if not value or not any(c.isdigit() for c in value) or not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        return None, flag_for(raw, None, (*codes, "invalid"))
    if ssn and (ssn.group(1) in ("000", "666") or ssn.group(2) == "00" or ssn.group(3) == "0000"):
        return None, flag_for(raw, None, (*codes, "invalid"))
    if _looks_like_cn_id(value) and cn_check_digit(value[:17]) != value[17]:
        return None, flag_for(raw, None, (*codes, "invalid"))
    return value, flag_for(raw, value, codes)
