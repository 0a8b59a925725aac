"""The store on real databases: a SQLite file and (marker postgres) the local PostgreSQL.

Every backend-neutral test runs against both through the `store_url` fixture. The pipeline
stages around the store are stood in by small deterministic functions (`fake_run`) that follow
the contract in docs/ARCHITECTURE.md and the call order of pipeline/run.py.
"""

from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from crmclean.errors import CrmcleanError, RunLocked
from crmclean.history import diff_runs, format_diff, list_runs
from crmclean.ids import assign_master_ids
from crmclean.incremental import combine_with_prior, merge_overrides
from crmclean.schema import CANONICAL_FIELDS, MASTER_COLUMNS, record_key
from crmclean.settings import Rules
from crmclean.store import PUBLISHED_TABLES, NoMaster, Store, StoreError, build_tables, columns_of, open_store
from crmclean.store.values import utc_now
from test_postgres import pg_url  # noqa: F401  (session fixture: throwaway PostgreSQL database)

VOLATILE = {"run_id", "created_run", "updated_run", "first_seen_run", "last_seen_run", "at", "created"}


# --------------------------------------------------------------------------- stand-in stages


def make_std(n: int, source: str = "crm_a", start: int = 0, **overrides) -> pd.DataFrame:
    """A standardized frame as standardize() would hand it over (raw + _std side by side)."""
    rows = []
    for i in range(start, start + n):
        rid = str(1000 + i)
        rows.append(
            {
                "record_key": record_key(source, rid),
                "source": source,
                "source_record_id": rid,
                "locator": f"{source}.csv@line:{i + 2}",
                "file": f"{source}.csv",
                **{f: None for f in CANONICAL_FIELDS},
                "record_id": rid,
                "full_name": f"Person {i}",
                "email": f"P{i}@Example.com",
                "mobile": f"138{i:08d}",
                "city": "上海市",
                "birth_date": "1990/1/2",
                "full_name_std": f"Person {i}",
                "email_std": f"p{i}@example.com",
                "mobile_std": f"+86138{i:08d}",
                "phone_std": f"+86138{i:08d}",
                "city_std": "上海",
                "birth_date_std": "1990-01-02",
                "full_name_flag": "",
                "email_flag": "changed",
                "name_key": f"person {i}",
                "country_std": "CN",
                "extra": json.dumps({"VIP": "是"}, ensure_ascii=False),
                "raw": json.dumps({"姓名": f"Person {i}"}, ensure_ascii=False),
            }
        )
    df = pd.DataFrame(rows)
    for k, v in overrides.items():
        df[k] = v
    return df


def _components(keys: list[str], links: list[tuple[str, str]]) -> dict[str, str]:
    parent = {k: k for k in keys}

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in links:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            parent[max(ra, rb)] = min(ra, rb)
    return {k: find(k) for k in keys}


def fake_run(
    store: Store,
    std: pd.DataFrame,
    run_id: str,
    matches=(),
    reviews=(),
    rules: Rules | None = None,
    model: dict | None = None,
    quarantine: pd.DataFrame | None = None,
):
    """prior → combine → (link) → cluster → golden → ids → build_tables → publish, as run.py does."""
    rules = rules or Rules()
    model = model if model is not None else {"threshold": 0.9}
    store.start_run(run_id, "2026-01-01T00:00:00Z", ["in.csv"])
    try:
        with store.lock(run_id):
            prior = store.load_state()
            combined = combine_with_prior(std, prior, rules)
            overrides = merge_overrides(rules.overrides, prior.overrides)
            pairs = pd.DataFrame(
                [(a, b, 12.0, 0.99, "match", "email", 9.5) for a, b in matches]
                + [(a, b, 2.0, 0.6, "review", "name", 1.5) for a, b in reviews],
                columns=[
                    "record_key_l",
                    "record_key_r",
                    "match_weight",
                    "match_probability",
                    "decision",
                    "rules",
                    "w_email",
                ],
            )
            if prior.model is not None:  # incremental: only pairs touching changed records are new
                touch = pairs["record_key_l"].isin(combined.changed_keys) | pairs["record_key_r"].isin(
                    combined.changed_keys
                )
                parts = [df for df in (combined.kept_edges, pairs[touch]) if len(df)]
                pairs = pd.concat(parts, ignore_index=True) if parts else pairs.iloc[:0]
            keys = combined.records["record_key"].tolist()
            must = overrides.loc[overrides["kind"] == "must_link", ["record_key_l", "record_key_r"]]
            links = list(
                zip(
                    pairs.loc[pairs["decision"] == "match", "record_key_l"],
                    pairs.loc[pairs["decision"] == "match", "record_key_r"],
                )
            ) + list(must.itertuples(index=False))
            comp = _components(keys, links)
            labels = {root: i for i, root in enumerate(sorted(set(comp.values()), reverse=True))}
            clusters = pd.DataFrame(
                {
                    "record_key": pd.Series(keys, dtype=object),
                    "cluster": pd.Series([labels[comp[k]] for k in keys], dtype="int64"),
                }
            )
            first = (
                clusters.merge(combined.records, on="record_key").sort_values("record_key").drop_duplicates("cluster")
            )
            golden = pd.DataFrame(
                {
                    "cluster": first["cluster"],
                    "full_name": first["full_name_std"],
                    "email": first["email_std"],
                    "phone": first["phone_std"],
                    "mobile": first["mobile_std"],
                    "city": first["city_std"],
                    "birth_date": first["birth_date_std"],
                    "country": first["country_std"],
                }
            )
            lineage = pd.DataFrame(
                {
                    "cluster": first["cluster"],
                    "field": "email",
                    "value": first["email_std"],
                    "record_key": first["record_key"],
                    "rule": "most_recent",
                }
            )
            assigned = assign_master_ids(clusters, prior)
            tables = build_tables(
                run_id=run_id,
                records=combined.records,
                run_keys=set(std["record_key"]),
                retired=combined.retired,
                quarantine=quarantine
                if quarantine is not None
                else pd.DataFrame(
                    columns=["source", "source_record_id", "locator", "stage", "reason_code", "reason", "raw"]
                ),
                pairs=pairs,
                clusters=clusters,
                golden=golden,
                lineage=lineage,
                assigned=assigned,
                model=model,
                overrides=overrides,
                prior=prior,
            )
            store.publish(run_id, tables)
    except Exception as exc:
        store.finish_run(run_id, "failed", {}, {}, error=str(exc))
        raise
    store.finish_run(
        run_id, "success", {"rows_read": len(std), "masters": len(tables["master_customer"])}, {"publish": 0.1}
    )
    return tables, combined


