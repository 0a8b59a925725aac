"""Per-source settings from rules/sources.yaml: which files form a source and how to read them.

Every key is optional; a file no entry claims is its own source, named by its file stem, read
with automatic encoding/delimiter detection. Settings are validated up front so a typo in the
YAML stops the run with a RulesError naming the key, before any file is read.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..errors import RulesError
from ..schema import CANONICAL_FIELDS
from ..settings import Rules

DEFAULT_MAX_VALUE_CHARS = 4000
DEFAULT_MAX_LINE_CHARS = 1_000_000  # a longer physical line is quarantined before it is split
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_SOURCE_KEYS = frozenset(
    {"files", "id_column", "encoding", "delimiter", "day_first", "default_region", "full_snapshot", "columns"}
)
_DEFAULT_KEYS = frozenset({"max_value_chars", "max_line_chars", "encoding", "delimiter", "day_first", "default_region", "full_snapshot"})
_REGION = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class SourceConfig:
    """How to read the files of one source (defaults merged with its sources.yaml entry)."""

    name: str
    id_column: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    day_first: bool | None = None
    default_region: str | None = None
    full_snapshot: bool = False
    columns: dict[str, str | None] = field(default_factory=dict)
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS


@dataclass(frozen=True)
class SourceRules:
    """All source entries, in YAML order (the first entry whose pattern matches a file wins)."""

    defaults: dict[str, Any]
    entries: dict[str, dict[str, Any]]

    def source_for(self, file_name: str) -> str:
        """Source name of a file: the first entry whose `files` glob matches, else the stem."""
        lower = file_name.lower()
        for name, entry in self.entries.items():
            if any(fnmatchcase(lower, pattern.lower()) for pattern in entry.get("files", [])):
                return name
        return Path(file_name).stem

    def config(self, source: str) -> SourceConfig:
        merged = {**self.defaults, **self.entries.get(source, {})}
        merged.pop("files", None)
        return SourceConfig(name=source, **merged)


def _rules_path(rules: Rules) -> Path:
    return (rules.directory or Path("rules")) / "sources.yaml"


def load_source_rules(rules: Rules) -> SourceRules:
    """Validate rules.sources and normalise it; RulesError names the offending key."""
    path = _rules_path(rules)
    data = rules.sources or {}
    defaults_in = data.get("defaults") or {}
    entries_in = data.get("sources") or {}
    if not isinstance(defaults_in, dict):
        raise RulesError(path, "'defaults' must be a mapping")
    if not isinstance(entries_in, dict):
        raise RulesError(path, "'sources' must be a mapping of source name to settings")
    unknown = set(data) - {"defaults", "sources"}
    if unknown:
        raise RulesError(path, f"unknown top-level key(s) {sorted(unknown)}; expected 'defaults' and 'sources'")

    defaults: dict[str, Any] = {"max_value_chars": DEFAULT_MAX_VALUE_CHARS, "max_line_chars": DEFAULT_MAX_LINE_CHARS}
    for key, value in defaults_in.items():
        if key not in _DEFAULT_KEYS:
            raise RulesError(path, f"defaults: unknown key '{key}' (known: {', '.join(sorted(_DEFAULT_KEYS))})")
        defaults[key] = _check_value(path, "defaults", key, value)

    entries: dict[str, dict[str, Any]] = {}
    for name, entry in entries_in.items():
        where = f"sources.{name}"
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise RulesError(path, f"{where} must be a mapping of settings")
        clean: dict[str, Any] = {}
        for key, value in entry.items():
            if key not in _SOURCE_KEYS:
                raise RulesError(path, f"{where}: unknown key '{key}' (known: {', '.join(sorted(_SOURCE_KEYS))})")
            clean[key] = _check_value(path, where, key, value)
        entries[str(name)] = clean
    return SourceRules(defaults=defaults, entries=entries)


def _check_value(path: Path, where: str, key: str, value: Any) -> Any:
    """One setting, checked and normalised (None always means "automatic / not set")."""
    if value is None:
        return [] if key == "files" else ({} if key == "columns" else (False if key == "full_snapshot" else value))
    bad = lambda why: RulesError(path, f"{where}.{key}: {why} (got {value!r})")  # noqa: E731
    if key == "files":
        patterns = [value] if isinstance(value, str) else value
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise bad("must be a file-name glob or a list of them")
        return patterns
    if key == "id_column":
        if not isinstance(value, (str, int)) or str(value).strip() == "":
            raise bad("must be a column header")
        return str(value)
    if key == "encoding":
        try:
            return codecs.lookup(str(value)).name
        except LookupError:
            raise bad("is not an encoding Python knows") from None
    if key == "delimiter":
        value = DELIMITER_NAMES.get(str(value).lower(), value)
        if not isinstance(value, str) or len(value) != 1:
            raise bad("must be one character, or tab/comma/semicolon/pipe")
        return value
    if key in ("day_first", "full_snapshot"):
        if not isinstance(value, bool):
            raise bad("must be true or false")
        return value
    if key == "default_region":
        if not isinstance(value, str) or not _REGION.match(value.upper()):
            raise bad("must be a two-letter ISO country code such as CN or US")
        return value.upper()
    if key in ("max_value_chars", "max_line_chars"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise bad("must be a positive whole number")
        return value
    if key == "columns":
        if not isinstance(value, dict):
            raise bad("must map a header to a canonical field (or null to keep it as an extra column)")
        for header, target in value.items():
            if target is not None and target not in CANONICAL_FIELDS:
                raise RulesError(
                    path,
                    f"{where}.columns: '{header}' maps to unknown field '{target}' "
                    f"(fields: {', '.join(CANONICAL_FIELDS)})",
                )
        return {str(h): t for h, t in value.items()}
    raise bad("unknown setting")  # pragma: no cover - keys are checked before


def source_settings(rules: Rules, source: str) -> SourceConfig:
    """Settings of one source by name — for later stages (standardize: default_region, day_first;
    incremental: full_snapshot)."""
    return load_source_rules(rules).config(source)
