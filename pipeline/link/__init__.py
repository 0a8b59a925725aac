"""Link stage: blocking → comparison → Fellegi-Sunter scoring → decisions (see docs/matching.md).

``link`` never builds all pairs: blocking rules propose candidates, features are computed in
bounded chunks (optionally over a process pool), and only pairs at or above the review
threshold are returned — non-matches are counted in the summary, not kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import memory
from ..errors import CrmcleanError
from ..keys import sorted_unique_positions
from . import parallel
from .blocking import Candidates, block, identical_sizes
from .compare import COMPARE_COLUMNS, FEATURE_NAMES, FEATURES, TF_COLUMNS, compare_settings
from .compare import feature_levels
from .compare import pair_term_frequencies
from .compare import extra_columns, extra_feature, extras_in, location_in_disguise, prepare_columns, term_frequencies
from .evidence import EvidenceArray
from .decisions import (  # re-exported: explain and the tests read them here
    DECISION_RANK,
    DEFAULT_CAPS,
    DEFAULT_HARD_CONSTRAINTS,
    DEFAULT_THRESHOLDS,
    _caps,
    _shared_value_limit,
    _thresholds,
    decide,
)
from .incremental import _block_usable, near_new
from .model import levels_frame, model_summary, reuse_verdict, score_levels, train_supervised
from .parallel import SETTINGS_KEY, _Pool, _levels_later, compute_levels, large_arrays_mapped
from .training import DEFAULT_TRAINING_MINIMUM, DEFAULT_TRAINING_RULES, plan_training
from .training import train_from_levels

__all__ = [
    "DECISION_RANK",
    "DEFAULT_CAPS",
    "DEFAULT_TRAINING_MINIMUM",
    "DEFAULT_TRAINING_RULES",
    "SETTINGS_KEY",
    "_Pool",
    "_block_usable",
    "_caps",
    "_levels_later",
    "_shared_value_limit",
    "_thresholds",
    "compute_levels",
    "near_new",
    "plan_training",
    "reuse_verdict",
    "train_from_levels",
    "DEFAULT_HARD_CONSTRAINTS",
    "model_summary",
    "DEFAULT_THRESHOLDS",
    "PAIR_COLUMNS",
    "LinkResult",
    "decide",
    "levels_frame",
    "link",
    "train_supervised",
]

DEFAULT_CHUNK_SIZE = 200_000
PARALLEL_BLOCKING_RECORDS = 50_000  # below this, starting the workers costs more than blocking

PAIR_COLUMNS = [
    "record_key_l",
    "record_key_r",
    "match_weight",
    "match_probability",
    "decision",
    "rules",
    "evidence",
    "cap",
] + [f"w_{f}" for f in FEATURE_NAMES]


@dataclass
class LinkResult:
    pairs: pd.DataFrame
    model: dict
    blocking_summary: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, for the run report
    # mode (trained / reused), why, records: model_summary(model, usage) for the terminal and report
    usage: dict = field(default_factory=dict)


class _Laps(dict):
    """Seconds per step: ``lap(name)`` books the time since the previous lap."""

    def __init__(self):
        super().__init__()
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        memory.release_freed()  # a step's transients (the blocking union's sorts, say) go back
        now = time.perf_counter()
        self[name] = round(self.get(name, 0.0) + now - self.last, 3)
        self.last = now


# ---------------------------------------------------------------- scoring and output


def evidence_array(
    levels: np.ndarray, per_feature: dict[str, np.ndarray], base: dict[str, np.ndarray]
) -> EvidenceArray:
    """The pairs' evidence JSON as codes (``evidence.EvidenceArray``): each feature's text is
    formatted once per distinct (level, weight, adjustment) and each pair holds its codes."""
    codes = np.empty((len(levels), len(per_feature)), dtype=np.int32)
    pieces = []
    for f, feature in enumerate(per_feature):  # the fixed features, then the model's extras
        w = np.ascontiguousarray(per_feature[feature], dtype=np.float64)
        adj = w - base[feature]
        tf_levels = set(TF_COLUMNS.get(feature, {})) if feature in FEATURES else {"exact"}
        # distinct by bit pattern (-0.0 and 0.0 print differently)
        wc = pd.factorize(w.view(np.int64))[0].astype(np.int64)
        ac = pd.factorize(adj.view(np.int64))[0].astype(np.int64)
        key = (levels[:, f].astype(np.int64) * (int(wc.max(initial=0)) + 1) + wc) * (int(ac.max(initial=0)) + 1) + ac
        inverse, uniques = pd.factorize(key)
        first = np.empty(len(uniques), dtype=np.int64)
        first[inverse[::-1]] = np.arange(len(key))[::-1]
        labels = np.asarray(feature_levels(feature), dtype=object)[levels[first, f]]
        # an adjustment on a TF level is the term-frequency one; on `different` it is the
        # correlated-disagreement correction (moved: new address and new phone count once)
        texts = [
            f'"{feature}": {{"level": "{lab}", "weight": {wt:.3f}'
            + (
                "}"
                if abs(a) <= 1e-9
                else f', "tf_adjustment": {a:.3f}}}'
                if lab in tf_levels
                else f', "correlation_adjustment": {a:.3f}}}'
            )
            for lab, wt, a in zip(labels, w[first].tolist(), adj[first].tolist())
        ]
        codes[:, f] = inverse
        pieces.append(np.array(texts + [""], dtype=object)[:-1])
    return EvidenceArray(codes, pieces)


def _score_numbers(
    tf: dict[str, np.ndarray], lv: np.ndarray, left: np.ndarray, right: np.ndarray, model: dict, matching: dict
) -> tuple[dict[str, int], tuple]:
    """One chunk of candidates scored: the decision counts and, for the pairs at or above
    review only, their numbers (positions, weight, probability, rank, cap, per-feature
    weights) — small to send back from a worker."""
    thresholds, caps = _thresholds(matching), _caps(matching)
    ptf = pair_term_frequencies(tf, left, right, lv)
    weight, prob, per_feature = score_levels(lv, ptf, model, matching)
    rank, cap_name = decide(prob, lv, thresholds, caps)
    counts = {name: int((rank == r).sum()) for r, name in enumerate(("non_match", "review", "match"))}
    counts["capped"] = int((cap_name != "").sum())
    keep = np.flatnonzero(rank > 0)
    features = list(per_feature)
    pf = np.column_stack([per_feature[f][keep] for f in features]) if len(keep) else np.zeros((0, len(features)))
    return counts, (keep, weight[keep], prob[keep], rank[keep], cap_name[keep], pf)


def _pairs_frame(
    keys: np.ndarray | None,
    rule_names: list[str],
    lv: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    mask: np.ndarray,
    numbers: tuple,
    tables: dict[str, np.ndarray],
) -> pd.DataFrame | None:
    """The output rows of one chunk's kept pairs (``keys`` None: their row positions instead
    of their record keys, put in by ``_with_keys``)."""
    keep, weight, prob, rank, cap_name, pf_matrix = numbers
    if not len(keep):
        return None
    labels = np.array(["non_match", "review", "match"], dtype=object)
    features = list(tables)[: pf_matrix.shape[1]]  # the model's features (weight_tables' order)
    lk = _padded(lv[keep], len(features))
    pf = {f: pf_matrix[:, k] for k, f in enumerate(features)}
    base = {f: tables[f][lk[:, k]] for k, f in enumerate(features)}
    return pd.DataFrame(
        {
            "record_key_l": left[keep] if keys is None else keys[left[keep]],
            "record_key_r": right[keep] if keys is None else keys[right[keep]],
            "match_weight": weight.round(4),
            "match_probability": prob,
            "decision": labels[rank],
            "rules": Candidates(left, right, mask, rule_names, pd.DataFrame()).rules_text(mask[keep]),
            "evidence": evidence_array(lk, pf, base),  # codes: the JSON text is joined when read
            "cap": cap_name,
            **{f"w_{f}": pf[f].round(4) for f in FEATURE_NAMES},
        }
    )


def _padded(levels: np.ndarray, width: int) -> np.ndarray:
    """Levels with null columns added for model features the levels were compared without."""
    if levels.shape[1] >= width:
        return levels
    return np.hstack([levels, np.zeros((len(levels), width - levels.shape[1]), levels.dtype)])


def _score_task(lv, left, right, mask, rule_names, model, matching):
    """A chunk scored and its kept pairs' rows made in a worker, with row positions for record
    keys: a worker that read the parent's key strings would write their reference counts and
    copy every page they sit on (≈ 30 MB a worker at 100k customers)."""
    cols = parallel.worker_cols()
    from .model import weight_tables

    tables = weight_tables(model, matching)
    counts: dict[str, int] = {}
    frames = []
    for s, e in parallel.pieces(len(lv)):  # each pair is scored on its own: piece by piece
        c, numbers = _score_numbers(cols["\0tf"], lv[s:e], left[s:e], right[s:e], model, matching)
        counts = {k: counts.get(k, 0) + v for k, v in c.items()}
        frame = _pairs_frame(None, rule_names, lv[s:e], left[s:e], right[s:e], mask[s:e], numbers, tables)
        if frame is not None:
            frames.append(frame)
    return counts, (pd.concat(frames, ignore_index=True) if frames else None)


def _with_keys(frame: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    """A worker's rows (``_score_task``) with the record keys at their row positions."""
    for side in ("record_key_l", "record_key_r"):
        frame[side] = keys[frame[side].to_numpy(dtype=np.int64)]
    return frame


