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

from .errors import CrmcleanError
from .ids import ref_to_key
from .safe_export import unneutralize, write_table

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


def _open_pairs(store) -> pd.DataFrame:
    """Open review_queue rows (status NULL or open) that nobody decided yet, in either order."""
    queue = store.read_columns("review_queue", [*QUEUE_FIELDS, "status"])
    queue = queue[queue["status"].isna() | (queue["status"] == "open")].drop(columns=["status"])
    done = store.read_columns("review_decision", ["record_key_l", "record_key_r"])
    decided = {(a, b) for a, b in zip(done["record_key_l"], done["record_key_r"])}
    decided |= {(b, a) for a, b in decided}
    if decided and len(queue):
        queue = queue[[(a, b) not in decided for a, b in zip(queue["record_key_l"], queue["record_key_r"])]]
    return queue.reset_index(drop=True)


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
    side_by_side = [
        c
        for f in fields
        for c in (f"{f}_l", f"{f}_r")
        if f in ("source", "source_record_id") or sheet[[f"{f}_l", f"{f}_r"]].notna().any().any()
    ]
    ordered = [
        "decision",
        "decided_by",
        "match_probability",
        "match_weight",
        *side_by_side,
        "evidence",
        "record_key_l",
        "record_key_r",
    ]
    return sheet[[c for c in ordered if c in sheet.columns]].reset_index(drop=True)


def export_review(db_url: str, path: Path) -> int:
    """Write the open review queue (pairs nobody decided yet) to `path` (.csv/.xlsx); → rows."""
    from .store import opened

    path = Path(path)
    with opened(db_url) as store:
        queue = _open_pairs(store)
        keys = sorted(set(queue["record_key_l"]) | set(queue["record_key_r"]))
        records = store.read_by_keys("customer_record", ("record_key",), keys, ["record_key", *RECORD_FIELDS])
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
        keys = {}
        for column, key in (("record_key_l", left), ("record_key_r", right)):
            if not key:
                raise CrmcleanError(f"{path}: row {line}, column {column!r} is empty")
            try:  # source|id as exported, or source:id as printed elsewhere
                keys[column] = ref_to_key(key)
            except CrmcleanError as exc:
                raise CrmcleanError(f"{path}: row {line}, column {column!r}: {exc}") from None
        left, right = keys["record_key_l"], keys["record_key_r"]
        if left == right:
            raise CrmcleanError(f"{path}: row {line}: record_key_l and record_key_r are the same record")
        by = unneutralize(row.get("decided_by")).strip() if "decided_by" in row else ""
        out.append({"record_key_l": left, "record_key_r": right, "decision": decision, "decided_by": by})
    return pd.DataFrame(out, columns=["record_key_l", "record_key_r", "decision", "decided_by"])


def apply_review(db_url: str, path: Path) -> int:
    """Insert the file's decisions into `review_decision` (one transaction); → rows inserted.

    The table keeps every decision (an audit trail); a row repeating a pair's latest decision is
    skipped so applying the same file twice changes nothing. A database crmclean never wrote
    is refused (the decisions would name records no master holds).
    """
    from .store import opened

    path = Path(path)
    decisions = parse_decisions(read_review_file(path), path)
    if decisions.empty:
        return 0
    decisions = decisions.drop_duplicates(["record_key_l", "record_key_r"], keep="last")
    try:
        user = getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        user = "unknown"
    decisions["decided_by"] = [by or user for by in decisions["decided_by"]]
    decisions["decided_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    decisions["origin"] = f"review:{path.name}"
    with opened(db_url) as store:
        return store.add_review_decisions(decisions, skip_repeated=True)
