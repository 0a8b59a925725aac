"""What holds the run's memory when link and cluster start (issue 14).

    python bench/frame_memory.py --customers 20000 [--work DIR] [--json out.json]

Runs `run_pipeline` on the CRM demo exports (seed 42, reused from DIR/gen<N>_seed42 when it
holds them) with a stage runner that, before the `link` and the `cluster` stage, collects the
garbage, trims the heap and reports: the process's RSS/PSS; per column of the standardized
record frame its dtype, `memory_usage(deep=True)` and the bytes of the Python objects it is the
first column to hold (columns share str objects: the second figure adds up to the frame's
real size); the other frames reachable from the stage results; the functools caches alive
(entries); Python's small-object allocator in use. Slow (it visits every cell): a bench tool.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

MB = 1024 * 1024


def _pss() -> tuple[int, int]:
    rss = pss = 0
    with open("/proc/self/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    return rss, pss


def column_sizes(frame: pd.DataFrame, seen: set[int]) -> list[dict]:
    """Per column: dtype, deep bytes, bytes of the array and objects no earlier column (or
    frame) held."""
    rows = []
    for name in frame.columns:
        col = frame[name]
        deep = int(col.memory_usage(deep=True, index=False))
        own = deep
        if col.dtype != object:  # categorical codes, Arrow buffers: shared by frames that share the column
            address = _buffer_address(col)
            own = deep if address not in seen else 0
            seen.add(address)
        else:
            values = col.to_numpy()
            address = values.__array_interface__["data"][0]  # frames share column arrays too
            own = values.nbytes if address not in seen else 0
            seen.add(address)
            for v in values:
                i = id(v)
                if i not in seen:
                    seen.add(i)
                    own += sys.getsizeof(v)
        rows.append({"column": str(name), "dtype": str(col.dtype), "deep_mb": deep / MB, "own_mb": own / MB})
    return rows


def _buffer_address(col: pd.Series) -> int:
    """Where a non-object column's data starts (frames holding the same column share it)."""
    array = col.array
    if isinstance(array, pd.Categorical):
        return array.codes.__array_interface__["data"][0]
    if hasattr(array, "__arrow_array__"):
        arrow = array.__arrow_array__()
        chunks = getattr(arrow, "chunks", [arrow])
        return chunks[0].buffers()[-1].address if chunks else id(array)
    return col.to_numpy().__array_interface__["data"][0]


def caches() -> list[dict]:
    """crmclean's functools.lru_cache wrappers with over 1,000 entries, largest first (found through
    the modules: gc.get_objects misses what gc.freeze froze)."""
    out, seen = [], set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("crmclean"):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, functools._lru_cache_wrapper) and id(obj) not in seen:
                seen.add(id(obj))
                size = obj.cache_info().currsize
                if size > 1000:
                    out.append({"function": f"{obj.__module__}.{obj.__qualname__}", "entries": size})
    return sorted(out, key=lambda r: -r["entries"])


def pymalloc() -> dict:
    """Python's small-object allocator: arenas held, bytes in live blocks and in free ones
    (sys._debugmallocstats, read from stderr)."""
    import os
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    out = {}
    for line in text.splitlines():
        for key, label in (("arenas", "# arenas highwater mark"), ("arenas_now", "# arenas allocated current")):
            if line.startswith(label):
                out[key] = int(line.split("=")[-1].strip().replace(",", ""))
        for key, label in (
            ("used_bytes", "# bytes in allocated blocks"),
            ("free_bytes", "# bytes in available blocks"),
        ):
            if line.startswith(label):
                out[key] = int(line.split("=")[-1].strip().replace(",", ""))
    return out


def report(stage: str, frames: dict[str, pd.DataFrame], out: dict) -> None:
    from crmclean import memory, spill

    gc.collect()
    spill.release_arrow()
    memory.release_freed()
    rss, pss = _pss()
    seen: set[int] = set()
    per_frame = {}
    for name, frame in frames.items():
        if isinstance(frame, pd.DataFrame):
            cols = column_sizes(frame, seen)
            per_frame[name] = {
                "rows": len(frame),
                "own_mb": sum(c["own_mb"] for c in cols),
                "deep_mb": sum(c["deep_mb"] for c in cols),
                "columns": cols,
            }
    blocks, heap = sys.getallocatedblocks(), pymalloc()
    out[stage] = {
        "rss_mb": rss / MB,
        "pss_mb": pss / MB,
        "blocks": blocks,
        "pymalloc": heap,
        "frames": per_frame,
        "caches": caches(),
    }
    print(f"\n== before {stage}: RSS {rss / MB:,.0f} MB, PSS {pss / MB:,.0f} MB, {blocks:,} Python blocks")
    print(
        f"  pymalloc: {heap.get('arenas_now', 0):,} arenas now, live blocks {heap.get('used_bytes', 0) / MB:,.0f} MB,"
        f" free blocks {heap.get('free_bytes', 0) / MB:,.0f} MB"
    )
    for name, f in per_frame.items():
        print(f"  {name}: {f['rows']:,} rows, own {f['own_mb']:,.1f} MB (deep {f['deep_mb']:,.1f})")
    std = per_frame.get("std")
    if std:
        print("  std columns by own MB (dtype, deep MB):")
        for c in sorted(std["columns"], key=lambda c: -c["own_mb"]):
            print(f"    {c['column']:32s} {c['dtype']:10s} own {c['own_mb']:8.1f}  deep {c['deep_mb']:8.1f}")
    for c in out[stage]["caches"][:15]:
        print(f"  cache {c['function']}: {c['entries']:,} entries")
    sys.stdout.flush()


class _Stop(Exception):
    """Raised by the runner after the cluster report with --until-cluster."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=Path("/tmp/frame_memory"))
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--until-cluster", action="store_true", help="stop after the cluster report (the rest is not measured)"
    )
    args = ap.parse_args()
    from crmclean import generate
    from crmclean.run import RunOptions, run_pipeline

    gen = args.work / f"gen{args.customers}_seed{args.seed}"
    if not gen.exists():
        generate.generate(customers=args.customers, seed=args.seed, out_dir=gen)
    inputs = sorted(p for p in gen.iterdir() if p.suffix in (".csv", ".xlsx", ".tsv") and p.stem != "truth")
    out: dict = {}

    def runner(name, stage, *a):
        if name == "link":
            _env, standardized, _prior = a
            report("link", {"std": standardized.std, "quarantine": standardized.quarantine}, out)
        elif name == "cluster":
            _env, standardized, _prior, linked, _store = a
            frames = {"std": standardized.std, "working set": linked.combined.records, "pairs": linked.pairs}
            frames.update({f"link {k}": v for k, v in vars(linked.result).items() if isinstance(v, pd.DataFrame)})
            report("cluster", frames, out)
            if args.until_cluster:
                raise _Stop
        return stage(*a)

    run_dir = args.work / f"frame_memory_{args.customers}"
    opts = RunOptions(inputs=inputs, db_url=f"sqlite:///{run_dir}/master.db", out_dir=run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "master.db").unlink(missing_ok=True)
    try:
        run_pipeline(opts, runner=runner)
    except _Stop:
        pass
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
