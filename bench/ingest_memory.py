"""Peak memory of ingest alone: `python bench/ingest_memory.py EXPORTS_DIR [--chunk-rows N]`.

Runs `crmclean.ingest.ingest` on the exports in a fresh process and prints the process's peak
RSS (getrusage, so every transient copy counts), the RSS before reading (imports and rules),
the records and quarantined rows, the wall time, and the bytes of peak per record (what the
memory guard of `crmclean run` multiplies by the record count). Issue 14: inputs are read in
chunks, so a large CSV is never held whole as bytes, text and rows at once."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def measure(exports: Path, chunk_rows: int | None) -> dict:
    """In this process: ingest once, return the figures."""
    import psutil

    from crmclean.ingest import ingest
    from crmclean.settings import load_rules

    rules = load_rules()
    if chunk_rows is not None:  # as `chunk_rows` in rules/sources.yaml would set it
        rules.sources.setdefault("defaults", {})["chunk_rows"] = chunk_rows
    before = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    result = ingest([exports], rules)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    after = psutil.Process().memory_info().rss  # what the records frame keeps
    records = len(result.records)
    return {
        "records": records,
        "quarantined": len(result.quarantine),
        "rows_read": int(result.rows_read),
        "wall_s": round(wall, 1),
        "rss_before_mb": round(before / 2**20),
        "peak_rss_mb": round(peak / 2**20),
        "rss_after_mb": round(after / 2**20),
        "peak_over_start_mb": round((peak - before) / 2**20),
        "bytes_per_record": round((peak - before) / max(records, 1)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("exports", type=Path)
    ap.add_argument("--chunk-rows", type=int, help="rows per chunk (default: the reader's CHUNK_ROWS)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.exports, args.chunk_rows)))
        return 0
    cmd = [sys.executable, __file__, str(args.exports), "--child"]
    if args.chunk_rows is not None:
        cmd += ["--chunk-rows", str(args.chunk_rows)]
    figures = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    for key, value in figures.items():
        print(f"{key:>20}: {value:,}" if isinstance(value, int) else f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
