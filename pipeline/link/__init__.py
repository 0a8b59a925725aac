"""Link stage: blocking → comparison → Fellegi-Sunter scoring → decisions (see docs/matching.md).

``link`` never builds all pairs: blocking rules propose candidates, features are computed in
bounded chunks (optionally over a process pool), and only pairs at or above the review
threshold are returned — non-matches are counted in the summary, not kept.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import CrmcleanError, RulesError
from ..keys import sorted_unique_positions
from .blocking import DEFAULT_MAX_BLOCK_SIZE, DEFAULT_RULES, Candidates, _key_texts, block, rule_codes, rule_columns, rule_pairs
from .compare import (
    COMPARE_COLUMNS,
    FEATURE_NAMES,
    FEATURES,
    SHARED_VALUE_COLUMNS,
    TF_COLUMNS,
    codes_and_texts,
    compare_pairs,
    compare_settings,
    pair_term_frequencies,
    prepare_columns,
    term_frequencies,
)
from .family import DEFAULT_NOISE_SIGMAS, FAMILY_BLOCKING_RULES, fit_family, matches_null_share
from .model import (
    _level_caps,
    build_model,
    neutral_u,
    estimate_u,
    levels_frame,
    model_compatible,
    model_summary,
    reuse_verdict,
    run_em,
    sample_random_pairs,
    score_levels,
    train_supervised,
)

__all__ = [
    "DEFAULT_CAPS",
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

DEFAULT_THRESHOLDS = {"match": 0.99, "review": 0.6}
DEFAULT_CHUNK_SIZE = 200_000
PARALLEL_BLOCKING_RECORDS = 50_000  # below this, starting the workers costs more than blocking
DEFAULT_U_SAMPLE = 500_000
# Facts that hold for any customer data, whatever the score (rules/matching.yaml
# `hard_constraints`; each is named in the pairs' `cap` column where it lowers a decision).
# Everything else — twins, households, relatives, common names — is evidence the model learns
# per data set (link/family.py), not a rule.
DEFAULT_HARD_CONSTRAINTS: list[dict] = [
    # Jr vs Sr (or II vs III): two generations sharing name, address and phone.
    {"name": "generation_conflict", "when": {"suffix": ["conflict"]}, "decision": "non_match"},
    # Birth dates a decade or more apart (not one typo: one digit, neighbours swapped, day/month
    # swapped) are two generations — unless a personal identifier is shared: typed data (FEBRL)
    # turns a year into another decade in true duplicates that keep their national id.
    {
        "name": "birth_dates_decades_apart",
        "when": {"birth_date": ["years_apart"], "national_id": ["null", "one_edit", "different"],
                 "email": ["null", "fuzzy_local", "different"], "phone": ["null", "landline_exact", "different"]},
        "decision": "review",
    },
]
# user caps (rules/matching.yaml `caps`): none by default
DEFAULT_CAPS: list[dict] = []
DECISION_RANK = {"non_match": 0, "review": 1, "match": 2}
PAIR_COLUMNS = (
    ["record_key_l", "record_key_r", "match_weight", "match_probability", "decision", "rules", "evidence", "cap"]
    + [f"w_{f}" for f in FEATURE_NAMES]
)


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
        now = time.perf_counter()
        self[name] = round(self.get(name, 0.0) + now - self.last, 3)
        self.last = now


# ---------------------------------------------------------------- comparison, chunked/parallel

SETTINGS_KEY = "\0compare"  # the comparison thresholds, carried in the column dict to the workers

_WORKER_COLS: dict[str, np.ndarray] | None = None


def _init_worker(cols: dict[str, np.ndarray]) -> None:
    global _WORKER_COLS
    _WORKER_COLS = cols


def _compare_chunk(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    assert _WORKER_COLS is not None
    return compare_pairs(_WORKER_COLS, left, right, _WORKER_COLS.get(SETTINGS_KEY))


def _rule_task(rule: dict, b: int, max_block: int, is_new: np.ndarray | None):
    assert _WORKER_COLS is not None
    return rule_pairs(_WORKER_COLS, rule, b, max_block, is_new)


class _Pool:
    """One fork pool for a whole link() call (comparison, then scoring), started on first use.
    fork: the column arrays (and, once set, the scoring inputs) are inherited, not pickled."""

    def __init__(self, cols: dict[str, np.ndarray], workers: int):
        self.cols, self.workers, self.executor = cols, workers, None

    def usable(self) -> bool:
        return self.workers > 1 and "fork" in mp.get_all_start_methods()

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            # The parent's objects are frozen out of the garbage collector while the workers
            # fork: a collection in a child writes to the header of every object it visits,
            # and copying those pages cost more than the blocking itself (1.5 s at 365k rows).
            gc.freeze()
            try:
                self.executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=mp.get_context("fork"), initializer=_init_worker,
                    initargs=(self.cols,)
                )
                self.executor.submit(int).result()  # the workers fork now, while frozen
            finally:
                gc.unfreeze()
        return self.executor

    def run_rules(self, rules: list[dict], max_block: int, is_new: np.ndarray | None) -> list:
        """Blocking rules spread over the workers (for ``block``), results in rule order."""
        futures = [self.get().submit(_rule_task, rule, b, max_block, is_new) for b, rule in enumerate(rules)]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None


def compute_levels(
    cols: dict[str, np.ndarray], left: np.ndarray, right: np.ndarray, chunk_size: int, workers: int,
    pool: _Pool | None = None,
) -> np.ndarray:
    """Level matrix for all pairs, chunk by chunk; worker processes for large inputs."""
    own = pool is None
    pool = pool or _Pool(cols, workers)
    try:
        return _levels_later(cols, left, right, chunk_size, pool)()
    finally:
        if own:
            pool.close()


def _levels_later(cols: dict[str, np.ndarray], left: np.ndarray, right: np.ndarray, chunk_size: int, pool: _Pool):
    """compute_levels started in the pool's workers; returns a function that waits for the
    level matrix (the parent works on meanwhile). Without usable workers, computed now."""
    n = len(left)
    out = np.empty((n, len(FEATURE_NAMES)), dtype=np.int8)
    bounds = [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    if not (pool.usable() and len(bounds) > 1):
        for s, e in bounds:
            out[s:e] = compare_pairs(cols, left[s:e], right[s:e], cols.get(SETTINGS_KEY))
        return lambda: out
    futures = [(s, e, pool.get().submit(_compare_chunk, left[s:e], right[s:e])) for s, e in bounds]

    def wait() -> np.ndarray:
        for s, e, fut in futures:
            out[s:e] = fut.result()
        return out

    return wait


# ---------------------------------------------------------------- training


DEFAULT_TRAINING_RULES: list[dict] = [
    {"name": "train_birth_date", "columns": ["birth_date_std"]},
    {"name": "train_name", "columns": ["name_key"]},
    {"name": "train_email", "columns": ["email_key"]},
    {"name": "train_phone", "columns": ["phone_std"]},
]
DEFAULT_TRAINING_MAX_PAIRS = 300_000
# which comparison features a blocking column forces to agree (left out of that EM session)
COLUMN_FEATURES = {
    "first_name_key": ("first_name",),
    "last_name_key": ("last_name",),
    "name_key": ("first_name", "last_name"),
    "birth_date_std": ("birth_date",),
    "email_key": ("email",),
    "mobile_std": ("phone",),
    "landline_std": ("phone",),
    "phone_std": ("phone",),
    "address_std": ("address",),
    "postal_code_std": ("address",),
    "city_std": ("address",),
    "name_suffix_std": ("suffix",),
    "gender_std": ("gender",),
    "national_id_std": ("national_id",),
}


def _blocked_features(rule: dict) -> set[str]:
    parts = rule_columns(rule)
    return {f for p in parts for f in COLUMN_FEATURES.get(str(p).partition(":")[0], ())}


def _known_levels(known: Candidates | None, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(position in ``known`` or -1) per pair: the candidates' levels are already computed
    (a training rule on the same column as a blocking rule proposes the same pairs)."""
    pos = np.full(len(left), -1, dtype=np.int64)
    if known is None or not len(known.left) or not len(left):
        return pos
    n = int(max(known.right.max(), right.max())) + 1
    have = known.left.astype(np.int64) * n + known.right  # sorted: blocking unions by pair id
    want = left.astype(np.int64) * n + right
    at = np.searchsorted(have, want).clip(max=len(have) - 1)
    hit = have[at] == want
    pos[hit] = at[hit]
    return pos


