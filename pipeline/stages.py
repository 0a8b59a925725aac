"""The typed values the run's stages pass to each other (pipeline/run.py calls the stages).

Each stage is a plain function that takes some of these values and returns one, so the data of
a run can be followed through `run.py` from top to bottom, and the Prefect flow shows each as a
task's inputs and output:

    RunOptions → RunEnv
    ingest_stage(env) → Ingested
    load_prior(env, store, Ingested) → Prior
    standardize_stage(env, Ingested, Prior) → Standardized
    link_stage(env, Standardized, Prior) → Linked
    cluster_stage(env, Standardized, Prior, Linked, store) → Clustered
    validate_stage(env, Ingested, Standardized, Clustered) → Validated
    plan_publish(env, Standardized, Linked, Clustered, Validated) → PublishPlan
    publish(env, PublishPlan, store) → Published
    ReportInput (from whatever finished) → report.html;  RunResult

Only this module's own small types are imported at run time: the others are annotations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .incremental import Combined, Scope, WholeMaster
    from .ingest import IngestResult
    from .link import LinkResult
    from .run import StageTimer
    from .settings import Rules
    from .spill import Spill
    from .store import PriorState, Scoped
    from .store.erasure import Tombstones
    from .store.statistics import SpellingWrite
    from .validate import ValidationReport

DEFAULT_DB_URL = "sqlite:///crmclean-out/master.db"
DEFAULT_OUT_DIR = "crmclean-out"


@dataclass
class RunOptions:
    """Everything a caller chooses about one run (the CLI's options, the flow's parameters)."""

    inputs: list[Path]
    db_url: str = DEFAULT_DB_URL
    out_dir: Path = Path(DEFAULT_OUT_DIR)
    rules_dir: Path | None = None
    expectations_dir: Path | None = None
    workers: int = 2  # processes on this machine; unused on Dask (the cluster's workers do that work)
    retrain: bool = False
    show_pii: bool = False
    run_id: str | None = None
    full_refresh: bool = False  # re-standardize every record (e.g. after changing rules/standardize.yaml)
    # cluster and publish the whole master, not only the affected region (same result, slower)
    recluster_all: bool = False
    # fan out over Dask (docs/scale.md): an existing scheduler's address, or a local cluster of N processes
    dask_address: str | None = None
    dask_workers: int = 0
    # the memory guard (crmclean.memory): '16G', 'off'; None: CRMCLEAN_MEMORY_LIMIT, else what is available
    memory_limit: str | None = None
    # (file, why) of files in an input folder that were skipped (not tables): shown in the report
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class RunEnv:
    """What every stage reads and nothing changes once the run started (the timer only records)."""

    options: RunOptions  # inputs already expanded to files
    rules: Rules
    run_id: str
    out_dir: Path  # this run's folder: <out_dir>/runs/<run_id>
    timer: StageTimer


@dataclass(frozen=True, eq=False)
class Ingested:
    result: IngestResult  # records, quarantine (stage ingest), mapping, rows_read
    suites: dict[str, Any]  # the expectation suites every later check uses
    validation: ValidationReport  # the sources as read


@dataclass(frozen=True, eq=False)
class Prior:
    state: PriorState  # slim (working columns only) unless the whole master is reclustered
    full_reason: str | None  # why the whole master is reclustered; None: only the affected region
    erased: Tombstones | None = None  # salted hashes of people erased by `crmclean forget`


@dataclass(frozen=True, eq=False)
class Standardized:
    std: pd.DataFrame  # this run's accepted records, standardized now or reused, input order
    fresh: pd.DataFrame  # the records standardized by this run
    fresh_keys: frozenset[str]
    reused_keys: frozenset[str]  # unchanged records whose prior standardized values were reused
    run_columns: tuple[str, ...]  # the columns this run's input owns (identity, raw, hashes)
    quarantine: pd.DataFrame  # ingest's and standardize's rejected rows
    summary: pd.DataFrame  # field, unchanged, changed, invalid, empty (standardized records only)
    validation: ValidationReport
    rows_read: int  # this run's input rows: each is accepted (in std) or quarantined
    spill: Spill | None = None  # std's columns only publish reads (raw), on disk until then


@dataclass(frozen=True, eq=False)
class Linked:
    combined: Combined  # the working set: prior records updated by this run's
    overrides: pd.DataFrame  # rules/overrides.yaml and review decisions
    result: LinkResult  # the pairs scored by this run, the model, the blocking summary
    pairs: pd.DataFrame  # every pair the clusters are built from (kept prior edges + scored)


@dataclass(frozen=True)
class RunCounts:
    """The run's headline numbers (run_log, the CLI summary, the report). `rows_read` counts
    this run's input rows; each ends in `records_accepted` or in `quarantined`."""

    rows_read: int
    quarantined: int
    records_accepted: int
    masters: int
    records_in_master: int
    records_merged: int
    review_pairs: int
    records_standardized: int
    records_reused: int
    records_reclustered: int | None = None  # an incremental run: how much it reclustered
    masters_rebuilt: int | None = None

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True, eq=False)
class Clustered:
    clusters: pd.DataFrame  # record_key, cluster, cluster_reason (the region's on an incremental run)
    tables: dict[str, pd.DataFrame | Scoped]  # what publish writes
    views: dict[str, pd.DataFrame]  # the tables as checked and reported (customer_xref whole)
    counts: RunCounts
    whole: WholeMaster | None = None  # an incremental run: the whole master's key sets and totals
    scope: Scope | None = None  # an incremental run: the affected region
    spelling: SpellingWrite | None = None  # survivorship's data-wide counts to store


