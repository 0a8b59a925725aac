"""Synthetic legacy-CRM exports with known truth, for demos, tests and benchmarks.

`generate(customers, seed, out_dir)` writes the three exports that crmclean is built for
(GBK Chinese-header CSV, UTF-8-BOM US CSV, two-sheet Excel workbook with numeric phones and date
cells) plus `truth/truth.csv`, the true entity of every written row. Truth lives in a subfolder so
`crmclean run <out_dir>` (non-recursive discovery) never ingests it.

`profile=` picks data shaped unlike those exports (few fields, split birth dates, historical
records, business contacts ...; see `profiles.PROFILES`), for measuring the matcher on shapes it
was not built on. `profile="crm"` (the default) is the three-CRM output above, unchanged.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import numpy as np

from ..errors import CrmcleanError
from .entities import SYSTEMS, Entities, build_entities
from .profiles import PROFILES, write_profile
from .render import (
    CN_HEADERS,
    NAME_RATES,
    RATES,
    SALES_HEADERS,
    WEB_HEADERS,
    Noise,
    Record,
    cn_row,
    sales_row,
    web_row,
)

__all__ = ["generate", "build_entities", "SYSTEMS", "TRUTH_COLUMNS", "PROFILE_NAMES"]

TRUTH_COLUMNS = ["source", "source_record_id", "entity_id", "scenario", "group_id"]
JUNK_SHARE = 0.005
FORMULA_NAME = '=HYPERLINK("http://x","y")'
SCRIPT_NAME = "<script>alert(1)</script>"
# Junk rows whose ID cannot be trusted: truth names them by location, as ingest does.
LOCATED_JUNK = ("blank", "colcount")


# crm profiles: the three CRM exports; crm_names turns the name noise up (render.NAME_RATES)
CRM_PROFILES = ("crm", "crm_names")
PROFILE_NAMES = (*CRM_PROFILES, *PROFILES)


def generate(customers: int, seed: int, out_dir: Path, profile: str = "crm", systems: int = 3) -> dict:
    """Write the exports for `customers` true customers; same seed, same bytes. Prints nothing.

    Returns {"files": [paths of the exports], "truth": path of truth.csv, "rows": data rows written}.
    `systems` (1-3) applies to the crm profile only.
    """
    if int(customers) < 1:
        raise CrmcleanError(f"--customers must be at least 1 (got {customers})")
    if profile not in PROFILE_NAMES:
        raise CrmcleanError(f"unknown profile '{profile}' (choose one of: {', '.join(PROFILE_NAMES)})")
    systems = max(1, min(3, int(systems)))
    out_dir = Path(out_dir)
    try:
        if profile not in CRM_PROFILES:
            return write_profile(profile, int(customers), int(seed), out_dir)
        return _generate(int(customers), int(seed), out_dir, systems, profile)
    except OSError as exc:  # unwritable folder, disk full ...: one clear line, no traceback
        raise CrmcleanError(f"{exc.filename or out_dir}: cannot write demo data ({exc.strerror or exc})") from None


# Set just before forking the workbook writer, so the child inherits it instead of unpickling it.
_FORK_STATE: dict = {}
PARALLEL_FROM = 20000  # customers; below this a second process costs more than it saves


def _generate(customers: int, seed: int, out_dir: Path, systems: int, profile: str = "crm") -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    ents = build_entities(customers, seed, systems, profile=profile)
    rates = NAME_RATES if profile == "crm_names" else RATES
    rng = np.random.default_rng(seed + 1)
    records = _records(ents, rng, systems)
    hostile = _pick_hostile(ents, records, rng)
    writers = (_write_cn, _write_web, _write_sales)
    # Each system has its own noise and RNG stream: the output does not depend on whether the
    # workbook is written in a second process (big runs) or in line (small runs, no fork).
    jobs = [(writers[s], out_dir, records[s], seed + 10 + s, rates) for s in range(systems)]
    results: list = [None] * systems
    pool = _fork_pool() if systems == 3 and customers >= PARALLEL_FROM else None
    pending = None
    if pool is not None:
        _FORK_STATE.update(ents=ents, hostile=hostile, job=jobs[2])
        try:
            pending = pool.apply_async(_run_forked_job)
        finally:
            _FORK_STATE.clear()
    try:
        for s, job in enumerate(jobs):
            if pending is not None and s == 2:
                results[s] = pending.get()
            else:
                results[s] = _run_job(job, ents, hostile)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    truth_path = out_dir / "truth" / "truth.csv"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    with truth_path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRUTH_COLUMNS)
        for _, _, truth in results:
            w.writerows(truth)
    return {"files": [str(p) for p, _, _ in results], "truth": str(truth_path), "rows": sum(n for _, n, _ in results)}


def _run_job(job, ents: Entities, hostile: dict[int, str]):
    writer, out_dir, recs, stream_seed, rates = job
    truth: list[tuple] = []
    noise = Noise(stream_seed, rates)
    path, n = writer(out_dir, ents, recs, noise, hostile, truth, np.random.default_rng(stream_seed))
    return path, n, truth


def _run_forked_job():
    return _run_job(_FORK_STATE["job"], _FORK_STATE["ents"], _FORK_STATE["hostile"])


def _fork_pool():
    """A one-worker fork pool (Linux), or None where fork is unavailable or unsafe."""
    import multiprocessing
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return _LazyForkPool(multiprocessing.get_context("fork"))
    except ValueError:
        return None


class _LazyForkPool:
    """Forks on apply_async, i.e. after _FORK_STATE is filled, so the child sees the entities."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.pool = None

    def apply_async(self, fn):
        self.pool = self.ctx.Pool(1)
        return self.pool.apply_async(fn)

    def close(self):
        if self.pool is not None:
            self.pool.close()

    def join(self):
        if self.pool is not None:
            self.pool.join()