def score_pairs(
    tf: dict[str, np.ndarray],
    keys: np.ndarray,
    cand: Candidates,
    levels: np.ndarray,
    model: dict,
    matching: dict,
    pool: _Pool | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Score every candidate, keep those at or above review, count the rest. With a pool the
    chunks are scored in the workers (given tf at fork), which also make the kept pairs' rows
    and evidence text; only those rows come back, and the pool is shut down (scoring is the
    link's last use of it) before they get their record keys and are concatenated."""
    from .model import weight_tables

    tables = weight_tables(model, matching)
    chunk = int(matching.get("chunk_size", DEFAULT_CHUNK_SIZE))
    bounds = [(s, min(s + chunk, len(levels))) for s in range(0, len(levels), chunk)]
    parallel = pool is not None and pool.usable() and len(bounds) > 1 and "\0tf" in pool.cols
    results: list[Any] = []
    for s, e in bounds:
        if parallel and pool is not None:
            results.append(
                pool.get().submit(
                    _score_task,
                    levels[s:e],
                    cand.left[s:e],
                    cand.right[s:e],
                    cand.rule_mask[s:e],
                    cand.rule_names,
                    model,
                    matching,
                )
            )
        else:
            results.append(_score_numbers(tf, levels[s:e], cand.left[s:e], cand.right[s:e], model, matching))
    if parallel and pool is not None:
        results = [r.result() for r in results]
        pool.close()
    frames, counts = [], {"match": 0, "review": 0, "non_match": 0, "capped": 0}
    for (s, e), r in zip(bounds, results):
        if parallel:
            c, frame = r
            frame = None if frame is None else _with_keys(frame, keys)
        else:
            c, numbers = r
            frame = _pairs_frame(
                keys,
                cand.rule_names,
                levels[s:e],
                cand.left[s:e],
                cand.right[s:e],
                cand.rule_mask[s:e],
                numbers,
                tables,
            )
        for k in counts:
            counts[k] += c[k]
        if frame is not None:
            frames.append(frame)
    pairs = pd.concat(frames, ignore_index=True) if frames else empty_pairs()
    return pairs, counts


def empty_pairs() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in PAIR_COLUMNS})
    for c in ["match_weight", "match_probability"] + [f"w_{f}" for f in FEATURE_NAMES]:
        out[c] = out[c].astype(float)
    return out


