"""Erasure in the master database (`crmclean forget`, GDPR art. 17 / CCPA deletion).

One transaction deletes a person's rows from every table that holds personal data, redacts
the rows that must stay for accounting (quarantine, run_log), writes salted hashes of their
identifiers (the tombstone a later import is checked against) and one audit row that holds
no personal value. A dry run executes the same statements and rolls them back, so its counts
are exactly what a real run removes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from .base import dbapi
from .statistics import forget_spelling
from .tables import TABLES
from .values import utc_now

#: the std columns a record's identifiers come from: (kind, column)
IDENTIFIER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("email", "email_std"),
    ("email", "email_key"),
    ("phone", "phone_std"),
    ("phone", "mobile_std"),
    ("phone", "landline_std"),
    ("national_id", "national_id_std"),
)
#: the golden master's identifier columns
MASTER_IDENTIFIER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("email", "email"),
    ("phone", "phone"),
    ("phone", "mobile"),
    ("phone", "landline"),
    ("national_id", "national_id"),
)
ERASED = "[erased]"


def normalized(kind: str, value: Any) -> str | None:
    """The form an identifier is hashed in: e-mails lower-case, the rest without spaces."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text:
        return None
    if kind == "email":
        return text.lower()
    return "".join(text.split()).upper() if kind == "national_id" else "".join(text.split())


def salted_hash(salt: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{salt}|{kind}|{value}".encode("utf-8")).hexdigest()


def record_identifiers(row: dict) -> set[tuple[str, str]]:
    """(kind, normalized value) of one standardized record: its key, e-mails, phones, national id."""
    found = {("record", str(row["record_key"]))} if row.get("record_key") else set()
    for kind, column in IDENTIFIER_COLUMNS:
        value = normalized(kind, row.get(column))
        if value:
            found.add((kind, value))
    return found


@dataclass(frozen=True)
class Tombstones:
    """The salted hashes of erased people's identifiers (what a run checks new records against)."""

    salt: str
    hashes: frozenset[str]


def read_tombstones(store) -> Tombstones | None:
    """The tombstones of this master (None when nobody was ever erased)."""
    salt_t, tomb_t = TABLES["erasure_salt"], TABLES["erasure_tombstone"]
    with store._errors("reading the erasure tombstones"), store.engine.connect() as conn:
        salt = conn.execute(select(salt_t.c.salt).where(salt_t.c.id == 1)).scalar()
        if salt is None:
            return None
        hashes = frozenset(conn.execute(select(tomb_t.c.hash)).scalars())
    return Tombstones(salt, hashes) if hashes else None


@dataclass
class Person:
    """Everything of one person found in the master: the rows to remove and their values."""

    record_keys: list[str]
    master_ids: list[str]
    records: pd.DataFrame  # full customer_record rows, unpacked
    masters: pd.DataFrame  # master_customer rows
    identifiers: set[tuple[str, str]] = field(default_factory=set)
    strong_terms: list[str] = field(default_factory=list)  # redacted wherever they appear
    weak_terms: list[str] = field(default_factory=list)  # redacted only beside a strong term


@dataclass
class Erasure:
    """What one erasure did (or, dry, would do): rows per table, and the audit id."""

    audit_id: str
    rows: dict[str, int]
    dry_run: bool


def erase(store, person: Person, audit_id: str, key_kind: str, files: dict[str, int], dry_run: bool) -> Erasure:
    """Delete and redact the person's rows, write tombstones and the audit row: ONE transaction
    (rolled back for a dry run, after counting)."""
    conn = store.engine.connect()
    try:
        store.dialect.prepare_erasure(conn)
        conn = store.dialect.write_options(conn)
        with store._errors("erasing a person"):
            trans = conn.begin()
            try:
                rows = _remove_rows(conn, store.dialect, person, audit_id)
                if not dry_run:
                    _write_tombstones(conn, person.identifiers, audit_id)
                    _write_audit(conn, audit_id, key_kind, person, rows, files)
            except BaseException:
                trans.rollback()
                raise
            if dry_run:
                trans.rollback()
            else:
                trans.commit()
    finally:
        conn.close()
    if not dry_run:
        with store._errors("clearing erased rows from the database files"):
            store.dialect.after_erasure(store.engine, [t for t, n in rows.items() if n])
    return Erasure(audit_id=audit_id, rows=rows, dry_run=dry_run)


#: (table, key columns, which keys): rows whose key is among the person's are deleted
_DELETES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("master_customer", ("master_id",), "masters"),
    ("master_lineage", ("master_id",), "masters"),
    ("master_lineage", ("record_key",), "records"),
    ("customer_xref", ("record_key",), "records"),
    ("customer_xref", ("master_id",), "masters"),
    ("customer_record", ("record_key",), "records"),
    ("xref_snapshot", ("record_key",), "records"),
    ("match_edge", ("record_key_l", "record_key_r"), "records"),
    ("review_queue", ("record_key_l", "record_key_r"), "records"),
    ("review_decision", ("record_key_l", "record_key_r"), "records"),
)


