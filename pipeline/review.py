"""Clerical review: export the uncertain pairs to a sheet a person fills in, read the decisions
back into `review_decision`, which every later run obeys (match → must_link, no_match →
cannot_link; see crmclean.incremental.merge_overrides).

The sheet says why each pair is held (`why`: the hard constraint, or the uncertainty), shows both
records side by side and the evidence in words (field, both values, agreement level, weight).
Personal data is masked like the report unless `show_pii`. XLSX cells are typed: probabilities
and weights are numbers, everything else a string cell (never a formula, so no `'` is needed and
phones show as written). CSV text cells a spreadsheet would run get a leading `'`
(crmclean.safe_export); `apply` removes it again. The pair's records are named `source:id` (the
form `crmclean explain` takes); `apply` also reads sheets written with the stored `source|id`.
"""

from __future__ import annotations

import getpass
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import CrmcleanError
from .ids import key_to_ref, ref_to_key
from .masking import mask_frame, masker_for
from .safe_export import neutralize, unneutralize

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
# the record values the evidence line of a comparison feature shows (an extra feature: <name>_std)
FEATURE_FIELDS = {
    "first_name": ("first_name_std",),
    "last_name": ("last_name_std",),
    "birth_date": ("birth_date_std",),
    "email": ("email_std",),
    "phone": ("mobile_std", "landline_std"),
    "address": ("address_std", "postal_code_std", "city_std"),
    "suffix": ("name_suffix_std",),
    "gender": ("gender_std",),
    "national_id": ("national_id_std",),
}
QUEUE_FIELDS = ("record_key_l", "record_key_r", "match_probability", "match_weight", "evidence", "review_reason")
NUMBER_COLUMNS = ("match_probability", "match_weight")


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


def _evidence_text(evidence: Any, left: dict, right: dict, show_pii: bool) -> str:
    """One line per compared field, strongest first: `email: exact, +6.49 (a@x.cn | a@x.cn)`."""
    try:
        items = json.loads(evidence) if isinstance(evidence, str) and evidence else {}
    except ValueError:
        return str(evidence)
    if not isinstance(items, dict):
        return str(evidence)
    lines = []
    for feature, item in items.items():
        item = item if isinstance(item, dict) else {"level": item}
        weight = item.get("weight")
        level = str(item.get("level", "?"))
        if level == "null":
            continue  # nothing to compare: one side is empty
        shown = f"{level}, {float(weight):+.2f}" if isinstance(weight, (int, float)) else level
        values = " | ".join(_feature_value(side, feature, show_pii) for side in (left, right))
        lines.append(
            (abs(float(weight)) if isinstance(weight, (int, float)) else 0.0, f"{feature}: {shown} ({values})")
        )
    return "\n".join(text for _, text in sorted(lines, key=lambda x: -x[0]))


def _feature_value(record: dict, feature: str, show_pii: bool) -> str:
    columns = FEATURE_FIELDS.get(feature, (f"{feature}_std",))
    values = []
    for column in columns:
        value = record.get(column)
        if value is None or value != value or value == "":
            continue
        mask = None if show_pii else masker_for(column)  # the report's policy: a city is not personal
        values.append(str(mask(value) if mask else value))
    return ", ".join(values) or "∅"


def build_review_sheet(queue: pd.DataFrame, records: pd.DataFrame, show_pii: bool = False) -> pd.DataFrame:
    """Queue rows with both records side by side (`<field>_l`, `<field>_r`), why each is held
    and the evidence in words, an empty `decision` column first, most likely matches first."""
    by_key = records.drop_duplicates("record_key").set_index("record_key").to_dict("index")
    shown = [c for c in records.columns if c in RECORD_FIELDS]
    left = records[["record_key", *shown]].rename(columns={c: f"{c}_l" for c in shown})
    right = records[["record_key", *shown]].rename(columns={c: f"{c}_r" for c in shown})
    sheet = queue.merge(left.rename(columns={"record_key": "record_key_l"}), on="record_key_l", how="left")
    sheet = sheet.merge(right.rename(columns={"record_key": "record_key_r"}), on="record_key_r", how="left")
    for column in NUMBER_COLUMNS:
        if column in sheet:
            sheet[column] = pd.to_numeric(sheet[column], errors="coerce").round(6)
    if "match_probability" in sheet:
        sheet = sheet.sort_values("match_probability", ascending=False, kind="stable")
    sheet["why"] = _reasons(sheet)
    sheet["evidence"] = [
        _evidence_text(e, by_key.get(a, {}), by_key.get(b, {}), show_pii)
        for e, a, b in zip(sheet.get("evidence", [None] * len(sheet)), sheet["record_key_l"], sheet["record_key_r"])
    ]
    if not show_pii:
        sheet = mask_frame(sheet, [c for c in sheet.columns if c.endswith(("_l", "_r")) and "record_key" not in c])
    for column in ("record_key_l", "record_key_r"):  # shown as everywhere else; apply reads both forms
        sheet[column] = sheet[column].map(key_to_ref)
    sheet.insert(0, "decision", "")
    sheet.insert(1, "decided_by", "")
    side_by_side = [
        c
        for f in shown
        for c in (f"{f}_l", f"{f}_r")
        if f in ("source", "source_record_id") or sheet[[f"{f}_l", f"{f}_r"]].notna().any().any()
    ]
    ordered = [
        "decision",
        "decided_by",
        *NUMBER_COLUMNS,
        "why",
        *side_by_side,
        "evidence",
        "record_key_l",
        "record_key_r",
    ]
    return sheet[[c for c in ordered if c in sheet.columns]].reset_index(drop=True)


