"""Great Expectations checks after ingest, after standardization and on the result.

Suites live as GE's own suite JSON in `expectations/` (`source_ingest.json`, `standardized.json`,
`result.json`) so a user edits checks without touching code and can use the GE docs. Each
expectation's `meta.severity` is `critical` (a failure stops the publish) or `warning` (reported);
missing means `warning`. `meta.message` (optional) is the failure sentence, `{n}` = failing
values. `meta.table` picks the frame an expectation runs on in the result suite
(default `master_customer`).

Cross-table rules (every xref points to a master …) are computed here into helper columns
(`xref_master_exists`, `has_xref`, `in_xref`, `name_column_mapped`) that GE then checks, so the
pass/fail decision, the counts and the Data Docs all come from GE.

GE takes ~3 CPU s to import, so it is imported lazily (once, by `_gx`, which also takes what the
import leaves out of the garbage collector's walks) and ONE ephemeral context is kept per process.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import RulesError
from .memory import collector_paused
from .spill import SpilledTable

SEVERITIES = ("critical", "warning")
DEFAULT_SEVERITY = "warning"
DEFAULT_RESULT_TABLE = "master_customer"
DATASOURCE_NAME = "crmclean"
DOCS_SITE_NAME = "crmclean_site"
SUITE_FILES = ("source_ingest", "standardized", "result")
# Helper frame name for "every accepted record is in the xref".
ACCEPTED_RECORDS = "accepted_records"
_EXAMPLES = 5

_context: Any = None
# GE's context and stores are not thread-safe; Prefect may run tasks in threads.
_lock = threading.RLock()
_batch_definitions: dict[str, Any] = {}
_gx_frozen = False  # _gx froze what the import of GE left


# --------------------------------------------------------------------------- data classes


@dataclass
class LoadedSuite:
    """One suite file: GE expectations plus what crmclean needs (severity, target table)."""

    name: str
    path: Path | None
    expectations: list[Any]  # GE Expectation domain objects
    severities: list[str]
    tables: list[str | None]
    date_columns: set[str] = field(default_factory=set)  # compared with dates → coerced to date

    def for_table(self, table: str | None) -> "LoadedSuite":
        """The subset of expectations aimed at one table (None = every expectation)."""
        keep = [i for i, t in enumerate(self.tables) if table is None or (t or DEFAULT_RESULT_TABLE) == table]
        return LoadedSuite(
            self.name,
            self.path,
            [self.expectations[i] for i in keep],
            [self.severities[i] for i in keep],
            [self.tables[i] for i in keep],
            self.date_columns,
        )


@dataclass
class ValidationReport:
    """Outcome of one stage's checks.

    `results`: one dict per expectation and batch: suite, batch, expectation, column, severity,
    success, observed (short text), details (short text), examples (unexpected values; may hold
    PII — the report masks them). `raw`: GE's result JSON per batch.
    """

    stage: str
    results: list[dict[str, Any]] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)
    docs_pages: dict[str, str] = field(default_factory=dict)  # batch -> path relative to the docs index
    _gx_results: list[tuple[str, str, str, Any]] = field(default_factory=list, repr=False, compare=False)
    _gx_suites: dict[str, list[Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def success(self) -> bool:
        return all(r["success"] for r in self.results)

    def failures(self, severity: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"] and (severity is None or r["severity"] == severity)]


# --------------------------------------------------------------------------- GE context


def _gx():
    """Great Expectations, imported on first use (see load_great_expectations)."""
    return load_great_expectations()


def load_great_expectations():
    """Great Expectations, imported once per process. With the modules a run imported before,
    that is ~0.6M objects (classes, pydantic models, registries) living as long as the process,
    and every full collection walked them again (~0.25 s each, several in a run and once more at
    exit). They are frozen out of the collector instead (gc.freeze: never walked, never freed),
    and no collection runs during the import itself (issue 14: a run's fixed cost)."""
    global _gx_frozen
    with _lock:
        if not _gx_frozen:
            _import_frozen()
            _gx_frozen = True
    import great_expectations as gx

    return gx


def _import_frozen() -> None:
    gc.collect()  # the garbage of before is freed, not frozen (a long-lived process: tests, a flow)
    with collector_paused():  # a caller that had the collector off keeps it off
        import great_expectations  # noqa: F401
    gc.freeze()


def _get_context():
    """One ephemeral context per process (creating one costs time and leaks temp dirs)."""
    with _lock:
        return _context or _create_context()


def _create_context():
    global _context
    if _context is None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _context = gx.get_context(mode="ephemeral")
        try:
            _context.variables.progress_bars = ProgressBarsConfig(globally=False)
        except Exception:  # pragma: no cover - cosmetic only
            pass
        _context.data_sources.add_pandas(DATASOURCE_NAME)
        _no_batch_fingerprint()
    return _context


def _no_batch_fingerprint() -> None:
    """GE's pandas engine md5s every value of a batch it reads (hash_pandas_object) for a
    `pandas_data_fingerprint` marker on the result, whenever the frame's pointer arrays are under
    HASH_THRESHOLD (1 GB: every batch of a run to millions of records). No check reads that
    marker; a batch is named by its run, stage and batch instead. Measured: ≈ 18 % of the
    validate stage at 200k (bench/README.md, tenth session)."""
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0


def _batch_definition(asset_name: str):
    bd = _batch_definitions.get(asset_name)
    if bd is None:
        ds = _get_context().data_sources.get(DATASOURCE_NAME)
        try:
            asset = ds.get_asset(asset_name)
        except LookupError:
            asset = ds.add_dataframe_asset(asset_name)
        try:
            bd = asset.get_batch_definition("whole")
        except (KeyError, LookupError, ValueError):
            bd = asset.add_batch_definition_whole_dataframe("whole")
        _batch_definitions[asset_name] = bd
    return bd


def _asset_name(stage: str, batch: str) -> str:
    """Asset names end up in Data Docs file paths: keep them filesystem-safe."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", f"{stage}__{batch}")


# --------------------------------------------------------------------------- loading suites


def _parse_expectation(path: Path, index: int, item: Any):
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    where = f"expectation #{index + 1}"
    if not isinstance(item, dict):
        raise RulesError(path, f"{where} must be an object with 'type' and 'kwargs'")
    etype = item.get("type") or item.get("expectation_type")
    if not isinstance(etype, str) or not etype:
        raise RulesError(path, f"{where} has no 'type'")
    kwargs = item.get("kwargs", {})
    meta = item.get("meta") or {}
    if not isinstance(kwargs, dict) or not isinstance(meta, dict):
        raise RulesError(path, f"{where} ({etype}): 'kwargs' and 'meta' must be objects")
    severity = str(meta.get("severity", DEFAULT_SEVERITY)).lower()
    if severity not in SEVERITIES:
        raise RulesError(path, f"{where} ({etype}): meta.severity must be 'critical' or 'warning', not {severity!r}")
    table = meta.get("table")
    try:
        spec: dict[str, Any] = {"type": etype, "kwargs": dict(kwargs), "meta": {**meta, "severity": severity}}
        try:  # GE's own severity field, for Data Docs
            from great_expectations.expectations.metadata_types import FailureSeverity

            config = ExpectationConfiguration(**spec, severity=FailureSeverity(severity))
        except (ImportError, TypeError):  # older GE 1.x has no severity field; meta.severity is what crmclean reads
            config = ExpectationConfiguration(**spec)
        expectation = config.to_domain_obj()
    except ExpectationNotFoundError:
        raise RulesError(path, f"{where}: unknown expectation type {etype!r}") from None
    except Exception as exc:  # pydantic: missing/unknown kwargs
        msg = " ".join(str(exc).split())
        raise RulesError(path, f"{where} ({etype}): invalid kwargs: {msg[:300]}") from None
    return expectation, severity, table


def _date_column(expectation) -> str | None:
    """Columns compared with dates must hold dates, not ISO text, for GE's `between`."""
    lo, hi = getattr(expectation, "min_value", None), getattr(expectation, "max_value", None)
    is_date = [isinstance(v, date) or (isinstance(v, dict) and v.get("$PARAMETER") == "today") for v in (lo, hi)]
    if any(is_date):
        return getattr(expectation, "column", None)
    return None


def load_suite_file(path: Path) -> LoadedSuite:
    """Read one GE suite JSON; RulesError names the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RulesError(path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except UnicodeDecodeError:
        raise RulesError(path, "is not UTF-8 text") from None
    except OSError as exc:
        raise RulesError(path, f"cannot be read: {exc.strerror}") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations", []), list):
        raise RulesError(path, "must be a GE suite object with an 'expectations' list")
    parsed = [_parse_expectation(path, i, item) for i, item in enumerate(data.get("expectations", []))]
    suite = LoadedSuite(
        name=str(data.get("name") or path.stem),
        path=path,
        expectations=[p[0] for p in parsed],
        severities=[p[1] for p in parsed],
        tables=[p[2] for p in parsed],
    )
    suite.date_columns = {c for c in (_date_column(e) for e in suite.expectations) if c}
    return suite


def load_suites(directory: Path) -> dict[str, LoadedSuite]:
    """Every `*.json` in the expectations folder, keyed by file stem; absent stage files = no checks."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RulesError(directory, "expectations directory not found")
    _gx()  # at the start of a run: the objects of the import frozen before the run makes any
    suites = {p.stem: load_suite_file(p) for p in sorted(directory.glob("*.json"))}
    for stem in SUITE_FILES:
        suites.setdefault(stem, LoadedSuite(stem, None, [], [], []))
    return suites


# --------------------------------------------------------------------------- running


def _coerce_dates(frame: pd.DataFrame, columns: set[str]) -> pd.DataFrame:
    """ISO text or datetime64 → `date` so GE can compare with the suite's dates; text that is not
    a date becomes 0001-01-01 so it fails the range check instead of being skipped as empty."""
    todo = [c for c in columns if c in frame.columns]
    if not todo:
        return frame
    out = frame.copy(deep=False)
    for c in todo:
        col = out[c]
        if pd.api.types.is_datetime64_any_dtype(col):
            out[c] = pd.Series(col.dt.date, index=col.index, dtype=object).where(col.notna(), None)
            continue
        uniq = pd.Series(col.dropna().unique())  # each distinct value parsed once
        if uniq.empty or all(isinstance(v, date) for v in uniq):
            continue
        parsed = pd.to_datetime(uniq.astype(str), errors="coerce", format="ISO8601")
        lookup = dict(zip(uniq, [d.date() if not pd.isna(d) else date.min for d in parsed]))
        out[c] = col.map(lookup).astype(object).where(col.notna(), None)
    return out


def _narrow(frame: pd.DataFrame, suite: LoadedSuite) -> pd.DataFrame:
    """Only the columns the suite reads: GE filters the rows of the whole batch for every metric
    of every expectation, which costs more than the checks on a wide standardized frame."""
    needed = columns_read(suite)
    if needed is None:
        return frame
    keep = [c for c in needed if c in frame.columns]
    if keep:
        return frame[keep]
    return frame.iloc[:, :1] if frame.shape[1] else frame


def columns_read(suite: LoadedSuite) -> list[str] | None:
    """The columns the suite's expectations name; None when one checks the column list itself."""
    needed: list[str] = []
    for exp in suite.expectations:
        if "table_column" in exp.expectation_type:
            return None
        for attr in ("column", "column_A", "column_B", "column_list"):
            value = getattr(exp, attr, None)
            needed.extend(value if isinstance(value, (list, tuple)) else [value] if value else [])
    return list(dict.fromkeys(needed))


def _one_block(frame: pd.DataFrame) -> pd.DataFrame:
    """The batch with its columns in as few blocks as their dtypes allow: GE filters the rows of
    the whole batch for every metric of every expectation, and pandas merges a frame's blocks
    again on each of those copies (a column taken from a wide frame is a block of its own)."""
    return frame if frame._mgr.is_consolidated() else frame.copy()


def _validate_frame(asset_name: str, frame: pd.DataFrame, gsuite):
    """What `Batch.validate` does (a validator on a one-off batch definition of the asset),
    without reading the batch first: the validator reads it anyway."""
    import uuid

    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.validator.v1_validator import Validator

    asset = _batch_definition(asset_name).data_asset
    one_off = BatchDefinition(name="-".join([DATASOURCE_NAME, asset.name, str(uuid.uuid4())]))
    one_off.set_data_asset(asset)
    validator = Validator(batch_definition=one_off, batch_parameters={"dataframe": frame})
    try:
        return validator.validate_expectation_suite(gsuite, expectation_parameters={"today": date.today()})
    finally:
        _forget_batches(asset.datasource)


def _forget_batches(datasource) -> None:
    """Drop what GE's execution engine kept of the batches it validated. The datasource keeps one
    engine, and the engine every batch frame and every computed metric (row masks over the whole
    batch) until the process ends, though a batch is never read again here (each is a one-off).
    At 200k customers that held ≈ 65 MB through link, cluster and publish (issue 14). The next
    validation gets a new engine from the datasource."""
    engine = getattr(datasource, "_execution_engine", None)
    if engine is None:
        return
    engine.batch_manager.batch_data_cache.clear()
    engine.batch_manager.reset_batch_cache()
    cache = getattr(engine, "_metric_cache", None)
    if isinstance(cache, dict):
        cache.clear()
    datasource._execution_engine = None


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summarise(stage: str, suite: str, batch: str, severity: str, res) -> dict[str, Any]:
    """One GE expectation result → one flat row for the report and the failure sentences."""
    cfg = res.expectation_config
    kwargs = dict(cfg.kwargs)
    result = res.result or {}
    exc = res.exception_info or {}
    exc_message = None
    if exc.get("raised_exception"):
        exc_message = exc.get("exception_message")
    else:  # per-metric exception map
        for v in exc.values() if isinstance(exc, dict) else []:
            if isinstance(v, dict) and v.get("raised_exception"):
                exc_message = v.get("exception_message")
                break
    missing = re.search(r'The column "(.+?)" in BatchData does not exist', exc_message or "")
    if missing:
        exc_message = f"column {missing.group(1)} is missing"
    examples: list[Any] = []
    if exc_message:
        observed = f"error: {_short(exc_message, 160)}"
    elif "observed_value" in result:
        observed = _short(result["observed_value"])
    elif "unexpected_count" in result:
        n, total = result.get("unexpected_count") or 0, result.get("element_count") or 0
        pct = result.get("unexpected_percent") or 0.0
        observed = f"{n} of {total} unexpected ({pct:.1f}%)"
        examples = [v for v in (result.get("partial_unexpected_list") or [])[:_EXAMPLES]]
    else:
        observed = ""
    details = ", ".join(f"{k}={_short(v, 60)}" for k, v in kwargs.items() if k not in ("batch_id", "column"))
    return {
        "stage": stage,
        "suite": suite,
        "batch": batch,
        "expectation": cfg.type,
        "column": kwargs.get("column") or kwargs.get("column_list") or "",
        "severity": severity,
        "success": bool(res.success),
        "observed": observed,
        "unexpected_count": int(result.get("unexpected_count") or 0),
        "details": details,
        "examples": examples,
        "error": exc_message,
        "message": (cfg.meta or {}).get("message"),
    }


def _run_suite(report: ValidationReport, suite: LoadedSuite, batch: str, frame: pd.DataFrame | None) -> None:
    """Validate one frame with one (sub)suite and append its rows to the report."""
    if not suite.expectations:
        return
    gx = _gx()
    if frame is None:  # a table the suite targets was not produced
        for exp, sev in zip(suite.expectations, suite.severities):
            report.results.append(
                {
                    "stage": report.stage,
                    "suite": suite.name,
                    "batch": batch,
                    "expectation": exp.expectation_type,
                    "column": getattr(exp, "column", "") or "",
                    "severity": sev,
                    "success": False,
                    "observed": f"table {batch} was not produced",
                    "unexpected_count": 0,
                    "details": "",
                    "examples": [],
                    "error": f"table {batch} was not produced",
                    "message": None,
                }
            )
        return
    frame = _one_block(_coerce_dates(_narrow(frame, suite), suite.date_columns))
    gsuite = gx.ExpectationSuite(name=suite.name, expectations=[e.copy(deep=True) for e in suite.expectations])
    with _lock:
        result = _validate_frame(_asset_name(report.stage, batch), frame, gsuite)
    for res in result.results:
        sev = (res.expectation_config.meta or {}).get("severity") or DEFAULT_SEVERITY
        report.results.append(_summarise(report.stage, suite.name, batch, str(sev), res))
    report.raw.append({"batch": batch, "suite": suite.name, "result": result.to_json_dict()})
    report._gx_results.append((suite.name, batch, _asset_name(report.stage, batch), result))
    known = report._gx_suites.setdefault(suite.name, [])
    known.extend(e for e in suite.expectations if not any(e is k for k in known))


def _mapped_fields(source_mapping: dict) -> set[str]:
    files = (source_mapping or {}).get("files", {}) or {}
    return {
        c for sheets in files.values() for headers in (sheets or {}).values() for c in (headers or {}).values() if c
    }


def validate_sources(records: pd.DataFrame, mapping: dict, suites: dict[str, LoadedSuite]) -> ValidationReport:
    """`source_ingest` suite once per source, on that source's rows and mapped columns only.

    Unmapped canonical columns are dropped from the batch so `expect_table_columns_to_contain_set`
    means "this column was mapped"; `name_column_mapped` is true when full_name or last_name is.
    """
    from .schema import CANONICAL_FIELDS, IDENTITY_COLUMNS

    report = ValidationReport(stage="source_ingest")
    suite = suites.get("source_ingest")
    if suite is None or not suite.expectations:
        return report
    rows = _rows_by_source(records)
    sources = list(dict.fromkeys([*(mapping or {}).keys(), *rows.keys()]))
    for source in sources:
        mapped = _mapped_fields((mapping or {}).get(source, {}))
        if not mapped and source in rows:  # no mapping given: every non-empty canonical column counts
            mapped = {c for c in CANONICAL_FIELDS if c in records and records[c].iloc[rows[source]].notna().any()}
        keep = [
            c
            for c in (*IDENTITY_COLUMNS, *CANONICAL_FIELDS)
            if c in records.columns and (c in IDENTITY_COLUMNS or c in mapped)
        ]
        if source in rows:  # the source's rows of these columns only: one copy of just them
            frame = records.iloc[rows[source], records.columns.get_indexer(keep)]
        else:  # every row of the source was quarantined (or the file was empty)
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in keep or IDENTITY_COLUMNS})
        frame.insert(len(frame.columns), "name_column_mapped", bool({"full_name", "last_name"} & mapped))
        _run_suite(report, suite, str(source), frame)
    return report


