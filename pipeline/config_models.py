"""One pydantic model per rules file except matching.yaml (config_matching.py).

Each default is written once, here (or in the code table the model names as its default);
rules/*.yaml show the same values, kept equal by tests/test_settings.py.
"""

from __future__ import annotations

import codecs
import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from . import config_defaults as defaults
from .config_base import Strict, bad_value, check_keys, unknown_key
from .schema import CANONICAL_FIELDS

# ------------------------------------------------------------------------------ shared value types

DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_REGION = re.compile(r"^[A-Z]{2}$")


def _encoding(value: Any) -> Any:
    if value is None:
        return None
    try:
        return codecs.lookup(str(value)).name
    except LookupError:
        raise bad_value("is not an encoding Python knows (utf-8, gb18030, utf-16, cp1252 ...)") from None


def _delimiter(value: Any) -> Any:
    if value is None:
        return None
    value = DELIMITER_NAMES.get(str(value).lower(), value)
    if not isinstance(value, str) or len(value) != 1:
        raise bad_value("must be one character, or tab/comma/semicolon/pipe")
    return value


def _region(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not _REGION.match(value.upper()):
        raise bad_value("must be a two-letter ISO country code such as CN or US")
    return value.upper()


def _flag(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_value("must be true or false")
    return value


def _positive_int(value: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_value("must be a positive whole number")
    return value


def _str_list(what: str):
    """A list of text (a single string is a one-item list; null is an empty list)."""

    def convert(value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            raise bad_value(f"must be a list of {what}")
        return [str(v) for v in value]

    return BeforeValidator(convert)


Encoding = Annotated[str | None, BeforeValidator(_encoding)]
Delimiter = Annotated[str | None, BeforeValidator(_delimiter)]
Region = Annotated[str | None, BeforeValidator(_region)]
Flag = Annotated[bool, BeforeValidator(_flag)]
PositiveInt = Annotated[int, BeforeValidator(_positive_int)]

# ------------------------------------------------------------------------------ sources.yaml


class SourceDefaults(Strict):
    """Settings every source inherits unless its own entry sets them (null = detect / not set)."""

    max_value_chars: PositiveInt = Field(default=4000, description="longest cell accepted; longer rows are quarantined")
    max_line_chars: PositiveInt = Field(
        default=1_000_000, description="longest physical line; a longer one is quarantined before it is split"
    )
    chunk_rows: PositiveInt = Field(
        default=50_000, description="lines of a text file split and checked at a time (bounded memory)"
    )
    encoding: Encoding = Field(default=None, description="null = detect; or a Python codec name")
    delimiter: Delimiter = Field(default=None, description="null = detect; one character or tab/comma/semicolon/pipe")
    day_first: StrictBool | None = Field(default=None, description="true: 03/07 is 3 July; null: standardize decides")
    default_region: Region = Field(default=None, description="ISO country for phone numbers without a country code")
    full_snapshot: Flag = Field(default=False, description="each run's file is the whole source")


def _header(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
        raise bad_value("must be a column header")
    return str(value)


class SourceEntry(Strict):
    """One source: its files and how to read them. An unset key inherits `defaults`."""

    files: Annotated[list[str], _str_list("file-name globs")] = Field(default_factory=list)
    id_column: Annotated[str | None, BeforeValidator(_header)] = None
    encoding: Encoding = None
    delimiter: Delimiter = None
    day_first: StrictBool | None = None
    default_region: Region = None
    full_snapshot: Flag = False
    columns: dict[str, str | None] = Field(default_factory=dict, description="{header: canonical field or null}")

    @field_validator("files")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        if not all(value):
            raise bad_value("must be a file-name glob or a list of them")
        return value

    @field_validator("columns", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad_value("must map a header to a canonical field (or null to keep it as an extra column)")
        for header, target in value.items():
            if target is not None and target not in CANONICAL_FIELDS:
                raise bad_value(f"maps '{header}' to unknown field '{target}' (fields: {', '.join(CANONICAL_FIELDS)})")
        return {str(h): t for h, t in value.items()}


class ErasureSettings(Strict):
    """What happens to a row of a person erased by `crmclean forget` when an import brings it again."""

    reason: str = Field(
        default="This person's data was erased on request (crmclean forget); the row is not imported.",
        min_length=1,
        description="quarantine reason text (reason_code erased_on_request); no personal value is added to it",
    )


class SourcesSettings(Strict):
    """rules/sources.yaml."""

    defaults: SourceDefaults = Field(default_factory=SourceDefaults)
    sources: dict[str, SourceEntry] = Field(default_factory=dict, description="source name -> entry, in order")
    erasure: ErasureSettings = Field(default_factory=ErasureSettings)

    @field_validator("sources", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else ({} if value is None else value)

    def as_rules(self) -> dict[str, Any]:
        """Entries keep only the keys they set (an unset key inherits `defaults`); defaults drop
        the automatic (null) ones, so the standardize fingerprint of a file is unchanged."""
        return {
            "defaults": self.defaults.model_dump(exclude_none=True),
            "sources": {name: entry.model_dump(exclude_unset=True) for name, entry in self.sources.items()},
            "erasure": self.erasure.model_dump(),
        }


# ------------------------------------------------------------------------------ columns.yaml


def _default_aliases() -> dict[str, list[str]]:
    return {f: list(names) for f, names in defaults.ALIASES.items()}


def _default_prefixes() -> list[str]:
    return list(defaults.STRIP_PREFIXES)


class ColumnsSettings(Strict):
    """rules/columns.yaml: a field listed under aliases replaces its built-in list."""

    aliases: dict[str, Annotated[list[str], _str_list("header names")]] = Field(default_factory=_default_aliases)
    strip_prefixes: Annotated[list[str], _str_list("prefixes")] = Field(default_factory=_default_prefixes)

    @field_validator("aliases", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        if value is None:
            return {}
        return check_keys(value, defaults.ALIASES, "not a canonical or extra person field")

    @field_validator("aliases")
    @classmethod
    def _built_ins_for_the_rest(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {**_default_aliases(), **value}


# ------------------------------------------------------------------------------ standardize.yaml

DATE_FIELDS = ("birth_date", "created_at", "updated_at")
DayFirst = StrictBool | dict[str, StrictBool | None] | None


def _email_default(name: str):
    def make():
        value = getattr(defaults, name)
        return dict(value) if isinstance(value, dict) else list(value)

    return make


class Dates(Strict):
    day_first: dict[str, DayFirst] = Field(
        default_factory=dict, description="{source: bool or {date field: bool}}; otherwise inferred from the data"
    )
    excel_serial_min: int = Field(default=10_000, ge=0, description="smallest Excel serial day number read as a date")
    excel_serial_max: int = Field(default=73_050, ge=1, description="largest Excel serial day number read as a date")

    @field_validator("day_first", mode="before")
    @classmethod
    def _per_source(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            for source, setting in value.items():
                if isinstance(setting, dict):
                    for key in setting:
                        if key not in DATE_FIELDS:
                            raise unknown_key(
                                f"{source}.{key}", [f"{source}.{f}" for f in DATE_FIELDS], "not a date field"
                            )
        return value

    @model_validator(mode="after")
    def _range(self) -> Dates:
        if self.excel_serial_min >= self.excel_serial_max:
            raise bad_value(
                f"excel_serial_min ({self.excel_serial_min}) must be below excel_serial_max ({self.excel_serial_max})"
            )
        return self


class Emails(Strict):
    domain_typos: dict[str, str] = Field(
        default_factory=_email_default("EMAIL_DOMAIN_TYPOS"),
        description="typo domain -> right domain, added to the built-in list",
    )
    placeholders: Annotated[list[str], _str_list("values")] = Field(
        default_factory=_email_default("EMAIL_PLACEHOLDERS"), description="values meaning 'no e-mail'"
    )
    placeholder_patterns: Annotated[list[str], _str_list("regular expressions")] = Field(
        default_factory=_email_default("EMAIL_PLACEHOLDER_PATTERNS")
    )
    plus_tag_domains: Annotated[list[str], _str_list("domains")] = Field(
        default_factory=_email_default("EMAIL_PLUS_TAG_DOMAINS")
    )
    dot_free_domains: Annotated[list[str], _str_list("domains")] = Field(
        default_factory=_email_default("EMAIL_DOT_FREE_DOMAINS")
    )

    @field_validator("placeholder_patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise bad_value(f"has {pattern!r}, not a regular expression ({exc})") from None
        return value


class Names(Strict):
    nicknames: dict[str, str] = Field(default_factory=dict, description="extra nickname -> canonical first name")


def _placeholder_fields() -> list[str]:
    return [*defaults.PLACEHOLDER_FIELDS, "national_id"]


def _default_placeholders() -> dict[str, list[str]]:
    return {f: [] for f in defaults.PLACEHOLDER_FIELDS}


class MinIdentity(Strict):
    enabled: StrictBool = True
    fields: list[Literal["name", "email", "phone", "national_id"]] = Field(
        default=["name", "email", "phone", "national_id"], min_length=1
    )
    min_count: int = Field(default=1, ge=0, description="how many of `fields` a row needs")


class PhoneRegionEvidence(Strict):
    """A source's own numbers written with a country code name its region for the rest."""

    min_numbers: int = Field(default=5, ge=1, description="explicit +CC numbers a source needs")
    min_share: float = Field(default=0.8, gt=0.5, le=1.0, description="share the top region must hold")


class StandardizeSettings(Strict):
    """rules/standardize.yaml."""

    default_region: Annotated[str, BeforeValidator(_region)] = Field(
        default="US", description="phone region of last resort"
    )
    phone_region_evidence: PhoneRegionEvidence = Field(default_factory=PhoneRegionEvidence)
    max_match_chars: int = Field(default=200, ge=0, description="values cut to this length for matching")
    in_process_below: int = Field(default=20_000, ge=0, description="below this many records no process pool")
    dates: Dates = Field(default_factory=Dates)
    emails: Emails = Field(default_factory=Emails)
    names: Names = Field(default_factory=Names)
    placeholders: dict[str, Annotated[list[str], _str_list("values")]] = Field(
        default_factory=_default_placeholders, description="{field: extra whole-cell 'no value' markers}"
    )
    min_identity: MinIdentity = Field(default_factory=MinIdentity)

    @field_validator("placeholders", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        if value is None:
            return {}
        return check_keys(value, _placeholder_fields(), "no placeholder list for that field")

    @field_validator("placeholders")
    @classmethod
    def _every_field(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {**_default_placeholders(), **value}


# ------------------------------------------------------------------------------ survivorship.yaml

#: Chains of the fields a survivorship.yaml does not list. The shipped rules/survivorship.yaml
#: lists every field with the chains tuned on the bench data (they differ for name, email,
#: mobile, landline, address and national_id); these are the plain defaults of Rules built in code.
DEFAULT_CHAINS: dict[str, list[Any]] = {
    "name": [
        "valid_only",
        {"prefer_script": "han"},
        "formal_name",
        "prefer_accents",
        "medoid",
        "standard_case",
        "most_frequent",
        "common_characters",
        "common_spelling",
        "most_complete",
        "source_priority",
        "most_recent",
    ],
    "gender": ["valid_only", "most_frequent", "source_priority", "most_recent"],
    "email": [
        "valid_only",
        {"most_frequent": "match_key"},
        "common_domain",
        "plain_mailbox",
        "identity_match",
        "most_similar",
        "prefer_clean",
        "most_recent",
        "most_frequent",
        "source_priority",
    ],
    "mobile": [
        "valid_only",
        "valid_over_possible",
        "home_country",
        "same_address",
        "own_number",
        "type_evidence",
        "most_frequent",
        "most_recent",
        "source_priority",
    ],
    "landline": [
        "valid_only",
        "valid_over_possible",
        "home_country",
        "same_address",
        "type_evidence",
        "most_frequent",
        "most_recent",
        "source_priority",
    ],
    "birth_date": [
        "valid_only",
        "prefer_clean",
        "most_frequent",
        "unambiguous_date",
        "source_priority",
        "most_recent",
    ],
    "address": ["valid_only", "most_complete", "most_recent", "source_priority"],
    "company": ["valid_only", "most_recent", "most_frequent", "source_priority"],
}


def _check_chain(chain: Any) -> Any:
    """A list of strategies: names, or one-key mappings {strategy: argument}."""
    if not isinstance(chain, list) or not chain:
        raise bad_value("must be a non-empty list of strategies")
    for item in chain:
        if isinstance(item, dict) and len(item) == 1:
            strategy, arg = next(iter(item.items()))
        elif isinstance(item, str):
            strategy, arg = item, None
        else:
            raise bad_value(f"has {item!r}, not a strategy name or a one-key mapping")
        if strategy not in defaults.STRATEGIES:
            near = difflib.get_close_matches(str(strategy), defaults.STRATEGIES, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise bad_value(f"has unknown strategy {strategy!r} ({hint}known: {', '.join(defaults.STRATEGIES)})")
        if strategy == "source_priority" and arg is not None and not isinstance(arg, list):
            raise bad_value("has source_priority with an argument that is not a list of sources")
        if strategy == "most_frequent" and arg not in (None, "match_key"):
            raise bad_value(f"has {{most_frequent: {arg!r}}}: most_frequent takes no argument or 'match_key'")
        if strategy == "prefer_script" and arg is not None and str(arg).lower() not in ("han", "latin"):
            raise bad_value(f"has {{prefer_script: {arg!r}}}: prefer_script takes han or latin")
    return chain


Chain = Annotated[list[Any], BeforeValidator(_check_chain)]


class Similarity(Strict):
    """How typo variants vote in the `medoid` strategy."""

    max_edits: int = Field(default=1, ge=0, le=3, description="edits (a transposition is one) between typo variants")
    variant_weight: float = Field(default=0.5, ge=0.0, le=1.0, description="a typo variant's vote (the same value: 1)")


class SurvivorshipSettings(Strict):
    """rules/survivorship.yaml. A field listed under `fields` replaces that field's default
    chain; a field not listed keeps it; a group without a chain (phone) uses `default`."""

    source_priority: Annotated[list[str], _str_list("source names")] = Field(
        default_factory=list, description="most trusted source first"
    )
    exclude_flags: Annotated[list[str], _str_list("flag codes")] = Field(default=["invalid", "placeholder", "junk"])
    similarity: Similarity = Field(default_factory=Similarity)
    compose_name: bool = Field(
        default=True,
        description="choose the given and the family name each on its own (by the name chain) and rebuild the full name",
    )
    in_process_below: int | None = Field(
        default=None,
        ge=0,
        description="from this many records on, --workers N builds golden records in N processes; "
        "null: always one process (each extra process adds memory)",
    )
    default: Chain = Field(
        default=["valid_only", "prefer_clean", "source_priority", "most_recent", "most_frequent", "most_complete"],
        description="chain of a field not listed under fields",
    )
    fields: dict[str, Chain] = Field(default_factory=lambda: {f: list(c) for f, c in DEFAULT_CHAINS.items()})

    @field_validator("source_priority", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list):
            raise bad_value("must be a list of source names")
        return value

    @field_validator("fields", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            members = {m: group for group, names in defaults.GROUP_MEMBERS.items() for m in names}
            for key in value:
                if key in members:
                    raise bad_value(
                        f"has {key}, which is chosen with the '{members[key]}' group; "
                        f"configure fields.{members[key]} instead"
                    )
            check_keys(value, defaults.GROUP_MEMBERS, "not a master field")
        return value

    @field_validator("fields")
    @classmethod
    def _defaults_for_the_rest(cls, value: dict[str, list]) -> dict[str, list]:
        return {**{f: list(c) for f, c in DEFAULT_CHAINS.items()}, **value}


# ------------------------------------------------------------------------------ overrides.yaml

_REF = re.compile(r"^[^:|]+[:|].+$")


def _reference(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not _REF.match(str(value).strip()):
        raise bad_value('is not a record reference; write it as "source:source_record_id"')
    return str(value)


Reference = Annotated[str, BeforeValidator(_reference)]


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


class OverridesSettings(Strict):
    """rules/overrides.yaml: manual must-link, cannot-link and unmerge decisions."""

    must_link: Annotated[list[Annotated[list[Reference], Field(min_length=2)]], BeforeValidator(_none_is_empty)] = (
        Field(default_factory=list)
    )
    cannot_link: Annotated[list[Annotated[list[Reference], Field(min_length=2)]], BeforeValidator(_none_is_empty)] = (
        Field(default_factory=list)
    )
    unmerge: Annotated[list[Reference], BeforeValidator(_none_is_empty)] = Field(default_factory=list)
