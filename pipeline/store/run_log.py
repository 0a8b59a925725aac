"""The run log and the run lock: who ran when, with what outcome, and one writer at a time.

run_log rows are written outside the publish transaction, so a failed run is still recorded as
`failed` and an interrupted one (Ctrl-C) as `aborted`; a run killed outright (SIGKILL, power
loss) is marked `abandoned` by the next run that holds the lock.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from .base import StoreBase
from .errors import StoreError
from .locks import DEFAULT_LOCK_TIMEOUT
from .tables import RUN_COUNT_COLUMNS, TABLES
from .values import _iso, utc_now

log = logging.getLogger(__name__)

ABANDONED_ERROR = "abandoned: the process stopped without finishing"


class RunLogMixin(StoreBase):
    """Store methods for run_log and the run lock (needs engine, dialect, _errors, _alive)."""

    def start_run(self, run_id: str, started: datetime | str, inputs: list[str]) -> None:
        t = TABLES["run_log"]
        with self._errors("registering the run"), self.engine.connect() as conn:
            if conn.execute(select(t.c.run_id).where(t.c.run_id == run_id)).first():
                raise StoreError(f"run id {run_id} is already in this master's run log; use a new run id")
        with self._errors("registering the run"):  # held until the run finishes or its process dies
            alive = self.dialect.hold_alive(self.engine, run_id)
        if alive is not None:
            self._alive[run_id] = alive
        with self._errors("registering the run"), self.engine.begin() as conn:
            conn.execute(
                t.insert(),
                {
                    "run_id": run_id,
                    "started_at": _iso(started),
                    "status": "running",
                    "inputs": json.dumps(list(inputs), ensure_ascii=False),
                },
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

    def was_published(self, run_id: str) -> bool:
        """Did this run's publish commit? Its master_state rows are written in the publish
        transaction, so they exist exactly when it did (an interrupt can land just after)."""
        t = TABLES["master_state"]
        with self._errors("checking the run's publish"), self.engine.connect() as conn:
            return conn.execute(select(t.c.name).where(t.c.run_id == run_id).limit(1)).first() is not None

    def _release_alive(self, run_id: str) -> None:
        alive = self._alive.pop(run_id, None)
        if alive is not None:
            try:
                alive.close()  # the session ends: the server releases its advisory lock
            except SQLAlchemyError:
                log.warning("could not release the liveness lock of run %s", run_id, exc_info=True)

    @contextmanager
    def lock(self, run_id: str, timeout: float | None = None) -> Iterator[None]:
        """One writer per master: wait up to `timeout` seconds, then raise RunLocked."""
        timeout = self.lock_timeout if timeout is None else timeout
        with self.dialect.run_lock(self, run_id, timeout) as last_holder:
            self._abandon_dead_runs(run_id, last_holder)
            yield

    def _abandon_dead_runs(self, run_id: str, last_holder: str | None) -> None:
        """A run killed outright (SIGKILL, power loss) never records its end. Holding the
        lock proves that no other run is writing, so another `running` run is dead when: on
        PostgreSQL its liveness lock (taken by start_run, held by its session) is free; on
        SQLite it is the last holder recorded in the lock file (a holder that finishes clears
        it), or it started longer ago than any run waits for the lock."""
        t = TABLES["run_log"]
        try:
            with self._errors("checking for abandoned runs"), self.engine.begin() as conn:
                rows = conn.execute(
                    select(t.c.run_id, t.c.started_at).where((t.c.status == "running") & (t.c.run_id != run_id))
                ).fetchall()
                if not rows:
                    return
                now = datetime.now(timezone.utc)
                grace = max(self.lock_timeout, DEFAULT_LOCK_TIMEOUT) + 60
                dead = [
                    rid for rid, started in rows if self.dialect.run_gone(conn, rid, started, last_holder, now, grace)
                ]
                if dead:
                    conn.execute(
                        t.update()
                        .where(t.c.run_id.in_(dead) & (t.c.status == "running"))
                        .values(status="abandoned", finished_at=utc_now(), error=ABANDONED_ERROR)
                    )
                    log.warning("marked runs abandoned: %s", ", ".join(dead))
        except StoreError:  # bookkeeping only: never stops the run that holds the lock
            log.warning("could not check for abandoned runs", exc_info=True)
