"""Text cleaning shared by every field standardizer.

Bad input must never raise: every function here accepts anything (None, NaN, numbers, NUL
bytes, emoji, right-to-left marks, HTML, spreadsheet formulas) and returns text or None plus
quality codes.
"""

from __future__ import annotations

import html
import re
import unicodedata

import pandas as pd
from functools import lru_cache

# Control characters (NUL included), bidi embedding/override/isolate marks, zero-width chars, BOM.
_INVISIBLE_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)
_SPACE_RE = re.compile(r"\s+")
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>@]{0,400})?/?>|<!--.{0,400}?-->")
# =HYPERLINK("url","text"), ="0123", =CONCAT(...): keep the last quoted literal if any.
_FORMULA_RE = re.compile(r"^\s*=\s*(?:[A-Za-z_][A-Za-z0-9_.]*\s*\(.*\)|\".*\")\s*$", re.S)
_SCRIPT_RE = re.compile(r"<(script|style)\b[^>]{0,200}>.{0,2000}?</\1\s*>", re.I | re.S)
_QUOTED_RE = re.compile(r"\"([^\"]*)\"")
_HAN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")

_ORPHAN_MARK_RE = re.compile(r"(?:^|(?<=\s))[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_SLOW_CHARS = frozenset("<&=\t")
# Whole-cell values that mean "no value" in any field (compared lower-cased). Not "na": that is
# Namibia's country code and a Chinese surname.
EMPTY_MARKERS = frozenset({"nan", "none", "null", "nil", "n/a", "n.a.", "#n/a", "-", "--", "---", "?", "??", "???",
                           "unknown", "tbd", "无", "空", "暂无", "未知", "不详", "/"})


def is_missing(value) -> bool:
    """None, NaN and pandas NA/NaT all count as an absent value."""
    if value is None:
        return True
    if type(value) is str:
        return False
    if isinstance(value, float):
        return value != value
    return value is pd.NA or value is pd.NaT


def clean_text(value) -> tuple[str | None, tuple[str, ...]]:
    """NFKC (full-width → half-width), drop invisible/control chars, strip HTML and formulas,
    collapse whitespace. Returns (text or None, codes)."""
    if is_missing(value):
        return None, ()
    codes: list[str] = []
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable() and "  " not in text and not (set(text) & _SLOW_CHARS):
        text = text.strip()  # fast path: plain ASCII needs no NFKC, tag or formula work
        if text and text[0] != "=" and len(text) > 4:
            return text, ()
    if "\x00" in text:
        codes.append("nul_removed")
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE_RE.sub("", text)
    if text.lstrip().startswith("="):
        m = _FORMULA_RE.match(text)
        if m:
            quoted = _QUOTED_RE.findall(text)
            text = quoted[-1] if quoted else ""
        else:  # any other formula: keep the text, never the leading "=" a spreadsheet would run
            text = text.lstrip().lstrip("=")
        codes.append("formula")
    if "<" in text and _TAG_RE.search(text):
        text = _TAG_RE.sub(" ", _SCRIPT_RE.sub(" ", text))  # <script>…</script>: drop the code too
        codes.append("html_stripped")
    if "&" in text:
        unescaped = html.unescape(text)
        if unescaped != text:
            text = unicodedata.normalize("NFKC", unescaped)
            codes.append("html_stripped") if "html_stripped" not in codes else None
    text = _SPACE_RE.sub(" ", text).strip()
    if _ORPHAN_MARK_RE.search(text):  # NFKC turns "¨" into space + combining mark
        text = _SPACE_RE.sub(" ", _ORPHAN_MARK_RE.sub("", text)).strip()
    if not text:
        return None, tuple(codes)
    if text.lower() in EMPTY_MARKERS:
        return None, (*codes, "placeholder")
    return text, tuple(codes)


def truncate_for_matching(text: str | None, max_chars: int) -> tuple[str | None, tuple[str, ...]]:
    """Cap what the matchers see; the raw column keeps the full value."""
    if text is not None and max_chars and len(text) > max_chars:
        return text[:max_chars], ("truncated_for_matching",)
    return text, ()


def has_han(text: str | None) -> bool:
    return bool(text) and _HAN_RE.search(text) is not None


def script_of(text: str | None) -> str | None:
    """`han` when any CJK ideograph is present, `latin` when any Latin letter, else None."""
    if not text:
        return None
    if _HAN_RE.search(text):
        return "han"
    if _LATIN_RE.search(text):
        return "latin"
    return None


def han_chars(text: str) -> str:
    """The CJK ideographs of a text (unassigned code points in the CJK blocks are dropped)."""
    return "".join(c for c in _HAN_RE.findall(text) if c.isalpha())


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _t2s_triggers() -> frozenset | None:
    """Every character an OpenCC t2s entry changes: text without one is already simplified
    (OpenCC's pure-Python converter is slow, and most Chinese CRM text is simplified)."""
    try:
        conv = _t2s()
        conv.convert("x")
        chars: set[str] = set()

        def walk(obj):
            if isinstance(obj, dict):
                for k, v in obj.items():
                    if k == v:
                        continue
                    if len(k) == len(v):  # only the characters that actually change matter
                        chars.update(a for a, b in zip(k, v) if a != b)
                    else:
                        chars.update(k)
            elif isinstance(obj, (list, tuple)):
                for o in obj:
                    walk(o)

        walk(conv._dict_chain_data)
        return frozenset(chars) if chars else None
    except Exception:  # internals changed: always run the converter
        return None


@lru_cache(maxsize=65536)
def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s); non-Han text is returned unchanged."""
    if not has_han(text):
        return text
    triggers = _t2s_triggers()
    if triggers is not None and triggers.isdisjoint(text):
        return text
    try:
        return _t2s().convert(text)
    except Exception:  # never let a converter quirk escape
        return text


_FOLD = str.maketrans({"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
                       "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "œ": "oe", "Œ": "OE", "ı": "i"})


def ascii_fold(text: str) -> str:
    """Strip accents (José → Jose) and keep ASCII only: match keys are lower-case ASCII."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if ord(c) < 128)


def join_codes(*groups) -> str:
    """`;`-join quality codes, first occurrence order, no duplicates, no blanks."""
    seen: dict[str, None] = {}
    for group in groups:
        if not group:
            continue
        if isinstance(group, str):
            group = (group,)
        for code in group:
            if code:
                seen.setdefault(code, None)
    return ";".join(seen)


_FAILURE_CODES = frozenset({"invalid", "placeholder", "implausible", "parse_failed"})


def flag_for(raw, std, codes) -> str:
    """The `<field>_flag` value: codes, plus `changed` when a kept value differs from the raw
    text (after trimming), plus `invalid` when a non-empty raw value gave nothing."""
    if is_missing(raw):
        return join_codes(codes) if codes else ""
    raw_text = raw.strip() if type(raw) is str else str(raw).strip()
    if std is None:
        if raw_text and not (_FAILURE_CODES & set(codes or ())):
            return join_codes(codes, ("invalid",))
        return join_codes(codes) if codes else ""
    if std != raw_text:
        return join_codes(("changed",), codes)
    return join_codes(codes) if codes else ""
