"""The whole job as plain function calls: ingest → standardize → validate → link → cluster/merge
→ validate → publish → report.

`flows/` wraps these same steps as Prefect tasks; tests call `run_pipeline` (or the stages)
directly. Write-audit-publish: everything is computed and checked in memory, and the published
tables are replaced in one transaction only after the critical expectations pass.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import cluster as cluster_stage
from . import ids as ids_stage
from . import incremental as incremental_stage
from . import ingest as ingest_stage
from . import link as link_stage
from . import standardize as standardize_stage
from . import store as store_stage
from . import survivorship as survivorship_stage
from . import validate as validate_stage
from .errors import ValidationFailed
from .schema import empty_quarantine
from .settings import DEFAULT_EXPECTATIONS_DIR, Rules, load_rules

DEFAULT_DB_URL = "sqlite:///crmclean-out/master.db"
DEFAULT_OUT_DIR = "crmclean-out"


@dataclass
class RunOptions:
    inputs: list[Path]
    db_url: str = DEFAULT_DB_URL
    out_dir: Path = Path(DEFAULT_OUT_DIR)
    rules_dir: Path | None = None
    expectations_dir: Path | None = None
    workers: int = 2
    retrain: bool = False
    show_pii: bool = False
    run_id: str | None = None
    full_refresh: bool = False  # re-standardize every record (e.g. after changing rules/standardize.yaml)
    # cluster and publish the whole master, not only the affected region (same result, slower)
    recluster_all: bool = False


@dataclass
class RunResult:
    run_id: str
    status: str
    counts: dict[str, int]
    out_dir: Path
    report_path: Path | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def new_run_id() -> str:
    """Sortable, unique: UTC timestamp plus a short random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


class StageTimer:
    """Collects per-stage wall times for the run report and calls the progress hook."""

    def __init__(self, progress: Callable[[str, str], None] | None = None):
        self.timings: dict[str, float] = {}
        self.progress = progress or (lambda stage, event: None)

    @contextmanager
    def stage(self, name: str):
        self.progress(name, "start")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 3)
            self.progress(name, "end")


def run_pipeline(
    options: RunOptions,
    progress: Callable[[str, str], None] | None = None,
    call_stage: "StageCall | None" = None,
) -> RunResult:
    """Run every stage and publish; raise a CrmcleanError with a clear message on failure.

    A failure after the run is registered marks it failed in run_log; the published tables are
    only ever replaced inside `store.publish`, in one transaction.
    """
    rules = load_rules(options.rules_dir)
    options.inputs = ingest_stage.discover_inputs([Path(p) for p in options.inputs])
    run_id = options.run_id or new_run_id()
    out_dir = Path(options.out_dir) / "runs" / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    timer = StageTimer(progress)
    started = datetime.now(timezone.utc)
    store = store_stage.open_store(options.db_url)
    store.start_run(run_id, started, inputs=[str(p) for p in options.inputs])
    ctx: dict[str, Any] = {"run_id": run_id, "out_dir": out_dir, "rules": rules, "timer": timer}
    try:
        with store.lock(run_id):
            result = _run_stages(options, rules, store, ctx, call_stage or call_directly)
        store.finish_run(run_id, "success", result.counts, timer.timings)
        return result
    except Exception as exc:  # the run is marked failed, the master untouched, then re-raised
        ctx.setdefault("counts", {})
        store.finish_run(run_id, "failed", ctx["counts"], timer.timings, error=str(exc))
        _write_report_safely(ctx, status="failed", error=str(exc), options=options)
        raise
    finally:
        store.close()


StageCall = Callable[[str, Callable[[], None]], None]


def call_directly(name: str, fn: Callable[[], None]) -> None:
    """Default stage runner: a plain call. The Prefect flow passes one that makes each a task."""
    fn()