def _rows_by_source(records: pd.DataFrame) -> dict[Any, np.ndarray]:
    """Row positions of each source, in order of first appearance (a group-by would split every
    column of the wide records frame; the checks read a few)."""
    if not len(records) or "source" not in records:
        return {}
    codes, sources = pd.factorize(records["source"])
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(sources) + 1))
    return {source: order[bounds[k] : bounds[k + 1]] for k, source in enumerate(sources)}


def validate_standardized(std: pd.DataFrame, suites: dict[str, LoadedSuite]) -> ValidationReport:
    """`standardized` suite on the whole standardized frame."""
    report = ValidationReport(stage="standardized")
    suite = suites.get("standardized")
    if suite is not None:
        _run_suite(report, suite, "standardized", std)
    return report


def _result_frames(
    tables: dict[str, pd.DataFrame], std: pd.DataFrame, whole: dict[str, Any] | None = None
) -> dict[str, pd.DataFrame]:
    """Tables plus the helper columns that turn cross-table rules into column checks.

    `whole` (an incremental run, whose tables hold only the rows it changed) gives the key sets
    of the whole master after the run: `master_ids`, `xref_master_ids`, `xref_keys`; the
    cross-table checks of the changed rows are made against them. With `changed_keys` the
    accepted-records batch holds only those records and the failing ones.
    """
    frames = {name: getattr(t, "rows", t) for name, t in tables.items()}  # a store.Scoped → its rows
    master = frames.get("master_customer")
    xref = frames.get("customer_xref")

    def distinct(frame: pd.DataFrame | None, column: str) -> pd.Index:
        return pd.Index(frame[column].dropna().unique()) if frame is not None and column in frame else pd.Index([])

    if whole is not None:
        master_ids = pd.Index(list(whole["master_ids"]))
        xref_masters, xref_keys = pd.Index(list(whole["xref_master_ids"])), pd.Index(list(whole["xref_keys"]))
    else:
        master_ids = distinct(master, "master_id")
        xref_masters, xref_keys = distinct(xref, "master_id"), distinct(xref, "record_key")
    if master is not None and "master_id" in master:
        frames["master_customer"] = master.assign(has_xref=master["master_id"].isin(xref_masters))
    if xref is not None and "master_id" in xref:
        frames["customer_xref"] = xref.assign(xref_master_exists=xref["master_id"].isin(master_ids))
    keys = std["record_key"] if std is not None and "record_key" in std else pd.Series(dtype=object)
    accepted = pd.DataFrame({"record_key": keys.to_numpy(), "in_xref": keys.isin(xref_keys).to_numpy()})
    if whole is not None and whole.get("changed_keys") is not None:
        # checked over every accepted record; the expectation itself sees the records this run
        # changed plus any record that fails, so a failure anywhere is still reported
        accepted = accepted[accepted["record_key"].isin(whole["changed_keys"]).to_numpy() | ~accepted["in_xref"]]
    frames[ACCEPTED_RECORDS] = accepted.reset_index(drop=True)
    return frames


