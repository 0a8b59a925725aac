"""Person names: Latin and Chinese, with order-free match keys.

The same person appears as 谢雪东 in one CRM and "Xie Xuedong", "Xuedong Xie" or "Xue-dong XIE"
in another. So besides the display values (`full_name_std`, `first_name_std`, `last_name_std`)
we build lower-case ASCII keys: Hanzi → pinyin with the surname read *as a surname* (单 shan,
曾 zeng, …, from data/surnames.yaml) and Latin first names → their canonical form
(Bob → robert, data/nicknames.csv). `name_key` is the sorted pair, so word order does not matter.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import yaml
from pypinyin import Style, lazy_pinyin

from .text import (
    DEFAULT_PLACEHOLDERS,
    ascii_fold,
    clean_text,
    flag_for,
    han_chars,
    has_han,
    junk_kind,
    placeholder_form,
    script_of,
    to_simplified,
    truncate_for_matching,
)

# Precompiled: these run once per distinct value, millions of times on big inputs.
_WORD_JOINERS_RE = re.compile(r"([-'’])")

DATA_DIR = Path(__file__).resolve().parent / "data"

TITLES = {
    "mr": "Mr",
    "mister": "Mr",
    "mrs": "Mrs",
    "ms": "Ms",
    "miss": "Miss",
    "mx": "Mx",
    "dr": "Dr",
    "doctor": "Dr",
    "prof": "Prof",
    "professor": "Prof",
    "rev": "Rev",
    "sir": "Sir",
    "madam": "Madam",
    "mme": "Mme",
    "m": None,
}
TITLE_GENDER = {
    "Mr": "M",
    "Sir": "M",
    "Mrs": "F",
    "Ms": "F",
    "Miss": "F",
    "Madam": "F",
    "Mme": "F",
    "先生": "M",
    "女士": "F",
    "小姐": "F",
    "太太": "F",
    "夫人": "F",
}
HAN_TITLES = ("先生", "女士", "小姐", "太太", "夫人", "老师", "博士", "教授", "医生", "经理", "总")
SUFFIXES = {
    "jr": "Jr",
    "junior": "Jr",
    "sr": "Sr",
    "senior": "Sr",
    "ii": "II",
    "iii": "III",
    "iv": "IV",
    "v": "V",
    "2nd": "II",
    "3rd": "III",
}
CREDENTIALS = {"phd", "md", "esq", "dds", "cpa", "mba", "rn", "jd"}
PARTICLES = {
    "van",
    "von",
    "de",
    "der",
    "den",
    "del",
    "della",
    "da",
    "di",
    "du",
    "la",
    "le",
    "st",
    "bin",
    "ibn",
    "al",
    "dos",
    "das",
}
NAME_PLACEHOLDERS = DEFAULT_PLACEHOLDERS["name"]  # extended by rules.standardize.placeholders.name
_PLACEHOLDER_WORDS = {
    "test",
    "user",
    "dummy",
    "sample",
    "demo",
    "fake",
    "customer",
    "client",
    "asdf",
    "xxx",
    "tester",
    "testing",
}


def _is_placeholder_name(text: str, values: frozenset = NAME_PLACEHOLDERS) -> bool:
    """'test', 'Test User', '客户', 'n/a': a row of junk, not a person."""
    low = text.lower()
    if low in values or placeholder_form(text) in values:
        return True
    words = low.replace(".", " ").split()
    return (
        bool(words)
        and all(w in _PLACEHOLDER_WORDS for w in words)
        and any(w in ("test", "dummy", "sample", "demo", "fake", "asdf", "xxx", "tester", "testing") for w in words)
    )


PINYIN_RE = re.compile(
    r"^(?:(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|an|en"
    r"|in|un|ia|ie|iu|ua|uo|ue|ve|ui|er|a|o|e|i|u|v)|n|ng)+$"
)
_TOKEN_SPLIT_RE = re.compile(r"\s+")
_KEY_STRIP_RE = re.compile(r"[^a-z0-9]")
_LETTER_RE = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=1)
def surname_data() -> tuple[frozenset, dict]:
    data = yaml.safe_load((DATA_DIR / "surnames.yaml").read_text(encoding="utf-8")) or {}
    return frozenset(data.get("compound") or ()), dict(data.get("readings") or {})


@lru_cache(maxsize=1)
def _nickname_rows() -> tuple[tuple[str, str, str, str], ...]:
    with (DATA_DIR / "nicknames.csv").open(encoding="utf-8") as fh:
        rows = []
        for row in csv.DictReader(fh):
            nickname, canonical, if_male, if_female = (
                (row.get(c) or "").strip().lower() for c in ("nickname", "canonical", "if_male", "if_female")
            )
            rows.append((nickname, canonical, if_male, if_female))
        return tuple(rows)


@lru_cache(maxsize=8)
def nickname_map(extra: tuple = ()) -> dict[str, str]:
    """data/nicknames.csv plus `rules.standardize.names.nicknames` ({nick: canonical})."""
    table = {nick: canonical for nick, canonical, _, _ in _nickname_rows()}
    table.update({str(k).lower(): str(v).lower() for k, v in extra})
    return table


@lru_cache(maxsize=8)
def gendered_nicknames(extra: tuple = ()) -> dict[str, tuple[str, str]]:
    """Nicknames whose formal name depends on gender (sam: samuel/samantha, chris, alex, pat):
    {nick: (if_male, if_female)}. A rules entry for the same nickname overrides it."""
    overridden = {str(k).lower() for k, _ in extra}
    return {n: (m or c, f or c) for n, c, m, f in _nickname_rows() if (m or f) and n not in overridden}


@lru_cache(maxsize=1)
def pinyin_surnames() -> frozenset:
    """Pinyin of common surnames, to spot 'Xie Xuedong' (surname first) in Latin text."""
    common = (
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚"
        "卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧"
    )
    _, readings = surname_data()
    out = {readings.get(c) or lazy_pinyin(c, style=Style.NORMAL)[0] for c in common}
    out.update(v for k, v in readings.items())
    return frozenset(out)


@lru_cache(maxsize=1)
def pinyin_syllables() -> frozenset:
    """Every toneless pinyin syllable (ü written v), from pypinyin's character table."""
    from pypinyin.pinyin_dict import pinyin_dict

    out = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            plain = unicodedata.normalize("NFKD", reading).replace("u\u0308", "v").replace("U\u0308", "v")
            plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
            if plain.isascii() and plain.isalpha() and any(v in plain for v in "aeiouv"):
                out.add(plain)
    return frozenset(out)


