"""The master database: SQLite file by default, PostgreSQL by URL, behaving exactly alike.

Write-audit-publish: `publish` replaces every published table in ONE transaction (SQLite
`BEGIN IMMEDIATE`; PostgreSQL one transaction with COPY bulk loads), so readers see either the
previous master or the new one, never a mix. `run_log` rows are written outside that
transaction, so a failed run is still recorded as failed. `Store` is assembled from one mixin
per concern (run_log, prior, publish); what differs by backend is its `dialect`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pandas as pd
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url

from ..masking import mask_url
from .dialects import Dialect
from .errors import NoMaster, StoreError
from .locks import DEFAULT_LOCK_TIMEOUT
from .publish import PublishMixin
from .run_log import RunLogMixin
from .tables import add_missing_columns, metadata

#: tables every crmclean master has (a database without them was never written by crmclean)
MASTER_TABLES: tuple[str, ...] = ("run_log", "customer_xref", "master_customer")


def open_store(url: str, lock_timeout: float | None = None, create: bool = True) -> "Store":
    """Open the master database at `url`, creating it on first use. With `create=False` (the
    read-only commands) a missing SQLite file or a database without crmclean's tables is a
    `NoMaster` error and nothing is created."""
    return Store(url, lock_timeout=DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout, create=create)


class Store(RunLogMixin, PublishMixin):
    """Reads the prior state, publishes new state atomically, and logs runs."""

    def __init__(self, url: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, create: bool = True):
        self.url = url
        self.lock_timeout = lock_timeout
        self._snapshot: dict[str, pd.DataFrame] = {}  # tables as load_state read them
        self._next_number: int | None = None  # the next master number load_state gave the run
        self._alive: dict[str, Connection] = {}  # PostgreSQL: per-run liveness sessions (see start_run)
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise StoreError(
                f"{mask_url(url)!r} is not a database URL (e.g. sqlite:///crmclean-out/master.db): {mask_url(exc)}"
            ) from None
        self.safe_url = parsed.render_as_string(hide_password=True)
        self.dialect = Dialect.for_url(parsed, self.safe_url)
        with self._errors("opening the database"):
            self.engine = self.dialect.engine(create)
        try:
            if not create:
                self._require_master()
            self._create_tables()
        except BaseException:
            self.engine.dispose()
            raise

    def _require_master(self) -> None:
        with self._errors("opening the master"), self.engine.connect() as conn:
            inspector = inspect(conn)
            if not all(inspector.has_table(t) for t in MASTER_TABLES):
                raise NoMaster(self.safe_url)

    def _create_tables(self) -> None:
        """Every table and column the code expects (an older master is brought up to date)."""
        with self._errors("creating the tables"), self.engine.begin() as conn:
            metadata.create_all(conn)
            add_missing_columns(conn)  # a master created before a column existed (national_id)
            # masters created before delta publishing lack this index (create_all skips old tables);
            # looked up first: PostgreSQL wants ownership even for IF NOT EXISTS (a read-only role)
            if "ix_match_edge_pair" not in {ix["name"] for ix in inspect(conn).get_indexes("match_edge")}:
                conn.exec_driver_sql(
                    "CREATE INDEX IF NOT EXISTS ix_match_edge_pair ON match_edge (record_key_l, record_key_r)"
                )

    def close(self) -> None:
        for run_id in list(self._alive):
            self._release_alive(run_id)
        self.engine.dispose()


@contextmanager
def opened(url: str, create: bool = False) -> Iterator[Store]:
    """A store for one command, closed afterwards (read-only commands: never creates one)."""
    store = open_store(url, create=create)
    try:
        yield store
    finally:
        store.close()
