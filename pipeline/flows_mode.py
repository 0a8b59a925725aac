"""How `crmclean run` decides between a Prefect flow run and running the stages in-process.

Cheap on purpose: importing Prefect's settings costs ~2 s, so the configured API URL is read from
the environment and the active profile file directly (Prefect's own precedence: env first).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

STARTUP_TIMEOUT_TEXT = "Timed out while attempting to connect to ephemeral Prefect API server"


def prefect_api_configured() -> str | None:
    """The Prefect API URL from PREFECT_API_URL or the active profile, or None."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    profiles = home / "profiles.toml"
    try:
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    profile = (data.get("profiles") or {}).get(active) or {}
    value = profile.get("PREFECT_API_URL")
    return str(value) if value else None


def startup_timed_out(exc: BaseException | None) -> bool:
    """The temporary server never came up (anywhere in the exception chain)."""
    seen = 0
    while exc is not None and seen < 10:
        if STARTUP_TIMEOUT_TEXT in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
