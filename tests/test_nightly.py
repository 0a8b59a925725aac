"""Nightly incremental runs on real generated exports and a real database.

Two "nights": night 1 holds 70% of each source's rows, night 2 the rest as new files of the
same sources (`crm_web_us_night2.csv` → source crm_web_us by the globs in rules/sources.yaml).
After night 2 the masters must group records exactly as one full run on everything does, and
night 1's master ids must survive. Also: re-running changes nothing, a changed record updates its
master, a full-snapshot source retires what it no longer contains, merges keep the oldest id
and splits keep the id on the larger part.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from crmclean.generate import generate
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import DEFAULT_RULES_DIR
from crmclean.store.tables import PUBLISHED_TABLES

from dbutil import read_table as read
from test_postgres import pg_url  # noqa: F401  (the session PostgreSQL database fixture)

pytestmark = pytest.mark.slow  # whole-pipeline runs over generated or public data

CSV_ENCODINGS = {"crm_legacy_cn": "gbk", "crm_web_us": "utf-8-sig"}
NIGHT1_SHARE = 0.7
#: run bookkeeping: differs between runs by design, never compared
RUN_COLUMNS = {"run_id", "last_seen_run", "at", "created", "created_run", "updated_run"}


# ------------------------------------------------------------------ helpers
def run(inputs, db_url: str, tmp: Path, rules_dir: Path | None = None):
    return run_pipeline(RunOptions(inputs=list(inputs), db_url=db_url, out_dir=tmp / "out", rules_dir=rules_dir))


def groupings(db_url: str) -> set[frozenset]:
    """The masters as sets of record keys (rows without a source id, `@line:N`, are left out:
    their key depends on the file they came from)."""
    x = read(db_url, "customer_xref")
    x = x[~x["source_record_id"].str.startswith("@")]
    return {frozenset(g) for _, g in x.groupby("master_id")["record_key"]}


def master_of(db_url: str) -> pd.Series:
    return read(db_url, "customer_xref").set_index("record_key")["master_id"]


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def split_nights(gen: Path, out: Path) -> tuple[list[Path], list[Path]]:
    """Night 1: the first 70% of every file/sheet under the original names; night 2: the rest
    as `<stem>_night2` files of the same sources."""
    out.mkdir(parents=True, exist_ok=True)
    night1, night2 = [], []
    for source, enc in CSV_ENCODINGS.items():
        rows = list(csv.reader(io.StringIO((gen / f"{source}.csv").read_bytes().decode(enc), newline="")))
        cut = 1 + int((len(rows) - 1) * NIGHT1_SHARE)
        write_csv(out / f"{source}.csv", rows[:cut], enc)
        write_csv(out / f"{source}_night2.csv", rows[:1] + rows[cut:], enc)
        night1.append(out / f"{source}.csv")
        night2.append(out / f"{source}_night2.csv")
    src = openpyxl.load_workbook(gen / "crm_sales.xlsx")
    books = {"crm_sales.xlsx": openpyxl.Workbook(), "crm_sales_night2.xlsx": openpyxl.Workbook()}
    for wb in books.values():
        wb.remove(wb.active)
    for ws in src.worksheets:
        rows = list(ws.iter_rows(values_only=True))
        cut = 1 + int((len(rows) - 1) * NIGHT1_SHARE)
        for name, part in (("crm_sales.xlsx", rows[:cut]), ("crm_sales_night2.xlsx", rows[:1] + rows[cut:])):
            target = books[name].create_sheet(ws.title)
            for r in part:
                target.append(list(r))
    for name, wb in books.items():
        wb.save(out / name)
    night1.append(out / "crm_sales.xlsx")
    night2.append(out / "crm_sales_night2.xlsx")
    return night1, night2


def table_view(db_url: str, name: str, skip: set[str] = frozenset()) -> pd.DataFrame:
    """A published table without run bookkeeping, in a stable order."""
    df = read(db_url, name)
    df = df[[c for c in df.columns if c not in RUN_COLUMNS | skip]]
    return df.sort_values(list(df.columns), na_position="first").reset_index(drop=True) if len(df) else df


def rules_with(tmp: Path, sources: dict | None = None, overrides: dict | None = None) -> Path:
    d = tmp / f"rules{len(list(tmp.glob('rules*')))}"
    shutil.copytree(DEFAULT_RULES_DIR, d)
    if sources:
        conf = yaml.safe_load((d / "sources.yaml").read_text(encoding="utf-8"))
        for name, extra in sources.items():
            conf["sources"].setdefault(name, {}).update(extra)
        (d / "sources.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    if overrides:
        (d / "overrides.yaml").write_text(yaml.safe_dump(overrides, allow_unicode=True), encoding="utf-8")
    return d


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Generated exports split into two nights, a single full run on everything, and the two
    nights run one after the other (night 2 as delta files) on SQLite."""
    tmp = tmp_path_factory.mktemp("nightly")
    info = generate(customers=300, seed=11, out_dir=tmp / "gen")
    night1, night2 = split_nights(Path(info["files"][0]).parent, tmp / "split")
    full_db = f"sqlite:///{tmp / 'full.db'}"
    run(night1 + night2, full_db, tmp)
    inc_db = f"sqlite:///{tmp / 'inc.db'}"
    first = run(night1, inc_db, tmp)
    after_night1 = master_of(inc_db)
    shutil.copyfile(tmp / "inc.db", tmp / "night1.db")
    second = run(night2, inc_db, tmp)
    return {
        "tmp": tmp,
        "night1": night1,
        "night2": night2,
        "full_db": full_db,
        "inc_db": inc_db,
        "after_night1": after_night1,
        "first": first,
        "second": second,
        "night1_db": tmp / "night1.db",
    }


