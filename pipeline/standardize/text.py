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

# Control characters (NUL included) and every Unicode format character (category Cf, Unicode
# 14): bidi embedding/override/isolate marks, zero-width space/joiners, word joiner, BOM, soft
# hyphen, Arabic number signs, interlinear annotation, tag characters. Invisible, yet they
# make "Ann" and "An\u200bn" different values.
_INVISIBLE_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
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
# Whole-cell values that mean "no value" in any field (compared lower-cased). Not "na": that is
# Namibia's country code and a Chinese surname.
EMPTY_MARKERS = frozenset(
    {
        "nan",
        "none",
        "null",
        "nil",
        "n/a",
        "n.a.",
        "#n/a",
        "-",
        "--",
        "---",
        "?",
        "??",
        "???",
        "unknown",
        "tbd",
        "tba",
        "无",
        "空",
        "暂无",
        "未知",
        "不详",
        "/",
        "(none)",
        "(blank)",
        "<none>",
        "<null>",
        "not available",
        "not provided",
        "not applicable",
        "none given",
        "n/a n/a",
    }
)

# Field-specific whole-cell placeholders (compared by `placeholder_form`). Extended, never
# replaced, by rules.standardize.placeholders.<field>.
DEFAULT_PLACEHOLDERS: dict[str, frozenset] = {
    "address": frozenset(
        {
            "same as above",
            "same",
            "see above",
            "ditto",
            "as above",
            "same as billing",
            "same as mailing",
            "no address",
            "address",
            "address unknown",
            "unknown address",
            "test",
            "test address",
            "xxx",
            "xx",
            "x",
            "0",
            "na",
            "no fixed address",
            "homeless",
            "同上",
            "无地址",
            "地址不详",
            "待定",
            "暂缺",
            "无固定住所",
            "测试",
            "详见上",
        }
    ),
    "city": frozenset(
        {"same as above", "same", "see above", "city", "test", "xxx", "x", "0", "na", "同上", "待定", "测试"}
    ),
    "state": frozenset({"same as above", "same", "state", "xx", "xxx", "test", "同上", "待定"}),
    "postal_code": frozenset(
        {"0", "00000", "000000", "00000-0000", "0000", "99999", "999999", "xxxxx", "xxxxxx", "na", "none", "zip"}
    ),
    "company": frozenset(
        {
            "test",
            "test company",
            "company",
            "none",
            "na",
            "n/a",
            "unknown",
            "xxx",
            "self",
            "private",
            "individual",
            "personal",
            "0",
            "same as above",
            "same",
            "see above",
            "ditto",
            "个人",
            "无",
            "测试",
            "客户",
            "私人",
            "未知",
            "同上",
        }
    ),
    "name": frozenset(
        {
            "test",
            "unknown",
            "n/a",
            "na",
            "none",
            "null",
            "customer",
            "client",
            "name",
            "tbd",
            "xxx",
            "no name",
            "noname",
            "anonymous",
            "guest",
            "valued customer",
            "occupant",
            "resident",
            "current resident",
            "same as above",
            "see above",
            "ditto",
            "同上",
            "客户",
            "未知",
            "无名",
            "测试",
            "匿名",
            "无",
            "某某",
            "先生",
            "女士",
            "顾客",
            "用户",
            "会员",
        }
    ),
}
_PLACEHOLDER_PUNCT_RE = re.compile(r"[\s.,;:!_*#'\"()\[\]]+")


def placeholder_form(text: str) -> str:
    """Lower-case with punctuation and spacing collapsed: 'Same as above.', 'SAME  AS ABOVE' and
    'same_as_above' compare equal."""
    return _PLACEHOLDER_PUNCT_RE.sub(" ", text.lower()).strip()


