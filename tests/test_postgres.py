"""PostgreSQL-only behaviour of the store, against the real local server.

One throwaway database per test session (`crmclean_test_<random>`), dropped at the end. Without
a reachable server these tests skip, except in CI (CI=true), where a skip would hide a broken
backend and is a failure instead. The backend-neutral store tests in test_store.py also run
against PostgreSQL through the `pg_url` fixture defined here.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from crmclean.errors import RunLocked
from crmclean.store import StoreError, open_store
from dbutil import throwaway_pg_database


pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def pg_url():
    """A fresh database for the session; skip (or fail in CI) when PostgreSQL is unreachable."""
    with throwaway_pg_database("crmclean_test") as (url, _, _):
        yield url


@pytest.fixture
def pg_store(pg_url):
    """A store on the session database with every table emptied (tests are independent)."""
    from crmclean.store.tables import metadata

    engine = sa.create_engine(pg_url)
    metadata.drop_all(engine)
    engine.dispose()
    store = open_store(pg_url, lock_timeout=1)
    yield store
    store.close()


def _hold_lock(url: str, run_id: str, ready, release) -> None:
    store = open_store(url)
    store.start_run(run_id, "2026-01-01T00:00:00Z", [])
    with store.lock(run_id):
        ready.set()
        release.wait(20)
    store.close()


def test_advisory_lock_blocks_a_second_process_and_names_the_holder(pg_store, pg_url):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(pg_url, "RUN-HOLDER", ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        t0 = time.monotonic()
        with pytest.raises(RunLocked) as info:
            with pg_store.lock("RUN-SECOND", timeout=0.6):
                pass
        assert time.monotonic() - t0 >= 0.5  # it waited before giving up
        assert "RUN-HOLDER" in str(info.value) and "started 2026-01-01" in str(info.value)
    finally:
        release.set()
        holder.join(30)
    with pg_store.lock("RUN-SECOND", timeout=5):  # free again once the holder is gone
        pass


def test_publish_uses_copy_in_one_transaction(pg_store, monkeypatch):
    """Bulk loads go through psycopg COPY on the same connection as the DELETEs."""
    from test_store import fake_run, make_std

    seen = []
    import psycopg

    real_copy = psycopg.Cursor.copy

    def spy(self, statement, *a, **k):
        seen.append((str(statement).split()[1], self.connection.info.transaction_status))
        return real_copy(self, statement, *a, **k)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    fake_run(pg_store, make_std(50), run_id="R1")
    names = [s[0] for s in seen]
    assert '"master_customer"' in names and '"customer_record"' in names
    # every COPY ran inside an open transaction (INTRANS), never in autocommit
    assert {s[1] for s in seen} == {psycopg.pq.TransactionStatus.INTRANS}


def test_lost_connection_mid_publish_is_a_clean_retryable_error(pg_store, pg_url, monkeypatch):
    from test_store import fake_run, make_std, read

    from crmclean.store import Store

    fake_run(pg_store, make_std(30), run_id="R1")
    before = read(pg_url, "master_customer")
    real = Store._write_table
    calls = {"n": 0}

    def kill_after_first(self, conn, name, cols, rows):
        calls["n"] += 1
        if calls["n"] == 2:  # the server drops our connection in the middle of publish
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            killer = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
            with killer.connect() as k:
                k.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            killer.dispose()
        return real(self, conn, name, cols, rows)

    monkeypatch.setattr(Store, "_write_table", kill_after_first)
    with pytest.raises(StoreError) as info:
        fake_run(pg_store, make_std(40), run_id="R2")
    assert "master is unchanged" in str(info.value) and "R2" in str(info.value)
    pd.testing.assert_frame_equal(before, read(pg_url, "master_customer"))
    monkeypatch.setattr(Store, "_write_table", real)
    fake_run(pg_store, make_std(40), run_id="R3")  # the same store object recovers
    assert len(read(pg_url, "master_customer")) == 40


def test_read_only_commands_on_an_empty_database_refuse_and_create_no_table(tmp_path):
    """A fresh PostgreSQL database (created and dropped here) is not a master: history, diff,
    review export/apply, explain and evaluate all say so and leave it without a table."""
    from crmclean.errors import CrmcleanError
    from crmclean.evaluate import evaluate_db
    from crmclean.explain import explain_master
    from crmclean.history import diff_runs, list_runs
    from crmclean.review import apply_review, export_review

    sheet = tmp_path / "decisions.csv"
    sheet.write_text("decision,record_key_l,record_key_r\nmatch,a|1,b|2\n", encoding="utf-8")
    truth = tmp_path / "truth.csv"
    truth.write_text("source,source_record_id,entity_id,scenario\nA,1,E1,normal\n", encoding="utf-8")
    with throwaway_pg_database("crmclean_empty") as (url, _, name):
        for command in (
            lambda: list_runs(url),
            lambda: diff_runs(url, "R1", "R2"),
            lambda: export_review(url, tmp_path / "out.csv"),
            lambda: apply_review(url, sheet),
            lambda: explain_master(url, "C0000001"),
            lambda: evaluate_db(truth, url),
        ):
            with pytest.raises(CrmcleanError) as info:
                command()
            assert str(info.value).startswith("no crmclean master at postgresql+psycopg://"), info.value
            assert str(info.value).endswith(f"/{name}: run 'crmclean run' first")
        engine = sa.create_engine(url)
        assert sa.inspect(engine).get_table_names() == []
        engine.dispose()


def test_unreachable_server_is_a_store_error():
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    assert "127.0.0.1:1" in str(info.value)