def plan_training(cols: dict[str, np.ndarray], matching: dict, cand: Candidates | None, complete: bool) -> dict:
    """The pairs EM training looks at, chosen before any comparison (so that the pairs still
    to compare, ``todo_l``/``todo_r``, can go to the workers with the candidates): random
    pairs for u, and per training rule its pairs (sampled down to training_max_pairs)."""
    n = len(next(iter(cols.values())))
    seed = int(matching.get("seed", 42))
    ri, rj = sample_random_pairs(n, int(matching.get("u_sample_pairs", DEFAULT_U_SAMPLE)), seed)
    max_pairs = int(matching.get("training_max_pairs", DEFAULT_TRAINING_MAX_PAIRS))
    rng = np.random.default_rng(seed)
    blocking_cfg = matching.get("blocking") or {}
    max_block = blocking_cfg.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE)
    same_rule = {}  # a training rule that is also a blocking rule: its pairs are the candidates with its bit
    if cand is not None and complete:
        for b, r in enumerate(blocking_cfg.get("rules") or DEFAULT_RULES):
            if r.get("method", "block") == "block":
                same_rule.setdefault(tuple(rule_columns(r)), b)
    sessions = []  # (rule, rows in cand | None, left, right, pairs found)
    for rule in matching.get("training_rules") or DEFAULT_TRAINING_RULES:
        b = same_rule.get(tuple(rule_columns(rule))) if rule.get("method", "block") == "block" else None
        if b is not None:
            rows = np.flatnonzero(cand.rule_mask & (1 << b))  # sorted by pair id, as block() returns them
            left, right = cand.left[rows], cand.right[rows]
        else:
            one = block(cols, {"blocking": {"rules": [rule], "max_block_size": max_block}})
            rows, left, right = None, one.left, one.right
        if len(left) < 20:
            sessions.append((rule, None, None, None, int(len(left))))
            continue
        take = np.arange(len(left))
        if len(take) > max_pairs:
            take = np.sort(rng.choice(len(take), size=max_pairs, replace=False))
        sessions.append((rule, None if rows is None else rows[take], left[take], right[take], 0))
    # every pair that can fall in a look-alike cell (see family.py): same surname and birth date or address
    fam = block(cols, {"blocking": {"rules": FAMILY_BLOCKING_RULES, "max_block_size": max_block}})
    # pairs whose levels are not known yet: the random pairs, session pairs not among the
    # candidates, and the look-alike pairs
    extra = ([(ri, rj)] + [(s[2], s[3]) for s in sessions if s[2] is not None and s[1] is None]
             + [(fam.left, fam.right)])
    all_l = np.concatenate([e[0] for e in extra]).astype(np.int64)
    all_r = np.concatenate([e[1] for e in extra]).astype(np.int64)
    pos = np.full(len(all_l), -1, dtype=np.int64)
    pos[len(ri):] = _known_levels(cand, all_l[len(ri):], all_r[len(ri):])
    todo = np.flatnonzero(pos < 0)
    return {"n": n, "n_random": len(ri), "sessions": sessions, "pos": pos, "todo": todo,
            "todo_l": all_l[todo], "todo_r": all_r[todo], "n_family": len(fam.left)}


