"""`crmclean forget`: erase one person (GDPR art. 17 / CCPA deletion), and keep them erased.

A key — master id, `source:id` (or `source|id`), e-mail address or phone number — names a
person: the records it matches, the masters those records are in, and every record of those
masters. Their rows leave every table in one transaction (pipeline/store/erasure.py), the
files of the run folders that quote them are redacted (or deleted when they cannot be
rewritten), and salted hashes of their identifiers stay behind so that a later import of the
same person is quarantined (`erased_on_request`, `quarantine_erased` below) instead of
re-created. Nothing personal is printed, stored in the audit row, or left in a tombstone.
"""

from __future__ import annotations

import html
import json
import os
import re
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .errors import CrmcleanError
from .ids import parse_record_ref
from .schema import QUARANTINE_COLUMNS, empty_quarantine, record_key
from .store.erasure import (
    ERASED,
    IDENTIFIER_COLUMNS,
    MASTER_IDENTIFIER_COLUMNS,
    Erasure,
    Person,
    Tombstones,
    erase,
    normalized,
    record_identifiers,
    salted_hash,
)

ERASED_REASON_CODE = "erased_on_request"
KEY_KINDS = {"master_id": "master id", "record": "source:id", "email": "e-mail address", "phone": "phone number"}
_MASTER_ID = re.compile(r"^C\d+$", re.IGNORECASE)
_PHONE_TEXT = re.compile(r"^[\d\s()+.\-/]+$")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Key:
    """What the operator named: its kind and the normalized values to look for."""

    kind: str  # master_id, record, email or phone
    values: frozenset[str]
    digits: str = ""  # a phone number's digits as typed (matched against raw phone cells)


@dataclass
class FileAction:
    path: Path
    action: str  # "redact" or "delete"
    text: str | None = None  # the redacted text


@dataclass
class ForgetResult:
    key_kind: str
    person: Person
    erasure: Erasure
    files: list[FileAction]


# ------------------------------------------------------------------------------ the command


def forget(db_url: str, key_text: str, out_dir: Path, rules, dry_run: bool = False) -> ForgetResult:
    """Find the person `key_text` names and erase them (or, dry, count what would go).
    Raises CrmcleanError when nothing matches: nothing is changed then."""
    from .store import opened

    audit_id = "erase-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    with opened(db_url) as store, store.lock(audit_id):  # no run publishes meanwhile
        key = parse_key(key_text, _sources(store), rules)
        person = find_person(store, key)
        if person is None:
            raise CrmcleanError(f"no record or master matches that {KEY_KINDS[key.kind]}; nothing was erased")
        files = plan_files(Path(out_dir), person)
        summary = {
            "redacted": sum(f.action == "redact" for f in files),
            "deleted": sum(f.action == "delete" for f in files),
        }
        erasure = erase(store, person, audit_id, key.kind, summary, dry_run)
    if not dry_run:
        apply_files(files)
    return ForgetResult(key_kind=key.kind, person=person, erasure=erasure, files=files)


def format_result(result: ForgetResult, out_dir: Path) -> str:
    """What was (or would be) removed, by table and file: counts and paths, no personal value."""
    verb = "would erase" if result.erasure.dry_run else "erased"
    p = result.person
    lines = [
        f"{verb} {len(p.master_ids):,} master(s) and {len(p.record_keys):,} record(s) "
        f"found by {KEY_KINDS[result.key_kind]} (audit id {result.erasure.audit_id})"
    ]
    for table, n in sorted(result.erasure.rows.items()):
        if n:
            lines.append(f"  {table}: {n:,} {_DONE.get(table, 'row(s) deleted')}")
    for f in result.files:
        lines.append(f"  {f.path}: {'redacted' if f.action == 'redact' else 'deleted (not a text file)'}")
    if not result.files:
        lines.append(f"  no file under {Path(out_dir) / 'runs'} quotes them")
    if result.erasure.dry_run:
        lines.append("dry run: nothing was changed")
    else:
        lines.append(
            f"{len(p.identifiers):,} identifier(s) kept as salted hashes: a later import of this person "
            f"is quarantined ({ERASED_REASON_CODE})"
        )
    lines.append(
        "not reached: files written outside the run folders (review and export files, log files), "
        "database backups, and the source systems"
    )
    return "\n".join(lines)


