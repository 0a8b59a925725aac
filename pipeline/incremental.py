"""Incremental runs: start from the previous working set and only re-link what changed.

A record is identified by `record_key`; it counts as changed when the hash of its raw canonical
fields differs from the stored one. Sources marked `full_snapshot: true` in rules/sources.yaml
retire the records they no longer contain (kept as retired, never deleted).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import RulesError
from .schema import CANONICAL_FIELDS, record_key

OVERRIDE_COLUMNS = ("record_key_l", "record_key_r", "kind", "origin")
EDGE_COLUMNS = ("record_key_l", "record_key_r", "match_weight", "match_probability", "decision")
_SEP = "\x1f"  # unit separator: cannot occur in a CSV cell that was read as text


@dataclass
class Combined:
    records: pd.DataFrame  # prior active records updated by this run's records, minus retired
    changed_keys: set[str]  # record_keys new or changed in this run
    retired: pd.DataFrame  # records retired by full-snapshot sources
    kept_edges: pd.DataFrame  # prior edges not touching changed/retired keys
    new_keys: set[str] = field(default_factory=set)  # the subset of changed_keys never seen before
    carried_keys: set[str] = field(default_factory=set)  # prior records of sources not in this run


def _sha1_rows(records: pd.DataFrame, columns) -> pd.Series:
    """sha1 (hex) of each row's `columns` as text joined by _SEP (missing → "")."""
    n = len(records)
    if not n:
        return pd.Series([], index=records.index, dtype=object)
    parts = []
    for c in columns:
        if c not in records.columns:
            parts.append(("",) * n)
            continue
        s = records[c]
        vals = s.to_numpy(dtype=object)
        missing = pd.isna(vals)
        if missing.any():
            vals = vals.copy()
            vals[missing] = ""
        if pd.api.types.infer_dtype(vals, skipna=False) != "string":
            vals = pd.Series(vals, dtype=object).astype(str).to_numpy(dtype=object)
        parts.append(vals)
    sha1 = hashlib.sha1
    return pd.Series([sha1(v.encode("utf-8")).hexdigest() for v in map(_SEP.join, zip(*parts))],
                     index=records.index, dtype=object)


def content_hash(records: pd.DataFrame) -> pd.Series:
    """sha1 over the raw canonical fields (None and "" hash alike; column order fixed)."""
    return _sha1_rows(records, CANONICAL_FIELDS)


#: the identity/raw columns content_hash leaves out: a record whose row moved in its file (or
#: whose unmapped columns changed) is not re-standardized, but its stored row is rewritten
ROW_HASH_COLUMNS = ("locator", "file", "extra", "raw")


def row_hash(records: pd.DataFrame) -> pd.Series:
    """sha1 over ROW_HASH_COLUMNS (stored as customer_record.row_hash)."""
    return _sha1_rows(records, ROW_HASH_COLUMNS)


#: customer_record bookkeeping: never copied onto a reused record (build_tables recomputes it)
_BOOKKEEPING = ("first_seen_run", "last_seen_run", "status", "other_columns", "row_hash")


def standardize_fingerprint(rules) -> str:
    """What a stored standardized value depends on besides the raw value: the standardizer's
    version and the rules it reads. A record standardized under another fingerprint is
    standardized again, so editing rules/standardize.yaml needs no manual --full-refresh."""
    from .standardize import STANDARDIZE_VERSION

    read_by_standardize = ("default_region", "day_first")  # the source settings standardize reads
    sources = {
        name: {k: v for k, v in (entry or {}).items() if k in read_by_standardize}
        for name, entry in {"defaults": rules.sources.get("defaults"), **(rules.sources.get("sources") or {})}.items()
        if isinstance(entry, dict) or entry is None
    }
    basis = json.dumps([STANDARDIZE_VERSION, rules.standardize, sources], sort_keys=True, default=str)
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()[:16]


