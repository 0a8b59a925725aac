"""The memory guard: a run that would need more memory than there is stops before the heavy
stages, with the figures and a way out, instead of being killed by the kernel mid-run.

The estimate is the records the run will standardize, link and cluster times what a record
costs at the run's peak, measured by `bench/scale.py`; it is compared with the memory this
machine has available now (or a limit the user sets: `--memory-limit` / CRMCLEAN_MEMORY_LIMIT).
It runs after ingest, when the record count is known and nothing has been published.
"""

from __future__ import annotations

import ctypes
import gc
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import psutil

from .errors import CrmcleanError

#: growth of the run's memory (PSS, process and workers) per record at its peak, bench/scale.py,
#: 2026-12-07 (ninth session): 200k customers (peak 1,878 MB - start-up 325 MB) / 367,135 records
#: ≈ 4.2 KB; 2M customers before that session's memory work (15,811 - 262 MB) / 3,668,748 records
#: ≈ 4.2 KB; the most any size measured since the eighth session: 4.7 KB. Rounded up for what a
#: machine's other processes and the allocator's growth between samples take.
BYTES_PER_RECORD = 5_000
LIMIT_ENVVAR = "CRMCLEAN_MEMORY_LIMIT"
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


class MemoryTooSmall(CrmcleanError):
    """The run would need more memory than is available: stopped before anything is published."""


def parse_limit(text: str | None) -> int | None:
    """'8G', '512M', '2.5GB', '1000000' → bytes; 'off' or '0' → 0 (no check); None/'' → None
    (the memory available now). A bad value is a CrmcleanError naming it."""
    if text is None or not str(text).strip():
        return None
    if str(text).strip().lower() in {"off", "0", "none", "no"}:
        return 0
    match = _SIZE.match(str(text))
    if not match:
        raise CrmcleanError(f"memory limit {text!r} is not a size (e.g. 8G, 512M, or off)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def available_bytes() -> int:
    """Memory this run can still take: what the OS reports available (page cache included)."""
    return int(psutil.virtual_memory().available)


def own_bytes() -> int:
    """This process's resident memory now (what a limit already has to hold)."""
    return int(psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class Estimate:
    records: int
    needed: int  # bytes the run still needs
    available: int  # bytes it may still take
    limit: int | None  # the user's limit, None: the machine's available memory

    @property
    def fits(self) -> bool:
        return self.needed <= self.available


def estimate(records: int, limit: int | None) -> Estimate:
    """What `records` records will still need against what is available under `limit`."""
    needed = records * BYTES_PER_RECORD
    room = available_bytes() if limit is None else max(limit - own_bytes(), 0)
    return Estimate(records=records, needed=needed, available=room, limit=limit)


def check(records: int, limit: int | None, workers: int) -> Estimate:
    """Raise MemoryTooSmall when the run would not fit (`limit` 0: never checked)."""
    if limit == 0:
        return Estimate(records, 0, 0, 0)
    found = estimate(records, limit)
    if found.fits:
        return found
    where = (
        f"is left of --memory-limit {_gb(found.limit or 0)} (this process already holds {_gb(own_bytes())})"
        if found.limit
        else "is available on this machine now"
    )
    fewer = f" or with fewer --workers (now {workers})" if workers > 1 else ""
    raise MemoryTooSmall(
        f"this run would need about {_gb(found.needed)} more memory ({found.records:,} records × "
        f"{BYTES_PER_RECORD / 1000:.0f} KB a record, measured by bench/scale.py) but only {_gb(found.available)} "
        f"{where}; stopped before standardizing, nothing was published. Run the input in smaller parts "
        f"(the master is incremental: each run adds to it){fewer}, free memory, or set "
        f"--memory-limit (e.g. 16G, or off to skip this check)"
    )


def release_freed() -> None:
    """Return the heap pages glibc and Arrow hold free to the OS, after a stage. A stage's
    transient frames are freed in holes between objects that live on (the records frame),
    which glibc otherwise keeps resident for the rest of the run (no trim without glibc)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    if "pyarrow" in sys.modules:  # not imported yet: it holds nothing
        release_arrow()


def release_arrow() -> None:
    """Hand Arrow's freed memory back to the OS: its allocator (mimalloc) keeps it otherwise,
    and the ~0.4 GB that building the 200k raw column took would stay resident all run."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


@lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not Linux/glibc (macOS, Windows, musl): nothing to trim
        return None


def _gb(value: int) -> str:
    return f"{value / 2**30:.1f} GB" if value >= 2**30 else f"{value / 2**20:.0f} MB"


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block that makes many objects and no reference
    cycles (reading the exports: a list per row and column; a standardize chunk: result tuples
    and cache entries). Every few hundred thousand allocations trigger a full collection that
    visits every object the process holds: ≈ 1 of 7 CPU s of ingest and 29.0 → 24.6 CPU s of
    standardize in one process at 200k customers. A collector already off stays off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