def placeholder_sets(config: dict | None) -> tuple[tuple[str, frozenset], ...]:
    """rules.standardize.placeholders ({field: [values]}) merged into the defaults, as a hashable
    tuple of (field, frozenset) so it can be an lru_cache / worker argument."""
    extra = config if isinstance(config, dict) else {}
    out = {}
    for field, base in DEFAULT_PLACEHOLDERS.items():
        more = extra.get(field) or []
        if isinstance(more, str):
            more = [more]
        out[field] = base | {placeholder_form(str(v)) for v in more if str(v).strip()}
    for field, more in extra.items():  # a field the defaults do not list
        if field not in out and isinstance(more, (list, tuple)):
            out[field] = frozenset(placeholder_form(str(v)) for v in more if str(v).strip())
    return tuple(sorted(out.items()))


def placeholders_for(sets: tuple, field: str) -> frozenset:
    for name, values in sets or ():
        if name == field:
            return values
    return DEFAULT_PLACEHOLDERS.get(field, frozenset())


def is_placeholder(text: str | None, values: frozenset) -> bool:
    """Whole-cell placeholder for this field (after `clean_text`, which already caught the
    markers that are empty in every field)."""
    return text is not None and placeholder_form(text) in values


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
    text = value if isinstance(value, str) else str(value)
    if (  # "<&=" and tabs need the slow path; tested one by one, not as a set of the text
        text.isascii()
        and text.isprintable()
        and "  " not in text
        and "<" not in text
        and "&" not in text
        and "=" not in text
        and "\t" not in text
    ):
        text = text.strip()  # fast path: plain ASCII needs no NFKC, tag or formula work
        if text and text[0] != "=" and len(text) > 4:
            if text.lower() in EMPTY_MARKERS:
                return None, ("placeholder",)
            return text, ()
    return _clean_text_full(text)


def _clean_text_full(text: str) -> tuple[str | None, tuple[str, ...]]:
    """`clean_text` of a str without its ASCII shortcut (the property tests compare the two)."""
    codes: list[str] = []
    if "\x00" in text or "\u2400" in text:  # a NUL, or ingest's escape of one (U+2400 ␀)
        codes.append("nul_removed")
        text = text.replace("\x00", "").replace("\u2400", "")
    text = unicodedata.normalize("NFKC", text)
    visible = _INVISIBLE_RE.sub("", text)
    if visible != text:
        codes.append("format_chars_removed")
        text = visible
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


# Junk: a cell that holds no value of its field at all. Whole-value tests on the raw text.
_FORMULA_JUNK_RE = re.compile(
    r"^\s*[=+\-@]\s*(?:[A-Za-z_][\w.]*\s*[(!|]|[A-Za-z]{1,3}\$?\d+|\d+(?:\.\d+)?\s*[-+*/^&]|[\"'(])", re.S
)
_DDE_RE = re.compile(r"\bcmd\s*\||\|\s*'?\s*/c\b|\bpowershell\b|\bmshta\b|\bDDEAUTO\b", re.I)
_MARKUP_JUNK_RE = re.compile(
    r"<\s*/?\s*[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]{0,400})?/?\s*>|<!--|javascript\s*:|\bon[a-z]+\s*=\s*[\"']", re.I
)
JUNK_VALUES = frozenset(
    {
        "n/a",
        "n.a.",
        "#n/a",
        "none",
        "null",
        "nil",
        "nan",
        "unknown",
        "-",
        "--",
        "---",
        "?",
        "??",
        "???",
        ".",
        "test",
        "testing",
        "tester",
        "test test",
        "test user",
        "testuser",
        "asdf",
        "asdfg",
        "asdfgh",
        "asdfghjkl",
        "qwerty",
        "qwertz",
        "zxcv",
        "xxx",
        "xx",
        "foo",
        "foobar",
        "foo bar",
        "lorem ipsum",
        "dummy",
        "sample",
        "fake",
        "abc",
        "abcd",
        "abcdef",
        "tbd",
        "tba",
        "未知",
        "无",
        "不详",
        "测试",
        "空",
        "暂无",
    }
)
_MASH_RE = re.compile(r"^(?:(.)\1{2,}|test\d+|asdf\w*|qwert\w*)$", re.I)


