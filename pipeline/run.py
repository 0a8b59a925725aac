"""The whole job as plain function calls: ingest → standardize → validate → link → cluster/merge
→ validate → publish → report.

Each stage is a function from typed values to a typed value (pipeline/stages.py), called in
order by `_run_stages`; `flows/` runs the same functions as Prefect tasks by passing another
`StageRunner`. Write-audit-publish: everything is computed and checked in memory, and the
published tables are replaced in one transaction only after the critical expectations pass.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import pandas as pd

from . import cluster as cluster_module
from . import executors
from . import frames
from . import ids as ids_module
from . import incremental
from . import ingest as ingest_module
from . import link as link_module
from . import memory
from . import progress
from . import spill as spill_module
from . import standardize as standardize_module
from . import store as store_module
from . import survivorship
from . import validate as validate_module
from .errors import output_error
from .forget import erase_quarantined, quarantine_erased
from .schema import empty_quarantine
from .settings import DEFAULT_EXPECTATIONS_DIR, Rules, load_rules
from .store.erasure import read_tombstones
from .store.statistics import SpellingWrite
from .stages import (
    DEFAULT_DB_URL,
    DEFAULT_OUT_DIR,
    Clustered,
    Ingested,
    Linked,
    Prior,
    Published,
    PublishPlan,
    ReportInput,
    RunCounts,
    RunEnv,
    RunOptions,
    RunResult,
    StageResults,
    Standardized,
    Validated,
)

__all__ = [
    "DEFAULT_DB_URL",
    "DEFAULT_OUT_DIR",
    "RunOptions",
    "RunInterrupted",
    "RunResult",
    "STOP",
    "StageRunner",
    "call_directly",
    "new_run_id",
    "run_pipeline",
]

log = logging.getLogger(__name__)  # INFO lines: stages and outcome (`crmclean run --log-file`)
T = TypeVar("T")
#: runs one stage: `runner(name, stage_function, *arguments)` → the stage's result
StageRunner = Callable[..., Any]

log = logging.getLogger(__name__)


def new_run_id() -> str:
    """Sortable, unique: UTC timestamp plus a short random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


class StageTimer:
    """Collects per-stage wall times for the run report and calls the progress hook."""

    def __init__(self, progress: Callable[[str, str], None] | None = None):
        self.timings: dict[str, float] = {}
        self.progress = progress or (lambda stage, event: None)
        self.started = time.perf_counter()
        self.stopped_in: str | None = None  # the stage an error or interrupt stopped (for run_log)

    def wall(self) -> float:
        """Seconds since the run started: with the stages' sum, shows the overhead between them."""
        return round(time.perf_counter() - self.started, 3)

    @contextmanager
    def stage(self, name: str):
        STOP.check()  # an interrupt that was swallowed on its way stops the run here
        self.progress(name, "start")
        log.info("stage %s started", name)
        t0 = time.perf_counter()
        event = "stopped"  # an error or an interrupt: the stage is not shown as done
        try:
            yield
            event = "end"
        finally:
            memory.release_freed()  # the stage's transient memory, not the run's high-water mark
            self.timings[name] = round(time.perf_counter() - t0, 3)
            if event != "end":
                self.stopped_in = name
            log.info("stage %s %s after %.1f s", name, "done" if event == "end" else "stopped", self.timings[name])
            self.progress(name, event)


def call_directly(name: str, stage: Callable[..., T], *args: Any) -> T:
    """Default stage runner: a plain call. The Prefect flow passes one that makes each a task."""
    return stage(*args)


