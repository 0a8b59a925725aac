"""What every Store mixin relies on: the attributes `Store.__init__` sets, and the error context.

The mixins (run_log, prior, publish) inherit it so each one is type-checked against the same
declarations instead of attributes that only appear on the assembled `Store`.
"""

from __future__ import annotations

from typing import Any, ContextManager

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .dialects import Dialect
from .errors import translate_errors


class StoreBase:
    """The state a Store holds (set in `Store.__init__`)."""

    url: str
    safe_url: str
    lock_timeout: float
    dialect: Dialect
    engine: Engine
    _snapshot: dict[str, pd.DataFrame]  # tables as load_state read them
    _next_number: int | None  # the next master number load_state gave the run (publish stores the next)
    _alive: dict[str, Connection]  # PostgreSQL: per-run liveness sessions (see start_run)

    def _errors(self, action: str) -> ContextManager[None]:
        """Database failures become one clear, retry-able StoreError (no traceback for users)."""
        return translate_errors(action, self.safe_url)


def dbapi(conn: Connection) -> Any:
    """The DBAPI connection under an open SQLAlchemy connection (only an invalidated one has none)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None, "the database connection was invalidated"
    return raw
