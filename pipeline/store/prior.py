"""Reading the master: the prior state a run starts from, and the tables commands show."""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from ..memory import collector_paused
from .base import StoreBase, dbapi
from .tables import OTHER_COLUMNS, TABLES, columns_of
from .values import _empty, _empty_columns, _empty_records, _typed, _unpack_records, max_master_number

log = logging.getLogger(__name__)

#: customer_record columns a slim load_state always reads (besides the ones asked for)
SLIM_RECORD_COLUMNS: tuple[str, ...] = ("record_key", "source", "content_hash", "row_hash")
#: customer_record values only the records of this run compare (split_reusable, combine_with_prior,
#: the moved-row check): read by key for them when a run names few records
RUN_HASH_COLUMNS: tuple[str, ...] = ("content_hash", "row_hash", "std_fingerprint")
#: match_edge columns a slim load_state reads (`cap`: a kept review edge's reason names its constraint)
SLIM_EDGE_COLUMNS: tuple[str, ...] = (
    "record_key_l",
    "record_key_r",
    "match_weight",
    "match_probability",
    "decision",
    "cap",
)
#: customer_xref columns the prior state holds
XREF_STATE_COLUMNS: tuple[str, ...] = (
    "record_key",
    "source",
    "source_record_id",
    "master_id",
    "match_probability",
    "reason",
)
#: customer_xref columns a slim state holds (see PriorReaderMixin._slim_xref_columns)
SLIM_XREF_COLUMNS: tuple[str, ...] = ("record_key", "source", "master_id")
#: the master_state row every run's publish writes: its run_id is the run that last published
PUBLISHED_BY = "cluster_fingerprint"
#: master_state row: the number the next new master id gets (kept so a night need not parse every id)
NEXT_NUMBER_STATE = "next_master_number"
_ACTIVE = "WHERE status IS NULL OR status <> 'retired'"
_WORD = re.compile(r"^\w+$")


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


