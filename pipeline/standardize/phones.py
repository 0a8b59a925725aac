"""Phone numbers → E.164 with type (mobile / landline) using phonenumbers.

Cells from legacy CRMs hold several numbers ("138… / 010-…"), extensions, full-width digits,
`0086`/`00` prefixes and numbers Excel stored as numbers ("13800138000.0", "8613800138000",
"1.38001E+10" — the last one lost digits and is flagged, never guessed).
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType as T

from .text import clean_text, flag_for

# Precompiled: these run once per distinct value, millions of times on big inputs.
_NON_DIGIT_RE = re.compile(r"\D")
_PHONE_PUNCT_RE = re.compile(r"[\s().\-/]")

# "/" separates two numbers only when both sides are whole numbers: `773/256-6035` is one
# (the US legacy area-code form), `138 0013 8000 / 010-6552 9988` is two.
_SPLIT_RE = re.compile(r"\s*(?:[;,|\\、，；\n]|\s(?:or|或)\s)\s*")
_SLASH_RE = re.compile(r"\s*/\s*")
_ANY_SEPARATOR_RE = re.compile(r"[;,|\\、，；\n/]|\s(?:or|或)\s")  # what either split (or _THOUSANDS_RE) needs
_MIN_WHOLE_DIGITS = 7
# 3-3-4 grouping ("555-123-4567", "(555) 123 4567", "1-555-123-4567") is how NANP numbers are
# written; such a number is never re-read in another country's plan when it fails there.
_NANP_GROUPED_RE = re.compile(r"^(?:\+?1[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-/]?\d{3}[\s.\-]\d{4}$")
_THOUSANDS_RE = re.compile(r"^\+?\d{1,3}(?:,\d{3})+(?:\.0+)?$")
_EXT_RE = re.compile(r"\s*(?:ext\.?|extension|x|#|转|分机)\s*(\d{1,6})\s*$", re.I)
_EXCEL_FLOAT_RE = re.compile(r"^(\d{6,15})\.0+$")
_SCI_RE = re.compile(r"^(\d)(?:\.(\d+))?[eE]\+?(\d{1,2})$")
_CN_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_CN_MOBILE_CC_RE = re.compile(r"^861[3-9]\d{9}$")
_DIGITS_RE = re.compile(r"\d")

_KIND = {
    T.MOBILE: "mobile",
    T.FIXED_LINE: "landline",
    T.FIXED_LINE_OR_MOBILE: "either",
}


def _may_have_extension(text: str) -> bool:
    """Whether `_EXT_RE` can match: each of its markers holds one of these (re.I folds no
    other character into x)."""
    return "x" in text or "X" in text or "#" in text or "转" in text or "分机" in text


def _unpack_excel_number(text: str) -> tuple[str | None, tuple[str, ...]]:
    """Undo what Excel does to a phone stored as a number; None when digits were lost."""
    if "." not in text and "e" not in text and "E" not in text:  # neither pattern can match
        return text, ()
    return _unpack_excel_full(text)


def _unpack_excel_full(text: str) -> tuple[str | None, tuple[str, ...]]:
    """`_unpack_excel_number` without its shortcut (the property tests compare the two)."""
    m = _EXCEL_FLOAT_RE.match(text)
    if m:
        return m.group(1), ("excel_number",)
    m = _SCI_RE.match(text)
    if m:
        mantissa = m.group(1) + (m.group(2) or "")
        exponent = int(m.group(3))
        if len(mantissa) == exponent + 1:  # every digit survived
            return mantissa, ("excel_number",)
        return None, ("excel_scientific",)
    return text, ()


def _candidates(digits_text: str, region: str | None, default_region: str) -> list[str | None]:
    """Regions to try, most likely first."""
    regions: list[str | None] = []
    bare = _NON_DIGIT_RE.sub("", digits_text)
    if not digits_text.lstrip().startswith("+"):
        if _CN_MOBILE_RE.match(bare) and region in (None, "CN"):
            regions.append("CN")
        regions.append(region or default_region)
        for r in ("CN", "US"):
            if r not in regions:
                regions.append(r)
    else:
        regions.append(None)
    return regions


@lru_cache(maxsize=200_000)
def parse_one(
    piece: str, region: str | None, default_region: str = "US"
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """One number → (E.164 or None, kind mobile/landline/either/other, codes)."""
    text, cell_codes = clean_text(piece)
    if text is None:
        return None, None, cell_codes
    codes: list[str] = list(cell_codes)
    m = _EXT_RE.search(text) if _may_have_extension(text) else None
    if m and len(_DIGITS_RE.findall(text[: m.start()])) >= 6:
        text = text[: m.start()]
        codes.append("extension_dropped")
    text, excel_codes = _unpack_excel_number(text.strip())
    codes.extend(excel_codes)
    if text is None:
        return None, None, tuple(codes + ["invalid"])
    compact = _PHONE_PUNCT_RE.sub("", text)
    if compact.startswith("00") and compact[2:].isdigit():
        compact = "+" + compact[2:]
    elif compact.isdigit() and _CN_MOBILE_CC_RE.match(compact):
        compact = "+" + compact  # 86 prefix without "+" (Excel dropped it)
    bare = compact.lstrip("+")
    digits = bare if bare.isdecimal() else "".join(_DIGITS_RE.findall(compact))
    if len(digits) >= 7 and len(set(digits)) == 1:  # 000-000-0000, 1111111
        return None, None, tuple(codes + ["placeholder"])
    if len(digits) < 5 or len(compact) > 30:
        return None, None, tuple(codes + ["invalid"])
    fast = _fast_parse(compact, region, default_region)
    if fast is not None:
        return fast[0], fast[1], tuple(codes)
    best = None
    own = region or default_region
    nanp_grouped = bool(_NANP_GROUPED_RE.match(text))
    regions = ["US"] if nanp_grouped and own in ("US", "CA", None) else _candidates(compact, region, default_region)
    for reg in regions:
        # a trunk "0" Excel dropped is restored only in the record's own region, never a fallback
        for attempt in (compact, "0" + compact) if (compact.isdigit() and reg == own) else (compact,):
            try:
                num = phonenumbers.parse(attempt, reg)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(num):
                best = num
                if attempt != compact:
                    codes.append("leading_zero_restored")
                break
        if best is not None:
            if reg not in (own, None) and not (reg == "CN" and _CN_MOBILE_RE.match(compact)):
                # valid only in another country: a possible number of the record's own region
                # (an unallocated range) is the likelier reading; else keep the guess, flagged
                own_reading = _possible_in(compact, own, codes)
                if own_reading[0] is not None:
                    return own_reading
                codes.append("region_guessed")
            break
    if best is None and (nanp_grouped or compact.startswith("+")):
        return _possible_in(compact, "US" if nanp_grouped else None, codes)
    if best is None:
        return None, None, tuple(codes + ["invalid"])
    e164 = phonenumbers.format_number(best, phonenumbers.PhoneNumberFormat.E164)
    kind = _KIND.get(phonenumbers.number_type(best), "other")
    return e164, kind, tuple(codes)


def _possible_in(compact: str, region: str | None, codes: list[str]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """A number of `region`'s shape outside its allocated ranges (555-123-4567, 020 6351 8557 in
    GB) is kept, flagged `unallocated`, so it still links records and loses survivorship to a
    valid number."""
    try:
        num = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        return None, None, tuple(codes + ["invalid"])
    if not phonenumbers.is_possible_number(num):
        return None, None, tuple(codes + ["invalid"])
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    return e164, "other", tuple(codes + ["unallocated"])


_NANP_RE = re.compile(r"^1?([2-9]\d{2}[2-9]\d{6})$")


@lru_cache(maxsize=100_000)
def _kind_by_prefix(cc: int, prefix: str, length: int) -> str | None:
    """Type of a +1 / +86-mobile number from its first 6 digits: phonenumbers' patterns for
    these decide within 5 digits and allow any digits after (checked in the tests), so one
    lookup serves every number sharing the prefix."""
    nsn = prefix + "0" * (length - len(prefix))
    return _KIND.get(phonenumbers.number_type(phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))))


def _fast_parse(compact: str, region: str | None, default_region: str = "US") -> tuple[str, str] | None:
    """Chinese mobiles and NANP numbers (most of the data) without phonenumbers.parse: build
    the number and ask only for its type (UNKNOWN means invalid). None → take the full path.
    An unknown region (None) reads 11-digit 1[3-9]… as a Chinese mobile, anything else in
    `default_region`."""
    cc: int | None = None
    nsn = ""
    if compact.startswith("+86") and _CN_MOBILE_RE.match(compact[3:]):
        cc, nsn = 86, compact[3:]
    elif compact.startswith("+1") and _NANP_RE.match(compact[1:]):
        cc, nsn = 1, compact[2:]
    elif compact.isdigit():
        if region in (None, "CN") and _CN_MOBILE_RE.match(compact):
            cc, nsn = 86, compact
        elif (region or default_region) in ("US", "CA"):
            m = _NANP_RE.match(compact)
            if m:
                cc, nsn = 1, m.group(1)
        elif region == "CN" and _CN_TRUNK_RE.match(compact):
            return _cn_national(compact[1:])
    if cc is None:
        return None
    kind = _kind_by_prefix(cc, nsn[:6], len(nsn))
    if kind is None:
        return None
    return f"+{cc}{nsn}", kind


_CN_TRUNK_RE = re.compile(r"^0[1-9]\d{8,10}$")  # trunk 0, area code, local number: 010-6552 9988


def _cn_national(nsn: str) -> tuple[str, str] | None:
    """A Chinese number written with its trunk 0 in a CN record, typed by libphonenumber without
    its parser (which would strip that 0 and find the same number). Only a valid mobile or
    fixed line is answered; anything else (None) takes the full path."""
    kind = _KIND.get(phonenumbers.number_type(phonenumbers.PhoneNumber(country_code=86, national_number=int(nsn))))
    return None if kind is None else (f"+86{nsn}", kind)


def split_numbers(text: str) -> list[str]:
    """Several numbers in one cell → pieces; thousands separators are not separators, and a
    slash splits only between whole numbers."""
    if _ANY_SEPARATOR_RE.search(text) is None:  # most cells: one number, nothing to split
        return [text] if text.strip() else []
    return _split_all(text)


def _split_all(text: str) -> list[str]:
    """`split_numbers` without its shortcut (the property tests compare the two)."""
    if _THOUSANDS_RE.match(text):
        return [text.replace(",", "")]
    pieces = []
    for piece in _SPLIT_RE.split(text):
        if not piece or not piece.strip():
            continue
        parts = [p for p in _SLASH_RE.split(piece) if p.strip()]
        whole = all(len(_DIGITS_RE.findall(p)) >= _MIN_WHOLE_DIGITS for p in parts)
        pieces.extend(parts if len(parts) > 1 and whole else [piece])
    return pieces


@lru_cache(maxsize=200_000)
def parse_cell(raw: str, region: str | None, default_region: str = "US") -> tuple[tuple, tuple[str, ...]]:
    """A cell → ((e164, kind), …) for its valid numbers, and cell-level codes."""
    text, codes = clean_text(raw)
    if text is None:
        return (), codes
    pieces = split_numbers(text)
    found: list[tuple[str, str | None]] = []
    all_codes = list(codes)
    placeholders = 0
    for piece in pieces:
        e164, kind, piece_codes = parse_one(piece, region, default_region)
        all_codes.extend(c for c in piece_codes if c not in ("invalid", "placeholder"))
        placeholders += "placeholder" in piece_codes
        if e164 is not None and all(e164 != f[0] for f in found):
            found.append((e164, kind))
    if len(pieces) > 1:
        all_codes.append("multiple")
    if not found:
        all_codes.append("placeholder" if placeholders == len(pieces) else "invalid")
    return tuple(found), tuple(dict.fromkeys(all_codes))


def standardize_phone(raw, region: str | None = None, default_region: str = "US") -> tuple[str | None, str | None, str]:
    """Single-value API: first valid number of a cell → (E.164 or None, kind, flag)."""
    if raw is None:
        return None, None, ""
    found, codes = parse_cell(str(raw), region, default_region)
    e164, kind = found[0] if found else (None, None)
    return e164, kind, flag_for(raw, e164, codes)


def _pick(found: tuple, wanted: tuple[str, ...]):
    for e164, kind in found:
        if kind in wanted:
            return e164
    return None


def route_phones(mobile, landline, phone, region, default_region: str = "US") -> tuple:
    """Route the numbers of the three phone columns by detected type.

    mobile_std: a number typed mobile from `mobile`, else `phone`, else `landline`; landline_std
    likewise. A number whose type phonenumbers cannot tell (US/CA `either`) fills the slot of the
    column it came from (`phone` → mobile slot first) only when no typed number did. Returns (mobile_std, landline_std,
    phone_std, mobile_flag, landline_flag, phone_flag).

    A slot filled from the untyped `phone` column with such a number gets `type_guessed`: nothing
    says it is a mobile (or a landline), so survivorship can let a number of known type win.
    """
    cells = {}
    for name, raw in (("mobile", mobile), ("landline", landline), ("phone", phone)):
        cells[name] = parse_cell(str(raw), region, default_region) if raw is not None else ((), ())
    fm, fl, fp = cells["mobile"][0], cells["landline"][0], cells["phone"][0]
    amb = ("either", "other")
    mobile_std = _pick(fm, ("mobile",)) or _pick(fp, ("mobile",)) or _pick(fl, ("mobile",)) or _pick(fm, amb)
    # only a valid number of a region that does not tell mobiles apart (NANP: "either") may be a
    # mobile; an unallocated one ("other") says nothing of its owner and fills the landline slot
    mobile_guessed = mobile_std is None and _pick(fp, ("either",)) is not None
    mobile_std = mobile_std or _pick(fp, ("either",))
    landline_std = _pick(fl, ("landline",)) or _pick(fp, ("landline",)) or _pick(fm, ("landline",)) or _pick(fl, amb)
    rest = _pick(tuple(f for f in fp if f[0] != mobile_std), amb)
    landline_guessed = landline_std is None and rest is not None
    landline_std = landline_std or rest
    if mobile_std is None:  # an unallocated number the (typed) landline slot left no room for
        spare = _pick(tuple(f for f in fp if f[0] != landline_std), ("other",))
        mobile_guessed, mobile_std = spare is not None, spare
    if landline_std == mobile_std:
        landline_std, landline_guessed = None, False
    phone_std = mobile_std or landline_std
    flags = []
    for name, raw, own in (
        ("mobile", mobile, mobile_std),
        ("landline", landline, landline_std),
        ("phone", phone, phone_std),
    ):
        found, cell_codes = cells[name]
        codes = list(cell_codes)
        shown = own if (own and any(own == f[0] for f in found)) else (found[0][0] if found else None)
        if name == "mobile" and found and mobile_std not in [f[0] for f in found]:
            codes.append("moved_to_landline")
        if name == "landline" and found and landline_std not in [f[0] for f in found]:
            codes.append("moved_to_mobile")
        # the slot was filled from another column: say so, so survivorship can prefer typed numbers
        if name == "mobile" and mobile_std and mobile_std not in [f[0] for f in found]:
            codes.append("from_landline" if any(mobile_std == f[0] for f in fl) else "from_phone")
        if name == "landline" and landline_std and landline_std not in [f[0] for f in found]:
            codes.append("from_mobile" if any(landline_std == f[0] for f in fm) else "from_phone")
        if (name == "mobile" and mobile_guessed) or (name == "landline" and landline_guessed):
            codes.append("type_guessed")
        flags.append(flag_for(raw, shown, codes))
    return (mobile_std, landline_std, phone_std, *flags)


__all__ = ["parse_one", "parse_cell", "standardize_phone", "route_phones", "split_numbers"]
