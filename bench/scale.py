"""Scale bench: wall time, CPU time and peak memory per stage of `crmclean run`, end to end.

    python bench/scale.py --sizes 20000 200000 [--splink] [--work DIR] [--json out.json]
    python bench/scale.py --sizes 20000 --incremental --work DIR   # the nightly +1 % run (issue 14)

For each size: generate the CRM demo exports (`crmclean.generate`, seed 42; reused when DIR
already holds them), then run `crmclean run --no-prefect --json --log-file …` as a subprocess
into a fresh SQLite database while a sampler thread reads the process tree (the run and its
worker processes) every --interval seconds: CPU time (user + system, including reaped
children) and resident memory (sum of RSS, and sum of PSS, which counts pages shared by forked
workers once). Stage walls are the run's own `timings` (`run --json`); the CPU and peak memory
of a stage are taken from the samples between the stage's `started` and `done` lines in the
run's log file. `--splink` then runs Splink (bench/bench.py's `run_splink`) on the same
exports in a subprocess measured the same way.

`--incremental` measures the nightly run instead: bench/bench.py's 99 % + 1 % split of the
exports (the late 1 % of customers as `<source>_delta` files), a full run of the 99 % into a
fresh master, then a run of the delta files alone on a copy of that master; both measured as
above, and the delta run's share of the full run's wall and CPU (issue 14's target: <= 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
STAGE_LINE = re.compile(r"^(\S+ \S+) INFO crmclean\.run: stage (.+?) (started|done after)")
RUN_LINE = re.compile(r"^(\S+ \S+) INFO crmclean\.run: run \S+ (started|\w+ after)")


@dataclass
class Sample:
    t: float  # time.time()
    cpu: float  # seconds, whole tree
    rss: int  # bytes, sum over the tree
    pss: int  # bytes, sum over the tree (0 where smaps_rollup is unreadable)
    procs: int


def _pss(pid: int) -> int:
    """Proportional set size from /proc (pages shared by forked workers counted once overall)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_sample(root: psutil.Process) -> Sample:
    """CPU and memory of `root` and every live descendant. A reaped child's CPU is in its
    parent's children_user/children_system, so finished workers still count."""
    cpu, rss, pss, n = 0.0, 0, 0, 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            with proc.oneshot():
                times, mem = proc.cpu_times(), proc.memory_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        cpu += times.user + times.system + times.children_user + times.children_system
        rss += mem.rss
        pss += _pss(proc.pid)
        n += 1
    return Sample(time.time(), cpu, rss, pss, n)


@dataclass
class Measured:
    """A finished subprocess: wall, CPU from rusage (exact), and the sampled tree."""

    returncode: int
    started: float  # time.time() at start
    wall_s: float
    cpu_s: float
    stdout: str
    stderr: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def peak_rss(self) -> int:
        return max((s.rss for s in self.samples), default=0)

    @property
    def peak_pss(self) -> int:
        return max((s.pss for s in self.samples), default=0)


