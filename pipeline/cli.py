"""`crmclean` command line: a dbt-style CLI over the pipeline functions.

Exit codes (documented in the README): 0 success; 1 a user or data error (`CrmcleanError`, one
red line); 2 a usage error (typer/click's own); 3 failed critical expectations (publish refused);
4 an internal error (one line; `--debug` shows the traceback); 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import ProgressColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .errors import CrmcleanError, ValidationFailed

EXIT_USER_ERROR, EXIT_USAGE, EXIT_EXPECTATIONS, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 4, 130


def _flags_shown_as_flags(params: list) -> list:
    """typer's rich help prints a value type after every option, so `--retrain <bool>` read as if
    it took a value; an empty metavar leaves a flag (and --help, --version) with none."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class FlagGroup(TyperGroup):
    """The command group whose --help, and every subcommand's, shows flags as flags."""

    def get_params(self, ctx):
        return _flags_shown_as_flags(super().get_params(ctx))

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _flags_shown_as_flags(command.get_params(ctx))
        return command


app = typer.Typer(
    cls=FlagGroup,
    name="crmclean",
    help="Turn messy CRM exports into one clean, deduplicated master customer table.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
review_app = typer.Typer(cls=FlagGroup, help="Clerical review of uncertain pairs.", no_args_is_help=True)
app.add_typer(review_app, name="review")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DB_HELP = "SQLAlchemy URL of the master database (SQLite file by default, postgresql+psycopg://… for PostgreSQL)."
DEFAULT_DB = "sqlite:///crmclean-out/master.db"
DB_ENVVAR = "CRMCLEAN_DB_URL"  # lets a password stay out of the command line (and shell history)
# run ids start with their UTC start time, so no separate start column is needed at 80 columns
HISTORY_COLUMNS = {
    "run_id": "run id (UTC start)",
    "status": "status",
    "duration_s": "took",
    "rows_read": "rows",
    "quarantined": "quarant.",
    "masters": "masters",
    "records_merged": "merged",
}


@contextmanager
def user_errors(debug: bool, json_out: bool = False) -> Iterator[None]:
    """Turn exceptions into one clear line and an exit code; tracebacks only with --debug.
    With `json_out` the failure is also one JSON document on stdout (for scripts)."""
    try:
        yield
    except typer.Exit:
        raise
    except CrmcleanError as exc:
        if debug:
            raise
        code = EXIT_EXPECTATIONS if isinstance(exc, ValidationFailed) else EXIT_USER_ERROR
        _fail(f"[bold red]error:[/] {escape(str(exc))}", str(exc), code, json_out)
    except KeyboardInterrupt as exc:
        from .run import RunInterrupted

        text = exc.message if isinstance(exc, RunInterrupted) else "interrupted: nothing was published by this run"
        _fail(f"[bold red]{escape(text)}[/]", text, EXIT_INTERRUPTED, json_out, getattr(exc, "exit_at_once", False))
    except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into a line
        if debug:
            raise
        text = f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
        _fail(
            f"[bold red]internal error:[/] {escape(text.removeprefix('internal error: '))}",
            text,
            EXIT_INTERNAL,
            json_out,
        )


def _fail(markup: str, text: str, code: int, json_out: bool, at_once: bool = False) -> None:
    """One line on stderr (and, for --json, `{"status": "error", ...}` on stdout), then exit.
    `at_once` skips the exit handlers: Prefect's would spend a minute retrying a dead server."""
    err_console.print(markup, soft_wrap=True)
    if json_out:
        _print_json({"status": "error", "error": text, "exit_code": code})
    if at_once:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code) from None


def _print_json(document: object) -> None:
    """One JSON document on stdout, nothing else: scripts parse it with json.loads."""
    import json

    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str, indent=2) + "\n")
    sys.stdout.flush()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"crmclean {version('crmclean')}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Turn messy CRM exports into one clean, deduplicated master customer table."""


