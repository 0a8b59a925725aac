"""Postal addresses: US (usaddress, USPS abbreviations, upper case) and Chinese (own parser).

Separate `city`/`state`/`postal_code`/`country` columns win when present; the parsed address
fills them when absent. An address that cannot be parsed is kept (cleaned) with the flag
`parse_failed` — nothing escapes, usaddress's RepeatedLabelError included.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import phonenumbers
import yaml

from .text import (
    clean_text,
    flag_for,
    has_han,
    is_placeholder,
    payload_kind,
    placeholders_for,
    to_simplified,
    truncate_for_matching,
)

# Precompiled: these run once per distinct value, millions of times on big inputs.
_SPACES_RE = re.compile(r"\s+")
_EXCEL_INT_RE = re.compile(r"\d+\.0+")
_DIGITS_3_4_RE = re.compile(r"\d{3,4}")
_DIGITS_9_RE = re.compile(r"\d{9}")
_NON_LETTERS_RE = re.compile(r"[^a-z]")
_STATE_ZIP_RE = re.compile(r"\b[A-Z]{2}\s+\d{5}")
_TRAILING_ZERO_DECIMALS_RE = re.compile(r"\.0+$")

DATA_DIR = Path(__file__).resolve().parent / "data"

_ZIP_RE = re.compile(r"^(\d{5})(?:\s*-?\s*(\d{4}))?$")
_ZIP_TAIL_RE = re.compile(r"\b(\d{5})(?:-(\d{4}))?$")
_CN_POSTAL_RE = re.compile(r"^\d{6}$")
_CN_POSTAL_IN_TEXT_RE = re.compile(r"(?:邮编[:：]?\s*)?(?<!\d)(\d{6})(?!\d)")
_CN_CITY_RE = re.compile(r"^([^省区县路街道号巷弄村镇\d]{1,8}?(?:自治州|地区|盟|市))")
_CN_DISTRICT_RE = re.compile(r"^([^省市路街道号巷弄\d]{1,8}?(?:新区|区|县|旗|市))")
_PUNCT_RE = re.compile(r"[.,;]")


@lru_cache(maxsize=1)
def usps() -> dict:
    return yaml.safe_load((DATA_DIR / "usps.yaml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def cn_divisions() -> dict:
    return yaml.safe_load((DATA_DIR / "cn_divisions.yaml").read_text(encoding="utf-8"))


def _country_norm(text: str) -> str:
    return _SPACES_RE.sub(" ", to_simplified(text).lower().replace(".", " ")).strip()


@lru_cache(maxsize=1)
def _country_lookup() -> dict[str, str]:
    table = {}
    for code, names in usps()["countries"].items():
        for name in names:
            table[_country_norm(str(name))] = code
    return table


@lru_cache(maxsize=1)
def _us_state_codes() -> frozenset:
    return frozenset(usps()["states"].values())


@lru_cache(maxsize=1)
def _province_prefixes() -> list[tuple[str, str]]:
    """(written form, full province name), longest first so 黑龙江省 beats 黑龙江."""
    pairs = []
    for full, shorts in cn_divisions()["provinces"].items():
        pairs.append((full, full))
        pairs.extend((s, full) for s in shorts)
    return sorted(pairs, key=lambda p: -len(p[0]))


@lru_cache(maxsize=1)
def _city_prefixes() -> list[tuple[str, str]]:
    pairs = []
    for city in cn_divisions()["cities"]:
        pairs.append((city, city))
        pairs.append((city.removesuffix("市"), city))
    return sorted(pairs, key=lambda p: -len(p[0]))


@lru_cache(maxsize=1)
def _prefix_res() -> tuple[re.Pattern, dict, re.Pattern, dict]:
    """One alternation per table (longest first) instead of a startswith loop."""
    prov = dict(_province_prefixes())
    city = dict(_city_prefixes())
    alt = lambda keys: re.compile("^(?:" + "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)) + ")")  # noqa: E731
    return alt(prov), prov, alt(city), city


def country_code(text: str | None) -> str | None:
    """English/Chinese country names and codes → ISO 3166 alpha-2, else None."""
    if not text:
        return None
    low = _country_norm(text)
    code = _country_lookup().get(low) or _country_lookup().get(low.replace(" ", ""))
    if code:
        return code
    if len(low) == 2 and low.upper() in phonenumbers.SUPPORTED_REGIONS:
        return low.upper()
    return None


def us_state_code(text: str | None) -> str | None:
    if not text:
        return None
    up = _PUNCT_RE.sub("", text).strip().upper()
    if up in _us_state_codes():
        return up
    return usps()["states"].get(up)


def us_zip(text: str | None) -> tuple[str | None, str | None, list[str]]:
    """'62704-1234' → ('62704', '1234'); '2134' (Excel ate the zero) → '02134'."""
    if not text:
        return None, None, []
    t = text.strip()
    if _EXCEL_INT_RE.fullmatch(t):
        t = t.split(".")[0]
    codes = []
    if _DIGITS_3_4_RE.fullmatch(t):
        t = t.zfill(5)
        codes.append("zero_padded")
    elif _DIGITS_9_RE.fullmatch(t):
        t = t[:5] + "-" + t[5:]
    m = _ZIP_RE.match(t)
    if not m:
        return None, None, ["invalid"]
    return m.group(1), m.group(2), codes


def _compact(text: str) -> str:
    """Simplified, without spaces, re-composed (removing a space can join a combining mark)."""
    return unicodedata.normalize("NFKC", to_simplified(text).replace(" ", ""))


@lru_cache(maxsize=1)
def _latin_divisions() -> dict[str, str]:
    """Pinyin spellings of provinces and major cities (Sichuan → 四川省, Chengdu → 成都市), so a
    Chinese address typed in Latin letters by a US system lines up with the Hanzi one."""
    from pypinyin import lazy_pinyin

    table: dict[str, str] = {}
    data = cn_divisions()
    for full, shorts in data["provinces"].items():
        for name in [full, *shorts]:
            for suffix in ("特别行政区", "壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市"):
                name = name.removesuffix(suffix)
            table.setdefault("".join(lazy_pinyin(name)), full)
    for city in data["cities"]:
        table.setdefault("".join(lazy_pinyin(city.removesuffix("市"))), city)
    table.update({k.replace(" ", ""): v for k, v in (data.get("latin_names") or {}).items()})
    return table


def _latin_key(text: str) -> str:
    t = _NON_LETTERS_RE.sub("", text.lower())
    for suffix in ("province", "shi", "sheng", "city", "municipality", "autonomousregion", "sar"):
        t = t.removesuffix(suffix)
    return t


@lru_cache(maxsize=8192)
def normalize_province(text: str | None) -> str | None:
    if not text:
        return None
    t = _compact(text)
    for written, full in _province_prefixes():
        if t == written:
            return full
    if not has_han(t):
        found = _latin_divisions().get(_latin_key(text))
        if found in cn_divisions()["provinces"]:
            return found
        return text
    return t


@lru_cache(maxsize=8192)
def normalize_city(text: str | None) -> str | None:
    if not text:
        return None
    t = _compact(text)
    for written, full in _city_prefixes():
        if t == written:
            return full
    for written, full in _province_prefixes():  # 北京 / 重庆: municipalities are cities too
        if t == written and full in cn_divisions()["municipalities"]:
            return full
    if not has_han(t):
        found = _latin_divisions().get(_latin_key(text))
        if found and (found in cn_divisions()["cities"] or found in cn_divisions()["municipalities"]):
            return found
        return text
    return t


def parse_cn(text: str) -> dict:
    """'广东省广州市天河区天河路385号3楼301室' → province/city/district/street parts."""
    t = _compact(text)
    out: dict[str, str | None] = {"province": None, "city": None, "district": None, "street": None, "postal": None}
    for prefix in ("中华人民共和国", "中国"):
        if t.startswith(prefix):
            t = t[len(prefix) :]
    m = _CN_POSTAL_IN_TEXT_RE.search(t)
    if m and (m.start() == 0 or m.end() == len(t) or "邮编" in m.group(0)):
        out["postal"] = m.group(1)
        t = (t[: m.start()] + t[m.end() :]).strip("，,() （）")
    prov_re, prov_map, city_re, city_map = _prefix_res()
    m = prov_re.match(t)
    if m:
        out["province"] = prov_map[m.group(0)]
        t = t[m.end() :]
    if out["province"] in cn_divisions()["municipalities"]:
        out["city"] = out["province"]
        for extra in ("市辖区", "市", "城区"):
            if t.startswith(extra):
                t = t[len(extra) :]
                break
    else:
        m = city_re.match(t)
        if m:
            out["city"] = city_map[m.group(0)]
            t = t[m.end() :]
            if t.startswith("市"):
                t = t[1:]
        else:
            m = _CN_CITY_RE.match(t)
            if m and (out["province"] or m.group(1).endswith(("自治州", "地区", "盟"))):
                out["city"] = m.group(1)
                t = t[m.end() :]
        if out["city"] and not out["province"]:
            out["province"] = cn_divisions()["cities"].get(out["city"])
    # a municipality written without province part: 北京市朝阳区… handled above; 朝阳区… alone stays
    m = _CN_DISTRICT_RE.match(t)
    if m:
        out["district"] = m.group(1)
        t = t[m.end() :]
    out["street"] = t or None
    return out


def _abbr(word: str, table: dict) -> str:
    return table.get(word.upper().rstrip("."), word.upper())


def format_us_street(parts: dict) -> str:
    """usaddress components → 'USPS style' street line."""
    t = usps()
    out: list[str] = []
    for label, value in parts.items():
        if label in ("PlaceName", "StateName", "ZipCode", "CountryName", "Recipient", "NotAddress"):
            continue
        v = _PUNCT_RE.sub("", value).strip()
        if label in ("StreetNamePreDirectional", "StreetNamePostDirectional"):
            v = _abbr(v, t["directionals"])
        elif label in ("StreetNamePostType", "StreetNamePreType"):
            v = _abbr(v, t["street_suffixes"])
        elif label == "OccupancyType":
            v = _abbr(v, t["units"])
        elif label == "USPSBoxType":
            v = "PO BOX"
        elif label == "OccupancyIdentifier":
            v = v.lstrip("#").strip()
            if out and out[-1] not in set(t["units"].values()):
                out.append("#")
        out.append(v.upper())
    return _SPACES_RE.sub(" ", " ".join(x for x in out if x)).strip()


@lru_cache(maxsize=1)
def _fast_us_re() -> re.Pattern:
    t = usps()
    suffix = "|".join(sorted((re.escape(k) for k in t["street_suffixes"]), key=len, reverse=True))
    direc = "|".join(sorted((re.escape(k) for k in t["directionals"]), key=len, reverse=True))
    unit = "|".join(sorted((re.escape(k) for k in t["units"] if k != "#"), key=len, reverse=True))
    return re.compile(
        rf"^(?P<num>\d+[A-Z]?)\s+(?:(?P<pre>{direc})\.?\s+)?(?P<name>(?:[A-Z0-9']+\s+){{0,3}}?[A-Z0-9']+)\s+"
        rf"(?P<suf>{suffix})\.?(?:\s+(?P<post>{direc})\.?)?"
        rf"(?:\s*,?\s*(?:(?P<unit>{unit})\.?\s*#?\s*|#\s*)(?P<uid>[A-Z0-9-]+))?$",
        re.I,
    )


def _fast_us_street(text: str) -> str | None:
    """Plain 'number street suffix [unit]' lines without usaddress's CRF (10× faster)."""
    m = _fast_us_re().match(text)
    if not m:
        return None
    t = usps()
    name = m.group("name").upper()
    if any(w.isdigit() for w in name.split()[1:]):
        return None  # '123 Main St 456 Oak Ave': leave it to usaddress
    parts = [m.group("num").upper()]
    if m.group("pre"):
        parts.append(t["directionals"][m.group("pre").upper()])
    parts += [name, t["street_suffixes"][m.group("suf").upper()]]
    if m.group("post"):
        parts.append(t["directionals"][m.group("post").upper()])
    if m.group("uid"):
        parts.append(t["units"][m.group("unit").upper()] if m.group("unit") else "#")
        parts.append(m.group("uid").upper())
    return " ".join(parts)


