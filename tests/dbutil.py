"""Small helpers shared by the tests that read a published database."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("CRMCLEAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_pg_database(prefix: str) -> Iterator[tuple[str, sa.Engine, str]]:
    """A fresh PostgreSQL database, dropped afterwards: (url, admin engine in autocommit, name).
    Skips when the server is unreachable, and fails instead under CI=true, where the
    PostgreSQL tests must run."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc.orig).splitlines()[0]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(reason)
    try:
        yield sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), admin, name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def read_table(db_url: str, name: str) -> pd.DataFrame:
    """A whole published table, read with a short-lived engine (no connection left open)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return pd.read_sql_table(name, conn)
    finally:
        engine.dispose()


def seed_master(db_url: str, tables: dict[str, pd.DataFrame]) -> str:
    """A master with the store's schema holding these rows (columns a table lacks are dropped,
    customer_record extras packed as the store packs them): fixtures for the read commands."""
    from crmclean.store import open_store
    from crmclean.store.values import frame_rows

    store = open_store(db_url)
    try:
        with store._write_conn() as conn:
            for name, df in tables.items():
                store._write_table(conn, name, *frame_rows(name, df))
    finally:
        store.close()
    return db_url


def sqlite_files(folder) -> list[str]:
    """Every file a SQLite master could leave in `folder` (db, -wal, -shm, .lock)."""
    from pathlib import Path

    return sorted(p.name for p in Path(folder).iterdir())