def copy_db(path: Path, tmp: Path, name: str) -> str:
    shutil.copyfile(path, tmp / name)
    return f"sqlite:///{tmp / name}"


# ------------------------------------------------------------------ (a) two nights = one full run
def test_two_nights_group_records_like_one_full_run(nights):
    assert groupings(nights["inc_db"]) == groupings(nights["full_db"])
    # night 2 standardized only its own rows; night 1's were reused, not redone
    counts = nights["second"].counts
    assert counts["records_reused"] == 0  # delta files: every row is new
    assert counts["records_standardized"] == counts["records_accepted"]


def test_night_one_master_ids_are_kept(nights):
    before = nights["after_night1"]
    after = master_of(nights["inc_db"])
    history = read(nights["inc_db"], "master_id_history")
    merged = history[history["event"] == "merged_into"].set_index("master_id")["target_master_id"]
    for key, old_id in before.items():
        new_id = after[key]
        # a record stays under its id, or its master merged into an older one (redirect recorded)
        assert new_id == old_id or (merged.get(old_id) == new_id and new_id < old_id), key


def test_full_snapshot_night_equals_delta_night(nights, tmp_path):
    """Night 2 as the whole export again (night 1 files + night 2 files) gives the same masters
    and reuses every night-1 record's standardization."""
    db = copy_db(nights["night1_db"], tmp_path, "snap.db")
    first = nights["first"]
    snap = run(nights["night1"] + nights["night2"], db, tmp_path)
    assert groupings(db) == groupings(nights["full_db"])
    assert snap.counts["records_reused"] == first.counts["records_accepted"]
    assert snap.counts["records_standardized"] == snap.counts["records_accepted"] - first.counts["records_accepted"]


def test_delta_publish_stores_what_a_full_replace_stores(nights, tmp_path, monkeypatch):
    """Night 2 published as a delta (only changed keys rewritten) leaves every table exactly as a
    full replace of the same night does (apart from run bookkeeping)."""
    from crmclean.store import Store

    real = Store.publish
    monkeypatch.setattr(
        Store,
        "publish",
        lambda self, run_id, tables, delta=True, state=None, spelling=None, spill=None: real(
            self, run_id, tables, False, state, spelling, spill
        ),
    )
    db = copy_db(nights["night1_db"], tmp_path, "replace.db")
    run(nights["night2"], db, tmp_path)
    for t in PUBLISHED_TABLES:
        skip = {"first_seen_run"}  # night 2's new records carry each night-2 run's own id
        pd.testing.assert_frame_equal(table_view(nights["inc_db"], t, skip), table_view(db, t, skip), obj=t)


