"""Model training: u from random pairs, m by EM sessions, λ by EM over the candidates, the
look-alike cells (family.py), and what the model knows it learnt (training minimum, neutral
priors). See docs/matching.md "Model"."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import config_defaults
from .blocking import DEFAULT_MAX_BLOCK_SIZE, DEFAULT_OVERSIZE_WINDOW, DEFAULT_RULES, Candidates, block
from .blocking import block_pairs_at, largest_identical_group, rule_columns
from .compare import FEATURE_NAMES, FEATURES, compare_pairs, compare_settings, extra_feature, extras_in
from .decisions import _thresholds
from .family import DEFAULT_NOISE_SIGMAS, FAMILY_BLOCKING_RULES, fit_family, matches_null_share
from .model import _level_caps, build_model, estimate_u, level_patterns, neutral_u, run_em, sample_random_pairs
from .parallel import SETTINGS_KEY

DEFAULT_U_SAMPLE = 500_000
# ---------------------------------------------------------------- training


DEFAULT_TRAINING_RULES: list[dict] = [dict(r) for r in config_defaults.TRAINING_RULES]
DEFAULT_TRAINING_FALLBACK_RULES: list[dict] = [dict(r) for r in config_defaults.TRAINING_FALLBACK_RULES]
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
    "company_key": ("company",),
}


def _blocked_features(rule: dict) -> set[str]:
    parts = rule_columns(rule)
    return {f for p in parts for f in COLUMN_FEATURES.get(str(p).partition(":")[0], ())}


KNOWN_PART_PAIRS = 4_000_000  # candidates turned into int64 pair ids at a time (_known_levels)


def _known_levels(known: Candidates | None, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(position in ``known`` or -1) per pair: the candidates' levels are already computed
    (a training rule on the same column as a blocking rule proposes the same pairs). The
    candidates' pair ids are made KNOWN_PART_PAIRS at a time: all at once they were 16 bytes
    a candidate pair of transients (≈ 0.9 GB at 2M customers), beside the comparison."""
    pos = np.full(len(left), -1, dtype=np.int64)
    if known is None or not len(known.left) or not len(left):
        return pos
    n = int(max(known.right.max(), right.max())) + 1
    want = left.astype(np.int64) * n + right
    order = np.argsort(want, kind="stable")
    wanted = want[order]
    for s in range(0, len(known.left), KNOWN_PART_PAIRS):  # sorted: blocking unions by pair id
        have = known.left[s : s + KNOWN_PART_PAIRS].astype(np.int64) * n + known.right[s : s + KNOWN_PART_PAIRS]
        lo, hi = np.searchsorted(wanted, have[0], "left"), np.searchsorted(wanted, have[-1], "right")
        at = np.searchsorted(have, wanted[lo:hi]).clip(max=len(have) - 1)
        hit = have[at] == wanted[lo:hi]
        pos[order[lo:hi][hit]] = s + at[hit]
    return pos