def _records(ents: Entities, rng: np.random.Generator, n_systems: int) -> list[list[Record]]:
    """Per system: one record per member plus duplicates, shuffled; moved customers' oldest system keeps the old address."""
    member = ents.systems
    first_sys = np.argmax(member, axis=1)
    multi = member.sum(axis=1) > 1
    moved = np.array([a is not None for a in ents.old_addr])
    out = []
    for s in range(n_systems):
        es = np.flatnonzero(member[:, s])
        es = np.concatenate([es, np.flatnonzero(ents.dups[:, s] > 0)])
        es = es[rng.permutation(len(es))]
        old = moved[es] & multi[es] & (first_sys[es] == s)
        out.append([Record(int(e), s, bool(o)) for e, o in zip(es, old)])
    return out


def _pick_hostile(ents: Entities, records: list[list[Record]], rng) -> dict[int, str]:
    """A few real customers whose name is a spreadsheet formula or a script tag (one record each)."""
    hostile: dict[int, str] = {}
    per_kind = max(1, ents.n // 10000)
    for s, name in ((1, FORMULA_NAME), (0, SCRIPT_NAME)):
        if s >= len(records):
            continue
        cands = [
            r.e
            for r in records[s]
            if ents.scenario[r.e] == "normal"
            and ents.systems[r.e].sum() == 1
            and ents.dups[r.e].sum() == 0
            and r.e not in hostile
        ]
        for e in cands[:per_kind]:
            hostile[e] = name
            ents.scenario[e] = "hostile_text"
    return hostile


def _junk_kinds(n_rows: int, kinds: list[str]) -> list[str]:
    count = max(len(kinds), int(round(n_rows * JUNK_SHARE)))
    return [kinds[i % len(kinds)] for i in range(count)]


def _interleave(n_real: int, junk: list[str], rng) -> list[int | str]:
    """Positions of real records (ints) and junk markers (str), junk spread at random."""
    seq: list[int | str] = list(range(n_real))
    # never after the last real row: a trailing blank sheet row is not a row of the export
    slots = np.sort(rng.integers(0, max(n_real, 1), len(junk)))[::-1]
    for pos, kind in zip(slots, junk):
        seq.insert(int(pos), kind)
    return seq


def _truth_row(truth, source, rid, ents: Entities | None, e: int | None):
    if e is None:
        truth.append((source, rid, "", "junk", ""))
    else:
        assert ents is not None, "a customer's row needs the entities it was drawn from"
        truth.append((source, rid, ents.entity_id[e], ents.scenario[e], ents.group_id[e]))


def _csv_bytes(headers: list[str], body: list[list[str]]) -> io.StringIO:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headers)
    w.writerows(body)
    return buf


def _junk_csv_row(kind: str, rid: str, width: int, name_col: int, phone_col: int, email_col: int) -> list[str]:
    if kind == "blank":
        return [""] * width
    if kind == "na":
        return [rid] + ["n/a"] * (width - 1)
    if kind == "test":
        row = [rid] + [""] * (width - 1)
        row[name_col], row[phone_col], row[email_col] = "test", "123", "test@test.com"
        return row
    # wrong column count: an unquoted comma split the address into two fields
    row = [rid] + ["n/a"] * (width - 1)
    row[name_col] = "张三"
    return row + ["天河区", "extra"]


