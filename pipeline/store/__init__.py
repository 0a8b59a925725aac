"""The master store: published tables, prior state, run log, lock (see docs/store.md)."""

from .build import build_tables
from .db import PriorState, Scoped, Store, StoreError, max_master_number, open_store
from .tables import APPENDED_TABLES, PUBLISHED_TABLES, REPLACED_TABLES, TABLES, columns_of

__all__ = [
    "APPENDED_TABLES",
    "PUBLISHED_TABLES",
    "PriorState",
    "Scoped",
    "REPLACED_TABLES",
    "Store",
    "StoreError",
    "TABLES",
    "build_tables",
    "columns_of",
    "max_master_number",
    "open_store",
]