def split_reusable(records: pd.DataFrame, prior_records: pd.DataFrame,
                   refresh: bool = False, fingerprint: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records to standardize, unchanged records with their prior standardized columns).

    Standardize is the dearest stage, so a record whose record_key and content_hash match the
    previous run's is not standardized again: its `_std`/`_flag`/key columns are copied from
    the prior working set, while its identity and raw columns (locator, file, extra, raw) come
    from this run's input. Both parts carry `content_hash` and keep `records`' index.
    """
    from .standardize import OUTPUT_COLUMNS

    records = records.copy(deep=False)  # new columns only: the data is not copied
    records["content_hash"] = content_hash(records)
    records["row_hash"] = row_hash(records)
    records["std_fingerprint"] = fingerprint
    prev = prior_records
    # a slim prior (only the columns link and the guards read) is complete enough when its
    # records carry the standardizer fingerprint: whatever else they hold is read when needed
    slim_ok = fingerprint is not None and "std_fingerprint" in getattr(prev, "columns", ())
    if refresh or prev is None or not len(prev) or not (slim_ok or set(OUTPUT_COLUMNS) <= set(prev.columns)):
        return records, records.iloc[:0]
    if "content_hash" not in prev.columns:
        prev = prev.assign(content_hash=content_hash(prev))
    if fingerprint is not None and "std_fingerprint" not in prev.columns:
        return records, records.iloc[:0]
    # one hash lookup per record; then plain array takes (a 400k working set)
    index = pd.Index(prev["record_key"])
    if not index.is_unique:
        prev = prev.drop_duplicates("record_key", keep="first")
        index = pd.Index(prev["record_key"])
    at = index.get_indexer(records["record_key"])
    known = at >= 0
    same = known.copy()
    same[known] = prev["content_hash"].to_numpy(dtype=object)[at[known]] == records["content_hash"].to_numpy(
        dtype=object)[known]
    if fingerprint is not None:
        same[same] = prev["std_fingerprint"].to_numpy(dtype=object)[at[same]] == fingerprint
    derived = [c for c in prev.columns if c not in records.columns and c not in _BOOKKEEPING]
    if not same.any():
        return records, records.iloc[:0]
    take = at[same]
    # one frame built from column arrays: this run's columns, then the prior's derived ones
    reused = pd.DataFrame({**{c: records[c].to_numpy()[same] for c in records.columns},
                           **{c: prev[c].to_numpy()[take] for c in derived}}, index=records.index[same])
    return records[~same], reused


def with_reused(std_fresh: pd.DataFrame, reused: pd.DataFrame) -> pd.DataFrame:
    """This run's standardized frame: freshly standardized plus reused rows, in input order."""
    if not len(reused):
        return std_fresh
    if not len(std_fresh):
        return reused.reindex(columns=list(dict.fromkeys([*std_fresh.columns, *reused.columns])))
    index = std_fresh.index.append(reused.index)
    order = np.argsort(index.to_numpy(), kind="stable")
    columns: dict[str, Any] = {}
    for c in dict.fromkeys([*std_fresh.columns, *reused.columns]):
        if c in std_fresh.columns and c in reused.columns:
            a, b = std_fresh[c], reused[c]
            if a.dtype == b.dtype:
                columns[c] = np.concatenate([a.to_numpy(), b.to_numpy()])[order]
            else:  # as concat would: a common (object) dtype
                columns[c] = pd.concat([a, b], ignore_index=True).to_numpy()[order]
        else:  # a column only one side has: None on the other side
            a = std_fresh[c].to_numpy(dtype=object) if c in std_fresh.columns else np.full(len(std_fresh), None, object)
            b = reused[c].to_numpy(dtype=object) if c in reused.columns else np.full(len(reused), None, object)
            col = np.concatenate([a, b])
            col[pd.isna(col)] = None
            columns[c] = col[order]
    return pd.DataFrame(columns, index=index[order])