def train_from_levels(plan: dict, levels: np.ndarray, fresh: np.ndarray, n_possible_pairs: float, matching: dict) -> dict:
    """The model from the candidates' ``levels`` and the levels of the plan's pairs to compare.

    Below the training minimum (too few records or candidate pairs) m and u are the neutral
    priors of model.neutral_m / neutral_u, the model says so and is never reused."""
    max_iter = int(matching.get("em_max_iterations", 60))
    pos, todo = plan["pos"], plan["todo"]
    all_lv = np.empty((len(pos), len(FEATURE_NAMES)), dtype=np.int8)
    all_lv[pos >= 0] = levels[pos[pos >= 0]]
    all_lv[todo] = fresh
    random_lv = all_lv[: plan["n_random"]]
    minimum = training_minimum(matching)
    short = _too_little_evidence(plan["n"], len(levels), minimum)
    u = estimate_u(random_lv) if not short else {f: neutral_u(f) for f in FEATURE_NAMES}
    m_final, sessions, learnt = _m_by_sessions(plan, levels, all_lv, u, max_iter, minimum, matching) if not short else (
        {f: _default_m(f) for f in FEATURE_NAMES}, [], [])
    if short:
        lam_blocked, prior = 0.0, float(matching.get("prior") or NEUTRAL_PRIOR)
    else:
        _, lam_blocked, _ = run_em(levels, u, max_iter=max_iter, m_start=m_final, update_m=False) if len(levels) else (
            None, 0.0, 0)
        prior = matching.get("prior")
        if prior is None:
            prior = lam_blocked * len(levels) / n_possible_pairs if n_possible_pairs > 0 else 1e-6
    prior = float(min(max(prior, 1e-12), 0.5))
    n = plan["n"]
    all_pairs = n * (n - 1) / 2
    family = {"cells": {}}
    if not short:
        fam_lv = all_lv[len(pos) - plan["n_family"]:]
        null_share = {f: float((random_lv[:, k] == 0).mean()) if len(random_lv) else 0.0 for k, f in enumerate(FEATURE_NAMES)}
        null_share_m = matches_null_share(levels, m_final, u, lam_blocked, null_share)
        family = {"pairs": int(plan["n_family"]),
                  "cells": fit_family(fam_lv, m_final, u, null_share, null_share_m, prior, all_pairs,
                                      float(matching.get("family_noise_sigmas", DEFAULT_NOISE_SIGMAS)),
                                      _level_caps(matching))}
    training = {
        "method": "em" if not short else "neutral_priors",
        "trained": not short,
        "why": short or "trained by EM on this data",
        "records": int(n),
        "blocked_pairs": int(len(levels)),
        "u_sample_pairs": int(plan["n_random"]),
        "sessions": sessions,
        "learnt_m": learnt,
        "default_m": [f for f in FEATURE_NAMES if f not in learnt],
        "lambda_blocked": round(float(lam_blocked), 8),
        "expected_matches": round(float(prior * all_pairs), 1),
        "minimum": minimum,
    }
    model = build_model(m_final, u, prior, _thresholds(matching), training)
    model["family"] = family
    model["compare"] = compare_settings(matching)
    return model


