"""The whole job as plain function calls: ingest → standardize → validate → link → cluster/merge
→ validate → publish → report.

`flows/` wraps these same steps as Prefect tasks; tests call `run_pipeline` (or the stages)
directly. Write-audit-publish: everything is computed and checked in memory, and the published
tables are replaced in one transaction only after the critical expectations pass.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

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
            ctx["prior"] = store.load_state()
        with timer.stage("standardize"):
            records = ctx["ingested"].records
            fresh, reused = incremental_stage.split_reusable(
                records, ctx["prior"].records, refresh=options.full_refresh,
                fingerprint=incremental_stage.standardize_fingerprint(rules))
            # the day/month order is decided on the whole input, as a full run would
            day_first = standardize_stage.infer_date_orders(records, rules)
            std_fresh, std_summary = standardize_stage.standardize(
                fresh, rules, workers=options.workers, day_first=day_first)
            std = incremental_stage.with_reused(std_fresh, reused)
            std, std_quarantine = standardize_stage.quarantine_unidentifiable(std, rules)
            ctx["std"] = std
            ctx["std_fresh"] = std[std.index.isin(std_fresh.index)]
            ctx["std_reused"] = int(len(reused))
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
            combined = ctx["combined"] = incremental_stage.combine_with_prior(ctx["std"], prior, rules)
            ctx["overrides"] = incremental_stage.merge_overrides(rules.overrides, prior.overrides)
            model = None if options.retrain else prior.model
            new_keys = None if model is None else combined.changed_keys
            linked = link_stage.link(combined.records, rules, model=model, new_keys=new_keys, workers=options.workers)
            ctx["linked"] = linked
            if new_keys is None:
                ctx["pairs"] = linked.pairs
            else:
                ctx["pairs"] = pd.concat([combined.kept_edges, linked.pairs], ignore_index=True)

    def cluster() -> None:
        with timer.stage("cluster"):
            combined = ctx["combined"]
            clusters = cluster_stage.cluster_records(combined.records, ctx["pairs"], rules, ctx["overrides"])
            golden, lineage = survivorship_stage.build_golden(combined.records, clusters, rules)
            assigned = ids_stage.assign_master_ids(clusters, ctx["prior"])
            tables = store_stage.build_tables(
                run_id=run_id,
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
            ctx["tables"] = tables
            ctx["counts"] = run_counts(ctx)

    def validate() -> None:
        with timer.stage("validate"):
            ctx["validations"].append(validate_stage.validate_result(ctx["tables"], ctx["std"], ctx["suites"]))
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
            store.publish(run_id, ctx["tables"])

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
    return {
        "rows_read": int(ctx["ingested"].rows_read),
        "quarantined": int(len(quarantine)),
        "records_accepted": int(len(ctx["std"])),
        "masters": int(len(tables["master_customer"])),
        "records_in_master": int(len(tables["customer_xref"])),
        "records_merged": int(len(tables["customer_xref"]) - len(tables["master_customer"])),
        "review_pairs": int(len(tables["review_queue"])),
        "records_standardized": int(len(ctx.get("std_fresh", ctx["std"]))),
        "records_reused": int(ctx.get("std_reused", 0)),
    }


def _write_report_safely(ctx: dict[str, Any], status: str, error: str | None, options: RunOptions) -> Path | None:
    """The report is written for failed runs too; a report bug never hides the run's outcome."""
    from . import report as report_stage

    try:
        return report_stage.write_report(ctx, status=status, error=error, show_pii=options.show_pii)
    except Exception as exc:  # pragma: no cover - logged, never masks the real error
        (Path(ctx["out_dir"]) / "report_error.txt").write_text(repr(exc), encoding="utf-8")
        return None
