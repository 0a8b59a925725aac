"""Per-source settings from rules/sources.yaml: which files form a source and how to read them.

Every key is optional; a file no entry claims is its own source, named by its file stem, read
with automatic encoding/delimiter detection. The keys, their defaults and their checks are the
model crmclean.config.SourcesSettings, so a typo in the YAML stops the run with a RulesError
naming the key, before any file is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..config import parse_section, rules_path
from ..config_models import SourceDefaults, SourcesSettings
from ..settings import Rules

DEFAULT_MAX_VALUE_CHARS: int = SourceDefaults.model_fields["max_value_chars"].default
DEFAULT_MAX_LINE_CHARS: int = SourceDefaults.model_fields["max_line_chars"].default
DEFAULT_CHUNK_ROWS: int = SourceDefaults.model_fields["chunk_rows"].default


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
    chunk_rows: int = DEFAULT_CHUNK_ROWS


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


def load_source_rules(rules: Rules) -> SourceRules:
    """Validate rules.sources (RulesError names the offending key) and normalise it. An entry
    keeps only the keys it sets: the others are inherited from `defaults`."""
    settings = parse_section("sources", rules.sources, rules_path(rules, "sources"))
    assert isinstance(settings, SourcesSettings)
    entries = {name: entry.model_dump(exclude_unset=True) for name, entry in settings.sources.items()}
    return SourceRules(defaults=settings.defaults.model_dump(), entries=entries)


def source_settings(rules: Rules, source: str) -> SourceConfig:
    """Settings of one source by name — for later stages (standardize: default_region, day_first;
    incremental: full_snapshot)."""
    return load_source_rules(rules).config(source)