def _m_by_sessions(plan, levels, all_lv, u, max_iter, minimum, matching):
    """m per feature: EM per training session on the features its rule does not block, averaged
    over the sessions that saw at least ``pairs_per_level`` pairs with the feature present."""
    estimates: dict[str, list[np.ndarray]] = {f: [] for f in FEATURE_NAMES}
    sessions = []
    start = plan["n_random"]
    need = int(minimum["pairs_per_level"])
    for rule, rows, left, _, few in plan["sessions"]:
        if left is None:
            sessions.append({"rule": rule.get("name"), "pairs": few, "used": False})
            continue
        if rows is not None:  # levels taken from the candidates
            lv = levels[rows]
        else:
            lv = all_lv[start : start + len(left)]
            start += len(left)
        feats = [f for f in FEATURE_NAMES if f not in _blocked_features(rule) and (lv[:, FEATURE_NAMES.index(f)] > 0).any()]
        if not feats:
            continue
        m, lam, it = run_em(lv, u, max_iter=max_iter, features=feats, m_start=_em_start(matching, feats))
        m = _given_name_m_among_other_surnames(lv, u, m, feats, max_iter, need)
        for f in feats:
            if (lv[:, FEATURE_NAMES.index(f)] > 0).sum() >= need:
                estimates[f].append(m[f])
        sessions.append({"rule": rule.get("name"), "pairs": int(len(left)), "lambda": round(lam, 6), "iterations": it,
                         "estimated": feats})
    m_final = {f: np.mean(estimates[f], axis=0) if estimates[f] else _default_m(f) for f in FEATURE_NAMES}
    return m_final, sessions, [f for f in FEATURE_NAMES if estimates[f]]


def _given_name_m_among_other_surnames(lv, u, m, feats, max_iter, need):
    """m of the given name re-estimated on the session's pairs whose surnames are not the same:
    twins and siblings share the surname, so among same-surname pairs EM takes them for
    duplicates with a changed given name and m(different) absorbs them. A true duplicate's
    given-name error does not depend on its surname, so pairs with other surnames (typos,
    marriage, strangers) estimate it without relatives."""
    if "first_name" not in feats or "last_name" not in feats:
        return m
    other = lv[:, FEATURE_NAMES.index("last_name")] != FEATURES["last_name"].index("exact")
    sub = lv[other]
    if (sub[:, FEATURE_NAMES.index("first_name")] > 0).sum() < need:
        return m
    m_other, lam, _ = run_em(sub, u, max_iter=max_iter, features=feats, m_start=m)
    if lam * len(sub) < need:  # too few duplicates with another surname to learn from
        return m
    return {**m, "first_name": m_other["first_name"]}


def _em_start(matching: dict, feats: list[str]) -> dict | None:
    """EM's starting m per feature from ``em_start_m`` ({feature: [m per level]}), when given."""
    start = matching.get("em_start_m") or {}
    out = {}
    for f in feats:
        v = start.get(f)
        if isinstance(v, (list, tuple)) and len(v) == len(FEATURES[f]) - 1:
            out[f] = np.asarray(v, float) / max(float(np.sum(v)), 1e-12)
    return out or None


DEFAULT_TRAINING_MINIMUM = {"records": 50, "candidate_pairs": 20, "pairs_per_level": 20, "growth_factor": 2.0}
NEUTRAL_PRIOR = 1e-4  # prior match probability of an untrained model


def training_minimum(matching: dict) -> dict:
    """The evidence training needs (``training_minimum`` in rules/matching.yaml)."""
    out = dict(DEFAULT_TRAINING_MINIMUM)
    out.update({k: v for k, v in (matching.get("training_minimum") or {}).items() if k in out and v is not None})
    return out


def _too_little_evidence(records: int, candidate_pairs: int, minimum: dict) -> str:
    """Why the data is too small to train on, or '' when it is not."""
    if records < int(minimum["records"]):
        return f"only {records} records (training needs {int(minimum['records'])}): neutral priors used"
    if candidate_pairs < int(minimum["candidate_pairs"]):
        return (f"only {candidate_pairs} candidate pairs (training needs {int(minimum['candidate_pairs'])}): "
                "neutral priors used")
    return ""


def _default_m(feature: str) -> np.ndarray:
    from .model import _initial_m

    return _initial_m(feature)


def _shared_value_limit(matching: dict) -> int | None:
    """Contact values held by more records than this count as missing (default: the blocking
    max_block_size); 0 turns it off."""
    limit = matching.get("shared_value_limit")
    if limit is None:
        from .blocking import DEFAULT_MAX_BLOCK_SIZE

        limit = (matching.get("blocking") or {}).get("max_block_size", DEFAULT_MAX_BLOCK_SIZE)
    return int(limit) or None


