"""Load rules/*.yaml into one serialisable settings object.

Every tunable lives in rules/ so a user changes YAML, not code. Each file is validated by its
model in crmclean.config (unknown keys and bad values stop the run with a RulesError naming the
key) and stored default-filled, so a missing file or key means "use the defaults" and stages
read the values without defaults of their own.
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

    def validated(self) -> Rules:
        """A copy with every section validated and default-filled, as load_rules gives it (for
        Rules built by hand); RulesError names the section's file and the key."""
        from .config import rules_path, validate_section

        values = {s: validate_section(s, getattr(self, s), rules_path(self, s)) for s in SECTIONS}
        return Rules(directory=self.directory, **values)


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
    """Read and validate rules/<section>.yaml for each section; an absent file gives the
    section's defaults. The first bad key or value is a RulesError naming file and key."""
    from .config import validate_section

    directory = Path(directory) if directory else DEFAULT_RULES_DIR
    if not directory.is_dir():
        raise RulesError(directory, "rules directory not found")
    rules = Rules(directory=directory)
    for section in SECTIONS:
        path = directory / f"{section}.yaml"
        data = _load_yaml(path) if path.exists() else {}
        setattr(rules, section, validate_section(section, data, path))
    return rules
