"""Incremental runs: start from the previous working set and only re-link what changed.

A record is identified by `record_key`; it counts as changed when the hash of its raw canonical
fields differs from the stored one. Sources marked `full_snapshot: true` in rules/sources.yaml
retire the records they no longer contain (kept as retired, never deleted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AbstractSet, Any

import numpy as np
import pandas as pd

from .errors import CrmcleanError, RulesError
from .record_hash import ROW_HASH_COLUMNS, content_hash, row_hash  # noqa: F401 - re-exported
from .store.build import (
    customer_xref_rows,
    history_rows,
    lineage_rows,
    master_customer_rows,
    match_edge_rows,
    match_model_rows,
    prior_seen,
    quarantine_rows,
    review_queue_rows,
    seen_rows,
    xref_delta_rows,
)
from .store.prior import PriorState
from .store.publish import Scoped
from .store.statistics import SpellingWrite, stored_key
from .store.values import utc_now

if TYPE_CHECKING:  # annotations only: stages.py describes the values the run passes between stages
    from .stages import Linked, Standardized

OVERRIDE_COLUMNS = ("record_key_l", "record_key_r", "kind", "origin")
EDGE_COLUMNS = ("record_key_l", "record_key_r", "match_weight", "match_probability", "decision")


@dataclass
class Combined:
    records: pd.DataFrame  # prior active records updated by this run's records, minus retired
    changed_keys: set[str]  # record_keys new or changed in this run
    retired: pd.DataFrame  # records retired by full-snapshot sources
    kept_edges: pd.DataFrame  # prior edges not touching changed/retired keys
    new_keys: set[str] = field(default_factory=set)  # the subset of changed_keys never seen before


#: customer_record bookkeeping: never copied onto a reused record (build_tables recomputes it)
_BOOKKEEPING = ("first_seen_run", "last_seen_run", "status", "other_columns", "row_hash")


#: Bumped by hand when clustering, survivorship or master-id logic changes what a master holds
#: or which id it gets (like standardize.STANDARDIZE_VERSION); never for a refactor, a comment
#: or a speed-up. A master built under another version is rebuilt (every master, once).
CLUSTER_VERSION = "2"  # 2: composed names (survivorship compose_name)

#: settings that change how fast a stage runs, never what it produces: no fingerprint holds them,
#: so tuning one never re-standardizes a record or re-clusters a master
PERFORMANCE_KNOBS = frozenset({"in_process_below", "workers", "chunk_size"})


def without_knobs(value: Any) -> Any:
    """`value` (parsed YAML) without PERFORMANCE_KNOBS keys, at any depth."""
    if isinstance(value, dict):
        return {k: without_knobs(v) for k, v in value.items() if k not in PERFORMANCE_KNOBS}
    if isinstance(value, (list, tuple)):
        return [without_knobs(v) for v in value]
    return value


def _fingerprint(basis: Any) -> str:
    text = json.dumps(without_knobs(basis), sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


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
    return _fingerprint([STANDARDIZE_VERSION, rules.standardize, sources])


_KEY_INDEX: list = [None, None]  # (weak reference to a prior records frame, its record_key Index)


def record_index(frame: pd.DataFrame) -> pd.Index:
    """pd.Index of `frame`'s record_key, kept for the last frame asked about: standardize,
    link and cluster each look this run's keys up among the prior ones, and a 360k-key
    index hashes its keys once (≈ 0.06 CPU s each time). The frame is read, never written."""
    ref, index = _KEY_INDEX
    if ref is None or ref() is not frame:
        index = pd.Index(frame["record_key"])
        _KEY_INDEX[:] = [weakref.ref(frame, _forget_index), index]
    return index


def _forget_index(ref: weakref.ref) -> None:
    """The frame is gone: its index (and the key strings it keeps alive) goes with it."""
    if _KEY_INDEX[0] is ref:
        _KEY_INDEX[:] = [None, None]


def split_reusable(
    records: pd.DataFrame, prior_records: pd.DataFrame, refresh: bool = False, fingerprint: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    index = record_index(prev)
    if not index.is_unique:
        prev = prev.drop_duplicates("record_key", keep="first")
        index = pd.Index(prev["record_key"])
    at = index.get_indexer(records["record_key"])
    known = at >= 0
    same = known.copy()
    same[known] = (
        prev["content_hash"].to_numpy(dtype=object)[at[known]] == records["content_hash"].to_numpy(dtype=object)[known]
    )
    if fingerprint is not None:
        same[same] = prev["std_fingerprint"].to_numpy(dtype=object)[at[same]] == fingerprint
    derived = [c for c in prev.columns if c not in records.columns and c not in _BOOKKEEPING]
    if not same.any():
        return records, records.iloc[:0]
    take = at[same]
    # one frame built from column arrays: this run's columns, then the prior's derived ones
    reused = pd.DataFrame(
        {**{c: records[c].to_numpy()[same] for c in records.columns}, **{c: prev[c].to_numpy()[take] for c in derived}},
        index=records.index[same],
    )
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


def combine_with_prior(
    std: pd.DataFrame, prior, rules, fresh_keys: AbstractSet[str] | None = None, columns: list[str] | None = None
) -> Combined:
    """The working set for this run: prior active records, replaced (by record_key) by this
    run's rows, plus new ones; full-snapshot sources retire what they no longer contain.

    `fresh_keys` (records standardized this run) count as changed even when their raw content
    is not: a new standardizer version or rules may give them other values to match on.
    `columns` narrows the working set to those columns (an incremental run's slim prior).
    """
    # a shallow copy: columns are added or replaced below (new arrays), the caller's frame
    # and its 400k x 90 columns are shared, never written
    std = std[[c for c in std.columns if c in set(columns)]] if columns is not None else std.copy(deep=False)
    if "content_hash" not in std.columns or std["content_hash"].isna().any():
        std["content_hash"] = content_hash(std)
    prev = prior.records
    if len(prev) and "content_hash" not in prev.columns:
        prev = prev.assign(content_hash=content_hash(prev))
    # one hash lookup of this run's keys among the prior ones (prior keys are unique)
    index = record_index(prev) if len(prev) else pd.Index([], dtype=object)
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
    if fresh_keys:
        changed_mask |= np.fromiter((k in fresh_keys for k in run_keys), bool, len(run_keys))
    changed_mask &= ~new_mask
    new_keys = set(run_keys[new_mask])
    # one set when every changed key is new (a first run): each is ≈ 16 MB at 200k customers and
    # lives all run; the unions built it twice over (32 MB) plus two sets of every key meanwhile
    changed_keys = set(run_keys[new_mask | changed_mask]) if changed_mask.any() else new_keys

    snapshot, default = full_snapshot_sources(rules)
    ingested = set(std["source"].dropna().astype(str))
    named = set(((getattr(rules, "sources", None) or {}).get("sources") or {}).keys())
    retiring = {s for s in ingested if s in snapshot or (default and s not in named)}
    in_run_np = np.zeros(len(prev), bool)
    in_run_np[at[~new_mask]] = True
    in_run = pd.Series(in_run_np, index=prev.index)
    retire_mask = ~in_run & prev["source"].isin(retiring) if len(prev) else in_run
    retired = prev[retire_mask].reset_index(drop=True)
    carried = ~in_run & ~retire_mask
    # every prior row carried (a night of new records only): no copy of them before the stack
    carried = prev if carried.all() else prev[carried]

    records = _stacked(carried, std) if len(carried) else std.set_axis(pd.RangeIndex(len(std)), axis=0, copy=False)

    edges = prior.edges
    if len(edges):
        gone = changed_keys | set(retired["record_key"])
        keep = ~edges["record_key_l"].isin(gone) & ~edges["record_key_r"].isin(gone)
        kept_edges = edges[keep].reset_index(drop=True)
    else:
        kept_edges = edges.copy() if edges is not None else pd.DataFrame(columns=list(EDGE_COLUMNS))
    return Combined(
        records=records,
        changed_keys=changed_keys,
        retired=retired,
        kept_edges=kept_edges,
        new_keys=new_keys,
    )


def _stacked(top: pd.DataFrame, bottom: pd.DataFrame) -> pd.DataFrame:
    """`pd.concat([top, bottom], ignore_index=True)` with NaN as None where a side lacks the
    column or it is not text. Text columns both sides hold are joined as plain arrays:
    pandas' concat scans a 360k-row column cell by cell in Python when one side is all None
    (≈ 0.4 CPU s of a 200k delta night); the other columns are concatenated as concat would."""
    columns: dict[str, Any] = {}
    for c in dict.fromkeys([*top.columns, *bottom.columns]):
        if c in top.columns and c in bottom.columns and top[c].dtype == object and bottom[c].dtype == object:
            columns[c] = np.concatenate([top[c].to_numpy(), bottom[c].to_numpy()])
            continue
        col = pd.concat([_side(top, c), _side(bottom, c)], ignore_index=True)[c]
        columns[c] = col.astype(object).where(col.notna(), None).to_numpy(dtype=object)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(top) + len(bottom)), copy=False)


def _side(frame: pd.DataFrame, c: str) -> pd.DataFrame:
    """One side of `_stacked`'s concat: a categorical or Arrow column (crmclean.frames.compacted)
    as objects, as the result will be, so an all-missing other side does not decide its dtype."""
    if c not in frame.columns:
        return frame.iloc[:, :0]
    part = frame[[c]]
    return part.astype(object) if isinstance(part[c].dtype, pd.api.extensions.ExtensionDtype) else part


def parse_ref(ref: Any, where: str) -> str:
    """`source:source_record_id` (or an explicit record_key `source|id`) → record_key."""
    from .ids import ref_to_key

    try:
        return ref_to_key(ref)
    except CrmcleanError:
        raise RulesError(where, f'{ref!r} is not a record reference; write it as "source:source_record_id"') from None


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
                raise RulesError(
                    where, f"{kind} entry {i + 1} must be a list of at least two references, got {group!r}"
                )
            keys = [parse_ref(r, where) for r in group]
            if kind == "must_link":
                pairs = [(keys[0], k) for k in keys[1:]]
            else:
                pairs = [(a, b) for j, a in enumerate(keys) for b in keys[j + 1 :]]
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


# --------------------------------------------------------------------------------------------
# the affected region: what an incremental run reclusters


def working_columns(run_columns=()) -> list[str]:
    """The customer_record columns an incremental run reads for every prior record: what link
    compares and blocks on (with the `attr_*_std` of this run's extra columns, `run_columns`:
    the stored records' values of those, or they compare as missing), what the cluster guards
    check and the name parts survivorship's data-wide spelling counts read. Everything else is
    read by key, for the records the run reclusters or rewrites. The store adds the extra
    columns the saved model compares."""
    from .cluster import GUARD_COLUMNS
    from .link.compare import COMPARE_COLUMNS
    from .standardize import attribute_names
    from .survivorship import SPELLING_WORKING_COLUMNS

    extras = attribute_names(run_columns)
    return list(dict.fromkeys([*COMPARE_COLUMNS, *GUARD_COLUMNS, *SPELLING_WORKING_COLUMNS, *extras]))


def cluster_fingerprint(rules) -> str:
    """What a master's clusters and golden values depend on besides its records, edges and
    overrides: CLUSTER_VERSION and the clustering and survivorship rules. A master built under
    another fingerprint is rebuilt (every master, once)."""
    matching = getattr(rules, "matching", None) or {}
    return _fingerprint([CLUSTER_VERSION, matching.get("clustering"), getattr(rules, "survivorship", None)])


def overrides_text(overrides: pd.DataFrame) -> str:
    """The merged overrides as canonical JSON (stored with the master, diffed by the next run)."""
    rows = sorted(
        {(r.record_key_l, r.record_key_r, r.kind) for r in overrides.itertuples(index=False)},
        key=lambda t: tuple("" if v is None else str(v) for v in t),
    )
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


def changed_override_keys(
    overrides: pd.DataFrame, prior_overrides: pd.DataFrame | None, prior_xref: pd.DataFrame
) -> set[str]:
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
        return {
            (r.record_key_l, r.record_key_r if isinstance(r.record_key_r, str) else None, r.kind)
            for r in frame.itertuples(index=False)
        }

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


def affected_region(
    record_keys,
    pairs: pd.DataFrame,
    overrides: pd.DataFrame,
    prior,
    combined: Combined,
    prior_overrides: pd.DataFrame | None,
) -> Scope:
    """The standard MDM "affected region": the connected components, over the union of the
    prior run's and this run's match edges, must-links and prior masters, that hold a changed
    or retired record or one whose overrides changed.

    Why the union: a component that lost a record (changed or retired) may split differently
    or stop being oversized, so its remaining records are reclustered too; one that gained a
    record is found through the new edges. Every other component has the same records, edges
    and overrides as in the prior run, so clustering it again would give its prior clusters
    (cluster_records works component by component) — it keeps its masters as they are.
    """
    cur = np.asarray(record_keys, dtype=object)  # a missing or repeated key is skipped below
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
    retired = set(combined.retired["record_key"]) if len(combined.retired) else set()
    seeds = set(combined.changed_keys) | retired | changed_override_keys(overrides, prior_overrides, px)
    # one hash pass over every key: node i = i-th distinct key (this run's records first), the
    # seeds last: a seed no record or edge names gets a code past the graph's nodes
    prior_keys = px["record_key"].to_numpy(dtype=object) if len(px) else np.zeros(0, object)
    seed_keys = np.array(sorted(seeds), dtype=object)
    flat = np.concatenate([cur, prior_keys, *(a for a, _ in ends), *(b for _, b in ends), seed_keys])
    codes, _ = pd.factorize(flat)
    seed_pos, codes = codes[len(flat) - len(seed_keys) :], codes[: len(flat) - len(seed_keys)]
    n = int(codes.max(initial=-1)) + 1
    pos = len(cur) + len(prior_keys)
    sizes = [len(a) for a, _ in ends]
    lefts = np.split(codes[pos : pos + sum(sizes)], np.cumsum(sizes)[:-1]) if sizes else []
    rights = np.split(codes[pos + sum(sizes) :], np.cumsum(sizes)[:-1]) if sizes else []
    if len(px):  # a prior master holds together even if the edge that joined it is gone
        left, right = _master_edges(codes[len(cur) : pos], px["master_id"])
        lefts, rights = [*lefts, left], [*rights, right]
    seed_pos = seed_pos[(seed_pos >= 0) & (seed_pos < n)]
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
    cur_codes = codes[: len(cur)]
    keys = set(cur[(cur_codes >= 0) & region[cur_codes]]) if len(cur) else set()
    prior_ids = set()
    if len(px):
        in_region = region[codes[len(cur) : pos]]
        prior_ids = set(px.loc[in_region, "master_id"].dropna())
    return Scope(keys=keys, prior_ids=prior_ids, seeds=len(seeds))


def _master_edges(key_codes: np.ndarray, master_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining each prior record (node `key_codes`) to the first record of its master."""
    master, _ = pd.factorize(master_ids)  # codes 0.. in order of first appearance; -1: no master
    held = master >= 0
    master, nodes = master[held], key_codes[held]
    _, first = np.unique(master, return_index=True)  # each master's first record (a stable sort)
    return nodes, nodes[first][master]


def complete_records(
    frame: pd.DataFrame, full: pd.DataFrame, reused_keys: set[str], fresh_keys: set[str], run_columns
) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------------
# the incremental cluster stage: recluster the affected region, carry every other master


@dataclass(frozen=True)
class WholeMaster:
    """The whole master after an incremental run, whose tables hold only the rows it changed:
    the key sets the result expectations check and the run's headline counts."""

    master_ids: set[str]
    xref_keys: set[str]
    xref_master_ids: set[str]
    masters: int
    records_in_master: int
    review_pairs: int
    region_records: int  # records reclustered
    region_masters: int  # masters rebuilt
    changed_keys: set[str]

    def for_validation(self) -> dict[str, Any]:
        """As validate.validate_result(whole=...) reads it (no copies of the key sets)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class RegionResult:
    scope: Scope
    clusters: pd.DataFrame  # record_key, cluster, cluster_reason of the region's records
    tables: dict[str, pd.DataFrame | Scoped]  # what publish writes: the region's rows only
    views: dict[str, pd.DataFrame]  # the tables' rows, customer_xref as the whole master has it
    whole: WholeMaster
    spelling: SpellingWrite  # the data-wide spelling counts publish stores


@dataclass(frozen=True)
class _RegionRows:
    """The stored rows the region's tables are built from (the working set is slim)."""

    complete: pd.DataFrame  # full rows of the region's, rewritten and shown records
    retired: pd.DataFrame  # full rows of the records retired this run
    full: pd.DataFrame  # customer_record rows read by key
    rewrite: set[str]  # active customer_record rows rewritten by this run
    review_pairs: set[tuple[str, str]]  # queue pairs outside the changed records to rewrite
    missing: set[tuple[str, str]]  # those of them to add back from their stored edge


def cluster_region(
    standardized: Standardized, prior: PriorState, linked: Linked, rules, run_id: str, store
) -> RegionResult:
    """The incremental path: recluster only the affected region (affected_region), carry every
    other master as it is, and build only the rows the region covers. `store` reads the
    region's full rows, prior masters and edges by key."""
    from . import cluster, ids, survivorship

    combined, pairs, overrides = linked.combined, linked.pairs, linked.overrides
    records = combined.records
    # this run's new pairs only: the kept ones are prior edges, which affected_region joins too
    scope = affected_region(
        records["record_key"],
        linked.result.pairs,
        overrides,
        prior,
        combined,
        overrides_from_text(prior.state.get("overrides")),
    )
    keys = scope.keys
    region = records[records["record_key"].isin(keys).to_numpy()]
    in_region = pairs[pairs["record_key_l"].isin(keys).to_numpy() & pairs["record_key_r"].isin(keys).to_numpy()]
    clusters = cluster.cluster_records(region, in_region, rules, overrides, model=linked.result.model)
    rows = _region_rows(standardized, prior, linked, keys, store)
    region_rows = rows.complete[rows.complete["record_key"].isin(keys).to_numpy()]
    # the whole master's counts, as a full run counts them: read from the store where it can
    spelling, spelling_write = night_spelling(
        records, region_rows, combined, prior.records, standardized.std, rules, store
    )
    golden, lineage = survivorship.build_golden(region_rows, clusters, rules, spelling=spelling)

    retired_keys = set(combined.retired["record_key"]) if len(combined.retired) else set()
    near = keys | retired_keys
    prior_sub = dataclasses.replace(
        prior,
        xref=prior.xref[prior.xref["record_key"].isin(near).to_numpy()],
        masters=store.read_masters(sorted(scope.prior_ids)),
        records=rows.full,
    )
    assigned = ids.assign_master_ids(clusters, prior_sub)
    readd = store.read_edges(sorted({k for p in rows.missing for k in p})) if rows.missing else pd.DataFrame()
    std = standardized.std
    tables = build_scoped_tables(
        run_id=run_id,
        records=rows.complete,
        run_keys=set(std["record_key"]),
        rewrite_keys=rows.rewrite,
        retired=rows.retired,
        quarantine=standardized.quarantine,
        pairs=pairs,
        new_pairs=linked.result.pairs,
        readd_edges=readd,
        review_pairs=rows.review_pairs,
        gone_keys=set(combined.changed_keys) | retired_keys,
        clusters=clusters,
        golden=golden,
        lineage=lineage,
        assigned=assigned,
        model=linked.result.model,
        overrides=overrides,
        prior=prior_sub,
        scope_keys=keys,
        scope_prior_ids=scope.prior_ids,
        run_sources=set(std["source"].dropna()),
    )
    whole, xref = _whole_master(prior, tables, scope, assigned, rows, near, combined, retired_keys)
    views = {**{name: getattr(t, "rows", t) for name, t in tables.items()}, "customer_xref": xref}
    return RegionResult(
        scope=scope, clusters=clusters, tables=tables, views=views, whole=whole, spelling=spelling_write
    )


def night_spelling(
    records: pd.DataFrame,
    region: pd.DataFrame,
    combined: Combined,
    prior_records: pd.DataFrame,
    std: pd.DataFrame,
    rules,
    store,
) -> tuple[dict[str, dict[str, int]], SpellingWrite]:
    """(the data-wide spelling counts the region's golden records read, what publish stores).

    The store keeps the counts (store/statistics.py): only those of the values the region asks
    about and of the values this run's records change are read by key, and this run's change
    (its records' counts minus those of the stored versions they replace and of the retired
    records) is added; publish writes back the changed ones. When the store does not hold
    them up to date, every record is counted (`records`, the working set) and stored whole."""
    from . import survivorship

    columns = [c for c in region.columns if c in records.columns]  # as counting `records` would
    statistics = sorted(survivorship.spelling_counts(region[columns], rules))
    change = _spelling_change(prior_records, std[[c for c in std.columns if c in records.columns]], combined, rules)
    wanted = {s: asked_values(s, region) | set(change.get(s, ())) for s in statistics}
    stored = store.read_spelling(wanted) if statistics else None
    if stored is None:
        counts = survivorship.spelling_counts(records, rules)
        return counts, SpellingWrite(counts, statistics=sorted(counts))
    counts = {s: {v: stored[s].get(v, 0) + change.get(s, {}).get(v, 0) for v in wanted[s]} for s in statistics}
    changed = {s: {v: counts[s][v] for v in change.get(s, {})} for s in statistics}
    keys = [stored_key(s, v) for s, values in changed.items() for v in values]
    return counts, SpellingWrite(changed, statistics=statistics, keys=keys)


def _spelling_change(
    prior_records: pd.DataFrame, std: pd.DataFrame, combined: Combined, rules
) -> dict[str, dict[str, int]]:
    """{statistic: {value: change}}: what this run's records (`std`) add to the stored counts,
    less what the stored versions they replace and the retired records took away."""
    from . import survivorship

    retired = combined.retired["record_key"] if len(combined.retired) else pd.Series([], dtype=object)
    gone_keys = pd.unique(np.concatenate([std["record_key"].to_numpy(object), retired.to_numpy(object)]))
    index = record_index(prior_records)
    if index.is_unique:  # the kept index of the prior keys: no pass over them
        at = index.get_indexer(gone_keys)
        gone = prior_records.iloc[at[at >= 0]]
    else:
        gone = prior_records[prior_records["record_key"].isin(gone_keys).to_numpy()]
    before = survivorship.spelling_counts(gone[[c for c in std.columns if c in gone.columns]], rules)
    after = survivorship.spelling_counts(std, rules)
    out: dict[str, dict[str, int]] = {}
    for s in set(before) | set(after):
        b, a = before.get(s, {}), after.get(s, {})
        diff = {v: a.get(v, 0) - b.get(v, 0) for v in set(a) | set(b)}
        out[s] = {v: d for v, d in diff.items() if d}
    return out


def asked_values(statistic: str, frame: pd.DataFrame) -> set[str]:
    """The values of `statistic` that survivorship looks up when building `frame`'s golden
    records (a superset: a value nobody holds counts 0): the e-mail domains of the address
    and its match key, every phone column's numbers, each Hanzi given-name character at its
    position for any gender, or the column's own values."""
    from .survivorship import CHARACTERS, DOMAINS, NUMBERS, PHONE_SLOTS

    def texts(*columns: str) -> set[str]:
        out: set[str] = set()
        for c in columns:
            if c in frame.columns:
                values = [str(v) for v in pd.unique(frame[c].to_numpy(object)) if v is not None and v == v]
                out |= set(values) | {v.strip() for v in values}
        return out

    if statistic == DOMAINS:
        return {t.rpartition("@")[2] for t in texts("email_std", "email_key") if "@" in t}
    if statistic == NUMBERS:
        return texts(*PHONE_SLOTS, "phone_std")
    if statistic == CHARACTERS:
        names = [t for t in texts("first_name_std") if not t.isascii()]
        return {f"{pos}|{g}|{ch}" for t in names for pos, ch in enumerate(t) for g in ("", "F", "M")}
    return texts(statistic)


def _moved_keys(std: pd.DataFrame, prior_records: pd.DataFrame, fresh: set[str]) -> set[str]:
    """Reused records whose row moved in its file (row_hash differs): their stored row is rewritten."""
    run_arr = std["record_key"].to_numpy(dtype=object)
    at = record_index(prior_records).get_indexer(run_arr) if len(prior_records) else np.full(len(std), -1)
    was_reused = (at >= 0) & ~std["record_key"].isin(fresh).to_numpy()
    if not was_reused.any():
        return set()
    stored_row = prior_records["row_hash"].to_numpy(dtype=object)[at[was_reused]]
    return set(run_arr[was_reused][stored_row != std["row_hash"].to_numpy(dtype=object)[was_reused]])


def _region_rows(standardized: Standardized, prior: PriorState, linked: Linked, keys: set[str], store) -> _RegionRows:
    """Full rows of the records the region's tables need: the region's, those rewritten in
    customer_record and those shown in new or re-added review rows (the rest stay unread)."""
    combined = linked.combined
    std, fresh = standardized.std, set(standardized.fresh_keys)
    run_keys = set(std["record_key"])
    retired_keys = set(combined.retired["record_key"]) if len(combined.retired) else set()
    gone = set(combined.changed_keys) | retired_keys
    rewrite = fresh | _moved_keys(std, prior.records, fresh)
    review_pairs, missing = review_scope(combined.kept_edges, linked.overrides, prior.review_keys, gone)
    new_pairs = linked.result.pairs
    new_review = new_pairs[new_pairs["decision"] == "review"] if len(new_pairs) else new_pairs
    shown = set(new_review["record_key_l"]) | set(new_review["record_key_r"]) | {k for p in missing for k in p}
    need = (keys | rewrite | shown) - fresh
    # full stored rows: the region's and rewritten rows' columns, every written row's first seen run
    full = store.read_records(sorted(need | retired_keys | fresh))
    wanted_keys = keys | rewrite | shown
    records = combined.records
    # this run's rows from std (the working set is slim), carried rows from the working set
    wanted = pd.concat(
        [
            std[std["record_key"].isin(wanted_keys).to_numpy()],
            records[records["record_key"].isin(wanted_keys - run_keys).to_numpy()],
        ],
        ignore_index=True,
    )
    run_columns = list(standardized.run_columns)
    complete = complete_records(wanted, full, set(standardized.reused_keys), fresh, run_columns)
    retired = complete_records(combined.retired, full, set(), set(), run_columns)
    return _RegionRows(
        complete=complete, retired=retired, full=full, rewrite=rewrite, review_pairs=review_pairs, missing=missing
    )


def _whole_master(
    prior: PriorState,
    tables: dict,
    scope: Scope,
    assigned: pd.DataFrame,
    rows: _RegionRows,
    near: set[str],
    combined: Combined,
    retired_keys: set[str],
) -> tuple[WholeMaster, pd.DataFrame]:
    """The whole master after this run, from the prior key sets and the region's new rows
    (→ its totals, and customer_xref as a whole)."""
    xref_rows = tables["customer_xref"].rows
    px = prior.xref
    untouched = px[~px["record_key"].isin(near).to_numpy()]
    final_xref = pd.concat([untouched, xref_rows[list(untouched.columns)]], ignore_index=True)
    master_ids = (set(px["master_id"].dropna()) - scope.prior_ids) | set(assigned["master_id"])
    gone = set(combined.changed_keys) | retired_keys
    stored_review = prior.review_keys
    if len(stored_review):
        in_scope = (stored_review["record_key_l"].isin(gone) | stored_review["record_key_r"].isin(gone)).to_numpy()
        in_scope |= [p in rows.review_pairs for p in zip(stored_review["record_key_l"], stored_review["record_key_r"])]
        review_count = int((~in_scope).sum())
    else:
        review_count = 0
    whole = WholeMaster(
        master_ids=master_ids,
        xref_keys=set(final_xref["record_key"]),
        xref_master_ids=set(final_xref["master_id"].dropna()),
        masters=len(master_ids),
        records_in_master=len(final_xref),
        review_pairs=review_count + len(tables["review_queue"].rows),
        region_records=len(scope.keys),
        region_masters=len(assigned),
        changed_keys=scope.keys | rows.rewrite,
    )
    return whole, final_xref


# --------------------------------------------------------------------------------------------
# the tables of an incremental run: only the part of each table the affected region covers


def _pair_set(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["record_key_l"], frame["record_key_r"])) if len(frame) else set()


def _decided(overrides: pd.DataFrame | None) -> set[tuple[str, str]]:
    if overrides is None or not len(overrides):
        return set()
    d = overrides[overrides["kind"].isin(["must_link", "cannot_link"])]
    return _pair_set(d) | set(zip(d["record_key_r"], d["record_key_l"]))


def review_scope(
    kept_edges: pd.DataFrame, overrides: pd.DataFrame, prior_review_keys: pd.DataFrame, gone_keys: set[str]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(queue pairs outside the changed records to rewrite, those of them to add back).

    Rows of review_queue touching a changed or retired record are rebuilt from this run's
    pairs. The others are the kept `review` edges minus the pairs decided by an override: a
    pair decided since the prior run leaves the queue, one whose decision was withdrawn comes
    back (its stored edge gives the evidence).
    """
    kept = kept_edges[kept_edges["decision"] == "review"] if len(kept_edges) else kept_edges
    expected = _pair_set(kept) - _decided(overrides)
    stored = prior_review_keys
    if len(stored):
        touch = stored["record_key_l"].isin(gone_keys) | stored["record_key_r"].isin(gone_keys)
        stored = stored[~touch.to_numpy()]
    stored = _pair_set(stored)
    missing = expected - stored
    return missing | (stored - expected), missing


def build_scoped_tables(
    run_id: str,
    records: pd.DataFrame,
    run_keys: set[str],
    rewrite_keys: set[str],
    retired: pd.DataFrame,
    quarantine: pd.DataFrame,
    pairs: pd.DataFrame,
    new_pairs: pd.DataFrame,
    readd_edges: pd.DataFrame,
    review_pairs: set[tuple[str, str]],
    gone_keys: set[str],
    clusters: pd.DataFrame,
    golden: pd.DataFrame,
    lineage: pd.DataFrame,
    assigned: pd.DataFrame,
    model: dict | None,
    overrides: pd.DataFrame,
    prior: PriorState,
    scope_keys: set[str],
    scope_prior_ids: set[str],
    run_sources: set[str],
    now: str | None = None,
) -> dict[str, "pd.DataFrame | Scoped"]:
    """The tables of an incremental run: for each replaced table the new content of the part
    its affected region covers (a store.Scoped), built by the same functions as build_tables
    so the rows are exactly what a full rebuild would give them.

    `records` holds full rows of every record the tables need (the region's, those rewritten in
    customer_record, and those shown in new review rows); `prior` is the prior state cut to the
    region (xref of its and the retired records, master rows of `scope_prior_ids`); `pairs` all
    of this run's pairs (kept + new), `new_pairs` the ones scored this run; `gone_keys` the
    changed and retired records, whose edges and queue rows are rebuilt; `rewrite_keys` the
    active customer_record rows to rewrite (the rest only get `last_seen_run` if in this run).
    """
    now = now or utc_now()
    cluster_to_id = assigned.set_index("cluster")["master_id"]
    key_cluster = clusters.set_index("record_key")["cluster"]
    region = records[records["record_key"].isin(scope_keys)]
    in_region = pairs[pairs["record_key_l"].isin(scope_keys)] if len(pairs) else pairs
    retired_keys = set(retired["record_key"]) if len(retired) else set()

    masters = master_customer_rows(run_id, golden, assigned, clusters, region, prior)
    xref = customer_xref_rows(run_id, region, clusters, cluster_to_id, in_region, key_cluster)
    history = history_rows(run_id, now, assigned, masters, prior)
    master_keys = sorted(scope_prior_ids | set(assigned["master_id"]))

    rewrite = records[records["record_key"].isin(rewrite_keys)].drop_duplicates("record_key")
    seen_keys = set(rewrite["record_key"]) | retired_keys
    prev = prior_seen(
        dataclasses.replace(
            prior,
            records=prior.records[prior.records["record_key"].isin(seen_keys).to_numpy()],
            retired_records=prior.retired_records[prior.retired_records["record_key"].isin(seen_keys).to_numpy()],
        )
    )
    parts = [seen_rows(run_id, rewrite, "active", run_keys, prev)]
    if len(retired):
        parts.append(seen_rows(run_id, retired, "retired", run_keys, prev))
    rec_rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # records of this run whose row is not rewritten: only their last_seen_run moves (a run id
    # is never reused, so it differs from every stored one)
    touched = list(set(run_keys) - set(rewrite_keys))

    review_rows = (
        pd.concat([df for df in (new_pairs, readd_edges) if len(df)], ignore_index=True)
        if len(new_pairs) or len(readd_edges)
        else new_pairs
    )
    if len(readd_edges):  # only the pairs asked for (the stored edges were read by record key)
        want = review_pairs | _pair_set(new_pairs)
        review_rows = review_rows[[p in want for p in zip(review_rows["record_key_l"], review_rows["record_key_r"])]]
    return {
        "master_customer": Scoped(masters, keys=master_keys),
        "customer_xref": Scoped(xref, keys=sorted(scope_keys | retired_keys)),
        "customer_record": Scoped(
            rec_rows.reset_index(drop=True),
            keys=sorted(set(rec_rows["record_key"])),
            touch=[("last_seen_run", run_id, touched)] if touched else [],
        ),
        "quarantine": quarantine_rows(run_id, records, run_keys, quarantine, prior, run_sources),
        # this run's pairs and the kept edges join active records only: no filter needed
        "review_queue": Scoped(
            review_queue_rows(
                run_id, review_rows, records, overrides, None, thresholds=(model or {}).get("thresholds")
            ),
            keys=sorted(gone_keys),
            pairs=sorted(review_pairs),
        ),
        "master_lineage": Scoped(lineage_rows(lineage, cluster_to_id), keys=master_keys),
        "master_id_history": history,
        "match_edge": Scoped(match_edge_rows(run_id, new_pairs, None), keys=sorted(gone_keys)),
        "match_model": match_model_rows(run_id, now, model, prior),
        "xref_snapshot": xref_delta_rows(run_id, xref, prior),
    }
