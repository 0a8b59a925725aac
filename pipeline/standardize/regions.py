"""Phone region from a source's own evidence.

A national-format number (`020 6351 8557`) means nothing without a region. When neither the
record's country nor a configured `default_region` of its source says which, the numbers that
the same source wrote *with* a country code (`+44 20 …`) do: an export is usually kept by one
team in one country. The region is decided per source on the whole input (like the date order),
so a flow that fans out over chunks passes the decision in and every chunk reads alike.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Iterable

import pandas as pd
import phonenumbers

from .text import clean_text

PHONE_FIELDS = ("mobile", "landline", "phone")  # the raw phone columns (route_phones reads them in this order)
_EXPLICIT_RE = re.compile(r"^\s*(?:\+|00)\s*[1-9]")


@lru_cache(maxsize=50_000)
def explicit_region(cell: str) -> str | None:
    """ISO region of a number written with its country code (+44…, 0044…); None otherwise.

    Only the first number of a cell counts; `001…`-style NANP numbers name "US", which is how
    libphonenumber reads the shared +1 code."""
    if _plain(cell) and not _EXPLICIT_RE.match(cell):
        return None  # cleaning would only collapse and strip its spaces, which the test ignores
    return _explicit_region_full(cell)


def _explicit_region_full(cell: str) -> str | None:
    """`explicit_region` without its plain-cell shortcut (the property tests compare the two)."""
    text = clean_text(cell)[0] or ""
    if not _EXPLICIT_RE.match(text):
        return None
    text = "+" + text.lstrip()[2:] if text.lstrip().startswith("00") else text
    first = re.split(r"[;,]| or ", text)[0]
    fast = _fast_explicit_region(first)
    return fast if fast is not None else _parsed_region(first)


def _plain(cell: str) -> bool:
    """Printable ASCII without the characters that make `clean_text` unwrap formulas, markup or
    entities (<, &, =): cleaning such a cell only collapses and strips whitespace."""
    return (
        type(cell) is str
        and cell.isascii()
        and cell.isprintable()
        and "<" not in cell
        and "&" not in cell
        and "=" not in cell
    )


def _parsed_region(first: str) -> str | None:
    """`explicit_region` of one number by libphonenumber's parser."""
    try:
        num = phonenumbers.parse(first, None)
    except phonenumbers.NumberParseException:
        return None
    if num.country_code is None or not phonenumbers.is_possible_number(num):
        return None
    region = phonenumbers.region_code_for_country_code(num.country_code)
    return None if region in (None, "ZZ", "001") else region


# "+86 138 0013 8000", "+1-646-303-2517": a Chinese mobile or a NANP number, digits grouped by
# spaces, hyphens or dots. libphonenumber reads +86 / +1 from such text and finds it possible
# (11 and 10 digits); the property tests compare this with `phonenumbers.parse` on such text.
_PLAIN_EXPLICIT_RE = re.compile(r"\+\d[\d \-.]{0,28}\d")
_CN_MOBILE_CC_RE = re.compile(r"861[3-9]\d{9}")
_NANP_CC_RE = re.compile(r"1[2-9]\d{2}[2-9]\d{6}")


def _fast_explicit_region(first: str) -> str | None:
    """CN or US for the two most common shapes of explicit number without libphonenumber's
    parser (3 s of a 200k-customer run); None: ask `phonenumbers.parse`."""
    if not _PLAIN_EXPLICIT_RE.fullmatch(first):
        return None
    digits = first.replace(" ", "").replace("-", "").replace(".", "")[1:]
    if _CN_MOBILE_CC_RE.fullmatch(digits):
        return "CN"
    if _NANP_CC_RE.fullmatch(digits):
        return "US"  # libphonenumber's main region of +1, as region_code_for_country_code gives
    return None


def majority_region(cells: Iterable[str], min_numbers: int, min_share: float) -> str | None:
    """The region most explicit numbers name, if at least `min_numbers` of them exist and it
    holds `min_share` of them — a mixed, international source gets no region from here."""
    counts = Counter(r for r in map(explicit_region, cells) if r is not None)
    total = sum(counts.values())
    if total < max(min_numbers, 1):
        return None
    region, n = counts.most_common(1)[0]
    return region if n / total >= min_share else None


def infer_phone_regions(records: pd.DataFrame, min_numbers: int, min_share: float) -> dict[str, str | None]:
    """{source: region the source's explicit numbers agree on, or None}, on the whole input."""
    if "source" not in records.columns:
        return {}
    present = [f for f in PHONE_FIELDS if f in records.columns]
    sources = records["source"].fillna("").astype(str)
    out: dict[str, str | None] = {}
    for source, idx in sources.groupby(sources, sort=False).groups.items():
        cells = pd.unique(pd.concat([records.loc[idx, f] for f in present]).dropna().astype(str)) if present else []
        out[source] = majority_region(cells, min_numbers, min_share)
    explicit_region.cache_clear()  # its distinct cells (50k at 200k customers) would live all run
    return out