def plan_training(
    cols: dict[str, np.ndarray],
    matching: dict,
    cand: Candidates | None,
    complete: bool,
    largest_group: int | None = None,
) -> dict:
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
    window = blocking_cfg.get("oversize_window", DEFAULT_OVERSIZE_WINDOW)
    largest = largest_identical_group(cols) if largest_group is None else largest_group
    same_rule: dict[
        tuple, int
    ] = {}  # a training rule that is also a blocking rule: its pairs are the candidates with its bit
    if cand is not None and complete:
        for bit, r in enumerate(blocking_cfg.get("rules") or DEFAULT_RULES):
            if r.get("method", "block") == "block":
                same_rule.setdefault(tuple(rule_columns(r)), bit)
    sessions: list[tuple] = []  # (rule, rows in cand | None, left, right, pairs found)
    for rule in matching.get("training_rules") or DEFAULT_TRAINING_RULES:
        b = same_rule.get(tuple(rule_columns(rule))) if rule.get("method", "block") == "block" else None

        def pick(total: int) -> np.ndarray:  # the session's pairs: all, or a sample of max_pairs
            if total < 20 or total <= max_pairs:
                return np.arange(total)
            return np.sort(rng.choice(total, size=max_pairs, replace=False))

        if b is not None and cand is not None:
            rows = np.flatnonzero(cand.rule_mask & (1 << b))  # sorted by pair id, as block() returns them
            rows = rows[pick(len(rows))]
            left, right = cand.left[rows], cand.right[rows]
        else:
            rows = None
            left, right = block_pairs_at(cols, _session_cfg([rule], max_block, window), pick, largest_group=largest)
        if len(left) < 20:
            sessions.append((rule, None, None, None, int(len(left))))
            continue
        sessions.append((rule, rows, left, right, 0))
    # every pair that can fall in a look-alike cell (see family.py): same surname and birth date or address
    fam = block(cols, _session_cfg(FAMILY_BLOCKING_RULES, max_block, window), largest_group=largest)
    # every pair at one company: how often colleagues share an office phone (conditional_u)
    same = block(cols, _session_cfg([SAME_COMPANY_RULE], max_block, window), largest_group=largest)
    # pairs whose levels are not known yet: the random pairs, session pairs not among the
    # candidates, the same-company pairs and the look-alike pairs (last)
    extra = (
        [(ri, rj)]
        + [(s[2], s[3]) for s in sessions if s[2] is not None and s[1] is None]
        + [(same.left, same.right), (fam.left, fam.right)]
    )
    all_l = np.concatenate([e[0] for e in extra]).astype(np.int64)
    all_r = np.concatenate([e[1] for e in extra]).astype(np.int64)
    pos = np.full(len(all_l), -1, dtype=np.int64)
    pos[len(ri) :] = _known_levels(cand, all_l[len(ri) :], all_r[len(ri) :])
    todo = np.flatnonzero(pos < 0)
    return {
        "n": n,
        "n_random": len(ri),
        "sessions": sessions,
        "pos": pos,
        "todo": todo,
        "todo_l": all_l[todo],
        "todo_r": all_r[todo],
        "n_family": len(fam.left),
        "n_same_company": len(same.left),
        "features": FEATURE_NAMES + tuple(extra_feature(c) for c in extras_in(cols)),
        "fallback_rules": fallback_rules(matching),
        "fallback_levels": _session_levels(cols, max_block, window, largest, max_pairs, seed),
    }


def fallback_rules(matching: dict) -> list[dict]:
    """``training_fallback_rules``: the defaults when absent, none when []."""
    rules = matching.get("training_fallback_rules")
    return [dict(r) for r in (DEFAULT_TRAINING_FALLBACK_RULES if rules is None else rules)]


def _session_levels(cols: dict, max_block, window, largest: int, max_pairs: int, seed: int):
    """A function giving a fallback session's levels: its rule's pairs (sampled down to
    ``max_pairs``) compared here, only when training asks for them (most data never does)."""

    def levels_of(rule: dict) -> np.ndarray:
        one = block(cols, _session_cfg([rule], max_block, window), largest_group=largest)
        left, right = one.left, one.right
        if len(left) > max_pairs:
            take = np.sort(np.random.default_rng(seed).choice(len(left), size=max_pairs, replace=False))
            left, right = left[take], right[take]
        return compare_pairs(cols, left, right, cols.get(SETTINGS_KEY))

    return levels_of


