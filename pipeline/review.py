"""Clerical review: export the uncertain pairs to a sheet a person fills in, read the decisions
back into `review_decision`, which every later run obeys (match → must_link, no_match →
cannot_link; see crmclean.incremental.merge_overrides).

The export is a work file, so values are NOT masked — but every cell is neutralised against
formula injection (crmclean.safe_export).
"""

from __future__ import annotations

import getpass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from .errors import CrmcleanError
from .store.tables import TABLES
from .safe_export import unneutralize, write_table
from .masking import mask_url

DECISIONS = ("match", "no_match")
# customer_record fields shown side by side, in this order (those present are used).
RECORD_FIELDS = (
    "source",
    "source_record_id",
    "full_name_std",
    "email_std",
    "phone_std",
    "birth_date_std",
    "address_std",
    "city_std",
    "state_std",
    "postal_code_std",
    "country_std",
    "company_std",
)
QUEUE_FIELDS = ("record_key_l", "record_key_r", "match_probability", "match_weight", "evidence")
_IN_CHUNK = 500


def _engine(db_url: str) -> sa.Engine:
    try:
        return sa.create_engine(db_url)
    except Exception as exc:
        raise CrmcleanError(f"{mask_url(db_url)}: cannot open the database ({mask_url(exc)})") from None