@app.command()
def run(
    inputs: Optional[list[Path]] = typer.Argument(
        None, help="CSV/TSV/XLSX files or folders; default: the bundled sample_data/."
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    out: Path = typer.Option(Path("crmclean-out"), "--out", help="Folder for run-scoped outputs (reports, Data Docs)."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Rules folder (default: the bundled rules/)."),
    expectations: Optional[Path] = typer.Option(None, "--expectations", help="Great Expectations suites folder."),
    workers: Optional[int] = typer.Option(
        None,
        "--workers",
        help="Processes on this machine for the fan-out work (standardize, compare, score); default min(2, CPUs). "
        "Not with --dask-address/--dask-workers: then the Dask cluster's workers run that work.",
    ),
    retrain: bool = typer.Option(False, "--retrain", help="Retrain the match model instead of reusing the saved one."),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Re-standardize every record (after changing rules/standardize.yaml)."
    ),
    show_pii: bool = typer.Option(False, "--show-pii", help="Show unmasked personal data in the report."),
    prefect: Optional[bool] = typer.Option(
        None,
        "--prefect/--no-prefect",
        help="Run as a Prefect flow (--prefect: a temporary server when no Prefect API is configured) or directly. "
        "Default: a flow run when PREFECT_API_URL or the active Prefect profile names a server, else directly.",
    ),
    lock_timeout: Optional[float] = typer.Option(
        None, "--lock-timeout", help="Seconds to wait for another run publishing into the same master (default 60)."
    ),
    dask_address: Optional[str] = typer.Option(
        None,
        "--dask-address",
        help="Fan out on an existing Dask cluster: its scheduler, e.g. tcp://HOST:8786 (its workers do the work).",
    ),
    dask_workers: int = typer.Option(
        0,
        "--dask-workers",
        min=0,
        help="Fan out on a local Dask cluster of N single-threaded worker processes started for the run.",
    ),
    memory_limit: Optional[str] = typer.Option(
        None,
        "--memory-limit",
        envvar="CRMCLEAN_MEMORY_LIMIT",
        show_envvar=True,
        help="Stop before standardizing when the run would need more memory than this (e.g. 16G, 512M; off: no "
        "check). Default: the memory available on this machine when the run starts.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout (no progress, no table)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    log_file: Optional[Path] = typer.Option(
        None, "--log-file", help="Append the run's log lines (stages, timings, outcome) to this file."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Ingest, standardize, validate, link, merge and publish; print a summary."""
    from .settings import SAMPLE_DATA_DIR

    _freeze_at_exit()
    _check_fanout_options(workers, dask_address, dask_workers)
    if lock_timeout is not None:
        os.environ["CRMCLEAN_LOCK_TIMEOUT"] = str(lock_timeout)  # read by crmclean.store.open_store
    with user_errors(debug, json_out), _logging_to(log_file), _stop_on_signals():
        from .memory import parse_limit

        parse_limit(memory_limit)  # a bad size fails before anything starts
        paths = list(inputs) if inputs else [SAMPLE_DATA_DIR]
        shown = not (quiet or json_out)
        options = _run_options(
            paths,
            shown,
            db_url=db,
            out_dir=out,
            rules_dir=rules,
            expectations_dir=expectations,
            workers=workers if workers is not None else min(2, os.cpu_count() or 1),
            retrain=retrain,
            full_refresh=full_refresh,
            show_pii=show_pii,
            dask_address=dask_address,
            dask_workers=dask_workers,
            memory_limit=memory_limit,
        )
        result = _run_with_progress(options, prefect, debug, shown)
        if json_out:
            _print_json(_result_document(result, db))
        elif not quiet:
            _print_summary(result, db)


_FREEZE_AT_EXIT: list[bool] = []


def _freeze_at_exit() -> None:
    """At interpreter exit, move every object still alive out of the cyclic collector (once per
    process). Python's finalization runs full collections while it clears the modules; after a
    run on a 200k master (its frames, Great Expectations' 0.6 M objects) they cost ≈ 1.4 CPU s
    of a delta night, to find garbage in memory the process is about to give back. Files, the
    database and the log are closed by then (explicitly, never by a collection)."""
    if not _FREEZE_AT_EXIT:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _FREEZE_AT_EXIT.append(True)


def _check_fanout_options(workers: Optional[int], dask_address: Optional[str], dask_workers: int) -> None:
    """One place decides how many processes do the fan-out work: `--workers` on this machine, or
    the Dask cluster's workers. Two answers at once are a usage error (exit 2), not one ignored."""
    if workers is not None and workers < 1:
        raise typer.BadParameter("must be 1 or more (1: everything in this process)", param_hint="--workers")
    if workers is not None and (dask_address or dask_workers):
        dask = "--dask-address" if dask_address else "--dask-workers"
        raise typer.BadParameter(
            f"it sets the processes on this machine, but with {dask} the Dask cluster's workers do that work; "
            "drop --workers (a local cluster's size is --dask-workers N, an existing one's its `dask worker`s)",
            param_hint="--workers",
        )
    if dask_address and dask_workers:
        raise typer.BadParameter(
            "a run uses either an existing Dask cluster (--dask-address) or a local one it starts (--dask-workers N)",
            param_hint="--dask-workers",
        )


@contextmanager
def _logging_to(path: Optional[Path]) -> Iterator[None]:
    """With --log-file: crmclean's INFO lines and everyone's warnings, timestamped, appended to `path`."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda r: r.name.startswith("crmclean") or r.levelno >= logging.WARNING)
    root, ours = logging.getLogger(), logging.getLogger("crmclean")
    old_level = ours.level
    ours.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        ours.setLevel(old_level)
        handler.close()


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM (a scheduler or `kill` stopping the job) end the run the same way:
    the run is told to stop (crmclean.run.STOP, checked at every stage) and a KeyboardInterrupt
    is raised; the run records itself `aborted`, nothing is published, exit 130. Only the main
    thread can install signal handlers."""
    import signal
    import threading

    from .run import STOP

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def stop(signum, frame):
        STOP.request(names.get(signum, str(signum)))
        raise KeyboardInterrupt

    STOP.reset()
    previous = {sig: signal.signal(sig, stop) for sig in names}
    try:
        yield
    except Exception as exc:  # e.g. Prefect failing to report a crash: the interrupt is what happened
        if STOP.signal is None:
            raise
        raise (STOP.outcome or KeyboardInterrupt(STOP.signal)) from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_options(paths, shown: bool, **fields):
    """RunOptions (`fields` are its fields) for these inputs; a missing or unsupported input fails
    here, before anything starts (a folder's non-table files are skipped, with a warning)."""
    from .ingest import find_inputs
    from .run import RunOptions
    from .settings import load_rules

    paths, skipped = find_inputs(paths, load_rules(fields.get("rules_dir")))
    for path, reason in skipped:
        if shown:
            err_console.print(f"[yellow]skipped[/] {escape(str(path))}: {escape(str(reason))}", soft_wrap=True)
    return RunOptions(inputs=paths, skipped=[(str(path), reason) for path, reason in skipped], **fields)


def _run_with_progress(options, prefect, debug, shown: bool = True):
    """Run with stage bars on stderr (`shown`), or silently for --quiet and --json."""
    from . import progress

    if not debug:
        # the CLI shows progress and one clear error line; Prefect's own log lines (and the
        # traceback it logs for a failed flow) stay in the Prefect UI, or show with --debug
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
        from .validate import load_great_expectations  # GE sets its own logger to INFO on import

        load_great_expectations()

        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
        logging.getLogger("crmclean.validate").setLevel(logging.ERROR)  # the summary says if Data Docs failed
    if not shown:
        return _run_in_chosen_mode(options, None, prefect, say=lambda text: None)
    with StageBars(err_console) as bars, progress.listening(bars.count):
        return _run_in_chosen_mode(options, bars.on_stage, prefect, say=err_console.print)


class StageBars:
    """The stages of a run as they happen. On a terminal: a live bar per stage with what it
    counts (rows read, distinct values standardized, pairs compared, clusters, rows written),
    the rate and the time left. Elsewhere (a log file, a pipe): one line per finished stage,
    never a redraw."""

    def __init__(self, console: Console):
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console, self.live = console, console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            CountColumn(),
            RateColumn(),
            TimeLeftColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not self.live,
        )
        self.tasks: dict[str, Any] = {}
        self.current: Any = None

    def __enter__(self) -> "StageBars":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_stage(self, stage: str, event: str) -> None:
        if event == "start":
            self.current = self.tasks[stage] = self.progress.add_task(f"{stage}…", total=None, unit=None)
            return
        task_id, self.current = self.tasks[stage], None
        task = self.progress._tasks[task_id]
        done = task.completed if task.fields.get("unit") else 1
        mark = "[green]✓[/]" if event == "end" else "[red]✗[/]"  # stopped: never shown as done
        self.progress.update(task_id, total=done, completed=done, description=f"{mark} {stage}")
        if not self.live:
            self.console.print(_stage_line(mark, stage, task), soft_wrap=True)

    def count(self, event: str, amount: int, unit: str | None) -> None:
        """The progress listener: counts of the running stage."""
        if self.current is None:
            return
        task = self.progress._tasks[self.current]
        if unit:
            task.fields["unit"] = unit
        if event == "advance":
            self.progress.update(self.current, advance=amount)
        elif event == "expect":
            self.progress.update(self.current, total=(task.total or 0) + amount)
        elif event == "total":
            self.progress.update(self.current, total=max(amount, int(task.completed)))


def _stage_line(mark: str, stage: str, task) -> str:
    """A finished stage as one log line: `✓ link 2.1 s · 48,200 pairs · 23,000 pairs/s`."""
    seconds = task.finished_time if task.finished_time is not None else task.elapsed or 0.0
    line = f"{mark} {stage} {seconds:.1f} s"
    unit = task.fields.get("unit")
    if unit:
        line += f" · {int(task.completed):,} {unit}"
        if seconds > 0 and task.completed:
            line += f" · {task.completed / seconds:,.0f} {unit}/s"
    return line


class CountColumn(ProgressColumn):
    """`12,000/48,000 pairs`: what the stage counts (nothing for a stage that counts nothing)."""

    def render(self, task) -> Text:
        unit = task.fields.get("unit")
        if not unit:
            return Text("")
        of = f"/{int(task.total):,}" if task.total is not None and not task.finished else ""
        return Text(f"{int(task.completed):,}{of} {unit}", style="progress.download")


class RateColumn(ProgressColumn):
    """`23,000 pairs/s`: the recent rate while running, the stage's average once done."""

    def render(self, task) -> Text:
        unit = task.fields.get("unit")
        if not unit:
            return Text("")
        if task.finished and task.finished_time:
            speed = task.completed / task.finished_time
        else:
            speed = task.speed
        return Text("" if speed is None else f"{speed:,.0f} {unit}/s", style="progress.data.speed")


class TimeLeftColumn(ProgressColumn):
    """`0:01:20 left` while the stage's total is known and it has a rate."""

    max_refresh = 0.5

    def render(self, task) -> Text:
        if task.finished or not task.fields.get("unit") or task.time_remaining is None:
            return Text("")
        minutes, seconds = divmod(int(task.time_remaining), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours}:{minutes:02d}:{seconds:02d} left", style="progress.remaining")


def _run_in_chosen_mode(options, on_stage, prefect: bool | None, say):
    """A Prefect flow run when asked for or when a Prefect API is configured; else the same
    stages in this process at once (no 10–20 s wait for a temporary server). A temporary server
    that cannot start falls back to in-process, announced, before any stage has run."""
    from .flows_mode import prefect_api_configured, startup_timed_out
    from .run import STOP, run_pipeline

    api = prefect_api_configured()
    if prefect is False or (prefect is None and not api):
        if prefect is None:
            say(
                "running in-process (no Prefect API configured: set PREFECT_API_URL, "
                "or pass --prefect for a temporary server and the Prefect UI)"
            )
        return run_pipeline(options, progress=on_stage)
    if api:
        say(f"running as a Prefect flow run on {api}")
    else:  # set before Prefect reads its settings (on import)
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        # Ctrl-C kills the temporary server too: one retry, not five over a minute, to report the crash
        os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "1")
        say("starting a temporary Prefect server (10–20 s; set PREFECT_API_URL to use yours)…")
    from crmclean.flows.nightly import run_flow

    try:
        return run_flow(options, progress=on_stage)
    except BaseException as exc:  # only a server that never started is retried in-process
        if STOP.signal is None and isinstance(exc, Exception) and startup_timed_out(exc):
            say("[yellow]the temporary Prefect server did not start; running in-process instead[/]")
            return run_pipeline(options, progress=on_stage)
        if STOP.signal is None or api:
            raise
        # the temporary server died with the Ctrl-C: exit without Prefect's handlers waiting on it
        stop = STOP.outcome or KeyboardInterrupt(STOP.signal)
        stop.exit_at_once = True  # type: ignore[attr-defined]
        raise stop from None


def _result_document(result, db: str) -> dict:
    """`crmclean run --json`: what a script needs to know about the run."""
    from .docs_site import build_error
    from .masking import mask_url

    docs_problem = build_error(Path(result.out_dir) / "data_docs")
    return {
        "warnings": [f"Data Docs could not be built: {docs_problem}"] if docs_problem else [],
        "run_id": result.run_id,
        "status": result.status,
        "counts": result.counts,
        "timings": result.timings,
        "db": mask_url(db),
        "out_dir": str(result.out_dir),
        "report": str(result.report_path) if result.report_path else None,
    }


def _print_mapping(out_dir: Path) -> None:
    """The header mapping used, one line per file/sheet (also saved as column_mapping.json)."""
    import json

    path = Path(out_dir) / "column_mapping.json"
    if not path.is_file():
        return
    mapping = json.loads(path.read_text(encoding="utf-8"))
    console.print("[bold]column mapping[/] (header → field; saved as column_mapping.json)")
    for source, info in mapping.items():
        for file_name, sheets in (info.get("files") or {}).items():
            for sheet, headers in (sheets or {}).items():
                mapped = ", ".join(f"{h} → {f}" for h, f in headers.items() if f)
                extra = ", ".join(h for h, f in headers.items() if not f)
                where = f"{file_name}{' / ' + sheet if sheet else ''}"
                line = f"  [cyan]{source}[/] {where}: {mapped or '(nothing mapped)'}"
                if extra:
                    line += f"; kept as extra: {extra}"
                console.print(line, soft_wrap=True, markup=True)


def _print_summary(result, db: str) -> None:
    from .masking import mask_url
    from .report import model_line

    _print_mapping(result.out_dir)
    table = Table(title=f"crmclean run {result.run_id}: {result.status}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    labels = {
        "rows_read": "rows read",
        "quarantined": "quarantined",
        "records_accepted": "records accepted",
        "masters": "masters",
        "records_merged": "records merged into another",
        "records_standardized": "records standardized this run",
        "records_reused": "records reused unchanged",
        "review_pairs": "pairs for review",
    }
    for key, label in labels.items():
        if key in result.counts:
            table.add_row(label, f"{result.counts[key]:,}")
    console.print(table)
    line = model_line(getattr(result, "model", None))
    if line:
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"master database: {mask_url(db)}")
    if result.report_path:
        console.print(f"report: {result.report_path}")
    from .docs_site import build_error

    docs_problem = build_error(Path(result.out_dir) / "data_docs")
    if docs_problem:
        err_console.print(f"[yellow]warning:[/] Data Docs could not be built: {docs_problem}", soft_wrap=True)
    console.print(f"run outputs: {result.out_dir}")


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), help="Folder to write rules/ and expectations/ into."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Write an editable copy of the default rules/ and expectations/ (then pass --rules/--expectations)."""
    from .settings import DEFAULT_EXPECTATIONS_DIR, DEFAULT_RULES_DIR, copy_package_dir

    with user_errors(debug):
        for source, name in ((DEFAULT_RULES_DIR, "rules"), (DEFAULT_EXPECTATIONS_DIR, "expectations")):
            written = copy_package_dir(source, directory / name, overwrite=force)
            console.print(f"{directory / name}: {len(written)} files written")
        console.print(
            f"use them with: crmclean run --rules {directory / 'rules'} --expectations {directory / 'expectations'}"
        )


@app.command("demo-data")
def demo_data(
    customers: int = typer.Option(1000, "--customers", min=1, help="How many true customers."),
    seed: int = typer.Option(42, "--seed", help="Random seed (same seed, same files)."),
    out: Path = typer.Option(Path("demo-data"), "--out", help="Folder to write the exports and truth into."),
    systems: int = typer.Option(3, "--systems", min=1, max=3, help="How many of the three CRM exports to write."),
    profile: str = typer.Option(
        "crm",
        "--profile",
        help="Shape of the data: crm (three CRM exports), few_fields, name_dob_postcode, split_dob, old_dob or b2b.",
    ),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Write realistic exports of three CRMs (or another profile's files), with the true entity of every row."""
    from .generate import generate

    with user_errors(debug):
        info = generate(customers=customers, seed=seed, out_dir=out, profile=profile, systems=systems)
        for path in info["files"]:
            console.print(f"wrote {path}")
        console.print(f"truth: {info['truth']} ({info['rows']:,} rows)")