def train_from_levels(
    plan: dict, levels: np.ndarray, fresh: np.ndarray, n_possible_pairs: float, matching: dict
) -> dict:
    """The model from the candidates' ``levels`` and the levels of the plan's pairs to compare.

    Below the training minimum (too few records or candidate pairs) m and u are the neutral
    priors of model.neutral_m / neutral_u, the model says so and is never reused."""
    max_iter = int(matching.get("em_max_iterations", 60))
    pos, todo = plan["pos"], plan["todo"]
    features = plan.get("features") or FEATURE_NAMES
    all_lv = np.empty((len(pos), len(features)), dtype=np.int8)
    all_lv[pos >= 0] = levels[pos[pos >= 0]]
    all_lv[todo] = fresh
    random_lv = all_lv[: plan["n_random"]]
    minimum = training_minimum(matching)
    short = _too_little_evidence(plan["n"], len(levels), minimum)
    u = estimate_u(random_lv, features) if not short else {f: neutral_u(f) for f in features}
    # the candidates' distinct level patterns: what λ, the matches' null shares and the features
    # present are computed from (not the whole level matrix again)
    patterns = level_patterns(levels) if not short else None
    m_final, sessions, learnt = (
        _m_by_sessions(plan, levels, all_lv, u, max_iter, minimum, matching, features, patterns)
        if not short
        else ({f: _default_m(f) for f in features}, [], [])
    )
    for f in features[len(FEATURE_NAMES) :]:  # an extra column EM could not learn: no evidence
        if f not in learnt:
            m_final[f] = np.asarray(u[f], float)
    if short:
        lam_blocked, prior = 0.0, float(matching.get("prior") or NEUTRAL_PRIOR)
    else:
        _, lam_blocked, _ = (
            run_em(
                levels, u, max_iter=max_iter, m_start=m_final, update_m=False, all_features=features, patterns=patterns
            )
            if len(levels)
            else (None, 0.0, 0)
        )
        given = matching.get("prior")
        if given is not None:
            prior = float(given)
        else:
            prior = lam_blocked * len(levels) / n_possible_pairs if n_possible_pairs > 0 else 1e-6
    prior = float(min(max(prior, 1e-12), 0.5))
    n = plan["n"]
    all_pairs = n * (n - 1) / 2
    family: dict[str, Any] = {"cells": {}}
    if not short:
        fam_lv = all_lv[len(pos) - plan["n_family"] :]
        null_share = {
            f: float((random_lv[:, k] == 0).mean()) if len(random_lv) else 0.0 for k, f in enumerate(FEATURE_NAMES)
        }
        rows, counts = patterns or level_patterns(levels)
        null_share_m = matches_null_share(rows, counts, m_final, u, lam_blocked, null_share)
        family = {
            "pairs": int(plan["n_family"]),
            "cells": fit_family(
                fam_lv,
                m_final,
                u,
                null_share,
                null_share_m,
                prior,
                all_pairs,
                float(matching.get("family_noise_sigmas", DEFAULT_NOISE_SIGMAS)),
                _level_caps(matching),
            ),
        }
    training = {
        "method": "em" if not short else "neutral_priors",
        "trained": not short,
        "why": short or "trained by EM on this data",
        "records": int(n),
        "blocked_pairs": int(len(levels)),
        "u_sample_pairs": int(plan["n_random"]),
        "sessions": sessions,
        "learnt_m": learnt,
        "default_m": [f for f in features if f not in learnt],
        **_fallback_m(sessions),
        "lambda_blocked": round(float(lam_blocked), 8),
        "expected_matches": round(float(prior * all_pairs), 1),
        "minimum": minimum,
    }
    model = build_model(m_final, u, prior, _thresholds(matching), training)
    model["family"] = family
    if not short:
        n_fam, n_same = plan["n_family"], plan.get("n_same_company", 0)
        cond = conditional_u(all_lv[len(pos) - n_fam - n_same : len(pos) - n_fam], int(minimum["pairs_per_level"]))
        if cond:  # only then: data without companies gives the same dict as before
            model["conditional_u"] = cond
    model["compare"] = compare_settings(matching)
    return model


SAME_COMPANY_RULE = {"name": "same_company", "columns": ["company_key"]}
# features whose agreement a shared company explains: colleagues share the switchboard, and
# their work mailboxes share the company's domain and name pattern (jsmith@ / msmith@)
CONDITIONAL_FEATURES = ("phone", "email")


def conditional_u(same_lv: np.ndarray, need: int) -> dict:
    """u of the phone and the e-mail among pairs at one company (Fellegi-Sunter's independence
    fails there: the switchboard is every colleague's number, the domain every colleague's
    mailbox), from the same-company pairs whose given names differ — different people, whatever
    the data. A feature with fewer than ``need`` such pairs with a value on both sides is left
    out. model.score_levels caps the feature's agreement weight with it where the company agrees."""
    if not len(same_lv):
        return {}
    first = FEATURE_NAMES.index("first_name")
    others = same_lv[same_lv[:, first] == FEATURES["first_name"].index("different")]
    out: dict[str, Any] = {}
    for feature in CONDITIONAL_FEATURES:
        lv = others[:, FEATURE_NAMES.index(feature)]
        lv = lv[lv > 0]
        if len(lv) < need:
            continue
        k = len(FEATURES[feature])
        counts = np.bincount(lv, minlength=k).astype(float)[1:] + 0.5  # add-half, as estimate_u
        out[feature] = [round(float(x), 10) for x in counts / counts.sum()]
    return {"given": "company", "pairs": int(len(others)), "u": out} if out else {}


