"""Cluster linked records into customers: connected components over `match` edges and
must-links, then split any cluster whose records conflict on a strong identifier.

Why guards: connected components chain (A~B, B~C ⇒ A=C). A shared household landline or
address can chain a whole family into one "customer". So after the components are found, every
pair inside a (small) cluster is checked against guards — different name suffixes, birth dates
years apart, different first names with known birth dates, different gender with different
first names, cannot-link overrides — and a cluster with a conflict is rebuilt from its strongest
edges down (Kruskal order), refusing any edge that would join two conflicting records. That
cuts the cluster exactly at its weakest links and is deterministic.

Tunables: `rules.matching["clustering"]` (see DEFAULTS and docs/clustering.md).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz.distance import JaroWinkler
from rapidfuzz.process import cpdist
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .errors import RulesError
from .keys import positions_in, sorted_unique_positions

#: the record columns the guards read (an incremental run loads just these, and link's, up front)
GUARD_COLUMNS = (
    "name_suffix_std",
    "first_name_key",
    "first_name_std",
    "last_name_key",
    "name_key",
    "gender_std",
    "birth_date_std",
)

DEFAULTS: dict[str, Any] = {
    # a component bigger than this keeps only its strong edges (above the match threshold)
    "max_cluster_size": 50,
    "strong_edge_min_probability": 0.9999,
    # components up to this size get every record pair checked; bigger ones only their edges
    "guard_max_cluster_size": 2000,
    # memory bound on the all-pairs check: past it, the largest components are checked by edge
    "guard_max_pairs": 10_000_000,
    # true / false, or "learned": on when link's training found look-alikes of that kind in the
    # data (link/family.py: twins, households, another generation), off when it found none
    "guards": {
        "suffix": True,  # Jr vs Sr, II vs III
        "birth_date": "learned",  # birth dates more than max_birth_gap_years apart
        "max_birth_gap_years": 2,
        # widen the gap to the birth dates' spread among the model's matches (learnt_birth_gap)
        "learn_birth_gap": True,
        "household": "learned",  # different first names and different known birth dates
        "twins": "learned",  # different first names, same known birth date
        "gender": "learned",  # different gender and different first names
        "first_name_alone": False,  # different first names with no birth date to go by
        "first_name_min_similarity": 0.85,  # Jaro-Winkler below this = different first names
        # true: the guards above (not suffix) only cut chains; two records matched directly stay together
        "trust_direct_matches": False,
    },
}

# conflict reason codes, in the order they are reported
_REASONS = (
    "cannot_link",
    "unmerge",
    "suffix_conflict",
    "household_conflict",
    "twin_conflict",
    "birth_date_conflict",
    "gender_conflict",
    "first_name_conflict",
)
_HARD = {"cannot_link", "unmerge"}  # never waived, even by a must-link
_FACTS = _HARD | {"suffix_conflict"}  # never waived by a shared personal identifier


def clustering_settings(rules) -> dict[str, Any]:
    """Defaults overlaid with `rules.matching["clustering"]`; a wrong type is a RulesError."""
    cfg = copy.deepcopy(DEFAULTS)
    user = (getattr(rules, "matching", None) or {}).get("clustering") or {}
    where = _rules_path(rules)
    if not isinstance(user, dict):
        raise RulesError(where, "matching.clustering must be a mapping")
    guards = user.get("guards") or {}
    if not isinstance(guards, dict):
        raise RulesError(where, "matching.clustering.guards must be a mapping")
    for key, value in user.items():
        if key == "guards":
            continue
        if key not in DEFAULTS:
            raise RulesError(where, f"matching.clustering.{key} is not a known setting ({', '.join(DEFAULTS)})")
        cfg[key] = _number(value, f"matching.clustering.{key}", where)
    for key, value in guards.items():
        if key not in DEFAULTS["guards"]:
            known = ", ".join(DEFAULTS["guards"])
            raise RulesError(where, f"matching.clustering.guards.{key} is not a known guard ({known})")
        default = DEFAULTS["guards"][key]
        if value == "learned" and key in LEARNABLE_GUARDS:
            cfg["guards"][key] = "learned"
        elif isinstance(default, bool) or default == "learned":
            cfg["guards"][key] = bool(value)
        else:
            cfg["guards"][key] = _number(value, f"matching.clustering.guards.{key}", where)
    return cfg


LEARNABLE_GUARDS = ("birth_date", "household", "twins", "gender")


def resolve_guards(cfg: dict[str, Any], model: dict | None) -> dict[str, Any]:
    """The guards with every "learned" one decided by the model (on without a model that
    knows: the safe side)."""
    from .link.family import learned_guards
    from .link.training import learned_cluster_size

    learned = learned_guards(model)
    guards = dict(cfg["guards"])
    for key in LEARNABLE_GUARDS:
        if guards.get(key) == "learned":
            guards[key] = True if learned is None else bool(learned.get(key, True))
    return {**cfg, "guards": guards, "max_cluster_size": learned_cluster_size(model, cfg["max_cluster_size"])}


def _rules_path(rules) -> str:
    directory = getattr(rules, "directory", None)
    return str(directory / "matching.yaml") if directory else "rules/matching.yaml"


def _number(value, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RulesError(where, f"{name} must be a number, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# public entry point


def cluster_records(
    records, pairs: pd.DataFrame | None, rules, overrides: pd.DataFrame | None, model: dict | None = None
) -> pd.DataFrame:
    """One row per record: `record_key, cluster, cluster_reason`.

    `cluster` labels are the rank of each cluster's smallest record_key, so the same input in
    any row order gives the same labels. `cluster_reason` is `singleton`, `matched`,
    `must_link`, or `split:<conflicts>` (e.g. `split:suffix_conflict`, `split:oversized`).
    `records` is the standardized frame (guards use its `_std`/`_key` columns when present);
    a bare sequence of record keys also works (then only overrides can split). ``model``: link's
    model, which decides the "learned" guards (without it they are on).
    """
    cfg = resolve_guards(clustering_settings(rules), model)
    nodes = _node_table(records)
    keys = nodes["record_key"].to_numpy()
    n = len(keys)
    if n == 0:
        return pd.DataFrame(
            {
                "record_key": pd.Series(dtype=object),
                "cluster": pd.Series(dtype="int64"),
                "cluster_reason": pd.Series(dtype=object),
            }
        )

    ei, ej, w, p, must, ident = _edges(pairs, overrides, keys)
    hard_i, hard_j, hard_kind = _hard_pairs(overrides, keys)

    reason_bits = np.zeros(n, np.int64)  # per node: why its cluster was cut (see _BIT)

    # 0. an unmerged record loses every automatic edge (must-links still hold it)
    alone = _unmerged_records(overrides, keys)
    if len(alone):
        touch = (np.isin(ei, alone) | np.isin(ej, alone)) & ~must
        touched = np.unique(np.concatenate([ei[touch], ej[touch]]))
        reason_bits[touched[np.isin(touched, alone)]] |= _BIT["unmerge"]
        ei, ej, w, p, must, ident = ei[~touch], ej[~touch], w[~touch], p[~touch], must[~touch], ident[~touch]

    comp = _components(n, ei, ej)

    # 1. very large components keep only their strong edges
    sizes = np.bincount(comp)
    oversized = sizes[comp[ei]] > cfg["max_cluster_size"] if len(ei) else np.zeros(0, bool)
    if oversized.any():
        weak = oversized & ~must & ~(p >= cfg["strong_edge_min_probability"])
        big_nodes = np.flatnonzero(sizes[comp] > cfg["max_cluster_size"])
        if weak.any():
            keep = ~weak
            ei, ej, w, p, must, ident = ei[keep], ej[keep], w[keep], p[keep], must[keep], ident[keep]
            old = comp
            comp = _components(n, ei, ej)
            # only report components that really fell apart
            parts = pd.Series(comp[big_nodes]).groupby(old[big_nodes]).nunique()
            cut = parts.index[parts.to_numpy() > 1].to_numpy()
            reason_bits[big_nodes[np.isin(old[big_nodes], cut)]] |= _BIT["oversized"]

    # 2. guards: which record pairs inside one component conflict
    ca, cb, creason = _conflicts(nodes, comp, ei, ej, hard_i, hard_j, hard_kind, cfg, must, _noise_sigmas(rules))
    if len(ca):
        # a must-link wins over the automatic guards (a person decided), never over cannot-link
        mcomp = _components(n, ei[must], ej[must])
        hard = np.isin(creason, list(_HARD))
        waive = (mcomp[ca] == mcomp[cb]) & ~hard
        # two records linked directly by a shared personal identifier (the same mailbox and
        # mobile, or national id) — or, with trust_direct_matches, matched directly at all —
        # stay together unless a fact says otherwise (suffix, a person's cannot-link)
        direct = ~must & (ident | bool(cfg["guards"].get("trust_direct_matches", False)))
        if direct.any():
            facts = np.isin(creason, list(_FACTS))
            waive |= ~facts & np.isin(np.minimum(ca, cb) * n + np.maximum(ca, cb), ei[direct] * n + ej[direct])
        ca, cb, creason = ca[~waive], cb[~waive], creason[~waive]

    if len(ca):
        keep_edge = _split_conflicting(comp, ei, ej, w, must, ca, cb, creason, reason_bits)
        ei, ej, must = ei[keep_edge], ej[keep_edge], must[keep_edge]
        comp = _components(n, ei, ej)

    return _label(keys, comp, ei, ej, must, reason_bits)


# --------------------------------------------------------------------------------------------
# inputs


def _node_table(records) -> pd.DataFrame:
    """Distinct records sorted by record_key (node i = i-th smallest key)."""
    if isinstance(records, pd.DataFrame):
        frame = records
    else:
        frame = pd.DataFrame({"record_key": list(records)})
    if "record_key" not in frame.columns:
        raise ValueError("cluster_records needs a 'record_key' column")
    # only the key and the guards' columns are read; the row order is worked out on the key
    # column alone, then those columns are taken once
    return _take_sorted_unique(frame[[c for c in ("record_key", *GUARD_COLUMNS) if c in frame.columns]])


def _take_sorted_unique(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a record_key, the last of each key, sorted by key: one copy of the frame."""
    out = frame.take(sorted_unique_positions(frame["record_key"]))
    out.index = pd.RangeIndex(len(out))
    return out