def _sorted_positions(records: pd.DataFrame) -> np.ndarray:
    """Row positions of the records by record_key, the last of a repeated key kept."""
    if "record_key" not in records.columns:
        raise CrmcleanError("link: the records frame has no record_key column")
    return sorted_unique_positions(records["record_key"])


def link(
    records: pd.DataFrame,
    rules,
    model: dict | None = None,
    new_keys: set[str] | None = None,
    workers: int = 2,
    restrict: bool = True,
    labels: pd.DataFrame | None = None,
) -> LinkResult:
    """Candidate pairs scored by a Fellegi-Sunter model (trained by EM unless one is given).

    With `new_keys` and a usable model, only the records that can pair with a new one (see
    `near_new`) are prepared and blocked, with value frequencies taken from every record:
    the pairs are the ones linking the whole frame would give (`restrict=False` does that).

    ``labels`` (record_key_l, record_key_r, decision: the stored labels and review decisions,
    ``label.latest_labels``) refine the trained or reused model before scoring (see
    ``_refined``); the result's model stays the unrefined one, so labels never compound.
    """
    with large_arrays_mapped():  # the workers fork inside: they inherit it
        return _link(records, rules, model, new_keys, workers, restrict, labels)


def _link(records, rules, model, new_keys, workers, restrict, labels) -> LinkResult:
    """link() (its arguments), with large arrays mapped."""
    matching = dict(getattr(rules, "matching", None) or {})
    _thresholds(matching), _caps(matching)  # rules errors before any work
    laps = _Laps()
    # only the key and the compared columns are read, a column at a time: no copy of the frame
    extras = tuple(c for c in extra_columns(records.columns, matching) if location_in_disguise(records, c) is None)
    frame = records
    near = None
    shape = tuple(extra_feature(c) for c in extras)  # an incremental run's slim set holds them too
    # every key present once (an incremental working set is): no count or filter copies the frame
    once = "record_key" in frame.columns and frame["record_key"].is_unique and frame["record_key"].notna().all()
    verdict = reuse_verdict(
        model,
        len(frame) if once or "record_key" not in frame.columns else int(frame["record_key"].nunique()),
        matching,
        shape,
    )
    if verdict:
        model = None
    if new_keys is not None and restrict and model is not None:
        if "record_key" not in frame.columns:
            raise CrmcleanError("link: the records frame has no record_key column")
        frame = records[[c for c in ("record_key", *COMPARE_COLUMNS, *extras) if c in records.columns]]
        if not once:
            frame = frame[frame["record_key"].notna()].drop_duplicates("record_key", keep="last")
        near = near_new(
            frame,
            matching,
            pd.Index(list(new_keys), dtype=object).get_indexer(frame["record_key"].astype(str)) >= 0,
            extras,
        )
    if near is not None:  # the records near new ones, sorted, shared values nulled globally
        frame, is_new, tf, usable, largest = near
        keys = frame["record_key"].astype(str).to_numpy(dtype=object)
        n = len(frame)
        cols: dict[str, Any] = prepare_columns(frame, shared_value_limit=None, extras=extras, compact=True)
        cand = _block_usable(cols, matching, is_new, usable, largest)
    else:
        rows = _sorted_positions(frame)
        keys = frame["record_key"].take(rows).astype(str).to_numpy(dtype=object)
        n = len(rows)
        is_new = None
        if new_keys is not None:
            is_new = (
                pd.Index(list(new_keys), dtype=object).get_indexer(keys) >= 0 if len(new_keys) else np.zeros(n, bool)
            )
        limit = _shared_value_limit(matching)
        cols = prepare_columns(frame, shared_value_limit=limit, extras=extras, compact=True, rows=rows)
        # identical-group sizes once: the tf weights, blocking and training all read them
        sizes = identical_sizes(cols)
        largest = int(sizes.max(initial=0))
        tf = term_frequencies(cols, sizes)
    cols[SETTINGS_KEY] = compare_settings(matching)
    chunk = int(matching.get("chunk_size", DEFAULT_CHUNK_SIZE))
    # from here only the prepared arrays are read (texts in Arrow buffers: neither the workers
    # nor this process write to them): an incremental run's copy of the rows near new ones
    # goes before the workers fork and the candidates are made
    restricted = near is not None
    del frame, near
    laps.lap("prepare")
    # one worker pool for blocking (large frames), comparing and scoring; columns and tf are
    # inherited at fork
    pool = _Pool({**cols, "\0tf": tf}, max(int(workers or 1), 1))
    try:
        if not restricted:
            parallel = pool.usable() and n >= PARALLEL_BLOCKING_RECORDS
            cand = block(cols, matching, is_new, pool.run_rules if parallel else None, largest_group=largest)
        laps.lap("block")
        result = _link_rest(
            cols, cand, keys, tf, n, is_new, model, matching, chunk, pool, laps, labels=labels, largest=largest
        )
        # how the model came to be, beside it (not in it: a reused model is saved unchanged)
        result.usage = {
            "mode": "reused" if model is not None else "trained",
            "why": "the saved model fits this data" if model is not None else verdict,
            "records": int(n),
            "labels": result.usage.get("labels", 0),
        }
    finally:
        pool.close()
    laps.lap("score")
    result.timings = dict(laps)
    return result