def full_snapshot_sources(rules) -> tuple[set[str], bool]:
    """(named sources whose export is complete, the default for unnamed sources): what is
    missing from a complete export was deleted upstream."""
    section = getattr(rules, "sources", None) or {}
    default = bool((section.get("defaults") or {}).get("full_snapshot", False))
    out = set()
    for name, conf in (section.get("sources") or {}).items():
        conf = conf or {}
        if bool(conf.get("full_snapshot", default)):
            out.add(str(name))
    return out, default


def combine_with_prior(std: pd.DataFrame, prior, rules, fresh_keys: set[str] | None = None,
                       columns: list[str] | None = None) -> Combined:
    """The working set for this run: prior active records, replaced (by record_key) by this
    run's rows, plus new ones; full-snapshot sources retire what they no longer contain.

    `fresh_keys` (records standardized this run) count as changed even when their raw content
    is not: a new standardizer version or rules may give them other values to match on.
    `columns` narrows the working set to those columns (an incremental run's slim prior).
    """
    std = std[[c for c in std.columns if c in set(columns)]] if columns is not None else std.copy()
    if "content_hash" not in std.columns or std["content_hash"].isna().any():
        std["content_hash"] = content_hash(std)
    prev = prior.records
    if len(prev) and "content_hash" not in prev.columns:
        prev = prev.assign(content_hash=content_hash(prev))
    # one hash lookup of this run's keys among the prior ones (prior keys are unique)
    index = pd.Index(prev["record_key"]) if len(prev) else pd.Index([], dtype=object)
    if not index.is_unique:
        prev = prev.drop_duplicates("record_key", keep="first")
        index = pd.Index(prev["record_key"])
    at = index.get_indexer(std["record_key"])
    new_mask = at < 0
    run_hash = std["content_hash"].to_numpy(dtype=object)
    changed_mask = ~new_mask
    if len(prev):
        changed_mask[~new_mask] = prev["content_hash"].to_numpy(dtype=object)[at[~new_mask]] != run_hash[~new_mask]
    run_keys = std["record_key"].to_numpy(dtype=object)
    new_keys = set(run_keys[new_mask])
    changed_keys = new_keys | set(run_keys[changed_mask])
    if fresh_keys:
        changed_keys |= set(fresh_keys) & set(run_keys)

    snapshot, default = full_snapshot_sources(rules)
    ingested = set(std["source"].dropna().astype(str))
    named = set(((getattr(rules, "sources", None) or {}).get("sources") or {}).keys())
    retiring = {s for s in ingested if s in snapshot or (default and s not in named)}
    in_run_np = np.zeros(len(prev), bool)
    in_run_np[at[~new_mask]] = True
    in_run = pd.Series(in_run_np, index=prev.index)
    retire_mask = ~in_run & prev["source"].isin(retiring) if len(prev) else in_run
    retired = prev[retire_mask].reset_index(drop=True)
    carried = prev[~in_run & ~retire_mask]

    records = pd.concat([carried, std], ignore_index=True) if len(carried) else std.reset_index(drop=True)
    if len(carried):  # NaN only where one side lacks a column or a column is not text: fix just those
        for c in records.columns:
            if c not in carried.columns or c not in std.columns or records[c].dtype != object:
                records[c] = records[c].astype(object).where(records[c].notna(), None)

    gone = changed_keys | set(retired["record_key"])
    edges = prior.edges
    if len(edges):
        keep = ~edges["record_key_l"].isin(gone) & ~edges["record_key_r"].isin(gone)
        kept_edges = edges[keep].reset_index(drop=True)
    else:
        kept_edges = edges.copy() if edges is not None else pd.DataFrame(columns=list(EDGE_COLUMNS))
    return Combined(records=records, changed_keys=changed_keys, retired=retired, kept_edges=kept_edges,
                    new_keys=new_keys, carried_keys=set(carried["record_key"]) if len(carried) else set())


