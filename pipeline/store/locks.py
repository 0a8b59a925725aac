"""One writer per master: a POSIX record lock beside a SQLite file, an advisory lock on
PostgreSQL, plus each run's PostgreSQL liveness lock (see docs/store.md, "One writer")."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import RunLocked
from .tables import TABLES
from .values import utc_now

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT = float(os.environ.get("CRMCLEAN_LOCK_TIMEOUT", "60"))
PG_LOCK_KEY = (0x63726D63, 1)  # ("crmc", 1): one advisory lock per database = per master

_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_HOLDERS: dict[str, dict] = {}


def run_key(run_id: str) -> tuple[int, int]:
    """The PostgreSQL advisory lock key of one run's liveness lock (a class apart from the run lock)."""
    return PG_LOCK_KEY[0] + 1, zlib.crc32(run_id.encode("utf-8")) & 0x7FFFFFFF


def locked_message(safe_url: str, holder: str | None, started: str | None) -> str:
    who = holder or "unknown run"
    if started:
        who += f", started {started}"
    return f"another crmclean run ({who}) is writing to this master ({safe_url}); try again when it finishes"


def _read_holder(fd: int) -> dict:
    """Who holds the lock, read through our own descriptor (closing another descriptor of the
    file would drop this process's POSIX locks on it)."""
    try:
        return json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def file_lock(path: Path | None, key: str, run_id: str, timeout: float, safe_url: str) -> Iterator[str | None]:
    """POSIX record lock on `<db>.lock` (not inherited by forked worker pools, unlike flock)
    plus an in-process lock, since POSIX locks do not exclude threads of one process.
    Yields the run named in the lock file by a holder that never cleaned up (it was killed)."""
    deadline = time.monotonic() + max(timeout, 0)
    local = _LOCAL_LOCKS.setdefault(key, threading.Lock())
    if not local.acquire(timeout=max(timeout, 0)):
        holder = _LOCAL_HOLDERS.get(key, {})
        raise RunLocked(locked_message(safe_url, holder.get("run_id"), holder.get("started")))
    try:
        _LOCAL_HOLDERS[key] = {"run_id": run_id, "started": utc_now()}
        if path is None:  # in-memory database: only this process can see it
            yield None
            return
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _wait_for_lockf(fd, deadline, safe_url)
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


def _wait_for_lockf(fd: int, deadline: float, safe_url: str) -> None:
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            if time.monotonic() >= deadline:
                holder = _read_holder(fd)
                raise RunLocked(locked_message(safe_url, holder.get("run_id"), holder.get("started"))) from None
            time.sleep(0.1)


@contextmanager
def advisory_lock(
    engine: Engine, run_id: str, timeout: float, safe_url: str, errors: Callable[[str], ContextManager]
) -> Iterator[None]:
    """pg_try_advisory_lock on a dedicated connection, retried until `timeout`; the session's
    application_name names the holder for the message of a run that waits in vain."""
    k1, k2 = PG_LOCK_KEY
    with errors("taking the run lock"):
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        with errors("taking the run lock"):
            conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": f"crmclean run {run_id}"[:63]})
            deadline = time.monotonic() + timeout
            while not conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": k1, "b": k2}).scalar():
                if time.monotonic() >= deadline:
                    raise RunLocked(locked_message(safe_url, *_advisory_holder(conn)))
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


def _advisory_holder(conn: Connection) -> tuple[str | None, str | None]:
    k1, k2 = PG_LOCK_KEY
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


def hold_liveness_lock(engine: Engine, run_id: str) -> Connection:
    """A session holding the run's liveness lock until it is closed or its process dies."""
    alive = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    alive.execute(text("SELECT pg_advisory_lock(:a, :b)"), dict(zip("ab", run_key(run_id))))
    return alive


def liveness_lock_free(conn: Connection, run_id: str) -> bool:
    """True when no session holds the run's liveness lock (its process is gone)."""
    a, b = run_key(run_id)
    gone = conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": a, "b": b}).scalar()
    if gone:
        conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": a, "b": b})
    return bool(gone)
