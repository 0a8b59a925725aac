"""The master database: SQLite file by default, PostgreSQL by URL, behaving exactly alike.

Write-audit-publish: `publish` replaces every published table in ONE transaction (SQLite
`BEGIN IMMEDIATE`; PostgreSQL one transaction with COPY bulk loads), so readers see either the
previous master or the new one, never a mix. `run_log` rows are written outside that
transaction, so a failed run is still recorded as failed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from operator import itemgetter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ..errors import CrmcleanError, RunLocked
from ..masking import mask_url
from .tables import (
    APPENDED_TABLES,
    OTHER_COLUMNS,
    RECORD_DATA_COLUMNS,
    RECORD_META_COLUMNS,
    REPLACED_TABLES,
    RUN_COUNT_COLUMNS,
    TABLES,
    add_missing_columns,
    columns_of,
    metadata,
)

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT = float(os.environ.get("CRMCLEAN_LOCK_TIMEOUT", "60"))
_PG_LOCK_KEY = (0x63726D63, 1)  # ("crmc", 1): one advisory lock per database = per master


class StoreError(CrmcleanError):
    """The master database could not be reached or written; nothing half-published."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


ABANDONED_ERROR = "abandoned: the process stopped without finishing"


def _run_key(run_id: str) -> tuple[int, int]:
    """The PostgreSQL advisory lock key of one run's liveness lock (a class apart from the run lock)."""
    import zlib

    return _PG_LOCK_KEY[0] + 1, zlib.crc32(run_id.encode("utf-8")) & 0x7FFFFFFF


def _age_seconds(started: Any, now: datetime) -> float:
    """Seconds since an ISO time from run_log (0 when it cannot be read: not old)."""
    try:
        t = datetime.fromisoformat(str(started).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return (now - t).total_seconds()


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


@dataclass
class PriorState:
    """What the previous successful publish left: the starting point of an incremental run."""

    records: pd.DataFrame  # active customer_record rows (raw + std + content_hash ...)
    xref: pd.DataFrame  # record_key, source, source_record_id, master_id
    edges: pd.DataFrame  # match_edge
    model: dict | None
    overrides: pd.DataFrame  # review_decision
    id_history: pd.DataFrame  # master_id_history
    next_master_number: int
    # extensions (optional, defaulted): used by build_tables to carry state forward
    masters: pd.DataFrame = field(default_factory=lambda: _empty("master_customer"))
    quarantine: pd.DataFrame = field(default_factory=lambda: _empty("quarantine"))
    retired_records: pd.DataFrame = field(default_factory=lambda: _empty_records())
    model_version: int = 0
    # what an incremental run needs besides (see docs/store.md, "Incremental runs")
    state: dict = field(default_factory=dict)  # master_state: cluster_fingerprint, overrides
    review_keys: pd.DataFrame = field(default_factory=lambda: _empty("review_queue")[["record_key_l", "record_key_r"]])
    slim: bool = False  # records/edges hold only the columns an incremental run reads; masters empty

    @classmethod
    def empty(cls) -> "PriorState":
        return cls(
            records=_empty_records(),
            xref=_empty("customer_xref"),
            edges=_empty("match_edge"),
            model=None,
            overrides=_empty("review_decision"),
            id_history=_empty("master_id_history"),
            next_master_number=1,
        )


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns_of(table)})


def _empty_records() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in (*RECORD_DATA_COLUMNS, *RECORD_META_COLUMNS)})


# --------------------------------------------------------------------------- value conversion


def _text_values(s: pd.Series) -> list:
    """A column as str-or-None, the way it is stored (wide columns are text)."""
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s.where(s.notna(), None).tolist()
    if pd.api.types.is_integer_dtype(s) or pd.api.types.is_float_dtype(s):
        f = s.astype("float64")
        integral = bool(((f % 1 == 0) | f.isna()).all())
        text = (f.astype("Int64") if integral else f).astype(str).astype(object)
        return text.where(f.notna(), None).tolist()

    def conv(v: Any) -> str | None:
        if v is None or (not isinstance(v, (list, dict, tuple, np.ndarray)) and pd.isna(v)):
            return None
        if isinstance(v, (list, dict, tuple)):
            return json.dumps(v, ensure_ascii=False, default=str)
        if isinstance(v, np.ndarray):
            return json.dumps(v.tolist(), ensure_ascii=False, default=str)
        if isinstance(v, (datetime, pd.Timestamp)):
            return _iso(v)
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return [conv(v) for v in s.tolist()]


def _float_values(s: pd.Series) -> list:
    f = pd.to_numeric(s, errors="coerce").astype("float64")
    return [None if np.isnan(v) else float(v) for v in f.tolist()]


def _int_values(s: pd.Series) -> list:
    f = pd.to_numeric(s, errors="coerce").astype("float64")
    return [None if np.isnan(v) else int(v) for v in f.tolist()]


def _pack_records(df: pd.DataFrame) -> pd.DataFrame:
    """Columns outside the fixed customer_record shape go into `other_columns` as JSON."""
    fixed = set(RECORD_DATA_COLUMNS) | set(RECORD_META_COLUMNS) | {OTHER_COLUMNS}
    extra_cols = [c for c in df.columns if c not in fixed]
    if not extra_cols:
        return df
    out = df.drop(columns=extra_cols)
    packed = df[extra_cols].astype(object).where(df[extra_cols].notna(), None)
    out[OTHER_COLUMNS] = [
        json.dumps({k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v)) for k, v in row.items()
                    if v is not None}, ensure_ascii=False, sort_keys=True)
        for row in packed.to_dict("records")
    ]
    return out