@lru_cache(maxsize=50_000)
def segment_pinyin(word: str) -> tuple[str, ...] | None:
    """Run-together pinyin → syllables (`dongfeng` → dong, feng), fewest syllables first; None
    when the word is not pinyin."""
    table = pinyin_syllables()
    word = word.lower()
    best: list[tuple[str, ...] | None] = [()] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            prev = best[start]
            if prev is not None and word[start:end] in table:
                cand = prev + (word[start:end],)
                known = best[end]
                if known is None or len(cand) < len(known):
                    best[end] = cand
    return best[len(word)]


_CAMEL_RE = re.compile(r"[A-Z][a-z]*")


def _camel_parts(token: str) -> list[str]:
    """`DuDongFeng` → Du, Dong, Feng (only when the token is exactly its capitalised parts)."""
    parts = _CAMEL_RE.findall(token)
    return parts if len(parts) > 1 and "".join(parts) == token else [token]


def _english_first_names() -> frozenset:
    table = nickname_map()
    return frozenset(table) | frozenset(table.values())


def split_spaced_pinyin(tokens: list[str]) -> tuple[list[str], str, bool] | None:
    """`Du Dong Feng` / `Dong Feng DU` / `DuDongFeng`: a Chinese name written as one-syllable
    words → (given syllables, surname, surname_first), or None when it is not one.

    The surname is the only ALL-CAPS end word, else the first word when it is a surname, else
    the last. `Dong Feng Du` in plain case (both ends surnames) is therefore read surname-first:
    write the given name as one word (`Dongfeng Du`) or the surname in capitals to be exact."""
    if len(tokens) == 1:
        tokens = _camel_parts(tokens[0])
    if not 3 <= len(tokens) <= 4:
        return None
    keys = [latin_key(t) for t in tokens]
    english = _english_first_names()
    if any(k not in pinyin_syllables() or k in english for k in keys):
        return None
    surnames = pinyin_surnames()
    upper = [i for i in (0, len(tokens) - 1) if tokens[i].isupper() and len(tokens[i]) > 1]
    if len(upper) == 1 and keys[upper[0]] in surnames:
        at = upper[0]
    elif keys[0] in surnames:
        at = 0
    elif keys[-1] in surnames:
        at = len(tokens) - 1
    else:
        return None
    given = [t for i, t in enumerate(tokens) if i != at]
    if len(given) > 2:
        return None
    return given, tokens[at], at == 0


