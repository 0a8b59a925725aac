"""`crmclean history` and `crmclean diff`: what each run did to the master.

The diff is derived from master_id_history (id events) and xref_snapshot (per-run deltas of
record → master), so it works between any two published runs without full snapshots.
"""

from __future__ import annotations

import pandas as pd

from .errors import CrmcleanError
from .store import opened

RUN_LIST_COLUMNS = (
    "run_id",
    "status",
    "started_at",
    "finished_at",
    "rows_read",
    "quarantined",
    "records_accepted",
    "masters",
    "records_merged",
    "error",
)


def list_runs(db_url: str) -> pd.DataFrame:
    """run_log, newest first, with the main counts as columns and `duration_s` (None while a
    run is running, or for one that never recorded its end)."""
    with opened(db_url) as store:
        runs = store.read_table("run_log")
    runs = runs.sort_values(["started_at", "run_id"], ascending=False, kind="stable").reset_index(drop=True)
    runs = runs[list(RUN_LIST_COLUMNS)].copy()
    started = pd.to_datetime(runs["started_at"], utc=True, errors="coerce", format="ISO8601")
    finished = pd.to_datetime(runs["finished_at"], utc=True, errors="coerce", format="ISO8601")
    seconds = (finished - started).dt.total_seconds().round(1)
    runs.insert(
        runs.columns.get_loc("finished_at") + 1, "duration_s", seconds.astype(object).where(seconds.notna(), None)
    )
    return runs


def format_duration(seconds: float | None) -> str:
    """`42.1s`, `3m05s`, `1h02m`: short enough for an 80-column table."""
    if seconds is None or seconds != seconds:
        return ""
    total = int(round(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def _runs_between(runs: pd.DataFrame, run_a: str, run_b: str) -> tuple[list[str], list[str]]:
    """(runs after run_a up to and including run_b, runs up to and including run_a), in start order."""
    for r in (run_a, run_b):
        if r not in set(runs["run_id"]):
            raise CrmcleanError(f"run {r!r} is not in this master's history (see `crmclean history`)")
    order = runs.sort_values(["started_at", "run_id"], kind="stable")["run_id"].tolist()
    ia, ib = order.index(run_a), order.index(run_b)
    if ia > ib:
        raise CrmcleanError(f"run {run_a} started after {run_b}; give the earlier run first")
    return order[ia + 1 : ib + 1], order[: ia + 1]


def _state(snap: pd.DataFrame, runs: list[str]) -> pd.Series:
    """record_key → master_id after the given runs (latest delta wins; None = record left)."""
    rank = {r: i for i, r in enumerate(runs)}
    s = snap[snap["run_id"].isin(rank)].copy()
    if not len(s):
        return pd.Series(dtype=object)
    s["_order"] = s["run_id"].map(rank)
    s = s.sort_values("_order", kind="stable").drop_duplicates("record_key", keep="last")
    s = s[s["master_id"].notna()]
    return s.set_index("record_key")["master_id"]


def diff_runs(db_url: str, run_a: str, run_b: str) -> dict:
    """Masters created, merged, split, retired and updated after run_a up to run_b, and how
    many records joined, moved between or left masters."""
    with opened(db_url) as store:
        runs = store.read_table("run_log")
        between, upto_a = _runs_between(runs, run_a, run_b)
        hist = store.read_table("master_id_history")
        snap = store.read_table("xref_snapshot")
    h = hist[hist["run_id"].isin(between)]

    def ids(event: str) -> list[str]:
        return sorted(set(h.loc[h["event"] == event, "master_id"]))

    def pairs(event: str) -> list[list[str]]:
        sub = h[h["event"] == event].drop_duplicates(["master_id", "target_master_id"])
        return sorted([list(p) for p in zip(sub["master_id"], sub["target_master_id"])])

    before = _state(snap, upto_a)
    after = _state(snap, upto_a + between)
    both = before.index.intersection(after.index)
    moved = int((before[both] != after[both]).sum())
    created = set(ids("created")) | {p[0] for p in pairs("split_from")}
    return {
        "run_a": run_a,
        "run_b": run_b,
        "runs": between,
        "created": ids("created"),
        "merged": pairs("merged_into"),  # [retired id, id it now points to]
        "split": pairs("split_from"),  # [new id, id it was split from]
        "retired": ids("retired"),
        "updated": sorted(set(ids("updated")) - created),
        "records_added": int(len(after.index.difference(before.index))),
        "records_removed": int(len(before.index.difference(after.index))),
        "records_moved": moved,
    }


def format_diff(d: dict, limit: int = 20) -> str:
    """A short human summary; long id lists are cut to `limit` entries."""

    def show(items: list, fmt) -> str:
        shown = ", ".join(fmt(i) for i in items[:limit])
        more = f" … and {len(items) - limit:,} more" if len(items) > limit else ""
        return f"{shown}{more}" if items else "-"

    runs = len(d["runs"])
    lines = [
        f"changes after {d['run_a']} up to {d['run_b']} ({runs} run{'s' if runs != 1 else ''})",
        f"  created  {len(d['created']):>8,}  {show(d['created'], str)}",
        f"  merged   {len(d['merged']):>8,}  {show(d['merged'], lambda p: f'{p[0]} → {p[1]}')}",
        f"  split    {len(d['split']):>8,}  {show(d['split'], lambda p: f'{p[0]} ← {p[1]}')}",
        f"  retired  {len(d['retired']):>8,}  {show(d['retired'], str)}",
        f"  updated  {len(d['updated']):>8,}  {show(d['updated'], str)}",
        f"  records: {d['records_added']:,} added, {d['records_moved']:,} moved to another master, "
        f"{d['records_removed']:,} removed",
    ]
    return "\n".join(lines)