_CITY_STATE_ZIP_TAIL_RE = re.compile(r"^(?P<state>[A-Za-z]{2})\s+(?P<zip>\d{5}(?:-\d{4})?)$")


def _fast_us_parts(text: str) -> dict | None:
    """'street[, unit][, City, ST 12345]' split on commas, the street line by `_fast_us_street`;
    None when any part is unusual (then usaddress decides)."""
    if "," not in text:
        fast = _fast_us_street(text)
        return {"street": fast} if fast else None
    parts = [x.strip() for x in text.split(",")]
    out: dict = {}
    tail = _CITY_STATE_ZIP_TAIL_RE.match(parts[-1]) if len(parts) >= 3 else None
    if tail:
        city = _PUNCT_RE.sub("", parts[-2]).strip().upper()
        if not city or any(ch.isdigit() for ch in city):
            return None
        out = {"city": city, "state": tail.group("state").upper(), "zip": tail.group("zip")}
        parts = parts[:-2]
    if not parts or not all(parts) or len(parts) > 2:
        return None
    fast = _fast_us_street(" ".join(parts))
    if not fast:
        return None
    out["street"] = fast
    return out


def parse_us(text: str) -> tuple[dict, bool]:
    """(street/city/state/zip parts, ok). Never raises."""
    fast = _fast_us_parts(text)
    if fast:
        return fast, True
    try:
        import usaddress

        parts, kind = usaddress.tag(text)
    except Exception:  # RepeatedLabelError and anything else the CRF may throw
        return {}, False
    if kind == "Ambiguous" or not any(k in parts for k in ("AddressNumber", "USPSBoxID", "StreetName")):
        return {}, False
    out = {"street": format_us_street(parts) or None}
    if "PlaceName" in parts:
        out["city"] = _PUNCT_RE.sub("", parts["PlaceName"]).strip().upper()
    if "StateName" in parts:
        out["state"] = parts["StateName"]
    if "ZipCode" in parts:
        out["zip"] = parts["ZipCode"]
    return out, True


