"""Decisions: thresholds, hard constraints and the user's caps (rules/matching.yaml), and the
function that turns probabilities into match / review / non_match (see docs/matching.md)."""

from __future__ import annotations

import numpy as np

from .. import config_defaults
from ..errors import RulesError
from .blocking import DEFAULT_MAX_BLOCK_SIZE
from .compare import FEATURE_NAMES, FEATURES

DEFAULT_THRESHOLDS = {"match": 0.99, "review": 0.6}
# Facts that hold for any customer data, whatever the score (rules/matching.yaml
# `hard_constraints`; each is named in the pairs' `cap` column where it lowers a decision).
# Everything else — twins, households, relatives, common names — is evidence the model learns
# per data set (link/family.py), not a rule.
DEFAULT_HARD_CONSTRAINTS: list[dict] = [dict(c) for c in config_defaults.HARD_CONSTRAINTS]
# user caps (rules/matching.yaml `caps`): none by default
DEFAULT_CAPS: list[dict] = []
DECISION_RANK = {"non_match": 0, "review": 1, "match": 2}


def _shared_value_limit(matching: dict) -> int | None:
    """Contact values held by more records than this count as missing (default: the blocking
    max_block_size); 0 turns it off."""
    limit = matching.get("shared_value_limit")
    if limit is None:
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
            raise RulesError(
                "rules/matching.yaml", f"cap {c!r} needs 'when' (feature: [levels]) and 'decision' (review|non_match)"
            )
        for feature, labels in when.items():
            if feature not in FEATURES or any(label not in FEATURES[feature] for label in labels):
                raise RulesError(
                    "rules/matching.yaml", f"cap {c.get('name')!r}: unknown feature or level in {feature}: {labels}"
                )
    return caps


def decide(prob: np.ndarray, levels: np.ndarray, thresholds: dict, caps: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Decision rank per pair (threshold, then lowered by any matching cap) and the cap name."""
    rank = np.where(prob >= thresholds["match"], 2, np.where(prob >= thresholds["review"], 1, 0)).astype(np.int8)
    cap_name = np.full(len(prob), "", dtype=object)
    for c in caps:
        hit = np.ones(len(prob), dtype=bool)
        for feature, labels in c["when"].items():
            f = FEATURE_NAMES.index(feature)
            allowed = np.zeros(len(FEATURES[feature]), dtype=bool)  # a lookup, not np.isin
            allowed[[FEATURES[feature].index(label) for label in labels]] = True
            hit &= allowed[levels[:, f]]
        limit = DECISION_RANK[c["decision"]]
        lowered = hit & (rank > limit)
        rank[lowered] = limit
        cap_name[lowered] = c.get("name", "cap")
    return rank, cap_name


def probability_text(p: float) -> str:
    """A probability with enough decimals that it never reads as 1 (or 0) when it is not."""
    for digits in range(3, 9):
        text = f"{p:.{digits}f}"
        if (0 < float(text) < 1) or p <= 0 or p >= 1:
            return text
    return text


def review_reasons(prob, cap, thresholds: dict | None = None) -> list[str]:
    """Why each review pair is in review, in words: the hard constraint (or cap) that lowered a
    likely match, or the uncertainty of its probability between the review and match thresholds.

    `cap` holds the constraint's name per pair ('' or missing: none). A pair at or above the match
    threshold with no name recorded (an edge stored before match_edge had its `cap` column) was held by a constraint."""
    match_at = (thresholds or {}).get("match")
    review_at = (thresholds or {}).get("review")
    between = f"between review {review_at:g} and match {match_at:g}" if match_at and review_at else ""
    out = []
    for p, name in zip(prob, cap):
        p = None if p is None or p != p else float(p)
        name = name if isinstance(name, str) else ""
        shown = "" if p is None else f"probability {probability_text(p)}"
        above = f"{shown} ≥ match {match_at:g}" if match_at and p is not None else shown
        if name:
            out.append(f"hard constraint: {name} ({above})" if above else f"hard constraint: {name}")
        elif p is None:
            out.append("uncertain: no probability recorded")
        elif match_at and p >= match_at:
            out.append(f"held by a hard constraint ({above})")
        else:
            out.append(f"uncertain: {shown} {between or 'between the review and match thresholds'}")
    return out
