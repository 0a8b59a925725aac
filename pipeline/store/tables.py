"""The published tables: one SQLAlchemy Core definition used by SQLite and PostgreSQL alike.

Times are ISO-8601 UTC text and wide record columns are text, so both backends store and
return exactly the same values (docs/store.md documents every column).
"""

from __future__ import annotations

from sqlalchemy import DDL, Column, Float, Index, Integer, MetaData, Table, Text, UniqueConstraint, event

from ..schema import CANONICAL_FIELDS, IDENTITY_COLUMNS, MASTER_COLUMNS

metadata = MetaData()

_STD_FIELDS = tuple(f for f in CANONICAL_FIELDS if f not in ("record_id", "phone"))

#: customer_record columns in order: identity, raw canonical text, standardized values and
#: flags side by side, match keys, then bookkeeping. Anything else a stage adds goes, as JSON,
#: into `other_columns` so nothing is lost and the table shape stays fixed.
RECORD_DATA_COLUMNS: tuple[str, ...] = (
    *IDENTITY_COLUMNS,
    *CANONICAL_FIELDS,
    "extra",
    "raw",
    *[c for f in _STD_FIELDS for c in (f"{f}_std", f"{f}_flag")],
    "phone_std",
    "email_key",
    "name_suffix_std",
    "name_title_std",
    "first_name_key",
    "last_name_key",
    "name_script",
    "name_key",
    "postal_plus4_std",
    "district_std",
)
#: row_hash: sha1 of the identity/raw columns (locator, file, extra, raw) that are not in
#: content_hash, so an unchanged record whose row moved in its file is still rewritten
RECORD_META_COLUMNS: tuple[str, ...] = ("content_hash", "first_seen_run", "last_seen_run", "status", "row_hash")
OTHER_COLUMNS = "other_columns"

_INT_MASTER = {"record_count"}

master_customer = Table(
    "master_customer",
    metadata,
    Column("master_id", Text, primary_key=True),
    *[Column(c, Integer if c in _INT_MASTER else Text) for c in MASTER_COLUMNS if c != "master_id"],
    Column("created_run", Text),
    Column("updated_run", Text),
)

customer_xref = Table(
    "customer_xref",
    metadata,
    Column("source", Text, nullable=False),
    Column("source_record_id", Text, nullable=False),
    Column("record_key", Text, nullable=False, unique=True),
    Column("master_id", Text, nullable=False, index=True),
    Column("match_probability", Float),
    Column("reason", Text),
    Column("run_id", Text),
    UniqueConstraint("source", "source_record_id", name="uq_customer_xref_source_id"),
)