def stored_spelling(db_url: str) -> dict[str, int]:
    stored = read(db_url, "spelling_count")
    return dict(zip(stored["key"], stored["records"]))


def recounted_spelling(db_url: str) -> dict[str, int]:
    """survivorship's data-wide counts over the master's active records, as stored keys."""
    from crmclean.settings import load_rules
    from crmclean.store.statistics import stored_pairs
    from crmclean.store.values import _unpack_records
    from crmclean.survivorship import spelling_counts

    records = _unpack_records(read(db_url, "customer_record"))
    records = records[records["status"].fillna("active") != "retired"]
    return {k: n for k, n in stored_pairs(spelling_counts(records, load_rules(DEFAULT_RULES_DIR))) if n}


def counted_rows(monkeypatch) -> list[int]:
    """The number of records each spelling_counts call of a run counts over."""
    from crmclean import survivorship

    sizes: list[int] = []
    real = survivorship.spelling_counts

    def counting(records, rules):
        sizes.append(len(records))
        return real(records, rules)

    monkeypatch.setattr(survivorship, "spelling_counts", counting)
    return sizes


def test_a_night_reads_the_stored_spelling_counts_and_keeps_them_exact(nights, tmp_path, monkeypatch):
    """A full run stores survivorship's data-wide counts; night 2 reads the ones it needs by key
    (it counts only its own, their stored versions' and its region's records) and leaves the stored counts equal
    to a count over every active record (the published tables: test_incremental_run_equals_...)."""
    night1 = copy_db(nights["night1_db"], tmp_path, "n1.db")
    assert stored_spelling(night1) == recounted_spelling(night1)
    db = copy_db(nights["night1_db"], tmp_path, "n2.db")
    sizes = counted_rows(monkeypatch)
    second = run(nights["night2"], db, tmp_path)
    assert max(sizes) < second.counts["records_in_master"]  # the fallback counts every record
    assert stored_spelling(db) == recounted_spelling(db) == stored_spelling(nights["inc_db"])


def test_stale_spelling_counts_are_counted_again(nights, tmp_path, monkeypatch):
    """Counts a later publish did not write (an older version published since) are not read:
    the night counts every record, as before the store kept them, and stores them whole."""
    db = copy_db(nights["night1_db"], tmp_path, "stale.db")
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE master_state SET run_id = 'older' WHERE name = 'spelling_counts'"))
        conn.execute(sa.text("UPDATE spelling_count SET records = records + 5"))
    engine.dispose()
    sizes = counted_rows(monkeypatch)
    second = run(nights["night2"], db, tmp_path)
    assert max(sizes) == second.counts["records_in_master"]
    assert stored_spelling(db) == recounted_spelling(db)
    for t in (*PUBLISHED_TABLES, "master_state"):
        skip = {"first_seen_run"} | RUN_COLUMNS
        pd.testing.assert_frame_equal(table_view(nights["inc_db"], t, skip), table_view(db, t, skip), obj=t)


def exact_view(db_url: str, name: str) -> pd.DataFrame:
    """A table with every column but wall-clock times, in a stable order."""
    df = read(db_url, name)
    df = df[[c for c in df.columns if c not in {"at", "created", "started_at", "finished_at", "timings"}]]
    return df.sort_values(list(df.columns), na_position="first").reset_index(drop=True) if len(df) else df


def _night2_with_changes(nights, tmp: Path) -> list[Path]:
    """Night 2 plus a night-1 row of crm_web_us with a new e-mail, as one more delta file."""
    rows = list(csv.reader(io.StringIO(nights["night1"][1].read_bytes().decode("utf-8-sig"), newline="")))
    header = rows[0]
    changed = [list(r) for r in rows[1:4]]
    for r in changed:
        r[header.index("Email")] = "moved." + r[header.index("Email")] if r[header.index("Email")] else "x@y.com"
    path = tmp / "crm_web_us_fix.csv"
    write_csv(path, [header, *changed], "utf-8-sig")
    return [*nights["night2"], path]