@lru_cache(maxsize=50_000)
def _char_pinyin(char: str) -> str:
    return "".join(lazy_pinyin(char, style=Style.NORMAL, errors="ignore")).lower()


def _pinyin(text: str) -> str:
    """Per-character readings (cached): given names are not dictionary phrases, and a reading
    that does not depend on neighbours keeps keys stable across records."""
    return "".join(_char_pinyin(c) for c in text)


def surname_key(surname: str) -> str:
    """Pinyin of a Hanzi surname using surname readings (单 → shan, 尉迟 → yuchi)."""
    _, readings = surname_data()
    if surname in readings:
        return readings[surname]
    return "".join(readings.get(c) or _pinyin(c) for c in surname)


def split_han(name: str) -> tuple[str, str]:
    """谢雪东 → (谢, 雪东); 欧阳娜娜 → (欧阳, 娜娜): compound surnames first."""
    compound, _ = surname_data()
    if name[:2] in compound and len(name) >= 2:
        return name[:2], name[2:]
    return name[:1], name[1:]


@lru_cache(maxsize=32_768)
def latin_key(text: str | None) -> str:
    """Lower-case ASCII letters and digits of a name (José-María → josemaria). Cached: given
    names and surnames repeat across records."""
    if not text:
        return ""
    return _KEY_STRIP_RE.sub("", ascii_fold(text).lower())


def _case_word(word: str) -> str:
    """Title-case one word, keeping Mc/O'/D' and hyphenated parts sensible."""
    parts = _WORD_JOINERS_RE.split(word.lower())
    out = []
    for part in parts:
        if part in ("-", "'", "’") or not part:
            out.append(part)
        elif part.startswith("mc") and len(part) > 2:
            out.append("Mc" + part[2:].capitalize())
        else:
            out.append(part.capitalize())
    return "".join(out)


def smart_case(text: str) -> str:
    """Re-case a word only when the source shouted or whispered it (all upper/lower); a
    mixed-case word is kept as written (DeLuca, McDonald are the person's own spelling).
    Decided per word so re-standardizing a result never changes it."""
    if not text:
        return text
    words = text.split(" ")
    out = []
    for w in words:
        if not (w.isupper() or w.islower()) or (len(words) > 1 and w.islower() and w in PARTICLES):
            out.append(w)
        else:
            out.append(_case_word(w))
    return " ".join(out)


def _strip_title_suffix(tokens: list[str]) -> tuple[list[str], str | None, str | None, list[str]]:
    title = suffix = None
    codes: list[str] = []
    while tokens and tokens[0].lower().rstrip(".") in TITLES and len(tokens) > 1:
        t = TITLES[tokens[0].lower().rstrip(".")]
        if t is None:
            break
        title = title or t
        tokens = tokens[1:]
    while len(tokens) > 1:
        low = tokens[-1].lower().rstrip(".").replace(".", "")
        if low in SUFFIXES and (low != "v" or len(tokens) > 2):
            suffix = suffix or SUFFIXES[low]
            tokens = tokens[:-1]
        elif low in CREDENTIALS:
            codes.append("credential_removed")
            tokens = tokens[:-1]
        else:
            break
    return tokens, title, suffix, codes


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN_SPLIT_RE.split(text.replace(",", " , ").strip()) if t]