def run_pipeline(
    options: RunOptions, progress: Callable[[str, str], None] | None = None, runner: StageRunner = call_directly
) -> RunResult:
    """Run every stage and publish; raise a CrmcleanError with a clear message on failure.

    A failure after the run is registered marks it failed in run_log; the published tables are
    only ever replaced inside `store.publish`, in one transaction.
    """
    rules = load_rules(options.rules_dir)
    files, skipped = ingest_module.find_inputs([Path(p) for p in options.inputs], rules)
    for path, reason in skipped:
        log.warning("skipped %s: %s", path, reason)
    skipped_too = [(str(p), reason) for p, reason in skipped]  # the CLI passes what it skipped itself
    options = dataclasses.replace(options, inputs=files, skipped=[*options.skipped, *skipped_too])
    run_id = options.run_id or new_run_id()
    out_dir = Path(options.out_dir) / "runs" / run_id
    env = RunEnv(options=options, rules=rules, run_id=run_id, out_dir=out_dir, timer=StageTimer(progress))
    store = store_module.open_store(options.db_url)
    store.start_run(run_id, datetime.now(timezone.utc), inputs=[str(p) for p in options.inputs])
    log.info("run %s started: %d input file(s), out %s", run_id, len(options.inputs), out_dir)
    done = StageResults()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)  # inside: run_log records an unwritable folder
        fanout = executors.open_fanout(options.dask_address, options.dask_workers)
        with store.lock(run_id), fanout as where, executors.using(where):
            _run_stages(env, store, done, runner)
        assert done.clustered is not None  # every stage ran: the lock was held to the end
        counts = done.clustered.counts.as_dict()
        report = done.report_input(env)
        report_path = _write_report_safely(report, "success", None, options.show_pii)
        store.finish_run(run_id, "success", counts, env.timer.timings)
        log.info("run %s success after %.1f s: %s", run_id, env.timer.wall(), json.dumps(counts, default=int))
        return RunResult(
            run_id=run_id,
            status="success",
            counts=counts,
            out_dir=out_dir,
            report_path=report_path,
            timings=env.timer.timings,
            model=report.model,
        )
    except KeyboardInterrupt:  # Ctrl-C: recorded as aborted (or published, if the commit won)
        raise _record_interrupt(env, store, done) from None
    except Exception as exc:  # the run is marked failed, the master untouched, then re-raised
        error = output_error(exc, options.out_dir) or exc  # a full disk: one line naming the file
        counts = done.clustered.counts.as_dict() if done.clustered else {}
        store.finish_run(run_id, "failed", counts, env.timer.timings, error=str(error))
        log.info("run %s failed after %.1f s: %s", run_id, env.timer.wall(), error)
        if error is not exc:  # the folder cannot take a report either
            raise error from exc
        _write_report_safely(done.report_input(env), "failed", str(error), options.show_pii)
        raise
    finally:
        spill_module.remove(out_dir)  # the spilled columns hold the input's personal data
        store.close()


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run, after its outcome was recorded in run_log."""

    def __init__(self, run_id: str, published: bool, message: str):
        super().__init__(message)
        self.run_id, self.published, self.message = run_id, published, message


class StopRequest:
    """Ctrl-C or SIGTERM as the run sees it: set by the CLI's signal handler, checked at the
    start of every stage. A KeyboardInterrupt can be lost on its way (raised inside a __del__,
    or in a Prefect engine that swallows it); the flag still stops the run before publish."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.outcome: RunInterrupted | None = None  # the recorded end of the interrupted run

    def request(self, signal_name: str) -> None:
        self.signal = signal_name

    def reset(self) -> None:
        self.signal, self.outcome = None, None

    def check(self) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt(self.signal)


STOP = StopRequest()


def _record_interrupt(env: RunEnv, store, done: StageResults) -> RunInterrupted:
    """Record an interrupted run honestly: `aborted` with the stage it stopped in when the
    publish had not committed (the transaction rolled back: nothing published), `success` with
    a note when the interrupt came after the commit. No report is written: the user asked to stop."""
    counts = done.clustered.counts.as_dict() if done.clustered else {}
    try:
        published = store.was_published(env.run_id)
    except Exception:  # noqa: BLE001 - the database is unreachable: the publish cannot have committed now
        published = False
    if published:
        note = "interrupted after the publish committed; no report was written"
        store.finish_run(env.run_id, "success", counts, env.timer.timings, error=note)
        STOP.outcome = RunInterrupted(env.run_id, True, f"interrupted: run {env.run_id} had already published ({note})")
        return STOP.outcome
    where = f"during {env.timer.stopped_in}" if env.timer.stopped_in else "between stages"
    log.info("run %s aborted after %.1f s %s", env.run_id, env.timer.wall(), where)
    note = f"interrupted ({STOP.signal or 'Ctrl-C'}) {where}; nothing was published"
    store.finish_run(env.run_id, "aborted", counts, env.timer.timings, error=note)
    STOP.outcome = RunInterrupted(
        env.run_id, False, f"interrupted: run {env.run_id} aborted {where}; nothing was published"
    )
    return STOP.outcome