class PriorReaderMixin(StoreBase):
    """Store methods that read (needs engine, dialect, _errors; sets _snapshot for publish)."""

    def read_table(self, name: str, conn: Connection | None = None, where=None) -> pd.DataFrame:
        """A whole table as a DataFrame with the table's columns (also when empty)."""
        table = TABLES[name]
        if conn is None:
            with self._errors(f"reading {name}"), self.engine.connect() as c:
                return self.read_table(name, c, where)
        cols = columns_of(name)
        if where is not None:
            rows = conn.execute(select(table).where(where)).fetchall()
        else:  # plain DBAPI fetch: SQLAlchemy's row objects cost seconds at 400k wide rows
            rows = _fetch(conn, f'SELECT {_col_sql(cols)} FROM "{name}"')
        if not rows:
            return _empty(name)
        return _typed(name, pd.DataFrame.from_records(rows, columns=cols, coerce_float=False))

    def read_columns(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Some columns of a whole table, typed like read_table."""
        with self._errors(f"reading {name}"), self.engine.connect() as conn:
            return self._select(conn, name, columns)

    def read_by_keys(
        self,
        name: str,
        key_cols: tuple[str, ...],
        keys,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Rows (as stored: customer_record not unpacked) whose value in any of `key_cols` is in `keys`."""
        with self._errors(f"reading {name}"), self._read_conn() as conn:
            return self._select_keys(conn, name, columns or columns_of(name), key_cols, keys)

    def find_rows(self, name: str, **equals) -> pd.DataFrame:
        """Rows whose columns equal the given values (e.g. source=…, source_record_id=…)."""
        t = TABLES[name]
        where = [t.c[c] == v for c, v in equals.items()]
        return self.read_table(name, where=and_(*where))

    def count_values(self, name: str, column: str, value=None) -> int:
        """Rows whose `column` equals `value` (with no value: rows where it is not NULL)."""
        t = TABLES[name]
        cond = t.c[column].is_not(None) if value is None else t.c[column] == value
        with self._errors(f"counting {name}.{column}"), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t).where(cond)).scalar_one())

    def read_state(self) -> dict[str, str]:
        """master_state as {name: value} (empty for a master written before it existed)."""
        t = TABLES["master_state"]
        with self._errors("reading the master state"), self.engine.connect() as conn:
            return {n: v for n, v in conn.execute(select(t.c.name, t.c.value)).fetchall()}

    def load_state(self, record_columns: list[str] | None = None, run_keys=None) -> PriorState:
        """The last published state (an empty PriorState on a fresh database).

        With `record_columns` the state is slim, as an incremental run needs it up front:
        customer_record with only those columns (plus identity, hashes, bookkeeping and the
        unpacked `other_columns`), match_edge without evidence, master_customer not at all.
        The run reads the rest by key afterwards (`read_records`, `read_masters`). Given the
        record keys of the run's input (`run_keys`), the hashes and the standardizer
        fingerprint are read for those records only (see `_slim_records`).
        """
        slim = record_columns is not None
        # a tuple per row read (≈ 1.1 M at 200k): the collector would run ≈ 1,500 times over them
        with self._errors("loading the previous master"), collector_paused(), self._read_conn() as conn:
            names = () if slim else ("customer_record", "customer_xref", "match_edge", "master_customer")
            stored = {name: self.read_table(name, conn) for name in (*names, "quarantine")}
            # a slim state's xref: only the columns a run reads (an incremental run rewrites
            # customer_xref by key, so publish needs no copy of the whole table)
            xref = (
                self._select(conn, "customer_xref", self._slim_xref_columns(conn)) if slim else stored["customer_xref"]
            )
            version, model = self._latest_model(conn)
            parts = (
                self._slim_parts(conn, [*record_columns, *_compared_extras(model)], run_keys)
                if record_columns is not None
                else self._full_parts(conn, stored)
            )
            state = self._prior_state(conn, stored, xref, slim, *parts)
            state.model_version, state.model = version, model
            kept = self._current_state(conn).get(NEXT_NUMBER_STATE)
        # kept for the next publish's delta (the run holds the lock, so nothing else writes them)
        self._snapshot = {k: v.copy() for k, v in stored.items()}
        state.next_master_number = int(kept) if kept else _next_number(state)
        self._next_number = state.next_master_number  # publish stores the number after its run's
        return state

    def _full_parts(self, conn: Connection, stored: dict) -> tuple:
        """(records, retired, edges, masters, history) of a full load."""
        records = _unpack_records(stored["customer_record"])
        is_retired = (records["status"].fillna("active") == "retired").to_numpy()
        records, retired = records[~is_retired], records[is_retired].reset_index(drop=True)
        return (
            records,
            retired,
            stored["match_edge"],
            stored["master_customer"],
            self.read_table("master_id_history", conn),
        )

    def _slim_parts(self, conn: Connection, record_columns: list[str], run_keys=None) -> tuple:
        """(records, retired, edges, masters, history) of a slim load."""
        records, retired = self._slim_records(conn, record_columns, run_keys)
        return (
            records,
            retired,
            self._select(conn, "match_edge", list(SLIM_EDGE_COLUMNS)),
            _empty("master_customer"),
            self._select(conn, "master_id_history", ["master_id", "target_master_id"]),
        )

    def _prior_state(
        self, conn: Connection, stored: dict, xref: pd.DataFrame, slim: bool, records, retired, edges, masters, history
    ) -> PriorState:
        state_rows = self._select(conn, "master_state", ["name", "value"])
        state = PriorState(
            records=records.set_axis(pd.RangeIndex(len(records)), axis=0, copy=False),  # no copy
            xref=xref if slim else xref[list(XREF_STATE_COLUMNS)],
            edges=edges,
            model=None,
            overrides=self.read_table("review_decision", conn),
            id_history=history,
            next_master_number=1,
            masters=masters,
            quarantine=stored["quarantine"],
            retired_records=retired,
            state=dict(zip(state_rows["name"], state_rows["value"])),
            review_keys=self._select(conn, "review_queue", ["record_key_l", "record_key_r"]),
            slim=slim,
        )
        return state

    def _current_state(self, conn: Connection) -> dict[str, str]:
        """master_state values written by the run that last published (the run_id of its
        `cluster_fingerprint` row, which every run's publish writes): a value another run wrote
        (a version that does not keep it published since) is stale."""
        state = self._select(conn, "master_state", ["name", "value", "run_id"])
        last = dict(zip(state["name"], state["run_id"])).get(PUBLISHED_BY)
        rows = zip(state["name"], state["value"], state["run_id"])
        return {n: v for n, v, r in rows if last is not None and r == last}

    def _slim_xref_columns(self, conn: Connection) -> list[str]:
        """customer_xref columns a slim state reads for every record: the key, its master and
        source (the report counts records per source). `reason` only for a master that does
        not know its overrides (incremental.changed_override_keys reads it then); the other
        columns of the region's rows are rebuilt by the run."""
        known = self._select(conn, "master_state", ["name"], "WHERE name = 'overrides' AND value <> ''")
        return list(SLIM_XREF_COLUMNS) + ([] if len(known) else ["reason"])

    def _latest_model(self, conn: Connection) -> tuple[int, dict | None]:
        """(version, model) of the last saved match model; (0, None) when there is none."""
        models = self._select(conn, "match_model", ["version", "model_json"], 'ORDER BY "version" DESC LIMIT 1')
        if not len(models):
            return 0, None
        latest = models.iloc[0]
        return int(latest["version"]), json.loads(latest["model_json"]) if latest["model_json"] else None

    def _slim_records(
        self, conn: Connection, record_columns: list[str], run_keys=None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Active records with SLIM_RECORD_COLUMNS, `std_fingerprint` and `record_columns` (those
        the table has no column for, such as the compared `attr_*_std`, are read out of the
        `other_columns` JSON by the database); retired ones with only their key, hash and
        first/last seen run (their status says which). With `run_keys` naming fewer than half
        the stored records, the hashes and fingerprint (only a record of this run compares
        them) are read by key for those (`_run_hashes`) and are None on the other rows: a
        fifth of the read at 200k."""
        have = set(columns_of("customer_record"))
        by_key = run_keys is not None and self._few_keys(conn, run_keys)
        slim = [c for c in SLIM_RECORD_COLUMNS if not (by_key and c in RUN_HASH_COLUMNS)]
        cols = list(dict.fromkeys([*slim, *(c for c in record_columns if c in have)]))
        own = () if by_key else ("std_fingerprint",)
        # names of word characters only (attr slugs are): each becomes a literal in the SQL
        packed = [c for c in dict.fromkeys([*record_columns, *own]) if c not in have and _WORD.match(c)]
        # status as a constant of the query: the frame is built as one block, never copied to add it
        fields = ", ".join(
            [_col_sql(cols), *(self.dialect.json_field_sql(OTHER_COLUMNS, c) for c in packed), "'active'"]
        )
        cur = dbapi(conn).cursor()
        try:
            with self.dialect.savepoint(cur, "crmclean_slim"):  # a failure must not abort the read
                cur.execute(f"SELECT {fields} FROM customer_record {_ACTIVE}")
                rows = cur.fetchall()
        except Exception:  # no JSON support (or a malformed text): unpack in Python
            log.debug("reading std_fingerprint in Python", exc_info=True)
            rows = None
        finally:
            cur.close()
        if rows is None:
            full = _unpack_records(self._select(conn, "customer_record", [*cols, OTHER_COLUMNS], _ACTIVE))
            records = full.reindex(columns=cols).assign(**{c: full[c] if c in full.columns else None for c in packed})
            records["status"] = "active"
        else:
            names = [*cols, *packed, "status"]
            records = (
                pd.DataFrame.from_records(rows, columns=names, coerce_float=False) if rows else _empty_columns(names)
            )
        retired = self._select(
            conn,
            "customer_record",
            ["record_key", "source", "content_hash", "first_seen_run", "last_seen_run", "status"],
            "WHERE status = 'retired'",
        )
        if by_key:
            records = self._run_hashes(conn, records, run_keys)
        return records, retired.reset_index(drop=True)

    def _few_keys(self, conn: Connection, run_keys) -> bool:
        """Does the run name fewer than half the stored records? (A whole export again is read
        in one pass, not by a key table of every record.)"""
        stored = int(_fetch(conn, "SELECT COUNT(*) FROM customer_record")[0][0])
        return len(run_keys) < stored / 2

    def _run_hashes(self, conn: Connection, records: pd.DataFrame, run_keys) -> pd.DataFrame:
        """`records` with RUN_HASH_COLUMNS read by key for the run's records, None elsewhere."""
        found = _unpack_records(
            self._select_keys(
                conn,
                "customer_record",
                ["record_key", *RUN_HASH_COLUMNS[:-1], OTHER_COLUMNS],
                ("record_key",),
                run_keys,
            )
        )
        pos = pd.Index(records["record_key"]).get_indexer(found["record_key"]) if len(found) else np.zeros(0, np.int64)
        hit = pos >= 0
        for c in RUN_HASH_COLUMNS:
            col = np.full(len(records), None, dtype=object)
            if c in found.columns:
                col[pos[hit]] = found[c].to_numpy(dtype=object)[hit]
            records[c] = col
        return records

    def _select(
        self, conn: Connection, name: str, columns: list[str], tail: str = "", params: tuple | list = ()
    ) -> pd.DataFrame:
        """Some columns of a table through the plain DBAPI cursor, typed like read_table."""
        rows = _fetch(conn, f'SELECT {_col_sql(columns)} FROM "{name}" {tail}', params)
        df = pd.DataFrame.from_records(rows, columns=columns, coerce_float=False) if rows else _empty_columns(columns)
        return _typed(name, df, columns)

    def _select_keys(
        self, conn: Connection, name: str, columns: list[str], key_cols: tuple[str, ...], keys
    ) -> pd.DataFrame:
        """Rows whose value in any of `key_cols` is one of `keys` (the backend's key filter)."""
        keys = list(dict.fromkeys(k for k in keys if k is not None))
        if not keys:
            return _typed(name, _empty_columns(columns), columns)
        cur = dbapi(conn).cursor()
        try:
            where, params = self.dialect.key_filter(cur, key_cols, keys)
        finally:
            cur.close()
        return self._select(conn, name, columns, f"WHERE {where}", params)

    def read_records(self, keys) -> pd.DataFrame:
        """Full customer_record rows (any status, `other_columns` unpacked) for these record keys."""
        with self._errors("reading records of the previous master"), self._read_conn() as conn:
            rows = self._select_keys(conn, "customer_record", columns_of("customer_record"), ("record_key",), keys)
        return _unpack_records(rows)

    def read_masters(self, master_ids) -> pd.DataFrame:
        """master_customer rows for these ids."""
        with self._errors("reading masters of the previous master table"), self._read_conn() as conn:
            return self._select_keys(conn, "master_customer", columns_of("master_customer"), ("master_id",), master_ids)

    def read_edges(self, record_keys) -> pd.DataFrame:
        """Full match_edge rows touching any of these record keys."""
        with self._errors("reading match edges of the previous master"), self._read_conn() as conn:
            return self._select_keys(
                conn, "match_edge", columns_of("match_edge"), ("record_key_l", "record_key_r"), record_keys
            )

    @contextmanager
    def _read_conn(self) -> Iterator[Connection]:
        """One consistent snapshot for all reads of load_state."""
        conn = self.engine.connect()
        try:
            conn = self.dialect.read_options(conn)
            with conn.begin():
                yield conn
        finally:
            conn.close()


def _next_number(state: PriorState) -> int:
    """The next master number from every id the state holds (a master whose publish did not
    store it): each part's distinct ids first, 360k xref rows hold 200k masters."""
    parts = (state.xref["master_id"], state.id_history["master_id"], state.id_history["target_master_id"])
    ids = pd.Series(
        np.concatenate([pd.unique(p.to_numpy()) for p in (*parts, state.masters["master_id"])]), dtype=object
    )
    return max_master_number(ids) + 1


def _compared_extras(model: dict | None) -> list[str]:
    """The `attr_*_std` columns the saved model compares (its extra features): an incremental
    run needs their stored values, or every stored record would compare as missing there."""
    return [f"{feature}_std" for feature in (model or {}).get("extra_features") or ()]


def _col_sql(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _fetch(conn: Connection, sql: str, params: tuple | list = ()) -> list:
    cur = dbapi(conn).cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()
