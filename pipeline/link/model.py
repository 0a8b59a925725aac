"""Fellegi-Sunter model: u from random pairs, m by EM over blocked pairs, TF-adjusted scoring.

Splink's recipe: u (how often two *random* records agree at a level) is estimated from a
random sample of record pairs, so it is not biased by blocking; m (how often true matches
agree) is learnt by EM over the blocked pairs with u held fixed. The prior λ used for scoring
is the probability that two random records match (EM's blocked λ × blocked pairs / all pairs).
Exact matches on TF columns use the value's own frequency instead of the average u, so a
shared common name (张伟, John Smith) or a shared switchboard number is weak evidence.

The model is a plain JSON-able dict, saved by the store and reused for incremental runs.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .compare import FEATURE_NAMES, FEATURES, TF_COLUMNS, feature_levels
from .family import family_adjustment

MODEL_VERSION = 2  # 2: levels named by meaning (close/similar), look-alike cells, compare thresholds
PROB_FLOOR = 1e-6  # no level is ever impossible: keeps log weights finite
DEFAULT_LEVEL_WEIGHT_MAX = {"phone": {"landline_exact": 4.0}}  # households share a landline
# Features that disagree together for one reason: a customer who moves gets a new address
# and a new phone at once. Fellegi-Sunter assumes independence and would count the move twice;
# when every feature of a group is at its ``different`` level only the largest penalty counts.
DEFAULT_CORRELATED_DISAGREEMENT: list[list[str]] = [["address", "phone"]]


def _correlated_groups(matching: dict | None) -> list[list[str]]:
    groups = (matching or {}).get("correlated_disagreement")
    groups = DEFAULT_CORRELATED_DISAGREEMENT if groups is None else (groups or [])
    return [[f for f in g if "different" in FEATURES.get(f, ())] for g in groups if isinstance(g, (list, tuple))]


def correct_correlated(levels: np.ndarray, per_feature: dict[str, np.ndarray], matching: dict | None) -> None:
    """In place: where all features of a correlated group are ``different``, keep only the
    most negative of their weights (the others become 0)."""
    for group in _correlated_groups(matching):
        if len(group) < 2:
            continue
        idx = [FEATURE_NAMES.index(f) for f in group]
        hit = np.ones(len(levels), dtype=bool)
        for f, k in zip(group, idx):
            hit &= levels[:, k] == FEATURES[f].index("different")
        if not hit.any():
            continue
        stacked = np.vstack([per_feature[f][hit] for f in group])
        worst = np.argmin(stacked, axis=0)
        for r, f in enumerate(group):
            w = per_feature[f].copy()
            w[hit] = np.where(worst == r, stacked[r], 0.0)
            per_feature[f] = w


def correct_conditional(levels: np.ndarray, per_feature: dict[str, np.ndarray], model: dict) -> None:
    """In place: where the company agrees (exact or similar), a feature of the model's
    ``conditional_u`` (phone, e-mail: colleagues share the switchboard and the domain) weighs at most
    log2(m / u among colleagues) on its agreeing levels, never below 0 (training.conditional_u)."""
    cond = model.get("conditional_u") or {}
    if not cond.get("u") or levels.shape[1] <= FEATURE_NAMES.index("company"):
        return
    company = levels[:, FEATURE_NAMES.index("company")]
    agree = (company == FEATURES["company"].index("exact")) | (company == FEATURES["company"].index("similar"))
    if not agree.any():
        return
    for feature, u_given in cond["u"].items():
        m = np.asarray(model["comparisons"][feature]["m"], float)
        cap = np.zeros(len(FEATURES[feature]))
        cap[1:] = np.maximum(np.log2(np.maximum(m, PROB_FLOOR) / np.maximum(np.asarray(u_given, float), PROB_FLOOR)), 0)
        cap[FEATURES[feature].index("different")] = np.inf  # a disagreement is not explained by the company
        lv = levels[:, FEATURE_NAMES.index(feature)]
        hit = agree & (lv > 0)
        w = per_feature[feature].copy()
        w[hit] = np.minimum(w[hit], cap[lv[hit]])
        per_feature[feature] = w


def _level_caps(matching: dict | None) -> dict:
    caps = (matching or {}).get("level_weight_max")
    return DEFAULT_LEVEL_WEIGHT_MAX if caps is None else (caps or {})


def _normalise(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, PROB_FLOOR)
    return p / p.sum()


def sample_random_pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random distinct pairs (i < j), never enumerating all pairs."""
    rng = np.random.default_rng(seed)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    total = n * (n - 1) // 2
    size = int(min(size, total))
    i = rng.integers(0, n, size=size * 2)
    j = rng.integers(0, n, size=size * 2)
    keep = i != j
    i, j = i[keep][:size], j[keep][:size]
    return np.minimum(i, j), np.maximum(i, j)


