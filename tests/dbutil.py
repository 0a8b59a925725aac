"""Small helpers shared by the tests that read a published database."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa


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