def _labelled_levels(cols: dict, keys: np.ndarray, labels: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(levels, match or not) of the labelled pairs whose two records are both in this frame:
    only those pairs are compared (a few hundred), not the candidates again."""
    empty = np.zeros((0, len(FEATURE_NAMES) + len(extras_in(cols))), dtype=np.int8), np.zeros(0, dtype=bool)
    if labels is None or not len(labels) or not len(keys):
        return empty
    labels = labels[labels["decision"].isin(["match", "no_match"])]
    index = pd.Index(keys)
    left = index.get_indexer(labels["record_key_l"].astype(str))
    right = index.get_indexer(labels["record_key_r"].astype(str))
    ok = (left >= 0) & (right >= 0) & (left != right)
    if not ok.any():
        return empty
    from .compare import compare_pairs

    levels = compare_pairs(cols, left[ok], right[ok], cols.get(SETTINGS_KEY))
    return levels, labels["decision"].to_numpy()[ok] == "match"


def _refined(model: dict, cols: dict, keys: np.ndarray, labels: pd.DataFrame | None) -> tuple[dict, int]:
    """The model refined by the labelled pairs (label.refine_model, method fs) and how many
    labels it used; the model itself when there are none."""
    levels, y = _labelled_levels(cols, keys, labels)
    if not len(y):
        return model, 0
    from .refine import refined_by_labels

    return refined_by_labels(model, levels, y), int(len(y))


def _train_and_score(
    cols, cand, keys, tf, n, is_new, model, matching, chunk, pool, candidate_levels, laps, labels, largest
) -> tuple[dict, pd.DataFrame, dict[str, int], int]:
    """The model (trained unless given; refined by labels) and the scored pairs' rows and counts."""
    if model is None:
        # the training pairs are chosen here while the workers compare the candidates; the
        # training pairs not among the candidates are queued behind them
        plan = plan_training(cols, matching, cand, complete=is_new is None, largest_group=largest)
        fresh = _levels_later(cols, plan["todo_l"], plan["todo_r"], chunk, pool)()
        levels = candidate_levels()
        if laps is not None:
            laps.lap("compare")
        if is_new is None:
            possible = n * (n - 1) / 2
        else:
            k = int(is_new.sum())
            possible = k * (n - k) + k * (k - 1) / 2
        model = train_from_levels(plan, levels, fresh, possible, matching)
        del plan, fresh  # the training sample (≈ 20 MB) is not scored: gone before scoring
        model["training"] = {**(model.get("training") or {}), "largest_identical_group": largest}
        if laps is not None:
            laps.lap("train")
    else:
        levels = candidate_levels()
        model = dict(model)
        model["thresholds"] = _thresholds(matching)
        if laps is not None:
            laps.lap("compare")
    scoring, used = _refined(model, cols, keys, labels)
    pairs, counts = score_pairs(tf, keys, cand, levels, scoring, matching, pool)
    return model, pairs, counts, used


def _link_rest(
    cols,
    cand,
    keys,
    tf,
    n,
    is_new,
    model,
    matching,
    chunk,
    pool,
    laps=None,
    labels: pd.DataFrame | None = None,
    largest: int = 0,
) -> LinkResult:
    """link() after blocking: compare, train unless a model is given, refine by labels, score.
    ``largest``: the records' largest identical group (blocking.largest_identical_group)."""
    # with workers, the candidates' levels wait in a file (parallel.LevelFile, removed when let
    # go) from comparing to the end of scoring
    candidate_levels = _levels_later(cols, cand.left, cand.right, chunk, pool, on_disk=True)
    model, pairs, counts, used = _train_and_score(
        cols, cand, keys, tf, n, is_new, model, matching, chunk, pool, candidate_levels, laps, labels, largest
    )
    summary = cand.summary.copy()
    total = {
        "rule": "total",
        "method": "union",
        "pairs": int(len(cand.left)),
        "largest_block": int(summary["largest_block"].max()) if len(summary) else 0,
        "skipped_keys": int(summary["skipped_keys"].sum()) if len(summary) else 0,
        "skipped_records": int(summary["skipped_records"].sum()) if len(summary) else 0,
        "skipped_examples": "",
        **counts,
    }
    summary = pd.concat([summary, pd.DataFrame([total])], ignore_index=True)
    for c in ("match", "review", "non_match", "capped"):
        summary[c] = summary[c].astype("Int64")
    return LinkResult(pairs=pairs, model=model, blocking_summary=summary, usage={"labels": used})
