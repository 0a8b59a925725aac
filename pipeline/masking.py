"""PII masking: the one policy for everything a run or command shows or writes without
`--show-pii` (run report, Data Docs, review export, explain, export, label): enough left to
recognise a record, not enough to leak it."""

from __future__ import annotations

import re
from typing import Any, Callable

import pandas as pd

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and value != value)


def mask_email(value: Any) -> Any:
    """`john.smith@gmail.com` → `j***@gmail.com` (the domain helps, the mailbox is the secret)."""
    if _blank(value):
        return value
    text = str(value)
    local, at, domain = text.rpartition("@")
    if not at:
        return mask_text(text)
    return f"{local[:1]}***@{domain}"


def mask_phone(value: Any) -> Any:
    """`+8613812348000` → `+86 138****8000`: country code, first 3 and last 4 digits."""
    if _blank(value):
        return value
    text = str(value).strip()
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7:
        return "*" * len(digits)
    cc = ""
    if text.startswith("+"):
        try:
            import phonenumbers

            parsed = phonenumbers.parse(text, None)
            cc = str(parsed.country_code)
            digits = str(parsed.national_number)
        except Exception:
            cc, digits = digits[:2], digits[2:]
    if len(digits) > 7:
        masked = digits[:3] + "****" + digits[-4:]
    else:  # short national numbers: keep less
        masked = digits[:1] + "*" * (len(digits) - 3) + digits[-2:]
    return f"+{cc} {masked}" if cc else masked


def mask_name(value: Any) -> Any:
    """`张三` → `张*`, `John Smith` → `J*** S****`: first character of each word kept."""
    if _blank(value):
        return value
    text = str(value).strip()
    if _HAN.search(text) and " " not in text:
        return text[:1] + "*" * (len(text) - 1)
    return " ".join(w[:1] + "*" * (len(w) - 1) for w in text.split())


def mask_date(value: Any) -> Any:
    """Birth dates keep the year only: `1990-**-**`."""
    if _blank(value):
        return value
    text = str(value)
    return text[:4] + "-**-**" if re.match(r"^\d{4}", text) else mask_text(text)


def mask_national_id(value: Any) -> Any:
    """SSN / 身份证号 / NI number: only the last 4 characters shown (`*****6789`,
    `**************002X`) — what a clerk reads back to a caller; 2 of short numbers."""
    if _blank(value):
        return value
    text = re.sub(r"[\s-]", "", str(value))
    keep = 4 if len(text) >= 8 else 2 if len(text) >= 4 else 0
    return "*" * (len(text) - keep) + text[len(text) - keep :]


# national id columns: canonical (national_id, national_id_std) and the headers it is mapped from
_NATIONAL_ID = re.compile(
    r"national.?id|(?:^|[^a-z])(?:ssn|nino|sin)(?:[^a-z]|$)|soc.?sec|social.?(?:security|insurance)"
    r"|national.?insurance|(?:^|[^a-z])ni.?(?:number|no)(?:[^a-z]|$)|身份证|证件号|身份号码"
)


def mask_text(value: Any) -> Any:
    """Anything else personal (address, id): first character and the length hidden."""
    if _blank(value):
        return value
    text = str(value)
    return text[:1] + "***"


def masker_for(column: str) -> Callable[[Any], Any] | None:
    """The masking function for a column name, or None when the column is not personal."""
    name = column.lower()
    if _NATIONAL_ID.search(name):
        return None if name.endswith("_flag") else mask_national_id
    if "email" in name:
        return mask_email
    if any(k in name for k in ("phone", "mobile", "landline", "手机", "电话")):
        return mask_phone
    if "birth" in name:
        return mask_date
    if any(k in name for k in ("name", "姓名")) and "file" not in name and "source" not in name:
        return mask_name
    if any(k in name for k in ("address", "street", "postal", "地址", "raw", "extra", "examples")):
        return mask_text
    if name.startswith("attr_"):  # an unmapped column's values: it may hold anything (a spouse's name)
        return mask_text
    return None


def mask_frame(frame: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """A copy with personal columns masked; each distinct value is masked once."""
    out = frame.copy()
    for column in columns if columns is not None else list(out.columns):
        fn = masker_for(str(column))
        if fn is None or column not in out:
            continue
        col = out[column]
        uniq = col.dropna().unique()
        out[column] = col.map(dict(zip(uniq, (fn(v) for v in uniq)))).where(col.notna(), col)
    return out


# A password inside a URL (scheme://user:PASSWORD@host), found in a bare URL or in a sentence
# quoting one; the password may contain '@' (the last '@' of the token ends it).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][\w+.-]*://[^:/?#@\s'\"]*:)(?P<password>[^\s'\"]*)(?P<tail>@)")
_WHOLE_URL_PASSWORD = re.compile(r"^(?P<head>\s*[A-Za-z][\w+.-]*://[^:/?#@]*:)(?P<password>.*)(?P<tail>@[^@]*)$", re.S)
# libpq keyword or query-string form: password=..., ?password=...
_KEYWORD_PASSWORD = re.compile(r"(?i)(?P<head>\b(?:password|passwd|pwd)=)(?P<password>[^\s&#'\"]*)")


def mask_url(url: Any) -> str:
    """`postgresql+psycopg://crm:s3cret@db/crm` → `postgresql+psycopg://crm:***@db/crm`.

    Used wherever a database URL is shown (CLI summary, error messages), so a password given
    in --db never reaches a terminal, log or report. Works on a bare URL or on a sentence
    quoting one, and on URLs too malformed for SQLAlchemy to parse."""
    text = _WHOLE_URL_PASSWORD.sub(r"\g<head>***\g<tail>", str(url))  # a bare URL: any characters
    text = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", text)
    return _KEYWORD_PASSWORD.sub(r"\g<head>***", text)