def _index_pairs(keys: np.ndarray, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Node positions of a pair frame's record_key_l and record_key_r (one lookup)."""
    both = positions_in(
        keys,
        np.concatenate([frame["record_key_l"].to_numpy(dtype=object), frame["record_key_r"].to_numpy(dtype=object)]),
    )
    return both[: len(frame)], both[len(frame) :]


def _edges(pairs, overrides, keys):
    """Match edges plus must-links, as i < j node pairs, one edge per pair (strongest kept)."""
    ei = ej = np.zeros(0, np.int64)
    w = p = np.zeros(0, float)
    must = ident = np.zeros(0, bool)
    if pairs is not None and len(pairs) and {"record_key_l", "record_key_r"} <= set(pairs.columns):
        frame = pairs
        if "decision" in frame.columns:
            frame = frame[_is_match(frame["decision"])]
        ei, ej = _index_pairs(keys, frame)
        w = (
            pd.to_numeric(frame["match_weight"], errors="coerce").to_numpy(float)
            if "match_weight" in frame
            else np.zeros(len(frame))
        )
        if "match_probability" in frame:
            p = pd.to_numeric(frame["match_probability"], errors="coerce").to_numpy(float)
        else:  # Fellegi-Sunter weight is log2 of the Bayes factor
            p = 1.0 / (1.0 + np.exp2(-w))
        w = np.where(np.isnan(w), -np.inf, w)
        p = np.where(np.isnan(p), 0.0, p)
        must = np.zeros(len(ei), bool)
        ident = _shared_identifier(frame)
    mi, mj, _ = _override_pairs(overrides, keys, {"must_link"})
    ei = np.concatenate([ei, mi])
    ej = np.concatenate([ej, mj])
    w = np.concatenate([w, np.full(len(mi), np.inf)])
    p = np.concatenate([p, np.ones(len(mi))])
    must = np.concatenate([must, np.ones(len(mi), bool)])
    ident = np.concatenate([ident, np.zeros(len(mi), bool)])

    ok = (ei >= 0) & (ej >= 0) & (ei != ej)
    ei, ej, w, p, must, ident = ei[ok], ej[ok], w[ok], p[ok], must[ok], ident[ok]
    lo, hi = np.minimum(ei, ej), np.maximum(ei, ej)
    # strongest first within a pair: must-link, then weight, then probability
    order = np.lexsort((-p, -w, ~must, hi, lo))
    lo, hi, w, p, must, ident = lo[order], hi[order], w[order], p[order], must[order], ident[order]
    first = np.ones(len(lo), bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], w[first], p[first], must[first], ident[first]


def _is_match(decision: pd.Series) -> np.ndarray:
    """decision.astype(str).str.lower() == "match", worked out once per distinct decision."""
    codes, uniques = pd.factorize(decision.to_numpy(object), use_na_sentinel=True)
    hit = np.array([str(u).lower() == "match" for u in uniques.tolist()] + [False], bool)
    return hit[codes]


def _shared_identifier(frame: pd.DataFrame) -> np.ndarray:
    """Per match edge: the records share a personal identifier — the same e-mail mailbox and
    mobile, or the same national id (read from the edge's evidence). The mobile is looked for
    only where the mailbox is shared, the national id only where that pair is not."""
    if "evidence" not in frame.columns or not len(frame):
        return np.zeros(len(frame), bool)
    values = frame["evidence"].array  # link's evidence codes are read without joining their text
    text = values if hasattr(values, "contains") else frame["evidence"].astype(str).to_numpy(object)
    out = _holds(text, '"email": {"level": "exact"')
    rows = np.flatnonzero(out)
    out[rows] = _holds(text[rows], '"phone": {"level": "mobile_exact"')
    rows = np.flatnonzero(~out)
    out[rows] = _holds(text[rows], '"national_id": {"level": "exact"')
    return out


def _holds(texts, needle: str) -> np.ndarray:
    if hasattr(texts, "contains"):
        return texts.contains(needle)
    return pd.Series(texts, dtype=object).str.contains(needle, regex=False).to_numpy(bool)


def _override_pairs(overrides, keys, kinds: set[str]):
    if (
        overrides is None
        or not len(overrides)
        or not {"record_key_l", "record_key_r", "kind"} <= set(overrides.columns)
    ):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object)
    frame = overrides[overrides["kind"].isin(kinds)]
    i, j = _index_pairs(keys, frame)
    kind = frame["kind"].to_numpy(object)
    ok = (i >= 0) & (j >= 0) & (i != j)
    return np.minimum(i, j)[ok], np.maximum(i, j)[ok], kind[ok]