def _run_stages(env: RunEnv, store, done: StageResults, run: StageRunner) -> None:
    """The stages in order, each result recorded in `done` as soon as it exists. Only the
    stages given `store` touch the database (the flow retries those on transient errors).
    A frame no later stage reads is let go as soon as it is done with (issue 14: memory)."""
    ingested = done.ingested = run("ingest", ingest_stage, env)
    prior = done.prior = run("load prior", load_prior, env, store, ingested)
    standardized = done.standardized = run("standardize", standardize_stage, env, ingested, prior)
    ingested = done.ingested = _without_records(ingested)  # standardized holds every column of it
    linked = done.linked = run("link", link_stage, env, standardized, prior)
    clustered = done.clustered = run("cluster", cluster_stage, env, standardized, prior, linked, store)
    linked = done.linked = _report_pairs(linked)  # the clusters are built: the rest reads what the report shows
    validated = done.validated = run("validate", validate_stage, env, ingested, standardized, clustered)
    plan = run("plan publish", plan_publish, env, standardized, linked, clustered, validated)
    done.published = run("publish", publish, env, plan, store)


def _without_records(ingested: Ingested) -> Ingested:
    """`ingested` with only the records' `source` column: what the report reads of them (the
    records per source, their count) once standardize has its own frame (the same values)."""
    records = ingested.result.records
    slim = records[["source"]] if "source" in records.columns else records.iloc[:, :0]
    return dataclasses.replace(ingested, result=dataclasses.replace(ingested.result, records=slim))


def _report_pairs(linked: Linked) -> Linked:
    """`linked` with its pairs cut to the columns the run report reads once the tables are built
    (their evidence, rules and feature weights held ≈ 60 MB at 200k customers until the report)."""
    pairs = linked.pairs[[c for c in REPORT_PAIR_COLUMNS if c in linked.pairs.columns]]
    result = dataclasses.replace(linked.result, pairs=pairs)
    return dataclasses.replace(linked, pairs=pairs, result=result)


#: what the run report reads of the pairs (matching histogram, stage flow, review reasons)
REPORT_PAIR_COLUMNS = ("record_key_l", "record_key_r", "match_weight", "decision", "cap")


# ------------------------------------------------------------------------------------ stages


