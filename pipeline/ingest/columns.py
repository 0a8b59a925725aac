"""Automatic header → canonical field mapping (English and Chinese header names).

Headers are compared in a normal form (NFKC, traditional → simplified Chinese, lower case, no
spaces or punctuation), so "E-Mail Address", "email_address" and "电子邮箱" need no
configuration. rules/columns.yaml may replace the alias list of any field; a field it does not
mention keeps the built-in list below.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from .. import config_defaults
from ..errors import RulesError
from ..schema import CANONICAL_FIELDS
from ..settings import Rules

# The built-in alias tables live in crmclean.config_defaults (plain data the settings model
# reads too): one copy, shown in rules/columns.yaml.
EXTRA_FIELDS_OF_DEFAULTS = ("middle_name", "second_last_name", "attr_birth_place", "attr_occupation")
DEFAULT_ALIASES: dict[str, list[str]] = {
    field: names for field, names in config_defaults.ALIASES.items() if field not in EXTRA_FIELDS_OF_DEFAULTS
}

# Person attributes that are no canonical field: read into their own record columns
# (`middle_name`, `second_last_name`, `attr_<name>`), never dropped. Their raw text also stays
# in `extra`. rules/columns.yaml `aliases` may replace any of these lists too.
EXTRA_ALIASES: dict[str, list[str]] = {
    field: names for field, names in config_defaults.ALIASES.items() if field in EXTRA_FIELDS_OF_DEFAULTS
}
EXTRA_FIELDS: tuple[str, ...] = tuple(EXTRA_ALIASES)

# Columns that are one part of a canonical field, combined by ingest (`field.part`):
# birth_year + birth_month + birth_day → birth_date; street_number + address_1 + address_2
# → address. Used only when the block has the parts (see `HeaderMapper.map_headers`).
PART_ALIASES: dict[str, list[str]] = {
    "birth_date.year": [
        "birth year",
        "year of birth",
        "yob",
        "dob year",
        "dob yyyy",
        "byear",
        "birth yyyy",
        "by",  # RLdata (R package RecordLinkage): by / bm / bd
        "出生年",
        "出生年份",
    ],
    "birth_date.month": [
        "birth month",
        "month of birth",
        "mob",
        "dob month",
        "dob mm",
        "bmonth",
        "bm",
        "出生月",
        "出生月份",
    ],
    "birth_date.day": ["birth day", "day of birth", "dob day", "dob dd", "bday", "bd", "出生日"],
    "address.number": ["street number", "street no", "house number", "house no", "street num", "hausnummer", "门牌号"],
    "address.line2": ["address 2", "address line 2", "addr 2", "street 2", "street address 2", "address2"],
}

# Tried only when the whole header is not an alias: "Customer Email" → "email".
DEFAULT_PREFIXES: list[str] = list(config_defaults.STRIP_PREFIXES)

_NON_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=1)
def _t2s():
    import opencc  # imported lazily: only header names are converted

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=4096)
def normalize_header(header: str) -> str:
    """Comparable form of a header: NFKC, simplified Chinese, lower case, letters/digits only."""
    text = unicodedata.normalize("NFKC", str(header)).strip().lower()
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        text = _t2s().convert(text)
    return _NON_WORD.sub("", text)


_ID_HEADER_RE = re.compile(r"(?:^|[\s_.\-/#])(?:id|ID|Id|iD)$|[a-z]Id$|[a-z]ID$|编号$|代码$")  # not "Paid", "valid"
_SLUG_RE = re.compile(r"[^\w]+")
_BIRTH_PARTS = ("birth_date.year", "birth_date.month", "birth_date.day")

# An unmapped column is a categorical attribute (compared exactly by the matcher) when it is
# neither an id (unique per row) nor free text (long values) nor constant.
CATEGORICAL_MAX_CHARS = 30  # at most 5 % of its values longer than this
CATEGORICAL_MAX_TOP_SHARE = 0.99


def looks_like_id_header(header: str) -> bool:
    """`rec_id`, `Attendee Id`, `AttendeeId`, `ID`, 编号: a header naming an identifier."""
    text = unicodedata.normalize("NFKC", str(header)).strip()
    return normalize_header(text) == "id" or _ID_HEADER_RE.search(text) is not None


def attr_slug(header: str) -> str:
    """`Customer Segment` → `customer_segment`: the `<slug>` of `attr_<slug>` (NFKC, casefolded)."""
    return _SLUG_RE.sub("_", unicodedata.normalize("NFKC", str(header)).casefold()).strip("_")


def is_unique_id_column(values: list[str]) -> bool:
    """Every row has a value and no value repeats: the column can identify records."""
    stripped = [v.strip() for v in values]
    return bool(stripped) and all(stripped) and len(set(stripped)) == len(stripped)


def is_categorical(values: list[str]) -> bool:
    """Short values, more than one of them, not unique per row, not 99 % one value (compared
    as the matcher will: NFKC, casefolded, spaces collapsed)."""
    present = [" ".join(unicodedata.normalize("NFKC", v).casefold().split()) for v in values if v and v.strip()]
    if len(present) < 2:
        return False
    counts: dict[str, int] = {}
    for v in present:
        counts[v] = counts.get(v, 0) + 1
    if len(counts) < 2 or len(counts) >= len(present):
        return False
    if max(counts.values()) >= CATEGORICAL_MAX_TOP_SHARE * len(present):
        return False
    too_long = sum(n for v, n in counts.items() if len(v) > CATEGORICAL_MAX_CHARS)
    return too_long <= 0.05 * len(present)


# "Title" is the salutation (Mr, Mrs, Dr) in many exports and the job title in others (event and
# webinar sign-ups): the values decide. A column under one of these headers whose values are
# mostly not salutations is the job title (attr_occupation, where "Job Title" and "Position" go).
JOB_TITLE_BY_VALUES_HEADERS = ("title", "头衔", "称谓")
JOB_TITLE_FIELD = "attr_occupation"
SALUTATIONS = frozenset(
    {"mr", "mister", "mrs", "ms", "miss", "mx", "dr", "doctor", "prof", "professor", "rev", "sir", "madam", "mme"}
    | {"m", "mlle", "herr", "frau", "sr", "sra", "srta", "dame", "lord", "lady"}
    | {"先生", "女士", "小姐", "太太", "夫人", "老师", "博士", "教授", "医生"}
)
SALUTATION_SHARE = 0.5


def looks_like_salutations(values: list[str]) -> bool:
    """At least half of the present values are salutations (`Mr`, `Mrs.`, `Dr`, 先生)."""
    present = [unicodedata.normalize("NFKC", v).strip().casefold().rstrip(".") for v in values if v and v.strip()]
    return bool(present) and sum(v in SALUTATIONS for v in present) >= SALUTATION_SHARE * len(present)


class HeaderMapper:
    """Maps one table's headers to canonical fields using aliases and per-source overrides.

    Besides canonical fields a header may map to an extra person field (`middle_name`,
    `second_last_name`, `attr_birth_place` …, see EXTRA_ALIASES), to a part of a combined field
    (`birth_date.year`, `address.number` …, see PART_ALIASES) or, when the column's values are
    given, to a categorical attribute `attr_<slug>`."""

    def __init__(self, rules: Rules):
        path = (rules.directory or Path("rules")) / "columns.yaml"
        section = rules.columns or {}
        aliases = {**DEFAULT_ALIASES, **EXTRA_ALIASES}
        configured = section.get("aliases") or {}
        if not isinstance(configured, dict):
            raise RulesError(path, "'aliases' must map a canonical field to a list of header names")
        known = (*CANONICAL_FIELDS, *EXTRA_FIELDS)
        for fld, names in configured.items():
            if fld not in known:
                raise RulesError(path, f"aliases: unknown field '{fld}' (fields: {', '.join(known)})")
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list):
                raise RulesError(path, f"aliases.{fld} must be a list of header names")
            aliases[fld] = [str(n) for n in names]
        prefixes = section.get("strip_prefixes", DEFAULT_PREFIXES)
        if not isinstance(prefixes, list):
            raise RulesError(path, "'strip_prefixes' must be a list")
        self.lookup: dict[str, str] = {}
        for fld in known:  # field order decides a (rare) alias listed under two fields
            for name in aliases.get(fld, []):
                self.lookup.setdefault(normalize_header(name), fld)
        self.parts: dict[str, str] = {}
        for part, names in PART_ALIASES.items():
            for name in names:
                self.parts.setdefault(normalize_header(name), part)
        self.prefixes = sorted({normalize_header(p) for p in prefixes if normalize_header(p)}, key=len, reverse=True)

    def guess(self, header: str) -> str | None:
        """The canonical (or extra) field a header names, or None."""
        key = normalize_header(header)
        if not key:
            return None
        if key in self.lookup:
            return self.lookup[key]
        for prefix in self.prefixes:
            if key.startswith(prefix) and key[len(prefix) :] in self.lookup:
                return self.lookup[key[len(prefix) :]]
        return None

    def part(self, header: str) -> str | None:
        """`birth_date.year`, `address.line2` …: the part of a combined field a header names."""
        return self.parts.get(normalize_header(header))

    def map_headers(
        self,
        headers: list[str],
        overrides: dict[str, str | None],
        id_column: str | None,
        columns: list[list[str]] | None = None,
    ) -> dict[str, str | None]:
        """{header: field, part or None}. Explicit settings (id_column, per-source `columns`) win
        over everything; then combined parts, aliases (the first header wins, a second header of
        the same field stays extra), and — when `columns` (the values) are given — an id-like
        header unique per row as the record id and categorical columns as `attr_<slug>`."""
        wanted = {normalize_header(h): t for h, t in overrides.items()}
        if id_column is not None:
            wanted[normalize_header(id_column)] = "record_id"
        mapping: dict[str, str | None] = {h: None for h in headers}
        taken: set[str] = set()
        decided: set[str] = set()
        for header in headers:  # pass 1: explicit settings
            key = normalize_header(header)
            if key in wanted:
                decided.add(header)
                target = wanted[key]
                if target is not None and target not in taken:
                    mapping[header] = target
                    taken.add(target)
        free = [h for h in headers if h not in decided]
        decided |= self._map_parts(free, mapping, taken)
        for header in headers:  # aliases, first header wins
            if header in decided:
                continue
            target = self.guess(header)
            if target is None and normalize_header(header) == "secondname":  # a middle name beside a surname
                target = "middle_name" if any(self.guess(h) == "last_name" for h in headers) else "last_name"
            if target is not None and target not in taken:
                mapping[header] = target
                taken.add(target)
                decided.add(header)
        if columns is not None:
            self._map_by_values(headers, columns, mapping, taken, decided)
        return mapping

    def _map_parts(self, free: list[str], mapping: dict, taken: set[str]) -> set[str]:
        """Claim the parts of a split birth date / address; returns the headers decided."""
        parts: dict[str, str] = {h: p for h in free if (p := self.part(h))}
        decided: set[str] = set()
        birth = {p: h for h, p in reversed(list(parts.items())) if p in _BIRTH_PARTS}
        if "birth_date.year" in birth or "birth_date.month" in birth:
            # birth_day next to year/month is the day of the month, never the whole date
            decided.update(birth.values())
            full_date = [h for h in free if h not in birth.values() and self.guess(h) == "birth_date"]
            if "birth_date.year" in birth and not full_date and "birth_date" not in taken:
                for p, h in birth.items():
                    mapping[h] = p
                taken.add("birth_date")
        address = {p: h for h, p in reversed(list(parts.items())) if p.startswith("address.")}
        line1 = next((h for h in free if h not in parts and self.guess(h) == "address"), None)
        if address and line1 is not None and "address" not in taken:
            for p, h in {**address, "address.line1": line1}.items():
                mapping[h] = p
                decided.add(h)
            taken.add("address")
        return decided

    def _map_by_values(self, headers, columns, mapping, taken, decided) -> None:
        """Record id by uniqueness (`rec_id`, `Attendee Id`); categorical columns → attr_<slug>."""
        values = dict(zip(headers, columns))
        for header in headers:  # "Title": the job title unless its values are salutations
            if (
                header not in decided
                and normalize_header(header) in {normalize_header(h) for h in JOB_TITLE_BY_VALUES_HEADERS}
                and JOB_TITLE_FIELD not in taken
                and any(v and v.strip() for v in values[header])
                and not looks_like_salutations(values[header])
            ):
                mapping[header] = JOB_TITLE_FIELD
                taken.add(JOB_TITLE_FIELD)
                decided.add(header)
        if "record_id" not in taken:
            for header in headers:
                if header not in decided and looks_like_id_header(header) and is_unique_id_column(values[header]):
                    mapping[header] = "record_id"
                    taken.add("record_id")
                    decided.add(header)
                    break
        for header in headers:
            if header in decided or looks_like_id_header(header):
                continue
            slug = attr_slug(header)
            target = f"attr_{slug}"
            if slug and target not in taken and is_categorical(values[header]):
                mapping[header] = target
                taken.add(target)