#: what erasure does to the rows of the tables it does not simply delete from
_DONE = {
    "quarantine": "row(s) redacted (raw removed, kept for the run's row count)",
    "run_log": "error line(s) redacted",
    "master_state": "stored override list(s) rewritten",
    "master_id_history": "`erased` id event(s) added",
}


def _sources(store) -> set[str]:
    """Every source this master holds a row of (accepted or quarantined)."""
    return {
        s for table in ("customer_record", "quarantine") for s in store.read_columns(table, ["source"])["source"] if s
    }


# ------------------------------------------------------------------------------ the key


def parse_key(text: str, sources: set[str], rules) -> Key:
    """master id, `source:id` / `source|id` (of a source this master has), e-mail, or phone."""
    text = (text or "").strip()
    if _MASTER_ID.match(text):
        return Key("master_id", frozenset({text.upper()}))
    try:  # the one record-reference parser: source:id or source|id
        source, rid = parse_record_ref(text)
    except CrmcleanError:
        source, rid = "", ""
    if source in sources:
        return Key("record", frozenset({record_key(source, rid)}))
    if "@" in text:
        return Key("email", frozenset(_email_forms(text, rules)))
    digits = re.sub(r"\D", "", text)
    if _PHONE_TEXT.match(text) and len(digits) >= 6:
        return Key("phone", frozenset(_phone_forms(text, rules)), digits=digits)
    source = text.partition(":")[0] if ":" in text else text.partition("|")[0]
    if source and (":" in text or "|" in text):
        known = ", ".join(sorted(sources)) or "none"
        raise CrmcleanError(f"unknown source '{source}' in that source:id (this master's sources: {known})")
    raise CrmcleanError(
        "cannot tell what that key is: give a master id (C0000123), source:id, an e-mail address or a phone number"
    )


def _email_forms(text: str, rules) -> set[str]:
    from .config import section
    from .standardize.emails import email_config, standardize_email

    std, key, _ = standardize_email(text, email_config(section(rules, "standardize")["emails"]))
    return {v for v in (text.strip().lower(), std, key) if v}


def _phone_forms(text: str, rules) -> set[str]:
    """E.164 forms of the number: as typed with +, or read in every region this master's rules name."""
    from .config import section
    from .standardize.phones import standardize_phone

    regions = {section(rules, "standardize")["default_region"]}
    sources = section(rules, "sources")
    for entry in [sources.get("defaults") or {}, *(sources.get("sources") or {}).values()]:
        if (entry or {}).get("default_region"):
            regions.add(entry["default_region"])
    forms = set()
    for region in sorted(regions):
        e164, _, _ = standardize_phone(text, region=region, default_region=region)
        if e164:
            forms.add(e164)
    return forms


# ------------------------------------------------------------------------------ the person


def find_person(store, key: Key) -> Person | None:
    """The records and masters the key names, widened once: every record of a matched master."""
    xref = store.read_columns("customer_xref", ["record_key", "master_id"])
    rec_keys, master_ids = _direct_matches(store, key)
    master_ids |= set(xref.loc[xref["record_key"].isin(rec_keys), "master_id"])
    rec_keys |= set(xref.loc[xref["master_id"].isin(master_ids), "record_key"])
    if not rec_keys and not master_ids:
        return None
    records = store.read_records(sorted(rec_keys))
    masters = store.read_masters(sorted(master_ids))
    identifiers = set()
    for row in records.to_dict("records"):
        identifiers |= record_identifiers(row)
    for row in masters.to_dict("records"):
        identifiers |= {(k, v) for k, c in MASTER_IDENTIFIER_COLUMNS if (v := normalized(k, row.get(c)))}
    if key.kind in ("email", "phone", "record"):
        identifiers |= {(key.kind, v) for v in key.values if normalized(key.kind, v)}
    strong, weak = _terms(records, masters)
    return Person(
        record_keys=sorted(rec_keys),
        master_ids=sorted(master_ids),
        records=records,
        masters=masters,
        identifiers={(k, normalized(k, v) or v) for k, v in identifiers},
        strong_terms=strong,
        weak_terms=weak,
    )


