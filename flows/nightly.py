"""The crmclean Prefect flow: each pipeline stage runs as a Prefect task.

`crmclean.run.run_pipeline` owns the logic; this module only hands it a stage runner that makes
every stage a task, whose inputs are the upstream tasks' typed results (so the Prefect UI shows
the data flowing: ingest → load prior → standardize → link → cluster → validate → publish). The
stages that take the store are retried on transient database errors. The flow's one parameter
is a `RunOptions`, so every option reaches the stages as the CLI's `--no-prefect` run gets it.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any, Callable, TypeVar, cast

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import opaque

from crmclean import executors
from crmclean.masking import mask_url
from crmclean.run import DEFAULT_DB_URL, DEFAULT_OUT_DIR, RunOptions, RunResult, run_pipeline

T = TypeVar("T")
RETRIES = 3
RETRY_DELAYS: list[float] = [5, 30, 120]
FLOW_NAME = "crmclean-nightly"
DEPLOYMENT_NAME = "nightly"


def retries_for(stage: Callable[..., Any]) -> int:
    """The stages that talk to the database take the store (load prior reads the prior master,
    cluster reads the affected region's rows by key, publish writes it): they are retried when
    the error is transient; the others never are."""
    return RETRIES if "store" in inspect.signature(stage).parameters else 0


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


def prefect_stage_runner(name: str, stage: Callable[..., T], *args: Any) -> T:
    """Run one stage as a Prefect task and return its result. Arguments are passed `opaque`:
    Prefect links each to the task that returned it without walking through the frames and
    key sets inside; nothing is cached or persisted (the frames are large)."""
    retries = retries_for(stage)
    as_task = task(  # the decorator-factory form: Prefect's overloads type only that one
        name=name,
        cache_policy=NO_CACHE,
        persist_result=False,
        retries=retries,
        retry_delay_seconds=RETRY_DELAYS[:retries] if retries else None,
        retry_condition_fn=_retry_on_transient if retries else None,
    )(stage)
    return as_task(*(opaque(a) for a in args))


_PROGRESS: dict[str, Any] = {"callback": None, "db_urls": {}}


def _unmasked(db_url: str) -> str:
    """The real URL behind the masked one `run_flow` hands Prefect (which stores parameters)."""
    return _PROGRESS["db_urls"].get(db_url, db_url)


@flow(name=FLOW_NAME, validate_parameters=True, log_prints=True, persist_result=False)
def crmclean_nightly(options: RunOptions) -> RunResult:
    """Ingest → standardize → validate → link → cluster/merge → validate → publish."""
    options = dataclasses.replace(options, db_url=_unmasked(options.db_url))
    with executors.using(_task_runner_fanout()):
        return run_pipeline(options, progress=_PROGRESS["callback"], runner=prefect_stage_runner)


def dask_task_runner(options: RunOptions):
    """prefect-dask's DaskTaskRunner for a run that asks for Dask (None: the default runner):
    connected to the scheduler at `dask_address`, or starting a LocalCluster of `dask_workers`."""
    if not options.dask_address and not options.dask_workers:
        return None
    from prefect_dask import DaskTaskRunner

    if options.dask_address:
        return DaskTaskRunner(address=options.dask_address)
    return DaskTaskRunner(cluster_kwargs=executors.local_cluster_options(options.dask_workers))


def _task_runner_fanout() -> executors.DaskCluster | None:
    """The flow run's DaskTaskRunner client as the fan-out of the stages (None: not on Dask).
    The stages stay tasks of this flow; their chunks go to the runner's cluster."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if runner is None or type(runner).__name__ != "DaskTaskRunner":
        return None
    return executors.DaskCluster(cast(Any, runner).client)


def run_flow(options: RunOptions, progress: Callable[[str, str], None] | None = None) -> RunResult:
    """Run the flow in this process (the CLI's `crmclean run`)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _PROGRESS["callback"] = progress
    masked = mask_url(options.db_url)  # the password stays in this process, not in Prefect's database
    _PROGRESS["db_urls"] = {masked: options.db_url}
    try:
        task_runner = dask_task_runner(options)
        nightly = crmclean_nightly.with_options(task_runner=task_runner) if task_runner else crmclean_nightly
        return nightly(options=dataclasses.replace(options, db_url=masked))
    finally:
        _PROGRESS["callback"], _PROGRESS["db_urls"] = None, {}


def nightly_deployment(
    cron: str = "0 2 * * *",
    inputs: list[str] | None = None,
    db_url: str = DEFAULT_DB_URL,
    out_dir: str = DEFAULT_OUT_DIR,
):
    """The nightly deployment definition (validated by a test without a server)."""
    from crmclean.settings import SAMPLE_DATA_DIR

    options = {"inputs": inputs or [str(SAMPLE_DATA_DIR)], "db_url": db_url, "out_dir": out_dir}
    return crmclean_nightly.to_deployment(
        name=DEPLOYMENT_NAME,
        cron=cron,
        parameters={"options": options},
        description="Nightly incremental crmclean run: new and changed records join the existing master.",
        tags=["crmclean", "nightly"],
    )


def serve_nightly(cron: str, inputs: list[str], db_url: str, out_dir: str) -> None:
    """Serve the deployment from this process (needs PREFECT_API_URL pointing at a server)."""
    from prefect import serve

    serve(nightly_deployment(cron=cron, inputs=inputs, db_url=db_url, out_dir=out_dir))
