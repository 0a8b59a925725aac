"""Build every published table from the stage outputs (pure: frames in, frames out).

Replaced tables carry the whole new state; appended tables (master_id_history, match_model,
xref_snapshot) carry only this run's new rows, so history stays bounded by what changed.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd

from ..incremental import content_hash, row_hash
from ..schema import MASTER_COLUMNS, QUARANTINE_COLUMNS
from .prior import PriorState
from .publish import Scoped
from .values import _text_values, utc_now
from .tables import columns_of

SUMMARY_FIELDS = ("source", "full_name", "email", "phone", "birth_date", "address", "city", "company")


def _frame(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Exactly the table's columns, in order (absent ones as None)."""
    df = df.copy()
    for c in columns_of(table):
        if c not in df.columns:
            df[c] = None
    return df[columns_of(table)].reset_index(drop=True)


def _none(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype(object).where(df.notna(), None)


def _std_or_raw(records: pd.DataFrame, f: str) -> pd.Series:
    std = records[f"{f}_std"] if f"{f}_std" in records.columns else pd.Series(None, index=records.index, dtype=object)
    raw = records[f] if f in records.columns else pd.Series(None, index=records.index, dtype=object)
    return std.where(std.notna(), raw)


def _evidence(pairs: pd.DataFrame) -> pd.Series:
    """Per-feature weights as a JSON object; edges kept from earlier runs already have it."""
    wcols = [c for c in pairs.columns if c.startswith("w_")]
    have = pairs["evidence"] if "evidence" in pairs.columns else pd.Series(None, index=pairs.index, dtype=object)
    if not wcols:
        return have
    w = pairs[wcols].apply(pd.to_numeric, errors="coerce").round(4)
    built = [
        json.dumps({k[2:]: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))})
        for row in w.to_dict("records")
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
    lineage: pd.DataFrame,
    assigned: pd.DataFrame,
    model: dict | None,
    overrides: pd.DataFrame,
    prior: PriorState,
    now: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Every published table for this run, keyed by table name (see docs/store.md)."""
    now = now or utc_now()
    cluster_to_id = assigned.set_index("cluster")["master_id"]
    key_cluster = clusters.set_index("record_key")["cluster"]
    active_keys = set(records["record_key"])

    masters = _master_customer(run_id, golden, assigned, clusters, records, prior)
    xref = _customer_xref(run_id, records, clusters, cluster_to_id, pairs, key_cluster)
    history = _history(run_id, now, assigned, masters, prior)
    tables = {
        "master_customer": masters,
        "customer_xref": xref,
        "customer_record": _customer_record(run_id, records, run_keys, retired, prior),
        "quarantine": _quarantine(run_id, records, run_keys, quarantine, prior),
        "review_queue": _review_queue(run_id, pairs, records, overrides, active_keys),
        "master_lineage": _lineage(lineage, cluster_to_id),
        "master_id_history": history,
        "match_edge": _match_edge(run_id, pairs, active_keys),
        "match_model": _match_model(run_id, now, model, prior),
        "xref_snapshot": _xref_delta(run_id, xref, prior),
    }
    return tables


def _master_customer(run_id, golden, assigned, clusters, records, prior) -> pd.DataFrame:
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


def _customer_xref(run_id, records, clusters, cluster_to_id, pairs, key_cluster) -> pd.DataFrame:
    x = records[["record_key", "source", "source_record_id"]].merge(clusters, on="record_key", how="inner")
    x["master_id"] = x["cluster"].map(cluster_to_id)
    # the strongest accepted link that holds the record in its master (None for singletons)
    prob = pd.Series(dtype=float)
    if len(pairs):
        mp = pairs[pairs["decision"] == "match"]
        cl = mp["record_key_l"].map(key_cluster)
        same = cl.notna() & (cl == mp["record_key_r"].map(key_cluster))
        mp = mp[same]
        p = pd.to_numeric(mp["match_probability"], errors="coerce")
        prob = pd.concat([pd.Series(p.values, index=mp["record_key_l"].values),
                          pd.Series(p.values, index=mp["record_key_r"].values)]).groupby(level=0).max()
    x["match_probability"] = x["record_key"].map(prob)
    size = x.groupby("cluster")["record_key"].transform("size")
    default_reason = np.where(size > 1, "matched", "singleton")
    if "cluster_reason" in x.columns:
        x["reason"] = x["cluster_reason"].where(x["cluster_reason"].notna(), pd.Series(default_reason, index=x.index))
    else:
        x["reason"] = default_reason
    x["run_id"] = run_id
    return _frame(x, "customer_xref").sort_values(["master_id", "record_key"], kind="stable").reset_index(drop=True)


def _seen(run_id, df: pd.DataFrame, status: str, run_keys, prev: pd.DataFrame | None) -> pd.DataFrame:
    """customer_record bookkeeping of these rows: hashes, first/last seen run, status."""
    df = df.copy()
    if "content_hash" not in df.columns or df["content_hash"].isna().any():
        df["content_hash"] = content_hash(df)
    if "row_hash" not in df.columns or df["row_hash"].isna().any():
        df["row_hash"] = row_hash(df)
    first = df["record_key"].map(prev["first_seen_run"]) if prev is not None else pd.Series(None, index=df.index)
    last = df["record_key"].map(prev["last_seen_run"]) if prev is not None else pd.Series(None, index=df.index)
    in_run = df["record_key"].isin(run_keys)
    df["first_seen_run"] = first.where(first.notna(), run_id)
    df["last_seen_run"] = np.where(in_run | last.isna(), run_id, last)
    df["status"] = status
    return df


def _prior_seen(prior) -> pd.DataFrame | None:
    prev = pd.concat([prior.records[["record_key", "first_seen_run", "last_seen_run"]],
                      prior.retired_records[["record_key", "first_seen_run", "last_seen_run"]]], ignore_index=True)
    return prev.drop_duplicates("record_key", keep="first").set_index("record_key") if len(prev) else None


def _customer_record(run_id, records, run_keys, retired, prior) -> pd.DataFrame:
    prev = _prior_seen(prior)

    def seen(df: pd.DataFrame, status: str) -> pd.DataFrame:
        return _seen(run_id, df, status, run_keys, prev)

    parts = [seen(records, "active")]
    if retired is not None and len(retired):
        parts.append(seen(retired, "retired"))
    if len(prior.retired_records):
        gone = set(records["record_key"]) | (set(retired["record_key"]) if retired is not None and len(retired) else set())
        still = prior.retired_records[~prior.retired_records["record_key"].isin(gone)]
        if len(still):
            parts.append(still.assign(status="retired"))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return out.reset_index(drop=True)  # NaN → NULL happens in frame_rows; no 400k x 75 copy here


def _quarantine(run_id, records, run_keys, quarantine, prior, run_sources: set[str] | None = None) -> pd.DataFrame:
    q = quarantine.copy() if quarantine is not None else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    q["run_id"] = run_id
    if run_sources is None:
        run_sources = set(records.loc[records["record_key"].isin(run_keys), "source"].dropna())
    ingested = set(run_sources) | set(q["source"].dropna())
    old = prior.quarantine[~prior.quarantine["source"].isin(ingested)] if len(prior.quarantine) else None
    out = pd.concat([old, q], ignore_index=True) if old is not None and len(old) else q
    return _none(_frame(out, "quarantine"))


def _record_summaries(records: pd.DataFrame, keys: set[str]) -> pd.Series:
    sub = records[records["record_key"].isin(keys)]
    cols = {f: (sub[f] if f == "source" else _std_or_raw(sub, f)) for f in SUMMARY_FIELDS}
    if "phone_std" in sub.columns:
        alt = sub["mobile"] if "mobile" in sub.columns else None
        cols["phone"] = sub["phone_std"].where(sub["phone_std"].notna(), cols["phone"] if alt is None else alt)
    frame = _none(pd.DataFrame(cols))
    text = [json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False, default=str)
            for row in frame.to_dict("records")]
    return pd.Series(text, index=sub["record_key"].values, dtype=object)


def _review_queue(run_id, pairs, records, overrides, active_keys) -> pd.DataFrame:
    if not len(pairs):
        return _frame(pd.DataFrame(), "review_queue")
    r = pairs[pairs["decision"] == "review"]
    if active_keys is not None:
        r = r[r["record_key_l"].isin(active_keys) & r["record_key_r"].isin(active_keys)]
    r = r.copy()
    if overrides is not None and len(overrides):
        decided = overrides[overrides["kind"].isin(["must_link", "cannot_link"])]
        done = set(zip(decided["record_key_l"], decided["record_key_r"])) | set(
            zip(decided["record_key_r"], decided["record_key_l"]))
        r = r[[p not in done for p in zip(r["record_key_l"], r["record_key_r"])]]
    r = r.drop_duplicates(["record_key_l", "record_key_r"])
    summaries = _record_summaries(records, set(r["record_key_l"]) | set(r["record_key_r"]))
    r["summary_l"] = r["record_key_l"].map(summaries)
    r["summary_r"] = r["record_key_r"].map(summaries)
    r["evidence"] = _evidence(r)
    r["run_id"] = run_id
    r["status"] = "open"
    r = r.sort_values("match_probability", ascending=False, kind="stable")
    return _none(_frame(r, "review_queue"))


def _lineage(lineage: pd.DataFrame, cluster_to_id: pd.Series) -> pd.DataFrame:
    lin = lineage.copy()
    lin["master_id"] = lin["cluster"].map(cluster_to_id)
    return _none(_frame(lin[lin["master_id"].notna()], "master_lineage"))


def _match_edge(run_id, pairs, active_keys) -> pd.DataFrame:
    if not len(pairs):
        return _frame(pd.DataFrame(), "match_edge")
    e = pairs[pairs["decision"].isin(["match", "review"])]
    if active_keys is not None:
        e = e[e["record_key_l"].isin(active_keys) & e["record_key_r"].isin(active_keys)]
    e = e.copy()
    e["evidence"] = _evidence(e)
    if "rules" in e.columns:
        e["rules"] = _text_values(e["rules"])
    e["run_id"] = e["run_id"].where(e["run_id"].notna(), run_id) if "run_id" in e.columns else run_id
    e = e.drop_duplicates(["record_key_l", "record_key_r"], keep="last")
    return _none(_frame(e, "match_edge"))


def _model_text(model: dict | None) -> str | None:
    return None if model is None else json.dumps(model, sort_keys=True, ensure_ascii=False, default=str)


def _match_model(run_id, now, model, prior) -> pd.DataFrame:
    """A new version only when the model differs from the last saved one."""
    text = _model_text(model)
    if text is None or text == _model_text(prior.model):
        return _frame(pd.DataFrame(), "match_model")
    return _frame(pd.DataFrame([{"version": prior.model_version + 1, "created": now, "run_id": run_id,
                                 "model_json": text}]), "match_model")


def _history(run_id, now, assigned, masters, prior) -> pd.DataFrame:
    """This run's id events: created, split_from, merged_into, retired, updated."""
    ev = []
    new = assigned[assigned["status"] == "new"]
    ev.append(pd.DataFrame({"master_id": new["master_id"], "event": "created", "target_master_id": None}))
    split = assigned[assigned["status"] == "split"]
    ev.append(pd.DataFrame({"master_id": split["master_id"], "event": "split_from",
                            "target_master_id": split["origin_id"] if "origin_id" in split.columns else None}))
    merged = assigned[["master_id", "retired_ids"]].explode("retired_ids").dropna(subset=["retired_ids"])
    ev.append(pd.DataFrame({"master_id": merged["retired_ids"], "event": "merged_into",
                            "target_master_id": merged["master_id"]}))
    prior_ids = set(prior.masters["master_id"].dropna()) | set(prior.xref["master_id"].dropna())
    gone = sorted(prior_ids - set(assigned["master_id"]) - set(merged["retired_ids"]))
    ev.append(pd.DataFrame({"master_id": gone, "event": "retired", "target_master_id": None}))
    created_now = set(new["master_id"]) | set(split["master_id"])
    upd = masters[(masters["updated_run"] == run_id) & ~masters["master_id"].isin(created_now)
                  & masters["master_id"].isin(prior_ids)]
    ev.append(pd.DataFrame({"master_id": upd["master_id"], "event": "updated", "target_master_id": None}))
    h = pd.concat([e for e in ev if len(e)], ignore_index=True) if any(len(e) for e in ev) else pd.DataFrame()
    h["run_id"] = run_id
    h["at"] = now
    return _none(_frame(h, "master_id_history"))


