"""What the store keeps so a night need not pass over every stored record: survivorship's
data-wide spelling counts (`common_spelling`, `common_characters`, `common_domain`,
`own_number`), one `spelling_count` row per counted value, and the next master number.

A full run writes the counts whole; an incremental run reads only the counts of the values its
affected region asks about and writes back the ones its records changed (docs/store.md,
"Incremental runs"). Each is named by a master_state row (`spelling_counts`: the statistics
held; `next_master_number`) whose run_id is the run that wrote it: it is trusted only when that
run is the one that last published (`PriorReaderMixin._current_state`). A publish by a version
that does not keep them leaves them stale, an erasure deletes the counts; the next run then
counts every record (or parses every master id) and stores them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import islice
from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from .base import dbapi
from .prior import NEXT_NUMBER_STATE, PriorReaderMixin
from .tables import TABLES
from .values import BATCH_ROWS, max_master_number

SPELLING_TABLE = "spelling_count"
#: master_state row: the statistics `spelling_count` holds (JSON list); its run_id wrote them
SPELLING_STATE = "spelling_counts"
#: between the statistic and the value in `spelling_count.key` (statistic names never hold it)
_SEP = "|"

Counts = dict[str, dict[str, int]]  # survivorship.SpellingCounts: {statistic: {value: records}}


@dataclass
class SpellingWrite:
    """What publish writes to `spelling_count`: the counts of `keys` (None: every count, the
    table replaced whole); a key whose count is 0 is deleted."""

    counts: Counts
    statistics: list[str]
    keys: list[str] | None = None


def stored_key(statistic: str, value: str) -> str:
    return f"{statistic}{_SEP}{value}"


def stored_pairs(counts: Counts) -> Iterable[tuple[str, int]]:
    for statistic, values in counts.items():
        for value, n in values.items():
            yield stored_key(statistic, value), int(n)


class StatisticsMixin(PriorReaderMixin):
    """Store methods that read and write `spelling_count`."""

    def read_spelling(self, wanted: dict[str, set[str]]) -> Counts | None:
        """The stored counts of the `wanted` values of each statistic (a value not stored counts
        0), or None when the store does not hold these statistics up to date."""
        with self._errors("reading the stored spelling counts"), self._read_conn() as conn:
            if not self._spelling_current(conn, sorted(wanted)):
                return None
            keys = [stored_key(s, v) for s, values in wanted.items() for v in values]
            rows = self._select_keys(conn, SPELLING_TABLE, ["key", "records"], ("key",), keys)
        out: Counts = {s: {} for s in wanted}
        for key, n in zip(rows["key"].tolist(), rows["records"].tolist()):
            statistic, _, value = key.partition(_SEP)
            out[statistic][value] = int(n)
        return out

    def _spelling_current(self, conn: Connection, statistics: list[str]) -> bool:
        """Were the stored counts written by the last publish, for (at least) these statistics?"""
        held = self._current_state(conn).get(SPELLING_STATE)
        return held is not None and set(statistics) <= set(json.loads(held or "[]"))

    def _publish_next_number(self, conn: Connection, run_id: str, tables: dict) -> None:
        """Inside publish's transaction: the next master number after this run, in master_state
        (only after this run's load_state gave it one: the number it was read or counted as)."""
        prior, self._next_number = self._next_number, None
        if prior is not None:
            self._write_state(conn, run_id, {NEXT_NUMBER_STATE: str(next_number_after(prior, tables))})

    def _write_state(self, conn: Connection, run_id: str, values: dict[str, str]) -> None:
        """master_state rows `values` ({name: value}) replaced, written by `run_id`."""
        t = TABLES["master_state"]
        conn.execute(t.delete().where(t.c.name.in_(list(values))))
        conn.execute(t.insert(), [{"name": k, "value": v, "run_id": run_id} for k, v in values.items()])

    def _publish_spelling(self, conn: Connection, run_id: str, write: SpellingWrite | None) -> None:
        """Inside publish's transaction: the counts written, and master_state's row naming them."""
        if write is None:
            return
        cur = dbapi(conn).cursor()
        try:
            if write.keys is None:
                cur.execute(f'DELETE FROM "{SPELLING_TABLE}"')
            elif write.keys:
                self.dialect.delete_keys(cur, SPELLING_TABLE, ("key",), write.keys)
        finally:
            cur.close()
        # a batch at a time: 318k (key, count) pairs at 200k customers held ≈ 40 MB as tuples at once
        rows = ((k, n) for k, n in stored_pairs(write.counts) if n > 0)
        for batch in iter(lambda: list(islice(rows, BATCH_ROWS)), []):
            self.dialect.bulk_insert(dbapi(conn), SPELLING_TABLE, ["key", "records"], batch)
        self._write_state(conn, run_id, {SPELLING_STATE: json.dumps(sorted(write.statistics))})


def next_number_after(prior: int, tables: dict) -> int:
    """The next master number after a publish of `tables`: past the prior one and every id the
    run's masters and id history hold (a Scoped table: its rows)."""
    frames = [getattr(tables.get(n), "rows", tables.get(n)) for n in ("master_customer", "master_id_history")]
    columns = [f[c] for f in frames if f is not None for c in ("master_id", "target_master_id") if c in f.columns]
    ids = pd.Series(np.concatenate([pd.unique(c.to_numpy()) for c in columns]) if columns else [], dtype=object)
    return max(prior, max_master_number(ids) + 1)


def forget_spelling(conn: Connection) -> int:
    """Erasure: the stored counts (they name values of the erased person) and their state row
    go; the next run counts every record again. → rows deleted."""
    t = TABLES["master_state"]
    conn.execute(t.delete().where(t.c.name == SPELLING_STATE))
    return int(conn.execute(TABLES[SPELLING_TABLE].delete()).rowcount or 0)