def validate_result(
    tables: dict[str, pd.DataFrame],
    std: pd.DataFrame,
    suites: dict[str, LoadedSuite],
    whole: dict[str, Any] | None = None,
) -> ValidationReport:
    """`result` suite: each expectation runs on the table named in its `meta.table`.

    An incremental run passes only the rows it changed (and `whole`, see _result_frames): row
    expectations then check just those rows — the others were checked when they were written.
    """
    report = ValidationReport(stage="result")
    suite = suites.get("result")
    if suite is None or not suite.expectations:
        return report
    frames = _result_frames(tables, std, whole)
    for table in dict.fromkeys(t or DEFAULT_RESULT_TABLE for t in suite.tables):
        part = suite.for_table(table)
        rows = [i for i, e in enumerate(part.expectations) if not _counts_rows(e)]
        counted = _whole_rows(table, std, whole) if whole is not None and len(rows) < len(part.expectations) else None
        if counted is not None:  # row counts: on the whole table
            _run_suite(
                report, _subset(part, [i for i in range(len(part.expectations)) if i not in rows]), table, counted
            )
            part = _subset(part, rows)
            if not part.expectations:
                continue
        frame = frames.get(table)
        if isinstance(frame, SpilledTable):  # a table waiting on disk for publish, read when checked
            frame = frame.frame()
        _run_suite(report, part, table, frame)
    return report