def _han_region(text: str) -> str:
    """CN, or HK/MO/TW when the address *starts* with them (青岛 香港中路 is a street in CN)."""
    t = _compact(text)
    for prefix in ("中华人民共和国", "中国"):
        t = t.removeprefix(prefix)
    if t.startswith("香港"):
        return "HK"
    if t.startswith("澳门"):
        return "MO"
    if t.startswith(("台湾", "台北", "台中", "高雄")):
        return "TW"
    return "CN"


_PLACEHOLDER_FIELD = {"address": "address", "city": "city", "state": "state", "postal": "postal_code"}


@lru_cache(maxsize=16_384, typed=True)
def _clean_part(name: str, raw, placeholders: tuple, max_chars: int) -> tuple[str | None, tuple[str, ...]]:
    """One address column cleaned: (text or None, codes). Cached: city, state, postcode and
    country repeat across records (68 cities, 24k postcodes at 200k customers), so each is
    cleaned once per process instead of once per distinct address. `typed`: 1 and 1.0 differ."""
    if name in ("address", "city", "state") and payload_kind(raw) is not None:
        return None, ("junk",)  # a payload, not an address: missing
    text, c = clean_text(raw)
    if name != "country" and is_placeholder(text, placeholders_for(placeholders, _PLACEHOLDER_FIELD[name])):
        text, c = None, (*c, "placeholder")
    if name == "address":
        text, tc = truncate_for_matching(text, max_chars)
        c = c + tc
    return text, tuple(c)