def _unpack_records(df: pd.DataFrame) -> pd.DataFrame:
    if OTHER_COLUMNS not in df.columns:
        return df
    packed = df[OTHER_COLUMNS]
    df = df.drop(columns=[OTHER_COLUMNS])
    if packed.notna().any():
        # each distinct JSON text is parsed once (a few hundred distinct texts for 400k rows)
        codes, uniques = pd.factorize(packed, use_na_sentinel=True)
        parsed = pd.DataFrame([json.loads(v) if v else {} for v in uniques] + [{}])
        extra = parsed.iloc[codes].set_axis(df.index)
        extra = extra.astype(object).where(extra.notna(), None)
        for c in [c for c in extra.columns if c in df.columns]:  # never two columns of one name
            df[c] = df[c].where(df[c].notna(), extra.pop(c))
        df = pd.concat([df, extra], axis=1)
    return df


def frame_rows(name: str, df: pd.DataFrame) -> tuple[list[str], list[tuple]]:
    """A frame as (column names, row tuples) typed for the table (missing columns → NULL)."""
    table = TABLES[name]
    if name == "customer_record":
        df = _pack_records(df)
    n = len(df)
    cols, values = [], []
    for col in table.columns:
        cols.append(col.name)
        if col.name not in df.columns:
            values.append([None] * n)
            continue
        s = df[col.name]
        kind = col.type.__class__.__name__
        if kind == "Float":
            values.append(_float_values(s))
        elif kind == "Integer":
            values.append(_int_values(s))
        else:
            values.append(_text_values(s))
    return cols, list(zip(*values)) if n else []


# --------------------------------------------------------------------------- the store


def open_store(url: str, lock_timeout: float | None = None) -> "Store":
    """Open (and create on first use) the master database at `url`."""
    return Store(url, lock_timeout=DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout)