@pytest.mark.parametrize(
    "night", ["delta_files", "whole_export", "changed_records", "overrides", "snapshot_retires", "override_withdrawn"]
)
def test_incremental_run_equals_a_full_recluster(nights, tmp_path, night, monkeypatch):
    """The incremental path (recluster only the affected region, write only its rows) leaves
    every published table exactly as clustering and rebuilding the whole master does, run
    bookkeeping included (both runs get the same run id; the full rebuild publishes as a delta
    so rows it leaves alone keep their run ids too)."""
    from crmclean.store import publish as store_publish

    monkeypatch.setattr(store_publish, "FULL_REPLACE_SHARE", float("inf"))
    rules = None
    inputs = nights["night2"]
    if night == "whole_export":
        inputs = nights["night1"] + nights["night2"]
    elif night == "changed_records":
        inputs = _night2_with_changes(nights, tmp_path)
    elif night == "snapshot_retires":
        rules = rules_with(tmp_path, sources={"crm_web_us": {"full_snapshot": True}})
        web = nights["night1"][1]
        rows = list(csv.reader(io.StringIO(web.read_bytes().decode("utf-8-sig"), newline="")))
        smaller = tmp_path / "crm_web_us.csv"
        write_csv(smaller, rows[:1] + rows[1:40] + rows[60:], "utf-8-sig")  # 20 rows gone
        inputs = [smaller]
    elif night == "overrides":
        xref = read(nights["inc_db"], "customer_xref")
        size = xref.groupby("master_id")["record_key"].transform("size")
        singles = xref[size == 1].sort_values("master_id")
        big = xref[size >= 3].sort_values(["master_id", "record_key"])
        ref = lambda r: f"{r['source']}:{r['source_record_id']}"  # noqa: E731
        rules = rules_with(
            tmp_path,
            overrides={
                "must_link": [[ref(singles.iloc[0]), ref(singles.iloc[-1])]],
                "cannot_link": [],
                "unmerge": [ref(big.iloc[-1])],
            },
        )
    elif night == "override_withdrawn":  # a review pair decided by the rules file, then no longer
        queue = read(nights["inc_db"], "review_queue").sort_values(["record_key_l", "record_key_r"]).iloc[0]
        ref = lambda k: k.replace("|", ":", 1)  # noqa: E731
        decided = rules_with(
            tmp_path,
            overrides={
                "must_link": [],
                "unmerge": [],
                "cannot_link": [[ref(queue["record_key_l"]), ref(queue["record_key_r"])]],
            },
        )
        base = copy_db(Path(nights["inc_db"].removeprefix("sqlite:///")), tmp_path, "base.db")
        run(nights["night2"], base, tmp_path, decided)
        pairs = read(base, "review_queue")[["record_key_l", "record_key_r"]].values.tolist()
        assert [queue["record_key_l"], queue["record_key_r"]] not in pairs  # decided: left the queue
    if rules is not None:  # the night-1 master, under the same rules (overrides apart), as the base
        base = copy_db(nights["night1_db"], tmp_path, "base.db")
        if night == "overrides":
            run(nights["night2"], base, tmp_path)
        base_path = Path(base.removeprefix("sqlite:///"))
    elif night == "override_withdrawn":
        base_path = tmp_path / "base.db"
    else:
        base_path = nights["night1_db"]
    results = {}
    for mode in ("region", "all"):
        db = copy_db(base_path, tmp_path, f"{mode}.db")
        results[mode] = run_pipeline(
            RunOptions(
                inputs=list(inputs),
                db_url=db,
                out_dir=tmp_path / "out",
                rules_dir=rules,
                run_id="R-TEST",
                recluster_all=(mode == "all"),
            )
        )
    region, full = results["region"], results["all"]
    assert 0 < region.counts["records_reclustered"] < region.counts["records_in_master"]
    if night == "override_withdrawn":  # back in the queue, rebuilt from its stored edge
        pairs = read(f"sqlite:///{tmp_path / 'region.db'}", "review_queue")[["record_key_l", "record_key_r"]]
        assert [queue["record_key_l"], queue["record_key_r"]] in pairs.values.tolist()
    assert "records_reclustered" not in full.counts
    for key in ("masters", "records_in_master", "review_pairs", "records_accepted", "records_reused"):
        assert region.counts[key] == full.counts[key], key
    for t in (*PUBLISHED_TABLES, "master_state"):
        a, b = exact_view(f"sqlite:///{tmp_path / 'region.db'}", t), exact_view(f"sqlite:///{tmp_path / 'all.db'}", t)
        pd.testing.assert_frame_equal(a, b, obj=t)