def _read_records(conn, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """The two sides' records, fetched by key in chunks (never the whole table)."""
    table = sa.Table("customer_record", sa.MetaData(), *(sa.Column(c) for c in ["record_key", *columns]))
    frames = []
    for i in range(0, len(keys), _IN_CHUNK):
        chunk = keys[i : i + _IN_CHUNK]
        stmt = sa.select(*table.c).where(table.c.record_key.in_(chunk))
        frames.append(pd.DataFrame(conn.execute(stmt).fetchall(), columns=["record_key", *columns]))
    if not frames:
        return pd.DataFrame(columns=["record_key", *columns])
    return pd.concat(frames, ignore_index=True).drop_duplicates("record_key", keep="last")


def _decided_pairs(conn, inspector) -> set[tuple[str, str]]:
    if not inspector.has_table("review_decision"):
        return set()
    rows = conn.execute(sa.text("SELECT record_key_l, record_key_r FROM review_decision")).fetchall()
    return {(a, b) for a, b in rows} | {(b, a) for a, b in rows}


def build_review_sheet(queue: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Queue rows with both records side by side (`<field>_l`, `<field>_r`) and an empty
    `decision` column first, most likely matches first."""
    fields = [c for c in records.columns if c != "record_key"]
    left = records.rename(columns={c: f"{c}_l" for c in fields}).rename(columns={"record_key": "record_key_l"})
    right = records.rename(columns={c: f"{c}_r" for c in fields}).rename(columns={"record_key": "record_key_r"})
    sheet = queue.merge(left, on="record_key_l", how="left").merge(right, on="record_key_r", how="left")
    if "match_probability" in sheet:
        sheet = sheet.sort_values("match_probability", ascending=False, kind="stable")
    sheet.insert(0, "decision", "")
    sheet.insert(1, "decided_by", "")
    for column in ("match_probability", "match_weight"):
        if column in sheet:
            sheet[column] = pd.to_numeric(sheet[column], errors="coerce").round(4)
    side_by_side = [c for f in fields for c in (f"{f}_l", f"{f}_r")
                    if f in ("source", "source_record_id") or sheet[[f"{f}_l", f"{f}_r"]].notna().any().any()]
    ordered = ["decision", "decided_by", "match_probability", "match_weight", *side_by_side,
               "evidence", "record_key_l", "record_key_r"]
    return sheet[[c for c in ordered if c in sheet.columns]].reset_index(drop=True)


def export_review(db_url: str, path: Path) -> int:
    """Write the open review queue (pairs nobody decided yet) to `path` (.csv/.xlsx); → rows."""
    path = Path(path)
    engine = _engine(db_url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table("review_queue"):
                raise CrmcleanError(f"{mask_url(db_url)}: no review_queue table — run `crmclean run` first")
            queue_cols = {c["name"] for c in inspector.get_columns("review_queue")}
            missing = {"record_key_l", "record_key_r"} - queue_cols
            if missing:
                raise CrmcleanError(f"{mask_url(db_url)}: review_queue has no column {sorted(missing)[0]}")
            wanted = [c for c in QUEUE_FIELDS if c in queue_cols]
            where = " WHERE status IS NULL OR status = 'open'" if "status" in queue_cols else ""
            queue = pd.read_sql(sa.text(f"SELECT {', '.join(wanted)} FROM review_queue{where}"), conn)
            decided = _decided_pairs(conn, inspector)
            if decided and len(queue):
                open_rows = [(a, b) not in decided for a, b in zip(queue["record_key_l"], queue["record_key_r"])]
                queue = queue[open_rows]
            record_cols: list[str] = []
            if inspector.has_table("customer_record"):
                have = {c["name"] for c in inspector.get_columns("customer_record")}
                record_cols = [c for c in RECORD_FIELDS if c in have]
            keys = sorted(set(queue["record_key_l"]) | set(queue["record_key_r"]))
            records = _read_records(conn, keys, record_cols) if record_cols else pd.DataFrame({"record_key": keys})
    except sa.exc.SQLAlchemyError as exc:
        reason = f"{exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
        raise CrmcleanError(f"{mask_url(db_url)}: cannot read the review queue ({reason})") from None
    finally:
        engine.dispose()
    write_table(build_review_sheet(queue, records), path, choices={"decision": list(DECISIONS)})
    return int(len(queue))


def read_review_file(path: Path) -> pd.DataFrame:
    """The filled-in sheet as text; CrmcleanError when unreadable or missing columns."""
    path = Path(path)
    if not path.is_file():
        raise CrmcleanError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        else:
            raise CrmcleanError(f"{path}: unsupported review file format {suffix or '(none)'}; use .csv or .xlsx")
    except CrmcleanError:
        raise
    except Exception as exc:
        raise CrmcleanError(f"{path}: cannot read the review file ({exc.__class__.__name__}: {exc})") from None
    frame.columns = [unneutralize(str(c)).strip() for c in frame.columns]
    for column in ("decision", "record_key_l", "record_key_r"):
        if column not in frame.columns:
            raise CrmcleanError(
                f"{path}: column {column!r} is missing (export a fresh file with `crmclean review export`)"
            )
    return frame


def parse_decisions(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Validated decisions (empty = undecided, skipped); a bad value names file, row and column.

    Rows are numbered as a spreadsheet shows them (header = row 1).
    """
    out = []
    for i, row in enumerate(frame.to_dict("records")):
        line = i + 2
        raw = str(row.get("decision") or "").strip()
        if not raw:
            continue
        decision = unneutralize(raw).strip().lower().replace("-", "_").replace(" ", "_")
        if decision not in DECISIONS:
            raise CrmcleanError(
                f"{path}: row {line}, column 'decision': {raw!r} is not one of match, no_match (or empty)"
            )
        left, right = unneutralize(row.get("record_key_l")).strip(), unneutralize(row.get("record_key_r")).strip()
        for column, key in (("record_key_l", left), ("record_key_r", right)):
            if not key:
                raise CrmcleanError(f"{path}: row {line}, column {column!r} is empty")
        if left == right:
            raise CrmcleanError(f"{path}: row {line}: record_key_l and record_key_r are the same record")
        by = unneutralize(row.get("decided_by")).strip() if "decided_by" in row else ""
        out.append({"record_key_l": left, "record_key_r": right, "decision": decision, "decided_by": by})
    return pd.DataFrame(out, columns=["record_key_l", "record_key_r", "decision", "decided_by"])


def apply_review(db_url: str, path: Path) -> int:
    """Insert the file's decisions into `review_decision` (one transaction); → rows inserted.

    The table keeps every decision (an audit trail); a row repeating a pair's latest decision is
    skipped so applying the same file twice changes nothing.
    """
    path = Path(path)
    decisions = parse_decisions(read_review_file(path), path)
    if decisions.empty:
        return 0
    decisions = decisions.drop_duplicates(["record_key_l", "record_key_r"], keep="last")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        user = getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        user = "unknown"
    engine = _engine(db_url)
    try:
        with engine.begin() as conn:
            table = TABLES["review_decision"]  # the store's own definition
            table.create(conn, checkfirst=True)
            latest: dict[tuple[str, str], str] = {}
            existing = conn.execute(
                sa.select(table.c.record_key_l, table.c.record_key_r, table.c.decision).order_by(table.c.decided_at)
            ).fetchall()
            for a, b, d in existing:
                latest[(a, b)] = latest[(b, a)] = d
            rows = [
                {
                    "record_key_l": r.record_key_l,
                    "record_key_r": r.record_key_r,
                    "decision": r.decision,
                    "decided_by": r.decided_by or user,
                    "decided_at": now,
                    "origin": f"review:{path.name}",
                }
                for r in decisions.itertuples(index=False)
                if latest.get((r.record_key_l, r.record_key_r)) != r.decision
            ]
            if rows:
                conn.execute(table.insert(), rows)
    except sa.exc.SQLAlchemyError as exc:
        reason = f"{exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
        raise CrmcleanError(f"{mask_url(db_url)}: cannot store review decisions ({reason})") from None
    finally:
        engine.dispose()
    return len(rows)