def _parse_latin_full(text: str) -> tuple[str | None, list[str], str | None, str | None, str | None, list[str]]:
    """'Dr. John A. Smith Jr.', 'Smith, John', 'Xue-dong XIE' → (first, middle, last, title, suffix, codes)."""
    tokens, title, suffix, codes = _strip_title_suffix([t for t in _tokens(text)])
    tokens = [t for t in tokens if t != ","] if tokens.count(",") == 0 else tokens
    if "," in tokens:
        i = tokens.index(",")
        left, right = [t for t in tokens[:i] if t != ","], [t for t in tokens[i + 1 :] if t != ","]
        right, t2, s2, c2 = _strip_title_suffix(right) if right else (right, None, None, [])
        title, suffix = title or t2, suffix or s2
        codes += c2
        if left and right:  # "Last, First Middle"
            codes.append("reordered")
            return right[0], right[1:], " ".join(left), title, suffix, codes
        tokens = left or right
    tokens = [t for t in tokens if t != ","]
    if not tokens:
        return None, [], None, title, suffix, codes
    spaced = split_spaced_pinyin(tokens)
    if spaced is not None:  # "Du Dong Feng": one given name written syllable by syllable
        given, surname, surname_first = spaced
        codes += ["pinyin_joined"] + (["surname_first"] if surname_first else [])
        return "".join(given).capitalize(), [], surname, title, suffix, codes
    if len(tokens) == 1:
        return None, [], tokens[0], title, suffix, codes
    letters = [t for t in tokens if _LETTER_RE.search(t)]
    upper = [t for t in tokens if t.isupper() and sum(c.isalpha() for c in t) > 1]  # "XIE", not "J." or "A0"
    if len(tokens) == 2 and len(upper) == 1 and len(letters) == 2:
        last = upper[0]  # "Xue-dong XIE" / "XIE Xuedong": the capitalised word is the surname
        first = tokens[1] if tokens[0] is last else tokens[0]
        if first[:1].isupper() and any(c.islower() for c in first):
            return first, [], last, title, suffix, codes
    if len(tokens) == 2:
        a, b = latin_key(tokens[0]), latin_key(tokens[1])
        if len(a) > 1 and len(b) > 1 and a in pinyin_surnames() and b not in pinyin_surnames() and segment_pinyin(b):
            codes.append("surname_first")
            return tokens[1], [], tokens[0], title, suffix, codes
    j = len(tokens) - 1
    while j > 1 and tokens[j - 1].lower() in PARTICLES:
        j -= 1
    return tokens[0], tokens[1:j], " ".join(tokens[j:]), title, suffix, codes


def _han_title(text: str) -> tuple[str, str | None]:
    for t in HAN_TITLES:
        if text.endswith(t) and len(text) > len(t):
            return text[: -len(t)], t
    return text, None


# Chinese given names and surnames that are also placeholder words: a name in its own column
# ("Na" of 李娜), a placeholder only as a whole full name.
_NAME_PART_WORDS = frozenset({"na"})


def _clean_name_part(raw, max_chars: int, placeholders: frozenset, part: bool) -> tuple[str | None, list[str]]:
    """Cleaned text and codes of one name column; junk (formula, markup, placeholder) is None."""
    text, c = clean_text(raw)
    if part and text is not None and text.lower() in _NAME_PART_WORDS:
        return text, list(c)
    if junk_kind(raw) is not None:
        return None, (["placeholder", "junk"] if text is None or _is_placeholder_name(text, placeholders) else ["junk"])
    text, tc = truncate_for_matching(text, max_chars)
    flags = list(c) + list(tc)
    if text is not None and (_is_placeholder_name(text, placeholders) or not _LETTER_RE.search(text)):
        flags += ["placeholder", "junk"] if _is_placeholder_name(text, placeholders) else ["invalid"]
        text = None
    return text, flags


