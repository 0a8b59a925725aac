"""The crmclean Prefect flow: each pipeline stage runs as a Prefect task.

`crmclean.run.run_pipeline` owns the logic; this module only hands it a stage runner that wraps
every stage in a task (with retries on transient database errors for the stages that touch the
database), and defines the nightly deployment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from crmclean.masking import mask_url
from crmclean.run import DEFAULT_DB_URL, DEFAULT_OUT_DIR, RunOptions, RunResult, run_pipeline

# stages that talk to the database are retried when the error is transient:
# standardize reads the prior master (store.load_state), cluster reads the affected region's
# rows by key (an incremental run), publish writes it
DB_STAGES = {"standardize": 3, "cluster": 3, "publish": 3}
RETRY_DELAYS = [5, 30, 120]
FLOW_NAME = "crmclean-nightly"
DEPLOYMENT_NAME = "nightly"


def is_transient_db_error(exc: BaseException | None) -> bool:
    """A lost connection or a busy database, anywhere in the exception chain."""
    from sqlalchemy import exc as sa_exc

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.DisconnectionError, ConnectionError, TimeoutError)):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if type(exc).__module__.startswith("psycopg") and type(exc).__name__ in {"OperationalError", "InterfaceError"}:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _retry_on_transient(task_, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we only classify it
        return is_transient_db_error(exc)
    return False


def prefect_stage_runner(name: str, fn: Callable[[], None]) -> None:
    """Run one stage as a Prefect task (no caching: stages work on in-memory frames)."""
    retries = DB_STAGES.get(name, 0)
    task(
        fn,
        name=name,
        cache_policy=NO_CACHE,
        retries=retries,
        retry_delay_seconds=RETRY_DELAYS[:retries] if retries else None,
        retry_condition_fn=_retry_on_transient if retries else None,
        persist_result=False,
    )()


_PROGRESS: dict[str, Any] = {"callback": None, "db_urls": {}}


def _unmasked(db_url: str) -> str:
    """The real URL behind the masked one `run_flow` hands Prefect (which stores parameters)."""
    return _PROGRESS["db_urls"].get(db_url, db_url)


@flow(name=FLOW_NAME, validate_parameters=True, log_prints=True, persist_result=False)
def crmclean_nightly(
    inputs: list[str] | None = None,
    db_url: str = DEFAULT_DB_URL,
    out_dir: str = DEFAULT_OUT_DIR,
    rules_dir: str | None = None,
    expectations_dir: str | None = None,
    workers: int = 2,
    retrain: bool = False,
    full_refresh: bool = False,
    show_pii: bool = False,
) -> RunResult:
    """Ingest → standardize → validate → link → cluster/merge → validate → publish."""
    from crmclean.settings import SAMPLE_DATA_DIR

    options = RunOptions(
        inputs=[Path(p) for p in (inputs or [str(SAMPLE_DATA_DIR)])],
        db_url=_unmasked(db_url),
        out_dir=Path(out_dir),
        rules_dir=Path(rules_dir) if rules_dir else None,
        expectations_dir=Path(expectations_dir) if expectations_dir else None,
        workers=workers,
        retrain=retrain,
        full_refresh=full_refresh,
        show_pii=show_pii,
    )
    return run_pipeline(options, progress=_PROGRESS["callback"], call_stage=prefect_stage_runner)


def run_flow(options: RunOptions, progress: Callable[[str, str], None] | None = None) -> RunResult:
    """Run the flow in this process (the CLI's `crmclean run`)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _PROGRESS["callback"] = progress
    masked = mask_url(options.db_url)  # the password stays in this process, not in Prefect's database
    _PROGRESS["db_urls"] = {masked: options.db_url}
    try:
        return crmclean_nightly(
            inputs=[str(p) for p in options.inputs],
            db_url=masked,
            out_dir=str(options.out_dir),
            rules_dir=str(options.rules_dir) if options.rules_dir else None,
            expectations_dir=str(options.expectations_dir) if options.expectations_dir else None,
            workers=options.workers,
            retrain=options.retrain,
            full_refresh=options.full_refresh,
            show_pii=options.show_pii,
        )
    finally:
        _PROGRESS["callback"], _PROGRESS["db_urls"] = None, {}


def nightly_deployment(cron: str = "0 2 * * *", inputs: list[str] | None = None,
                       db_url: str = DEFAULT_DB_URL, out_dir: str = DEFAULT_OUT_DIR):
    """The nightly deployment definition (validated by a test without a server)."""
    return crmclean_nightly.to_deployment(
        name=DEPLOYMENT_NAME,
        cron=cron,
        parameters={"inputs": inputs or None, "db_url": db_url, "out_dir": out_dir},
        description="Nightly incremental crmclean run: new and changed records join the existing master.",
        tags=["crmclean", "nightly"],
    )


def serve_nightly(cron: str, inputs: list[str], db_url: str, out_dir: str) -> None:
    """Serve the deployment from this process (needs PREFECT_API_URL pointing at a server)."""
    from prefect import serve

    serve(nightly_deployment(cron=cron, inputs=inputs, db_url=db_url, out_dir=out_dir))