def _direct_matches(store, key: Key) -> tuple[set[str], set[str]]:
    """(record keys, master ids) the key itself matches."""
    if key.kind == "master_id":
        masters = store.read_masters(list(key.values))
        return set(), set(masters["master_id"])
    if key.kind == "record":  # also a row that was only ever quarantined
        records = store.read_by_keys("customer_record", ("record_key",), list(key.values), ["record_key"])
        xref = store.read_by_keys("customer_xref", ("record_key",), list(key.values), ["record_key"])
        quarantined = store.read_columns("quarantine", ["source", "source_record_id"])
        q_keys = set(quarantined["source"].astype(str) + "|" + quarantined["source_record_id"].astype(str))
        return set(records["record_key"]) | set(xref["record_key"]) | (q_keys & key.values), set()
    std_cols = [c for kind, c in IDENTIFIER_COLUMNS if kind == key.kind]
    raw_cols = ["email"] if key.kind == "email" else ["mobile", "landline", "phone"]
    rec = store.read_columns("customer_record", ["record_key", *std_cols, *raw_cols])
    hit = pd.Series(False, index=rec.index)
    for col in std_cols:
        hit |= rec[col].isin(key.values)
    for col in raw_cols:
        raw = rec[col].astype(object).where(rec[col].notna(), "").astype(str)
        hit |= raw.str.strip().str.lower().isin(key.values)
        if key.digits:
            hit |= raw.str.replace(r"\D", "", regex=True) == key.digits
    m_cols = [c for kind, c in MASTER_IDENTIFIER_COLUMNS if kind == key.kind]
    masters = store.read_columns("master_customer", ["master_id", *m_cols])
    m_hit = pd.Series(False, index=masters.index)
    for col in m_cols:
        m_hit |= masters[col].astype(object).where(masters[col].notna(), "").astype(str).str.lower().isin(key.values)
    return set(rec.loc[hit, "record_key"]), set(masters.loc[m_hit, "master_id"])


#: customer_record columns whose values identify a person wherever they appear
_STRONG_RECORD = (
    "email",
    "email_std",
    "email_key",
    "mobile",
    "landline",
    "phone",
    "phone_std",
    "mobile_std",
    "landline_std",
    "national_id",
    "national_id_std",
    "full_name",
    "full_name_std",
    "address",
    "address_std",
)
_STRONG_MASTER = ("full_name", "email", "phone", "mobile", "landline", "national_id", "street")
#: redacted only in a file that also holds a strong value (a first name alone is not theirs)
_WEAK_RECORD = ("first_name", "last_name", "first_name_std", "last_name_std", "birth_date", "birth_date_std")
_WEAK_MASTER = ("first_name", "last_name", "birth_date")


