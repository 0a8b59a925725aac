"""The master store: published tables, prior state, run log, lock (see docs/store.md).

Modules by concern: `core` (Store, open_store), `dialects` (SQLite/PostgreSQL differences),
`errors`, `values` (frames ↔ stored rows), `locks`, `run_log`, `prior` (reading), `delta` and
`publish` (writing), `tables` (the schema), `build` (the tables a run publishes).
"""

from .build import build_tables, golden_with_spilled_lineage
from .core import Store, open_store, opened
from .errors import NoMaster, StoreError
from .prior import PriorState
from .publish import Scoped
from .tables import APPENDED_TABLES, PUBLISHED_TABLES, REPLACED_TABLES, TABLES, columns_of
from .values import max_master_number

__all__ = [
    "APPENDED_TABLES",
    "NoMaster",
    "PUBLISHED_TABLES",
    "PriorState",
    "Scoped",
    "REPLACED_TABLES",
    "Store",
    "StoreError",
    "TABLES",
    "build_tables",
    "columns_of",
    "golden_with_spilled_lineage",
    "max_master_number",
    "open_store",
    "opened",
]
