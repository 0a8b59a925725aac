"""Company names: whitespace/case normalized display value plus a suffix-free match key."""

from __future__ import annotations

import re
from functools import lru_cache

from .text import (
    DEFAULT_PLACEHOLDERS,
    ascii_fold,
    clean_text,
    flag_for,
    has_han,
    is_placeholder,
    junk_kind,
    to_simplified,
    truncate_for_matching,
)

# Precompiled: these run once per distinct value, millions of times on big inputs.
_NON_WORD_RE = re.compile(r"[^\w]+")

_LEGAL_RE = re.compile(
    r"[\s,.]*\b(?:inc|incorporated|llc|l\.l\.c|ltd|limited|corp|corporation|co|company|plc|gmbh|ag|sa|srl|bv|pte|pty|lp|llp)\b\.?\s*$",
    re.I,
)
_HAN_LEGAL_RE = re.compile(r"(?:股份有限公司|有限责任公司|有限公司|集团公司|集团|公司)$")
_ACRONYMS = {
    "llc": "LLC",
    "inc": "Inc",
    "ltd": "Ltd",
    "co": "Co",
    "corp": "Corp",
    "plc": "PLC",
    "gmbh": "GmbH",
    "ibm": "IBM",
    "usa": "USA",
}


def _case(text: str) -> str:
    if not (text.isupper() or text.islower()):
        return text
    return " ".join(
        _ACRONYMS.get(w.lower().rstrip("."), w.capitalize())
        + ("." if w.endswith(".") and w.lower().rstrip(".") in _ACRONYMS else "")
        for w in text.split(" ")
    )


@lru_cache(maxsize=200_000)
def standardize_company(
    raw, max_chars: int = 200, placeholders: frozenset = DEFAULT_PLACEHOLDERS["company"]
) -> tuple[str | None, str | None, str]:
    """raw → (company_std, company_key, flag). company_key drops legal suffixes (Inc, 有限公司)."""
    if junk_kind(raw) in ("formula", "markup"):  # a payload, not a company: missing
        return None, None, flag_for(raw, None, ("junk",))
    text, codes = clean_text(raw)
    if is_placeholder(text, placeholders):  # "n/a", "个人", "test": no company, not a company named so
        text, codes = None, (*codes, "placeholder")
    text, tc = truncate_for_matching(text, max_chars)
    if text is None:
        return None, None, flag_for(raw, None, codes)
    std = to_simplified(text) if has_han(text) else _case(text)
    key = std
    for _ in range(2):
        key = _LEGAL_RE.sub("", key)
        key = _HAN_LEGAL_RE.sub("", key)
    key = _NON_WORD_RE.sub(" ", ascii_fold(key).lower() if not has_han(key) else key.lower()).strip()
    return std, key or None, flag_for(raw, std, list(codes) + list(tc))
