"""Incremental runs: start from the previous working set and only re-link what changed.

A record is identified by `record_key`; it counts as changed when the hash of its raw canonical
fields differs from the stored one. Sources marked `full_snapshot: true` in rules/sources.yaml
retire the records they no longer contain (kept as retired, never deleted).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def content_hash(records: pd.DataFrame) -> pd.Series:
    """sha1 over the raw canonical fields (None and "" hash alike; column order fixed)."""
    parts = []
    for f in CANONICAL_FIELDS:
        if f in records.columns:
            s = records[f]
            parts.append(s.where(s.notna(), "").astype(str))
        else:
            parts.append(pd.Series("", index=records.index))
    joined = parts[0].str.cat(parts[1:], sep=_SEP) if len(records) else pd.Series([], dtype=object)
    return pd.Series(
        [hashlib.sha1(v.encode("utf-8")).hexdigest() for v in joined.tolist()], index=records.index, dtype=object
    )


#: customer_record bookkeeping: never copied onto a reused record (build_tables recomputes it)
_BOOKKEEPING = ("first_seen_run", "last_seen_run", "status", "other_columns")


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

    records = records.copy()
    records["content_hash"] = content_hash(records)
    records["std_fingerprint"] = fingerprint
    prev = prior_records
    if refresh or prev is None or not len(prev) or not set(OUTPUT_COLUMNS) <= set(prev.columns):
        return records, records.iloc[:0]
    if "content_hash" not in prev.columns:
        prev = prev.assign(content_hash=content_hash(prev))
    prev = prev.drop_duplicates("record_key").set_index("record_key")
    same = (records["record_key"].map(prev["content_hash"]) == records["content_hash"]).to_numpy()
    if fingerprint is not None:
        if "std_fingerprint" not in prev.columns:
            return records, records.iloc[:0]
        same &= (records["record_key"].map(prev["std_fingerprint"]) == fingerprint).to_numpy()
    derived = [c for c in prev.columns if c not in records.columns and c not in _BOOKKEEPING]
    reused = records[same]
    if len(reused):
        carried = prev.loc[reused["record_key"].to_numpy(), derived]
        carried.index = reused.index
        reused = pd.concat([reused, carried], axis=1)
    return records[~same], reused


def with_reused(std_fresh: pd.DataFrame, reused: pd.DataFrame) -> pd.DataFrame:
    """This run's standardized frame: freshly standardized plus reused rows, in input order."""
    if not len(reused):
        return std_fresh
    if not len(std_fresh):
        return reused.reindex(columns=list(dict.fromkeys([*std_fresh.columns, *reused.columns])))
    out = pd.concat([std_fresh, reused], axis=0).sort_index(kind="stable")
    for c in set(std_fresh.columns) ^ set(reused.columns):  # a column only one side has
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


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


def combine_with_prior(std: pd.DataFrame, prior, rules) -> Combined:
    """The working set for this run: prior active records, replaced (by record_key) by this
    run's rows, plus new ones; full-snapshot sources retire what they no longer contain."""
    std = std.copy()
    if "content_hash" not in std.columns or std["content_hash"].isna().any():
        std["content_hash"] = content_hash(std)
    prev = prior.records
    if len(prev) and "content_hash" not in prev.columns:
        prev = prev.assign(content_hash=content_hash(prev))
    prev_hash = prev.set_index("record_key")["content_hash"] if len(prev) else pd.Series(dtype=object)

    known = std["record_key"].map(prev_hash)
    new_mask = known.isna()
    changed_mask = ~new_mask & (known != std["content_hash"])
    new_keys = set(std.loc[new_mask, "record_key"])
    changed_keys = new_keys | set(std.loc[changed_mask, "record_key"])

    snapshot, default = full_snapshot_sources(rules)
    ingested = set(std["source"].dropna().astype(str))
    named = set(((getattr(rules, "sources", None) or {}).get("sources") or {}).keys())
    retiring = {s for s in ingested if s in snapshot or (default and s not in named)}
    in_run = prev["record_key"].isin(set(std["record_key"])) if len(prev) else pd.Series([], dtype=bool)
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
                    new_keys=new_keys)


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