def ingest_stage(env: RunEnv) -> Ingested:
    """Read every input file (column mapping saved beside the report) and check the sources."""
    suites = validate_module.load_suites(env.options.expectations_dir or DEFAULT_EXPECTATIONS_DIR)
    with env.timer.stage("ingest"):
        result = ingest_module.ingest(env.options.inputs, env.rules)
        (env.out_dir / "column_mapping.json").write_text(
            json.dumps(result.mapping, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
    with env.timer.stage("validate sources"):
        validation = validate_module.validate_sources(result.records, result.mapping, suites)
    return Ingested(result=result, suites=suites, validation=validation)


def load_prior(env: RunEnv, store, ingested: Ingested) -> Prior:
    """The previous publish's state: slim (the working columns, with the extra attributes this
    run's data brings) when only the affected region is reclustered, whole otherwise."""
    with env.timer.stage("load prior"):
        why = _full_reason(env.options, env.rules, store.read_state())
        columns = None if why else incremental.working_columns(ingested.result.records.columns)
        erased = read_tombstones(store)
        records = ingested.result.records
        keys = records["record_key"].to_numpy(object) if columns is not None and "record_key" in records else None
        return Prior(state=store.load_state(record_columns=columns, run_keys=keys), full_reason=why, erased=erased)


def standardize_stage(env: RunEnv, ingested: Ingested, prior: Prior) -> Standardized:
    """Standardize new and changed records; unchanged ones reuse their stored values."""
    rules, options = env.rules, env.options
    _check_memory(env, ingested, prior)
    with env.timer.stage("standardize"):
        records = ingested.result.records
        fresh, reused = incremental.split_reusable(
            records,
            prior.state.records,
            refresh=options.full_refresh,
            fingerprint=incremental.standardize_fingerprint(rules),
        )
        # the day/month order and each source's phone region are decided on the whole input
        std_fresh, summary = standardize_module.standardize(
            fresh,
            rules,
            workers=options.workers,
            day_first=standardize_module.infer_date_orders(records, rules),
            phone_regions=standardize_module.infer_phone_regions(records, rules),
        )
        del fresh  # its hashes are std_fresh's: held once (the compacted copies replace them)
        # reused records passed this check when they were standardized (same fingerprint)
        unusable, std_quarantine = standardize_module.unidentifiable(std_fresh, rules)
        if unusable is not None:  # moved a column at a time: never two whole frames
            std_fresh = frames.moved_rows(std_fresh, ~unusable)
        # people erased by `crmclean forget` stay erased: their rows are quarantined, not re-created
        std_fresh, erased_quarantine = quarantine_erased(std_fresh, prior.erased, rules)
        ingest_quarantine = erase_quarantined(ingested.result.quarantine, prior.erased, rules)
        quarantine = pd.concat([ingest_quarantine, std_quarantine, erased_quarantine], ignore_index=True)
        # the summary counts only this run's newly standardized records (reused ones were counted before)
        summary.to_csv(env.out_dir / "standardize_summary.csv", index=False)
    with env.timer.stage("validate standardized"):
        validation = validate_module.validate_standardized(std_fresh, ingested.suites)
    fresh_keys, fresh = frozenset(std_fresh["record_key"]), std_fresh.iloc[:, :0]  # only its length is read
    std = incremental.with_reused(std_fresh, reused)
    del std_fresh  # the compacted columns below replace its object columns instead of joining them
    if prior.full_reason is not None:  # a night's std is its few records, joined to stored rows (object)
        # the flags as categoricals, the hashes and ids as Arrow text: a byte or a few a cell, not a str
        std = frames.compacted(std, standardize_module.CATEGORY_COLUMNS)
    # only publish reads the raw rows again: on disk until then (crmclean.spill)
    std_slim, spilled = spill_module.spill_columns(std, env.out_dir)
    return Standardized(
        std=std_slim,
        fresh=fresh,
        fresh_keys=fresh_keys,
        reused_keys=frozenset(reused["record_key"]),  # its rows are in std
        run_columns=(*records.columns, "content_hash", "row_hash", "std_fingerprint"),
        quarantine=quarantine if not quarantine.empty else empty_quarantine(),
        summary=summary,
        validation=validation,
        rows_read=int(ingested.result.rows_read),
        spill=spilled,
    )


def link_stage(env: RunEnv, standardized: Standardized, prior: Prior) -> Linked:
    """Join this run's records to the prior working set and score the candidate pairs that
    touch a new or changed record (every pair when there is no model to reuse)."""
    state = prior.state
    with env.timer.stage("link"):
        # slim prior: the working set keeps only the slim columns (full rows are read by key)
        combined = incremental.combine_with_prior(
            standardized.std,
            state,
            env.rules,
            fresh_keys=standardized.fresh_keys,
            columns=list(state.records.columns) if state.slim else None,
        )
        overrides = incremental.merge_overrides(env.rules.overrides, state.overrides)
        model = None if env.options.retrain else state.model
        everything = len(combined.changed_keys) >= len(combined.records)
        new_keys = None if model is None or everything else combined.changed_keys
        # stored labels and review decisions refine the model the pairs are scored with
        from .label import latest_labels

        result = link_module.link(
            combined.records,
            env.rules,
            model=model,
            new_keys=new_keys,
            workers=env.options.workers,
            labels=latest_labels(state.overrides),
        )
        pairs = result.pairs if new_keys is None else pd.concat([combined.kept_edges, result.pairs], ignore_index=True)
    return Linked(combined=combined, overrides=overrides, result=result, pairs=pairs)


def cluster_stage(env: RunEnv, standardized: Standardized, prior: Prior, linked: Linked, store) -> Clustered:
    """Clusters, golden records and master ids, and the tables to publish: of the affected
    region only (its full rows, masters and edges read from `store` by key), or of everything."""
    with env.timer.stage("cluster"), _frozen_heap():
        if prior.full_reason is not None:
            return _cluster_all(env, standardized, prior, linked)
        region = incremental.cluster_region(standardized, prior.state, linked, env.rules, env.run_id, store)
        whole = region.whole
        progress.expect(whole.region_masters, "clusters")  # the affected region's, counted when built
        progress.advance(whole.region_masters)
        counts = _counts(
            standardized,
            whole.masters,
            whole.records_in_master,
            whole.review_pairs,
            reclustered=(whole.region_records, whole.region_masters),
        )
        return Clustered(
            clusters=region.clusters,
            tables=region.tables,
            views=region.views,
            counts=counts,
            whole=whole,
            scope=region.scope,
            spelling=region.spelling,
        )


@contextmanager
def _frozen_heap(collect: bool = True):
    """Objects alive before the block out of the cyclic collector while it runs: they outlive
    it, and the collector's full passes rescanned them (~1 CPU s of the 200k cluster stage).
    Without `collect` the garbage they hold waits for the first collection after the block
    (publish: the collection itself cost what freezing saves)."""
    if collect:
        gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _cluster_all(env: RunEnv, standardized: Standardized, prior: Prior, linked: Linked) -> Clustered:
    """Cluster, survivorship and ids over the whole working set; every table whole."""
    combined, rules = linked.combined, env.rules
    clusters = cluster_module.cluster_records(
        combined.records, linked.pairs, rules, linked.overrides, model=linked.result.model
    )
    progress.expect(int(clusters["cluster"].nunique()), "clusters")
    memory.release_freed()  # clustering's working arrays, before survivorship's (the stage's peak)
    # the data-wide counts survivorship reads, stored for the next incremental run
    spelling = survivorship.spelling_counts(combined.records, rules)
    assigned = ids_module.assign_master_ids(clusters, prior.state)
    # master_lineage (~7 rows a record) goes to disk as it is built, and waits there for publish
    golden, lineage = store_module.golden_with_spilled_lineage(
        combined.records, clusters, rules, spelling, assigned, env.out_dir, workers=env.options.workers
    )
    progress.advance(len(golden))
    tables = store_module.build_tables(
        run_id=env.run_id,
        records=combined.records,
        run_keys=set(standardized.std["record_key"]),
        retired=combined.retired,
        quarantine=standardized.quarantine,
        pairs=linked.pairs,
        clusters=clusters,
        golden=golden,
        lineage=lineage,
        assigned=assigned,
        model=linked.result.model,
        overrides=linked.overrides,
        prior=prior.state,
    )
    counts = _counts(
        standardized, len(tables["master_customer"]), len(tables["customer_xref"]), len(tables["review_queue"])
    )
    stored = SpellingWrite(spelling, statistics=sorted(spelling))
    return Clustered(clusters=clusters, tables=tables, views=tables, counts=counts, spelling=stored)


def _counts(
    standardized: Standardized,
    masters: int,
    in_master: int,
    review_pairs: int,
    reclustered: tuple[int, int] | None = None,
) -> RunCounts:
    """The run's headline numbers; `reclustered` (records, masters) on an incremental run."""
    std = standardized.std
    return RunCounts(
        rows_read=standardized.rows_read,
        quarantined=int(len(standardized.quarantine)),
        records_accepted=int(len(std)),
        masters=int(masters),
        records_in_master=int(in_master),
        records_merged=int(in_master - masters),
        review_pairs=int(review_pairs),
        records_standardized=int(len(standardized.fresh)),
        records_reused=int(len(std) - len(standardized.fresh)),
        records_reclustered=None if reclustered is None else int(reclustered[0]),
        masters_rebuilt=None if reclustered is None else int(reclustered[1]),
    )


def validate_stage(env: RunEnv, ingested: Ingested, standardized: Standardized, clustered: Clustered) -> Validated:
    """Check the result tables and build the Data Docs of every check of the run. Critical
    failures are recorded, not raised: plan_publish refuses them (the report still shows them)."""
    with env.timer.stage("validate"):
        whole = clustered.whole.for_validation() if clustered.whole else None
        tables = _spilled_for_checks(clustered.tables, ingested.suites, standardized.spill)
        result = validate_module.validate_result(tables, standardized.std, ingested.suites, whole=whole)
        reports = (ingested.validation, standardized.validation, result)
        docs = validate_module.build_data_docs(list(reports), env.out_dir / "data_docs", show_pii=env.options.show_pii)
        failures = tuple(validate_module.critical_failures(list(reports)))
    return Validated(reports=reports, data_docs=docs, failures=failures)


def _spilled_for_checks(tables: dict, suites: dict, spill) -> dict:
    """customer_record with the spilled columns that a result check names put back for the check
    (a user's suite may check raw columns; the bundled one does not, so usually nothing is read)."""
    suite = suites.get("result")
    if spill is None or suite is None or "customer_record" not in tables:
        return tables
    named = validate_module.columns_read(suite.for_table("customer_record"))
    wanted = tuple(c for c in spill.columns if named is None or c in named)
    if not wanted:
        return tables
    restored = spill_module.restore(tables["customer_record"], dataclasses.replace(spill, columns=wanted))
    return {**tables, "customer_record": restored}


def plan_publish(
    env: RunEnv, standardized: Standardized, linked: Linked, clustered: Clustered, validated: Validated
) -> PublishPlan:
    """The audited tables and the master state to publish; raises ValidationFailed when a
    critical expectation failed (write-audit-publish: nothing is written)."""
    validated.raise_if_failed()
    state = {
        "cluster_fingerprint": incremental.cluster_fingerprint(env.rules),
        "overrides": incremental.overrides_text(linked.overrides),
    }
    return PublishPlan(
        run_id=env.run_id,
        tables=clustered.tables,
        state=state,
        incremental=clustered.whole is not None,
        views=clustered.views,
        spill=standardized.spill,
        spelling=clustered.spelling,
    )


def publish(env: RunEnv, plan: PublishPlan, store) -> Published:
    """Write the plan in one transaction; → what the report shows of the master."""
    with env.timer.stage("publish"), _frozen_heap(collect=False):
        rows = sum(len(t.rows if isinstance(t, store_module.Scoped) else t) for t in plan.tables.values())
        progress.expect(rows, "rows")
        # the spilled raw rows are read back as customer_record is written, a batch at a time
        store.publish(plan.run_id, plan.tables, state=plan.state, spelling=plan.spelling, spill=plan.spill)
        spill_module.release_arrow()
        progress.advance(rows)
    return Published(views=_report_views(plan, store) if plan.incremental else plan.views)


# ------------------------------------------------------------------------------------ helpers


def _check_memory(env: RunEnv, ingested: Ingested, prior: Prior) -> None:
    """Stop before the heavy stages when the records would not fit in memory (crmclean.memory):
    this run's records, plus the prior master's when the whole master is reclustered."""
    import os

    options = env.options
    limit = memory.parse_limit(options.memory_limit or os.environ.get(memory.LIMIT_ENVVAR))
    records = len(ingested.result.records) + (len(prior.state.records) if prior.full_reason else 0)
    dask = bool(options.dask_address or options.dask_workers)
    found = memory.check(records, limit, workers=0 if dask else options.workers)
    if limit != 0:
        log.info("memory: about %d MB needed, %d MB available", found.needed >> 20, found.available >> 20)


def _full_reason(options: RunOptions, rules: Rules, state: dict[str, str]) -> str | None:
    """Why this run clusters and publishes the whole master (None: only the affected region)."""
    if options.recluster_all:
        return "asked for (recluster_all)"
    if options.full_refresh:
        return "full refresh"
    if options.retrain:
        return "the match model is retrained"
    stored = state.get("cluster_fingerprint")
    if stored is None:
        return "first run, or the master was built before incremental clustering"
    if stored != incremental.cluster_fingerprint(rules):
        return "the clustering or survivorship rules (or CLUSTER_VERSION) changed"
    return None


def _report_views(plan: PublishPlan, store) -> dict[str, pd.DataFrame]:
    """After an incremental publish the report shows the whole master: the 10 largest masters'
    rows and the review queue are read back (the tables of the run hold its changes only)."""
    try:
        views = dict(plan.views)
        xref = views["customer_xref"]
        largest = xref.groupby("master_id").size().sort_values(ascending=False, kind="stable").head(10).index
        masters = pd.concat([views["master_customer"], store.read_masters(list(largest))], ignore_index=True)
        views["master_customer"] = masters.drop_duplicates("master_id", keep="first")
        views["review_queue"] = store.read_table("review_queue")
        return views
    except Exception:  # the report is best effort; the run has been published
        return plan.views


def _write_report_safely(report: ReportInput, status: str, error: str | None, show_pii: bool) -> Path | None:
    """The report is written for failed runs too; a report bug never hides the run's outcome."""
    from . import report as report_module

    try:
        return report_module.write_report(report, status=status, error=error, show_pii=show_pii)
    except Exception as exc:  # logged, never masks the real error
        log.warning("the run report could not be written: %s", exc)
        try:
            (Path(report.out_dir) / "report_error.txt").write_text(repr(exc), encoding="utf-8")
        except OSError:  # an unwritable or full output folder: the warning is all there is
            pass
        return None