def _write_csv_source(
    out_dir,
    source,
    headers,
    render_row,
    id_base,
    format_id,
    junk_cols,
    encoding,
    ents,
    recs,
    noise,
    hostile,
    truth,
    rng,
    colcount_name=None,
):
    """One CSV export: customer rows interleaved with junk rows (truth for both), then encoded
    as the legacy system would (GBK, UTF-8 with BOM …)."""
    seq = _interleave(len(recs), _junk_kinds(len(recs), ["blank", "na", "test", "colcount"]), rng)
    body = []
    base = id_base + int(rng.integers(0, 1000)) * 1000
    for line_no, item in enumerate(seq, start=2):
        rid = format_id(base + line_no)
        if isinstance(item, str):
            row = _junk_csv_row(item, rid, len(headers), *junk_cols)
            if item == "colcount" and colcount_name:
                row[1], row[2] = colcount_name
            _truth_row(truth, source, f"@line:{line_no}" if item in LOCATED_JUNK else rid, None, None)
        else:
            r = recs[item]
            row = render_row(ents, r, noise)
            row[0] = rid
            if r.e in hostile:
                row[1] = hostile[r.e]
            _truth_row(truth, source, rid, ents, r.e)
        body.append(row)
    path = out_dir / f"{source}.csv"
    path.write_bytes(_csv_bytes(headers, body).getvalue().encode(encoding))
    return path, len(body)


def _write_cn(out_dir, ents, recs, noise, hostile, truth, rng):
    return _write_csv_source(
        out_dir,
        "crm_legacy_cn",
        CN_HEADERS,
        cn_row,
        10000000,
        lambda n: f"KH{n:08d}",
        (1, 3, 5),
        "gbk",
        ents,
        recs,
        noise,
        hostile,
        truth,
        rng,
    )


def _write_web(out_dir, ents, recs, noise, hostile, truth, rng):
    return _write_csv_source(
        out_dir,
        "crm_web_us",
        WEB_HEADERS,
        web_row,
        1000000,
        str,
        (1, 4, 3),
        "utf-8-sig",
        ents,
        recs,
        noise,
        hostile,
        truth,
        rng,
        colcount_name=("Pat", "Doe"),
    )


def _write_sales(out_dir, ents, recs, noise, hostile, truth, rng):
    """Two sheets with different column orders; phones as numbers, birthdays as date cells."""
    import xlsxwriter

    source = "crm_sales"
    path = out_dir / f"{source}.xlsx"
    wb = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
    )
    wb.set_properties({"created": datetime(2024, 1, 1), "author": "crmclean generate", "title": "crm_sales"})
    date_fmts = [wb.add_format({"num_format": "yyyy-mm-dd"}), wb.add_format({"num_format": "m/d/yyyy"})]
    dt_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    on_leads = rng.random(len(recs)) < 0.4
    n_rows = 0
    for sheet, prefix, mask in (("Accounts", "ACC", ~on_leads), ("Leads", "LEAD", on_leads)):
        ws = wb.add_worksheet(sheet)
        headers = SALES_HEADERS[sheet]
        col = {h: i for i, h in enumerate(headers)}
        ws.write_row(0, 0, headers)
        sheet_recs = [r for r, m in zip(recs, mask) if m]
        seq = _interleave(len(sheet_recs), _junk_kinds(len(sheet_recs), ["blank", "na", "test"]), rng)
        no_id = rng.random(len(seq)) < 0.003
        for k, item in enumerate(seq):
            row = k + 1
            excel_row = row + 1
            rid = f"{prefix}-{k + 1:06d}"
            n_rows += 1
            if isinstance(item, str):
                if item == "blank":
                    _truth_row(truth, source, f"@{sheet}!{excel_row}", None, None)
                    continue
                values = (
                    {h: "n/a" for h in headers}
                    if item == "na"
                    else {"Name": "Test User", "Mobile": 123, "E-mail": "test@test.com"}
                )
                values["ID"] = rid
                _truth_row(truth, source, rid, None, None)
            else:
                r = sheet_recs[item]
                values = sales_row(ents, r, noise)
                if r.e in hostile:
                    values["Name"] = hostile[r.e]
                if no_id[k]:
                    rid = ""
                values["ID"] = rid
                _truth_row(truth, source, rid or f"@{sheet}!{excel_row}", ents, r.e)
            for h, v in values.items():
                if v is None or v == "":
                    continue
                c = col[h]
                if isinstance(v, datetime):
                    ws.write_datetime(row, c, v, dt_fmt)
                elif isinstance(v, date):
                    ws.write_datetime(row, c, v, date_fmts[row % 2])
                elif isinstance(v, int):
                    ws.write_number(row, c, v)
                else:
                    ws.write_string(row, c, v)
    wb.close()
    return path, n_rows