@lru_cache(maxsize=300_000)
def standardize_address(
    address, city, state, postal_code, country, max_chars: int = 200, placeholders: tuple = ()
) -> tuple:
    """Raw address columns → (address_std, city_std, state_std, postal_code_std,
    postal_plus4_std, district_std, country_std, address_flag, city_flag, state_flag,
    postal_code_flag, country_flag). Never raises. `placeholders` comes from
    `text.placeholder_sets(rules)` (defaults when empty)."""
    vals: dict[str, str | None] = {}
    codes: dict[str, list[str]] = {}
    for name, raw in (
        ("address", address),
        ("city", city),
        ("state", state),
        ("postal", postal_code),
        ("country", country),
    ):
        # the street line is nearly unique per record: caching it would only evict the others
        clean = _clean_part.__wrapped__ if name == "address" else _clean_part
        text, c = clean(name, raw, placeholders, max_chars)
        vals[name], codes[name] = text, list(c)
    a, ci, st, pc, co = vals["address"], vals["city"], vals["state"], vals["postal"], vals["country"]

    country_std = country_code(co)
    if co and country_std is None:
        codes["country"].append("invalid")
    if country_std is None and not co:
        joined = " ".join(v for v in (a, ci, st) if v)
        if has_han(joined):
            country_std = _han_region(" ".join(v for v in (st, ci, a) if v))
        elif (
            us_state_code(st)
            or (pc and us_zip(pc)[0] and not _CN_POSTAL_RE.match(pc.strip()))
            or (a and _ZIP_TAIL_RE.search(a) and _STATE_ZIP_RE.search(a))
        ):
            country_std = "US"
        elif pc and _CN_POSTAL_RE.match(pc.strip()) and has_han(a or ""):
            country_std = "CN"
        if country_std:
            codes["country"].append("inferred")

    address_std = city_std = state_std = zip5 = plus4 = district = None
    if country_std == "US":
        parsed: dict = {}
        if a:
            parsed, ok = parse_us(a)
            if not ok:
                codes["address"].append("parse_failed")
        address_std = parsed.get("street") or a
        city_std = (ci.upper() if ci else None) or parsed.get("city")
        state_std = us_state_code(st) if st else us_state_code(parsed.get("state"))
        if st and state_std is None:
            codes["state"].append("invalid")
        zip5, plus4, zc = us_zip(pc or parsed.get("zip"))
        codes["postal"] += zc if pc else [c for c in zc if c != "invalid"]
    elif country_std in ("CN", "HK", "MO", "TW") or (country_std is None and has_han(a or "")):
        parsed = parse_cn(a) if a and has_han(a) else {}  # Latin text: kept as written
        if a and not (parsed.get("province") or parsed.get("city") or parsed.get("district")) and not has_han(a):
            codes["address"].append("parse_failed")
        address_std = parsed.get("street") or (to_simplified(a) if a and not parsed else None)
        state_std = normalize_province(st) if st else parsed.get("province")
        city_std = normalize_city(ci) if ci else parsed.get("city")
        if city_std and not state_std:
            state_std = cn_divisions()["cities"].get(city_std)
            if city_std in cn_divisions()["municipalities"]:
                state_std = city_std
        district = parsed.get("district")
        postal = pc or parsed.get("postal")
        if postal:
            p = _TRAILING_ZERO_DECIMALS_RE.sub("", postal.strip())
            if _CN_POSTAL_RE.match(p):
                zip5 = p
            elif pc:
                codes["postal"].append("invalid")
    else:
        address_std, city_std, state_std = a, ci, st
        zip5 = pc
    return (
        address_std,
        city_std,
        state_std,
        zip5,
        plus4,
        district,
        country_std,
        flag_for(address, address_std, codes["address"]),
        flag_for(city, city_std, codes["city"]) if city is not None else ("from_address" if city_std else ""),
        flag_for(state, state_std, codes["state"]) if state is not None else ("from_address" if state_std else ""),
        flag_for(postal_code, zip5, codes["postal"]) if postal_code is not None else ("from_address" if zip5 else ""),
        flag_for(country, country_std, codes["country"])
        if country is not None
        else ("inferred" if country_std else ""),
    )