def _xref_delta(run_id, xref, prior) -> pd.DataFrame:
    """Only record→master assignments that changed (master_id None: the record left)."""
    old = prior.xref.set_index("record_key")["master_id"] if len(prior.xref) else pd.Series(dtype=object)
    cur = xref[["record_key", "master_id"]]
    changed = cur[cur["record_key"].map(old).fillna("\x00").values != cur["master_id"].values]
    left = sorted(set(old.index) - set(cur["record_key"]))
    d = pd.concat([changed, pd.DataFrame({"record_key": left, "master_id": None})], ignore_index=True)
    d["run_id"] = run_id
    return _none(_frame(d, "xref_snapshot"))


# --------------------------------------------------------------------------------------------
# incremental runs: only the part of each table the run's affected region covers


def _pair_set(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["record_key_l"], frame["record_key_r"])) if len(frame) else set()


def _decided(overrides: pd.DataFrame | None) -> set[tuple[str, str]]:
    if overrides is None or not len(overrides):
        return set()
    d = overrides[overrides["kind"].isin(["must_link", "cannot_link"])]
    return _pair_set(d) | set(zip(d["record_key_r"], d["record_key_l"]))


def review_scope(kept_edges: pd.DataFrame, overrides: pd.DataFrame, prior_review_keys: pd.DataFrame,
                 gone_keys: set[str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
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

    masters = _master_customer(run_id, golden, assigned, clusters, region, prior)
    xref = _customer_xref(run_id, region, clusters, cluster_to_id, in_region, key_cluster)
    history = _history(run_id, now, assigned, masters, prior)
    master_keys = sorted(scope_prior_ids | set(assigned["master_id"]))

    rewrite = records[records["record_key"].isin(rewrite_keys)].drop_duplicates("record_key")
    seen_keys = set(rewrite["record_key"]) | retired_keys
    prev = _prior_seen(dataclasses.replace(
        prior, records=prior.records[prior.records["record_key"].isin(seen_keys).to_numpy()],
        retired_records=prior.retired_records[prior.retired_records["record_key"].isin(seen_keys).to_numpy()]))
    parts = [_seen(run_id, rewrite, "active", run_keys, prev)]
    if len(retired):
        parts.append(_seen(run_id, retired, "retired", run_keys, prev))
    rec_rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # records of this run whose row is not rewritten: only their last_seen_run moves (a run id
    # is never reused, so it differs from every stored one)
    touched = list(set(run_keys) - set(rewrite_keys))

    review_rows = pd.concat([df for df in (new_pairs, readd_edges) if len(df)], ignore_index=True) \
        if len(new_pairs) or len(readd_edges) else new_pairs
    if len(readd_edges):  # only the pairs asked for (the stored edges were read by record key)
        want = review_pairs | _pair_set(new_pairs)
        review_rows = review_rows[[p in want for p in zip(review_rows["record_key_l"], review_rows["record_key_r"])]]
    return {
        "master_customer": Scoped(masters, keys=master_keys),
        "customer_xref": Scoped(xref, keys=sorted(scope_keys | retired_keys)),
        "customer_record": Scoped(rec_rows.reset_index(drop=True), keys=sorted(set(rec_rows["record_key"])),
                                  touch=[("last_seen_run", run_id, touched)] if touched else []),
        "quarantine": _quarantine(run_id, records, run_keys, quarantine, prior, run_sources),
        # this run's pairs and the kept edges join active records only: no filter needed
        "review_queue": Scoped(_review_queue(run_id, review_rows, records, overrides, None),
                               keys=sorted(gone_keys), pairs=sorted(review_pairs)),
        "master_lineage": Scoped(_lineage(lineage, cluster_to_id), keys=master_keys),
        "master_id_history": history,
        "match_edge": Scoped(_match_edge(run_id, new_pairs, None), keys=sorted(gone_keys)),
        "match_model": _match_model(run_id, now, model, prior),
        "xref_snapshot": _xref_delta(run_id, xref, prior),
    }