@dataclass(frozen=True, eq=False)
class Validated:
    reports: tuple[ValidationReport, ...]  # sources, standardized, result
    data_docs: Path | None
    failures: tuple[str, ...]  # critical failures as sentences: nothing may be published

    def raise_if_failed(self) -> None:
        from .errors import ValidationFailed

        if self.failures:
            raise ValidationFailed(
                "critical expectations failed, nothing was published: " + "; ".join(self.failures[:5])
            )


@dataclass(frozen=True, eq=False)
class PublishPlan:
    """An audited set of tables and the master state to write in one transaction."""

    run_id: str
    tables: dict[str, pd.DataFrame | Scoped]
    state: dict[str, str]  # master_state: cluster_fingerprint, overrides
    incremental: bool  # only the affected region's rows: the report reads the rest back
    views: dict[str, pd.DataFrame]
    spill: Spill | None = None  # customer_record's spilled columns: put back by publish
    spelling: SpellingWrite | None = None  # survivorship's data-wide counts, stored by publish


@dataclass(frozen=True, eq=False)
class Published:
    views: dict[str, pd.DataFrame]  # what the report shows of the master after the publish


@dataclass(frozen=True, eq=False)
class ReportInput:
    """Everything the run report shows; a run that failed early leaves the rest empty."""

    run_id: str
    out_dir: Path
    counts: dict[str, int] = field(default_factory=dict)  # RunCounts.as_dict() (partial on failure)
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds, in the order they ran
    ingest: IngestResult | None = None
    quarantine: pd.DataFrame | None = None  # the most complete quarantine the run got to
    std_summary: pd.DataFrame | None = None
    pairs: pd.DataFrame | None = None  # every pair the clusters were built from
    blocking_summary: pd.DataFrame | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    validations: tuple[ValidationReport, ...] = ()
    data_docs: Path | None = None
    model: dict | None = None  # model_summary(): trained/reused and why, per-level m, u, weight; thresholds
    wall_seconds: float | None = None  # the run's wall time so far (the stages' sum leaves out overhead)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): input-folder files not read


@dataclass
class RunResult:
    run_id: str
    status: str
    counts: dict[str, int]
    out_dir: Path
    report_path: Path | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    model: dict | None = None  # model_summary() of the link stage's model (the CLI's model line)


@dataclass
class StageResults:
    """What the stages of a run returned so far: the report of a failed run shows it."""

    ingested: Ingested | None = None
    prior: Prior | None = None
    standardized: Standardized | None = None
    linked: Linked | None = None
    clustered: Clustered | None = None
    validated: Validated | None = None
    published: Published | None = None

    def report_input(self, env: RunEnv) -> ReportInput:
        ingested, std, linked, clustered = self.ingested, self.standardized, self.linked, self.clustered
        views = self.published.views if self.published else clustered.views if clustered else {}
        reports = (
            self.validated.reports if self.validated else tuple(r.validation for r in (ingested, std) if r is not None)
        )
        quarantine = std.quarantine if std else ingested.result.quarantine if ingested else None
        return ReportInput(
            run_id=env.run_id,
            out_dir=env.out_dir,
            counts=clustered.counts.as_dict() if clustered else {},
            timings=dict(env.timer.timings),
            ingest=ingested.result if ingested else None,
            quarantine=quarantine,
            std_summary=std.summary if std else None,
            pairs=linked.pairs if linked else None,
            blocking_summary=linked.result.blocking_summary if linked else None,
            tables=views,
            validations=reports,
            data_docs=self.validated.data_docs if self.validated else None,
            model=link_summary(linked.result, len(linked.combined.records)) if linked else None,
            wall_seconds=env.timer.wall(),
            skipped=[(str(path), str(why)) for path, why in env.options.skipped],
        )


def link_summary(result: LinkResult, working_records: int | None = None) -> dict | None:
    """What the model learnt and how it came to be (model_summary), plus its thresholds and the
    records of the working set it linked (a reused model: how far the data grew since training)."""
    from .link import model_summary

    if not result.model:
        return None
    return {
        **model_summary(result.model, result.usage),
        "usage": dict(result.usage or {}),
        "thresholds": dict(result.model.get("thresholds") or {}),
        "working_records": working_records,
    }