# ------------------------------------------------------------------ (b) idempotent
def test_rerunning_the_same_night_changes_nothing(nights, tmp_path):
    db_path = tmp_path / "again.db"
    shutil.copyfile(nights["inc_db"].removeprefix("sqlite:///"), db_path)
    db = f"sqlite:///{db_path}"
    before = {t: table_view(db, t) for t in PUBLISHED_TABLES}
    again = run(nights["night2"], db, tmp_path)
    assert again.counts["records_standardized"] == 0
    for t in PUBLISHED_TABLES:
        pd.testing.assert_frame_equal(before[t], table_view(db, t), obj=t)
    # not even the bookkeeping of unchanged masters moved
    assert set(read(db, "master_customer")["updated_run"]) <= {nights["first"].run_id, nights["second"].run_id}


# ------------------------------------------------------------------ (c) a changed record
def test_changed_email_updates_its_master(nights, tmp_path):
    db_path = tmp_path / "changed.db"
    shutil.copyfile(nights["inc_db"].removeprefix("sqlite:///"), db_path)
    db = f"sqlite:///{db_path}"
    masters = read(db, "master_customer").set_index("master_id")
    xref = read(db, "customer_xref")
    web = xref[(xref["source"] == "crm_web_us") & xref["master_id"].map(masters["record_count"]).eq(1)]
    key = web["record_key"].iloc[0]
    master_id = web["master_id"].iloc[0]
    rid = key.split("|", 1)[1]
    rows = list(csv.reader(io.StringIO(nights["night2"][1].read_bytes().decode("utf-8-sig"), newline="")))
    rows += list(csv.reader(io.StringIO(nights["night1"][1].read_bytes().decode("utf-8-sig"), newline="")))[1:]
    header, row = rows[0], next(r for r in rows[1:] if r and r[0] == rid)
    row = list(row)
    row[header.index("Email")] = "brand.new.address@outlook.com"
    delta = tmp_path / "crm_web_us_fix.csv"
    write_csv(delta, [header, row], "utf-8-sig")
    result = run([delta], db, tmp_path)
    assert result.counts["records_standardized"] == 1
    m = read(db, "master_customer").set_index("master_id").loc[master_id]
    assert m["email"] == "brand.new.address@outlook.com"
    assert m["updated_run"] == result.run_id
    assert master_of(db)[key] == master_id
    h = read(db, "master_id_history")
    assert ((h["master_id"] == master_id) & (h["event"] == "updated") & (h["run_id"] == result.run_id)).any()


# ------------------------------------------------------------------ (d) full snapshot retires
def test_full_snapshot_source_retires_missing_records(nights, tmp_path):
    rules = rules_with(tmp_path, sources={"crm_web_us": {"full_snapshot": True}})
    db = copy_db(nights["night1_db"], tmp_path, "snapshot.db")
    web = nights["night1"][1]
    rows = list(csv.reader(io.StringIO(web.read_bytes().decode("utf-8-sig"), newline="")))
    dropped = [r[0] for r in rows[1:4]]
    smaller = tmp_path / "crm_web_us.csv"
    write_csv(smaller, rows[:1] + rows[4:], "utf-8-sig")
    before = master_of(db)
    result = run([smaller], db, tmp_path, rules)
    keys = [f"crm_web_us|{rid}" for rid in dropped]
    rec = read(db, "customer_record").set_index("record_key")
    assert (rec.loc[keys, "status"] == "retired").all()
    assert not set(keys) & set(master_of(db).index)
    snap = read(db, "xref_snapshot")
    left = snap[(snap["run_id"] == result.run_id) & snap["record_key"].isin(keys)]
    assert sorted(left["record_key"]) == sorted(keys) and left["master_id"].isna().all()
    # the other sources, not in this run's input, are carried over untouched
    assert result.counts["records_standardized"] == 0
    others = [k for k in before.index if not k.startswith("crm_web_us|")]
    assert (master_of(db)[others] == before[others]).all()
    # a retired record that comes back is active again, standardized from its row
    back = run([web], db, tmp_path, rules)
    rec = read(db, "customer_record").set_index("record_key")
    assert (rec.loc[keys, "status"] == "active").all()
    assert back.counts["records_standardized"] == 3