def _thresholds(matching: dict) -> dict:
    t = dict(DEFAULT_THRESHOLDS)
    t.update(matching.get("thresholds") or {})
    try:
        t = {k: float(v) for k, v in t.items()}
    except (TypeError, ValueError):
        raise RulesError("rules/matching.yaml", "thresholds.match and thresholds.review must be numbers") from None
    if not 0 < t["review"] <= t["match"] < 1:
        raise RulesError("rules/matching.yaml", "thresholds must satisfy 0 < review <= match < 1")
    return t


def _caps(matching: dict) -> list[dict]:
    """The hard constraints, then the user's caps: both lower a decision whatever the score."""
    hard = matching.get("hard_constraints", DEFAULT_HARD_CONSTRAINTS) or []
    caps = list(hard) + list(matching.get("caps", DEFAULT_CAPS) or [])
    for c in caps:
        when = c.get("when") if isinstance(c, dict) else None
        if not isinstance(when, dict) or c.get("decision") not in DECISION_RANK:
            raise RulesError("rules/matching.yaml", f"cap {c!r} needs 'when' (feature: [levels]) and 'decision' (review|non_match)")
        for feature, labels in when.items():
            if feature not in FEATURES or any(l not in FEATURES[feature] for l in labels):
                raise RulesError("rules/matching.yaml", f"cap {c.get('name')!r}: unknown feature or level in {feature}: {labels}")
    return caps


# ---------------------------------------------------------------- scoring and output


