"""Shared pieces of the settings models (crmclean.config): a strict base model whose unknown-key
error names the nearest valid key, and ValidationError → one-line RulesError.

Why a `before` validator on top of `extra="forbid"`: pydantic's own extra_forbidden error does
not know the valid keys, and "did you mean 'review'?" is what makes a typo a ten-second fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from .errors import RulesError


def unknown_key(key: Any, valid: Iterable[str], why: str = "") -> PydanticCustomError:
    """The error of a key that is not one of `valid`; `why` says what a valid key is."""
    near = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.6)
    return PydanticCustomError(
        "unknown_key", "unknown key", {"key": str(key), "near": near[0] if near else "", "why": why}
    )


def bad_value(message: str) -> PydanticCustomError:
    """A value error whose message is shown as is after the key ("must be ...")."""
    return PydanticCustomError("bad_value", message)


def check_keys(mapping: Any, valid: Iterable[str], why: str = "") -> Any:
    """For open-ended maps whose keys come from a fixed list (fields, features)."""
    valid = list(valid)
    if isinstance(mapping, dict):
        for key in mapping:
            if key not in valid:
                raise unknown_key(key, valid, why)
    return mapping


class Strict(BaseModel):
    """A settings mapping with fixed keys: unknown keys are refused with the nearest valid one."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            valid = [f.alias or name for name, f in cls.model_fields.items()]
            for key in data:
                if key not in valid:
                    raise unknown_key(key, valid)
        return data


def _dotted(loc: tuple) -> str:
    """('blocking', 'rules', 3, 'window') → 'blocking.rules[3].window' (pydantic's own
    '[key]' / function-name steps dropped)."""
    out = ""
    for step in loc:
        if isinstance(step, int):
            out += f"[{step}]"
        elif str(step).startswith(("function-", "[key]")) or step in ("str", "list[str]", "dict[str,any]"):
            continue
        else:
            out += f".{step}" if out else str(step)
    return out


def error_line(exc: ValidationError) -> str:
    """The first error of a ValidationError as one sentence naming the dotted key path."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if err["type"] == "unknown_key":
        dotted = _dotted(loc + (ctx["key"],))
        why = f": {ctx['why']}" if ctx.get("why") else ""
        near = f" (did you mean '{ctx['near']}'?)" if ctx.get("near") else ""
        return f"unknown key '{dotted}'{why}{near}"
    if err["type"] == "extra_forbidden":  # reached only by models outside Strict
        return f"unknown key '{_dotted(loc)}'"
    dotted = _dotted(loc) or "(top level)"
    message = err["msg"]
    if err["type"] != "bad_value":
        message = message[0].lower() + message[1:]
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    joint = " " if message.startswith(("must ", "is ", "has ", "maps ")) else ": "  # "x must be ..."
    return f"{dotted}{joint}{message}{shown}"


def raise_rules_error(path: str | Path, exc: ValidationError) -> None:
    raise RulesError(path, error_line(exc)) from None
