"""Data-wide value counts kept in the store: survivorship's spelling counts (`common_spelling`,
`common_characters`, `common_domain`, `own_number`), one `spelling_count` row per counted value.

A full run writes them whole; an incremental run reads only the counts of the values its
affected region asks about and writes back the ones its records changed, so a night does not
count every stored record (docs/store.md, "Incremental speed"). The master_state row
`spelling_counts` lists the statistics held and names (run_id) the run that wrote them: they
are trusted only when that run is the one that last published (the run_id of its
`cluster_fingerprint` row). A publish by a version that does not keep them leaves them stale,
an erasure deletes them; the next run then counts every record and writes them whole again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy.engine import Connection

from .base import dbapi
from .prior import PriorReaderMixin
from .tables import TABLES

SPELLING_TABLE = "spelling_count"
#: master_state row: the statistics `spelling_count` holds (JSON list); its run_id wrote them
SPELLING_STATE = "spelling_counts"
#: the master_state row every publish writes: its run_id is the run that last published
_PUBLISHED_BY = "cluster_fingerprint"
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
        state = self._select(conn, "master_state", ["name", "value", "run_id"])
        by_name = {n: (v, r) for n, v, r in zip(state["name"], state["value"], state["run_id"])}
        held, published = by_name.get(SPELLING_STATE), by_name.get(_PUBLISHED_BY)
        if held is None or published is None or held[1] != published[1]:
            return False
        return set(statistics) <= set(json.loads(held[0] or "[]"))

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
        rows = [(k, n) for k, n in stored_pairs(write.counts) if n > 0]
        if rows:
            self.dialect.bulk_insert(dbapi(conn), SPELLING_TABLE, ["key", "records"], rows)
        t = TABLES["master_state"]
        conn.execute(t.delete().where(t.c.name == SPELLING_STATE))
        value = json.dumps(sorted(write.statistics))
        conn.execute(t.insert(), [{"name": SPELLING_STATE, "value": value, "run_id": run_id}])


def forget_spelling(conn: Connection) -> int:
    """Erasure: the stored counts (they name values of the erased person) and their state row
    go; the next run counts every record again. → rows deleted."""
    t = TABLES["master_state"]
    conn.execute(t.delete().where(t.c.name == SPELLING_STATE))
    return int(conn.execute(TABLES[SPELLING_TABLE].delete()).rowcount or 0)