def read(url: str, table: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        df = pd.read_sql(sa.text(f'SELECT * FROM "{table}"'), conn)
    engine.dispose()
    order = [c for c in ("master_id", "record_key", "record_key_l", "record_key_r", "run_id", "event") if c in df]
    return df.sort_values(order, kind="stable").reset_index(drop=True) if order else df


def stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df.columns if c in VOLATILE])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/out/master.db"
    from crmclean.store.tables import metadata

    url = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def store(store_url):
    s = open_store(store_url, lock_timeout=0.5)
    yield s
    s.close()


# --------------------------------------------------------------------------- tests


def test_fresh_database_has_empty_state_with_columns(store):
    prior = store.load_state()
    assert prior.next_master_number == 1 and prior.model is None
    assert prior.records.empty and prior.xref.empty and prior.edges.empty and prior.overrides.empty
    assert {"record_key", "master_id"} <= set(prior.xref.columns)
    assert {"record_key_l", "record_key_r", "match_probability", "decision"} <= set(prior.edges.columns)
    assert {"record_key", "content_hash", "full_name", "full_name_std"} <= set(prior.records.columns)


def test_sqlite_parent_directory_is_created(tmp_path):
    s = open_store(f"sqlite:///{tmp_path}/a/b/master.db")
    s.close()
    assert (tmp_path / "a" / "b" / "master.db").exists()


def test_read_only_open_of_a_missing_sqlite_file_creates_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/typo/master.db"
    with pytest.raises(NoMaster) as info:
        open_store(url, create=False)
    assert str(info.value) == f"no crmclean master at {url}: run 'crmclean run' first"
    assert isinstance(info.value, CrmcleanError) and list(tmp_path.iterdir()) == []
    with pytest.raises(NoMaster):
        list_runs(url)
    assert list(tmp_path.iterdir()) == []


def test_read_only_open_of_a_database_without_crmclean_tables_adds_none(tmp_path):
    url = f"sqlite:///{tmp_path}/other.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER)"))
    engine.dispose()
    with pytest.raises(NoMaster, match="no crmclean master at"):
        open_store(url, create=False)
    engine = sa.create_engine(url)
    assert sa.inspect(engine).get_table_names() == ["customers"]
    engine.dispose()


def test_read_only_open_of_a_master_reads_it(store, store_url):
    fake_run(store, make_std(4), "R1")
    reader = open_store(store_url, create=False)
    try:
        assert len(reader.read_table("customer_xref")) == 4
        assert reader.count_values("customer_record", "email_std", "p1@example.com") == 1
        assert reader.count_values("customer_record", "email_std") == 4
        assert reader.find_rows("customer_xref", source="crm_a", source_record_id="1002")["record_key"].tolist() == [
            "crm_a|1002"
        ]
        assert reader.read_by_keys("customer_xref", ("record_key",), ["crm_a|1003", "nope"])["record_key"].tolist() == [
            "crm_a|1003"
        ]
    finally:
        reader.close()


