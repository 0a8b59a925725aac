"""Database failures as one clear `CrmcleanError` line (no traceback for users)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ..errors import CrmcleanError

_UNCHANGED = "The published master is unchanged; run again when the database is reachable."
_REFUSED = re.compile(r"read-?only|permission denied|must be owner|insufficient privilege", re.I)
_FULL = re.compile(r"disk is full|no space left|disk full|quota", re.I)


def _hint(first: str, lost: bool) -> tuple[str, str]:
    """(what happened, what to do) for a database error's first line."""
    if _REFUSED.search(first):
        return "the database refuses writes", "The published master is unchanged; grant write access or choose --db."
    if _FULL.search(first):
        return "the database's disk is full", "The published master is unchanged; free space and run again."
    return ("the connection to the database was lost" if lost else "database error"), _UNCHANGED


class StoreError(CrmcleanError):
    """The master database could not be reached or written; nothing half-published."""


class NoMaster(StoreError):
    """A read-only command pointed at a database crmclean never wrote (a typo, a fresh one)."""

    def __init__(self, safe_url: str):
        super().__init__(f"no crmclean master at {safe_url}: run 'crmclean run' first")


@contextmanager
def translate_errors(action: str, safe_url: str) -> Iterator[None]:
    """Database failures become one clear, retry-able StoreError naming what was being done."""
    try:
        yield
    except CrmcleanError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        orig = getattr(exc, "orig", None) or exc
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        hint, todo = _hint(first, isinstance(exc, DBAPIError) and exc.connection_invalidated)
        raise StoreError(f"{hint} while {action} ({safe_url}): {first}. {todo}") from exc
    except Exception as exc:  # psycopg errors raised from the raw COPY connection
        if type(exc).__module__.startswith(("psycopg", "sqlite3")):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint, todo = _hint(first, False)
            raise StoreError(f"{hint} while {action} ({safe_url}): {first}. {todo}") from exc
        raise