def parse_ref(ref: Any, where: str) -> str:
    """`source:source_record_id` (or an explicit record_key `source|id`) → record_key."""
    if not isinstance(ref, (str, int)) or isinstance(ref, bool):
        raise RulesError(where, f"{ref!r} is not a record reference; write it as \"source:source_record_id\"")
    ref = str(ref).strip()
    if "|" in ref:
        return ref
    source, sep, rid = ref.partition(":")
    if not sep or not source or not rid:
        raise RulesError(where, f"{ref!r} is not a record reference; write it as \"source:source_record_id\"")
    return record_key(source.strip(), rid.strip())


def _ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def merge_overrides(rules_overrides: dict, review_overrides: pd.DataFrame) -> pd.DataFrame:
    """rules/overrides.yaml plus recorded review decisions as one frame of
    `record_key_l, record_key_r, kind (must_link|cannot_link|unmerge), origin`.

    A must_link group [a, b, c] becomes the pairs (a,b), (a,c). The latest review decision of a
    pair wins; pairs are stored with record_key_l < record_key_r.
    """
    rules_overrides = rules_overrides or {}
    where = "rules/overrides.yaml"
    rows: list[tuple] = []
    for kind in ("must_link", "cannot_link"):
        for i, group in enumerate(rules_overrides.get(kind) or []):
            if not isinstance(group, (list, tuple)) or len(group) < 2:
                raise RulesError(where, f"{kind} entry {i + 1} must be a list of at least two references, got {group!r}")
            keys = [parse_ref(r, where) for r in group]
            if kind == "must_link":
                pairs = [(keys[0], k) for k in keys[1:]]
            else:
                pairs = [(a, b) for j, a in enumerate(keys) for b in keys[j + 1:]]
            rows += [(*_ordered(a, b), kind, where) for a, b in pairs if a != b]
    for ref in rules_overrides.get("unmerge") or []:
        rows.append((parse_ref(ref, where), None, "unmerge", where))

    if review_overrides is not None and len(review_overrides):
        rv = review_overrides[review_overrides["decision"].isin(["match", "no_match"])].copy()
        if "decided_at" in rv.columns:
            rv = rv.sort_values("decided_at", kind="stable", na_position="first")
        lr = [_ordered(a, b) for a, b in zip(rv["record_key_l"], rv["record_key_r"])]
        rv["record_key_l"] = [p[0] for p in lr]
        rv["record_key_r"] = [p[1] for p in lr]
        rv = rv.drop_duplicates(["record_key_l", "record_key_r"], keep="last")
        kinds = rv["decision"].map({"match": "must_link", "no_match": "cannot_link"})
        if "origin" in rv.columns:
            origin = ("review:" + rv["origin"].fillna("review").astype(str)).tolist()
        else:
            origin = ["review"] * len(rv)
        rows += list(zip(rv["record_key_l"], rv["record_key_r"], kinds, origin))
    out = pd.DataFrame(rows, columns=list(OVERRIDE_COLUMNS), dtype=object)
    return out.drop_duplicates().reset_index(drop=True)


def load_overrides_file(path: Path) -> dict:
    """Convenience for tools: read an overrides YAML on its own."""
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


# --------------------------------------------------------------------------------------------
# the affected region: what an incremental run reclusters


def working_columns() -> list[str]:
    """The customer_record columns an incremental run reads for every prior record: what link
    compares and blocks on and what the cluster guards check. Everything else is read by key,
    for the records the run reclusters or rewrites."""
    from .cluster import GUARD_COLUMNS
    from .link.compare import COMPARE_COLUMNS

    return list(dict.fromkeys([*COMPARE_COLUMNS, *GUARD_COLUMNS]))


def cluster_fingerprint(rules) -> str:
    """What a master's clusters and golden values depend on besides its records, edges and
    overrides: the clustering and survivorship settings and the code that applies them. A
    master built under another fingerprint is rebuilt (every master, once)."""
    from . import cluster, ids, schema, survivorship
    from .store import build, tables

    code = []
    for module in (cluster, survivorship, ids, schema, build, tables):
        try:
            code.append(hashlib.sha1(inspect.getsource(module).encode("utf-8")).hexdigest())
        except (OSError, TypeError):  # no source (frozen install): the package version stands in
            from . import __version__

            code.append(str(__version__))
    matching = getattr(rules, "matching", None) or {}
    basis = json.dumps([code, matching.get("clustering"), getattr(rules, "survivorship", None)],
                       sort_keys=True, default=str)
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()[:16]


