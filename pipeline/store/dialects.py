"""One class per database backend (in the manner of Splink's per-backend classes): every place
where SQLite and PostgreSQL differ — connection setup, locking, bulk load, delete/update by
keys, key filters, JSON access, transaction options — is a method here, so the rest of the
store is written once for both."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager, Iterable, Iterator

from sqlalchemy import Integer, UniqueConstraint, create_engine, event
from sqlalchemy.engine import URL, Connection, Engine

from . import locks
from .errors import NoMaster, StoreError
from .tables import TABLES
from .values import Rows, _age_seconds, batches, batches_once

if TYPE_CHECKING:  # pragma: no cover
    from .base import StoreBase


#: SQLite page cache per connection, in KiB (only pages actually used take memory)
SQLITE_CACHE_KB = 64 * 1024
#: SQLite page cache, in KiB, while a table without a unique key is loaded (its rows are appended:
#: a larger cache only holds pages until they are written anyway) and while a refilled table's
#: indexes are built (CREATE INDEX sorts in up to the page cache's size: the 200k master_lineage
#: index +146 → +50 MB, the same CPU). Keyed loads keep SQLITE_CACHE_KB: a 16 MB cache cost a
#: 3.6M-row customer_xref load +37 % CPU (its unique keys are inserted in random order)
SQLITE_SMALL_CACHE_KB = 16 * 1024
#: SQLite page size of a new database (an existing file keeps its own): wide customer_record rows
#: fill fewer pages, B-tree and WAL frames; 200k publish -10 % CPU against the default 4,096
SQLITE_PAGE_SIZE = 16_384
#: parameters bound per INSERT statement: rows go in as multi-row VALUES, one statement step for
#: this many values instead of one per row (999: the limit of SQLite builds before 3.32)
SQLITE_INSERT_PARAMS = 999


class Dialect:
    """What a backend must provide; `for_url` picks the class from the URL's backend name."""

    name = ""

    def __init__(self, url: URL, safe_url: str):
        self.url = url
        self.safe_url = safe_url

    @staticmethod
    def for_url(url: URL, safe_url: str) -> "Dialect":
        backend = url.get_backend_name()
        for cls in (SQLiteDialect, PostgresDialect):
            if cls.name == backend:
                return cls(url, safe_url)
        raise StoreError(f"{safe_url}: unsupported database (use sqlite:/// or postgresql+psycopg://)")

    def engine(self, create: bool) -> Engine:
        """The engine, set up for this backend; `create=False` never makes a new database."""
        raise NotImplementedError

    def run_lock(self, store: "StoreBase", run_id: str, timeout: float) -> ContextManager[str | None]:
        """One writer per master; yields the run named by a holder that died holding it, if known."""
        raise NotImplementedError

    def hold_alive(self, engine: Engine, run_id: str) -> Connection | None:
        """A session that proves the run's process is alive (None: the backend has none)."""
        return None

    def run_gone(
        self, conn: Connection, run_id: str, started: Any, last_holder: str | None, now: datetime, grace: float
    ) -> bool:
        """Whether a `running` run_log row belongs to a dead process (the caller holds the lock)."""
        raise NotImplementedError

    def json_field_sql(self, column: str, field: str) -> str:
        raise NotImplementedError

    @contextmanager
    def savepoint(self, cur, name: str) -> Iterator[None]:
        """A statement that may fail without aborting the surrounding read transaction."""
        yield

    def read_options(self, conn: Connection) -> Connection:
        """Options for one consistent snapshot across several reads."""
        return conn

    def write_options(self, conn: Connection) -> Connection:
        """Options for a write transaction that takes the write lock up front."""
        return conn

    def key_filter(self, cur, key_cols: tuple[str, ...], keys: list) -> tuple[str, list]:
        """A WHERE clause (and its parameters) for rows whose value in any `key_cols` is in `keys`."""
        raise NotImplementedError

    def bulk_insert(self, raw, name: str, cols: list[str], rows: "Rows | list[tuple]") -> None:
        """Insert `rows` (values.Rows are made into tuples one batch at a time while written)."""
        raise NotImplementedError

    @contextmanager
    def refill(self, conn: Connection, name: str) -> Iterator[None]:
        """Around the bulk load of a table emptied inside the publish transaction."""
        yield

    def let_go_of_cache(self, conn: Connection) -> None:
        """Between two tables of a publish: the connection's cached pages of the last one freed
        where the backend holds them in the process."""

    def delete_keys(self, cur, name: str, key_cols: tuple[str, ...], keys: list) -> None:
        raise NotImplementedError

    def update_column(self, cur, name: str, column: str, key: str, value: Any, keys: list) -> None:
        raise NotImplementedError

    def ensure_masked_view(self, conn: Connection) -> None:
        """Create (or bring up to date) the analysts' masked view of the master; a backend
        without roles (SQLite: a file is read whole or not at all) has none."""

    def prepare_erasure(self, conn: Connection) -> None:
        """Before the erasure transaction begins: make deleted rows unreadable where the
        backend can."""

    def after_erasure(self, engine: Engine, tables: list[str]) -> None:
        """After the erasure committed: push the deleted rows out of the database files."""