def test_publish_writes_every_table_with_the_contract_columns(store, store_url):
    a = make_std(4)
    b = make_std(2, source="crm_b")
    std = pd.concat([a, b], ignore_index=True)
    q = pd.DataFrame(
        [
            {
                "source": "crm_a",
                "source_record_id": "@line:9",
                "locator": "crm_a.csv@line:9",
                "stage": "ingest",
                "reason_code": "blank_row",
                "reason": "the row is empty",
                "raw": "",
            }
        ]
    )
    fake_run(
        store,
        std,
        "R1",
        matches=[("crm_a|1000", "crm_b|1000"), ("crm_a|1001", "crm_a|1002")],
        reviews=[("crm_a|1003", "crm_b|1001")],
        quarantine=q,
    )
    masters = read(store_url, "master_customer")
    xref = read(store_url, "customer_xref")
    assert list(masters.columns) == list(MASTER_COLUMNS) + ["created_run", "updated_run"]
    assert masters["master_id"].tolist() == ["C0000001", "C0000002", "C0000003", "C0000004"]
    assert masters["record_count"].tolist() == [2, 2, 1, 1]
    assert masters.loc[0, "sources"] == "crm_a;crm_b" and masters.loc[0, "city"] == "上海"
    assert len(xref) == 6 and not xref.duplicated(["source", "source_record_id"]).any()
    by_key = xref.set_index("record_key")
    assert by_key.loc["crm_a|1000", "master_id"] == by_key.loc["crm_b|1000", "master_id"] == "C0000001"
    assert by_key.loc["crm_a|1000", "match_probability"] == pytest.approx(0.99)
    assert pd.isna(by_key.loc["crm_a|1003", "match_probability"]) and by_key.loc["crm_a|1003", "reason"] == "singleton"
    rec = read(store_url, "customer_record")
    assert len(rec) == 6 and set(rec["status"]) == {"active"}
    row = rec.set_index("record_key").loc["crm_a|1001"]
    assert row["email"] == "P1@Example.com" and row["email_std"] == "p1@example.com"  # raw and std side by side
    assert json.loads(row["extra"]) == {"VIP": "是"} and len(row["content_hash"]) == 40
    rq = read(store_url, "review_queue")
    assert rq[["record_key_l", "record_key_r", "status"]].values.tolist() == [["crm_a|1003", "crm_b|1001", "open"]]
    assert json.loads(rq.loc[0, "summary_l"])["email"] == "p3@example.com"
    assert json.loads(rq.loc[0, "evidence"]) == {"email": 1.5}
    edges = read(store_url, "match_edge")
    assert sorted(edges["decision"]) == ["match", "match", "review"]
    assert read(store_url, "quarantine")[["reason_code", "run_id"]].values.tolist() == [["blank_row", "R1"]]
    hist = read(store_url, "master_id_history")
    assert set(hist["event"]) == {"created"} and len(hist) == 4
    assert read(store_url, "match_model")["version"].tolist() == [1]
    assert len(read(store_url, "xref_snapshot")) == 6
    lin = read(store_url, "master_lineage")
    assert set(lin["master_id"]) == set(masters["master_id"])
    log = read(store_url, "run_log")
    assert log.loc[0, "status"] == "success" and log.loc[0, "rows_read"] == 6 and log.loc[0, "masters"] == 4
    assert json.loads(log.loc[0, "inputs"]) == ["in.csv"]


def test_rerun_on_same_input_changes_nothing(store, store_url):
    """build_tables → publish → load_state → combine_with_prior(same std): nothing changed,
    every published row identical apart from run bookkeeping."""
    std = pd.concat([make_std(20), make_std(5, source="crm_b")], ignore_index=True)
    links = [("crm_a|1000", "crm_b|1000"), ("crm_a|1001", "crm_a|1002"), ("crm_a|1002", "crm_b|1003")]
    fake_run(store, std, "R1", matches=links, reviews=[("crm_a|1005", "crm_a|1006")])
    before = {
        t: read(store_url, t)
        for t in ("master_customer", "customer_xref", "customer_record", "review_queue", "master_lineage", "match_edge")
    }
    combined = combine_with_prior(std, store.load_state(), Rules())
    assert combined.changed_keys == set() and combined.retired.empty and len(combined.kept_edges) == 4
    tables, _ = fake_run(store, std, "R2", matches=links, reviews=[("crm_a|1005", "crm_a|1006")])
    for t, df in before.items():
        pd.testing.assert_frame_equal(stable(df), stable(read(store_url, t)), check_dtype=False, obj=t)
    assert tables["master_id_history"].empty and tables["xref_snapshot"].empty
    assert tables["match_model"].empty  # same model: no new version
    masters = read(store_url, "master_customer")
    assert set(masters["created_run"]) == {"R1"} and set(masters["updated_run"]) == {"R1"}
    assert set(read(store_url, "customer_record")["last_seen_run"]) == {"R2"}