def overrides_text(overrides: pd.DataFrame) -> str:
    """The merged overrides as canonical JSON (stored with the master, diffed by the next run)."""
    rows = sorted({(r.record_key_l, r.record_key_r, r.kind) for r in overrides.itertuples(index=False)},
                  key=lambda t: tuple("" if v is None else str(v) for v in t))
    return json.dumps(rows, ensure_ascii=False)


def overrides_from_text(text: str | None) -> pd.DataFrame | None:
    """Inverse of overrides_text; None when the master does not know its overrides."""
    if not text:
        return None
    rows = json.loads(text)
    return pd.DataFrame([(*r, None) for r in rows], columns=list(OVERRIDE_COLUMNS), dtype=object)


def _override_keys(frame: pd.DataFrame | None) -> set[str]:
    if frame is None or not len(frame):
        return set()
    keys = pd.concat([frame["record_key_l"], frame["record_key_r"]]).dropna()
    return set(keys.astype(str))


def changed_override_keys(overrides: pd.DataFrame, prior_overrides: pd.DataFrame | None,
                          prior_xref: pd.DataFrame) -> set[str]:
    """Records whose overrides changed since the prior run. When the prior run's overrides are
    unknown, every record named by an override now, and every record whose master was shaped
    by one (xref reason must_link / split:…cannot_link / …unmerge), counts as changed."""
    if prior_overrides is None:
        keys = _override_keys(overrides)
        if len(prior_xref) and "reason" in prior_xref.columns:
            shaped = prior_xref["reason"].fillna("").str.contains("must_link|cannot_link|unmerge", regex=True)
            keys |= set(prior_xref.loc[shaped.to_numpy(), "record_key"])
        return keys

    def rows(frame):
        return {(r.record_key_l, r.record_key_r if isinstance(r.record_key_r, str) else None, r.kind)
                for r in frame.itertuples(index=False)}

    diff = rows(overrides) ^ rows(prior_overrides)
    return {k for r in diff for k in r[:2] if k}


@dataclass
class Scope:
    """The records an incremental run reclusters, and the prior masters they (and the retired
    records) belonged to; every other record keeps its prior master unchanged."""

    keys: set[str]  # current records to recluster
    prior_ids: set[str]  # prior master ids of those records and of the retired ones
    seeds: int  # records that started the region (changed, retired, override-touched)
    full: bool = False  # everything is reclustered (no prior, rules changed, …)
    why: str = ""