class SQLiteDialect(Dialect):
    """A file (WAL mode, BEGIN IMMEDIATE for writers), locked by a POSIX lock beside it."""

    name = "sqlite"

    def __init__(self, url: URL, safe_url: str):
        super().__init__(url, safe_url)
        self._refilling: set[str] = set()  # tables loaded without their secondary indexes
        db = url.database
        self.path: Path | None = None
        if db and db != ":memory:" and not db.startswith("file:"):
            self.path = Path(db).expanduser().resolve()

    def engine(self, create: bool) -> Engine:
        if self.path is not None:
            if not create and not self.path.is_file():
                raise NoMaster(self.safe_url)
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, connect_args={"timeout": 60})
        _sqlite_transactions(engine)
        return engine

    def run_lock(self, store: "StoreBase", run_id: str, timeout: float) -> ContextManager[str | None]:
        key = str(self.path) if self.path else str(self.url)  # one in-process lock per database
        return locks.file_lock(self.path, key, run_id, timeout, self.safe_url)

    def run_gone(self, conn, run_id, started, last_holder, now, grace) -> bool:
        return run_id == last_holder or _age_seconds(started, now) > grace

    def json_field_sql(self, column: str, field: str) -> str:
        return f"json_extract({column}, '$.{field}')"

    def write_options(self, conn: Connection) -> Connection:
        return conn.execution_options(sqlite_immediate=True)

    def key_filter(self, cur, key_cols, keys) -> tuple[str, list]:
        """A temporary key table joined by index (no parameter limit, one plan)."""
        _fill_key_table(cur, keys)
        return " OR ".join(f'"{c}" IN (SELECT k FROM crmclean_keys)' for c in key_cols), []

    def bulk_insert(self, raw, name, cols, rows) -> None:
        """executemany of multi-row VALUES statements (SQLITE_INSERT_PARAMS values each), the
        rows left over of each batch one at a time: same rows, same order, fewer statement steps
        (200k master_lineage: 2.6M rows of 6 values, -55 % insert CPU)."""
        per = max(1, SQLITE_INSERT_PARAMS // len(cols))
        marks = f"({', '.join('?' * len(cols))})"
        collist = ", ".join(f'"{c}"' for c in cols)
        head = f'INSERT INTO "{name}" ({collist}) VALUES '
        cur = raw.cursor()
        try:
            cur.execute(f"PRAGMA cache_size=-{self._load_cache_kb(name)}")
            for batch in batches_once(rows):
                rest: list[tuple] = []
                cur.executemany(head + ", ".join([marks] * per), _row_groups(batch, per, rest))
                if rest:
                    cur.executemany(head + marks, rest)
                del batch, rest  # the next batch is made without this one (values.Rows.lazy_batches)
        finally:
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
            cur.close()

    def _load_cache_kb(self, name: str) -> int:
        """The page cache a load of `name` gets: the large one where rows go into an index in
        random order (a unique key, or an index not dropped for the load), else the small one."""
        table = TABLES.get(name)
        if table is None:
            return SQLITE_CACHE_KB
        unique = any(isinstance(c, UniqueConstraint) for c in table.constraints) or any(
            ix.unique for ix in table.indexes
        )
        text_key = any(not isinstance(c.type, Integer) for c in table.primary_key.columns)
        indexed = bool(table.indexes) and name not in self._refilling
        return SQLITE_CACHE_KB if unique or text_key or indexed else SQLITE_SMALL_CACHE_KB

    def let_go_of_cache(self, conn: Connection) -> None:
        """The cache shrunk (its pages written to the WAL and freed), then allowed to grow again:
        a table's 64 MB of pages are not carried into the next table's load."""
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_SMALL_CACHE_KB}")
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")

    @contextmanager
    def refill(self, conn: Connection, name: str) -> Iterator[None]:
        """Secondary indexes dropped and built again after the load, in the same transaction:
        one sort per index instead of a B-tree insert per row (readers keep the old snapshot
        under WAL; a failure rolls the DROP back with the rest). Not on PostgreSQL, where a
        DROP INDEX would lock out readers until the commit."""
        indexes = sorted(TABLES[name].indexes, key=lambda ix: str(ix.name))
        for ix in indexes:
            ix.drop(conn, checkfirst=True)  # a master from before the index was added has none
        self._refilling.add(name)
        try:
            yield
        finally:
            self._refilling.discard(name)
        if not indexes:
            return
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_SMALL_CACHE_KB}")
        try:
            for ix in indexes:
                ix.create(conn)
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")

    def delete_keys(self, cur, name, key_cols, keys) -> None:
        where = " AND ".join(f'"{c}" = ?' for c in key_cols)
        params = [(x,) for x in keys] if len(key_cols) == 1 else list(keys)
        cur.executemany(f'DELETE FROM "{name}" WHERE {where}', params)

    def update_column(self, cur, name, column, key, value, keys) -> None:
        if len(keys) > 1000:  # one statement joined to a temporary key table: half the time
            _fill_key_table(cur, keys)
            cur.execute(f'UPDATE "{name}" SET "{column}" = ? WHERE "{key}" IN (SELECT k FROM crmclean_keys)', (value,))
        else:
            cur.executemany(f'UPDATE "{name}" SET "{column}" = ? WHERE "{key}" = ?', [(value, x) for x in keys])

    def prepare_erasure(self, conn: Connection) -> None:
        """secure_delete: SQLite overwrites deleted rows with zeros instead of leaving them in free pages."""
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute("PRAGMA secure_delete = ON")
        finally:
            cur.close()

    def after_erasure(self, engine: Engine, tables: list[str]) -> None:
        """Copy the WAL into the file and empty it: the WAL still holds the pages as they were."""
        with engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                cur.close()


