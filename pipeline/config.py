"""Typed, strict settings: one pydantic model per rules file.

`load_rules` (crmclean.settings) validates every file with these models and keeps the
validated, default-filled values as plain dicts, so stages read `rules.matching["chunk_size"]`
without defaults of their own. A misspelt key stops the run with a RulesError naming the file,
the dotted key path and the nearest valid key:

    rules/matching.yaml: unknown key 'thresholds.reveiw' (did you mean 'review'?)

    python -m crmclean.config_check [DIR]    checks a rules folder and prints the first error
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .config_base import error_line
from .config_matching import MatchingSettings
from .config_models import (
    ColumnsSettings,
    OverridesSettings,
    SourcesSettings,
    StandardizeSettings,
    SurvivorshipSettings,
)
from .errors import RulesError

#: rules file stem -> its model (rules/validation.yaml is read by nothing, so it has none)
MODELS: dict[str, type[BaseModel]] = {
    "sources": SourcesSettings,
    "columns": ColumnsSettings,
    "standardize": StandardizeSettings,
    "matching": MatchingSettings,
    "survivorship": SurvivorshipSettings,
    "overrides": OverridesSettings,
}

__all__ = [
    "MODELS",
    "ColumnsSettings",
    "MatchingSettings",
    "OverridesSettings",
    "SourcesSettings",
    "StandardizeSettings",
    "SurvivorshipSettings",
    "defaults",
    "parse_section",
    "rules_path",
    "section",
    "validate_section",
]


def parse_section(name: str, data: Any, path: str | Path | None = None) -> BaseModel:
    """The model of one section; RulesError (one line: file, dotted key, what is allowed)."""
    model = MODELS[name]
    where = path or f"rules/{name}.yaml"
    if data is not None and not isinstance(data, dict):
        raise RulesError(where, "must contain a mapping at the top level")
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise RulesError(where, error_line(exc)) from None


def as_dict(model: BaseModel) -> dict[str, Any]:
    dump = getattr(model, "as_rules", None)
    return dump() if dump else model.model_dump()


def validate_section(name: str, data: Any, path: str | Path | None = None) -> dict[str, Any]:
    """Validated, default-filled values of one section as a plain dict (what stages read).
    Sections without a model are returned as they are."""
    if name not in MODELS:
        return data or {}
    return as_dict(parse_section(name, data, path))


def rules_path(rules: Any, name: str) -> Path:
    directory = getattr(rules, "directory", None)
    return (Path(directory) if directory else Path("rules")) / f"{name}.yaml"


def section(rules: Any, name: str) -> dict[str, Any]:
    """One section of a Rules object, validated (Rules built by hand in code and tests are not
    validated by load_rules; validating again is cheap and returns the same values)."""
    data = getattr(rules, name, None) if rules is not None else None
    return validate_section(name, data, rules_path(rules, name))


def defaults(name: str) -> dict[str, Any]:
    """The defaults of one section, as the shipped rules/<name>.yaml shows them."""
    return validate_section(name, {})