def _unmerged_records(overrides, keys) -> np.ndarray:
    """Nodes named alone in an `unmerge` override (record_key_r empty)."""
    if (
        overrides is None
        or not len(overrides)
        or not {"record_key_l", "record_key_r", "kind"} <= set(overrides.columns)
    ):
        return np.zeros(0, np.int64)
    frame = overrides[(overrides["kind"] == "unmerge") & overrides["record_key_r"].isna()]
    pos = positions_in(keys, frame["record_key_l"])
    return np.unique(pos[pos >= 0])


def _hard_pairs(overrides, keys):
    return _override_pairs(overrides, keys, _HARD)


def _components(n: int, ei: np.ndarray, ej: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(ei), np.int8), (ei, ej)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# guards


_SQUASH = re.compile(r"[\s\-\.'’]+")
_GENDER = {"m": "m", "male": "m", "man": "m", "男": "m", "f": "f", "female": "f", "woman": "f", "女": "f"}


def _squash(t: str) -> str:
    return _SQUASH.sub("", t)


def _squashed(uniques) -> np.ndarray | None:
    """_squash(str(u).strip().lower()) for every value at once: one lower() and one regex pass
    over the values joined by NUL (the pattern strips what strip() would); None if a value is
    not a str or holds a NUL."""
    values = np.asarray(uniques, dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) not in ("string", "empty"):
        return None
    items = values.tolist()
    parts = _SQUASH.sub("", "\x00".join(items).lower()).split("\x00")
    return np.array(parts + [None], dtype=object)[:-1] if len(parts) == len(items) and items else None