def _reasons(sheet: pd.DataFrame) -> list[str]:
    """The stored `review_reason`, else (a queue written before it existed) from the probability."""
    from .link.decisions import review_reasons

    prob = sheet["match_probability"].tolist() if "match_probability" in sheet else [None] * len(sheet)
    worked_out = review_reasons(prob, [""] * len(sheet))
    stored = sheet["review_reason"].tolist() if "review_reason" in sheet else [None] * len(sheet)
    return [s if isinstance(s, str) and s else w for s, w in zip(stored, worked_out)]


def export_review(db_url: str, path: Path, show_pii: bool = False) -> int:
    """Write the open review queue (pairs nobody decided yet) to `path` (.csv/.xlsx); → rows.
    Personal data is masked unless `show_pii`."""
    from .store import opened
    from .store.tables import columns_of

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".txt", ".xlsx", ".xlsm"):
        raise CrmcleanError(f"{path}: unsupported export format {suffix or '(none)'}; use .csv or .xlsx")
    stored = set(columns_of("customer_record"))
    wanted = [*RECORD_FIELDS, *(c for cols in FEATURE_FIELDS.values() for c in cols)]
    with opened(db_url) as store:
        queue = _open_pairs(store)
        keys = sorted(set(queue["record_key_l"]) | set(queue["record_key_r"]))
        columns = ["record_key", *dict.fromkeys(c for c in wanted if c in stored)]
        records = store.read_by_keys("customer_record", ("record_key",), keys, columns)
    sheet = build_review_sheet(queue, records, show_pii)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".xlsx", ".xlsm"):
        _write_xlsx(sheet, path)
    else:
        _csv_safe(sheet).to_csv(path, index=False, encoding="utf-8-sig")
    return int(len(queue))


def _csv_safe(sheet: pd.DataFrame) -> pd.DataFrame:
    """Text cells neutralised against formula injection; the numbers stay numbers."""
    out = sheet.copy()
    for column in out.columns:
        if column not in NUMBER_COLUMNS:
            out[column] = out[column].map(neutralize)
    return out


def _write_xlsx(sheet: pd.DataFrame, path: Path) -> None:
    """Typed cells: numbers as numbers, text as string cells (never formulas), a drop-down of
    the decisions, wrapped evidence, the header frozen and filterable."""
    import xlsxwriter

    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    with xlsxwriter.Workbook(str(path), options) as book:
        ws = book.add_worksheet("review")
        bold, wrap = book.add_format({"bold": True}), book.add_format({"text_wrap": True, "valign": "top"})
        number = book.add_format({"num_format": "0.0000", "valign": "top"})
        top = book.add_format({"valign": "top"})
        for c, name in enumerate(sheet.columns):
            ws.write_string(0, c, str(name), bold)
            width = 60 if name in ("evidence", "why") else min(max(len(str(name)) + 2, 12), 40)
            ws.set_column(c, c, width, wrap if name in ("evidence", "why") else None)
        for r, row in enumerate(sheet.astype(object).itertuples(index=False, name=None), start=1):
            for c, (name, value) in enumerate(zip(sheet.columns, row)):
                if value is None or (isinstance(value, float) and value != value) or value == "":
                    continue
                if name in NUMBER_COLUMNS:
                    ws.write_number(r, c, float(value), number)
                else:
                    ws.write_string(r, c, str(value), wrap if name in ("evidence", "why") else top)
        if len(sheet):
            c = list(sheet.columns).index("decision")
            ws.data_validation(
                1, c, len(sheet), c, {"validate": "list", "source": list(DECISIONS), "ignore_blank": True}
            )
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(sheet), 1), len(sheet.columns) - 1)


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