def _junk_text(value) -> str | None:
    """The text the junk tests look at: NFKC, invisible characters dropped, stripped."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():  # ASCII is NFKC-stable; no invisible char is printable
        return text.strip() or None
    return _junk_text_full(text)


def _junk_text_full(text: str) -> str | None:
    """`_junk_text` without its ASCII shortcut (the property tests compare the two)."""
    text = _INVISIBLE_RE.sub("", unicodedata.normalize("NFKC", text)).strip()
    return text or None


def _payload_kind(text: str) -> str | None:
    if text.isascii():  # most values: the patterns' literal parts, looked for before the searches
        low = text.lower()
        dde = "|" in text or "powershell" in low or "mshta" in low or "ddeauto" in low
        markup = "<" in text or "javascript" in low
        if not (dde or markup or text[:1] in _FORMULA_STARTS or text[:1].isspace()):
            return None
    return _payload_kind_full(text)


# What `_payload_kind`'s patterns need in ASCII text: a formula starts with one of these (after
# spaces), a DDE call holds "|" or a program's name, markup is looked for only with "<" or
# "javascript". Outside ASCII, re.I matches ſ and K (Kelvin) for s and k: the full path.
_FORMULA_STARTS = frozenset("=+-@")


def _payload_kind_full(text: str) -> str | None:
    """`_payload_kind` without its ASCII shortcut (the property tests compare the two)."""
    if _FORMULA_JUNK_RE.match(text) or _DDE_RE.search(text):
        return "formula"
    if "<" in text and _MARKUP_JUNK_RE.search(text) or "javascript" in text.lower() and _MARKUP_JUNK_RE.search(text):
        return "markup"
    return None


def payload_kind(value) -> str | None:
    """`formula` or `markup` as `junk_kind` says, else None (its placeholder tests skipped:
    for callers that treat a placeholder differently, as addresses do)."""
    text = _junk_text(value)
    return _payload_kind(text) if text is not None else None


def junk_kind(value) -> str | None:
    """`formula` (=…, +…, -…, @… formula text, DDE `cmd|`), `markup` (<script>, HTML tags),
    `placeholder` (N/A, test, asdf, xxx, unknown, -, 未知, 无 …) or None for a real value.
    Only for free-text fields (names, addresses, company, attributes): never phones."""
    text = _junk_text(value)
    if text is None:
        return None
    payload = _payload_kind(text)
    if payload is not None:
        return payload
    low = _SPACE_RE.sub(" ", text.lower())
    if low in JUNK_VALUES or placeholder_form(low) in JUNK_VALUES or _MASH_RE.match(low.replace(" ", "")):
        return "placeholder"
    return None


@lru_cache(maxsize=65536)
def standardize_attribute(value) -> str | None:
    """A categorical value as compared exactly: NFKC, casefolded, whitespace collapsed; junk
    and empty markers → None."""
    if junk_kind(value) is not None:
        return None
    text, _ = clean_text(value)
    return _SPACE_RE.sub(" ", text.casefold()).strip() or None if text else None


def truncate_for_matching(text: str | None, max_chars: int) -> tuple[str | None, tuple[str, ...]]:
    """Cap what the matchers see; the raw column keeps the full value."""
    if text is not None and max_chars and len(text) > max_chars:
        return text[:max_chars], ("truncated_for_matching",)
    return text, ()


def has_han(text: str | None) -> bool:
    if not text:
        return False
    return _HAN_RE.search(text) is not None


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


_FOLD = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "Þ": "TH",
        "œ": "oe",
        "Œ": "OE",
        "ı": "i",
    }
)


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


_FAILURE_CODES = frozenset({"invalid", "placeholder", "implausible", "parse_failed", "junk"})


def flag_for(raw, std, codes) -> str:
    """The `<field>_flag` value: codes, plus `changed` when a kept value differs from the raw
    text (after trimming), plus `invalid` when a non-empty raw value gave nothing."""
    if not codes and type(raw) is str:  # most values: what _flag_for_full gives, without joining
        raw_text = raw.strip()
        if std is None:
            return "invalid" if raw_text else ""
        return "changed" if std != raw_text else ""
    return _flag_for_full(raw, std, codes)


def _flag_for_full(raw, std, codes) -> str:
    """`flag_for` without its shortcut for a text value and no codes (the tests compare them)."""
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