def _counts_rows(expectation) -> bool:
    """A table-level expectation about the number of rows (needs the whole table)."""
    return str(getattr(expectation, "expectation_type", "")).startswith("expect_table_row_count")


def _subset(suite: LoadedSuite, keep: list[int]) -> LoadedSuite:
    return LoadedSuite(
        suite.name,
        suite.path,
        [suite.expectations[i] for i in keep],
        [suite.severities[i] for i in keep],
        [suite.tables[i] for i in keep],
        suite.date_columns,
    )


def _whole_rows(table: str, std: pd.DataFrame | None, whole: dict[str, Any]) -> pd.DataFrame | None:
    """One key column per row of the whole table after an incremental run: what row-count
    expectations are checked on (no other column is needed). None: the table is whole already."""
    if table == "master_customer":
        return pd.DataFrame({"master_id": pd.Series(sorted(whole["master_ids"]), dtype=object)})
    if table == "customer_xref":
        return pd.DataFrame({"record_key": pd.Series(sorted(whole["xref_keys"]), dtype=object)})
    if table == ACCEPTED_RECORDS:
        keys = std["record_key"] if std is not None and "record_key" in std else pd.Series(dtype=object)
        return pd.DataFrame({"record_key": keys.to_numpy()})
    return None


# --------------------------------------------------------------------------- outputs