def test_merge_split_and_retire_across_runs_keep_ids_stable(store, store_url):
    rules = Rules(sources={"sources": {"crm_a": {"full_snapshot": True}}})
    std1 = pd.concat([make_std(4), make_std(2, source="crm_b")], ignore_index=True)
    fake_run(store, std1, "R1", matches=[("crm_a|1000", "crm_a|1001")], rules=rules)
    x1 = read(store_url, "customer_xref").set_index("record_key")["master_id"]
    assert x1["crm_a|1000"] == x1["crm_a|1001"] == "C0000001"
    # R2: crm_b|1000 changed and now links to crm_a|1002: C0000002 and C0000004 merge;
    # crm_a|1003 is missing from the full snapshot of crm_a (retired); crm_a|1001 changed and
    # no longer links to crm_a|1000 (split: it leaves C0000001)
    std2 = std1[std1["record_key"] != "crm_a|1003"].copy()
    std2.loc[std2["record_key"].isin(["crm_a|1001", "crm_b|1000"]), "email"] = "new@example.com"
    fake_run(store, std2, "R2", matches=[("crm_a|1002", "crm_b|1000")], rules=rules)
    x2 = read(store_url, "customer_xref").set_index("record_key")["master_id"]
    assert x2["crm_a|1000"] == "C0000001"  # kept
    assert (x1["crm_a|1002"], x1["crm_b|1000"]) == ("C0000002", "C0000004")
    assert x2["crm_a|1002"] == x2["crm_b|1000"] == "C0000002"  # the older id wins
    assert x2["crm_a|1001"] == "C0000006"  # split part: new number after every id ever issued
    assert "crm_a|1003" not in x2.index
    hist = read(store_url, "master_id_history")
    r2 = hist[hist["run_id"] == "R2"].set_index("event")
    assert r2.loc["merged_into", ["master_id", "target_master_id"]].tolist() == [x1["crm_b|1000"], x1["crm_a|1002"]]
    assert r2.loc["split_from", ["master_id", "target_master_id"]].tolist() == ["C0000006", "C0000001"]
    assert r2.loc["retired", "master_id"] == x1["crm_a|1003"]
    rec = read(store_url, "customer_record").set_index("record_key")
    assert rec.loc["crm_a|1003", "status"] == "retired" and rec.loc["crm_a|1003", "last_seen_run"] == "R1"
    assert store.load_state().next_master_number == 7
    d = diff_runs(store_url, "R1", "R2")
    assert d["merged"] == [[x1["crm_b|1000"], x1["crm_a|1002"]]] and d["split"] == [["C0000006", "C0000001"]]
    assert d["retired"] == [x1["crm_a|1003"]] and d["records_removed"] == 1 and d["records_moved"] == 2
    assert d["created"] == [] and d["updated"] == ["C0000001", "C0000002"]  # both changed record_count
    masters = read(store_url, "master_customer").set_index("master_id")
    assert masters.loc["C0000001", "updated_run"] == "R2" and masters.loc["C0000001", "created_run"] == "R1"
    assert masters.loc["C0000005", "updated_run"] == "R1"  # untouched master
    text = format_diff(d)
    assert "merged" in text and "C0000006 ← C0000001" in text
    # R3: crm_a|1003 comes back: it is active again, with a new master
    fake_run(store, std1, "R3", matches=[("crm_a|1002", "crm_b|1000")], rules=rules)
    rec = read(store_url, "customer_record").set_index("record_key")
    assert rec.loc["crm_a|1003", "status"] == "active" and rec.index.is_unique


def test_source_not_reingested_keeps_its_records_and_quarantine(store, store_url):
    qa = pd.DataFrame(
        [
            {
                "source": "crm_a",
                "source_record_id": "@line:50",
                "locator": "a@line:50",
                "stage": "ingest",
                "reason_code": "column_count",
                "reason": "row has 3 columns, header has 5",
                "raw": "x,y,z",
            }
        ]
    )
    fake_run(store, pd.concat([make_std(3), make_std(2, source="crm_b")], ignore_index=True), "R1", quarantine=qa)
    fake_run(store, make_std(2, source="crm_b"), "R2")  # only crm_b this time
    assert len(read(store_url, "customer_xref")) == 5  # crm_a records carried over
    q = read(store_url, "quarantine")
    assert q[["source", "run_id"]].values.tolist() == [["crm_a", "R1"]]
    fake_run(store, make_std(3), "R3")  # crm_a re-ingested: its old quarantine rows are replaced
    assert read(store_url, "quarantine").empty


def test_publish_failing_midway_leaves_previous_master_and_next_run_succeeds(store, store_url, monkeypatch):
    fake_run(store, make_std(10), "R1", matches=[("crm_a|1000", "crm_a|1001")])
    before = {t: read(store_url, t) for t in PUBLISHED_TABLES}
    real = Store._write_table
    calls = {"n": 0}

    def crash_halfway(self, conn, name, cols, rows):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash in the middle of publish")
        return real(self, conn, name, cols, rows)

    monkeypatch.setattr(Store, "_write_table", crash_halfway)
    with pytest.raises(RuntimeError):
        fake_run(store, make_std(15), "R2")
    assert calls["n"] == 4
    for t, df in before.items():
        pd.testing.assert_frame_equal(df, read(store_url, t), obj=t)
    log = read(store_url, "run_log").set_index("run_id")
    assert log.loc["R2", "status"] == "failed" and "simulated crash" in log.loc["R2", "error"]
    monkeypatch.setattr(Store, "_write_table", real)
    fake_run(store, make_std(15), "R3", matches=[("crm_a|1000", "crm_a|1001")])
    assert len(read(store_url, "customer_xref")) == 15
    assert read(store_url, "customer_xref").set_index("record_key").loc["crm_a|1000", "master_id"] == "C0000001"


