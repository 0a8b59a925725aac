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