def run_measured(cmd: list[str], interval: float, cwd: Path | None = None) -> Measured:
    """Run `cmd`, sampling its process tree every `interval` s until it exits."""
    before = _children_cpu()
    started, t0 = time.time(), time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    samples: list[Sample] = []
    stop = threading.Event()

    def sample_loop() -> None:
        while not stop.is_set():
            try:
                samples.append(tree_sample(root))
            except psutil.NoSuchProcess:
                return
            stop.wait(interval)

    sampler = threading.Thread(target=sample_loop, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - t0
    return Measured(proc.returncode, started, round(wall, 2), round(_children_cpu() - before, 2), out, err, samples)


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------ stages from the run's log
def _log_time(stamp: str) -> float:
    """The log's `asctime` (local time, ms) as time.time() seconds."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def phases_from_log(log_text: str, started: float, ended: float) -> list[tuple[str, float, float]]:
    """(name, start, end) in time.time() seconds: start-up before the run's first line, each
    stage between its `started` and `done` lines, and the rest after the run's last line (report,
    Data Docs, interpreter exit)."""
    phases: list[tuple[str, float, float]] = []
    open_at: dict[str, float] = {}
    run_start = run_end = None
    for line in log_text.splitlines():
        if m := STAGE_LINE.match(line):
            stamp, name, what = _log_time(m[1]), m[2], m[3]
            if what == "started":
                open_at[name] = stamp
            elif name in open_at:
                phases.append((name, open_at.pop(name), stamp))
        elif m := RUN_LINE.match(line):
            if m[2] == "started":
                run_start = _log_time(m[1])
            else:
                run_end = _log_time(m[1])
    head = [("(start-up: imports, before the run)", started, run_start)] if run_start else []
    tail = [("(after the run: exit)", run_end, ended)] if run_end else []
    return head + phases + tail


def _cpu_at(samples: list[Sample], t: float) -> float:
    """Tree CPU seconds at time t, interpolated between samples."""
    prev = None
    for s in samples:
        if s.t >= t:
            if prev is None or s.t == prev.t:
                return s.cpu
            return prev.cpu + (s.cpu - prev.cpu) * (t - prev.t) / (s.t - prev.t)
        prev = s
    return samples[-1].cpu if samples else 0.0


def _peak_in(samples: list[Sample], start: float, end: float) -> tuple[int, int]:
    """Peak (RSS, PSS) sum over the tree between start and end; the nearest sample when the
    phase is shorter than the sampling interval."""
    inside = [s for s in samples if start <= s.t <= end]
    if not inside and samples:
        inside = [min(samples, key=lambda s: abs(s.t - (start + end) / 2))]
    return max((s.rss for s in inside), default=0), max((s.pss for s in inside), default=0)


def stage_rows(measured: Measured, log_text: str, timings: dict) -> list[dict]:
    """One row per phase: wall (the run's own timing for stages, else from the log), CPU, peaks."""
    started = measured.started
    ended = started + measured.wall_s
    samples = [Sample(started, 0.0, 0, 0, 0), *measured.samples, Sample(ended, measured.cpu_s, 0, 0, 0)]
    for prev, cur in zip(samples, samples[1:]):  # a worker exited but not yet reaped drops out
        cur.cpu = max(cur.cpu, prev.cpu)  # of one sample; its CPU returns once it is reaped
    rows = []
    for name, start, end in phases_from_log(log_text, started, ended):
        rss, pss = _peak_in(measured.samples, start, end)
        rows.append(
            {
                "stage": name,
                "wall_s": round(timings.get(name, end - start), 2),
                "cpu_s": round(max(0.0, _cpu_at(samples, end) - _cpu_at(samples, start)), 2),
                "peak_rss_mb": round(rss / MB),
                "peak_pss_mb": round(pss / MB),
            }
        )
    return rows


# ------------------------------------------------------------------ one size
def ensure_exports(customers: int, seed: int, work: Path) -> tuple[Path, float | None]:
    """The CRM demo exports for `customers` (same seed, same bytes: reused when present)."""
    gen_dir = work / f"gen{customers}_seed{seed}"
    if (gen_dir / "truth" / "truth.csv").exists():
        return gen_dir, None
    from crmclean.generate import generate

    t0 = time.perf_counter()
    generate(customers=customers, seed=seed, out_dir=gen_dir)
    return gen_dir, round(time.perf_counter() - t0, 2)


def crmclean_command(
    gen_dir: Path, db: Path, out_dir: Path, log: Path, workers: int, memory_limit: str | None = None
) -> list[str]:
    """`crmclean run` of `gen_dir` into the SQLite file `db`; its log and outputs cleared first."""
    log.unlink(missing_ok=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    exe = Path(sys.executable).with_name("crmclean")
    cmd = [str(exe), "run", str(gen_dir), "--db", f"sqlite:///{db}", "--out", str(out_dir)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    return cmd + ["--workers", str(workers), "--no-prefect", "--json", "--log-file", str(log)]


def run_crmclean(
    gen_dir: Path, work: Path, args, db: Path | None = None, tag: str | None = None, truth: Path | None = None
) -> dict:
    """`crmclean run` end to end, measured from outside: into a fresh SQLite database, or into
    `db` as it is (an incremental run on a copy of a prior master). --score compares the master
    with `truth` (default: the exports' own truth file)."""
    tag = tag or gen_dir.name
    out_dir, log = work / f"out_{tag}", work / f"{tag}.log"
    if db is None:
        db = work / f"{tag}.db"
        db.unlink(missing_ok=True)
    cmd = crmclean_command(gen_dir, db, out_dir, log, args.workers, args.memory_limit)
    measured = run_measured(cmd, args.interval)
    if measured.returncode != 0:
        raise RuntimeError(f"crmclean run failed ({measured.returncode}): {measured.stderr[-2000:]}")
    doc = json.loads(measured.stdout)
    rows = stage_rows(measured, log.read_text(encoding="utf-8"), doc["timings"])
    result = _totals(measured) | {"stages": rows, "counts": doc["counts"], "status": doc["status"]}
    if args.score:
        from crmclean.evaluate import evaluate_db

        scores = evaluate_db(str(truth or gen_dir / "truth" / "truth.csv"), f"sqlite:///{db}")
        result["pairwise_f1"], result["bcubed_f1"] = scores["pairwise"]["f1"], scores["bcubed"]["f1"]
    return result


def _totals(measured: Measured) -> dict:
    return {
        "wall_s": measured.wall_s,
        "cpu_s": measured.cpu_s,
        "peak_rss_mb": round(measured.peak_rss / MB),
        "peak_pss_mb": round(measured.peak_pss / MB),
        "max_processes": max((s.procs for s in measured.samples), default=0),
        "samples": len(measured.samples),
    }


def run_splink_measured(gen_dir: Path, args) -> dict:
    """Splink (bench/bench.py's settings) on the same exports, in its own measured process."""
    cmd = [sys.executable, str(Path(__file__)), "--splink-child", str(gen_dir)]
    measured = run_measured(cmd, args.interval)
    if measured.returncode != 0:
        return {"error": measured.stderr.strip().splitlines()[-1] if measured.stderr.strip() else "failed"}
    inner = json.loads(measured.stdout.strip().splitlines()[-1])
    return _totals(measured) | {
        "matching_s": inner["wall_s"],
        "pairwise_f1": inner["pairwise"]["f1"],
        "bcubed_f1": inner["bcubed"]["f1"],
    }


def splink_child(gen_dir: Path) -> int:
    """Child process for --splink: read, normalise, train, predict, cluster, score; one JSON line."""
    import importlib.util

    from crmclean.evaluate import read_truth

    spec = importlib.util.spec_from_file_location("crmclean_bench", ROOT / "bench" / "bench.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run_splink(gen_dir, read_truth(str(gen_dir / "truth" / "truth.csv")))
    print(json.dumps(result, default=str))
    return 0


# ------------------------------------------------------------------ output
def machine_line() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    total = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores, {total:.0f} GB RAM, load average {load}"


def format_size(res: dict) -> str:
    run = res["crmclean"]
    made = "reused" if res["generate_s"] is None else f"generated in {res['generate_s']} s"
    lines = [
        f"=== {res['customers']:,} customers, {run['counts'].get('rows_read', 0):,} records"
        f" (exports {made});"
        f" load before {res['load_before']}, after {res['load_after']} ===",
        f"{'stage':<38} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'peak PSS MB':>12}",
    ]
    for row in run["stages"]:
        lines.append(
            f"{row['stage']:<38} {row['wall_s']:>8.2f} {row['cpu_s']:>8.2f}"
            f" {row['peak_rss_mb']:>12,} {row['peak_pss_mb']:>12,}"
        )
    lines.append(
        f"{'total (crmclean run, process + workers)':<38} {run['wall_s']:>8.2f} {run['cpu_s']:>8.2f}"
        f" {run['peak_rss_mb']:>12,} {run['peak_pss_mb']:>12,}   (up to {run['max_processes']} processes)"
    )
    if "pairwise_f1" in run:
        lines.append(f"crmclean: pairwise F1 {run['pairwise_f1']:.4f}, B-cubed F1 {run['bcubed_f1']:.4f}")
    sp = res.get("splink")
    if sp and "error" in sp:
        lines.append(f"splink: {sp['error']}")
    elif sp:
        lines.append(
            f"{'splink (whole process, same exports)':<38} {sp['wall_s']:>8.2f} {sp['cpu_s']:>8.2f}"
            f" {sp['peak_rss_mb']:>12,} {sp['peak_pss_mb']:>12,}"
        )
        lines.append(
            f"splink: training + predict + clustering {sp['matching_s']} s,"
            f" pairwise F1 {sp['pairwise_f1']:.4f}, B-cubed F1 {sp['bcubed_f1']:.4f}"
        )
    return "\n".join(lines)


def bench_size(customers: int, args, work: Path) -> dict:
    gen_dir, gen_s = ensure_exports(customers, args.seed, work)
    res: dict = {"customers": customers, "generate_s": gen_s, "load_before": _load()}
    res["crmclean"] = run_crmclean(gen_dir, work, args)
    if args.splink:
        res["splink"] = run_splink_measured(gen_dir, args)
    res["load_after"] = _load()
    return res


def bench_incremental(customers: int, args, work: Path) -> dict:
    """Full run of the 99 % exports, then the late 1 % as delta files on a copy of its master."""
    gen_dir, gen_s = ensure_exports(customers, args.seed, work)
    base, delta = work / f"base{customers}", work / f"delta{customers}"
    if not (base / "truth" / "truth.csv").exists() or not any(delta.glob("*_delta*")):
        bench = _bench_module()
        truth = bench.read_truth(str(gen_dir / "truth" / "truth.csv"))
        bench.split_exports(gen_dir, truth, 0.01, base, work / f"inc{customers}", args.seed, delta_dir=delta)
    res: dict = {"customers": customers, "generate_s": gen_s, "load_before": _load()}
    base_db = work / f"base{customers}.db"
    saved = work / f"base{customers}.json"
    if args.reuse_base and base_db.exists() and saved.exists():
        res["full"] = json.loads(saved.read_text(encoding="utf-8"))
    else:
        res["full"] = run_crmclean(base, work, args, tag=f"base{customers}")
        saved.write_text(json.dumps(res["full"]), encoding="utf-8")
    inc_db = work / f"delta{customers}.db"
    shutil.copyfile(base_db, inc_db)
    # the night's master holds every record: scored against the whole exports' truth
    whole = gen_dir / "truth" / "truth.csv"
    res["crmclean"] = run_crmclean(delta, work, args, db=inc_db, tag=f"delta{customers}", truth=whole)
    res["load_after"] = _load()
    return res


def _bench_module():
    """bench/bench.py as a module (its split of the exports into 99 % + 1 %)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("crmclean_bench", ROOT / "bench" / "bench.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def format_incremental(res: dict) -> str:
    full, inc = res["full"], res["crmclean"]
    counts = inc["counts"]
    lines = [
        f"--- full run of the 99 % exports ({full['counts'].get('rows_read', 0):,} records):"
        f" {full['wall_s']:.2f} s wall, {full['cpu_s']:.2f} CPU s, peak PSS {full['peak_pss_mb']:,} MB",
        format_size(res),
        f"delta run: {counts.get('rows_read', 0):,} records read, {counts.get('records_reclustered', 'all')}"
        f" reclustered of {counts.get('records_in_master', 0):,}; wall {inc['wall_s'] / full['wall_s']:.1%},"
        f" CPU {inc['cpu_s'] / full['cpu_s']:.1%} of the full run's",
    ]
    return "\n".join(lines)


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000], help="customers per run (default 20000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=2, help="crmclean run --workers")
    ap.add_argument("--memory-limit", help="crmclean run --memory-limit (e.g. off, for a run the guard refuses)")
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between process-tree samples")
    ap.add_argument("--splink", action="store_true", help="also run Splink on the same exports")
    ap.add_argument("--score", action="store_true", help="also score crmclean's master against truth")
    ap.add_argument("--work", type=Path, help="keep exports, databases and logs here (reused next time)")
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    ap.add_argument("--incremental", action="store_true", help="measure the +1 %% delta run on a 99 %% master")
    ap.add_argument(
        "--reuse-base", action="store_true", help="with --incremental: keep the 99 %% master and its figures in --work"
    )
    ap.add_argument("--splink-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.splink_child:
        return splink_child(args.splink_child)
    work = args.work or Path(tempfile.mkdtemp(prefix="crmclean-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{datetime.now():%Y-%m-%d %H:%M}, {machine_line()}", flush=True)
    results = []
    try:
        for n in args.sizes:
            if args.incremental:
                results.append(bench_incremental(n, args, work))
                print(format_incremental(results[-1]), flush=True)
                continue
            results.append(bench_size(n, args, work))
            print(format_size(results[-1]), flush=True)
    finally:
        if args.json:
            doc = {"machine": machine_line(), "sizes": results}
            args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
