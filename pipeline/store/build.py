"""Build every published table from the stage outputs (pure: frames in, frames out).

Replaced tables carry the whole new state; appended tables (master_id_history, match_model,
xref_snapshot) carry only this run's new rows, so history stays bounded by what changed.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from .. import memory
from .. import spill as spill_module
from ..record_hash import content_hash, row_hash
from ..schema import MASTER_COLUMNS, QUARANTINE_COLUMNS
from .prior import PriorState
from .values import _text_values, is_evidence, utc_now
from .tables import columns_of

log = logging.getLogger(__name__)

SUMMARY_FIELDS = ("source", "full_name", "email", "phone", "birth_date", "address", "city", "company")


def _frame(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Exactly the table's columns, in order (absent ones as None): one copy of the frame."""
    df = df.copy(deep=False)
    for c in columns_of(table):
        if c not in df.columns:
            df[c] = None
    out = df[columns_of(table)]
    return out.set_axis(pd.RangeIndex(len(out)), axis=0, copy=False)


def _none(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as Python objects, None where missing (as astype(object).where(notna),
    column by column: one copy of the frame instead of two)."""
    columns = {c: _objects_none(df[c]) for c in df.columns}
    return pd.DataFrame(columns, index=df.index, columns=df.columns)


def _objects_none(column: pd.Series) -> np.ndarray:
    """One column as Python objects with None where missing, copied only when something is."""
    values = column.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()  # an object column's values are the frame's own
        values[missing] = None
    return values


def _none_frame(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """`_none(_frame(df, table))` with one copy of the values instead of three: the table's
    columns in order (absent ones all None), every one as Python objects with None for missing
    but link's evidence codes, kept as they are (their text is joined a batch at a time as
    publish writes them: ≈ 130 MB of text at 200k customers, held from cluster to publish)."""
    n = len(df)
    columns = {
        c: np.full(n, None, dtype=object)
        if c not in df.columns
        else df[c].array
        if is_evidence(df[c].dtype)
        else _objects_none(df[c])
        for c in columns_of(table)
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(n), columns=columns_of(table))


def _both_in(pairs: pd.DataFrame, keys) -> np.ndarray:
    """Pairs whose two record keys are both in `keys` (a set, or an Index probed by its hash table)."""
    if isinstance(keys, pd.Index):
        return (keys.get_indexer(pairs["record_key_l"]) >= 0) & (keys.get_indexer(pairs["record_key_r"]) >= 0)
    return (pairs["record_key_l"].isin(keys) & pairs["record_key_r"].isin(keys)).to_numpy()


def _std_or_raw(records: pd.DataFrame, f: str) -> pd.Series:
    std = records[f"{f}_std"] if f"{f}_std" in records.columns else pd.Series(None, index=records.index, dtype=object)
    raw = records[f] if f in records.columns else pd.Series(None, index=records.index, dtype=object)
    return std.where(std.notna(), raw)


def _evidence(pairs: pd.DataFrame) -> pd.Series:
    """Per-feature weights as a JSON object; edges kept from earlier runs already have it."""
    wcols = [c for c in pairs.columns if c.startswith("w_")]
    # link's evidence codes (crmclean.link.evidence) as their text: the rows are written now
    if "evidence" in pairs.columns and is_evidence(pairs["evidence"].dtype) and not pairs["evidence"].isna().any():
        return pairs["evidence"]  # every pair scored by this run: its codes, joined as they are written
    have = (
        pairs["evidence"].astype(object, copy=False)
        if "evidence" in pairs.columns
        else pd.Series(None, index=pairs.index, dtype=object)
    )
    if not wcols:
        return have
    need = np.flatnonzero(have.isna().to_numpy())  # only the edges scored by this run
    w = pairs[wcols].iloc[need].apply(pd.to_numeric, errors="coerce").round(4)
    names = [k[2:] for k in wcols]
    built = np.full(len(pairs), None, dtype=object)
    # per row, zipped from plain lists (v == v: not NaN): to_dict("records") took most of the time
    built[need] = [
        json.dumps({k: v for k, v in zip(names, row) if v == v}) for row in zip(*(w[c].tolist() for c in wcols))
    ]
    return have.where(have.notna(), pd.Series(built, index=pairs.index, dtype=object))


def _norm_text(s: pd.Series) -> pd.Series:
    """Vectorized text form for comparisons (integral numbers without '.0', missing as NUL)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        f = pd.to_numeric(s, errors="coerce").astype("float64")
        if bool(((f % 1 == 0) | f.isna()).all()):
            return f.astype("Int64").astype(str).where(f.notna(), "\x00")
        return f.astype(str).where(f.notna(), "\x00")
    return s.where(s.notna(), "\x00").astype(str)