@lru_cache(maxsize=32_768, typed=True)
def _clean_name_column(raw, max_chars: int, placeholders: frozenset) -> tuple[str | None, tuple[str, ...]]:
    """`_clean_name_part` of a first/last/middle name column, cached: those repeat across
    records (19k first names in 250k distinct name tuples at 200k customers) and are cleaned
    once per process. `typed`: 1 and 1.0 differ."""
    text, flags = _clean_name_part(raw, max_chars, placeholders, part=True)
    return text, tuple(flags)


@lru_cache(maxsize=300_000)
def standardize_name(
    full,
    first,
    last,
    middle=None,
    last2=None,
    max_chars: int = 200,
    nick_extra: tuple = (),
    placeholders: frozenset = NAME_PLACEHOLDERS,
) -> tuple:
    """(full, first, last, middle, second last) raw → (full_name_std, first_name_std,
    last_name_std, name_script, first_name_key, last_name_key, name_key, name_title_std,
    name_suffix_std, full_name_flag, first_name_flag, last_name_flag, gender_hint,
    first_key_if_male, first_key_if_female, middle_name_std, second_last_name_std).
    first_key_if_male/female are set only for gender-dependent nicknames (Sam, Chris, Alex,
    Pat): the caller picks one once the record's gender is known. The middle (second given)
    name fills a missing first name and the composed full name; the keys stay first + first
    surname so a record with and without the second names shares its name_key. Never raises."""
    values = {}
    codes = {}
    for name, raw in (("full", full), ("first", first), ("last", last), ("middle", middle), ("last2", last2)):
        if name == "full":  # nearly unique per record: not worth a cache entry
            values[name], codes[name] = _clean_name_part(raw, max_chars, placeholders, part=False)
        else:
            text, part_codes = _clean_name_column(raw, max_chars, placeholders)
            values[name], codes[name] = text, list(part_codes)
    full_t, first_t, last_t = values["full"], values["first"], values["last"]
    middle_t, last2_t = values["middle"], values["last2"]
    if not first_t and middle_t:  # a second given name stands in for a missing first one
        first_t, middle_t = middle_t, None
    title = suffix = None
    script = script_of(" ".join(v for v in (full_t, first_t, last_t) if v))
    full_std = first_std = last_std = None
    first_key = last_key = ""
    key_if_male = key_if_female = None
    derived: set[str] = set()

    if script == "han":
        full_h = to_simplified(full_t) if full_t else None
        if full_h:
            full_h, title = _han_title(han_chars(full_h) or full_h)
        first_h = han_chars(to_simplified(first_t)) if first_t and has_han(first_t) else None
        last_h = han_chars(to_simplified(last_t)) if last_t and has_han(last_t) else None
        if last_h and first_h:
            surname, given = last_h, first_h
        elif full_h and has_han(full_h):
            full_h = han_chars(full_h)
            if junk_kind(full_h) is not None:  # its Han characters alone are a mash: 0䟃䟃䟃 → 𫎺𫎺𫎺
                surname, given = "", ""
                codes["full"].append("junk")
            elif last_h and full_h.startswith(last_h):
                surname, given = last_h, full_h[len(last_h) :]
            else:
                surname, given = split_han(full_h)
            derived.update(("first", "last"))
        else:
            surname, given = last_h or "", first_h or ""
        if surname:
            last_std, last_key = surname, surname_key(surname)
        if given:
            first_std, first_key = given, _pinyin(given)
        elif first_t and not has_han(first_t):  # 谢 + "Xuedong": keep the Latin given name
            first_std, first_key = smart_case(first_t), latin_key(first_t)
        full_std = (surname + given) or None
        if full_std and not full_t:
            derived.add("full")
    elif script == "latin":
        parsed_title = parsed_suffix = None
        parsed_middle: list[str] = []
        if full_t:
            p_first, parsed_middle, p_last, parsed_title, parsed_suffix, pc = _parse_latin_full(full_t)
            codes["full"] += pc
        else:
            p_first = p_last = None
        if first_t:
            toks, t1, _, c1 = _strip_title_suffix(_tokens(first_t))
            codes["first"] += c1
            first_t = " ".join(x for x in toks if x != ",") or None
            parsed_title = parsed_title or t1
        if last_t:
            toks, _, s1, c1 = _strip_title_suffix(_tokens(last_t))
            codes["last"] += c1
            last_t = " ".join(x for x in toks if x != ",") or None
            parsed_suffix = parsed_suffix or s1
        title, suffix = parsed_title, parsed_suffix
        f = first_t or p_first
        last_v = last_t or p_last
        if not first_t and p_first:
            derived.add("first")
        if not last_t and p_last:
            derived.add("last")
        first_std = smart_case(f) if f else None
        last_std = smart_case(last_v) if last_v else None
        if full_t and (p_first or p_last):
            full_std = " ".join(smart_case(x) for x in [p_first, *parsed_middle, p_last] if x)
        else:
            parts = (
                first_std,
                smart_case(middle_t) if middle_t else None,
                last_std,
                smart_case(last2_t) if last2_t else None,
            )
            full_std = " ".join(x for x in parts if x) or None
            if full_std:
                derived.add("full")
        first_key = latin_key(f)
        by_gender = gendered_nicknames(nick_extra).get(first_key)
        if by_gender:
            key_if_male, key_if_female = by_gender
        first_key = nickname_map(nick_extra).get(first_key, first_key)
        last_key = latin_key(last_v)

    name_key = " ".join(sorted({k for k in (first_key, last_key) if k})) or None
    gender_hint = TITLE_GENDER.get(title) if title else None
    flags = []
    for name, raw, std in (("full", full, full_std), ("first", first, first_std), ("last", last, last_std)):
        c = codes[name]
        if name in derived and std is not None:
            c = c + ["from_full_name" if name != "full" else "from_parts"]
        if raw is None or (isinstance(raw, float) and raw != raw):
            flags.append(";".join(dict.fromkeys(c)) if std is not None else "")
        else:
            flags.append(flag_for(raw, std, c))
    middle_std = (smart_case(middle_t) if script != "han" else middle_t) if middle_t else None
    last2_std = (smart_case(last2_t) if script != "han" else last2_t) if last2_t else None
    return (
        full_std,
        first_std,
        last_std,
        script if full_std or first_std or last_std else None,
        first_key or None,
        last_key or None,
        name_key,
        title,
        suffix,
        *flags,
        gender_hint,
        key_if_male,
        key_if_female,
        middle_std,
        last2_std,
    )


