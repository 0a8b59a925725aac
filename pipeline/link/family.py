"""Look-alike correction: evidence that relatives share, learnt per data set.

Fellegi-Sunter adds the weights of surname, birth date and address as if non-matching records
agreed on them independently. Twins, spouses and other relatives do not: they share surname,
birth date (twins) and address *together*, with different given names. Whether a data set holds
such people is a property of the data, so it is measured, not assumed:

* a *cell* is a joint pattern: surname exact, given name close / initial / similar / different
  (or exact, when the birth dates are far apart or missing: father and son), birth date
  exact / near (a typo) / far / missing, address same / fuzzy / postal (same postal code) /
  other / missing — and birth date exact or address same, fuzzy or postal (the patterns
  relatives share);
* every pair of records in a cell agrees on the surname and on the birth date, the address or
  the postal code, so blocking on (surname, birth date), (surname, address) and (surname, postal
  code) finds all of them (a fuzzy address without a shared postal code aside): ``N_c``;
* true matches in the cell are expected ``E_c = expected matches × m_c`` (m of the four
  features, which EM learnt; errors in true duplicates are independent);
* what is left, ``N_c − E_c``, are non-matching look-alikes: their joint rate among all pairs
  ``u_joint = (N_c − E_c) / all pairs`` replaces the product of the four features' u, i.e. the
  cell's weight is lowered by ``log2(u_independent / u_joint)`` (never raised).

A data set full of twins and households learns a strong correction; a data set whose cells hold
only true duplicates with typos or replaced given names (FEBRL) learns none. A surplus within
``noise_sigmas`` standard deviations (Poisson on the look-alikes, plus E_c's for the pairs with no
other evidence) is noise, not look-alikes.
"""

from __future__ import annotations

import math

import numpy as np

from .compare import FEATURE_NAMES, FEATURES

FAMILY_BLOCKING_RULES: list[dict] = [
    {"name": "family_dob", "columns": ["last_name_key", "birth_date_std"]},
    {"name": "family_address", "columns": ["last_name_key", "address_std"]},
    {"name": "family_postal", "columns": ["last_name_key", "postal_code_std"]},
    {"name": "family_company", "columns": ["last_name_key", "company_key"]},
]
# the four features a cell covers and their level groups (level label -> group)
FIRST_GROUPS = {
    "exact": "exact",
    "close": "close",
    "initial": "initial",
    "similar": "similar",
    "different": "different",
}
DOB_GROUPS = {
    "exact": "exact",
    "day_month_swapped": "near",
    "one_char": "near",
    "same_year": "far",
    "different": "far",
    "years_apart": "far",
    "null": "null",
}
ADDRESS_GROUPS = {
    "exact": "same",
    "fuzzy": "fuzzy",
    "same_postal": "postal",
    "same_city": "other",
    "different": "other",
    "null": "null",
}
# a shared company is a shared place (colleagues, like a household at one address): where the
# address does not place the pair, the company does
COMPANY_GROUPS = {"exact": "same", "similar": "fuzzy", "different": "other", "null": "null"}
DEFAULT_NOISE_SIGMAS = 3.0
SHARED_PLACES = ("same", "fuzzy", "postal")  # place groups relatives share
REFERENCE_MIN_PAIRS = 20  # duplicate pairs a cell's expected matches may be scaled from

_F, _L, _D, _A, _C = (FEATURE_NAMES.index(f) for f in ("first_name", "last_name", "birth_date", "address", "company"))


def _place(address: str, company: str, first: str = "") -> str:
    """The place group of a pair: the address's when it places the pair, else the company's
    when the companies are the same or similar, else the address's (other / null). Not for one
    given name: with no birth date, one name at one company is what a duplicate looks like, and
    that cell would hold nearly every duplicate of a data set without birth dates."""
    if address in ("same", "fuzzy", "postal") or company not in ("same", "fuzzy") or first == "exact":
        return address
    return company


def _is_cell(first: str, dob: str, address: str) -> bool:
    """A look-alike pattern: birth date or address shared; with the same given name only when
    the birth dates differ or one is missing (father and son, not a duplicate)."""
    shared = dob == "exact" or address in ("same", "fuzzy", "postal")
    return shared and (first != "exact" or (dob in ("far", "null") and address in ("same", "fuzzy", "postal")))


def cell_names() -> list[str]:
    """Every cell, as ``first/birth_date/address`` group names (the model's keys)."""
    out = []
    for f in dict.fromkeys(FIRST_GROUPS.values()):
        for d in dict.fromkeys(DOB_GROUPS.values()):
            for a in dict.fromkeys(ADDRESS_GROUPS.values()):
                if _is_cell(f, d, a):
                    out.append(f"{f}/{d}/{a}")
    return out