def affected_region(record_keys, pairs: pd.DataFrame, overrides: pd.DataFrame, prior, combined: Combined,
                    prior_overrides: pd.DataFrame | None) -> Scope:
    """The standard MDM "affected region": the connected components, over the union of the
    prior run's and this run's match edges, must-links and prior masters, that hold a changed
    or retired record or one whose overrides changed.

    Why the union: a component that lost a record (changed or retired) may split differently
    or stop being oversized, so its remaining records are reclustered too; one that gained a
    record is found through the new edges. Every other component has the same records, edges
    and overrides as in the prior run, so clustering it again would give its prior clusters
    (cluster_records works component by component) — it keeps its masters as they are.
    """
    cur = pd.Series(record_keys, dtype=object).dropna().unique()
    px = prior.xref
    ends: list[tuple[np.ndarray, np.ndarray]] = []  # (left ends, right ends) of every edge kind

    def add(left, right) -> None:
        ends.append((np.asarray(left, dtype=object), np.asarray(right, dtype=object)))

    for frame in (pairs, prior.edges):
        if frame is not None and len(frame):
            m = frame[frame["decision"].astype(str) == "match"] if "decision" in frame.columns else frame
            add(m["record_key_l"], m["record_key_r"])
    for frame in (overrides, prior_overrides):
        if frame is not None and len(frame):
            m = frame[(frame["kind"] == "must_link") & frame["record_key_r"].notna()]
            add(m["record_key_l"], m["record_key_r"])
    if len(px):  # a prior master holds together even if the edge that joined it is gone
        held = px[["record_key", "master_id"]].dropna()
        add(held["record_key"], held.groupby("master_id")["record_key"].transform("first"))
    # one hash pass over every key: node i = i-th distinct key (this run's records first)
    prior_keys = px["record_key"].to_numpy(dtype=object) if len(px) else np.zeros(0, object)
    flat = np.concatenate([cur, prior_keys, *(a for a, _ in ends), *(b for _, b in ends)])
    codes, nodes = pd.factorize(flat)
    n = len(nodes)
    pos = len(cur) + len(prior_keys)
    sizes = [len(a) for a, _ in ends]
    lefts = np.split(codes[pos:pos + sum(sizes)], np.cumsum(sizes)[:-1]) if sizes else []
    rights = np.split(codes[pos + sum(sizes):], np.cumsum(sizes)[:-1]) if sizes else []
    node_index = pd.Index(nodes)
    retired = set(combined.retired["record_key"]) if len(combined.retired) else set()
    seeds = set(combined.changed_keys) | retired | changed_override_keys(overrides, prior_overrides, px)
    seed_pos = node_index.get_indexer(pd.Series(sorted(seeds), dtype=object))
    seed_pos = seed_pos[seed_pos >= 0]
    if n == 0 or not len(seed_pos):
        return Scope(keys=set(), prior_ids=set(), seeds=len(seeds))
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ei = np.concatenate(lefts) if len(lefts) else np.zeros(0, np.int64)
    ej = np.concatenate(rights) if len(rights) else np.zeros(0, np.int64)
    ok = (ei >= 0) & (ej >= 0)
    ei, ej = ei[ok], ej[ok]
    graph = coo_matrix((np.ones(len(ei), np.int8), (ei, ej)), shape=(n, n)).tocsr()
    _, comp = connected_components(graph, directed=False)
    hit = np.zeros(int(comp.max()) + 1, bool)
    hit[comp[seed_pos]] = True
    region = hit[comp]
    keys = set(cur[region[codes[: len(cur)]]]) if len(cur) else set()
    prior_ids = set()
    if len(px):
        in_region = region[codes[len(cur):pos]]
        prior_ids = set(px.loc[in_region, "master_id"].dropna())
    return Scope(keys=keys, prior_ids=prior_ids, seeds=len(seeds))


def complete_records(frame: pd.DataFrame, full: pd.DataFrame, reused_keys: set[str], fresh_keys: set[str],
                     run_columns) -> pd.DataFrame:
    """Rows of the working set with every stored column. Rows read slim from the prior master
    take their stored columns from `full` (customer_record rows read by key): a carried row all
    of them, a row reused by standardize all but this run's identity and raw columns
    (`run_columns`). Rows standardized this run (`fresh_keys`) are left as they are."""
    if not len(frame) or full is None or not len(full):
        return frame
    full = full.drop_duplicates("record_key").set_index("record_key")
    keys = frame["record_key"]
    pos = full.index.get_indexer(keys)
    take_all = (pos >= 0) & ~keys.isin(fresh_keys).to_numpy()
    if not take_all.any():
        return frame
    reused = take_all & keys.isin(reused_keys).to_numpy()
    run_owned = set(run_columns) | {"record_key", "content_hash", "row_hash", "std_fingerprint"}
    out = frame.copy()
    for c in full.columns:
        take = take_all & ~reused if c in run_owned else take_all
        if c == "status" or not take.any():
            continue
        values = full[c].to_numpy(dtype=object)[pos[take]]
        col = out[c].astype(object).to_numpy(copy=True) if c in out.columns else np.full(len(out), None, object)
        col[take] = values
        out[c] = col
    return out