def _signature(df: pd.DataFrame, cols: list[str]) -> pd.Series:
    """Row content as one 64-bit hash, for 'did this master change' comparisons."""
    norm = pd.DataFrame({c: (_norm_text(df[c]) if c in df.columns else "\x00") for c in cols}, index=df.index)
    return pd.util.hash_pandas_object(norm, index=False)


def build_tables(
    run_id: str,
    records: pd.DataFrame,
    run_keys: set[str],
    retired: pd.DataFrame,
    quarantine: pd.DataFrame,
    pairs: pd.DataFrame,
    clusters: pd.DataFrame,
    golden: pd.DataFrame,
    lineage: "pd.DataFrame | spill_module.SpilledTable",
    assigned: pd.DataFrame,
    model: dict | None,
    overrides: pd.DataFrame,
    prior: PriorState,
    now: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Every published table for this run, keyed by table name (see docs/store.md);
    master_lineage stays on disk when `lineage` is already there (golden_with_spilled_lineage)."""
    now = now or utc_now()
    cluster_to_id = assigned.set_index("cluster")["master_id"]
    key_cluster = clusters.set_index("record_key")["cluster"]
    # an Index: its hash table is built once and probed for both ends of every pair
    active_keys = pd.Index(pd.unique(records["record_key"].to_numpy(object)))
    in_run = records["record_key"].isin(run_keys).to_numpy()  # once: customer_record and quarantine ask

    # each table's working copies go back to the OS before the next is built (memory.release_freed):
    # freed between the frames that live on, glibc kept them, and the stage's peak grew table by table
    masters = _released(master_customer_rows(run_id, golden, assigned, clusters, records, prior))
    xref = _released(customer_xref_rows(run_id, records, clusters, cluster_to_id, pairs, key_cluster))
    history = history_rows(run_id, now, assigned, masters, prior)
    tables = {
        "master_customer": masters,
        "customer_xref": xref,
        "customer_record": _released(_customer_record(run_id, records, run_keys, retired, prior, in_run)),
        "quarantine": quarantine_rows(
            run_id, records, run_keys, quarantine, prior, set(records.loc[in_run, "source"].dropna())
        ),
        "review_queue": review_queue_rows(
            run_id, pairs, records, overrides, active_keys, thresholds=(model or {}).get("thresholds")
        ),
        "master_lineage": lineage
        if isinstance(lineage, spill_module.SpilledTable)
        else lineage_rows(lineage, cluster_to_id),
        "master_id_history": history,
        "match_edge": _released(match_edge_rows(run_id, pairs, active_keys)),
        "match_model": match_model_rows(run_id, now, model, prior),
        "xref_snapshot": xref_delta_rows(run_id, xref, prior),
    }
    return tables


def _released(table: pd.DataFrame) -> pd.DataFrame:
    memory.release_freed()
    return table


def master_customer_rows(run_id, golden, assigned, clusters, records, prior) -> pd.DataFrame:
    m = golden.merge(assigned[["cluster", "master_id"]], on="cluster", how="inner")
    if "record_count" not in m.columns or m["record_count"].isna().all():
        m["record_count"] = m["cluster"].map(clusters.groupby("cluster").size())
    if "sources" not in m.columns or m["sources"].isna().all():
        m["sources"] = m["cluster"].map(_cluster_sources(clusters, records))
    content_cols = [c for c in MASTER_COLUMNS if c != "master_id"]
    m = m.reindex(columns=["master_id", *content_cols], fill_value=None)
    pm = prior.masters.set_index("master_id") if len(prior.masters) else None
    if pm is not None:
        m["created_run"] = m["master_id"].map(pm["created_run"]).fillna(run_id)
        old_sig = _signature(prior.masters, content_cols)
        old_sig.index = prior.masters["master_id"]
        unchanged = _signature(m, content_cols).values == m["master_id"].map(old_sig).values
        m["updated_run"] = np.where(unchanged, m["master_id"].map(pm["updated_run"]), run_id)
    else:
        m["created_run"] = run_id
        m["updated_run"] = run_id
    return _none(_frame(m, "master_customer").sort_values("master_id", kind="stable").reset_index(drop=True))


def _cluster_sources(clusters: pd.DataFrame, records: pd.DataFrame) -> pd.Series:
    """cluster → sorted distinct sources joined by ';' (Python joins only for multi-source clusters)."""
    src = clusters[["record_key", "cluster"]].merge(records[["record_key", "source"]], on="record_key")
    src = src.drop_duplicates(["cluster", "source"]).sort_values(["cluster", "source"])
    n = src.groupby("cluster")["source"].transform("size")
    single = src[n == 1].set_index("cluster")["source"]
    multi = src[n > 1].groupby("cluster")["source"].agg(";".join)
    return pd.concat([single, multi])


def customer_xref_rows(run_id, records, clusters, cluster_to_id, pairs, key_cluster) -> pd.DataFrame:
    x = records[["record_key", "source", "source_record_id"]].merge(clusters, on="record_key", how="inner")
    x["master_id"] = x["cluster"].map(cluster_to_id)
    # the strongest accepted link that holds the record in its master (None for singletons)
    at = key_cluster.index.get_indexer(x["record_key"])  # each row's place among the clustered keys
    x["match_probability"] = _strongest_link(pairs, key_cluster)[at]
    size = x.groupby("cluster")["record_key"].transform("size")
    default_reason = np.where(size > 1, "matched", "singleton")
    if "cluster_reason" in x.columns:
        x["reason"] = x["cluster_reason"].where(x["cluster_reason"].notna(), pd.Series(default_reason, index=x.index))
    else:
        x["reason"] = default_reason
    x["run_id"] = run_id
    x = _frame(x, "customer_xref")
    return x.take(_by_master(x, at, key_cluster.index)).reset_index(drop=True)


def _strongest_link(pairs: pd.DataFrame, key_cluster: pd.Series) -> np.ndarray:
    """Per clustered record (key_cluster's order): the highest match_probability of its `match`
    pairs inside its cluster, NaN for none. Keys are looked up once as positions, and the
    maximum is taken over integers (grouping and mapping by key strings took ~1 CPU s at 200k)."""
    best = np.full(len(key_cluster), np.nan)
    if not len(pairs):
        return best
    mp = pairs[(pairs["decision"] == "match").to_numpy()]
    index, cluster = key_cluster.index, key_cluster.to_numpy()
    left, right = index.get_indexer(mp["record_key_l"]), index.get_indexer(mp["record_key_r"])
    same = (left >= 0) & (right >= 0)
    same[same] = cluster[left[same]] == cluster[right[same]]
    p = pd.to_numeric(mp["match_probability"], errors="coerce").to_numpy(float)[same]
    at, p = np.concatenate([left[same], right[same]]), np.concatenate([p, p])
    known = ~np.isnan(p)
    top = pd.Series(p[known]).groupby(at[known]).max()
    best[top.index.to_numpy()] = top.to_numpy()
    return best


def _by_master(x: pd.DataFrame, at: np.ndarray, keys: pd.Index) -> np.ndarray:
    """Row order by (master_id, record_key), as a stable sort of those columns: the keys' order
    is their place in `keys` when those are sorted (cluster_records' output), so only the
    master ids are ranked as text."""
    if not keys.is_monotonic_increasing or not keys.is_unique:
        return np.lexsort((_text_rank(x["record_key"]), _text_rank(x["master_id"])))
    return np.lexsort((at, _text_rank(x["master_id"])))


def _text_rank(values: pd.Series) -> np.ndarray:
    """Sort rank of each value (missing last, as sort_values puts them)."""
    codes, uniques = pd.factorize(values, sort=True)
    return np.where(codes < 0, len(uniques), codes)


def seen_rows(
    run_id, df: pd.DataFrame, status: str, run_keys, prev: pd.DataFrame | None, in_run: np.ndarray | None = None
) -> pd.DataFrame:
    """customer_record bookkeeping of these rows: hashes, first/last seen run, status
    (`in_run`: which rows' keys are in `run_keys`, when the caller already knows)."""
    df = df.copy(deep=False)  # the columns set below are new arrays: the caller's frame is untouched
    if "content_hash" not in df.columns or df["content_hash"].isna().any():
        df["content_hash"] = content_hash(df)
    if "row_hash" not in df.columns or df["row_hash"].isna().any():
        df["row_hash"] = row_hash(df)
    first = df["record_key"].map(prev["first_seen_run"]) if prev is not None else pd.Series(None, index=df.index)
    last = df["record_key"].map(prev["last_seen_run"]) if prev is not None else pd.Series(None, index=df.index)
    if in_run is None:
        in_run = df["record_key"].isin(run_keys).to_numpy()
    df["first_seen_run"] = first.where(first.notna(), run_id)
    df["last_seen_run"] = np.where(in_run | last.isna(), run_id, last)
    df["status"] = status
    return df


def prior_seen(prior) -> pd.DataFrame | None:
    prev = pd.concat(
        [
            prior.records[["record_key", "first_seen_run", "last_seen_run"]],
            prior.retired_records[["record_key", "first_seen_run", "last_seen_run"]],
        ],
        ignore_index=True,
    )
    return prev.drop_duplicates("record_key", keep="first").set_index("record_key") if len(prev) else None


def _customer_record(run_id, records, run_keys, retired, prior, in_run=None) -> pd.DataFrame:
    prev = prior_seen(prior)

    def seen(df: pd.DataFrame, status: str, in_run=None) -> pd.DataFrame:
        return seen_rows(run_id, df, status, run_keys, prev, in_run)

    parts = [seen(records, "active", in_run)]
    if retired is not None and len(retired):
        parts.append(seen(retired, "retired"))
    if len(prior.retired_records):
        gone = set(records["record_key"]) | (
            set(retired["record_key"]) if retired is not None and len(retired) else set()
        )
        still = prior.retired_records[~prior.retired_records["record_key"].isin(gone)]
        if len(still):
            parts.append(still.assign(status="retired"))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # NaN → NULL happens in frame_rows; a new index without copying the 400k x 75 columns
    return out.set_axis(pd.RangeIndex(len(out)), axis=0, copy=False)


def quarantine_rows(run_id, records, run_keys, quarantine, prior, run_sources: set[str] | None = None) -> pd.DataFrame:
    q = quarantine.copy() if quarantine is not None else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    q["run_id"] = run_id
    if run_sources is None:
        run_sources = set(records.loc[records["record_key"].isin(run_keys), "source"].dropna())
    ingested = set(run_sources) | set(q["source"].dropna())
    old = prior.quarantine[~prior.quarantine["source"].isin(ingested)] if len(prior.quarantine) else None
    out = pd.concat([old, q], ignore_index=True) if old is not None and len(old) else q
    return _none_frame(out, "quarantine")


def _record_summaries(records: pd.DataFrame, keys: set[str]) -> pd.Series:
    sub = records[records["record_key"].isin(keys)]
    cols = {f: (sub[f] if f == "source" else _std_or_raw(sub, f)) for f in SUMMARY_FIELDS}
    if "phone_std" in sub.columns:
        alt = sub["mobile"] if "mobile" in sub.columns else None
        cols["phone"] = sub["phone_std"].where(sub["phone_std"].notna(), cols["phone"] if alt is None else alt)
    frame = _none(pd.DataFrame(cols))
    text = [
        json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False, default=str)
        for row in frame.to_dict("records")
    ]
    return pd.Series(text, index=sub["record_key"].values, dtype=object)


def review_queue_rows(run_id, pairs, records, overrides, active_keys, thresholds=None) -> pd.DataFrame:
    """The pairs held for review (none decided by an override), each with why it is held."""
    from ..link.decisions import review_reasons

    if not len(pairs):
        return _frame(pd.DataFrame(), "review_queue")
    r = pairs[pairs["decision"] == "review"]
    if active_keys is not None:
        r = r[_both_in(r, active_keys)]
    r = r.copy()
    if overrides is not None and len(overrides):
        decided = overrides[overrides["kind"].isin(["must_link", "cannot_link"])]
        done = set(zip(decided["record_key_l"], decided["record_key_r"])) | set(
            zip(decided["record_key_r"], decided["record_key_l"])
        )
        # a boolean array, not a list: an empty list would select no columns of an empty frame
        r = r[np.array([p not in done for p in zip(r["record_key_l"], r["record_key_r"])], dtype=bool)]
    r = r.drop_duplicates(["record_key_l", "record_key_r"])
    summaries = _record_summaries(records, set(r["record_key_l"]) | set(r["record_key_r"]))
    r["summary_l"] = r["record_key_l"].map(summaries)
    r["summary_r"] = r["record_key_r"].map(summaries)
    r["evidence"] = _evidence(r)
    cap = r["cap"] if "cap" in r.columns else pd.Series("", index=r.index, dtype=object)
    r["review_reason"] = review_reasons(r["match_probability"].tolist(), cap.tolist(), thresholds)
    r["run_id"] = run_id
    r["status"] = "open"
    r = r.sort_values("match_probability", ascending=False, kind="stable")
    return _none_frame(r, "review_queue")


def lineage_rows(lineage: pd.DataFrame, cluster_to_id: pd.Series) -> pd.DataFrame:
    lin = lineage.copy(deep=False)  # ~13 rows per master: no more copies than needed
    lin["master_id"] = lin["cluster"].map(cluster_to_id)
    assigned = lin["master_id"].notna().to_numpy()
    return _none_frame(lin if assigned.all() else lin[assigned], "master_lineage")


def golden_with_spilled_lineage(
    records: pd.DataFrame, clusters: pd.DataFrame, rules, spelling, assigned: pd.DataFrame, out_dir, workers=None
) -> "tuple[pd.DataFrame, spill_module.SpilledTable | pd.DataFrame]":
    """(golden, master_lineage): survivorship's golden records (survivorship.golden_in_groups),
    their lineage written to the spill folder as each group of clusters is built, so the whole
    lineage is never in memory (built whole, then spilled, it was the cluster stage's 200k peak).
    A value that is not text (pyarrow cannot store it as the database would): built again with
    the lineage in memory."""
    import pyarrow as pa

    from .. import survivorship

    cluster_to_id = assigned.set_index("cluster")["master_id"]
    try:
        with spill_module.TableWriter("master_lineage", columns_of("master_lineage"), out_dir) as writer:
            golden, _ = survivorship.golden_in_groups(
                records,
                clusters,
                rules,
                spelling=spelling,
                workers=workers,
                lineage_to=lambda lineage: _write_lineage(writer, lineage, cluster_to_id),
            )
        return golden, writer.table
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        log.info("master_lineage kept in memory: %s", exc)
        golden, lineage = survivorship.golden_in_groups(records, clusters, rules, spelling=spelling, workers=workers)
        return golden, lineage_rows(lineage, cluster_to_id)


def _write_lineage(writer: "spill_module.TableWriter", lineage: pd.DataFrame, cluster_to_id: pd.Series) -> None:
    step = spill_module.SPILL_BATCH_ROWS
    for at in range(0, len(lineage), step):
        writer.write(lineage_rows(lineage.iloc[at : at + step], cluster_to_id))


def match_edge_rows(run_id, pairs, active_keys) -> pd.DataFrame:
    if not len(pairs):
        return _frame(pd.DataFrame(), "match_edge")
    # only the columns the table or its evidence reads are copied (the pairs hold more)
    read = [c for c in pairs.columns if c in columns_of("match_edge") or c.startswith("w_")]
    e = pairs.loc[pairs["decision"].isin(["match", "review"]).to_numpy(), read]
    if active_keys is not None:
        e = e[_both_in(e, active_keys)]
    e = e.copy(deep=False)  # its own frame (the rows taken are already new arrays)
    e["evidence"] = _evidence(e)
    if "rules" in e.columns:
        e["rules"] = _text_values(e["rules"])
    e["run_id"] = e["run_id"].where(e["run_id"].notna(), run_id) if "run_id" in e.columns else run_id
    e = e.drop_duplicates(["record_key_l", "record_key_r"], keep="last")
    return _none_frame(e, "match_edge")


def _model_text(model: dict | None) -> str | None:
    return None if model is None else json.dumps(model, sort_keys=True, ensure_ascii=False, default=str)


def match_model_rows(run_id, now, model, prior) -> pd.DataFrame:
    """A new version only when the model differs from the last saved one."""
    text = _model_text(model)
    if text is None or text == _model_text(prior.model):
        return _frame(pd.DataFrame(), "match_model")
    return _frame(
        pd.DataFrame([{"version": prior.model_version + 1, "created": now, "run_id": run_id, "model_json": text}]),
        "match_model",
    )


def history_rows(run_id, now, assigned, masters, prior) -> pd.DataFrame:
    """This run's id events: created, split_from, merged_into, retired, updated."""
    ev = []
    new = assigned[assigned["status"] == "new"]
    ev.append(pd.DataFrame({"master_id": new["master_id"], "event": "created", "target_master_id": None}))
    split = assigned[assigned["status"] == "split"]
    ev.append(
        pd.DataFrame(
            {
                "master_id": split["master_id"],
                "event": "split_from",
                "target_master_id": split["origin_id"] if "origin_id" in split.columns else None,
            }
        )
    )
    merged = assigned[["master_id", "retired_ids"]].explode("retired_ids").dropna(subset=["retired_ids"])
    ev.append(
        pd.DataFrame(
            {"master_id": merged["retired_ids"], "event": "merged_into", "target_master_id": merged["master_id"]}
        )
    )
    prior_ids = set(prior.masters["master_id"].dropna()) | set(prior.xref["master_id"].dropna())
    gone = sorted(prior_ids - set(assigned["master_id"]) - set(merged["retired_ids"]))
    ev.append(pd.DataFrame({"master_id": gone, "event": "retired", "target_master_id": None}))
    created_now = set(new["master_id"]) | set(split["master_id"])
    upd = masters[
        (masters["updated_run"] == run_id)
        & ~masters["master_id"].isin(created_now)
        & masters["master_id"].isin(prior_ids)
    ]
    ev.append(pd.DataFrame({"master_id": upd["master_id"], "event": "updated", "target_master_id": None}))
    h = pd.concat([e for e in ev if len(e)], ignore_index=True) if any(len(e) for e in ev) else pd.DataFrame()
    h["run_id"] = run_id
    h["at"] = now
    return _none_frame(h, "master_id_history")


def xref_delta_rows(run_id, xref, prior) -> pd.DataFrame:
    """Only record→master assignments that changed (master_id None: the record left)."""
    old = prior.xref.set_index("record_key")["master_id"] if len(prior.xref) else pd.Series(dtype=object)
    cur = xref[["record_key", "master_id"]]
    changed = cur[cur["record_key"].map(old).fillna("\x00").values != cur["master_id"].values]
    left = sorted(set(old.index) - set(cur["record_key"]))
    d = pd.concat([changed, pd.DataFrame({"record_key": left, "master_id": None})], ignore_index=True)
    d["run_id"] = run_id
    return _none_frame(d, "xref_snapshot")
