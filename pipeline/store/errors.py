"""Database failures as one clear `CrmcleanError` line (no traceback for users)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ..errors import CrmcleanError

_UNCHANGED = "The published master is unchanged; run again when the database is reachable."


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
        lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
        hint = "the connection to the database was lost" if lost else "database error"
        raise StoreError(f"{hint} while {action} ({safe_url}): {first}. {_UNCHANGED}") from exc
    except Exception as exc:  # psycopg errors raised from the raw COPY connection
        if type(exc).__module__.startswith(("psycopg", "sqlite3")):
            raise StoreError(f"database error while {action} ({safe_url}): {exc}. {_UNCHANGED}") from exc
        raise