def _coded(
    frame: pd.DataFrame, column: str, normalize, factorized: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(code per node, normalized distinct texts + a '' sentinel for code -1).

    Each distinct raw value is normalized once; a blank result counts as missing (-1).
    ``factorized`` keeps a column's distinct values for a second normalization of it.
    """
    if column not in frame.columns:
        return np.full(len(frame), -1, np.int64), np.array([""], dtype=object)
    if factorized is not None and column in factorized:
        raw, uniques = factorized[column]
    else:
        raw, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        if factorized is not None:
            factorized[column] = raw, uniques
    norm = _squashed(uniques) if normalize is _squash else None
    if norm is None:
        norm = np.array([normalize(str(u).strip().lower()) or "" for u in uniques], dtype=object)
    codes, texts = pd.factorize(norm)
    codes = np.append(codes.astype(np.int64), -1)[raw]  # raw -1 (missing) -> -1
    texts = np.append(np.asarray(texts, dtype=object), "")
    blank = np.flatnonzero(texts == "")
    if len(blank) > 1:  # a normalized "" is missing too
        codes[np.isin(codes, blank[:-1])] = -1
    return codes, texts


def _birth_dates(frame: pd.DataFrame):
    """(known, days since 1900, 8 digits YYYYMMDD) per node, each distinct date parsed once."""
    n = len(frame)
    if "birth_date_std" not in frame.columns:
        return np.zeros(n, bool), np.zeros(n, np.int64), np.zeros((n, 8), np.int8)
    raw, uniques = pd.factorize(frame["birth_date_std"].astype(object), use_na_sentinel=True)
    text = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str).str.slice(0, 10)
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    iso = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(bool)
    known = np.append(dates.notna().to_numpy() & iso, False)
    days = np.append((dates - pd.Timestamp("1900-01-01")).dt.days.fillna(0).to_numpy(np.int64), 0)
    digits = np.zeros((len(text) + 1, 8), np.int8)
    if known.any():
        good = text[known[:-1]].str.replace("-", "", regex=False)
        digits[:-1][known[:-1]] = np.frombuffer("".join(good).encode(), dtype=np.uint8).reshape(-1, 8) - ord("0")
    return known[raw], days[raw], digits[raw]


def _attributes(nodes: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-node guard attributes as integer codes (fast pairwise comparison)."""
    suffix, _ = _coded(nodes, "name_suffix_std", _squash)
    seen: dict = {}
    first, first_text = _coded(nodes, "first_name_key", _squash, seen)
    first_tok, _ = _coded(nodes, "first_name_key", lambda t: (re.split(r"[\s\-]+", t) or [""])[0], seen)
    written, written_text = _coded(nodes, "first_name_std", _written_key)
    last, last_text = _coded(nodes, "last_name_key", _squash)
    name_key, _ = _coded(nodes, "name_key", _squash)
    gender, _ = _coded(nodes, "gender_std", lambda t: _GENDER.get(t, ""))
    known, days, digits = _birth_dates(nodes)
    return {
        "suffix": suffix,
        "first": first,
        "first_tok": first_tok,
        "last": last,
        "name_key": name_key,
        "gender": gender,
        "dob_known": known,
        "dob_days": days,
        "dob_digits": digits,
        "first_text": first_text[first],  # -1 -> "" sentinel
        "last_text": last_text[last],
        "written_text": written_text[written],
    }


def _within_component_pairs(comp: np.ndarray, limit: int, budget: int, ei, ej):
    """All node pairs inside components of size 2..limit (smallest components first, at most
    `budget` pairs), plus the edges of the bigger ones."""
    sizes = np.bincount(comp)
    full = sizes <= limit
    pair_counts = np.where(full, sizes * (sizes - 1) // 2, 0)
    if pair_counts.sum() > budget:
        by_size = np.argsort(sizes, kind="stable")
        full[by_size[np.cumsum(pair_counts[by_size]) > budget]] = False
    order = np.argsort(comp, kind="stable")
    sc = comp[order]
    starts = np.searchsorted(sc, sc, side="left")
    rank = np.arange(len(order)) - starts
    count = np.where(full[sc], sizes[sc] - 1 - rank, 0)
    total = int(count.sum())
    a = np.repeat(order, count)
    offs = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    b = order[np.repeat(np.arange(len(order)) + 1, count) + offs]
    big = ~full[comp[ei]] if len(ei) else np.zeros(0, bool)
    a = np.concatenate([a, ei[big]])
    b = np.concatenate([b, ej[big]])
    return np.minimum(a, b), np.maximum(a, b)


def _first_names_differ(at, a, b, min_sim: float) -> np.ndarray:
    """True where both first names are known and are not the same name (nickname-canonical
    keys, initials, short forms, middle names, Chinese given/family order swaps and typos all
    count as the same name)."""
    f = at["first"]
    differ = (f[a] >= 0) & (f[b] >= 0) & (f[a] != f[b])
    differ &= ~((at["first_tok"][a] >= 0) & (at["first_tok"][a] == at["first_tok"][b]))
    differ &= ~((at["name_key"][a] >= 0) & (at["name_key"][a] == at["name_key"][b]))
    idx = np.flatnonzero(differ)
    if not len(idx):
        return differ
    first, last = at["first_text"], at["last_text"]
    fa, fb = first[a[idx]], first[b[idx]]
    la, lb = last[a[idx]], last[b[idx]]
    swapped = (fa == lb) & (la == fb) & (la != "")
    # swapped with a typo in one of them (`fster lily` / `lily foster`), as link compares them;
    # the given name in the surname field may be a nickname, or a typo of one, like a given name
    # in its own field (`baker teddy` / `theodore baker`, `hayes csarlie` / `charles hayes`)
    both = (la != "") & (lb != "")
    cross = np.zeros(len(idx), bool)
    if both.any():
        j = np.flatnonzero(both)
        s1 = cpdist(fa[j].tolist(), lb[j].tolist(), scorer=JaroWinkler.normalized_similarity, workers=1)
        s2 = cpdist(la[j].tolist(), fb[j].tolist(), scorer=JaroWinkler.normalized_similarity, workers=1)
        one1 = (s1 >= min_sim) | _nickname_typos(fa[j], lb[j], min_sim)
        cross[j] = one1 & ((s2 >= min_sim) | _nickname_typos(la[j], fb[j], min_sim))
    swapped |= cross
    # an initial (J = John) or a short form the other name starts with (Cat = Catherine);
    # only 3-4 letters, so Daniel/Danielle stay different
    initial = np.array([_abbreviates(x, y) or _abbreviates(y, x) for x, y in zip(fa, fb)], bool)
    # Jaro-Winkler once per distinct name pair
    uniq = pd.DataFrame({"x": fa, "y": fb}).drop_duplicates()
    sims = cpdist(uniq["x"].tolist(), uniq["y"].tolist(), scorer=JaroWinkler.normalized_similarity, workers=1)
    sim = pd.DataFrame({"x": fa, "y": fb}).merge(uniq.assign(sim=sims), on=["x", "y"], how="left")["sim"].to_numpy()
    still = ~swapped & ~initial & (sim < min_sim)
    still &= ~_nickname_typos(fa, fb, min_sim)
    if still.any():
        k = np.flatnonzero(still)
        still[k] = ~_written_same_name(at["written_text"][a[idx[k]]], at["written_text"][b[idx[k]]], fa[k], fb[k])
    differ[idx] = still
    return differ


_NOT_KEY = re.compile(r"[^a-z0-9]")


def _written_key(text: str) -> str:
    """standardize's latin_key of a given name as written. ASCII text has nothing to fold: its
    key is its lower-case letters and digits (no call into the cached folding: 58k distinct
    names at 200k customers overflow its cache)."""
    if text.isascii():
        return _NOT_KEY.sub("", text.lower())
    from .standardize.names import latin_key

    return latin_key(text)


def _written_same_name(wa: np.ndarray, wb: np.ndarray, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """True where a given name as written is the other record's name: the same written name,
    or one of the other's nickname forms or a 3-4 letter start of one. Standardize keys a
    nickname by one formal name (`Sam` → samuel, `Ted` → edward), so a nickname of two formal
    names (Samuel / Samantha, Edward / Theodore via Teddy) reads as another person's name."""
    from .link.names import name_forms

    forms = name_forms()

    def same(w: str, other_written: str, other_key: str) -> bool:
        if not w:
            return False
        spellings = forms.get(other_key, (other_key,))
        return w == other_written or w in spellings or any(_abbreviates(w, n) for n in spellings)

    return np.array(
        [same(x, y, g) or same(y, x, f) for x, y, f, g in zip(wa.tolist(), wb.tolist(), fa.tolist(), fb.tolist())],
        dtype=bool,
    )


def _nickname_typos(fa: np.ndarray, fb: np.ndarray, min_sim: float) -> np.ndarray:
    """True where one name is a typo of the other's formal name or nickname (`mxa` /
    `maximilian` via `max`): link.names.same_given_name, once per distinct name pair."""
    from .link.names import same_given_name

    if not len(fa):
        return np.zeros(0, bool)
    pairs = pd.DataFrame({"x": fa, "y": fb})
    uniq = pairs.drop_duplicates()
    same = [same_given_name(x, y, min_sim) for x, y in zip(uniq["x"].tolist(), uniq["y"].tolist())]
    return pairs.merge(uniq.assign(same=same), on=["x", "y"], how="left")["same"].to_numpy(bool)


# endings that turn a given name into its other-gender form: Daniel/Danielle, Paul/Paula,
# Louis/Louise, Eric/Erica, Robert/Roberta, Jan/Jane, Justin/Justine
_GENDERED_ENDINGS = ("a", "e", "le", "ne", "na", "ette", "elle", "ine", "ina")


def _gendered_variants(at, a, b) -> np.ndarray:
    """True where one first name is the other plus a gendered ending (Daniel/Danielle). Such
    names pass as "the same name" (Jaro-Winkler 0.95, or a short form) but, with the genders
    differing too, are two people — twins above all."""
    f = at["first"]
    out = (f[a] >= 0) & (f[b] >= 0) & (f[a] != f[b])
    idx = np.flatnonzero(out)
    if len(idx):
        first = at["first_text"]
        out[idx] = [
            _extends_with_ending(x, y) or _extends_with_ending(y, x) for x, y in zip(first[a[idx]], first[b[idx]])
        ]
    return out


def _extends_with_ending(short: str, name: str) -> bool:
    return len(short) >= 3 and name.startswith(short) and name[len(short) :] in _GENDERED_ENDINGS


def _abbreviates(short: str, name: str) -> bool:
    return len(short) < len(name) and (len(short) == 1 or 3 <= len(short) <= 4) and name.startswith(short)


def _birth_dates_far(at, a, b, gap_years: float) -> np.ndarray:
    """Both known and more than `gap_years` apart, unless it looks like one typo: a day/month
    swap, one wrong digit, or two adjacent digits transposed."""
    known = at["dob_known"][a] & at["dob_known"][b]
    if float(gap_years).is_integer():
        # calendar years: 1819-08-10 and 1821-08-10 are two years apart, the leap day between
        # them aside (YYYYMMDD as a number; N years later is N * 10000 more)
        far = known & (_ymd_gaps(at, a, b) > int(gap_years) * 10000)
    else:
        far = known & (np.abs(at["dob_days"][a] - at["dob_days"][b]) > gap_years * 365.25)
    idx = np.flatnonzero(far)
    if len(idx):
        far[idx] = ~_one_typo_apart(at, a[idx], b[idx])
    return far


def _ymd_gaps(at, a, b) -> np.ndarray:
    """|YYYYMMDD(a) - YYYYMMDD(b)| per pair: N calendar years apart is N * 10000 more."""
    ymd = at["dob_digits"].astype(np.int64) @ (10 ** np.arange(7, -1, -1, dtype=np.int64))
    return np.abs(ymd[a] - ymd[b])


def _one_typo_apart(at, a, b) -> np.ndarray:
    """Two known birth dates one typo apart: one wrong digit, two adjacent digits transposed,
    or day and month swapped."""
    da, db = at["dob_digits"][a], at["dob_digits"][b]
    diff = da != db
    ndiff = diff.sum(axis=1)
    one_digit = ndiff == 1
    pos = np.argmax(diff, axis=1)
    nxt = np.minimum(pos + 1, 7)
    rows = np.arange(len(a))
    transposed = (ndiff == 2) & diff[rows, nxt] & (da[rows, pos] == db[rows, nxt]) & (da[rows, nxt] == db[rows, pos])
    swap = (da[:, :4] == db[:, :4]).all(1) & (da[:, 4:6] == db[:, 6:8]).all(1) & (da[:, 6:8] == db[:, 4:6]).all(1)
    return one_digit | transposed | swap


BIRTH_GAP_TAIL_YEARS = 10  # the gaps compared with: up to where birth dates are another generation


def learnt_birth_gap(at, ei, ej, least: int, sigmas: float) -> int:
    """The birth-date guard's gap in whole years, widened by the data: the birth dates of the
    pairs the model matched directly spread over a contiguous run of years (one to three where
    the dates come from ages in a census, under one where they are typed), beyond which the
    matched pairs thin out to a sparse tail (typos, chance). The gap grows from ``least`` while
    the matched pairs ``g`` whole years apart stand out above the tail up to
    BIRTH_GAP_TAIL_YEARS by more than ``sigmas`` Poisson deviations. Pairs one typo apart are
    left out, as the guard leaves them."""
    both = at["dob_known"][ei] & at["dob_known"][ej]
    gaps = _ymd_gaps(at, ei[both], ej[both])
    keep = (gaps > 0) & ~_one_typo_apart(at, ei[both], ej[both])
    counts = np.bincount(gaps[keep] // 10000, minlength=BIRTH_GAP_TAIL_YEARS + 1)
    g = int(least)
    while g + 1 < BIRTH_GAP_TAIL_YEARS:
        tail = float(counts[g + 1 : BIRTH_GAP_TAIL_YEARS].mean())
        if counts[g] <= tail + sigmas * math.sqrt(max(tail, 1.0)):
            break
        g += 1
    return g


def _noise_sigmas(rules) -> float:
    """The look-alike cells' noise allowance (rules/matching.yaml `family_noise_sigmas`)."""
    from .link.family import DEFAULT_NOISE_SIGMAS

    return float((getattr(rules, "matching", None) or {}).get("family_noise_sigmas", DEFAULT_NOISE_SIGMAS))


def _conflicts(nodes, comp, ei, ej, hard_i, hard_j, hard_kind, cfg, must=None, sigmas=3.0):
    """Conflicting record pairs inside one component, with their reason code. ``must`` marks
    the must-link edges (the others are the model's matches, which the birth gap is learnt from)."""
    g = cfg["guards"]
    a, b = _within_component_pairs(comp, int(cfg["guard_max_cluster_size"]), int(cfg["guard_max_pairs"]), ei, ej)
    reason = np.full(len(a), "", dtype=object)
    if len(a):
        # attributes of the nodes in these pairs only (singletons never conflict); a and b
        # below index that subset, the node numbers are restored for the result
        in_pair = np.zeros(len(nodes), bool)
        in_pair[a] = in_pair[b] = True
        at = _attributes(nodes.take(np.flatnonzero(in_pair)))
        node_a, node_b = a, b
        remap = np.cumsum(in_pair) - 1
        a, b = remap[a], remap[b]

        def mark(mask, code):
            reason[mask & (reason == "")] = code

        if g["suffix"]:
            s = at["suffix"]
            mark((s[a] >= 0) & (s[b] >= 0) & (s[a] != s[b]), "suffix_conflict")
        names_differ = g["household"] or g["twins"] or g["gender"] or g["first_name_alone"]
        differ = _first_names_differ(at, a, b, float(g["first_name_min_similarity"])) if names_differ else None
        known = at["dob_known"][a] & at["dob_known"][b]
        same_dob = known & (at["dob_days"][a] == at["dob_days"][b])
        if g["household"]:
            mark(differ & known & ~same_dob, "household_conflict")
        if g["twins"]:
            mark(differ & same_dob, "twin_conflict")
        if g["birth_date"]:
            gap = g["max_birth_gap_years"]
            if g.get("learn_birth_gap") and float(gap).is_integer():
                matched = np.ones(len(ei), bool) if must is None else ~must
                gap = learnt_birth_gap(at, remap[ei[matched]], remap[ej[matched]], int(gap), sigmas)
            mark(_birth_dates_far(at, a, b, float(gap)), "birth_date_conflict")
        if g["gender"]:
            gd = at["gender"]
            genders_differ = (gd[a] >= 0) & (gd[b] >= 0) & (gd[a] != gd[b])
            mark(genders_differ & (differ | _gendered_variants(at, a, b)), "gender_conflict")
        if g["first_name_alone"]:
            mark(differ, "first_name_conflict")
        a, b = node_a, node_b
    hit = reason != ""
    a, b, reason = a[hit], b[hit], reason[hit]
    same = comp[hard_i] == comp[hard_j]
    a = np.concatenate([hard_i[same], a])
    b = np.concatenate([hard_j[same], b])
    reason = np.concatenate([hard_kind[same].astype(object), reason])
    return a, b, reason


# --------------------------------------------------------------------------------------------
# splitting


def _split_conflicting(comp, ei, ej, w, must, ca, cb, creason, reason_bits) -> np.ndarray:
    """Rebuild each conflicting component from its strongest edges down, skipping any edge
    that would join conflicting records (Kruskal with cannot-join constraints). Returns which
    edges to keep; ORs each component's conflict reasons into `reason_bits` of its nodes."""
    keep = np.ones(len(ei), bool)
    bad = np.unique(comp[ca])
    comp_bits = np.zeros(int(comp.max()) + 1, np.int64)
    np.bitwise_or.at(comp_bits, comp[ca], _bits(creason))
    in_bad = np.isin(comp, bad)
    reason_bits[in_bad] |= comp_bits[comp[in_bad]]

    edge_idx = np.flatnonzero(np.isin(comp[ei], bad))
    # strongest first: must-links, then weight desc, then node order (deterministic)
    edge_idx = edge_idx[np.lexsort((ej[edge_idx], ei[edge_idx], -w[edge_idx], ~must[edge_idx], comp[ei[edge_idx]]))]
    keep[edge_idx] = False
    edge_comp = comp[ei[edge_idx]]
    conf_order = np.argsort(comp[ca], kind="stable")
    conf_comp = comp[ca][conf_order]
    e_lo, e_hi = np.searchsorted(edge_comp, bad, "left"), np.searchsorted(edge_comp, bad, "right")
    c_lo, c_hi = np.searchsorted(conf_comp, bad, "left"), np.searchsorted(conf_comp, bad, "right")
    hard = np.isin(creason, list(_HARD))
    ca_l, cb_l, hard_l = ca.tolist(), cb.tolist(), hard.tolist()
    ei_l, ej_l, must_l = ei.tolist(), ej.tolist(), must.tolist()

    for k in range(len(bad)):
        # per set root: the nodes it must never join (all conflicts / hard ones only)
        blocked_all: dict[int, set[int]] = {}
        blocked_hard: dict[int, set[int]] = {}
        for t in conf_order[c_lo[k] : c_hi[k]].tolist():
            x, y = ca_l[t], cb_l[t]
            blocked_all.setdefault(x, set()).add(y)
            blocked_all.setdefault(y, set()).add(x)
            if hard_l[t]:
                blocked_hard.setdefault(x, set()).add(y)
                blocked_hard.setdefault(y, set()).add(x)
        parent: dict[int, int] = {}
        members: dict[int, set[int]] = {}

        def find(x: int, parent: dict[int, int] = parent) -> int:
            root = x
            while root in parent:
                root = parent[root]
            while x != root:  # path compression
                parent[x], x = root, parent[x]
            return root

        empty: set[int] = set()
        for e in edge_idx[e_lo[k] : e_hi[k]].tolist():
            ra, rb = find(ei_l[e]), find(ej_l[e])
            if ra == rb:
                continue
            ma = members.get(ra) or {ra}
            mb = members.get(rb) or {rb}
            blocked = blocked_hard if must_l[e] else blocked_all
            if not blocked.get(ra, empty).isdisjoint(mb) or not blocked.get(rb, empty).isdisjoint(ma):
                continue
            if len(ma) < len(mb):  # union by size
                ra, rb, ma, mb = rb, ra, mb, ma
            parent[rb] = ra
            ma |= mb
            members[ra] = ma
            members.pop(rb, None)
            for table in (blocked_all, blocked_hard):
                if rb in table:
                    table.setdefault(ra, set()).update(table.pop(rb))
            keep[e] = True
    return keep


_BIT = {r: 1 << i for i, r in enumerate(("oversized",) + _REASONS)}


def _bits(reasons) -> np.ndarray:
    return pd.Series(reasons, dtype=object).map(_BIT).fillna(0).to_numpy(np.int64)


# --------------------------------------------------------------------------------------------
# output


def _label(keys, comp, ei, ej, must, reason_bits) -> pd.DataFrame:
    n = len(keys)
    ncomp = int(comp.max()) + 1
    smallest = np.full(ncomp, n, np.int64)
    np.minimum.at(smallest, comp, np.arange(n))
    rank = np.empty(ncomp, np.int64)
    rank[np.argsort(smallest, kind="stable")] = np.arange(ncomp)
    label = rank[comp]

    sizes = np.bincount(comp)
    has_must = np.zeros(ncomp, bool)
    has_must[comp[ei[must]]] = True
    reason = np.where(sizes[comp] == 1, "singleton", np.where(has_must[comp], "must_link", "matched")).astype(object)
    split = np.flatnonzero(reason_bits)
    if len(split):
        masks, inverse = np.unique(reason_bits[split], return_inverse=True)
        text = np.array(
            ["split:" + "+".join(r for r, bit in _BIT.items() if m & bit) for m in masks.tolist()], dtype=object
        )
        reason[split] = text[inverse]
    return pd.DataFrame({"record_key": keys, "cluster": label, "cluster_reason": reason})