class Store:
    """Reads the prior state, publishes new state atomically, and logs runs."""

    def __init__(self, url: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.url = url
        self.lock_timeout = lock_timeout
        self._snapshot: dict[str, pd.DataFrame] = {}  # tables as load_state read them
        self.last_publish: dict[str, dict] = {}
        self._alive: dict[str, Connection] = {}  # PostgreSQL: per-run lock connections (see start_run)
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise StoreError(f"{mask_url(url)!r} is not a database URL (e.g. sqlite:///crmclean-out/master.db): {mask_url(exc)}") from None
        self.safe_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        self.sqlite_path: Path | None = None
        if self.dialect == "sqlite":
            db = parsed.database
            if db and db != ":memory:" and not db.startswith("file:"):
                self.sqlite_path = Path(db).expanduser().resolve()
                self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": 60})
            _sqlite_transactions(self.engine)
        elif self.dialect == "postgresql":
            self.engine = create_engine(url, pool_pre_ping=True)
        else:
            raise StoreError(f"{self.safe_url}: unsupported database (use sqlite:/// or postgresql+psycopg://)")
        with self._errors("creating the tables"), self.engine.begin() as conn:
            metadata.create_all(conn)
            add_missing_columns(conn)  # a master created before a column existed (national_id)
            # masters created before delta publishing lack this index (create_all skips old tables)
            conn.exec_driver_sql(
                "CREATE INDEX IF NOT EXISTS ix_match_edge_pair ON match_edge (record_key_l, record_key_r)")

    # -- errors -----------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database failures become one clear, retry-able StoreError (no traceback for users)."""
        try:
            yield
        except CrmcleanError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            orig = getattr(exc, "orig", None) or exc
            first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
            lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
            hint = "the connection to the database was lost" if lost else "database error"
            raise StoreError(
                f"{hint} while {action} ({self.safe_url}): {first}. "
                "The published master is unchanged; run again when the database is reachable."
            ) from exc
        except Exception as exc:  # psycopg errors raised from the raw COPY connection
            if type(exc).__module__.startswith(("psycopg", "sqlite3")):
                raise StoreError(
                    f"database error while {action} ({self.safe_url}): {exc}. "
                    "The published master is unchanged; run again when the database is reachable."
                ) from exc
            raise

    # -- run log ----------------------------------------------------------------------------

    def start_run(self, run_id: str, started: datetime | str, inputs: list[str]) -> None:
        t = TABLES["run_log"]
        with self._errors("registering the run"), self.engine.connect() as conn:
            if conn.execute(select(t.c.run_id).where(t.c.run_id == run_id)).first():
                raise StoreError(f"run id {run_id} is already in this master's run log; use a new run id")
        if self.dialect == "postgresql":  # held until the run finishes or its process dies
            with self._errors("registering the run"):
                alive = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                alive.execute(text("SELECT pg_advisory_lock(:a, :b)"), dict(zip("ab", _run_key(run_id))))
                self._alive[run_id] = alive
        with self._errors("registering the run"), self.engine.begin() as conn:
            conn.execute(
                TABLES["run_log"].insert(),
                {"run_id": run_id, "started_at": _iso(started), "status": "running",
                 "inputs": json.dumps(list(inputs), ensure_ascii=False)},
            )

    def finish_run(self, run_id: str, status: str, counts: dict, timings: dict, error: str | None = None) -> None:
        """Record the outcome. For a failed run a database outage is logged, not raised: the
        run's own error is what the user must see."""
        values: dict[str, Any] = {
            "finished_at": utc_now(),
            "status": status,
            "counts": json.dumps(counts or {}, default=int),
            "timings": json.dumps(timings or {}),
            "error": error,
        }
        for c in RUN_COUNT_COLUMNS:
            values[c] = int(counts[c]) if counts and counts.get(c) is not None else None
        t = TABLES["run_log"]
        try:
            with self._errors("recording the run's outcome"), self.engine.begin() as conn:
                conn.execute(t.update().where(t.c.run_id == run_id).values(**values))
        except StoreError:
            if status == "success":
                raise
            log.warning("could not mark run %s as %s", run_id, status, exc_info=True)
        finally:
            self._release_alive(run_id)

    def _release_alive(self, run_id: str) -> None:
        alive = self._alive.pop(run_id, None)
        if alive is not None:
            try:
                alive.close()  # the session ends: the server releases its advisory lock
            except SQLAlchemyError:
                log.warning("could not release the liveness lock of run %s", run_id, exc_info=True)

    # -- lock -------------------------------------------------------------------------------

    @contextmanager
    def lock(self, run_id: str, timeout: float | None = None) -> Iterator[None]:
        """One writer per master: wait up to `timeout` seconds, then raise RunLocked."""
        timeout = self.lock_timeout if timeout is None else timeout
        if self.dialect == "postgresql":
            with self._pg_lock(run_id, timeout):
                self._abandon_dead_runs(run_id, None)
                yield
        else:
            with self._file_lock(run_id, timeout) as last_holder:
                self._abandon_dead_runs(run_id, last_holder)
                yield

    def _abandon_dead_runs(self, run_id: str, last_holder: str | None) -> None:
        """A run killed outright (SIGKILL, power loss) never marks itself failed. Holding the
        lock proves that no other run is writing, so another `running` run is dead when: on
        PostgreSQL its liveness lock (taken by start_run, held by its session) is free; on
        SQLite it is the last holder recorded in the lock file (a holder that finishes clears
        it), or it started longer ago than any run waits for the lock."""
        t = TABLES["run_log"]
        try:
            with self._errors("checking for abandoned runs"), self.engine.begin() as conn:
                rows = conn.execute(select(t.c.run_id, t.c.started_at).where(
                    (t.c.status == "running") & (t.c.run_id != run_id))).fetchall()
                if not rows:
                    return
                now = datetime.now(timezone.utc)
                grace = max(self.lock_timeout, DEFAULT_LOCK_TIMEOUT) + 60
                dead = []
                for rid, started in rows:
                    if self.dialect == "postgresql":  # its liveness lock is free: its session is gone
                        a, b = _run_key(rid)
                        gone = conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": a, "b": b}).scalar()
                        if gone:
                            conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": a, "b": b})
                    else:
                        gone = rid == last_holder or _age_seconds(started, now) > grace
                    if gone:
                        dead.append(rid)
                if dead:
                    conn.execute(t.update().where(t.c.run_id.in_(dead) & (t.c.status == "running")).values(
                        status="failed", finished_at=utc_now(), error=ABANDONED_ERROR))
                    log.warning("marked abandoned runs as failed: %s", ", ".join(dead))
        except StoreError:  # bookkeeping only: never stops the run that holds the lock
            log.warning("could not check for abandoned runs", exc_info=True)

    def _locked_message(self, holder: str | None, started: str | None) -> str:
        who = holder or "unknown run"
        if started:
            who += f", started {started}"
        return (f"another crmclean run ({who}) is writing to this master ({self.safe_url}); "
                "try again when it finishes")

    @contextmanager
    def _file_lock(self, run_id: str, timeout: float) -> Iterator[None]:
        """POSIX record lock on `<db>.lock` (not inherited by forked worker pools, unlike flock)
        plus an in-process lock, since POSIX locks do not exclude threads of one process."""
        deadline = time.monotonic() + max(timeout, 0)
        key = str(self.sqlite_path) if self.sqlite_path else self.url
        local = _LOCAL_LOCKS.setdefault(key, threading.Lock())
        if not local.acquire(timeout=max(timeout, 0)):
            holder = _LOCAL_HOLDERS.get(key, {})
            raise RunLocked(self._locked_message(holder.get("run_id"), holder.get("started")))
        try:
            _LOCAL_HOLDERS[key] = {"run_id": run_id, "started": utc_now()}
            if self.sqlite_path is None:  # in-memory database: only this process can see it
                yield None
                return
            path = self.sqlite_path.with_name(self.sqlite_path.name + ".lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                while True:
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError:
                        if time.monotonic() >= deadline:
                            holder = _read_holder(fd)
                            raise RunLocked(self._locked_message(holder.get("run_id"), holder.get("started")))
                        time.sleep(0.1)
                # a holder that cleaned up left the file empty: a name here was killed holding it
                last_holder = _read_holder(fd).get("run_id")
                info = json.dumps({"run_id": run_id, "started": utc_now(), "pid": os.getpid()}).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, info, 0)
                try:
                    yield last_holder
                finally:
                    os.ftruncate(fd, 0)
                    fcntl.lockf(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            _LOCAL_HOLDERS.pop(key, None)
            local.release()

    @contextmanager
    def _pg_lock(self, run_id: str, timeout: float) -> Iterator[None]:
        k1, k2 = _PG_LOCK_KEY
        with self._errors("taking the run lock"):
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            with self._errors("taking the run lock"):
                conn.execute(text("SELECT set_config('application_name', :n, false)"),
                             {"n": f"crmclean run {run_id}"[:63]})
                deadline = time.monotonic() + timeout
                while not conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": k1, "b": k2}).scalar():
                    if time.monotonic() >= deadline:
                        holder, started = self._pg_holder(conn)
                        raise RunLocked(self._locked_message(holder, started))
                    time.sleep(0.2)
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": k1, "b": k2})
                    conn.execute(text("RESET application_name"))
                except SQLAlchemyError:  # connection gone: the server released the lock with it
                    log.warning("could not release the run lock explicitly", exc_info=True)
        finally:
            conn.close()

    def _pg_holder(self, conn: Connection) -> tuple[str | None, str | None]:
        k1, k2 = _PG_LOCK_KEY
        row = conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :a AND l.objid = :b "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"a": k1, "b": k2},
        ).first()
        holder = row[0].removeprefix("crmclean run ") if row and row[0] else None
        started = None
        if holder:
            t = TABLES["run_log"]
            started = conn.execute(select(t.c.started_at).where(t.c.run_id == holder)).scalar()
        return holder, started

    # -- reading ----------------------------------------------------------------------------

    def read_table(self, name: str, conn: Connection | None = None, where=None) -> pd.DataFrame:
        """A whole table as a DataFrame with the table's columns (also when empty)."""
        table = TABLES[name]
        if conn is None:
            with self._errors(f"reading {name}"), self.engine.connect() as c:
                return self.read_table(name, c, where)
        cols = columns_of(name)
        cols_sql = ", ".join(f'"{c}"' for c in cols)
        if where is not None:
            rows = conn.execute(select(table).where(where)).fetchall()
        else:  # plain DBAPI fetch: SQLAlchemy's row objects cost seconds at 400k wide rows
            cur = conn.connection.dbapi_connection.cursor()
            try:
                cur.execute(f'SELECT {cols_sql} FROM "{name}"')
                rows = cur.fetchall()
            finally:
                cur.close()
        if not rows:
            return _empty(name)
        return _typed(name, pd.DataFrame.from_records(rows, columns=cols, coerce_float=False))

    def read_state(self) -> dict[str, str]:
        """master_state as {name: value} (empty for a master written before it existed)."""
        t = TABLES["master_state"]
        with self._errors("reading the master state"), self.engine.connect() as conn:
            return {n: v for n, v in conn.execute(select(t.c.name, t.c.value)).fetchall()}

    def load_state(self, record_columns: list[str] | None = None) -> PriorState:
        """The last published state (an empty PriorState on a fresh database).

        With `record_columns` the state is slim, as an incremental run needs it up front:
        customer_record with only those columns (plus identity, hashes, bookkeeping and the
        unpacked `other_columns`), match_edge without evidence, master_customer not at all.
        The run reads the rest by key afterwards (`read_records`, `read_masters`).
        """
        slim = record_columns is not None
        with self._errors("loading the previous master"), self._read_conn() as conn:
            names = ("customer_xref", "quarantine") if slim else (
                "customer_record", "customer_xref", "match_edge", "master_customer", "quarantine")
            stored = {name: self.read_table(name, conn) for name in names}
            if slim:
                records, retired = self._slim_records(conn, record_columns)
                edges = self._select(conn, "match_edge", list(SLIM_EDGE_COLUMNS))
                masters = _empty("master_customer")
                history = self._select(conn, "master_id_history", ["master_id", "target_master_id"])
            else:
                records = _unpack_records(stored["customer_record"])
                is_retired = (records["status"].fillna("active") == "retired").to_numpy()
                records, retired = records[~is_retired], records[is_retired].reset_index(drop=True)
                edges = stored["match_edge"]
                masters = stored["master_customer"]
                history = self.read_table("master_id_history", conn)
            models = self._select(conn, "match_model", ["version", "model_json"],
                                  'ORDER BY "version" DESC LIMIT 1')
            review_keys = self._select(conn, "review_queue", ["record_key_l", "record_key_r"])
            state_rows = self._select(conn, "master_state", ["name", "value"])
            xref = stored["customer_xref"]
            state = PriorState(
                records=records.reset_index(drop=True),
                xref=xref[["record_key", "source", "source_record_id", "master_id", "match_probability", "reason"]],
                edges=edges,
                model=None,
                overrides=self.read_table("review_decision", conn),
                id_history=history,
                next_master_number=1,
                masters=masters,
                quarantine=stored["quarantine"],
                retired_records=retired,
                state=dict(zip(state_rows["name"], state_rows["value"])),
                review_keys=review_keys,
                slim=slim,
            )
        # kept for the next publish's delta (the run holds the lock, so nothing else writes them)
        self._snapshot = {k: v.copy() for k, v in stored.items()}
        if len(models):
            latest = models.iloc[0]
            state.model_version = int(latest["version"])
            state.model = json.loads(latest["model_json"]) if latest["model_json"] else None
        ids = pd.concat([xref["master_id"], history["master_id"], history["target_master_id"],
                         masters["master_id"]])
        state.next_master_number = max_master_number(ids) + 1
        return state

    def _slim_records(self, conn: Connection, record_columns: list[str]) -> pd.DataFrame:
        """Active records with SLIM_RECORD_COLUMNS, `std_fingerprint` (read out of the
        `other_columns` JSON by the database) and `record_columns`; retired ones with only
        their key, hash and first/last seen run (their status says which)."""
        have = set(columns_of("customer_record"))
        cols = list(dict.fromkeys([*SLIM_RECORD_COLUMNS, *(c for c in record_columns if c in have)]))
        fingerprint = ("json_extract(other_columns, '$.std_fingerprint')" if self.dialect == "sqlite"
                       else "(other_columns::json ->> 'std_fingerprint')")
        active = "WHERE status IS NULL OR status <> 'retired'"
        pg = self.dialect == "postgresql"
        cur = conn.connection.dbapi_connection.cursor()
        try:
            if pg:  # a failed statement must not abort the whole read transaction
                cur.execute("SAVEPOINT crmclean_slim")
            try:
                cur.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)}, {fingerprint} '
                            f'FROM customer_record {active}')
                rows = cur.fetchall()
            except Exception:  # no JSON support (or a malformed text): unpack in Python
                log.debug("reading std_fingerprint in Python", exc_info=True)
                rows = None
                if pg:
                    cur.execute("ROLLBACK TO SAVEPOINT crmclean_slim")
        finally:
            cur.close()
        if rows is None:
            full = _unpack_records(self._select(conn, "customer_record", [*cols, OTHER_COLUMNS], active))
            records = full[[*cols, *(["std_fingerprint"] if "std_fingerprint" in full.columns else [])]]
        else:
            records = pd.DataFrame.from_records(rows, columns=[*cols, "std_fingerprint"], coerce_float=False) \
                if rows else pd.DataFrame({c: pd.Series(dtype=object) for c in [*cols, "std_fingerprint"]})
        retired = self._select(conn, "customer_record", ["record_key", "source", "content_hash", "first_seen_run",
                                                         "last_seen_run", "status"], "WHERE status = 'retired'")
        return records.assign(status="active"), retired.reset_index(drop=True)

    def _select(self, conn: Connection, name: str, columns: list[str], tail: str = "",
                params: tuple | list = ()) -> pd.DataFrame:
        """Some columns of a table through the plain DBAPI cursor, typed like read_table."""
        cur = conn.connection.dbapi_connection.cursor()
        try:
            cur.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{name}" {tail}', params)
            rows = cur.fetchall()
        finally:
            cur.close()
        df = pd.DataFrame.from_records(rows, columns=columns, coerce_float=False) if rows else pd.DataFrame(
            {c: pd.Series(dtype=object) for c in columns})
        return _typed(name, df, columns)

    def _select_keys(self, conn: Connection, name: str, columns: list[str], key_cols: tuple[str, ...],
                     keys) -> pd.DataFrame:
        """Rows whose value in any of `key_cols` is one of `keys` (SQLite: a temporary key table
        joined by index; PostgreSQL: `= ANY(array)`)."""
        keys = list(dict.fromkeys(k for k in keys if k is not None))
        if not keys:
            return _typed(name, pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), columns)
        if self.dialect == "postgresql":
            where = " OR ".join(f'"{c}" = ANY(%s)' for c in key_cols)
            return self._select(conn, name, columns, f"WHERE {where}", [keys] * len(key_cols))
        cur = conn.connection.dbapi_connection.cursor()
        try:
            _fill_key_table(cur, keys)
        finally:
            cur.close()
        where = " OR ".join(f'"{c}" IN (SELECT k FROM crmclean_keys)' for c in key_cols)
        return self._select(conn, name, columns, f"WHERE {where}")

    def read_records(self, keys) -> pd.DataFrame:
        """Full customer_record rows (any status, `other_columns` unpacked) for these record keys."""
        with self._errors("reading records of the previous master"), self._read_conn() as conn:
            rows = self._select_keys(conn, "customer_record", columns_of("customer_record"), ("record_key",), keys)
        return _unpack_records(rows)

    def read_masters(self, master_ids) -> pd.DataFrame:
        """master_customer rows for these ids."""
        with self._errors("reading masters of the previous master table"), self._read_conn() as conn:
            return self._select_keys(conn, "master_customer", columns_of("master_customer"), ("master_id",),
                                     master_ids)

    def read_edges(self, record_keys) -> pd.DataFrame:
        """Full match_edge rows touching any of these record keys."""
        with self._errors("reading match edges of the previous master"), self._read_conn() as conn:
            return self._select_keys(conn, "match_edge", columns_of("match_edge"),
                                     ("record_key_l", "record_key_r"), record_keys)

    def count_rows(self, name: str) -> int:
        with self._errors(f"counting {name}"), self.engine.connect() as conn:
            return int(conn.exec_driver_sql(f'SELECT COUNT(*) FROM "{name}"').scalar())

    @contextmanager
    def _read_conn(self) -> Iterator[Connection]:
        """One consistent snapshot for all reads of load_state."""
        conn = self.engine.connect()
        try:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
        finally:
            conn.close()

    # -- writing ----------------------------------------------------------------------------

    def publish(self, run_id: str, tables: dict[str, "pd.DataFrame | Scoped"], delta: bool = True,
                state: dict[str, str] | None = None) -> None:
        """Replace the published tables (and append this run's history) in ONE transaction.

        With `delta` (the default) each replaced table is compared with what is stored and only
        the keys whose rows changed are deleted and re-inserted (a nightly run touches a few
        percent of a big master); a table where most keys changed, or an empty one, is replaced
        whole. Rows that differ only in bookkeeping (`run_id`) are left alone, so `run_id`
        names the run that last changed the row; `customer_record.last_seen_run` is updated in
        place.

        A table given as `Scoped` (an incremental run) holds the new content of part of the
        table only: just the stored rows in its scope are read, compared and rewritten (without
        `delta`: deleted and rewritten), the rest is not read at all. `state` rows are written
        to master_state in the same transaction.
        """
        missing = [t for t in REPLACED_TABLES if t not in tables]
        if missing:
            raise StoreError(f"publish of run {run_id} is missing tables: {', '.join(missing)}; nothing was published")
        try:
            prepared = {name: frame_rows(name, _rows_of(tables[name]))
                        for name in (*REPLACED_TABLES, *APPENDED_TABLES) if name in tables}
        except Exception:
            self._snapshot = {}
            raise
        stats: dict[str, dict[str, int]] = {}
        with self._errors(f"publishing run {run_id}"), self._snapshot_consumed():
            with self._write_conn() as conn:
                self._check_snapshot(conn)
                for name in REPLACED_TABLES:
                    cols, rows = prepared[name]
                    if isinstance(tables[name], Scoped):
                        stats[name] = self._publish_scoped(conn, name, cols, rows, tables[name], delta)
                        continue
                    plan = self._delta_plan(conn, name, cols, rows) if delta else None
                    if plan is None:
                        conn.execute(TABLES[name].delete())
                        self._write_table(conn, name, cols, rows)
                        stats[name] = {"mode": "replace", "written": len(rows)}
                        continue
                    self._delete_keys(conn, name, plan.delete_keys)
                    self._write_table(conn, name, cols, plan.insert_rows)
                    for column, value, keys in plan.updates:
                        self._update_column(conn, name, column, value, keys)
                    stats[name] = {"mode": "delta", "deleted": len(plan.delete_keys), "written": len(plan.insert_rows),
                                   "updated": sum(len(k) for _, _, k in plan.updates)}
                for name in APPENDED_TABLES:
                    if name in prepared:
                        self._write_table(conn, name, *prepared[name])
                if state:
                    t = TABLES["master_state"]
                    conn.execute(t.delete().where(t.c.name.in_(list(state))))
                    conn.execute(t.insert(), [{"name": k, "value": v, "run_id": run_id} for k, v in state.items()])
        self.last_publish = stats

    def _publish_scoped(self, conn: Connection, name: str, cols: list[str], rows: list[tuple], scoped: "Scoped",
                        delta: bool) -> dict[str, Any]:
        """Rewrite the part of a table a Scoped value covers (see publish)."""
        old = self._stored_scope(conn, name, scoped)
        key_cols = DELTA_KEYS[name]
        if delta:
            plan = self._diff(name, cols, rows, old, replace_share=None)
        else:
            old_keys = _keys(old, key_cols).tolist() if len(old) else []
            plan = _DeltaPlan(sorted(set(old_keys), key=str), rows, [])
        self._delete_keys(conn, name, plan.delete_keys)
        self._write_table(conn, name, cols, plan.insert_rows)
        for column, value, keys in [*plan.updates, *scoped.touch]:
            self._update_column(conn, name, column, value, keys)
        return {"mode": "scoped", "scope_rows": len(old), "deleted": len(plan.delete_keys),
                "written": len(plan.insert_rows),
                "updated": sum(len(k) for _, _, k in [*plan.updates, *scoped.touch])}

    def _stored_scope(self, conn: Connection, name: str, scoped: "Scoped") -> pd.DataFrame:
        """The stored rows a Scoped value covers, exactly as stored (customer_record packed)."""
        cols = columns_of(name)
        key_cols = DELTA_KEYS[name]
        if len(key_cols) == 1:
            return self._select_keys(conn, name, cols, key_cols, scoped.keys)
        # pair tables: every row touching one of `keys`, plus the explicit `pairs`
        touching = set(scoped.keys)
        pairs = {tuple(p) for p in scoped.pairs}
        wanted = touching | {k for p in pairs for k in p}
        old = self._select_keys(conn, name, cols, key_cols, wanted)
        if not len(old):
            return old
        a, b = key_cols
        keep = old[a].isin(touching) | old[b].isin(touching)
        if pairs:
            keep |= pd.Series([p in pairs for p in zip(old[a], old[b])], index=old.index)
        return old[keep.to_numpy()].reset_index(drop=True)

    @contextmanager
    def _snapshot_consumed(self) -> Iterator[None]:
        try:
            yield
        finally:
            self._snapshot = {}

    def _check_snapshot(self, conn: Connection) -> None:
        """Drop load_state's copies if the tables changed since (a writer without the lock)."""
        for name, df in list(self._snapshot.items()):
            n = conn.exec_driver_sql(f'SELECT COUNT(*) FROM "{name}"').scalar()
            if n != len(df):
                self._snapshot.pop(name)

    def _stored(self, conn: Connection, name: str) -> pd.DataFrame:
        """The table as stored: the copy load_state read (same lock, nothing wrote since), else
        a fresh read inside the publish transaction."""
        cached = self._snapshot.pop(name, None)
        return cached if cached is not None else self.read_table(name, conn)

    def _delta_plan(self, conn: Connection, name: str, cols: list[str], rows: list[tuple]) -> "_DeltaPlan | None":
        """What to delete/insert/update to turn the stored table into `rows`; None = replace all.

        Rows are compared by the hash of their stored values (bookkeeping columns left out):
        Python's tuple hash reuses each string's cached hash, so this stays well under a second
        at 400k wide rows.
        """
        old = self._stored(conn, name)
        if not len(old):
            return None
        return self._diff(name, cols, rows, old, replace_share=FULL_REPLACE_SHARE)

    def _diff(self, name: str, cols: list[str], rows: list[tuple], old: pd.DataFrame,
              replace_share: float | None) -> "_DeltaPlan | None":
        """Delete/insert/update turning the rows `old` into `rows` (None: more than
        `replace_share` of the keys changed, replace the table whole)."""
        if not len(old):
            return _DeltaPlan([], rows, [])
        in_place = [c for c in IN_PLACE_COLUMNS.get(name, ()) if c in cols]
        body = [c for c in cols if c not in VOLATILE_COLUMNS.get(name, ()) and c not in in_place]
        old_h = _frame_hashes(name, old, body)
        new_h = _tuple_hashes(rows, [cols.index(c) for c in body])
        key_cols = DELTA_KEYS.get(name)
        if key_cols is None:  # no key (quarantine): untouched when identical, else replaced
            same = len(old_h) == len(new_h) and np.array_equal(np.sort(old_h), np.sort(new_h))
            return _DeltaPlan([], [], []) if same else None
        new_changed = ~pd.Series(new_h).isin(old_h).to_numpy()  # hash-table isin (np.isin sorts)
        old_stale = ~pd.Series(old_h).isin(new_h).to_numpy()
        key_idx = [cols.index(c) for c in key_cols]
        get_key = itemgetter(*key_idx)
        old_keys = _keys(old, key_cols)
        new_keys = [get_key(r) for r in rows]
        changed = {k for k, c in zip(new_keys, new_changed) if c} | set(old_keys[old_stale])
        n_old = len(set(old_keys)) if len(key_cols) > 1 or name == "master_lineage" else len(old_keys)
        if replace_share is not None and len(changed) > replace_share * max(n_old, 1):
            return None
        touched = [k in changed for k in new_keys]
        insert = [r for r, t in zip(rows, touched) if t]
        updates = []
        for c in in_place:  # unchanged rows whose bookkeeping moved: one UPDATE per value
            was = dict(zip(old_keys.tolist(), old[c].tolist()))
            i = cols.index(c)
            by_value: dict[Any, list] = {}
            for r, k, t in zip(rows, new_keys, touched):
                if not t and was.get(k) != r[i]:
                    by_value.setdefault(r[i], []).append(k)
            updates += [(c, v, ks) for v, ks in by_value.items()]
        delete = sorted(changed & set(old_keys.tolist()), key=str)
        return _DeltaPlan(delete, insert, updates)

    def _delete_keys(self, conn: Connection, name: str, keys: list) -> None:
        if not keys:
            return
        key_cols = DELTA_KEYS[name]
        raw = conn.connection.dbapi_connection
        cur = raw.cursor()
        try:
            if self.dialect == "postgresql":
                if len(key_cols) == 1:
                    cur.execute(f'DELETE FROM "{name}" WHERE "{key_cols[0]}" = ANY(%s)', (list(keys),))
                else:
                    a, b = key_cols
                    cur.execute(f'DELETE FROM "{name}" t USING unnest(%s::text[], %s::text[]) AS d(a, b) '
                                f'WHERE t."{a}" = d.a AND t."{b}" = d.b',
                                ([x[0] for x in keys], [x[1] for x in keys]))
            else:
                where = " AND ".join(f'"{c}" = ?' for c in key_cols)
                params = [(x,) for x in keys] if len(key_cols) == 1 else list(keys)
                cur.executemany(f'DELETE FROM "{name}" WHERE {where}', params)
        finally:
            cur.close()

    def _update_column(self, conn: Connection, name: str, column: str, value: Any, keys: list) -> None:
        (key,) = DELTA_KEYS[name]
        cur = conn.connection.dbapi_connection.cursor()
        try:
            if self.dialect == "postgresql":
                cur.execute(f'UPDATE "{name}" SET "{column}" = %s WHERE "{key}" = ANY(%s)', (value, list(keys)))
            elif len(keys) > 1000:  # one statement joined to a temporary key table: half the time
                _fill_key_table(cur, keys)
                cur.execute(f'UPDATE "{name}" SET "{column}" = ? WHERE "{key}" IN (SELECT k FROM crmclean_keys)',
                            (value,))
            else:
                cur.executemany(f'UPDATE "{name}" SET "{column}" = ? WHERE "{key}" = ?', [(value, x) for x in keys])
        finally:
            cur.close()

    def add_review_decisions(self, decisions: pd.DataFrame) -> int:
        """Store review decisions (record_key_l, record_key_r, decision, decided_by, decided_at,
        origin); later runs read them back as overrides."""
        df = decisions.copy()
        bad = ~df["decision"].isin(["match", "no_match"])
        if bad.any():
            raise StoreError(f"review decisions must be match or no_match, got {sorted(set(df.loc[bad, 'decision']))}")
        if "decided_at" not in df.columns:
            df["decided_at"] = utc_now()
        with self._errors("recording review decisions"), self._write_conn() as conn:
            self._write_table(conn, "review_decision", *frame_rows("review_decision", df))
        return len(df)

    @contextmanager
    def _write_conn(self) -> Iterator[Connection]:
        conn = self.engine.connect()
        try:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn
        finally:
            conn.close()

    def _write_table(self, conn: Connection, name: str, cols: list[str], rows: list[tuple]) -> None:
        """Bulk insert inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite."""
        if not rows:
            return
        raw = conn.connection.dbapi_connection
        collist = ", ".join(f'"{c}"' for c in cols)
        if self.dialect == "postgresql":
            with raw.cursor() as cur:
                with cur.copy(f'COPY "{name}" ({collist}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            cur = raw.cursor()
            try:
                cur.executemany(f'INSERT INTO "{name}" ({collist}) VALUES ({", ".join("?" * len(cols))})', rows)
            finally:
                cur.close()

    def close(self) -> None:
        for run_id in list(self._alive):
            self._release_alive(run_id)
        self.engine.dispose()


#: customer_record columns a slim load_state always reads (besides the ones asked for)
SLIM_RECORD_COLUMNS: tuple[str, ...] = ("record_key", "source", "content_hash", "row_hash")
SLIM_EDGE_COLUMNS: tuple[str, ...] = ("record_key_l", "record_key_r", "match_weight", "match_probability", "decision")

#: key columns by which a delta publish replaces rows (several rows may share a key: lineage)
DELTA_KEYS: dict[str, tuple[str, ...]] = {
    "master_customer": ("master_id",),
    "customer_xref": ("record_key",),
    "customer_record": ("record_key",),
    "master_lineage": ("master_id",),
    "match_edge": ("record_key_l", "record_key_r"),
    "review_queue": ("record_key_l", "record_key_r"),
}
#: bookkeeping that alone does not make a row "changed" (the stored row keeps its value)
VOLATILE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_xref": ("run_id",), "review_queue": ("run_id",), "match_edge": ("run_id",), "quarantine": ("run_id",),
}
#: bookkeeping updated in place with one UPDATE per distinct value (no delete + insert)
IN_PLACE_COLUMNS: dict[str, tuple[str, ...]] = {"customer_record": ("last_seen_run",)}
#: above this share of changed keys a table is simply replaced whole
FULL_REPLACE_SHARE = 0.5


