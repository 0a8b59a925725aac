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
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import CrmcleanError, ValidationFailed

EXIT_USER_ERROR, EXIT_USAGE, EXIT_EXPECTATIONS, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 4, 130

app = typer.Typer(
    name="crmclean",
    help="Turn messy CRM exports into one clean, deduplicated master customer table.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
review_app = typer.Typer(help="Clerical review of uncertain pairs.", no_args_is_help=True)
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
    "rows_read": "rows",
    "quarantined": "quarantined",
    "masters": "masters",
    "records_merged": "merged",
}


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn exceptions into one clear line and an exit code; tracebacks only with --debug."""
    try:
        yield
    except typer.Exit:
        raise
    except CrmcleanError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_EXPECTATIONS if isinstance(exc, ValidationFailed) else EXIT_USER_ERROR) from None
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]: nothing was published by this run")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into a line
        if debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


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
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", help="Processes for standardize/compare."),
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
        None, "--dask-address", help="Fan out on an existing Dask cluster: its scheduler, e.g. tcp://HOST:8786."
    ),
    dask_workers: int = typer.Option(
        0, "--dask-workers", min=0, help="Fan out on a local Dask cluster of N worker processes started for the run."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Ingest, standardize, validate, link, merge and publish; print a summary."""
    from .settings import SAMPLE_DATA_DIR

    if lock_timeout is not None:
        os.environ["CRMCLEAN_LOCK_TIMEOUT"] = str(lock_timeout)  # read by crmclean.store.open_store
    with user_errors(debug):
        paths = list(inputs) if inputs else [SAMPLE_DATA_DIR]
        result = _run_with_progress(
            paths,
            db,
            out,
            rules,
            expectations,
            workers,
            retrain,
            full_refresh,
            show_pii,
            prefect,
            debug,
            dask=(dask_address, dask_workers),
        )
        _print_summary(result, db)


def _run_with_progress(
    paths, db, out, rules, expectations, workers, retrain, full_refresh, show_pii, prefect, debug, dask=(None, 0)
):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .ingest import find_inputs
    from .run import RunOptions
    from .settings import load_rules

    # a missing or unsupported file fails before anything starts; a folder's non-table files are skipped
    paths, skipped = find_inputs(paths, load_rules(rules))
    for path, reason in skipped:
        err_console.print(f"[yellow]skipped[/] {path}: {reason}", soft_wrap=True, markup=True)
    if not debug:
        # the CLI shows progress and one clear error line; Prefect's own log lines (and the
        # traceback it logs for a failed flow) stay in the Prefect UI, or show with --debug
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
        import great_expectations.data_context.types.base  # noqa: F401 - it sets its own logger to INFO on import

        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
        logging.getLogger("crmclean.validate").setLevel(logging.ERROR)  # the summary says if Data Docs failed

    options = RunOptions(
        inputs=paths,
        db_url=db,
        out_dir=out,
        rules_dir=rules,
        expectations_dir=expectations,
        workers=workers,
        retrain=retrain,
        full_refresh=full_refresh,
        show_pii=show_pii,
        dask_address=dask[0],
        dask_workers=dask[1],
    )
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=False
    ) as progress:
        tasks: dict[str, int] = {}

        def on_stage(stage: str, event: str) -> None:
            if event == "start":
                tasks[stage] = progress.add_task(f"{stage}…", total=1)
            else:
                progress.update(tasks[stage], completed=1, description=f"[green]✓[/] {stage}")

        return _run_in_chosen_mode(options, on_stage, prefect)


def _run_in_chosen_mode(options, on_stage, prefect: bool | None):
    """A Prefect flow run when asked for or when a Prefect API is configured; else the same
    stages in this process at once (no 10–20 s wait for a temporary server). A temporary server
    that cannot start falls back to in-process, announced, before any stage has run."""
    from .flows_mode import prefect_api_configured, startup_timed_out
    from .run import run_pipeline

    api = prefect_api_configured()
    if prefect is False or (prefect is None and not api):
        if prefect is None:
            err_console.print(
                "running in-process (no Prefect API configured: set PREFECT_API_URL, "
                "or pass --prefect for a temporary server and the Prefect UI)"
            )
        return run_pipeline(options, progress=on_stage)
    from crmclean.flows.nightly import run_flow

    if api:
        err_console.print(f"running as a Prefect flow run on {api}")
    else:
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        err_console.print("starting a temporary Prefect server (10–20 s; set PREFECT_API_URL to use yours)…")
    try:
        return run_flow(options, progress=on_stage)
    except Exception as exc:  # noqa: BLE001 - only a server that never started is retried in-process
        if not startup_timed_out(exc):
            raise
        err_console.print("[yellow]the temporary Prefect server did not start; running in-process instead[/]")
        return run_pipeline(options, progress=on_stage)


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
    refs: list[str] = typer.Argument(..., help="A master id (C0000123), or two records as source:id source:id."),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    show_pii: bool = typer.Option(False, "--show-pii", help="Show personal data unmasked."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Show why records were (or were not) merged: per-field match weights as a waterfall."""
    from . import explain as explain_mod

    with user_errors(debug):
        if len(refs) == 1:
            console.print(explain_mod.explain_master(db, refs[0], show_pii=show_pii), soft_wrap=True)
        elif len(refs) == 2:
            console.print(explain_mod.explain_records(db, refs[0], refs[1], show_pii=show_pii), soft_wrap=True)
        else:
            raise CrmcleanError("explain takes one master id or two record references (source:id source:id)")


@app.command()
def evaluate(
    truth: Path = typer.Option(
        ..., "--truth", help="CSV with source, source_record_id, entity_id[, scenario, group_id]."
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", envvar=DB_ENVVAR, show_envvar=True, help=DB_HELP),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Pairwise and B-cubed precision/recall/F1 of the published master against a truth file."""
    from .evaluate import evaluate_db, format_evaluation

    with user_errors(debug):
        console.print(format_evaluation(evaluate_db(truth, db)), soft_wrap=True)


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
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """List runs, newest first."""
    from .history import list_runs

    with user_errors(debug):
        runs = list_runs(db).head(limit)
        shown = [c for c in HISTORY_COLUMNS if c in runs.columns]
        table = Table(show_header=True)
        for col in shown:
            table.add_column(HISTORY_COLUMNS[col], no_wrap=True)
        for row in runs[shown].itertuples(index=False):
            table.add_row(*["" if v is None or v != v else str(v) for v in row])
        console.print(table)


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