_PHRASES = {
    "expect_column_values_to_be_unique": "must be unique — {n} duplicated values",
    "expect_compound_columns_to_be_unique": "must be unique together — {n} duplicated rows",
    "expect_column_values_to_not_be_null": "must not be empty — {n} empty",
    "expect_column_values_to_match_regex": "must match {regex} — {n} values do not",
    "expect_column_values_to_not_match_regex": "must not match {regex} — {n} values do",
    "expect_column_values_to_be_in_set": "must be one of the allowed values — {n} are not",
    "expect_column_values_to_be_between": "must be between {min_value} and {max_value} — {n} are not",
    "expect_table_row_count_to_be_between": (
        "row count must be between {min_value} and {max_value} — observed {observed}"
    ),
}


def describe_failure(row: dict[str, Any]) -> str:
    """A failed result row as one sentence a person understands."""
    where = f"{row['batch']}.{row['column']}" if row.get("column") else str(row["batch"])
    if row.get("error"):
        return f"{row['stage']}: {where} could not be checked ({row['expectation']}) — {row['error']}"
    if row.get("message"):  # meta.message in the suite JSON: the user's own sentence
        try:
            return f"{row['stage']}: " + str(row["message"]).format(
                n=row.get("unexpected_count", 0),
                observed=row.get("observed", ""),
                batch=row["batch"],
                column=row.get("column", ""),
            )
        except (KeyError, IndexError, ValueError):
            return f"{row['stage']}: {row['message']} — {row.get('observed', '')}"
    template = _PHRASES.get(row["expectation"])
    if template:
        params = {
            "n": row.get("unexpected_count", 0),
            "observed": row.get("observed", ""),
            "regex": "",
            "min_value": "-∞",
            "max_value": "∞",
        }
        for part in (row.get("details") or "").split(", "):
            if "=" in part:
                k, v = part.split("=", 1)
                if k in params or k in ("regex", "min_value", "max_value"):
                    params[k] = v if v != "None" else params.get(k, v)
        try:
            return f"{row['stage']}: {where} {template.format(**params)}"
        except (KeyError, IndexError):
            pass
    human = row["expectation"].removeprefix("expect_").replace("_", " ")
    return f"{row['stage']}: {where} expected {human} — {row.get('observed', '')}"