class PostgresDialect(Dialect):
    """A server database: advisory locks, COPY bulk loads, `= ANY(array)` key filters."""

    name = "postgresql"

    def engine(self, create: bool) -> Engine:
        return create_engine(self.url, pool_pre_ping=True)

    def run_lock(self, store: "StoreBase", run_id: str, timeout: float) -> ContextManager[None]:
        return locks.advisory_lock(store.engine, run_id, timeout, self.safe_url, store._errors)

    def hold_alive(self, engine: Engine, run_id: str) -> Connection:
        return locks.hold_liveness_lock(engine, run_id)

    def run_gone(self, conn, run_id, started, last_holder, now, grace) -> bool:
        return locks.liveness_lock_free(conn, run_id)  # its session is gone

    def json_field_sql(self, column: str, field: str) -> str:
        return f"({column}::json ->> '{field}')"

    @contextmanager
    def savepoint(self, cur, name: str) -> Iterator[None]:
        cur.execute(f"SAVEPOINT {name}")
        try:
            yield
        except Exception:
            cur.execute(f"ROLLBACK TO SAVEPOINT {name}")
            raise

    def read_options(self, conn: Connection) -> Connection:
        return conn.execution_options(isolation_level="REPEATABLE READ")

    def key_filter(self, cur, key_cols, keys) -> tuple[str, list]:
        return " OR ".join(f'"{c}" = ANY(%s)' for c in key_cols), [keys] * len(key_cols)

    def bulk_insert(self, raw, name, cols, rows) -> None:
        collist = ", ".join(f'"{c}"' for c in cols)
        with raw.cursor() as cur:
            with cur.copy(f'COPY "{name}" ({collist}) FROM STDIN') as copy:
                for batch in batches(rows):
                    for row in batch:
                        copy.write_row(row)
                    del batch  # the next batch is made without this one (values.Rows.lazy_batches)

    def delete_keys(self, cur, name, key_cols, keys) -> None:
        if len(key_cols) == 1:
            cur.execute(f'DELETE FROM "{name}" WHERE "{key_cols[0]}" = ANY(%s)', (list(keys),))
            return
        a, b = key_cols
        cur.execute(
            f'DELETE FROM "{name}" t USING unnest(%s::text[], %s::text[]) AS d(a, b) '
            f'WHERE t."{a}" = d.a AND t."{b}" = d.b',
            ([x[0] for x in keys], [x[1] for x in keys]),
        )

    def update_column(self, cur, name, column, key, value, keys) -> None:
        cur.execute(f'UPDATE "{name}" SET "{column}" = %s WHERE "{key}" = ANY(%s)', (value, list(keys)))

    def ensure_masked_view(self, conn: Connection) -> None:
        """`master_customer_masked` (pipeline/store/masked_view.py), replaced only when its SQL
        changed: a replace would block the analysts reading it until the publish commits."""
        from .masked_view import VIEW, view_sql, view_version

        version = view_version()
        stored = conn.exec_driver_sql(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.relname = %(view)s AND c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace",
            {"view": VIEW},
        ).scalar()
        if stored == version:
            return
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(view_sql())
            cur.execute(f"COMMENT ON VIEW {VIEW} IS '{version}'")
        finally:
            cur.close()

    def after_erasure(self, engine: Engine, tables: list[str]) -> None:
        """VACUUM the tables rows were deleted from, so their space is marked free at once."""
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in tables:
                conn.exec_driver_sql(f'VACUUM "{name}"')


def _row_groups(rows: Iterable[tuple], per: int, rest: list[tuple]) -> Iterator[tuple]:
    """The rows `per` at a time, each group as one flat parameter tuple; the last rows that do
    not fill a group are put in `rest`."""
    it = iter(rows)
    while True:
        group = list(islice(it, per))
        if len(group) < per:
            rest.extend(group)
            return
        yield tuple(chain.from_iterable(group))


def _fill_key_table(cur, keys) -> None:
    """SQLite: the connection's temporary key table `crmclean_keys` holds exactly `keys`."""
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS crmclean_keys (k TEXT PRIMARY KEY)")
    cur.execute("DELETE FROM crmclean_keys")
    cur.executemany("INSERT OR IGNORE INTO crmclean_keys (k) VALUES (?)", [(k,) for k in keys])


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy (not the sqlite3 module) emit BEGIN, so publish can use BEGIN IMMEDIATE
    (take the write lock up front) and WAL lets readers see the old master meanwhile."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before WAL: only a new database takes it
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL: still atomic and consistent, faster commits
        # a 64 MB page cache (default 2 MB): a publish of 365k xref rows keeps its three indexes'
        # pages in memory instead of spilling them to the WAL mid-transaction (-50 % CPU, -65 % wall)
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