def decide(prob: np.ndarray, levels: np.ndarray, thresholds: dict, caps: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Decision rank per pair (threshold, then lowered by any matching cap) and the cap name."""
    rank = np.where(prob >= thresholds["match"], 2, np.where(prob >= thresholds["review"], 1, 0)).astype(np.int8)
    cap_name = np.full(len(prob), "", dtype=object)
    for c in caps:
        hit = np.ones(len(prob), dtype=bool)
        for feature, labels in c["when"].items():
            f = FEATURE_NAMES.index(feature)
            allowed = np.zeros(len(FEATURES[feature]), dtype=bool)  # a lookup, not np.isin
            allowed[[FEATURES[feature].index(l) for l in labels]] = True
            hit &= allowed[levels[:, f]]
        limit = DECISION_RANK[c["decision"]]
        lowered = hit & (rank > limit)
        rank[lowered] = limit
        cap_name[lowered] = c.get("name", "cap")
    return rank, cap_name


def evidence_json(levels: np.ndarray, per_feature: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> list[str]:
    """{feature: {"level", "weight"[, "tf_adjustment"]}} as JSON text, one per pair. Each
    feature's text is formatted once per distinct (level, weight, adjustment)."""
    columns = []
    for f, feature in enumerate(FEATURE_NAMES):
        w = np.ascontiguousarray(per_feature[feature], dtype=np.float64)
        adj = w - base[feature]
        tf_levels = set(TF_COLUMNS.get(feature, {}))
        # distinct by bit pattern (-0.0 and 0.0 print differently)
        wc = pd.factorize(w.view(np.int64))[0].astype(np.int64)
        ac = pd.factorize(adj.view(np.int64))[0].astype(np.int64)
        key = (levels[:, f].astype(np.int64) * (int(wc.max(initial=0)) + 1) + wc) * (int(ac.max(initial=0)) + 1) + ac
        inverse, uniques = pd.factorize(key)
        first = np.empty(len(uniques), dtype=np.int64)
        first[inverse[::-1]] = np.arange(len(key))[::-1]
        labels = np.asarray(FEATURES[feature], dtype=object)[levels[first, f]]
        # an adjustment on a TF level is the term-frequency one; on `different` it is the
        # correlated-disagreement correction (moved: new address and new phone count once)
        texts = np.array(
            [
                f'"{feature}": {{"level": "{lab}", "weight": {wt:.3f}'
                + (
                    "}"
                    if abs(a) <= 1e-9
                    else f', "tf_adjustment": {a:.3f}}}' if lab in tf_levels else f', "correlation_adjustment": {a:.3f}}}'
                )
                for lab, wt, a in zip(labels, w[first].tolist(), adj[first].tolist())
            ]
            + [""],
            dtype=object,
        )[:-1][inverse]
        columns.append(texts)
    # one join of all the pieces, interleaved by slice assignment, then one split per row
    n = len(levels)
    flat: list = [", "] * (2 * len(columns) * n)
    for k, texts in enumerate(columns):
        flat[2 * k :: 2 * len(columns)] = texts.tolist()
    flat[2 * len(columns) - 1 :: 2 * len(columns)] = ["}\x1e{"] * n
    return ("{" + "".join(flat)[:-2]).split("\x1e")[: n] if n else []


def _score_numbers(tf: dict[str, np.ndarray], lv: np.ndarray, left: np.ndarray, right: np.ndarray, model: dict,
                   matching: dict) -> tuple[dict[str, int], tuple]:
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
    pf = np.column_stack([per_feature[f][keep] for f in FEATURE_NAMES]) if len(keep) else np.zeros((0, len(FEATURE_NAMES)))
    return counts, (keep, weight[keep], prob[keep], rank[keep], cap_name[keep], pf)


def _pairs_frame(keys: np.ndarray, rule_names: list[str], lv: np.ndarray, left: np.ndarray, right: np.ndarray,
                 mask: np.ndarray, numbers: tuple, tables: dict[str, np.ndarray]) -> pd.DataFrame | None:
    """The output rows of one chunk's kept pairs."""
    keep, weight, prob, rank, cap_name, pf_matrix = numbers
    if not len(keep):
        return None
    labels = np.array(["non_match", "review", "match"], dtype=object)
    lk = lv[keep]
    pf = {f: pf_matrix[:, k] for k, f in enumerate(FEATURE_NAMES)}
    base = {f: tables[f][lk[:, k]] for k, f in enumerate(FEATURE_NAMES)}
    return pd.DataFrame(
        {
            "record_key_l": keys[left[keep]],
            "record_key_r": keys[right[keep]],
            "match_weight": weight.round(4),
            "match_probability": prob,
            "decision": labels[rank],
            "rules": Candidates(left, right, mask, rule_names, pd.DataFrame()).rules_text(mask[keep]),
            "evidence": np.array(evidence_json(lk, pf, base) + [None], dtype=object)[:-1],  # no inference pass
            "cap": cap_name,
            **{f"w_{f}": pf[f].round(4) for f in FEATURE_NAMES},
        }
    )


def _score_task(lv, left, right, mask, rule_names, model, matching):
    """A chunk scored and its kept pairs' rows made in a worker (the parent only concatenates)."""
    assert _WORKER_COLS is not None
    from .model import weight_tables

    counts, numbers = _score_numbers(_WORKER_COLS["\0tf"], lv, left, right, model, matching)
    frame = _pairs_frame(_WORKER_COLS["\0keys"], rule_names, lv, left, right, mask, numbers,
                         weight_tables(model, matching))
    return counts, frame


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
    chunks are scored in the workers (given tf and keys at fork), which also make the kept
    pairs' rows and evidence text; only those rows come back."""
    from .model import weight_tables

    tables = weight_tables(model, matching)
    chunk = int(matching.get("chunk_size", DEFAULT_CHUNK_SIZE))
    bounds = [(s, min(s + chunk, len(levels))) for s in range(0, len(levels), chunk)]
    parallel = (pool is not None and pool.usable() and len(bounds) > 1 and "\0tf" in pool.cols
                and "\0keys" in pool.cols)
    results = []
    for s, e in bounds:
        if parallel:
            results.append(pool.get().submit(_score_task, levels[s:e], cand.left[s:e], cand.right[s:e],
                                             cand.rule_mask[s:e], cand.rule_names, model, matching))
        else:
            results.append(_score_numbers(tf, levels[s:e], cand.left[s:e], cand.right[s:e], model, matching))
    frames, counts = [], {"match": 0, "review": 0, "non_match": 0, "capped": 0}
    for (s, e), r in zip(bounds, results):
        if parallel:
            c, frame = r.result()
        else:
            c, numbers = r
            frame = _pairs_frame(keys, cand.rule_names, levels[s:e], cand.left[s:e], cand.right[s:e],
                                 cand.rule_mask[s:e], numbers, tables)
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


def _sorted_records(records: pd.DataFrame) -> pd.DataFrame:
    if "record_key" not in records.columns:
        raise CrmcleanError("link: the records frame has no record_key column")
    # the order is worked out on the key column alone, then the frame is taken once
    out = records.take(sorted_unique_positions(records["record_key"]))
    out.index = pd.RangeIndex(len(out))
    return out


def link(
    records: pd.DataFrame,
    rules,
    model: dict | None = None,
    new_keys: set[str] | None = None,
    workers: int = 2,
    restrict: bool = True,
) -> LinkResult:
    """Candidate pairs scored by a Fellegi-Sunter model (trained by EM unless one is given).

    With `new_keys` and a usable model, only the records that can pair with a new one (see
    `near_new`) are prepared and blocked, with value frequencies taken from every record:
    the pairs are the ones linking the whole frame would give (`restrict=False` does that).
    """
    matching = dict(getattr(rules, "matching", None) or {})
    _thresholds(matching), _caps(matching)  # rules errors before any work
    laps = _Laps()
    # only the key and the compared columns are read: no copy of a wide working set
    frame = records[[c for c in ("record_key", *COMPARE_COLUMNS) if c in records.columns]]
    near = None
    verdict = reuse_verdict(model, int(frame["record_key"].nunique()) if "record_key" in frame.columns else len(frame),
                            matching)
    if verdict:
        model = None
    if new_keys is not None and restrict and model is not None:
        if "record_key" not in frame.columns:
            raise CrmcleanError("link: the records frame has no record_key column")
        frame = frame[frame["record_key"].notna()].drop_duplicates("record_key", keep="last")
        near = near_new(frame, matching, pd.Index(list(new_keys), dtype=object).get_indexer(
            frame["record_key"].astype(str)) >= 0)
    if near is not None:  # the records near new ones, sorted, shared values nulled globally
        frame, is_new, tf, usable = near
        keys = frame["record_key"].astype(str).to_numpy(dtype=object)
        n = len(frame)
        cols = prepare_columns(frame, shared_value_limit=None)
        cand = _block_usable(cols, matching, is_new, usable)
    else:
        frame = _sorted_records(frame)
        keys = frame["record_key"].astype(str).to_numpy(dtype=object)
        n = len(frame)
        is_new = None
        if new_keys is not None:
            is_new = pd.Index(list(new_keys), dtype=object).get_indexer(keys) >= 0 if len(new_keys) else np.zeros(
                n, bool)
        cols = prepare_columns(frame, shared_value_limit=_shared_value_limit(matching))
        tf = term_frequencies(cols)
    cols[SETTINGS_KEY] = compare_settings(matching)
    chunk = int(matching.get("chunk_size", DEFAULT_CHUNK_SIZE))
    laps.lap("prepare")
    # one worker pool for blocking (large frames), comparing and scoring; columns, tf and keys
    # are inherited at fork
    pool = _Pool({**cols, "\0tf": tf, "\0keys": keys}, max(int(workers or 1), 1))
    try:
        if near is None:
            parallel = pool.usable() and n >= PARALLEL_BLOCKING_RECORDS
            cand = block(cols, matching, is_new, pool.run_rules if parallel else None)
        laps.lap("block")
        result = _link_rest(cols, cand, keys, tf, n, is_new, model, matching, workers, chunk, pool, laps)
        # how the model came to be, beside it (not in it: a reused model is saved unchanged)
        result.usage = {"mode": "reused" if model is not None else "trained",
                        "why": "the saved model fits this data" if model is not None else verdict,
                        "records": int(n)}
    finally:
        pool.close()
    laps.lap("score")
    result.timings = dict(laps)
    return result


def _link_rest(cols, cand, keys, tf, n, is_new, model, matching, workers, chunk, pool, laps=None) -> LinkResult:
    """link() after blocking: compare, train unless a model is given, score."""
    workers = max(int(workers or 1), 1)
    if model is None:
        # the candidates are compared in the workers while the training pairs are chosen here;
        # the training pairs not among the candidates are queued behind them
        candidate_levels = _levels_later(cols, cand.left, cand.right, chunk, pool)
        plan = plan_training(cols, matching, cand, complete=is_new is None)
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
        if laps is not None:
            laps.lap("train")
    else:
        levels = compute_levels(cols, cand.left, cand.right, chunk, workers, pool)
        model = dict(model)
        model["thresholds"] = _thresholds(matching)
        if laps is not None:
            laps.lap("compare")

    pairs, counts = score_pairs(tf, keys, cand, levels, model, matching, pool)
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
    return LinkResult(pairs=pairs, model=model, blocking_summary=summary)


# ---------------------------------------------------------------- incremental: records near new ones


def near_new(frame: pd.DataFrame, matching: dict, is_new: np.ndarray):
    """The rows an incremental link needs, and what linking every row would know about them.

    Kept: new rows, every row sharing a usable block key value with one (a value held by at
    most max_block_size records), and for sorted-neighbourhood rules every holder of a usable
    value within the window of a new row's value, in the sorted order of all usable values.
    Value frequencies (shared-value limit, term frequencies) and block sizes are counted over
    every row, so the pairs and scores equal those of linking the whole frame; only the
    blocking summary's block statistics describe the rows kept.

    Returns (rows kept sorted by record_key with shared values nulled, is_new, term
    frequencies, per rule: is the row's key value usable over all rows), or None when a rule
    blocks on something other than the comparison columns.
    """
    cfg = matching.get("blocking") or {}
    rules = cfg.get("rules") or DEFAULT_RULES
    max_block = int(cfg.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE))
    parts_of = [rule_columns(r) for r in rules]
    if any(not parts or any(p.partition(":")[0] not in COMPARE_COLUMNS for p in parts) for parts in parts_of):
        return None
    n = len(frame)
    limit = _shared_value_limit(matching)
    codes: dict[str, np.ndarray] = {}
    texts: dict[str, np.ndarray] = {}
    tf_columns = {c for spec in TF_COLUMNS.values() for c in spec.values()}
    needed = {p.partition(":")[0] for parts in parts_of for p in parts} | tf_columns | set(SHARED_VALUE_COLUMNS)
    for c in [c for c in COMPARE_COLUMNS if c in needed]:
        values = frame[c].to_numpy(dtype=object) if c in frame.columns else np.full(n, None, dtype=object)
        code, text = codes_and_texts(values)
        if limit and c in SHARED_VALUE_COLUMNS and len(text):
            junk = np.bincount(code[code >= 0], minlength=len(text)) > limit
            code = np.where((code >= 0) & junk[code.clip(min=0)], -1, code)
        codes[c], texts[c] = code, text

    # the columns as blocking sees them (row values and their codes, shared values nulled), so
    # the rule keys below are blocking's own (rule_codes, _key_texts)
    cols: dict[str, np.ndarray] = {}
    for c, code in codes.items():
        cols[c] = np.append(texts[c], None)[code]
        cols[c + "#"] = code

    keep = is_new.copy()
    usable: list[np.ndarray] = []
    for rule, parts in zip(rules, parts_of):
        key = rule_codes(cols, parts)
        present = key >= 0
        counts = np.bincount(key[present]) if present.any() else np.zeros(0, np.int64)
        ok = present.copy()
        ok[present] = counts[key[present]] <= max_block
        usable.append(ok)
        if not ok.any():
            continue
        if rule.get("method", "block") != "sortedneighbourhood":
            keep |= np.isin(key, np.unique(key[is_new & ok]))
            continue
        # sorted neighbourhood: the usable values in the order blocking sorts them (their
        # parts' texts joined as blocking joins them), and the window around each new value
        rows = np.flatnonzero(ok)
        values, first = np.unique(key[rows], return_index=True)
        pick = rows[first]
        label = _key_texts(cols, parts, pick)
        order = values[np.argsort(label, kind="stable")]
        rank = np.full(len(counts), -1, np.int64)
        rank[order] = np.arange(len(order))
        new_ranks = np.unique(rank[key[is_new & ok]])
        half = (int(rule.get("window", 3)) - 1) // 2
        near = (new_ranks[:, None] + np.arange(-half, half + 1)[None, :]).ravel()
        near = np.unique(near[(near >= 0) & (near < len(order))])
        keep |= ok & np.isin(key, order[near])

    order = np.flatnonzero(keep)
    order = order[np.argsort(frame["record_key"].to_numpy(dtype=object)[order], kind="stable")]
    sub = frame.iloc[order].reset_index(drop=True)
    for c in SHARED_VALUE_COLUMNS:  # shared values nulled as prepare_columns would on the whole frame
        if c in sub.columns and c in codes:
            sub[c] = np.where(codes[c][order] >= 0, sub[c].to_numpy(dtype=object), None)
    tf: dict[str, np.ndarray] = {}
    for column in tf_columns:
        code = codes[column]
        counts = np.bincount(code[code >= 0], minlength=len(texts[column])).astype(float)
        freq = np.append(counts / max(counts.sum(), 1.0), np.nan)
        tf[column] = freq[np.where(code >= 0, code, len(counts))][order]
    return sub, is_new[order], tf, [u[order] for u in usable]