@app.command()
def explain(
    refs: list[str] = typer.Argument(
        ...,
        help="A master id (C0000123); a record as source:id (shown within its master); or two records "
        "as source:id source:id (source|id is accepted too).",
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help="Show personal data unmasked."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Show why records were (or were not) merged: per-field match weights as a waterfall.
    One record (source:id) shows the master holding it, the record marked ▶."""
    from . import explain as explain_mod

    with user_errors(debug):
        if len(refs) == 1:
            console.print(explain_mod.explain_one(db, refs[0], show_pii=show_pii), soft_wrap=True, markup=False)
        elif len(refs) == 2:
            console.print(
                explain_mod.explain_records(db, refs[0], refs[1], show_pii=show_pii), soft_wrap=True, markup=False
            )
        else:
            raise CrmcleanError(
                "explain takes one master id, one record (source:id) or two records (source:id source:id)"
            )


@app.command()
def evaluate(
    truth: Path = typer.Option(
        ...,
        "--truth",
        help="CSV with columns source, source_record_id, entity_id; optional: scenario, group_id "
        "(per-scenario recall and hard-negative false merges).",
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the scores as one JSON document on stdout."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Pairwise and B-cubed precision/recall/F1 of the published master against a truth file.
    Fails (exit 1) when most truth records are not in the master: the wrong truth file."""
    from .evaluate import evaluate_db, format_evaluation

    with user_errors(debug, json_out):
        result = evaluate_db(truth, db)
        if json_out:
            _print_json(result)
        else:
            console.print(format_evaluation(result), soft_wrap=True)


@review_app.command("export")
def review_export(
    path: Path = typer.Argument(..., help="Where to write the review file (.csv or .xlsx)."),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help="Write personal data unmasked."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Write the review queue as a file a person fills in (decision: match / no_match)."""
    from .review import export_review

    with user_errors(debug):
        n = export_review(db, path, show_pii=show_pii)
        console.print(f"wrote {n:,} pairs to {path}; fill the decision column, then: crmclean review apply {path}")
        if not show_pii:
            console.print("personal data is masked; pass --show-pii for the real values")


@review_app.command("apply")
def review_apply(
    path: Path = typer.Argument(..., help="A filled review file."),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Record the decisions as overrides that every later run obeys."""
    from .review import apply_review

    with user_errors(debug):
        n = apply_review(db, path)
        console.print(f"recorded {n:,} decisions; they take effect on the next run")


@app.command()
def export(
    path: Path = typer.Argument(..., help="Output file: .csv, .xlsx or .parquet (the golden master)."),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    include: list[str] = typer.Option([], "--include", help="Also export: xref, quarantine, review (repeatable)."),
    show_pii: bool = typer.Option(False, "--show-pii", help="Write personal data unmasked."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Export the golden master (and optionally xref, quarantine, review queue) to files."""
    from .export import TABLES, export_tables
    from .store import opened

    with user_errors(debug):
        unknown = sorted(set(include) - set(TABLES) - {"master"})
        if unknown:
            raise CrmcleanError(
                f"--include {unknown[0]!r}: choose from {', '.join(t for t in TABLES if t != 'master')}"
            )
        with opened(db) as store:
            frames = {name: store.read_table(TABLES[name]) for name in ["master", *dict.fromkeys(include)]}
        for item in export_tables(frames, path, show_pii=show_pii):
            console.print(f"{item.table}: {item.rows:,} rows → {item.path}")
        if not show_pii:
            console.print("personal data is masked; pass --show-pii for the real values")


@app.command()
def label(
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Rules folder (default: the bundled rules/)."),
    pairs: int = typer.Option(20, "--pairs", min=1, help="How many uncertain pairs to ask about."),
    answers: Optional[Path] = typer.Option(
        None,
        "--answers",
        help="File of answers, one per line (y, n, s, q); without it: the terminal, or stdin when piped.",
    ),
    sampler: str = typer.Option(
        "weighted",
        "--sampler",
        help="weighted (default): drawn at random with weight p(1-p), most uncertain "
        "asked first; uncertainty: closest to 0.5 first, spread over level patterns (see docs/labelling.md).",
    ),
    show_pii: bool = typer.Option(False, "--show-pii", help="Show personal data unmasked."),
    workers: int = typer.Option(
        min(2, os.cpu_count() or 1), "--workers", help="Processes for relinking the candidates."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Answer match / no match for the pairs the model is least sure of; the answers are stored
    as review decisions (origin `label`) and train the model."""
    from .label import label_session
    from .settings import load_rules

    with user_errors(debug):
        if answers is not None and not answers.is_file():
            raise CrmcleanError(f"{answers}: answers file not found")
        given = (
            iter(answers.read_text(encoding="utf-8").splitlines())
            if answers is not None
            else (None if sys.stdin.isatty() else iter(sys.stdin.readline, ""))
        )
        counts = label_session(
            db,
            load_rules(rules),
            pairs=pairs,
            show_pii=show_pii,
            answers=given,
            console=console,
            sampler=sampler,
            workers=workers,
        )
        console.print(
            f"recorded {counts['match']:,} match and {counts['no_match']:,} no-match labels "
            f"({counts['skip']:,} skipped); they take effect on the next run"
        )


@app.command()
def history(
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    limit: int = typer.Option(20, "--limit"),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as one JSON document on stdout."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """List runs, newest first: status, duration, counts and the error line of a run that did not succeed."""
    from .history import list_runs

    with user_errors(debug, json_out):
        runs = list_runs(db).head(limit)
        if json_out:
            rows = runs.astype(object).where(runs.notna(), None).to_dict("records")
            _print_json({"runs": rows})
            return
        console.print(_history_table(runs))
        for row in runs[runs["error"].notna() & (runs["error"] != "")].itertuples(index=False):
            console.print(f"{row.run_id} {row.status}: {row.error}", markup=False, soft_wrap=True)


def _history_table(runs):
    """One row per run at 80 columns; the error lines are printed under the table, unwrapped."""
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for col, label in HISTORY_COLUMNS.items():
        table.add_column(label, no_wrap=True, justify="left" if col in ("run_id", "status") else "right")
    for row in runs.to_dict("records"):
        table.add_row(*[_history_cell(c, row[c]) for c in HISTORY_COLUMNS])
    return table


def _history_cell(column: str, value) -> str:
    from .history import format_duration

    if value is None or value != value:
        return ""
    if column == "duration_s":
        return format_duration(value)
    return str(int(value)) if isinstance(value, float) else str(value)  # no separators: 1M rows fit 80 columns


@app.command()
def diff(
    run_a: str = typer.Argument(..., help="Earlier run id."),
    run_b: str = typer.Argument(..., help="Later run id."),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Masters created, merged, split and updated between two runs."""
    from .history import diff_runs, format_diff

    with user_errors(debug):
        console.print(format_diff(diff_runs(db, run_a, run_b)), soft_wrap=True)


@app.command()
def forget(
    key: str = typer.Argument(..., help="Master id (C0000123), source:id (or source|id), e-mail address or phone."),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    out: Path = typer.Option(Path("crmclean-out"), "--out", help="Folder whose runs/ outputs are redacted too."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Rules folder (reads e-mail and phone settings)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed; change nothing."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Erase one person from every table and run folder, and quarantine them on later imports."""
    from .forget import forget as forget_person
    from .forget import format_result
    from .settings import load_rules

    with user_errors(debug):
        result = forget_person(db, key, out, load_rules(rules), dry_run=dry_run)
        console.print(format_result(result, out), markup=False, soft_wrap=True)


@app.command()
def serve(
    cron: str = typer.Option("0 2 * * *", "--cron", help="Cron schedule (default: 02:00 every night)."),
    inputs: Optional[list[Path]] = typer.Argument(None, help="Input files or folders for each nightly run."),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    out: Path = typer.Option(Path("crmclean-out"), "--out"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Serve the nightly Prefect deployment on a cron schedule (needs a Prefect server or Cloud)."""
    from .flows_mode import prefect_api_configured

    with user_errors(debug):
        _check_cron(cron)
        if not prefect_api_configured():
            raise CrmcleanError(
                "crmclean serve needs a Prefect server: start one with `prefect server start`, then "
                "set PREFECT_API_URL=http://127.0.0.1:4200/api (or point it at Prefect Cloud)"
            )
        from crmclean.flows.nightly import serve_nightly

        serve_nightly(cron=cron, inputs=[str(p) for p in (inputs or [])], db_url=db, out_dir=str(out))


def _check_cron(cron: str) -> None:
    """A malformed schedule is the user's error, named before anything starts."""
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)  # Prefect's own check: the schedule it would be given
    except ValueError:
        raise CrmcleanError(f"--cron {cron!r} is not a cron schedule (five fields, e.g. '0 2 * * *')") from None


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