@dataclass
class Scoped:
    """The new content of part of a replaced table, for publish (an incremental run).

    The scope is the stored rows whose key (DELTA_KEYS) is in `keys`; for the pair tables
    (match_edge, review_queue) every row touching one of the record keys in `keys`, plus the
    explicit (record_key_l, record_key_r) `pairs`. `rows` is everything the scope holds after
    the run; `touch` lists in-place bookkeeping updates outside it: (column, value, keys).
    """

    rows: pd.DataFrame
    keys: Any = ()
    pairs: Any = ()
    touch: list = field(default_factory=list)


def _fill_key_table(cur, keys) -> None:
    """SQLite: the connection's temporary key table `crmclean_keys` holds exactly `keys`."""
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS crmclean_keys (k TEXT PRIMARY KEY)")
    cur.execute("DELETE FROM crmclean_keys")
    cur.executemany("INSERT OR IGNORE INTO crmclean_keys (k) VALUES (?)", [(k,) for k in keys])


def _rows_of(value: "pd.DataFrame | Scoped") -> pd.DataFrame:
    return value.rows if isinstance(value, Scoped) else value


@dataclass
class _DeltaPlan:
    delete_keys: list
    insert_rows: list[tuple]
    updates: list[tuple[str, Any, list]]  # (column, new value, keys)