def _m_by_sessions(plan, levels, all_lv, u, max_iter, minimum, matching, features=FEATURE_NAMES, patterns=None):
    """m per feature: EM per training session on the features its rule does not block, averaged
    over the sessions that saw at least ``pairs_per_level`` pairs with the feature present."""
    estimates: dict[str, list[np.ndarray]] = {f: [] for f in features}
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
        feats = [f for k, f in enumerate(features) if f not in _blocked_features(rule) and (lv[:, k] > 0).any()]
        if not feats:
            continue
        alone = _alone_feature(lv, feats, features)
        if alone is not None:  # EM cannot tell matches apart on one feature: nothing learnt here
            sessions.append({"rule": rule.get("name"), "pairs": int(len(left)), "used": False, "single_feature": alone})
            continue
        m, lam, it = run_em(
            lv, u, max_iter=max_iter, features=feats, m_start=_em_start(matching, feats), all_features=features
        )
        m = _given_name_m_among_other_surnames(lv, u, m, feats, max_iter, need, features)
        for f in feats:
            if (lv[:, features.index(f)] > 0).sum() >= need:
                estimates[f].append(m[f])
        sessions.append(
            {
                "rule": rule.get("name"),
                "pairs": int(len(left)),
                "lambda": round(lam, 6),
                "iterations": it,
                "estimated": feats,
            }
        )
    m_final = {f: np.mean(estimates[f], axis=0) if estimates[f] else _default_m(f) for f in features}
    learnt = [f for f in features if estimates[f]]
    more, fallback_sessions = _m_by_fallback(
        plan, patterns or level_patterns(levels), u, m_final, learnt, max_iter, need, matching, features
    )
    m_final.update(more)
    return m_final, sessions + fallback_sessions, [f for f in features if f in learnt or f in more]


def _m_by_fallback(plan, patterns, u, m, learnt, max_iter, need, matching, features=FEATURE_NAMES):
    """m of the features the data holds (``need`` candidate pairs with them) that no training
    session learnt, from the fallback sessions: rules on part of a training key (the surname
    alone: given name and birth date vary), so EM sees two or more features together. The
    features learnt already keep their m there (a sibling's other given name is as unlikely
    for a duplicate as anywhere); only the missing ones are estimated, averaged over the
    sessions that saw them in ``need`` pairs with enough matches, their disagreement capped
    (``_disagreement_capped``). ``patterns``: the candidates' (``level_patterns``)."""
    rows, counts = patterns
    present = counts @ (rows > 0) if len(rows) else np.zeros(len(features))
    missing = [f for k, f in enumerate(features) if f not in learnt and present[k] >= need]
    levels_of = plan.get("fallback_levels")
    if not missing or levels_of is None:
        return {}, []
    estimates: dict[str, list[np.ndarray]] = {f: [] for f in missing}
    sessions = []
    for rule in plan.get("fallback_rules") or []:
        lv = levels_of(rule)
        feats = [f for k, f in enumerate(features) if f not in _blocked_features(rule) and (lv[:, k] > 0).any()]
        targets = [f for f in missing if f in feats and (lv[:, features.index(f)] > 0).sum() >= need]
        about = {"rule": rule.get("name"), "fallback": True, "pairs": int(len(lv))}
        alone = _alone_feature(lv, feats, features) if targets and len(lv) >= 20 else None
        if not targets or len(lv) < 20 or alone is not None:
            sessions.append({**about, "used": False, **({"single_feature": alone} if alone else {})})
            continue
        held = tuple(f for f in feats if f in learnt)
        start = {**(_em_start(matching, feats) or {}), **{f: m[f] for f in held}}
        m_s, lam, it = run_em(
            lv, u, max_iter=max_iter, features=feats, m_start=start, all_features=features, fixed=held
        )
        # a session with too few matches learns nothing (λ → 0 leaves m at EM's smoothing)
        targets = [f for f in targets if lam * (lv[:, features.index(f)] > 0).sum() >= need]
        for f in targets:
            estimates[f].append(m_s[f])
        about.update({"lambda": round(lam, 6), "iterations": it, "used": bool(targets)})
        sessions.append({**about, "estimated": targets, "held": list(held)})
    return {f: _disagreement_capped(np.mean(v, axis=0), u[f], f) for f, v in estimates.items() if v}, sessions


def _fallback_m(sessions: list[dict]) -> dict:
    """{"fallback_m": {feature: [fallback sessions it was learnt from]}}, or {} when none was
    used (a model that needed no fallback is the same dict as before)."""
    out: dict[str, list[str]] = {}
    for s in sessions:
        for f in s.get("estimated", []) if s.get("fallback") else []:
            out.setdefault(f, []).append(str(s["rule"]))
    return {"fallback_m": out} if out else {}


