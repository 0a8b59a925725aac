"""Imported only by the fork server of the standardize pool (`crmclean.executors`), never by a run.

The standardize workers are forked from that small server instead of from the run, so they do
not inherit (and dirty) the run's record frame. Importing this loads every standardizer and its
reference tables (pinyin, OpenCC, USPS, divisions, usaddress's model) once in the server, then
freezes them out of the garbage collector: a collection in a worker would otherwise write to the
header of every container it visits and so copy the shared pages into each worker.
"""

from __future__ import annotations

import gc

from . import standardize_address, standardize_company, standardize_date, standardize_email, standardize_name
from .national_id import standardize_national_id
from .phones import route_phones
from .text import to_simplified

# One value of each kind, to load what the standardizers load lazily on first use.
_SAMPLES = (
    (standardize_name, ("Wm Smith", None, None)),
    (standardize_name, ("谢雪东", None, None)),
    (standardize_name, ("Du Dong Feng", None, None)),
    (standardize_address, ("123 Main St Apt 4 456 Oak Ave", "Springfield", "IL", "62701", "US")),
    (standardize_address, ("北京市朝阳区建国路88号", None, None, None, "CN")),
    (standardize_email, ("Ünïcode.User@Example.COM",)),
    (route_phones, ("+1 (555) 123-4567", "010 6552 9988", "+44 20 7946 0958", None)),
    (standardize_date, ("03/04/2020",)),
    (standardize_company, ("Acme Holdings Ltd.",)),
    (standardize_national_id, ("110101199003074514",)),
    (to_simplified, ("臺灣",)),
)


def warm() -> None:
    """Run each standardizer once; their per-value caches are emptied again after."""
    for fn, args in _SAMPLES:
        try:
            fn(*args)
        except Exception:  # a warm-up that fails only leaves the loading to the first real value
            pass
        clear = getattr(fn, "cache_clear", None)
        if clear is not None:
            clear()


warm()
gc.collect()
gc.freeze()
