"""Load rules/*.yaml into one serialisable settings object.

Every tunable lives in rules/ so a user changes YAML, not code. Each stage reads its own section
and supplies its own defaults, so a missing file means "use the defaults".
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import RulesError



def packaged_dir(name: str) -> Path:
    """The folder of package data `crmclean.<name>` (rules, expectations, sample_data).

    Read through importlib.resources so a wheel install and an editable checkout both work.
    """
    resource = importlib.resources.files(f"crmclean.{name}")
    return Path(str(resource))


DEFAULT_RULES_DIR = packaged_dir("rules")
DEFAULT_EXPECTATIONS_DIR = packaged_dir("expectations")
SAMPLE_DATA_DIR = packaged_dir("sample_data")


def copy_package_dir(source: Path, target: Path, overwrite: bool = False) -> list[Path]:
    """Copy a packaged data folder for a user to edit; never overwrites unless asked."""
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_dir() or path.suffix not in {".yaml", ".json"}:
            continue  # skips __init__.py and caches: only the user's rules and suites
        dest = target / path.relative_to(source)
        if dest.exists() and not overwrite:
            raise RulesError(dest, "already exists (pass --force to overwrite)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())
        written.append(dest)
    return written

SECTIONS = ("sources", "columns", "standardize", "matching", "survivorship", "overrides", "validation")


@dataclass
class Rules:
    """All rule sections as plain dicts (serialisable, easy to diff between runs)."""

    directory: Path | None = None
    sources: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    standardize: dict[str, Any] = field(default_factory=dict)
    matching: dict[str, Any] = field(default_factory=dict)
    survivorship: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in SECTIONS}


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:  # names file, line and column
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise RulesError(path, f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise RulesError(path, "is not UTF-8 text") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RulesError(path, "must contain a mapping at the top level")
    return data


def load_rules(directory: str | Path | None = None) -> Rules:
    """Read rules/<section>.yaml for each section; absent files give empty sections."""
    directory = Path(directory) if directory else DEFAULT_RULES_DIR
    if not directory.is_dir():
        raise RulesError(directory, "rules directory not found")
    rules = Rules(directory=directory)
    for section in SECTIONS:
        path = directory / f"{section}.yaml"
        if path.exists():
            setattr(rules, section, _load_yaml(path))
    return rules