def _disagreement_capped(m: np.ndarray, u: np.ndarray, feature: str) -> np.ndarray:
    """A fallback session's m with its disagreement share at most the neutral prior's. The
    disagreeing levels are those the neutral m does not favour over random pairs (m ≤ u: birth
    dates years apart). Namesakes and relatives share the blocked part of the name far more
    often than random pairs do; EM counts some of them as matches, and they land there (few_fields
    cut to names and birth dates: m(years apart) 0.34, where 1 of its 1,442 true pairs of one
    surname is years apart)."""
    neutral = _default_m(feature)
    against = neutral <= np.asarray(u, float)
    share, cap = float(m[against].sum()), float(neutral[against].sum())
    if share <= cap or share >= 1.0:
        return m
    out = np.asarray(m, float).copy()
    out[against] *= cap / share
    out[~against] *= (1.0 - cap) / (1.0 - share)
    return out


def _alone_feature(lv: np.ndarray, feats: list[str], features) -> str | None:
    """The feature a session rests on alone, or None. A latent-class model needs features
    observed together: where fewer than half of the session's pairs have two of its features
    (RLdata's name session: the birth date, and a middle name in 1 % of pairs), EM's likelihood
    is flat along a ridge of (λ, m) and it stops anywhere on it (it learnt m(birth date exact)
    = 0.01 and m(years apart) = 0.35 there)."""
    present = np.column_stack([lv[:, features.index(f)] > 0 for f in feats])
    if not len(present) or (present.sum(axis=1) >= 2).sum() * 2 >= len(lv):
        return None
    return feats[int(np.argmax(present.sum(axis=0)))]


def _given_name_m_among_other_surnames(lv, u, m, feats, max_iter, need, features=FEATURE_NAMES):
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
    m_other, lam, _ = run_em(sub, u, max_iter=max_iter, features=feats, m_start=m, all_features=features)
    if lam * len(sub) < need:  # too few duplicates with another surname to learn from
        return m
    return {**m, "first_name": _disagreement_from(m["first_name"], m_other["first_name"], lam * len(sub))}


def _disagreement_from(m_all: np.ndarray, m_other: np.ndarray, duplicates: float | None = None) -> np.ndarray:
    """The given name's m: how often a duplicate's given names disagree (similar, different)
    from the other-surname pairs, where relatives do not inflate it; how the rest splits over
    exact / close / initial from all pairs. The other-surname pairs hold few duplicates, too few
    to see a typo level (a close given name with a surname typo is rare), and a level EM sees
    no duplicate on learns m = 0: every duplicate with a typo in the given name is lost. So
    `similar` keeps the all-pairs m where the other-surname pairs expect less than one duplicate
    on it (``duplicates`` × its m: EM saw none there; `different` is the level relatives inflate): old_dob's typos
    (`loiisa` / `louisa`) learnt m(similar) ≈ 0 once its only other-surname duplicates at that
    level, `mary ann smyth` / `mary smith`, compared `exact` (a middle name on one side)."""
    labels = FEATURES["first_name"][1:]
    agree = np.array([lab in ("exact", "close", "initial") for lab in labels])
    m_all, m_other = np.asarray(m_all, float), np.asarray(m_other, float)
    out = m_other.copy()
    if duplicates is not None:
        unseen = (np.asarray(labels) == "similar") & (duplicates * m_other < 1.0)
        out[unseen] = m_all[unseen]
    if m_all[agree].sum() > 0:
        out[agree] = (1.0 - out[~agree].sum()) * m_all[agree] / m_all[agree].sum()
    return out


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
        return (
            f"only {candidate_pairs} candidate pairs (training needs {int(minimum['candidate_pairs'])}): "
            "neutral priors used"
        )
    return ""


def _session_cfg(rules: list, max_block, window) -> dict:
    """A training block's settings: the run's block limit and thinning (blocking.block)."""
    return {"blocking": {"rules": rules, "max_block_size": max_block, "oversize_window": window}}


def _default_m(feature: str) -> np.ndarray:
    from .model import _initial_m

    return _initial_m(feature)


def learned_cluster_size(model: dict | None, configured: int) -> int:
    """clustering.max_cluster_size scaled to this data: at least twice the largest group of
    identical records training saw (a person's varied records — typos, moves, employers —
    beside the identical ones), so a component is cut to its strong edges only when it is
    larger than any person the data shows. Without that figure, the configured size."""
    seen = int(((model or {}).get("training") or {}).get("largest_identical_group") or 0)
    return max(int(configured), 2 * seen)
