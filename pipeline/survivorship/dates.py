"""Survivorship strategies for dates: which of a customer's birth dates is a misreading.

- `convention_read`: 1 for a date whose raw text ("05/10/2005") was read by its column's
  day/month convention — both parts could be a month — when another record of the customer holds
  the day/month swap of it read without doubt (ISO, 2005年10月5日, a day above 12);
- `near_support`: minus the records holding the date, plus `weight` for each record holding a
  day/month swap or a one-digit typo of it (the agreeing majority gathers its near misses).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_AB_Y = r"^\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{2}|\d{4})\s*$"


def ambiguous_raw(raw: np.ndarray) -> np.ndarray:
    """Per raw text: a/b/y with both a and b from 1 to 12 and a != b (day or month first?)."""
    parts = pd.Series(raw, dtype=object).astype("string").str.extract(_AB_Y)
    a = pd.to_numeric(parts[0], errors="coerce")
    b = pd.to_numeric(parts[1], errors="coerce")
    both = a.between(1, 12) & b.between(1, 12) & (a != b)
    return both.fillna(False).to_numpy(bool)


def swap_day_month(iso: np.ndarray) -> np.ndarray:
    """YYYY-MM-DD -> YYYY-DD-MM where the day can be a month (else None)."""
    text = pd.Series(iso, dtype=object).astype("string")
    parts = text.str.extract(r"^(\d{4})-(\d{2})-(\d{2})$")
    ok = pd.to_numeric(parts[2], errors="coerce").between(1, 12).fillna(False)
    swapped = parts[0] + "-" + parts[2] + "-" + parts[1]
    return swapped.where(ok, None).astype(object).where(ok, None).to_numpy(object)


def convention_read(cluster: np.ndarray, values: np.ndarray, ambiguous: np.ndarray) -> np.ndarray:
    """1 for a row whose date was read by convention (`ambiguous`) while a row of the same
    cluster read without doubt holds its day/month swap; else 0. `values` are ISO texts (None =
    no value)."""
    key = np.zeros(len(cluster), np.int64)
    has = pd.notna(values)
    sure = has & ~ambiguous
    if not (has & ambiguous).any() or not sure.any():
        return key
    # one code per distinct date, its swap looked up once per distinct date (not per row), and
    # (cluster, date) pairs compared as integers
    codes = np.full(len(values), -1, np.int64)
    codes[has], dates = pd.factorize(values[has].astype(str))
    swapped = swap_day_month(np.asarray(dates, dtype=object))
    swap_code = pd.Index(dates).get_indexer(pd.Series(swapped, dtype=object).fillna("").to_numpy())
    width = len(dates) + 1
    held = cluster[sure].astype(np.int64) * width + codes[sure]
    doubt = np.flatnonzero(has & ambiguous)
    swap_of = swap_code[codes[doubt]]
    probe = cluster[doubt].astype(np.int64) * width + swap_of
    key[doubt[(swap_of >= 0) & np.isin(probe, held)]] = 1
    return key


def near_dates(a: str, b: str) -> bool:
    """A day/month swap or one differing digit of each other (ISO dates, a != b)."""
    if a == b or len(a) != len(b):
        return False
    if len(a) == 10 and a[:5] == b[:5] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
        return True
    return sum(x != y for x, y in zip(a, b)) == 1


def near_support(cluster: np.ndarray, values: np.ndarray, weight: float) -> np.ndarray:
    """Per row: minus (records holding its date + `weight` x records holding a near date).
    Only clusters with two or more distinct dates are compared (the others score 0)."""
    out = np.zeros(len(cluster), float)
    has = pd.notna(values)
    if not has.any():
        return out
    units = pd.DataFrame({"cluster": cluster[has], "value": values[has].astype(str)})
    units = units.groupby(["cluster", "value"], sort=False).size().rename("n").reset_index()
    units = units[units["cluster"].map(units["cluster"].value_counts()).to_numpy() > 1]
    if units.empty:
        return out
    both = units.merge(units, on="cluster", suffixes=("", "_o"))
    same = (both["value"] == both["value_o"]).to_numpy()
    near = np.fromiter((near_dates(a, b) for a, b in zip(both["value"], both["value_o"])), bool, count=len(both))
    votes = both["n_o"].to_numpy() * np.where(same, 1.0, np.where(near, weight, 0.0))
    support = pd.Series(votes).groupby([both["cluster"].to_numpy(), both["value"].to_numpy()]).sum()
    index = pd.MultiIndex.from_arrays([cluster[has], values[has].astype(str)])
    out[has] = -support.reindex(index).fillna(0.0).to_numpy()
    return out