def critical_failures(reports: list[ValidationReport]) -> list[str]:
    """Sentences for every failed critical expectation (non-empty = do not publish)."""
    return [describe_failure(r) for rep in reports if rep for r in rep.failures("critical")]


def build_data_docs(
    reports: list[ValidationReport], directory: Path, *, show_pii: bool = False, run_name: str | None = None
) -> Path:
    """Real GE Data Docs (suites + this run's validation results) in `directory`; → index.html.

    `directory` may be relative (GE needs an absolute path: it is resolved here). The results are
    filed under `run_name`, by default the name of the folder holding `directory` (a run's
    `crmclean-out/runs/<run id>`). The pages are rewritten to need no network and the index lists
    the validations without JavaScript (crmclean.docs_site). The process-wide context's results
    store is emptied first so a run's docs show only its own results. Unexpected values of
    personal columns are masked like the report unless `show_pii`. A docs failure never fails
    the run: the index and `BUILD_FAILED.txt` say what went wrong (docs_site.build_error), and a
    warning is logged.
    """
    from . import docs_site

    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / docs_site.ERROR_FILE).unlink(missing_ok=True)
    name = run_name or directory.parent.name or "run"
    try:
        with _lock:
            pages, suites = _build_docs(reports, directory, show_pii, name)
        docs_site.make_offline(directory)
        return docs_site.write_index(directory, name, pages, suites)
    except Exception as exc:  # GE rendering bugs, a full disk: the run goes on, the failure is shown
        message = f"{exc.__class__.__name__}: {exc}"
        logging.getLogger(__name__).warning("Data Docs could not be built: %s", message)
        return docs_site.write_failure(directory, message)