def _terms(records: pd.DataFrame, masters: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The person's values as they may be written in a file or a quarantined row."""
    strong: set[str] = set()
    weak: set[str] = set()
    for frame, strong_cols, weak_cols in (
        (records, _STRONG_RECORD, _WEAK_RECORD),
        (masters, _STRONG_MASTER, _WEAK_MASTER),
    ):
        for row in frame.to_dict("records"):
            strong |= {str(row[c]).strip() for c in strong_cols if _present(row.get(c))}
            weak |= {str(row[c]).strip() for c in weak_cols if _present(row.get(c))}
            strong |= _name_forms(row)
            strong |= _json_identifiers(row.get("raw")) | _json_identifiers(row.get("extra"))
    strong |= {n for v in list(strong) for n in _national_digits(v)}
    strong = {t for t in strong if len(t) >= 4 or (_HAN.search(t) and len(t) >= 2)}
    weak = {t for t in weak if len(t) >= 2} - strong
    return _with_variants(strong), _with_variants(weak)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and bool(str(value).strip())


def _name_forms(row: dict) -> set[str]:
    forms = set()
    for first_col, last_col in (("first_name", "last_name"), ("first_name_std", "last_name_std")):
        first, last = row.get(first_col), row.get(last_col)
        if _present(first) and _present(last):
            first, last = str(first).strip(), str(last).strip()
            forms |= {f"{first} {last}", f"{last} {first}", f"{last}{first}", f"{last}, {first}"}
    return forms


def _json_identifiers(text: Any) -> set[str]:
    """Cells of the raw row and extra columns that hold an e-mail address or a phone-like number."""
    try:
        values = json.loads(text) if isinstance(text, str) and text.startswith("{") else {}
    except ValueError:
        return set()
    found = set()
    for value in values.values() if isinstance(values, dict) else []:
        value = str(value).strip() if value is not None else ""
        if "@" in value or len(re.sub(r"\D", "", value)) >= 7:
            found.add(value)
    return found


def _national_digits(value: str) -> list[str]:
    """An E.164 number's national digits (how a report or a spreadsheet may show it)."""
    if not re.fullmatch(r"\+\d{7,15}", value):
        return []
    try:
        import phonenumbers

        return [str(phonenumbers.parse(value, None).national_number)]
    except Exception:  # noqa: BLE001 - not a number phonenumbers reads: nothing more to add
        return []


def _with_variants(terms: Iterable[str]) -> list[str]:
    """Each term as written in HTML and in JSON (escaped or not), longest first."""
    out = set()
    for t in terms:
        out |= {
            t,
            html.escape(t),
            html.escape(t, quote=False),
            json.dumps(t)[1:-1],
            json.dumps(t, ensure_ascii=False)[1:-1],
        }
    return sorted(out, key=lambda s: (-len(s), s))


# ------------------------------------------------------------------------------ run folders


def _pattern(terms: list[str]) -> re.Pattern | None:
    """One alternation; a term that starts or ends with a letter or digit must not sit inside a longer word."""
    if not terms:
        return None
    parts = []
    for t in terms:
        head = r"(?<![A-Za-z0-9_])" if t[0].isascii() and t[0].isalnum() else ""
        tail = r"(?![A-Za-z0-9_])" if t[-1].isascii() and t[-1].isalnum() else ""
        parts.append(f"{head}{re.escape(t)}{tail}")
    return re.compile("|".join(parts))


def plan_files(out_dir: Path, person: Person) -> list[FileAction]:
    """The files under <out>/runs that quote the person: text files get their values replaced
    by [erased]; files that cannot be rewritten as text (workbooks, archives) are deleted."""
    runs = out_dir / "runs"
    strong, weak = _pattern(person.strong_terms), _pattern(person.weak_terms)
    if strong is None or not runs.is_dir():
        return []
    actions = []
    for path in sorted(p for p in runs.rglob("*") if p.is_file()):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            if _binary_holds(path, data, person.strong_terms):
                actions.append(FileAction(path, "delete"))
            continue
        if strong.search(text):
            redacted = strong.sub(ERASED, text)
            actions.append(FileAction(path, "redact", weak.sub(ERASED, redacted) if weak else redacted))
    return actions


def _binary_holds(path: Path, data: bytes, terms: list[str]) -> bool:
    blobs = [data]
    if zipfile.is_zipfile(path):  # xlsx and other zipped formats: look inside
        with zipfile.ZipFile(path) as archive:
            blobs = [archive.read(name) for name in archive.namelist()]
    encoded = [t.encode("utf-8") for t in terms]
    return any(term in blob for blob in blobs for term in encoded)


def apply_files(actions: list[FileAction]) -> None:
    """Rewrite (through a temporary file, then rename) or delete each planned file."""
    for action in actions:
        if action.action == "delete":
            action.path.unlink(missing_ok=True)
            continue
        tmp = action.path.with_name(action.path.name + ".erasing")
        tmp.write_text(action.text or "", encoding="utf-8")
        os.replace(tmp, action.path)


# ------------------------------------------------------------------------------ the run's check


def quarantine_erased(std: pd.DataFrame, tombstones: Tombstones | None, rules) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Standardized records carrying an erased person's identifier (their source:id, e-mail,
    phone or national id, compared as salted hashes) → quarantine `erased_on_request`, without
    their raw values: the row is accounted for, the person is not re-created."""
    if tombstones is None or std.empty:
        return std, empty_quarantine()
    hit = pd.Series(False, index=std.index)
    for kind, column in (("record", "record_key"), *IDENTIFIER_COLUMNS):
        if column in std.columns:
            hit |= _tombstoned(std[column], kind, tombstones)
    if not hit.any():
        return std, empty_quarantine()
    rejected = std[hit]
    reason = ((rules.sources or {}).get("erasure") or {}).get("reason") or _default_reason()
    quarantine = pd.DataFrame(
        {
            "source": rejected.get("source"),
            "source_record_id": rejected.get("source_record_id"),
            "locator": rejected.get("locator"),
            "stage": "standardize",
            "reason_code": ERASED_REASON_CODE,
            "reason": reason,
            "raw": None,
        },
        columns=list(QUARANTINE_COLUMNS),
    ).reset_index(drop=True)
    return std[~hit], quarantine


_RAW_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_RAW_PHONE_RE = re.compile(r"\+?\d[\d ()./-]{5,}\d")


def erase_quarantined(quarantine: pd.DataFrame, tombstones: Tombstones | None, rules) -> pd.DataFrame:
    """Rows ingest itself quarantined (a broken line, a row too long) never reach standardize:
    one whose source:id, or an e-mail or phone in its raw text, belongs to an erased person
    keeps its place but becomes `erased_on_request`, without its raw text. The raw text is read
    as best it can be (e-mail addresses, and numbers in the default region or with +CC)."""
    if tombstones is None or quarantine.empty:
        return quarantine
    hit = quarantine.apply(lambda row: _erased_row(row, tombstones), axis=1).astype(bool)
    if not hit.any():
        return quarantine
    out = quarantine.copy()
    out.loc[hit, "reason_code"] = ERASED_REASON_CODE
    out.loc[hit, "reason"] = ((rules.sources or {}).get("erasure") or {}).get("reason") or _default_reason()
    out.loc[hit, "raw"] = None
    return out


def _erased_row(row: pd.Series, tombstones: Tombstones) -> bool:
    from .standardize.phones import parse_one

    found: set[tuple[str, str]] = set()
    if isinstance(row.get("source"), str) and isinstance(row.get("source_record_id"), str):
        found.add(("record", record_key(row["source"], row["source_record_id"])))
    raw = row.get("raw") if isinstance(row.get("raw"), str) else ""
    found |= {("email", n) for e in _RAW_EMAIL_RE.findall(raw) if (n := normalized("email", e))}
    for text in _RAW_PHONE_RE.findall(raw):
        e164 = parse_one(text.strip(), None)[0]
        if e164:
            found.add(("phone", e164))
    return any(salted_hash(tombstones.salt, kind, value) in tombstones.hashes for kind, value in found)


def _tombstoned(values: pd.Series, kind: str, tombstones: Tombstones) -> pd.Series:
    """Whether each value's salted hash is a tombstone (each distinct value hashed once)."""
    distinct = {v for v in values.dropna().unique()}
    erased = {
        v for v in distinct if (n := normalized(kind, v)) and salted_hash(tombstones.salt, kind, n) in tombstones.hashes
    }
    return values.isin(erased) if erased else pd.Series(False, index=values.index)


def _default_reason() -> str:
    from .config_models import ErasureSettings

    return ErasureSettings().reason
