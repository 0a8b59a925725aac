"""Write-audit-publish: every published table replaced in ONE transaction, as a delta.

Only the keys whose rows changed are deleted and re-inserted; a `Scoped` table (an
incremental run) rewrites just the stored rows of its scope. Bulk loads, key deletes and
in-place updates are the dialect's (COPY on PostgreSQL, executemany on SQLite). Rows are
made into tuples and written a batch at a time (values.Rows): a table is never held whole
as Python tuples.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd
from sqlalchemy.engine import Connection

from ..memory import release_freed
from ..spill import Spill
from .base import dbapi
from .delta import DELTA_KEYS, DeltaPlan, diff_rows, key_array
from .errors import StoreError
from .statistics import SpellingWrite, StatisticsMixin
from .tables import APPENDED_TABLES, REPLACED_TABLES, TABLES, columns_of
from .values import Rows, frame_rows, utc_now

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


def _rows_of(value: "pd.DataFrame | Scoped") -> pd.DataFrame:
    return value.rows if isinstance(value, Scoped) else value


class PublishMixin(StatisticsMixin):
    """Store methods that write (reads what it replaces through PriorReaderMixin)."""

    def publish(
        self,
        run_id: str,
        tables: dict[str, "pd.DataFrame | Scoped"],
        delta: bool = True,
        state: dict[str, str] | None = None,
        spelling: SpellingWrite | None = None,
        spill: Spill | None = None,
    ) -> None:
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
        to master_state in the same transaction, and so are the `spelling` counts
        (store/statistics.py). `spill`: customer_record's columns waiting on disk, read back for
        this run's records a batch of rows at a time as they are written (crmclean.spill).
        """
        missing = [t for t in REPLACED_TABLES if t not in tables]
        if missing:
            raise StoreError(f"publish of run {run_id} is missing tables: {', '.join(missing)}; nothing was published")
        try:  # each table typed for the database up front; its rows become tuples batch by batch as written
            prepared = {
                name: frame_rows(name, _rows_of(tables[name]), spill)
                for name in (*REPLACED_TABLES, *APPENDED_TABLES)
                if name in tables
            }
        except Exception:
            self._snapshot = {}
            raise
        release_freed()  # customer_record's key lookup (spill.SpilledColumns), before the writes
        with self._errors(f"publishing run {run_id}"), self._snapshot_consumed():
            with self._write_conn() as conn:
                self._check_snapshot(conn)
                for name in REPLACED_TABLES:
                    self._publish_table(conn, name, *prepared[name], tables[name], delta)
                    self._let_go(conn)
                for name in APPENDED_TABLES:
                    if name in prepared:
                        self._write_table(conn, name, *prepared[name])
                        self._let_go(conn)
                if state:
                    self._write_state(conn, run_id, state)
                self._publish_spelling(conn, run_id, spelling)
                self._publish_next_number(conn, run_id, tables)
                self.dialect.ensure_masked_view(conn)  # PostgreSQL: the analysts' view (docs/store.md)

    def _publish_table(
        self,
        conn: Connection,
        name: str,
        cols: list[str],
        rows: "Rows | list[tuple]",
        value: "pd.DataFrame | Scoped",
        delta: bool,
    ) -> None:
        """One replaced table: scoped, as a delta, or replaced whole."""
        if isinstance(value, Scoped):
            self._publish_scoped(conn, name, cols, rows, value, delta)
            return
        plan = self._delta_plan(conn, name, cols, rows) if delta else None
        if plan is None:
            conn.execute(TABLES[name].delete())
            with self.dialect.refill(conn, name):
                self._write_table(conn, name, cols, rows)
        else:
            self._apply_plan(conn, name, cols, plan, [])

    def _let_go(self, conn: Connection) -> None:
        """After a table: the database's cached pages of it and the heap its batches freed (glibc
        keeps freed memory resident otherwise) go back before the next table's load."""
        self.dialect.let_go_of_cache(conn)
        release_freed()

    def _apply_plan(self, conn: Connection, name: str, cols: list[str], plan: DeltaPlan, touch: list) -> None:
        self._delete_keys(conn, name, plan.delete_keys)
        self._write_table(conn, name, cols, plan.insert_rows)
        for column, value, keys in [*plan.updates, *touch]:
            self._update_column(conn, name, column, value, keys)

    def _publish_scoped(
        self, conn: Connection, name: str, cols: list[str], rows: "Rows | list[tuple]", scoped: Scoped, delta: bool
    ) -> None:
        """Rewrite the part of a table a Scoped value covers (see publish)."""
        old = self._stored_scope(conn, name, scoped)
        if delta:
            plan = diff_rows(name, cols, rows, old, replace_share=None)
            assert plan is not None, "without replace_share a keyed table is never replaced whole"
        else:
            old_keys = key_array(old, DELTA_KEYS[name]).tolist() if len(old) else []
            plan = DeltaPlan(sorted(set(old_keys), key=str), rows, [])
        self._apply_plan(conn, name, cols, plan, scoped.touch)

    def _stored_scope(self, conn: Connection, name: str, scoped: Scoped) -> pd.DataFrame:
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

    def _delta_plan(self, conn: Connection, name: str, cols: list[str], rows: "Rows | list[tuple]") -> DeltaPlan | None:
        """What to delete/insert/update to turn the stored table into `rows`; None = replace all.

        Rows are compared by the hash of their stored values (bookkeeping columns left out):
        Python's tuple hash reuses each string's cached hash, so this stays well under a second
        at 400k wide rows.
        """
        old = self._stored(conn, name)
        if not len(old):
            return None
        return diff_rows(name, cols, rows, old, replace_share=FULL_REPLACE_SHARE)

    def _delete_keys(self, conn: Connection, name: str, keys: list) -> None:
        if not keys:
            return
        cur = dbapi(conn).cursor()
        try:
            self.dialect.delete_keys(cur, name, DELTA_KEYS[name], keys)
        finally:
            cur.close()

    def _update_column(self, conn: Connection, name: str, column: str, value: Any, keys: list) -> None:
        (key,) = DELTA_KEYS[name]
        cur = dbapi(conn).cursor()
        try:
            self.dialect.update_column(cur, name, column, key, value, keys)
        finally:
            cur.close()

    def add_review_decisions(self, decisions: pd.DataFrame, skip_repeated: bool = False) -> int:
        """Store review decisions (record_key_l, record_key_r, decision, decided_by, decided_at,
        origin); later runs read them back as overrides. With `skip_repeated` a row repeating
        its pair's latest decision (either order) is left out, in the same transaction, so
        applying one review file twice changes nothing. → rows written."""
        df = decisions.copy()
        bad = ~df["decision"].isin(["match", "no_match"])
        if bad.any():
            raise StoreError(f"review decisions must be match or no_match, got {sorted(set(df.loc[bad, 'decision']))}")
        if "decided_at" not in df.columns:
            df["decided_at"] = utc_now()
        with self._errors("recording review decisions"), self._write_conn() as conn:
            if skip_repeated and len(df):
                df = df[self._new_decisions(conn, df)]
            self._write_table(conn, "review_decision", *frame_rows("review_decision", df))
        return len(df)

    def _new_decisions(self, conn: Connection, df: pd.DataFrame) -> list[bool]:
        """Which rows differ from their pair's latest stored decision."""
        stored = self._select(conn, "review_decision", ["record_key_l", "record_key_r", "decision", "decided_at"])
        stored = stored.sort_values("decided_at", kind="stable", na_position="first")
        latest: dict[tuple[str, str], str] = {}
        for a, b, d in zip(stored["record_key_l"], stored["record_key_r"], stored["decision"]):
            latest[(a, b)] = latest[(b, a)] = d
        return [latest.get((a, b)) != d for a, b, d in zip(df["record_key_l"], df["record_key_r"], df["decision"])]

    @contextmanager
    def _write_conn(self) -> Iterator[Connection]:
        conn = self.engine.connect()
        try:
            conn = self.dialect.write_options(conn)
            with conn.begin():
                yield conn
        finally:
            conn.close()

    def _write_table(self, conn: Connection, name: str, cols: list[str], rows: "Rows | list[tuple]") -> None:
        """Bulk insert inside the caller's transaction (the dialect's fastest way), a batch of
        rows at a time."""
        if not rows:
            return
        self.dialect.bulk_insert(dbapi(conn), name, cols, rows)