def _remove_rows(conn: Connection, dialect, person: Person, audit_id: str) -> dict[str, int]:
    rows: dict[str, int] = {}
    keys = {"records": person.record_keys, "masters": person.master_ids}
    cur = dbapi(conn).cursor()
    try:
        for table, key_cols, which in _DELETES:
            if keys[which]:
                where, params = dialect.key_filter(cur, key_cols, list(keys[which]))
                cur.execute(f'DELETE FROM "{table}" WHERE {where}', params)
                rows[table] = rows.get(table, 0) + max(cur.rowcount, 0)
    finally:
        cur.close()
    rows["quarantine"] = _redact_quarantine(conn, person)
    rows["run_log"] = _redact_run_log(conn, person)
    rows["master_state"] = _drop_overrides(conn, set(person.record_keys))
    rows["spelling_count"] = forget_spelling(conn)
    rows["master_id_history"] = _note_erased_ids(conn, person.master_ids, audit_id)
    return rows


def redact_text(text: str | None, terms: Iterable[str]) -> str | None:
    """`text` with every term replaced by [erased] (longest first, so a name inside an
    e-mail address does not leave the rest of the address behind)."""
    if not text:
        return text
    for term in sorted(set(terms), key=len, reverse=True):
        if term and term in text:
            text = text.replace(term, ERASED)
    return text


def _redact_quarantine(conn: Connection, person: Person) -> int:
    """Quarantined rows of the person keep their place (the run's rows stay accounted for) but
    lose `raw`, and personal values in `reason`: by their record key, or by a strong term."""
    t = TABLES["quarantine"]
    cols = ["source", "source_record_id", "locator", "stage", "reason_code", "reason", "raw", "run_id"]
    found = conn.execute(select(*[t.c[c] for c in cols])).fetchall()
    keys = set(person.record_keys)
    terms = person.strong_terms
    changed = 0
    for row in found:
        values = dict(zip(cols, row))
        own = f"{values['source']}|{values['source_record_id']}" in keys
        hit = any(term in (values["raw"] or "") or term in (values["reason"] or "") for term in terms)
        if not (own or hit):
            continue
        where = [t.c[c].is_not_distinct_from(values[c]) for c in cols]
        result = conn.execute(t.update().where(*where).values(raw=None, reason=redact_text(values["reason"], terms)))
        changed += max(result.rowcount, 0)
    return changed


def _redact_run_log(conn: Connection, person: Person) -> int:
    """A run's error line that quoted one of the person's values keeps the rest of its text."""
    t = TABLES["run_log"]
    changed = 0
    for run_id, error in conn.execute(select(t.c.run_id, t.c.error).where(t.c.error.is_not(None))).fetchall():
        redacted = redact_text(error, person.strong_terms)
        if redacted != error:
            conn.execute(t.update().where(t.c.run_id == run_id).values(error=redacted))
            changed += 1
    return changed


def _drop_overrides(conn: Connection, keys: set[str]) -> int:
    """The stored overrides (master_state) lose every pair that names one of the records."""
    t = TABLES["master_state"]
    text = conn.execute(select(t.c.value).where(t.c.name == "overrides")).scalar()
    if not text or not keys:
        return 0
    pairs = json.loads(text)
    kept = [p for p in pairs if p[0] not in keys and p[1] not in keys]
    if len(kept) == len(pairs):
        return 0
    conn.execute(t.update().where(t.c.name == "overrides").values(value=json.dumps(kept, ensure_ascii=False)))
    return 1


def _note_erased_ids(conn: Connection, master_ids: list[str], audit_id: str) -> int:
    """An `erased` id event per master (ids are never reused; the history says why one ended)."""
    if not master_ids:
        return 0
    now = utc_now()
    rows = [
        {"master_id": m, "event": "erased", "target_master_id": None, "run_id": audit_id, "at": now} for m in master_ids
    ]
    conn.execute(TABLES["master_id_history"].insert(), rows)
    return len(rows)


def _salt(conn: Connection) -> str:
    """The database's salt, made on first use (random: a hash alone cannot be reversed by
    trying every e-mail address known elsewhere)."""
    t = TABLES["erasure_salt"]
    salt = conn.execute(select(t.c.salt).where(t.c.id == 1)).scalar()
    if salt is None:
        salt = secrets.token_hex(32)
        conn.execute(t.insert(), {"id": 1, "salt": salt, "created_at": utc_now()})
    return salt


def _write_tombstones(conn: Connection, identifiers: set[tuple[str, str]], audit_id: str) -> None:
    t = TABLES["erasure_tombstone"]
    salt = _salt(conn)
    hashes = {salted_hash(salt, kind, value): kind for kind, value in identifiers}
    have = set(conn.execute(select(t.c.hash).where(t.c.hash.in_(list(hashes)))).scalars()) if hashes else set()
    new = [{"hash": h, "kind": k, "audit_id": audit_id} for h, k in sorted(hashes.items()) if h not in have]
    if new:
        conn.execute(t.insert(), new)


def _write_audit(
    conn: Connection, audit_id: str, key_kind: str, person: Person, rows: dict[str, int], files: dict[str, int]
) -> None:
    conn.execute(
        TABLES["erasure_audit"].insert(),
        {
            "audit_id": audit_id,
            "erased_at": utc_now(),
            "key_kind": key_kind,
            "masters": len(person.master_ids),
            "records": len(person.record_keys),
            "rows": json.dumps(rows, sort_keys=True),
            "files": json.dumps(files, sort_keys=True),
        },
    )