GENDER_MAP = {
    "m": "M",
    "male": "M",
    "man": "M",
    "boy": "M",
    "mr": "M",
    "男": "M",
    "男性": "M",
    "先生": "M",
    "h": "M",
    "f": "F",
    "female": "F",
    "woman": "F",
    "girl": "F",
    "mrs": "F",
    "ms": "F",
    "miss": "F",
    "女": "F",
    "女性": "F",
    "女士": "F",
    "小姐": "F",
    "w": "F",
}
GENDER_UNKNOWN = {"u", "unknown", "x", "other", "o", "n/a", "na", "未知", "保密", "不详", "-", "?"}


@lru_cache(maxsize=4096)
def standardize_gender(raw, title_hint: str | None = None) -> tuple[str | None, str]:
    """M/F from M/F/male/female/男/女/先生/女士; a name title fills a missing gender."""
    text, codes = clean_text(raw)
    if text is None:
        if title_hint in ("M", "F"):
            return title_hint, "from_title"
        return None, flag_for(raw, None, codes)
    low = to_simplified(text).lower().rstrip(".")
    if low in GENDER_MAP:
        std = GENDER_MAP[low]
        return std, flag_for(raw, std, codes)
    if low in GENDER_UNKNOWN:
        return None, flag_for(raw, None, list(codes) + ["placeholder"])
    return None, flag_for(raw, None, list(codes) + ["invalid"])