customer_record = Table(
    "customer_record",
    metadata,
    *[Column(c, Text, primary_key=(c == "record_key")) for c in RECORD_DATA_COLUMNS],
    Column(OTHER_COLUMNS, Text),
    *[Column(c, Text) for c in RECORD_META_COLUMNS],
    Index("ix_customer_record_status", "status"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("source", Text),
    Column("source_record_id", Text),
    Column("locator", Text),
    Column("stage", Text),
    Column("reason_code", Text),
    Column("reason", Text),
    Column("raw", Text),
    Column("run_id", Text),
)

review_queue = Table(
    "review_queue",
    metadata,
    Column("record_key_l", Text, nullable=False),
    Column("record_key_r", Text, nullable=False),
    Column("summary_l", Text),
    Column("summary_r", Text),
    Column("match_probability", Float),
    Column("match_weight", Float),
    Column("evidence", Text),
    Column("run_id", Text),
    Column("status", Text),
    Column("review_reason", Text),  # why the pair is in review (link.decisions.review_reasons)
    UniqueConstraint("record_key_l", "record_key_r", name="uq_review_queue_pair"),
)

master_lineage = Table(
    "master_lineage",
    metadata,
    Column("master_id", Text, index=True),
    Column("field", Text),
    Column("value", Text),
    Column("record_key", Text),
    Column("rule", Text),
    Column("alternatives", Text),  # JSON [{"value", "records"}]: the values that lost (survivorship)
)

master_id_history = Table(
    "master_id_history",
    metadata,
    Column("master_id", Text, index=True),
    Column("event", Text),
    Column("target_master_id", Text),
    Column("run_id", Text, index=True),
    Column("at", Text),
)

match_edge = Table(
    "match_edge",
    metadata,
    Column("record_key_l", Text, nullable=False),
    Column("record_key_r", Text, nullable=False),
    Column("match_weight", Float),
    Column("match_probability", Float),
    Column("decision", Text),
    Column("evidence", Text),
    Column("rules", Text),
    Column("run_id", Text),
    # the hard constraint (cap) that lowered the pair's decision ('' none; NULL: written before
    # the column existed), so a review reason rebuilt from a stored edge can name it
    Column("cap", Text),
    Index("ix_match_edge_pair", "record_key_l", "record_key_r"),
)

match_model = Table(
    "match_model",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("created", Text),
    Column("run_id", Text),
    Column("model_json", Text),
)

review_decision = Table(
    "review_decision",
    metadata,
    Column("record_key_l", Text, nullable=False),
    Column("record_key_r", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("decided_by", Text),
    Column("decided_at", Text),
    Column("origin", Text),
)

RUN_COUNT_COLUMNS: tuple[str, ...] = ("rows_read", "quarantined", "records_accepted", "masters", "records_merged")

run_log = Table(
    "run_log",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("started_at", Text),
    Column("finished_at", Text),
    Column("status", Text),
    Column("inputs", Text),
    Column("counts", Text),
    *[Column(c, Integer) for c in RUN_COUNT_COLUMNS],
    Column("timings", Text),
    Column("error", Text),
)

xref_snapshot = Table(
    "xref_snapshot",
    metadata,
    Column("run_id", Text, index=True),
    Column("record_key", Text),
    Column("master_id", Text),
)

#: What the next run must know about how this master was built (not a published table):
#: `cluster_fingerprint` (CLUSTER_VERSION plus the clustering/survivorship rules: when it moves,
#: every master is rebuilt) and `overrides` (the merged overrides the clusters were built with, as JSON).
master_state = Table(
    "master_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text),
    Column("run_id", Text),
)

#: Survivorship's data-wide value counts (store/statistics.py): `key` is "statistic|value"
#: (first_name_std|MARIA, phone_numbers|+15551234567, …), `records` the records holding it.
#: Kept so an incremental run reads the counts it needs instead of counting every record.
spelling_count = Table(
    "spelling_count",
    metadata,
    Column("key", Text, primary_key=True),
    Column("records", Integer, nullable=False),
)

#: Erasure (crmclean forget, pipeline/store/erasure.py): the database's secret salt (one row),
#: salted hashes of erased people's identifiers (a later import of them is quarantined), and one
#: audit row per erasure: when, the kind of key, rows per table; never a personal value.
erasure_salt = Table(
    "erasure_salt",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("salt", Text, nullable=False),
    Column("created_at", Text),
)

erasure_tombstone = Table(
    "erasure_tombstone",
    metadata,
    Column("hash", Text, primary_key=True),
    Column("kind", Text),  # email, phone, national_id or record (source|id)
    Column("audit_id", Text),
)

erasure_audit = Table(
    "erasure_audit",
    metadata,
    Column("audit_id", Text, primary_key=True),
    Column("erased_at", Text),
    Column("key_kind", Text),  # what the operator named: master_id, record, email or phone
    Column("masters", Integer),
    Column("records", Integer),
    Column("rows", Text),  # JSON {table: rows deleted or redacted}
    Column("files", Text),  # JSON {"redacted": n, "deleted": n} in the run folders
)

#: Replaced wholesale by every publish (the current state).
REPLACED_TABLES: tuple[str, ...] = (
    "master_customer",
    "customer_xref",
    "customer_record",
    "quarantine",
    "review_queue",
    "master_lineage",
    "match_edge",
)
#: Only this run's new rows are appended (the history).
APPENDED_TABLES: tuple[str, ...] = ("master_id_history", "match_model", "xref_snapshot")
PUBLISHED_TABLES: tuple[str, ...] = REPLACED_TABLES + APPENDED_TABLES

TABLES: dict[str, Table] = dict(metadata.tables)

# PostgreSQL's analysts' view (masked_view.py) depends on master_customer: dropping the tables
# (metadata.drop_all, as tests do) drops the view first instead of failing on the dependency.
event.listen(
    master_customer,
    "before_drop",
    DDL("DROP VIEW IF EXISTS master_customer_masked").execute_if(dialect="postgresql"),
)


def add_missing_columns(conn) -> list[str]:
    """Columns added to a table after a master was created (national_id, …) are added in place,
    nullable, so an existing SQLite or PostgreSQL master keeps working (create_all skips tables
    that exist). Returns the `table.column` names added."""
    from sqlalchemy import inspect

    inspector = inspect(conn)
    added = []
    for name, table in TABLES.items():
        if not inspector.has_table(name):
            continue
        have = {c["name"] for c in inspector.get_columns(name)}
        for column in table.columns:
            if column.name not in have:
                type_sql = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f'ALTER TABLE "{name}" ADD COLUMN "{column.name}" {type_sql}')
                added.append(f"{name}.{column.name}")
    return added


def columns_of(name: str) -> list[str]:
    return [c.name for c in TABLES[name].columns]