def features_of(model: dict | None) -> tuple[str, ...]:
    """The model's features in level-matrix column order: the fixed ones, then its extras."""
    return FEATURE_NAMES + tuple((model or {}).get("extra_features") or ())


def estimate_u(levels: np.ndarray, features: tuple[str, ...] = FEATURE_NAMES) -> dict[str, np.ndarray]:
    """u per feature: level frequency among random pairs, null level excluded."""
    u = {}
    for f, feature in enumerate(features):
        k = len(feature_levels(feature))
        counts = np.bincount(levels[:, f], minlength=k).astype(float)[1:] + 0.5  # add-half smoothing
        u[feature] = _normalise(counts)
    return u


def _initial_m(feature: str) -> np.ndarray:
    """A sensible start for EM: most true matches agree exactly, few are 'different'."""
    k = len(feature_levels(feature)) - 1
    m = np.full(k, 0.1 / max(k - 2, 1))
    m[0] = 0.85
    m[-1] = 0.05
    if k == 2:
        m = np.array([0.95, 0.05])
    return _normalise(m)


def neutral_u(feature: str) -> np.ndarray:
    """The documented u of an untrained model: random records agree exactly 1 % of the time,
    at each middle level 2 %, else differ (so an exact match is worth log2(0.85/0.01) = 6.4 bits)."""
    k = len(feature_levels(feature)) - 1
    u = np.full(k, 0.02)
    u[0] = 0.01
    u[-1] = 1.0 - u[:-1].sum()
    return u


PATTERN_ROWS = 1_000_000  # level rows reduced to their distinct patterns at a time