def _tuple_hashes(rows: list[tuple], idx: list[int]) -> np.ndarray:
    """hash() of each row restricted to the columns `idx` (values as frame_rows types them)."""
    if not rows:
        return np.array([], dtype=np.int64)
    get = itemgetter(*idx) if len(idx) > 1 else (lambda r: (r[idx[0]],))
    return np.fromiter((hash(get(r)) for r in rows), dtype=np.int64, count=len(rows))


def _frame_hashes(name: str, df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The same hashes for a table as read back (NULL numbers → None, integral floats equal
    their ints under hash(), text is str/None already)."""
    table = TABLES[name]
    values = []
    for c in cols:
        s = df[c]
        if table.c[c].type.__class__.__name__ in ("Float", "Integer"):
            values.append([None if v != v else v for v in s.tolist()])  # v != v: NaN
        else:
            values.append(s.tolist())
    if not len(df):
        return np.array([], dtype=np.int64)
    return np.fromiter(map(hash, zip(*values)), dtype=np.int64, count=len(df))


def _keys(df: pd.DataFrame, key_cols: tuple[str, ...]) -> np.ndarray:
    if len(key_cols) == 1:
        return df[key_cols[0]].to_numpy(dtype=object)
    out = np.empty(len(df), dtype=object)
    for i, k in enumerate(zip(*(df[c].tolist() for c in key_cols))):
        out[i] = k
    return out


_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_HOLDERS: dict[str, dict] = {}


def _read_holder(fd: int) -> dict:
    """Who holds the lock, read through our own descriptor (closing another descriptor of the
    file would drop this process's POSIX locks on it)."""
    try:
        return json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _typed(name: str, df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The same dtypes whatever the backend: text as object (None for NULL), floats as float64,
    integers as int64 (float64 when some are NULL)."""
    if not len(df):
        return _empty(name) if columns is None else df
    for col in TABLES[name].columns:
        if columns is not None and col.name not in columns:
            continue
        kind = col.type.__class__.__name__
        s = df[col.name]
        if kind in ("Float", "Integer"):
            f = pd.to_numeric(s, errors="coerce").astype("float64")
            df[col.name] = f.astype("int64") if kind == "Integer" and f.notna().all() else f
        elif s.dtype != object:  # DB text arrives as str/None already: no per-cell NaN scan
            df[col.name] = s.astype(object).where(s.notna(), None)
    return df


def max_master_number(ids: pd.Series) -> int:
    """Largest numeric part of any master id (0 when none)."""
    from ..ids import master_number

    nums = master_number(pd.Series(ids.dropna().unique()))
    return int(nums.max()) if nums.notna().any() else 0


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy (not the sqlite3 module) emit BEGIN, so publish can use BEGIN IMMEDIATE
    (take the write lock up front) and WAL lets readers see the old master meanwhile."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL: still atomic and consistent, faster commits
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