def _group_codes(feature: str, groups: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """level code -> group number (-1 = not in any cell), and the group names."""
    names = list(dict.fromkeys(groups.values()))
    return np.array([names.index(groups[lab]) if lab in groups else -1 for lab in FEATURES[feature]]), names


def cells_of(levels: np.ndarray, any_pattern: bool = False) -> np.ndarray:
    """Per pair, its cell name or '' (not a look-alike pattern). ``any_pattern``: every
    surname-exact pair's pattern, cell or not (exact/exact/same: the duplicates)."""
    n = len(levels)
    out = np.full(n, "", dtype=object)
    if not n:
        return out
    (f, fn), (d, dn), (a, an), (c, cn) = (
        _group_codes(x, g)
        for x, g in (
            ("first_name", FIRST_GROUPS),
            ("birth_date", DOB_GROUPS),
            ("address", ADDRESS_GROUPS),
            ("company", COMPANY_GROUPS),
        )
    )
    # the place group (an address group name) of every (address group, company group)
    place = np.array([an.index(_place(x, y, z)) for z in fn for x in an for y in cn])
    fc, dc = f[levels[:, _F]], d[levels[:, _D]]
    ac = place[(fc.clip(min=0) * len(an) + a[levels[:, _A]]) * len(cn) + c[levels[:, _C]]]
    allowed = np.array([_is_cell(x, y, z) for x in fn for y in dn for z in an], dtype=bool)
    code = (fc * len(dn) + dc) * len(an) + ac
    inside = (levels[:, _L] == FEATURES["last_name"].index("exact")) & (fc >= 0) & (dc >= 0)
    if not any_pattern:
        inside[inside] = allowed[code[inside]]
    labels = np.array([f"{x}/{y}/{z}" for x in fn for y in dn for z in an], dtype=object)
    out[inside] = labels[code[inside]]
    return out


def _mass(feature: str, groups: dict[str, str], group: str, probs, null_share: float) -> float:
    """Probability of a level group: the null share for 'null', else (1 - null share) × the
    sum of the group's levels (m or u are over the non-null levels)."""
    if group == "null":
        return null_share
    labels = FEATURES[feature][1:]
    return (1.0 - null_share) * float(sum(p for lab, p in zip(labels, probs) if groups.get(lab) == group))


def _place_mass(group: str, first: str, probs: dict, null_share: dict[str, float]) -> float:
    """Probability of a place group: the address and company groups that make it (the two
    features independent)."""
    total = 0.0
    for a in dict.fromkeys(ADDRESS_GROUPS.values()):
        for c in dict.fromkeys(COMPANY_GROUPS.values()):
            if _place(a, c, first) == group:
                total += _mass("address", ADDRESS_GROUPS, a, probs["address"], null_share.get("address", 0.0)) * _mass(
                    "company", COMPANY_GROUPS, c, probs["company"], null_share.get("company", 0.0)
                )
    return total


def fit_family(
    levels: np.ndarray,
    m: dict,
    u: dict,
    null_share: dict[str, float],
    null_share_m: dict[str, float],
    prior: float,
    possible_pairs: float,
    noise_sigmas: float = DEFAULT_NOISE_SIGMAS,
    weight_max: dict | None = None,
    iterations: int = 50,
) -> dict:
    """Per cell: pairs found, matches expected, look-alikes, and the weight adjustment (<= 0).

    The look-alikes of a cell are estimated by EM over its pairs with the features outside the
    cell (e-mail, phone, national id, gender, suffix) as the evidence: a pair is a true
    duplicate with odds (matches expected / look-alikes) × 2^(its other weights). Without other
    evidence this is the count: look-alikes = pairs found − matches expected."""
    cells = cells_of(levels)
    patterns, counts = np.unique(cells_of(levels, any_pattern=True), return_counts=True)
    n_pattern = dict(zip(patterns.tolist(), counts.tolist()))
    other = _other_weights(levels, m, u, weight_max or {})
    out = {}
    for cell in cell_names():
        fg, dg, ag = cell.split("/")
        parts = [
            ("first_name", FIRST_GROUPS, fg),
            ("last_name", {"exact": "exact"}, "exact"),
            ("birth_date", DOB_GROUPS, dg),
        ]
        m_c = math.prod(_mass(f, g, x, m[f], null_share_m.get(f, 0.0)) for f, g, x in parts)
        m_c *= _place_mass(ag, fg, m, null_share_m)
        u_c = math.prod(_mass(f, g, x, u[f], null_share.get(f, 0.0)) for f, g, x in parts)
        u_c *= _place_mass(ag, fg, u, null_share)
        w = other[cells == cell]
        e_c = prior * possible_pairs * m_c
        # the same from the cell's duplicate twin pattern, without the prior: the pairs that
        # agree on given name and birth date at the same place, times how often a duplicate's
        # given name and birth date differ as the cell's do (prior × m counts relatives that EM
        # took for matches: on name + birth date + postcode data 4× the true matches)
        ref = int(n_pattern.get(f"exact/exact/{ag}", 0))
        ref_m = _mass("first_name", FIRST_GROUPS, "exact", m["first_name"], null_share_m.get("first_name", 0.0))
        ref_m *= _mass("birth_date", DOB_GROUPS, "exact", m["birth_date"], null_share_m.get("birth_date", 0.0))
        ref_m *= _place_mass(ag, "exact", m, null_share_m)
        if ref >= REFERENCE_MIN_PAIRS and ref_m > 0 and dg != "null":
            e_c = min(e_c, ref * m_c / ref_m)
        looks = _look_alikes(w, e_c, iterations)
        free = _look_alikes_free(w, iterations)
        if free > looks:
            # the cell's own evidence (e-mail, mobile ... outside it) shows more look-alikes than
            # the expected matches leave room for: EM's m counted some look-alikes as matches
            # (a data set full of twins teaches "different given name" to matches too)
            looks, e_c = free, len(w) - free
        adjustment = 0.0
        # the estimate's noise: Poisson on the look-alikes, plus the count's noise on the pairs
        # that carry no other evidence (there look-alikes = pairs found - matches expected);
        # or the evidence outside the cell itself tells look-alikes from noise
        blind = float((w == 0).mean()) if len(w) else 1.0
        found = looks > noise_sigmas * math.sqrt(max(looks + blind * e_c, 1.0))
        # a handful of look-alikes shown by their evidence lowers the cell's weight, but is no
        # population of twins or households that switches a cluster guard on (``found``). Only
        # at a shared place: elsewhere the cell's duplicates are mostly customers who moved, and
        # their e-mail and phone changed with the address (the evidence is not independent of
        # the cell, see correlated_disagreement)
        shown = found or (ag in SHARED_PLACES and 2.0 * _evidence_gain(w, e_c, looks) >= noise_sigmas**2)
        if possible_pairs > 0 and u_c > 0 and looks > 0 and shown:
            adjustment = min(0.0, math.log2(u_c * (1 - prior) * possible_pairs / looks))
        if len(w) or adjustment:
            out[cell] = {
                "pairs": int(len(w)),
                "expected_matches": round(e_c, 2),
                "look_alikes": round(looks, 2),
                "found": bool(found),
                "adjustment": round(adjustment, 4),
            }
    return out


def matches_null_share(
    levels: np.ndarray, counts: np.ndarray, m: dict, u: dict, lam: float, fallback: dict[str, float]
) -> dict[str, float]:
    """Per feature, how often a true match has it missing: the candidates' null share weighted
    by their match posterior (missing values need not be as common among matches as among
    random pairs — a source without birth dates holds relatives as often as duplicates).
    ``levels``, ``counts``: the candidates' distinct level patterns and how many pairs each
    stands for (model.level_patterns): the posterior is a pattern's, not a pair's."""
    if not len(levels) or not 0 < lam < 1:
        return dict(fallback)
    logit = np.full(len(levels), math.log(lam / (1 - lam)))
    for k, feature in enumerate(FEATURE_NAMES):
        table = np.zeros(len(FEATURES[feature]))
        table[1:] = np.log(np.asarray(m[feature], float) / np.asarray(u[feature], float))
        logit += table[levels[:, k]]
    post = counts / (1.0 + np.exp(-np.clip(logit, -700, 700)))
    total = float(post.sum())
    if total < 1.0:
        return dict(fallback)
    return {f: float((post * (levels[:, k] == 0)).sum() / total) for k, f in enumerate(FEATURE_NAMES)}


def _look_alikes(w: np.ndarray, expected_matches: float, iterations: int) -> float:
    """EM for the number of non-matching pairs among a cell's pairs (``w``: their weights from
    the features outside the cell), the cell's expected matches held fixed."""
    if not len(w):
        return 0.0
    factor = np.exp2(np.clip(w, -60, 60))
    looks = max(len(w) - expected_matches, len(w) / 2.0)
    for _ in range(iterations):
        odds = expected_matches / max(looks, 1e-9) * factor
        new = float((1.0 / (1.0 + odds)).sum())
        if abs(new - looks) < 1e-3:
            looks = new
            break
        looks = new
    return looks


def _evidence_gain(w: np.ndarray, expected_matches: float, looks: float) -> float:
    """Log-likelihood ratio (natural log) of the cell's evidence outside it (``w``, bits per
    pair) with ``looks`` look-alikes beside the expected matches, against none: a few pairs
    whose e-mail and phone both disagree in a cell of duplicates that share them are
    look-alikes however small their count (a Poisson allowance on the count alone needs ~10).
    Pairs without such evidence (weight 0) add nothing: a count is not evidence."""
    if not len(w) or looks <= 0 or expected_matches <= 0:
        return 0.0
    share = expected_matches / (expected_matches + looks)
    return float(np.log(share + (1.0 - share) * np.exp2(-np.clip(w, -60, 60))).sum())


def _look_alikes_free(w: np.ndarray, iterations: int) -> float:
    """EM for the number of non-matching pairs among a cell's pairs with the share of matches
    estimated too (not held at the expected matches): what the evidence outside the cell says
    on its own. Pairs without such evidence (weight 0) follow the others' share."""
    if not len(w) or not (w != 0).any():
        return 0.0
    factor = np.exp2(np.clip(w, -60, 60))
    share = 0.5
    for _ in range(iterations):
        post = share * factor / (share * factor + (1.0 - share))
        new = float(post.mean())
        if abs(new - share) < 1e-6:
            share = new
            break
        share = new
    return float(len(w) * (1.0 - share))


def _other_weights(levels: np.ndarray, m: dict, u: dict, weight_max: dict) -> np.ndarray:
    """Per pair, the summed weight log2(m/u) of the personal features a cell does not cover
    (e-mail, mobile, national id, gender, suffix)."""
    total = np.zeros(len(levels))
    for k, feature in enumerate(FEATURE_NAMES):
        if feature in ("first_name", "last_name", "birth_date", "address", "company"):
            continue
        table = np.zeros(len(FEATURES[feature]))
        table[1:] = np.log2(np.asarray(m[feature], float) / np.asarray(u[feature], float))
        for label, cap in (weight_max.get(feature) or {}).items():
            if label in FEATURES[feature]:
                i = FEATURES[feature].index(label)
                table[i] = min(table[i], float(cap))
        if feature == "phone":  # a shared landline is the household's, like the address: no evidence here
            table[FEATURES["phone"].index("landline_exact")] = 0.0
        if feature == "email":  # jsmith@ / msmith@, john.smith2@: one name pattern at one domain,
            table[FEATURES["email"].index("initial_or_digit")] = 0.0  # the family's or the company's
        total += table[levels[:, k]]
    return total


def family_adjustment(levels: np.ndarray, model: dict) -> np.ndarray:
    """Per pair, the learnt weight adjustment of its cell (0 outside cells or without one)."""
    table = (model.get("family") or {}).get("cells") or {}
    out = np.zeros(len(levels))
    if not table or not len(levels):
        return out
    cells = cells_of(levels)
    for cell, info in table.items():
        adj = float(info.get("adjustment", 0.0))
        if adj:
            out[cells == cell] = adj
    return out


# which look-alike cells switch a "learned" cluster guard on (pipeline/cluster.py)
GUARD_CELLS = {
    "twins": lambda f, d, a: f != "exact" and d == "exact",
    "household": lambda f, d, a: f != "exact" and d in ("far", "null") and a in ("same", "fuzzy", "postal"),
    "birth_date": lambda f, d, a: d == "far",
}
GUARD_CELLS["gender"] = lambda f, d, a: GUARD_CELLS["twins"](f, d, a) or GUARD_CELLS["household"](f, d, a)


GUARD_MIN_SHARE = 0.02  # look-alikes of a kind per record that switch its guard on
GUARD_MIN_BITS = 1.0  # ... or a look-alike adjustment of at least this many bits


def learned_guards(model: dict | None, min_share: float = GUARD_MIN_SHARE) -> dict[str, bool] | None:
    """Per family guard: did training find look-alikes of that kind in this data — beyond noise,
    and either more than independence predicts (the cell's weight was lowered) or at least
    ``min_share`` of the records (a handful of odd pairs in FEBRL is not a population of
    households)? None: no model, or one trained before look-alike cells existed."""
    cells = (model or {}).get("family", {}).get("cells") if isinstance(model, dict) else None
    if cells is None or not isinstance(model, dict):
        return None
    records = float((model.get("training") or {}).get("records") or 0)
    out = {}
    for guard, test in GUARD_CELLS.items():
        found = [info for cell, info in cells.items() if test(*cell.split("/")) and info.get("found")]
        # look-alikes beyond what independence predicts (by more than a bit: coincidences of a
        # common surname in one postcode are not a family)
        lowered = any(i.get("adjustment", 0.0) < -GUARD_MIN_BITS for i in found)
        out[guard] = lowered or (bool(found) and sum(i.get("look_alikes", 0.0) for i in found) >= min_share * records)
    return out