def level_patterns(levels: np.ndarray, cols: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``levels`` (its columns ``cols``; all by default), in lexicographic
    order, and how many rows each stands for: PATTERN_ROWS rows at a time, then the chunks'
    patterns merged. Whole, the candidates' level matrix was copied and packed at once
    (≈ 50 bytes a candidate pair of transients); the result is the same."""
    parts = [
        _patterns(levels[s : s + PATTERN_ROWS] if cols is None else levels[s : s + PATTERN_ROWS][:, cols])
        for s in range(0, max(len(levels), 1), PATTERN_ROWS)
    ]
    if len(parts) == 1:
        return parts[0]
    return _patterns(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _patterns(levels: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct level rows and their counts (rows packed into one int64: a 1-D unique);
    ``weights``: how many rows each row stands for (1 each by default)."""
    if levels.shape[0] == 0:
        return levels.reshape(0, levels.shape[1]), np.zeros(0, dtype=np.int64)
    packed = np.zeros(levels.shape[0], dtype=np.int64)
    for k in range(levels.shape[1]):  # mixed radix (each column's own level count): fits int64
        packed = packed * (int(levels[:, k].max()) + 1) + levels[:, k].astype(np.int64)
    # hash first (O(n)), then only the few distinct patterns are sorted: np.unique's order
    codes, uniq = pd.factorize(packed)
    counts = np.bincount(codes, weights=weights, minlength=len(uniq)).astype(np.int64)
    first = np.empty(len(uniq), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    order = np.argsort(uniq, kind="stable")
    return levels[first[order]], counts[order]


def run_em(
    levels: np.ndarray,
    u: dict[str, np.ndarray],
    max_iter: int = 60,
    tol: float = 1e-5,
    features: list[str] | None = None,
    m_start: dict[str, np.ndarray] | None = None,
    update_m: bool = True,
    lam_start: float = 0.3,
    all_features: tuple[str, ...] = FEATURE_NAMES,
    fixed: tuple[str, ...] = (),
    patterns: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], float, int]:
    """EM for m and λ over the distinct level patterns, u held fixed.

    Only ``features`` enter the likelihood (a training session leaves out the features its
    blocking rule forced to agree: their m would be biased). With ``update_m=False`` only λ
    is estimated (used once m is known, to get the share of matches among all candidates).
    ``fixed``: features whose m (from ``m_start``) is held, known from another session.
    ``all_features``: the level matrix's columns. ``patterns``: ``level_patterns(levels)``
    when the caller has them (every feature's column).
    """
    features = list(features or all_features)
    cols = [all_features.index(f) for f in features]
    given = patterns is not None and cols == list(range(levels.shape[1]))
    rows, counts = patterns if given and patterns is not None else level_patterns(levels, cols)
    counts = counts.astype(float)
    m = {f: _initial_m(f) for f in features}
    if m_start:
        m.update({f: np.asarray(v, float) for f, v in m_start.items() if f in m})
    lam = lam_start
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the iteration count is returned
        log_m = np.zeros(len(rows))
        log_u = np.zeros(len(rows))
        for k, feature in enumerate(features):
            lv = rows[:, k]
            observed = lv > 0
            log_m[observed] += np.log(m[feature][lv[observed] - 1])
            log_u[observed] += np.log(u[feature][lv[observed] - 1])
        a = np.log(lam) + log_m
        b = np.log1p(-lam) + log_u
        post = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        wpost = post * counts
        new_lam = float(np.clip(wpost.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        delta = abs(new_lam - lam)
        if update_m:
            for k, feature in enumerate(features):
                if feature in fixed:
                    continue
                n_levels = len(feature_levels(feature))
                num = np.bincount(rows[:, k], weights=wpost, minlength=n_levels)[1:]
                if num.sum() <= 0:
                    continue
                new = _normalise(num + 1e-3)
                delta = max(delta, float(np.abs(new - m[feature]).max()))
                m[feature] = new
        lam = new_lam
        if delta < tol:
            break
    return m, lam, it


def build_model(
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    prior: float,
    thresholds: dict,
    training: dict,
) -> dict:
    comparisons = {}
    extras = [f for f in m if f not in FEATURES]
    for feature in FEATURE_NAMES + tuple(extras):
        comparisons[feature] = {
            "levels": list(feature_levels(feature)[1:]),
            # a level EM never saw among 10^5+ pairs is ~1e-9 after normalising: rounded to 0 it
            # would weigh -inf (and break model_summary), so it stays at the floor
            "m": [round(float(x), 8) or PROB_FLOOR for x in m[feature]],
            "u": [round(float(x), 10) for x in u[feature]],
            "tf_levels": list(TF_COLUMNS.get(feature, {})) if feature in FEATURES else ["exact"],
        }
    out = {
        "version": MODEL_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "lambda": float(prior),
        "comparisons": comparisons,
        "thresholds": dict(thresholds),
        "training": training,
    }
    if extras:  # only then: a model without extras is the same dict as before
        out["extra_features"] = extras
    return out


def reuse_verdict(model: dict | None, records: int, matching: dict | None, extras: tuple[str, ...] = ()) -> str:
    """'' when a saved model fits this data, else why it is retrained: another model version or
    level definition, other comparison thresholds, a model that was never trained (too little
    data), data grown past ``training_minimum.growth_factor`` × the records it learnt from, or
    other extra columns (``extras``: the data's extra features) than the model compares."""
    from .compare import compare_settings

    if model is None:
        return "no saved model"
    if not model_compatible(model):
        return "the saved model does not fit the current comparison levels"
    if model.get("compare") is not None and model.get("compare") != compare_settings(matching):
        return "the comparison thresholds changed"
    if tuple(model.get("extra_features") or ()) != tuple(extras):
        return "the data's extra columns differ from the model's"
    training = model.get("training") or {}
    if training.get("method") == "supervised":
        return ""
    if not training.get("trained", False):
        return "the saved model was not trained (too little data then)"
    growth = float(((matching or {}).get("training_minimum") or {}).get("growth_factor") or 2.0)
    trained_on = int(training.get("records") or 0)
    if trained_on and records > growth * trained_on:
        return f"the data grew from {trained_on} to {records} records (more than {growth:g}×)"
    return ""


def model_summary(model: dict, usage: dict | None = None) -> dict:
    """What the model learnt, for the terminal and the report: how it was made (``usage``:
    LinkResult.usage, trained or reused and why) and, per feature and level, m, u and the
    weight log2(m/u)."""
    training = model.get("training") or {}
    usage = usage or {}
    features = {}
    for feature, c in (model.get("comparisons") or {}).items():
        features[feature] = [
            {"level": lab, "m": float(m), "u": float(u), "weight": round(math.log2(float(m) / float(u)), 3)}
            for lab, m, u in zip(c["levels"], c["m"], c["u"])
        ]
    cells = (model.get("family") or {}).get("cells") or {}
    return {
        "mode": usage.get("mode", "trained"),
        "why": usage.get("why") or training.get("why", ""),
        "training_why": training.get("why", ""),
        "trained": bool(training.get("trained", training.get("method") == "supervised")),
        "records": training.get("records"),
        "candidate_pairs": training.get("blocked_pairs"),
        "prior": float(model.get("lambda", 0.0)),
        "learnt_m": training.get("learnt_m", []),
        "default_m": training.get("default_m", []),
        # features no training rule's session learnt, learnt by training_fallback_rules sessions
        "fallback_m": training.get("fallback_m", {}),
        "features": features,
        "look_alike_adjustments": {k: v["adjustment"] for k, v in cells.items() if v.get("adjustment")},
        "same_company_max_weight": _same_company_caps(model),
    }


def _same_company_caps(model: dict) -> dict[str, dict[str, float]]:
    """{feature: {agreeing level: most it weighs where the company agrees}} (conditional_u)."""
    out: dict[str, dict[str, float]] = {}
    for feature, u_given in ((model.get("conditional_u") or {}).get("u") or {}).items():
        m = model["comparisons"][feature]["m"]
        out[feature] = {
            lab: round(max(math.log2(max(float(mm), PROB_FLOOR) / max(float(uu), PROB_FLOOR)), 0.0), 3)
            for lab, mm, uu in zip(FEATURES[feature][1:], m, u_given)
            if lab != "different"
        }
    return out


def model_compatible(model: dict | None) -> bool:
    """A saved model is reusable only if it knows exactly the current features and levels."""
    if not isinstance(model, dict) or model.get("version") != MODEL_VERSION:
        return False
    comps = model.get("comparisons") or {}
    try:
        features = features_of(model)
        return (
            set(comps) == set(features)
            and all(
                list(comps[f]["levels"]) == list(feature_levels(f)[1:])
                and len(comps[f]["m"]) == len(comps[f]["u"]) == len(feature_levels(f)) - 1
                for f in features
            )
            and 0 < float(model["lambda"]) < 1
        )
    except (KeyError, TypeError, ValueError):
        return False


def weight_tables(model: dict, matching: dict) -> dict[str, np.ndarray]:
    """feature -> log2(m/u) per level code (index 0 = null = 0), clipped by rules' caps."""
    caps = _level_caps(matching)
    tables = {}
    for feature in features_of(model):
        c = model["comparisons"][feature]
        w = np.zeros(len(feature_levels(feature)))
        w[1:] = np.log2(np.asarray(c["m"], float) / np.asarray(c["u"], float))
        for label, cap in (caps.get(feature) or {}).items():
            if label in feature_levels(feature):
                w[feature_levels(feature).index(label)] = min(w[feature_levels(feature).index(label)], float(cap))
        tables[feature] = w
    return tables


def score_levels(
    levels: np.ndarray,
    pair_tf: dict[str, np.ndarray],
    model: dict,
    matching: dict,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(match_weight, match_probability, per-feature weights incl. TF) for a level matrix.

    TF (Splink): on an exact level the weight becomes log2(m / max(tf, tf_min_u)); the
    adjustment is that minus the plain log2(m/u), bounded below by the level's cap.
    """
    tables = weight_tables(model, matching)
    tf_min = float((matching or {}).get("tf_min_u", 1e-7))
    caps = _level_caps(matching)
    lam = float(model["lambda"])
    total = np.full(len(levels), math.log2(lam / (1 - lam)))
    per_feature: dict[str, np.ndarray] = {}
    for f, feature in enumerate(features_of(model)):
        if f >= levels.shape[1]:  # levels compared without the model's extra columns: null
            per_feature[feature] = np.zeros(len(levels))
            continue
        w = tables[feature][levels[:, f]]
        tf = pair_tf.get(feature)
        if tf is not None:
            has = ~np.isnan(tf)
            if has.any():
                c = model["comparisons"][feature]
                m_arr = np.asarray(c["m"], float)
                lv = levels[has, f]
                # never below 0: agreeing on a value is not evidence against a match (m may be
                # poorly estimated for a level seldom seen in training)
                w_tf = np.maximum(np.log2(m_arr[lv - 1] / np.maximum(tf[has], tf_min)), 0.0)
                cap = caps.get(feature) or {}
                for label, value in cap.items():
                    if label in feature_levels(feature):
                        w_tf = np.where(
                            lv == feature_levels(feature).index(label), np.minimum(w_tf, float(value)), w_tf
                        )
                w = w.copy()
                w[has] = w_tf
        per_feature[feature] = w
    correct_conditional(levels, per_feature, model)
    correct_correlated(levels, per_feature, matching)
    family = family_adjustment(levels, model)
    if family.any():  # look-alikes (family.py): shown on the given name, where the pattern turns;
        # a rare surname or address is no extra evidence among relatives: their TF bonus is dropped
        hit = family < 0
        for feature in ("last_name", "address", "company"):
            k = FEATURE_NAMES.index(feature)
            base = tables[feature][levels[hit, k]]
            w = per_feature[feature].copy()
            w[hit] = np.minimum(w[hit], np.maximum(base, 0.0))
            per_feature[feature] = w
        per_feature["first_name"] = per_feature["first_name"] + family
    for feature in per_feature:
        total += per_feature[feature]
    prob = 1.0 / (1.0 + np.exp2(-np.clip(total, -1000, 1000)))
    return total, prob, per_feature


def train_supervised(
    features_df: pd.DataFrame, labels, thresholds: dict | None = None, prior: float | None = None
) -> dict:
    """m and u from labelled pairs: level frequencies among matches (m) and non-matches (u).

    ``features_df`` has one column per feature holding level labels (or codes); ``labels`` is
    truthy for a match. ``prior`` defaults to the labelled match share.
    """
    y = np.asarray(labels).astype(bool)
    if len(y) != len(features_df):
        raise ValueError("labels and features_df differ in length")
    if not y.any() or y.all():
        raise ValueError("supervised training needs both matching and non-matching labelled pairs")
    m, u = {}, {}
    for feature in FEATURE_NAMES:
        k = len(FEATURES[feature])
        if feature in features_df.columns:
            col = features_df[feature]
            names = FEATURES[feature]
            codes = col.map(lambda v, names=names: names.index(v) if isinstance(v, str) else int(v)).to_numpy(int)
        else:
            codes = np.zeros(len(y), dtype=int)
        m[feature] = _normalise(np.bincount(codes[y], minlength=k)[1:] + 0.5)
        u[feature] = _normalise(np.bincount(codes[~y], minlength=k)[1:] + 0.5)
    lam = float(prior) if prior is not None else float(y.mean())
    return build_model(
        m, u, lam, thresholds or {}, {"method": "supervised", "pairs": int(len(y)), "matches": int(y.sum())}
    )


def levels_frame(levels: np.ndarray) -> pd.DataFrame:
    """Level matrix → DataFrame of level labels (for supervised training and inspection)."""
    return pd.DataFrame({f: np.asarray(FEATURES[f], dtype=object)[levels[:, k]] for k, f in enumerate(FEATURE_NAMES)})
