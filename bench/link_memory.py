"""Who holds the memory during one stage of `crmclean run`: PSS and own pages per process.

    python bench/link_memory.py --customers 20000 --work DIR [--stage link] [--workers 2]
    python bench/link_memory.py --save-input FILE --customers 200000 --work DIR
    python bench/link_memory.py --replay FILE [--workers 2]

Runs `crmclean run` on the demo exports (bench/scale.py's `ensure_exports`, reused in DIR)
while a thread reads every process's `/proc/PID/smaps_rollup` each --interval s: PSS, and
own memory (Private_Clean + Private_Dirty: pages no other process maps, e.g. the pages a
forked worker wrote to). Prints the stage table of bench/scale.py, then, for --stage, the
samples around its peak: per process PSS (own), the parent first, then its workers. Run it
with another venv's python to measure that tree's code (the `crmclean` beside sys.executable).

--save-input runs `crmclean run` up to link and pickles what the run hands to `link()` (its
records and rules), then stops; --replay runs `link()` on them in this process, sampled the
same way, and prints its steps' PSS peaks and a fingerprint of its output (pairs, model,
blocking summary) to compare two trees' code on the same input: cheaper and steadier than a run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
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


class _Stop(Exception):
    """Raised by the stand-in link() once its input is saved."""


def save_input(path: Path, run_args: list[str]) -> None:
    """`crmclean run run_args...` in this process, stopped at link with link's input pickled."""
    import crmclean.cli
    import crmclean.run

    def saved(records, rules, **kwargs):
        with open(path, "wb") as fh:
            pickle.dump({"records": records, "rules": rules, "kwargs": kwargs}, fh, protocol=5)
        raise _Stop

    path.unlink(missing_ok=True)
    crmclean.run.link_module.link = saved
    try:  # the CLI reports the stop as an internal error and exits
        crmclean.cli.app(["run", *run_args], standalone_mode=False)
    except (_Stop, SystemExit):
        pass
    if not path.exists():
        raise RuntimeError("the run ended before link")


def fingerprint(result) -> dict[str, str]:
    """Short hashes of link's output: the pairs (evidence read as text), the model (less its
    timings and date) and the blocking summary."""
    pairs = result.pairs.astype({"evidence": object})
    model = {k: v for k, v in result.model.items() if k not in ("timings", "created")}

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:12]

    return {
        "pairs": digest(pd.util.hash_pandas_object(pairs.astype(str), index=False).to_numpy().tobytes()),
        "model": digest(json.dumps(model, sort_keys=True, default=str).encode()),
        "summary": digest(result.blocking_summary.astype(str).to_csv(index=False).encode()),
    }


def replay(path: Path, workers: int, interval: float) -> list[str]:
    """`link()` on a saved input, in this process, sampled: the steps' peaks and the output's
    fingerprint."""
    from crmclean.link import link

    with open(path, "rb") as fh:
        saved = pickle.load(fh)
    me = psutil.Process(os.getpid())
    samples: list[tuple[float, dict]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            samples.append((time.time(), sample_tree(me)))
            stop.wait(interval)

    before = sum(p for p, _ in sample_tree(me).values())
    cpu = psutil.Process().cpu_times()
    sampler = threading.Thread(target=loop, daemon=True)
    start = time.time()
    sampler.start()
    try:
        result = link(saved["records"], saved["rules"], **{**saved["kwargs"], "workers": workers})
    finally:
        stop.set()
        sampler.join()
    end, after = time.time(), psutil.Process().cpu_times()
    own_cpu = after.user + after.system - cpu.user - cpu.system
    kids_cpu = after.children_user + after.children_system - cpu.children_user - cpu.children_system
    lines = [
        f"link(): {len(saved['records']):,} records, {len(result.pairs):,} kept pairs, {end - start:.1f} s, "
        f"CPU {own_cpu:.1f} s parent + {kids_cpu:.1f} s workers; PSS before {before / MB:,.0f} MB"
    ]
    t = start
    for step, secs in result.timings.items():  # each step's peak, from its laps, per process
        inside = [s for ts, s in samples if t <= ts <= t + secs]
        peak = max(inside, key=lambda s: sum(p for p, _ in s.values()), default={})
        each = "  ".join(f"{p / MB:,.0f} ({o / MB:,.0f})" for _, (p, o) in sorted(peak.items()))
        lines.append(f"  {step:<8} {secs:>6.2f} s  peak PSS {sum(p for p, _ in peak.values()) / MB:>6,.0f} MB: {each}")
        t += secs
    lines.append("  (PSS (own) of each process at the peak, this process first)")
    lines.append("fingerprint " + json.dumps(fingerprint(result)))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--stage", default="link", help="the stage whose peak is broken down (default link)")
    ap.add_argument("--work", type=Path, help="exports, database and log (exports reused)")
    ap.add_argument("--save-input", type=Path, help="run up to link, pickle link's input here, stop")
    ap.add_argument("--replay", type=Path, help="link() in this process on a --save-input file")
    args = ap.parse_args(argv)
    if args.replay:
        print("\n".join(replay(args.replay, args.workers, args.interval)))
        return 0
    if args.work is None:
        ap.error("--work is required unless --replay")
    args.work.mkdir(parents=True, exist_ok=True)
    gen_dir, _ = scale.ensure_exports(args.customers, args.seed, args.work)
    tag = f"procs{args.customers}"
    db, log, out = args.work / f"{tag}.db", args.work / f"{tag}.log", args.work / f"out_{tag}"
    db.unlink(missing_ok=True)
    cmd = scale.crmclean_command(gen_dir, db, out, log, args.workers)
    if args.save_input:
        save_input(args.save_input, cmd[2:])
        return 0
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