def _run_stages(options: RunOptions, rules: Rules, store, ctx: dict[str, Any], call_stage: StageCall) -> RunResult:
    """Each stage reads and writes `ctx`, so a runner (plain or Prefect) can wrap it."""
    timer: StageTimer = ctx["timer"]
    run_id = ctx["run_id"]
    out_dir: Path = ctx["out_dir"]
    expectations_dir = options.expectations_dir or DEFAULT_EXPECTATIONS_DIR

    def ingest() -> None:
        ctx["suites"] = validate_stage.load_suites(expectations_dir)
        with timer.stage("ingest"):
            ingested = ctx["ingested"] = ingest_stage.ingest(options.inputs, rules)
            (out_dir / "column_mapping.json").write_text(
                json.dumps(ingested.mapping, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
            )
        with timer.stage("validate sources"):
            ctx["validations"] = [validate_stage.validate_sources(ingested.records, ingested.mapping, ctx["suites"])]

    def standardize() -> None:
        with timer.stage("load prior"):
            why = ctx["full_reason"] = _full_reason(options, rules, store.read_state())
            columns = None if why else incremental_stage.working_columns()
            ctx["prior"] = store.load_state(record_columns=columns)
        with timer.stage("standardize"):
            records = ctx["ingested"].records
            fresh, reused = incremental_stage.split_reusable(
                records, ctx["prior"].records, refresh=options.full_refresh,
                fingerprint=incremental_stage.standardize_fingerprint(rules))
            # the day/month order is decided on the whole input, as a full run would
            day_first = standardize_stage.infer_date_orders(records, rules)
            std_fresh, std_summary = standardize_stage.standardize(
                fresh, rules, workers=options.workers, day_first=day_first)
            # reused records passed this check when they were standardized (same fingerprint)
            std_fresh, std_quarantine = standardize_stage.quarantine_unidentifiable(std_fresh, rules)
            std = incremental_stage.with_reused(std_fresh, reused)
            ctx["std"] = std
            ctx["std_fresh"] = std_fresh
            ctx["std_reused"] = int(len(reused))
            ctx["fresh_keys"] = set(std_fresh["record_key"])
            ctx["reused_keys"] = set(reused["record_key"])
            ctx["run_columns"] = list(records.columns) + ["content_hash", "row_hash", "std_fingerprint"]
            quarantine = pd.concat([ctx["ingested"].quarantine, std_quarantine], ignore_index=True)
            ctx["quarantine"] = quarantine if not quarantine.empty else empty_quarantine()
            # counts only this run's newly standardized records (reused ones were counted before)
            ctx["std_summary"] = std_summary
            std_summary.to_csv(out_dir / "standardize_summary.csv", index=False)
        with timer.stage("validate standardized"):
            ctx["validations"].append(validate_stage.validate_standardized(ctx["std_fresh"], ctx["suites"]))

    def link() -> None:
        with timer.stage("link"):
            prior = ctx["prior"]
            # slim prior: the working set keeps only the slim columns (full rows are read by key)
            combined = ctx["combined"] = incremental_stage.combine_with_prior(
                ctx["std"], prior, rules, fresh_keys=ctx["fresh_keys"],
                columns=list(prior.records.columns) if prior.slim else None)
            ctx["overrides"] = incremental_stage.merge_overrides(rules.overrides, prior.overrides)
            model = None if options.retrain else prior.model
            everything = len(combined.changed_keys) >= len(combined.records)
            new_keys = None if model is None or everything else combined.changed_keys
            linked = link_stage.link(combined.records, rules, model=model, new_keys=new_keys, workers=options.workers)
            ctx["linked"] = linked
            if new_keys is None:
                ctx["pairs"] = linked.pairs
            else:
                ctx["pairs"] = pd.concat([combined.kept_edges, linked.pairs], ignore_index=True)

    def cluster() -> None:
        with timer.stage("cluster"):
            if ctx["full_reason"] is None:  # the region's full rows, masters and edges are read by key
                _cluster_region(ctx, rules, store.read_records, store.read_masters, store.read_edges)
            else:
                _cluster_all(ctx, rules)
            ctx["counts"] = run_counts(ctx)

    def validate() -> None:
        with timer.stage("validate"):
            ctx["validations"].append(validate_stage.validate_result(
                ctx["publish_tables"], ctx["std"], ctx["suites"], whole=ctx.get("whole")))
            ctx["data_docs"] = validate_stage.build_data_docs(
                ctx["validations"], out_dir / "data_docs", show_pii=options.show_pii
            )
            failed = validate_stage.critical_failures(ctx["validations"])
            if failed:
                raise ValidationFailed(
                    "critical expectations failed, nothing was published: " + "; ".join(failed[:5])
                )

    def publish() -> None:
        with timer.stage("publish"):
            state = {"cluster_fingerprint": incremental_stage.cluster_fingerprint(rules),
                     "overrides": incremental_stage.overrides_text(ctx["overrides"])}
            store.publish(run_id, ctx["publish_tables"], state=state)
        if ctx["full_reason"] is None:
            _report_views(ctx, store)

    for name, fn in (
        ("ingest", ingest),
        ("standardize", standardize),
        ("link", link),
        ("cluster", cluster),
        ("validate", validate),
        ("publish", publish),
    ):
        call_stage(name, fn)

    result = RunResult(run_id=run_id, status="success", counts=ctx["counts"], out_dir=out_dir, timings=timer.timings)
    result.report_path = _write_report_safely(ctx, status="success", error=None, options=options)
    return result


def run_counts(ctx: dict[str, Any]) -> dict[str, int]:
    """The run's headline numbers (run_log, summary table, report).

    `rows_read` counts this run's input rows; each ends in `records_accepted` (its record is in
    customer_xref) or in this run's quarantine rows.
    """
    tables = ctx["tables"]
    quarantine = ctx["quarantine"]
    whole = ctx.get("whole") or {}
    masters = whole.get("masters", len(tables["master_customer"]))
    in_master = whole.get("records_in_master", len(tables["customer_xref"]))
    counts = {
        "rows_read": int(ctx["ingested"].rows_read),
        "quarantined": int(len(quarantine)),
        "records_accepted": int(len(ctx["std"])),
        "masters": int(masters),
        "records_in_master": int(in_master),
        "records_merged": int(in_master - masters),
        "review_pairs": int(whole.get("review_pairs", len(tables["review_queue"]))),
        "records_standardized": int(len(ctx.get("std_fresh", ctx["std"]))),
        "records_reused": int(ctx.get("std_reused", 0)),
    }
    if "region_records" in whole:  # an incremental run: how much it reclustered
        counts["records_reclustered"] = int(whole["region_records"])
        counts["masters_rebuilt"] = int(whole["region_masters"])
    return counts


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
    if stored != incremental_stage.cluster_fingerprint(rules):
        return "the clustering or survivorship rules (or their code) changed"
    return None


def _cluster_all(ctx: dict[str, Any], rules: Rules) -> None:
    """Cluster, survivorship and ids over the whole working set; every table whole."""
    combined = ctx["combined"]
    clusters = cluster_stage.cluster_records(combined.records, ctx["pairs"], rules, ctx["overrides"],
                                             model=ctx["linked"].model)
    golden, lineage = survivorship_stage.build_golden(combined.records, clusters, rules)
    assigned = ids_stage.assign_master_ids(clusters, ctx["prior"])
    tables = store_stage.build_tables(
        run_id=ctx["run_id"],
        records=combined.records,
        run_keys=set(ctx["std"]["record_key"]),
        retired=combined.retired,
        quarantine=ctx["quarantine"],
        pairs=ctx["pairs"],
        clusters=clusters,
        golden=golden,
        lineage=lineage,
        assigned=assigned,
        model=ctx["linked"].model,
        overrides=ctx["overrides"],
        prior=ctx["prior"],
    )
    ctx["clusters"] = clusters
    ctx["tables"] = ctx["publish_tables"] = tables


def _cluster_region(ctx: dict[str, Any], rules: Rules, read_records, read_masters, read_edges) -> None:
    """The incremental path: recluster only the affected region (incremental.affected_region),
    carry every other master as it is, and build only the rows the region covers."""
    combined, prior, pairs, overrides = ctx["combined"], ctx["prior"], ctx["pairs"], ctx["overrides"]
    linked = ctx["linked"]
    records = combined.records
    scope = incremental_stage.affected_region(
        records["record_key"], pairs, overrides, prior, combined,
        incremental_stage.overrides_from_text(prior.state.get("overrides")))
    keys = scope.keys
    region = records[records["record_key"].isin(keys).to_numpy()]
    in_region = pairs[pairs["record_key_l"].isin(keys).to_numpy() & pairs["record_key_r"].isin(keys).to_numpy()]
    clusters = cluster_stage.cluster_records(region, in_region, rules, overrides, model=linked.model)

    fresh, reused = ctx["fresh_keys"], ctx["reused_keys"]
    run_keys = set(ctx["std"]["record_key"])
    retired_keys = set(combined.retired["record_key"]) if len(combined.retired) else set()
    gone = set(combined.changed_keys) | retired_keys
    # rows rewritten in customer_record: standardized this run, or reused from a moved row
    std = ctx["std"]
    run_arr = std["record_key"].to_numpy(dtype=object)
    at = pd.Index(prior.records["record_key"]).get_indexer(run_arr) if len(prior.records) else np.full(len(std), -1)
    was_reused = (at >= 0) & ~std["record_key"].isin(fresh).to_numpy()
    stored_row = prior.records["row_hash"].to_numpy(dtype=object)[at[was_reused]] if was_reused.any() else np.zeros(
        0, object)
    moved = run_arr[was_reused][stored_row != std["row_hash"].to_numpy(dtype=object)[was_reused]]
    rewrite = fresh | set(moved)
    review_pairs, missing = store_stage.review_scope(combined.kept_edges, overrides, prior.review_keys, gone)
    new_review = linked.pairs[linked.pairs["decision"] == "review"] if len(linked.pairs) else linked.pairs
    shown = set(new_review["record_key_l"]) | set(new_review["record_key_r"]) | {k for p in missing for k in p}
    need = (keys | rewrite | shown) - fresh
    # full stored rows: the region's and rewritten rows' columns, every written row's first seen run
    full = read_records(sorted(need | retired_keys | fresh))
    wanted_keys = keys | rewrite | shown
    # this run's rows from std (the working set is slim), carried rows from the working set
    wanted = pd.concat([std[std["record_key"].isin(wanted_keys).to_numpy()],
                        records[records["record_key"].isin(wanted_keys - run_keys).to_numpy()]], ignore_index=True)
    complete = incremental_stage.complete_records(wanted, full, reused, fresh, ctx["run_columns"])
    retired = incremental_stage.complete_records(combined.retired, full, set(), set(), ctx["run_columns"])
    golden, lineage = survivorship_stage.build_golden(
        complete[complete["record_key"].isin(keys).to_numpy()], clusters, rules)

    near = keys | retired_keys
    prior_sub = dataclasses.replace(
        prior, xref=prior.xref[prior.xref["record_key"].isin(near).to_numpy()],
        masters=read_masters(sorted(scope.prior_ids)), records=full)
    assigned = ids_stage.assign_master_ids(clusters, prior_sub)
    readd = pd.DataFrame()
    if missing:
        readd = read_edges(sorted({k for p in missing for k in p}))
    tables = store_stage.build_scoped_tables(
        run_id=ctx["run_id"], records=complete, run_keys=run_keys, rewrite_keys=rewrite, retired=retired,
        quarantine=ctx["quarantine"], pairs=pairs, new_pairs=linked.pairs, readd_edges=readd,
        review_pairs=review_pairs, gone_keys=gone, clusters=clusters, golden=golden, lineage=lineage,
        assigned=assigned, model=linked.model, overrides=overrides, prior=prior_sub, scope_keys=keys,
        scope_prior_ids=scope.prior_ids, run_sources=set(std["source"].dropna()))

    # the whole master after this run, from the prior key sets and the region's new rows
    xref_rows = tables["customer_xref"].rows
    px = prior.xref
    untouched = px[~px["record_key"].isin(near).to_numpy()]
    final_xref = pd.concat([untouched, xref_rows[list(untouched.columns)]], ignore_index=True)
    master_ids = (set(px["master_id"].dropna()) - scope.prior_ids) | set(assigned["master_id"])
    stored_review = prior.review_keys
    if len(stored_review):
        in_scope = (stored_review["record_key_l"].isin(gone) | stored_review["record_key_r"].isin(gone)).to_numpy()
        in_scope |= [p in review_pairs for p in zip(stored_review["record_key_l"], stored_review["record_key_r"])]
        review_count = int((~in_scope).sum())
    else:
        review_count = 0
    ctx["whole"] = {
        "master_ids": master_ids, "xref_keys": set(final_xref["record_key"]),
        "xref_master_ids": set(final_xref["master_id"].dropna()), "masters": len(master_ids),
        "records_in_master": len(final_xref), "review_pairs": review_count + len(tables["review_queue"].rows),
        "region_records": len(keys), "region_masters": len(assigned), "changed_keys": keys | rewrite,
    }
    ctx["clusters"] = clusters
    ctx["scope"] = scope
    ctx["publish_tables"] = tables
    ctx["tables"] = {**{name: getattr(t, "rows", t) for name, t in tables.items()}, "customer_xref": final_xref}


def _report_views(ctx: dict[str, Any], store) -> None:
    """After an incremental publish the report shows the whole master: the 10 largest masters'
    rows and the review queue are read back (the tables of the run hold its changes only)."""
    try:
        tables = dict(ctx["tables"])
        xref = tables["customer_xref"]
        largest = xref.groupby("master_id").size().sort_values(ascending=False, kind="stable").head(10).index
        masters = pd.concat([tables["master_customer"], store.read_masters(list(largest))], ignore_index=True)
        tables["master_customer"] = masters.drop_duplicates("master_id", keep="first")
        tables["review_queue"] = store.read_table("review_queue")
        ctx["tables"] = tables
    except Exception:  # the report is best effort; the run has been published
        pass


def _write_report_safely(ctx: dict[str, Any], status: str, error: str | None, options: RunOptions) -> Path | None:
    """The report is written for failed runs too; a report bug never hides the run's outcome."""
    from . import report as report_stage

    try:
        return report_stage.write_report(ctx, status=status, error=error, show_pii=options.show_pii)
    except Exception as exc:  # pragma: no cover - logged, never masks the real error
        (Path(ctx["out_dir"]) / "report_error.txt").write_text(repr(exc), encoding="utf-8")
        return None
