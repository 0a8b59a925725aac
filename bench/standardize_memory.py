"""Who holds the memory during the standardize stage: its steps' PSS peaks, in-process.

    python bench/standardize_memory.py --save-input FILE --customers 200000 --work DIR
    python bench/standardize_memory.py --replay FILE

--save-input runs `crmclean run` in this process up to standardize and pickles what the run
hands to `run.standardize_stage` (the ingest, the prior state, options and rules), then stops;
the pickle holds the records as this tree's ingest made them (object identity included: a
repeated text shared or not). --replay runs `standardize_stage` on it in this process with the
standardize pool, samples every process's PSS (and glibc's heap in use / free in this one) each
--interval s, and prints per step (a mark at each call of the functions in `MARKED`) the peak
sum with each process's PSS (own), then a fingerprint of the stage's output to compare two
trees' code on the same input. Cheaper and steadier than a whole run (bench/link_memory.py).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import pickle
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import link_memory  # noqa: E402  (per-process PSS)
import scale  # noqa: E402  (the exports)

MB = 1024 * 1024
#: (module, function) of the stage's steps: a mark at each call and return
MARKED = (
    ("crmclean.standardize", "standardize"),
    ("crmclean.standardize", "_collect"),
    ("crmclean.standardize", "unidentifiable"),
    ("crmclean.standardize", "quarantine_unidentifiable"),  # what main's run called instead
    ("crmclean.validate", "validate_standardized"),
    ("crmclean.frames", "compacted"),
    ("crmclean.spill", "spill_columns"),
)


class _Stop(Exception):
    """Raised by the stand-in runner once standardize's input is saved."""


def save_input(path: Path, gen_dir: Path, work: Path, workers: int) -> None:
    """The run in this process up to standardize, its input pickled to `path`."""
    import crmclean.run as run
    from crmclean.stages import RunOptions

    def runner(name, fn, *args):
        if name != "standardize":
            return fn(*args)
        env, ingested, prior = args
        with open(path, "wb") as fh:
            saved = {"ingested": ingested, "prior": prior, "options": env.options, "rules": env.rules}
            pickle.dump(saved, fh, protocol=5)
        raise _Stop

    options = RunOptions(
        inputs=[gen_dir], db_url=f"sqlite:///{work / 'save.db'}", out_dir=work / "out", workers=workers
    )
    try:
        run.run_pipeline(options, runner=runner)
    except _Stop:
        return
    raise RuntimeError("the run ended before standardize")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _heap() -> tuple[int, int]:
    """glibc's (bytes in use, bytes free but kept) in this process; (0, 0) without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return 0, 0
    return info.uordblks + info.hblkhd, info.fordblks


def _mark_steps(marks: list[tuple[float, str]]) -> None:
    """Wrap each `MARKED` function (those this tree has) so that its calls and returns are noted
    in `marks`."""
    import importlib

    for module_name, name in MARKED:
        module = importlib.import_module(module_name)
        real = getattr(module, name, None)
        if real is None:  # another tree's code: not all steps exist there
            continue

        def marked(*args, _real=real, _name=name, **kwargs):
            marks.append((time.time(), f"{_name} called"))
            try:
                return _real(*args, **kwargs)
            finally:
                marks.append((time.time(), f"{_name} returned"))

        setattr(module, name, marked)


def _sampled(fn, interval: float) -> tuple[object, list[tuple[float, dict, tuple[int, int]]]]:
    """fn() while a thread samples (time, {pid: (PSS, own)}, heap) of this process tree."""
    me = psutil.Process(os.getpid())
    samples: list[tuple[float, dict, tuple[int, int]]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            samples.append((time.time(), link_memory.sample_tree(me), _heap()))
            stop.wait(interval)

    sampler = threading.Thread(target=loop, daemon=True)
    sampler.start()
    try:
        return fn(), samples
    finally:
        stop.set()
        sampler.join()


def _step_lines(samples, marks, start: float, end: float) -> list[str]:
    """Per step between two marks: the peak PSS sum, each process's PSS (own), the heap."""
    bounds = [(start, "(stage start)"), *sorted(marks), (end, "(end)")]
    lines = []
    for (t0, label), (t1, _) in zip(bounds, bounds[1:]):
        inside = [s for s in samples if t0 <= s[0] <= t1]
        if not inside:
            continue
        _, tree, (used, free) = max(inside, key=lambda s: sum(p for p, _ in s[1].values()))
        each = "  ".join(f"{p / MB:,.0f} ({o / MB:,.0f})" for _, (p, o) in sorted(tree.items()))
        total = sum(p for p, _ in tree.values()) / MB
        lines.append(
            f"{t0 - start:>+7.1f} s after {label:<32} {total:>7,.0f} MB: {each}; heap {used / MB:,.0f} / {free / MB:,.0f}"
        )
    return lines


def fingerprint(result) -> str:
    """A short hash of the stage's output: the frame's values, columns and dtypes, the summary
    and the quarantine."""
    digest = hashlib.sha256()
    std = result.std
    digest.update(pd.util.hash_pandas_object(std.astype(object).astype(str), index=True).to_numpy().tobytes())
    digest.update(repr((list(std.columns), std.dtypes.astype(str).tolist())).encode())
    digest.update(result.summary.to_csv().encode())
    digest.update(result.quarantine.astype(str).to_csv().encode())
    return digest.hexdigest()[:16]


def replay(path: Path, interval: float, out_dir: Path) -> list[str]:
    """`standardize_stage` on a saved input, in this process, sampled; the steps' peaks."""
    import crmclean.run as run
    from crmclean import executors
    from crmclean.stages import RunEnv

    with open(path, "rb") as fh:
        saved = pickle.load(fh)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = RunEnv(
        options=saved["options"], rules=saved["rules"], run_id="replay", out_dir=out_dir, timer=run.StageTimer()
    )
    marks: list[tuple[float, str]] = []
    _mark_steps(marks)

    def stage():
        with executors.open_fanout(None, 0) as where, executors.using(where):
            return run.standardize_stage(env, saved["ingested"], saved["prior"])

    start = time.time()
    result, samples = _sampled(stage, interval)
    end = time.time()
    peak = max(sum(p for p, _ in s[1].values()) for s in samples) / MB
    lines = [f"standardize_stage: {end - start:.1f} s, timings {env.timer.timings}, peak PSS {peak:,.0f} MB"]
    lines += _step_lines(samples, marks, start, end)
    lines.append("  (PSS (own) of each process, this one first; glibc heap in use / free in this one)")
    lines.append(f"fingerprint {fingerprint(result)} ({len(result.std):,} rows)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--work", type=Path, help="exports (reused), the saving run's database and outputs")
    ap.add_argument("--save-input", type=Path, help="run up to standardize, pickle its input here, stop")
    ap.add_argument("--replay", type=Path, help="standardize_stage in this process on a --save-input file")
    args = ap.parse_args(argv)
    if args.replay:
        out_dir = Path(args.work or args.replay.parent) / "replay_out"
        print("\n".join(replay(args.replay, args.interval, out_dir)))
        return 0
    if args.work is None or args.save_input is None:
        ap.error("--save-input needs --work; or give --replay")
    args.work.mkdir(parents=True, exist_ok=True)
    gen_dir, _ = scale.ensure_exports(args.customers, args.seed, args.work)
    save_input(args.save_input, gen_dir, args.work, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