def _mask_result(result):
    """A copy of a GE suite result with the unexpected values of personal columns masked."""
    import copy

    from .masking import masker_for

    result = copy.deepcopy(result)
    for res in result.results:
        fn = masker_for(str(res.expectation_config.kwargs.get("column") or ""))
        details = res.result or {}
        if fn is None or not details:
            continue
        for key in ("partial_unexpected_list", "unexpected_list"):
            if key in details:
                details[key] = [fn(v) if isinstance(v, str) else v for v in details[key]]
        for item in details.get("partial_unexpected_counts") or []:
            if isinstance(item.get("value"), str):
                item["value"] = fn(item["value"])
    return result


def _build_docs(reports: list[ValidationReport], directory: Path, show_pii: bool, run_name: str):
    """GE's site builder over this run's results; → (the validation pages, the suite names)."""
    ctx = _get_context()
    store = ctx.validation_results_store
    for key in list(store.list_keys()):
        store.remove_key(key)
    for name in [n for n in ctx.get_site_names() if n == DOCS_SITE_NAME]:
        ctx.delete_data_docs_site(name)
    pages = _store_results([r for r in reports if r is not None], store, show_pii, run_name)
    suites = _add_suites(ctx, [r for r in reports if r is not None])
    ctx.add_data_docs_site(
        DOCS_SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    try:
        ctx.build_data_docs(site_names=[DOCS_SITE_NAME])
    finally:
        ctx.delete_data_docs_site(DOCS_SITE_NAME)
    return pages, suites


def _store_results(reports: list[ValidationReport], store, show_pii: bool, run_name: str) -> list:
    """Each result filed under the run's name (GE shows `__none__` without it) and its batch
    as the asset name; `docs_pages` of each report point at the pages GE will write."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from .docs_site import ValidationPage

    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    pages = []
    for rep in reports:
        for suite_name, batch, asset, result in rep._gx_results:
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
                run_id=run_id,
                batch_identifier=f"{DATASOURCE_NAME}-{asset}",
            )
            result = result if show_pii else _mask_result(result)
            result.meta["run_id"] = run_id
            result.meta["batch_spec"] = {"data_asset_name": f"{rep.stage}: {batch}"}
            store.set(key, result)
            rep.docs_pages[batch] = "validations/" + "/".join(str(p) for p in key.to_tuple()) + ".html"
            stats = result.statistics or {}
            pages.append(
                ValidationPage(
                    stage=rep.stage,
                    suite=suite_name,
                    batch=batch,
                    page=rep.docs_pages[batch],
                    success=bool(result.success),
                    evaluated=int(stats.get("evaluated_expectations") or 0),
                    successful=int(stats.get("successful_expectations") or 0),
                )
            )
    return pages


def _add_suites(ctx, reports: list[ValidationReport]) -> list[str]:
    """The suites the run checked, as expectation-suite pages of the site; → their names."""
    gx = _gx()
    names = []
    for rep in reports:
        for suite_name, exps in rep._gx_suites.items():
            try:
                copies = [e.copy(deep=True) for e in exps]
                ctx.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=copies))
                names.append(suite_name)
            except Exception:  # noqa: BLE001 - a suite page is a nicety; the results pages matter
                pass
    return list(dict.fromkeys(names))
