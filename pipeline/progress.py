"""Counted progress inside a stage: how much work a stage has and how much is done.

What `crmclean run` turns into its stage bars (done of total, rate, time left). The loops that
do the work say how much is coming (`expect`, or `total` when the amount is only estimated)
and how much is done (`advance`); whoever shows progress listens (`listening`). Without a
listener every call is a no-op, so library code, tests and benchmarks pay nothing.

Process-wide, not per thread: a Prefect flow runs its stages in worker threads of this process,
and Dask chunks are counted here, in the client, when their results come back.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

#: listener(event, amount, unit): "expect" (add to the total), "total" (set it), "unit", "advance"
Listener = Callable[[str, int, "str | None"], None]

_LISTENERS: list[Listener] = []
_LOCK = threading.Lock()


def expect(amount: int, unit: str) -> None:
    """`amount` more `unit`s of work are queued in the running stage (e.g. pairs to compare)."""
    _tell("expect", amount, unit)


def total(amount: int, unit: str) -> None:
    """The running stage's whole amount, when it is estimated as the work goes (rows of a file
    read in chunks: rows so far scaled by the bytes still to read)."""
    _tell("total", amount, unit)


def unit(name: str) -> None:
    """The running stage counts `name`s, its total not known yet (rows of files being read)."""
    _tell("unit", 0, name)


def advance(amount: int) -> None:
    """`amount` units of the running stage are done."""
    _tell("advance", amount, None)


def _tell(event: str, amount: int, unit: str | None) -> None:
    if not _LISTENERS or amount < 0:
        return
    with _LOCK:
        for listener in _LISTENERS:
            listener(event, int(amount), unit)


@contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Send the counts of the code run inside the block to `listener` (None: to nobody)."""
    if listener is None:
        yield
        return
    with _LOCK:
        _LISTENERS.append(listener)
    try:
        yield
    finally:
        with _LOCK:
            _LISTENERS.remove(listener)