# ------------------------------------------------------------------ (e) merge keeps oldest id, split keeps larger part
def test_merge_keeps_oldest_id_and_split_keeps_larger_part(nights, tmp_path):
    db_path = tmp_path / "ids.db"
    shutil.copyfile(nights["inc_db"].removeprefix("sqlite:///"), db_path)
    db = f"sqlite:///{db_path}"
    xref = read(db, "customer_xref")
    size = xref.groupby("master_id")["record_key"].transform("size")
    singles = xref[size == 1].sort_values("master_id")
    a, b = singles.iloc[0], singles.iloc[-1]  # the oldest and the newest single-record masters
    ref = lambda r: f"{r['source']}:{r['source_record_id']}"  # noqa: E731
    rules = rules_with(tmp_path, overrides={"must_link": [[ref(b), ref(a)]], "cannot_link": [], "unmerge": []})
    merged = run(nights["night2"], db, tmp_path, rules)
    now = master_of(db)
    assert now[a["record_key"]] == now[b["record_key"]] == a["master_id"]
    h = read(db, "master_id_history")
    redirect = h[(h["run_id"] == merged.run_id) & (h["event"] == "merged_into")]
    assert redirect[["master_id", "target_master_id"]].values.tolist() == [[b["master_id"], a["master_id"]]]

    # split: take one record out of a master of three or more; the rest keep the id
    xref = read(db, "customer_xref")
    big = xref.groupby("master_id")["record_key"].agg(list)
    big = big[big.map(len) >= 3].sort_index()
    master_id, keys = big.index[0], sorted(big.iloc[0])
    out = xref.set_index("record_key").loc[keys[-1]]
    rules = rules_with(
        tmp_path,
        overrides={
            "must_link": [[ref(b), ref(a)]],
            "cannot_link": [],
            "unmerge": [f"{out['source']}:{out['source_record_id']}"],
        },
    )
    split = run(nights["night2"], db, tmp_path, rules)
    now = master_of(db)
    assert (now[keys[:-1]] == master_id).all()
    assert now[keys[-1]] != master_id
    h = read(db, "master_id_history")
    ev = h[(h["run_id"] == split.run_id) & (h["event"] == "split_from")]
    assert ev[["master_id", "target_master_id"]].values.tolist() == [[now[keys[-1]], master_id]]


# ------------------------------------------------------------------ PostgreSQL
@pytest.mark.postgres
def test_two_nights_on_postgresql_match_sqlite_and_rerun_is_idempotent(nights, pg_url, tmp_path):  # noqa: F811 (pytest fixture)
    from crmclean.store.tables import metadata

    engine = sa.create_engine(pg_url)
    metadata.drop_all(engine)
    engine.dispose()
    run(nights["night1"], pg_url, tmp_path)
    run(nights["night2"], pg_url, tmp_path)
    assert groupings(pg_url) == groupings(nights["inc_db"])
    assert stored_spelling(pg_url) == stored_spelling(nights["inc_db"])  # written by key on night 2
    before = {t: table_view(pg_url, t) for t in PUBLISHED_TABLES}
    again = run(nights["night2"], pg_url, tmp_path)
    assert again.counts["records_standardized"] == 0
    for t in PUBLISHED_TABLES:
        pd.testing.assert_frame_equal(before[t], table_view(pg_url, t), obj=t)