def _block_usable(cols: dict[str, np.ndarray], matching: dict, is_new: np.ndarray,
                  usable: list[np.ndarray]) -> Candidates:
    """block() rule by rule on the rows near new ones, each rule seeing only the rows whose key
    value is usable over all rows (the others get no key: a value too frequent overall stays
    skipped even if few of its holders were kept). Same union and rule bits as block()."""
    cfg = matching.get("blocking") or {}
    rules = cfg.get("rules") or DEFAULT_RULES
    n = len(is_new)
    chunks_i, chunks_j, chunks_m, summaries = [], [], [], []
    for b, (rule, ok) in enumerate(zip(rules, usable)):
        column = rule_columns(rule)[0].partition(":")[0]
        view = dict(cols)
        view[column] = np.where(ok, cols[column], None)
        if column + "#" in cols:  # blocking reads the codes
            view[column + "#"] = np.where(ok, cols[column + "#"], -1).astype(cols[column + "#"].dtype)
        one = block(view, {**matching, "blocking": {**cfg, "rules": [rule]}}, is_new)
        chunks_i.append(one.left.astype(np.int64))
        chunks_j.append(one.right.astype(np.int64))
        chunks_m.append(np.where(one.rule_mask > 0, 1 << b, 0).astype(np.int64))
        summaries.append(one.summary)
    names = [str(r.get("name") or f"rule{b + 1}") for b, r in enumerate(rules)]
    i, j, m = np.concatenate(chunks_i), np.concatenate(chunks_j), np.concatenate(chunks_m)
    if len(i):
        pair_id = i * max(n, 1) + j
        order = np.argsort(pair_id, kind="stable")
        pair_id, m = pair_id[order], m[order]
        starts = np.flatnonzero(np.r_[True, pair_id[1:] != pair_id[:-1]])
        mask = np.bitwise_or.reduceat(m, starts)
        uniq = pair_id[starts]
        left, right = (uniq // n).astype(np.int32), (uniq % n).astype(np.int32)
    else:
        left = right = np.empty(0, np.int32)
        mask = np.empty(0, np.int64)
    return Candidates(left, right, mask, names, pd.concat(summaries, ignore_index=True))