def test_second_run_waits_for_the_lock_then_fails_clearly(store_url):
    holder, other = open_store(store_url, lock_timeout=5), open_store(store_url, lock_timeout=0.5)
    holder.start_run("RUN-A", "2026-01-01T00:00:00Z", [])
    got, release = threading.Event(), threading.Event()

    def hold():
        with holder.lock("RUN-A"):
            got.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert got.wait(10)
        t0 = time.monotonic()
        with pytest.raises(RunLocked, match=r"another crmclean run \(RUN-A, started .*\) is writing to this master"):
            with other.lock("RUN-B"):
                pass
        assert time.monotonic() - t0 >= 0.45
    finally:
        release.set()
        t.join()
    order = []

    def run(store, name):
        with store.lock(name, timeout=10):
            order.append(f"{name} in")
            time.sleep(0.3)
            order.append(f"{name} out")

    threads = [threading.Thread(target=run, args=(s, n)) for s, n in ((holder, "A"), (other, "B"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert order in (["A in", "A out", "B in", "B out"], ["B in", "B out", "A in", "A out"])  # never interleaved
    holder.close()
    other.close()


def test_review_decisions_become_overrides_and_leave_the_queue(store, store_url):
    std = make_std(4)
    fake_run(store, std, "R1", reviews=[("crm_a|1000", "crm_a|1001"), ("crm_a|1002", "crm_a|1003")])
    assert len(read(store_url, "review_queue")) == 2
    store.add_review_decisions(
        pd.DataFrame(
            [
                {
                    "record_key_l": "crm_a|1001",
                    "record_key_r": "crm_a|1000",
                    "decision": "match",
                    "decided_by": "ann",
                    "origin": "review_file",
                },
                {
                    "record_key_l": "crm_a|1002",
                    "record_key_r": "crm_a|1003",
                    "decision": "no_match",
                    "decided_by": "ann",
                    "origin": "review_file",
                },
            ]
        )
    )
    ov = merge_overrides({}, store.load_state().overrides)
    assert sorted(map(tuple, ov[["record_key_l", "record_key_r", "kind"]].values.tolist())) == [
        ("crm_a|1000", "crm_a|1001", "must_link"),
        ("crm_a|1002", "crm_a|1003", "cannot_link"),
    ]
    fake_run(store, std, "R2", reviews=[("crm_a|1000", "crm_a|1001"), ("crm_a|1002", "crm_a|1003")])
    assert read(store_url, "review_queue").empty
    x = read(store_url, "customer_xref").set_index("record_key")["master_id"]
    assert x["crm_a|1000"] == x["crm_a|1001"] and x["crm_a|1002"] != x["crm_a|1003"]
    with pytest.raises(StoreError, match="match or no_match"):
        store.add_review_decisions(pd.DataFrame([{"record_key_l": "a", "record_key_r": "b", "decision": "yes"}]))


def test_model_versions_only_when_the_model_changes(store, store_url):
    std = make_std(3)
    fake_run(store, std, "R1", model={"m": 1})
    fake_run(store, std, "R2", model={"m": 1})
    fake_run(store, std, "R3", model={"m": 2})
    models = read(store_url, "match_model")
    assert models[["version", "run_id"]].values.tolist() == [[1, "R1"], [2, "R3"]]
    assert store.load_state().model == {"m": 2}


def test_history_lists_runs_newest_first_and_failed_runs_stay_failed(store, store_url):
    store.start_run("R1", "2026-01-01T00:00:00Z", [])
    store.finish_run("R1", "success", {"rows_read": 5, "masters": 4, "quarantined": 1}, {"ingest": 0.2})
    store.start_run("R2", "2026-01-02T00:00:00Z", [])
    store.finish_run("R2", "failed", {}, {}, error="boom")
    runs = list_runs(store_url)
    assert runs["run_id"].tolist() == ["R2", "R1"]
    assert runs.loc[1, "rows_read"] == 5 and runs.loc[0, "status"] == "failed" and runs.loc[0, "error"] == "boom"
    from crmclean.errors import CrmcleanError

    with pytest.raises(CrmcleanError, match="not in this master's history"):
        diff_runs(store_url, "R1", "nope")


def test_every_published_table_round_trips_identically_on_both_backends(tmp_path, request):
    """Same tables in → same values out, SQLite and PostgreSQL (skips PG part when unreachable)."""
    std = pd.concat([make_std(6), make_std(3, source="crm_b")], ignore_index=True)
    urls = [f"sqlite:///{tmp_path}/m.db"]
    try:
        from crmclean.store.tables import metadata

        pg = request.getfixturevalue("pg_url")
        engine = sa.create_engine(pg)
        metadata.drop_all(engine)
        engine.dispose()
        urls.append(pg)
    except pytest.skip.Exception:
        pass
    results = []
    for url in urls:
        s = open_store(url)
        fake_run(s, std, "R1", matches=[("crm_a|1000", "crm_b|1000")], reviews=[("crm_a|1001", "crm_a|1002")])
        results.append({t: read(url, t) for t in PUBLISHED_TABLES})
        s.close()
    for other in results[1:]:
        for t in PUBLISHED_TABLES:
            a = stable(results[0][t].drop(columns=["at", "created"], errors="ignore"))
            b = stable(other[t].drop(columns=["at", "created"], errors="ignore"))
            pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=t)


def test_bad_url_and_missing_tables_are_store_errors(tmp_path):
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("this is not a url")
    with pytest.raises(StoreError, match="unsupported database"):
        open_store("mysql://x@localhost/db")
    s = open_store(f"sqlite:///{tmp_path}/m.db")
    with pytest.raises(StoreError, match="missing tables: master_customer"):
        s.publish("R1", {})
    s.close()


def test_table_columns_match_the_documented_contract():
    assert columns_of("customer_xref")[:4] == ["source", "source_record_id", "record_key", "master_id"]
    assert columns_of("master_id_history") == ["master_id", "event", "target_master_id", "run_id", "at"]
    assert {"rows_read", "quarantined", "records_accepted", "masters", "records_merged"} <= set(columns_of("run_log"))


def _hold_sqlite_lock(url, run_id, ready, release):
    s = open_store(url)
    with s.lock(run_id):
        ready.set()
        release.wait(20)
    s.close()


def _try_sqlite_lock(url, result):
    s = open_store(url)
    try:
        with s.lock("RUN-OTHER", timeout=2):
            result.put("acquired")
    except RunLocked as exc:
        result.put(str(exc))
    s.close()


def test_sqlite_lock_excludes_other_processes_and_is_not_kept_by_forked_workers(tmp_path):
    import multiprocessing as mp

    url = f"sqlite:///{tmp_path}/m.db"
    spawn = mp.get_context("spawn")
    ready, release = spawn.Event(), spawn.Event()
    holder = spawn.Process(target=_hold_sqlite_lock, args=(url, "RUN-P1", ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(RunLocked, match=r"\(RUN-P1, started "):
            with open_store(url).lock("RUN-P2", timeout=0.3):
                pass
    finally:
        release.set()
        holder.join(30)
    # a worker forked while the lock is held (as the stages' process pools are) outlives the
    # run: the lock must still be free for the next run once this run leaves it
    s = open_store(url)
    fork = mp.get_context("fork")
    with s.lock("RUN-P3"):
        worker = fork.Process(target=time.sleep, args=(5,))
        worker.start()
    result = spawn.Queue()
    other = spawn.Process(target=_try_sqlite_lock, args=(url, result))
    other.start()
    try:
        assert result.get(timeout=30) == "acquired"
    finally:
        other.join(30)
        worker.terminate()
        worker.join()
        s.close()


def _publish_then_die(url: str) -> None:
    """Child process: publish a new run but die (no cleanup at all) after three tables."""
    import os

    from crmclean.store import Store

    real = Store._write_table
    calls = {"n": 0}

    def die_midway(self, conn, name, cols, rows):
        calls["n"] += 1
        if calls["n"] == 4:
            os._exit(17)
        return real(self, conn, name, cols, rows)

    Store._write_table = die_midway
    fake_run(open_store(url), make_std(25), "R-KILLED")


def test_process_killed_mid_publish_leaves_previous_master_and_lock_free(store, store_url):
    import multiprocessing as mp

    fake_run(store, make_std(10), "R1", matches=[("crm_a|1000", "crm_a|1001")])
    before = {t: read(store_url, t) for t in PUBLISHED_TABLES}
    child = mp.get_context("spawn").Process(target=_publish_then_die, args=(store_url,))
    child.start()
    child.join(60)
    assert child.exitcode == 17
    for t, df in before.items():
        pd.testing.assert_frame_equal(df, read(store_url, t), obj=t)
    assert read(store_url, "run_log").set_index("run_id").loc["R-KILLED", "status"] == "running"
    fake_run(store, make_std(25), "R2")  # the dead run's lock and transaction are gone
    assert len(read(store_url, "customer_xref")) == 25
    # the next run, holding the lock, knows the killed one is dead: marked abandoned, not running forever
    log = read(store_url, "run_log").set_index("run_id")
    assert log.loc["R-KILLED", "status"] == "abandoned"
    assert log.loc["R-KILLED", "error"] == "abandoned: the process stopped without finishing"
    assert log.loc["R-KILLED", "finished_at"] is not None and log.loc["R2", "status"] == "success"


def _run_then_sigkill(url: str, run_id: str) -> None:
    """Child process: a real run_log row and lock, then SIGKILL in the middle of publish."""
    import os
    import signal

    from crmclean.store import Store

    real = Store._write_table

    def die(self, conn, name, cols, rows):
        if name == "customer_record":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, conn, name, cols, rows)

    Store._write_table = die
    s = open_store(url)
    s.start_run(run_id, utc_now(), ["in.csv"])  # started now: only the lock can tell it is dead
    with s.lock(run_id):
        prior = s.load_state()
        combined = combine_with_prior(make_std(5), prior, Rules())
        s.publish(
            run_id,
            build_tables(
                run_id=run_id,
                records=combined.records,
                run_keys=set(combined.records["record_key"]),
                retired=combined.retired,
                quarantine=None,
                pairs=pd.DataFrame(columns=["record_key_l", "record_key_r", "decision"]),
                clusters=pd.DataFrame(
                    {"record_key": combined.records["record_key"], "cluster": range(len(combined.records))}
                ),
                golden=pd.DataFrame({"cluster": range(len(combined.records))}),
                lineage=pd.DataFrame(columns=["cluster", "field", "value", "record_key", "rule"]),
                assigned=assign_master_ids(
                    pd.DataFrame(
                        {"record_key": combined.records["record_key"], "cluster": range(len(combined.records))}
                    ),
                    prior,
                ),
                model=None,
                overrides=None,
                prior=prior,
            ),
        )


def test_sigkilled_run_is_marked_abandoned_by_the_next_run_and_a_waiting_one_is_not(store, store_url):
    """SIGKILL during publish: the run stays `running` until the next run takes the lock, which
    marks it abandoned; a run that merely registered (and may be waiting for the lock) is left alone."""
    import multiprocessing as mp
    import signal

    child = mp.get_context("spawn").Process(target=_run_then_sigkill, args=(store_url, "R-SIGKILL"))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert read(store_url, "run_log").set_index("run_id").loc["R-SIGKILL", "status"] == "running"
    assert read(store_url, "customer_xref").empty  # nothing of it was published
    store.start_run("R-WAITING", utc_now(), [])  # alive somewhere, waiting for the lock
    fake_run(store, make_std(3), "R2")
    log = read(store_url, "run_log").set_index("run_id")
    assert log.loc["R-SIGKILL", "status"] == "abandoned"
    assert log.loc["R-SIGKILL", "error"] == "abandoned: the process stopped without finishing"
    assert log.loc["R-WAITING", "status"] == "running"


def test_review_queue_is_empty_not_broken_when_no_pair_is_held_and_overrides_exist():
    """Overrides filter the held pairs with a mask; on zero held pairs it must keep the columns."""
    from crmclean.store.build import review_queue_rows

    pairs = pd.DataFrame(
        {
            "record_key_l": ["a:1"],
            "record_key_r": ["b:1"],
            "match_probability": [0.999],
            "decision": ["match"],
        }
    )
    overrides = pd.DataFrame({"kind": ["cannot_link"], "record_key_l": ["a:2"], "record_key_r": ["b:2"]})
    records = pd.DataFrame({"record_key": ["a:1", "b:1"], "source": ["a", "b"]})
    out = review_queue_rows("run-1", pairs, records, overrides, None)
    assert len(out) == 0
    assert "review_reason" in out.columns


def test_rows_are_typed_batch_by_batch_exactly_as_the_whole_column():
    """Publish makes tuples a batch at a time; how a column is written is decided on the whole
    column, so a batch of integral floats beside a batch holding 2.5 still writes `2.0`."""
    from crmclean.store.values import frame_rows

    df = make_std(4)
    df["postal_code"] = [2.0, None, 2.5, 7.0]  # not integral as a whole: float text throughout
    df["state"] = [1.0, 2.0, None, 3.0]  # integral: int text
    df["company"] = [None, {"a": 1}, "x", 5]  # mixed objects
    cols, rows = frame_rows("customer_record", df)
    whole = next(rows.batches(size=len(df)))
    assert [r for b in rows.batches(size=1) for r in b] == whole == list(rows)
    at = {c: [r[cols.index(c)] for r in whole] for c in ("postal_code", "state", "company")}
    assert at == {
        "postal_code": ["2.0", None, "2.5", "7.0"],
        "state": ["1", "2", None, "3"],
        "company": [None, '{"a": 1}', "x", "5"],
    }
    assert list(rows.take([3, 0])) == [whole[3], whole[0]]


def test_publish_in_small_batches_writes_what_one_batch_writes(tmp_path, monkeypatch):
    """A first run, a rerun with changes (delta: some rows re-inserted, last_seen_run updated in
    place) and one that replaces tables whole, written 3 rows a batch: the same tables as
    written in one batch each."""
    from crmclean.store import values

    std = pd.concat([make_std(20), make_std(7, source="crm_b")], ignore_index=True)
    changed = std.assign(email_std=[f"new{i}@x.org" if i % 4 == 0 else e for i, e in enumerate(std["email_std"])])
    links = [("crm_a|1000", "crm_b|1000"), ("crm_a|1001", "crm_a|1002"), ("crm_a|1002", "crm_b|1003")]
    results = []
    for batch_rows in (3, 100_000):
        monkeypatch.setattr(values, "BATCH_ROWS", batch_rows)
        url = f"sqlite:///{tmp_path}/b{batch_rows}.db"
        s = open_store(url)
        fake_run(s, std, "R1", matches=links, reviews=[("crm_a|1005", "crm_a|1006")])
        fake_run(s, changed.iloc[:25], "R2", matches=links[:2])
        fake_run(s, make_std(9, source="crm_c"), "R3")
        results.append({t: read(url, t) for t in PUBLISHED_TABLES})
        s.close()
    for t in PUBLISHED_TABLES:
        a, b = (stable(r[t].drop(columns=["at", "created"], errors="ignore")) for r in results)
        pd.testing.assert_frame_equal(a, b, obj=t)
    assert len(results[0]["customer_record"]) == 27 + 9


def test_extra_columns_pack_per_distinct_row_exactly_as_row_by_row():
    """Repeated extra-column rows are packed once; the text is what packing each row gives, and
    a column whose values are equal in Python but not in JSON (1, 1.0, True) is not merged."""
    from crmclean.store.values import _pack_records, _pack_rows

    df = make_std(6)
    df["region"] = ["DE", None, "DE", "FR", None, "DE"]
    df["day_first"] = [True, False, None, True, True, False]
    packed = _pack_records(df)["other_columns"].tolist()
    assert packed == _pack_rows(df[["day_first", "region"]])
    assert packed[0] == '{"day_first": true, "region": "DE"}' and packed[1] == '{"day_first": false}'
    df["n"] = [1, 1.0, True, 2, 2.5, None]
    packed = _pack_records(df)["other_columns"].tolist()
    assert packed == _pack_rows(df[["day_first", "region", "n"]])
    assert ['"n": 1,' in packed[0], '"n": 1.0}' in packed[1], '"n": true,' in packed[2]] == [True] * 3


def _sqlite_indexes(url: str) -> set:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'").all()
    engine.dispose()
    return {tuple(r) for r in rows}


def test_full_replace_rebuilds_sqlite_indexes_and_a_failure_keeps_them(tmp_path, monkeypatch):
    """A table replaced whole is loaded without its secondary indexes, built again in the same
    transaction: afterwards the schema is as created, and a crash mid-load rolls the DROP back."""
    url = f"sqlite:///{tmp_path}/m.db"
    s = open_store(url)
    created = _sqlite_indexes(url)
    assert any(name == "ix_master_lineage_master_id" for name, _, _ in created)
    fake_run(s, make_std(10), "R1", matches=[("crm_a|1000", "crm_a|1001")])
    fake_run(s, make_std(8, source="crm_c"), "R2")  # every table replaced whole
    assert _sqlite_indexes(url) == created
    before = {t: read(url, t) for t in PUBLISHED_TABLES}
    real = Store._write_table

    def crash_in_lineage(self, conn, name, cols, rows):
        if name == "master_lineage":
            raise RuntimeError("simulated crash while loading master_lineage")
        return real(self, conn, name, cols, rows)

    monkeypatch.setattr(Store, "_write_table", crash_in_lineage)
    with pytest.raises(RuntimeError):
        fake_run(s, make_std(12, source="crm_d"), "R3")
    assert _sqlite_indexes(url) == created
    for t, df in before.items():
        pd.testing.assert_frame_equal(df, read(url, t), obj=t)
    s.close()


def test_sqlite_builds_a_refilled_tables_indexes_with_a_small_page_cache(tmp_path, monkeypatch):
    """CREATE INDEX sorts in up to the page cache's size: a refilled table's indexes are built
    with SQLITE_SMALL_CACHE_KB (the 200k master_lineage index took ≈ 100 MB more at 64 MB),
    loads keep SQLITE_CACHE_KB; the spelling counts go in a batch of rows at a time."""
    from crmclean.store import dialects, statistics

    monkeypatch.setattr(statistics, "BATCH_ROWS", 2)
    url = f"sqlite:///{tmp_path}/m.db"
    s = open_store(url)
    seen: list[str] = []
    sa.event.listen(s.engine, "before_cursor_execute", lambda *a: seen.append(a[2].strip()))
    spelling_rows: list[int] = []
    real_insert = dialects.SQLiteDialect.bulk_insert

    def insert(self, raw, name, cols, rows):
        if name == statistics.SPELLING_TABLE:
            spelling_rows.append(len(rows))
        return real_insert(self, raw, name, cols, rows)

    monkeypatch.setattr(dialects.SQLiteDialect, "bulk_insert", insert)
    write = statistics.SpellingWrite({"first_name_std": {"ANA": 2, "BO": 1, "CY": 3}}, statistics=["first_name_std"])
    real_publish = Store.publish
    monkeypatch.setattr(Store, "publish", lambda self, *a, **k: real_publish(self, *a, **{**k, "spelling": write}))
    fake_run(s, make_std(10), "R1", matches=[("crm_a|1000", "crm_a|1001")])
    small, large = (
        f"PRAGMA cache_size=-{dialects.SQLITE_SMALL_CACHE_KB}",
        f"PRAGMA cache_size=-{dialects.SQLITE_CACHE_KB}",
    )
    built = [i for i, q in enumerate(seen) if q.startswith("CREATE INDEX ix_master_lineage_master_id")]
    assert built and seen[built[0] - 1] == small and seen[built[0] + 1] == large
    assert spelling_rows == [2, 1]
    assert len(read(url, statistics.SPELLING_TABLE)) == 3
    s.close()
