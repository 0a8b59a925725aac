"""Who holds the memory during one stage of `crmclean run`: PSS and own pages per process.

    python bench/link_memory.py --customers 20000 --work DIR [--stage link] [--workers 2]

Runs `crmclean run` on the demo exports (bench/scale.py's `ensure_exports`, reused in DIR)
while a thread reads every process's `/proc/PID/smaps_rollup` each --interval s: PSS, and
own memory (Private_Clean + Private_Dirty: pages no other process maps, e.g. the pages a
forked worker wrote to). Prints the stage table of bench/scale.py, then, for --stage, the
samples around its peak: per process PSS (own), the parent first, then its workers. Run it
with another venv's python to measure that tree's code (the `crmclean` beside sys.executable).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (bench/scale.py: exports, log phases, the stage table)

MB = 1024 * 1024


def _rollup(pid: int) -> tuple[int, int]:
    """(PSS, own) bytes of one process; (0, 0) once it is gone."""
    pss = own = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                    own += int(line.split()[1]) * 1024
    except OSError:
        pass
    return pss, own


def sample_tree(root: psutil.Process) -> dict[int, tuple[int, int]]:
    """pid -> (PSS, own) for `root` and every live descendant."""
    out = {}
    for proc in [root, *root.children(recursive=True)]:
        pss, own = _rollup(proc.pid)
        if pss:
            out[proc.pid] = (pss, own)
    return out


def run_sampled(cmd: list[str], interval: float) -> tuple[scale.Measured, list[tuple[float, dict]], int]:
    """bench/scale.py's measured run, plus per-process samples (time, {pid: (PSS, own)}) and
    the run's pid."""
    per_process: list[tuple[float, dict]] = []
    stop = threading.Event()
    holder: dict = {}

    def loop() -> None:
        while "root" not in holder and not stop.is_set():
            time.sleep(0.01)
        while not stop.is_set():
            try:
                per_process.append((time.time(), sample_tree(holder["root"])))
            except psutil.NoSuchProcess:
                return
            stop.wait(interval)

    real_popen = subprocess.Popen

    def popen(*args, **kwargs):  # scale.run_measured starts the run: note its pid
        proc = real_popen(*args, **kwargs)
        holder["root"] = psutil.Process(proc.pid)
        return proc

    sampler = threading.Thread(target=loop, daemon=True)
    sampler.start()
    scale.subprocess.Popen = popen  # type: ignore[misc]
    try:
        measured = scale.run_measured(cmd, interval)
    finally:
        scale.subprocess.Popen = real_popen  # type: ignore[misc]
        stop.set()
        sampler.join()
    return measured, per_process, holder["root"].pid


def stage_report(per_process: list[tuple[float, dict]], root_pid: int, start: float, end: float) -> list[str]:
    """The stage's samples at its start, its total PSS peak and a few around it, per process."""
    inside = [(t, s) for t, s in per_process if start <= t <= end]
    if not inside:
        return ["(no samples inside the stage)"]
    totals = [sum(p for p, _ in s.values()) for _, s in inside]
    peak = max(range(len(inside)), key=totals.__getitem__)
    picks = sorted({0, max(peak - 10, 0), peak, min(peak + 5, len(inside) - 1), len(inside) - 1})
    lines = ["time in stage   total PSS   parent PSS (own)   others: PSS (own) ..."]
    for i in picks:
        t, s = inside[i]
        parent = s.get(root_pid, (0, 0))
        others = "  ".join(f"{p / MB:,.0f} ({o / MB:,.0f})" for pid, (p, o) in sorted(s.items()) if pid != root_pid)
        mark = "  <- peak" if i == peak else ""
        lines.append(
            f"{t - start:>+10.1f} s {totals[i] / MB:>10,.0f}   {parent[0] / MB:>8,.0f} ({parent[1] / MB:,.0f})"
            f"   {others}{mark}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--stage", default="link", help="the stage whose peak is broken down (default link)")
    ap.add_argument("--work", type=Path, required=True, help="exports, database and log (exports reused)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    gen_dir, _ = scale.ensure_exports(args.customers, args.seed, args.work)
    tag = f"procs{args.customers}"
    db, log, out = args.work / f"{tag}.db", args.work / f"{tag}.log", args.work / f"out_{tag}"
    db.unlink(missing_ok=True)
    cmd = scale.crmclean_command(gen_dir, db, out, log, args.workers)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {scale.machine_line()}, {cmd[0]}", flush=True)
    measured, per_process, root_pid = run_sampled(cmd, args.interval)
    failed = measured.returncode != 0
    if failed:  # the stages that finished are still reported
        print(measured.stderr[-2000:], file=sys.stderr)
    timings = {} if failed else json.loads(measured.stdout)["timings"]
    log_text = log.read_text(encoding="utf-8")
    for row in scale.stage_rows(measured, log_text, timings):
        print(f"{row['stage']:<38} {row['wall_s']:>8.2f} s {row['cpu_s']:>8.2f} CPU s {row['peak_pss_mb']:>8,} MB PSS")
    print(f"total {measured.wall_s:.2f} s, {measured.cpu_s:.2f} CPU s, peak PSS {measured.peak_pss / MB:,.0f} MB")
    for name, start, end in scale.phases_from_log(log_text, measured.started, measured.started + measured.wall_s):
        if name == args.stage:
            print(f"--- {name}: {end - start:.1f} s")
            print("\n".join(stage_report(per_process, root_pid, start, end)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
