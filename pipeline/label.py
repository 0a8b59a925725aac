"""`crmclean label`: a person answers the pairs the model is least sure of, and the answers
train the model (active learning, as dedupe and Zingg do it).

* **Which pairs**: every candidate pair of the current master is rescored with the saved
  Fellegi-Sunter model (``link`` with the review threshold lowered, so pairs just under it are
  kept too); the pairs whose match probability is closest to 0.5 are asked first, diversified
  across comparison-level patterns (a pattern already asked is pushed back), so ten pairs that
  differ only in their names' spelling are not asked in a row.
* **Where answers go**: the ``review_decision`` table with ``origin = 'label'``; a label is a
  review decision (later runs obey it as must-link / cannot-link), and review decisions count
  as labels.
* **What they change**: ``refine_model`` turns labelled pairs into a model of the same shape
  ``link`` accepts (see docs/labelling.md for the two methods and their measured effect).
"""

from __future__ import annotations

import copy
import getpass
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from .errors import CrmcleanError
from .ids import key_to_ref
from .link import link
from .link.compare import FEATURE_NAMES, FEATURES
from .link.model import weight_tables
from .link.refine import refine_fs
from .masking import mask_url, masker_for

ORIGIN = "label"
ANSWERS = {"y": "match", "n": "no_match", "s": "skip", "q": "quit"}
SCORE_FLOOR = 0.001  # candidates below this probability are certain non-matches: never asked
DEFAULT_BAND = (0.02, 0.98)  # the uncertain band the sampler draws from
DEFAULT_DIVERSITY = 0.15  # each earlier pick of the same level pattern costs this much certainty
# what a person sees for each comparison feature (the first non-empty column per side)
DISPLAY_COLUMNS = {
    "first_name": ("first_name_std", "first_name_key"),
    "last_name": ("last_name_std", "last_name_key"),
    "birth_date": ("birth_date_std",),
    "email": ("email_std", "email_key"),
    "phone": ("mobile_std", "landline_std"),
    "address": ("address_std", "city_std", "postal_code_std"),
    "suffix": ("name_suffix_std",),
    "gender": ("gender_std",),
    "national_id": ("national_id_std",),
    "company": ("company_std", "company_key"),
}


# ---------------------------------------------------------------- candidates and the sampler


@dataclass
class Pool:
    """Candidate pairs with their probability under a model and their comparison levels."""

    pairs: pd.DataFrame  # record_key_l, record_key_r, match_probability
    levels: np.ndarray  # int8 level codes, one column per FEATURE_NAMES entry


def levels_from_evidence(evidence: Iterable[str]) -> np.ndarray:
    """Level codes from link's evidence JSON (each feature's level label)."""
    index = {f: {lab: k for k, lab in enumerate(FEATURES[f])} for f in FEATURE_NAMES}
    rows = [json.loads(e) if isinstance(e, str) else {} for e in evidence]
    out = np.zeros((len(rows), len(FEATURE_NAMES)), dtype=np.int8)
    for i, row in enumerate(rows):
        for k, f in enumerate(FEATURE_NAMES):
            out[i, k] = index[f].get((row.get(f) or {}).get("level", "null"), 0)
    return out


def candidate_pool(records: pd.DataFrame, rules, model: dict, floor: float = SCORE_FLOOR, workers: int = 1) -> Pool:
    """Every candidate pair scored by ``model`` (none retrained), down to probability ``floor``.

    ``link`` keeps only pairs at or above its review threshold; here that threshold is lowered
    to ``floor`` on a copy of the rules, so the pairs just below review are seen as well."""
    matching = dict(getattr(rules, "matching", None) or {})
    thresholds = dict(matching.get("thresholds") or {})
    thresholds["review"] = min(floor, float(thresholds.get("match", 0.99)))
    lowered = copy.copy(rules)
    lowered.matching = {**matching, "thresholds": thresholds}
    result = link(records, lowered, model=model, workers=workers)
    pairs = result.pairs[["record_key_l", "record_key_r", "match_probability"]].reset_index(drop=True)
    return Pool(pairs=pairs, levels=levels_from_evidence(result.pairs["evidence"]))


def pattern_codes(levels: np.ndarray) -> np.ndarray:
    """One integer per distinct level row (same pattern, same code)."""
    if not len(levels):
        return np.zeros(0, dtype=np.int64)
    return pd.factorize(pd.Series([row.tobytes() for row in np.ascontiguousarray(levels)]))[0]


def pick_uncertain(
    prob: np.ndarray,
    levels: np.ndarray,
    n: int,
    exclude: np.ndarray | None = None,
    band: tuple[float, float] = DEFAULT_BAND,
    diversity: float = DEFAULT_DIVERSITY,
) -> np.ndarray:
    """Positions of the ``n`` pairs to ask, in asking order: closest to 0.5 first, where the
    k-th pair of one level pattern counts as ``k * diversity`` less uncertain (dedupe/Zingg
    uncertainty sampling, spread over the patterns). Pairs outside ``band`` or ``exclude``d
    (already labelled) are never picked."""
    prob = np.asarray(prob, dtype=float)
    ok = (prob >= band[0]) & (prob <= band[1])
    if exclude is not None:
        ok &= ~np.asarray(exclude, dtype=bool)
    pos = np.flatnonzero(ok)
    if not len(pos) or n <= 0:
        return np.zeros(0, dtype=np.int64)
    distance = np.abs(prob[pos] - 0.5)
    order = np.lexsort((pos, distance))  # most uncertain first, ties by position
    pos, distance = pos[order], distance[order]
    pattern = pattern_codes(levels[pos])
    rank_in_pattern = pd.Series(pattern).groupby(pattern).cumcount().to_numpy()
    key = distance + diversity * rank_in_pattern
    return pos[np.lexsort((np.arange(len(pos)), key))][:n]


def weighted_pick(
    prob: np.ndarray,
    levels: np.ndarray,
    n: int,
    exclude: np.ndarray | None = None,
    band: tuple[float, float] = DEFAULT_BAND,
    seed: int = 0,
) -> np.ndarray:
    """``n`` pairs drawn at random from the band with weight p(1-p) (the most uncertain most
    often, but every kind of uncertain pair can come up), asked most uncertain first.

    Measured (docs/labelling.md): the labelled matches of a random draw represent the missed
    matches better than the top of the uncertainty ranking, so m estimated from them is better."""
    prob = np.asarray(prob, dtype=float)
    ok = (prob >= band[0]) & (prob <= band[1])
    if exclude is not None:
        ok &= ~np.asarray(exclude, dtype=bool)
    pos = np.flatnonzero(ok)
    if not len(pos) or n <= 0:
        return np.zeros(0, dtype=np.int64)
    weight = np.maximum(prob[pos] * (1 - prob[pos]), 1e-12)
    chosen = np.random.default_rng(seed).choice(pos, size=min(n, len(pos)), replace=False, p=weight / weight.sum())
    return chosen[np.argsort(np.abs(prob[chosen] - 0.5), kind="stable")]


SAMPLERS = ("uncertainty", "weighted")


def random_pick(
    prob: np.ndarray, n: int, exclude: np.ndarray | None = None, band=DEFAULT_BAND, seed: int = 0
) -> np.ndarray:
    """The baseline the sampler is measured against: ``n`` pairs at random from the same band."""
    prob = np.asarray(prob, dtype=float)
    ok = (prob >= band[0]) & (prob <= band[1])
    if exclude is not None:
        ok &= ~np.asarray(exclude, dtype=bool)
    pos = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    return rng.permutation(pos)[:n]


# ---------------------------------------------------------------- labels train the model


def level_codes(levels: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Level codes (n × features) from a code matrix or a ``levels_frame`` of labels/codes."""
    if isinstance(levels, pd.DataFrame):
        out = np.zeros((len(levels), len(FEATURE_NAMES)), dtype=np.int64)
        for k, f in enumerate(FEATURE_NAMES):
            if f in levels.columns:
                out[:, k] = [FEATURES[f].index(v) if isinstance(v, str) else int(v) for v in levels[f]]
        return out
    out = np.asarray(levels, dtype=np.int64)
    if out.ndim != 2 or out.shape[1] < len(FEATURE_NAMES):  # extra features (attr_*) follow the fixed ones
        raise ValueError(f"levels must have one column per feature ({len(FEATURE_NAMES)} at least)")
    return out


def label_values(labels) -> np.ndarray:
    """True for a match: booleans, 0/1, or the decisions ``match`` / ``no_match``."""
    values = []
    for v in labels:
        if isinstance(v, str):
            if v not in ("match", "no_match"):
                raise ValueError(f"a label is match or no_match, got {v!r}")
            values.append(v == "match")
        else:
            values.append(bool(v))
    return np.asarray(values, dtype=bool)


def refine_model(model: dict, levels, labels, method: str = "fs", **options) -> dict:
    """A model of the same shape as ``model`` (``link`` accepts it) that agrees with labelled
    pairs. ``levels``: the labelled pairs' comparison levels (codes or a ``levels_frame``);
    ``labels``: match or not, one per pair. Pure: ``model`` is not changed.

    ``method="fs"`` re-estimates each level's m (and u) as labelled counts plus pseudo-counts
    toward the EM estimate; ``method="classifier"`` fits recordlinkage's logistic regression on
    the one-hot levels with the EM weight as an input (EM as the prior) and writes its
    per-level weights back as m/u. With no labels the model comes back unchanged."""
    codes = level_codes(levels)
    y = label_values(labels)
    if len(y) != len(codes):
        raise ValueError("levels and labels differ in length")
    out = json.loads(json.dumps(model))  # a deep copy of a JSON-able dict
    if not len(y):
        return out
    if method == "fs":
        _refine_fs(out, codes, y, **options)
    elif method == "classifier":
        _refine_classifier(out, codes, y, **options)
    else:
        raise ValueError(f"unknown refine method {method!r} (fs or classifier)")
    out.setdefault("training", {})["labels"] = {
        "method": method,
        "pairs": int(len(y)),
        "matches": int(y.sum()),
        **{k: v for k, v in options.items() if isinstance(v, (int, float))},
    }
    return out


def _refine_fs(
    model: dict, codes: np.ndarray, y: np.ndarray, m_pseudo: float = 20.0, u_pseudo: float | None = None
) -> None:
    """See link.refine.refine_fs (there so that the link stage can use it)."""
    refine_fs(model, codes, y, m_pseudo=m_pseudo, u_pseudo=u_pseudo)


def em_weights(model: dict, codes: np.ndarray, matching: dict | None = None) -> tuple[np.ndarray, float]:
    """Per-pair log2 Bayes factor of the model's level weights (no term frequencies), and the
    prior weight."""
    tables = weight_tables(model, matching or {})
    total = np.zeros(len(codes))
    for k, f in enumerate(FEATURE_NAMES):
        total += tables[f][codes[:, k]]
    lam = float(model["lambda"])
    return total, math.log2(lam / (1 - lam))


def one_hot(codes: np.ndarray) -> pd.DataFrame:
    """One column per non-null (feature, level): 1 where the pair is at that level."""
    cols = {
        f"{f}={lab}": (codes[:, k] == j).astype(float)
        for k, f in enumerate(FEATURE_NAMES)
        for j, lab in enumerate(FEATURES[f])
        if j > 0
    }
    return pd.DataFrame(cols)


def _refine_classifier(
    model: dict,
    codes: np.ndarray,
    y: np.ndarray,
    C: float = 1.0,
    slope_bounds: tuple[float, float] = (0.5, 2.0),
    keep_prior: bool = False,
) -> None:
    """recordlinkage.LogisticRegressionClassifier on [one-hot levels, EM weight]: its log-odds
    are slope × EM weight + Σ level coefficients + intercept, i.e. a Fellegi-Sunter model again
    (weight of a level = slope × EM weight + coefficient / ln 2). The L2 penalty (``C``) keeps
    the coefficients near 0, so 100 labels correct the EM model instead of replacing it; the
    EM column is scaled up so the penalty barely touches the slope."""
    import recordlinkage

    if y.all() or not y.any():
        return  # one class only: nothing to separate, the EM model stands
    base, prior_bits = em_weights(model, codes)
    scale = 10.0
    X = one_hot(codes)
    X["em_weight"] = (base + prior_bits) * math.log(2) * scale
    X.index = pd.MultiIndex.from_arrays([np.arange(len(X)), np.arange(len(X))])
    clf = recordlinkage.LogisticRegressionClassifier(C=C, max_iter=2000)
    clf.fit(X, X.index[y])
    coef = dict(zip(X.columns, np.asarray(clf.coefficients, dtype=float)))
    slope = float(np.clip(coef.pop("em_weight") * scale, *slope_bounds))
    tables = weight_tables(model, {"level_weight_max": {}})
    for f in FEATURE_NAMES:
        comp = model["comparisons"][f]
        u = np.asarray(comp["u"], dtype=float)
        w = np.array(
            [slope * tables[f][j] + coef[f"{f}={lab}"] / math.log(2) for j, lab in enumerate(FEATURES[f]) if j > 0]
        )
        comp["m"] = [float(x) for x in u * np.exp2(w)]  # log2(m/u) = the new weight
    if keep_prior:  # the labelled pairs are no sample of all pairs: their base rate says little
        return
    prior = slope * prior_bits + float(clf.intercept) / math.log(2)
    model["lambda"] = float(np.clip(1.0 / (1.0 + 2.0**-prior), 1e-12, 0.5))


# ---------------------------------------------------------------- the stored labels


def require_master(db_url: str) -> None:
    """A plain error, and no database file created, when no run has published a master yet."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    try:
        url = make_url(db_url)
    except Exception:
        raise CrmcleanError(
            f"{mask_url(db_url)!r} is not a database URL (e.g. sqlite:///crmclean-out/master.db)"
        ) from None
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:" or not Path(path).expanduser().is_file():
            from .store import NoMaster

            raise NoMaster(mask_url(db_url))  # the words every read command uses
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            have = all(inspector.has_table(t) for t in ("match_model", "customer_record"))
            models = conn.execute(sa.text("SELECT COUNT(*) FROM match_model")).scalar() if have else 0
    except sa.exc.SQLAlchemyError as exc:
        raise CrmcleanError(f"{mask_url(db_url)}: cannot read the master ({str(exc).splitlines()[0]})") from None
    finally:
        engine.dispose()
    if not models:
        raise CrmcleanError(
            f"{mask_url(db_url)}: no run has published a master and a match model yet; run `crmclean run` first"
        )


def latest_labels(decisions: pd.DataFrame) -> pd.DataFrame:
    """The latest decision per unordered pair, keys sorted (record_key_l < record_key_r):
    labels from `crmclean label` and decisions from `crmclean review` alike."""
    cols = ["record_key_l", "record_key_r", "decision", "origin"]
    if decisions is None or decisions.empty:
        return pd.DataFrame(columns=cols)
    d = decisions.copy()
    if "decided_at" in d.columns:
        d = d.sort_values("decided_at", kind="stable", na_position="first")
    a, b = d["record_key_l"].astype(str), d["record_key_r"].astype(str)
    d["record_key_l"], d["record_key_r"] = np.where(a < b, a, b), np.where(a < b, b, a)
    d = d[d["decision"].isin(["match", "no_match"])]
    return d.drop_duplicates(["record_key_l", "record_key_r"], keep="last")[cols].reset_index(drop=True)


def labelled_in_pool(pool: Pool, labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the pool, match or not) of the labelled pairs that are candidates."""
    if labels.empty or pool.pairs.empty:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    index = pd.MultiIndex.from_frame(pool.pairs[["record_key_l", "record_key_r"]])
    pos = index.get_indexer(pd.MultiIndex.from_frame(labels[["record_key_l", "record_key_r"]]))
    found = pos >= 0
    return pos[found], (labels["decision"].to_numpy()[found] == "match")


def store_label(store, key_l: str, key_r: str, decision: str, user: str) -> None:
    """One answer written at once (a session stopped half-way keeps its answers)."""
    row = {"record_key_l": key_l, "record_key_r": key_r, "decision": decision, "decided_by": user, "origin": ORIGIN}
    store.add_review_decisions(pd.DataFrame([row]))


# ---------------------------------------------------------------- the terminal session


def display_value(column: str, value, show_pii: bool) -> str:
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return ""
    if show_pii or column in ("name_suffix_std", "gender_std", "city_std"):
        return str(value)
    fn = masker_for(column)
    return str(fn(value)) if fn else str(value)


def _side(row: dict, columns: tuple[str, ...], show_pii: bool) -> str:
    """The row's values for these columns, each shown once (a key equal to its value but for
    case, as ``Smith`` / ``smith``, is not repeated)."""
    seen, shown = set(), []
    for c in columns:
        value = row.get(c)
        text = display_value(c, value, show_pii)
        if text and str(value).lower() not in seen:
            seen.add(str(value).lower())
            shown.append(text)
    return " · ".join(shown)


def pair_table(number: int, total: int, prob: float, levels: np.ndarray, row_l: dict, row_r: dict, show_pii: bool):
    """A rich table: one line per comparison feature, both values and the agreement level."""
    from rich.table import Table
    from rich.text import Text

    title = f"pair {number}/{total} · match probability {prob:.3f}"
    table = Table(title=title, show_header=True, title_justify="left")
    table.add_column("field")
    table.add_column("A " + key_to_ref(row_l.get("record_key", "")), overflow="fold")
    table.add_column("B " + key_to_ref(row_r.get("record_key", "")), overflow="fold")
    table.add_column("level")
    table.add_row(
        "name", Text(_side(row_l, ("full_name_std",), show_pii)), Text(_side(row_r, ("full_name_std",), show_pii)), ""
    )
    for k, f in enumerate(FEATURE_NAMES):
        a, b = _side(row_l, DISPLAY_COLUMNS[f], show_pii), _side(row_r, DISPLAY_COLUMNS[f], show_pii)
        level = FEATURES[f][int(levels[k])]
        if not a and not b:
            continue
        style = (
            "green"
            if level in ("exact", "same", "mobile_exact")
            else "red"
            if level in ("different", "conflict", "years_apart")
            else "yellow"
        )
        table.add_row(f, Text(a), Text(b), Text(level, style=style if level != "null" else "dim"))
    return table


def read_answer(answers: Iterator[str], say: Callable[[str], None]) -> str:
    """The next valid answer (match, no_match, skip, quit); the end of the answers is quit."""
    for raw in answers:
        text = raw.strip().lower()
        if not text or text.startswith("#"):
            continue
        if text[:1] in ANSWERS and text in (text[:1], {"y": "yes", "n": "no", "s": "skip", "q": "quit"}[text[:1]]):
            return ANSWERS[text[:1]]
        say(f"answer y (match), n (no match), s (skip) or q (quit), not {raw.strip()!r}")
    return "quit"


DEFAULT_METHOD = "fs"


def current_pool(
    records: pd.DataFrame, rules, model: dict, labels: pd.DataFrame, method: str = DEFAULT_METHOD, workers: int = 1
) -> tuple[Pool, dict, int]:
    """The candidates scored by the saved model refined with the labels given so far (so a new
    session asks what is still uncertain), that model, and how many labels it learnt from."""
    pool = candidate_pool(records, rules, model, workers=workers)
    pos, y = labelled_in_pool(pool, labels)
    if len(pos) and y.any() and not y.all():
        model = refine_model(model, pool.levels[pos], y, method=method)
        pool = candidate_pool(records, rules, model, workers=workers)
    return pool, model, int(len(pos))


def label_session(
    db_url: str,
    rules,
    pairs: int = 20,
    show_pii: bool = False,
    answers: Iterator[str] | None = None,
    console=None,
    method: str = DEFAULT_METHOD,
    workers: int = 1,
    sampler: str = "weighted",
) -> dict:
    """Ask about up to ``pairs`` uncertain pairs of the master at ``db_url`` and store each
    answer as it is given; → counts (asked, match, no_match, skip, ...)."""
    from rich.console import Console

    from .link.model import model_compatible
    from .store import open_store

    console = console or Console(highlight=False)
    require_master(db_url)
    store = open_store(db_url)
    try:
        state = store.load_state()
        if state.model is None or not model_compatible(state.model):
            raise CrmcleanError(
                f"{mask_url(db_url)}: the saved match model does not fit this version; run `crmclean run --retrain`"
            )
        labels = latest_labels(state.overrides)
        pool, _, used = current_pool(state.records, rules, state.model, labels, method, workers)
        done = pool.pairs.index.isin(labelled_in_pool(pool, labels)[0])
        prob = pool.pairs["match_probability"].to_numpy(dtype=float)
        if sampler not in SAMPLERS:
            raise CrmcleanError(f"unknown sampler {sampler!r} (one of {', '.join(SAMPLERS)})")
        pick = (
            pick_uncertain(prob, pool.levels, pairs, exclude=done)
            if sampler == "uncertainty"
            else weighted_pick(prob, pool.levels, pairs, exclude=done, seed=len(labels))
        )
        console.print(
            f"{len(pool.pairs):,} candidate pairs, {len(labels):,} labelled before "
            f"({used:,} of them train the model); asking about {len(pick):,} uncertain pairs"
        )
        counts = _ask(store, pool, pick, state.records, show_pii, answers, console)
    finally:
        store.close()
    counts["labelled_before"] = int(len(labels))
    return counts


def _terminal_answers(console) -> Iterator[str]:
    while True:
        try:
            yield console.input("match? [bold]y[/]es / [bold]n[/]o / [bold]s[/]kip / [bold]q[/]uit: ")
        except EOFError:
            return


def _ask(
    store, pool: Pool, pick: np.ndarray, records: pd.DataFrame, show_pii: bool, answers: Iterator[str] | None, console
) -> dict:
    """The question loop: show a pair, read an answer, store it; stop at q or the last answer."""
    answers = iter(answers) if answers is not None else _terminal_answers(console)
    try:
        user = getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        user = "unknown"
    by_key = records.drop_duplicates("record_key", keep="last").set_index("record_key", drop=False)
    counts = {"asked": 0, "match": 0, "no_match": 0, "skip": 0}
    for number, p in enumerate(pick, start=1):
        row = pool.pairs.iloc[int(p)]
        sides = [
            by_key.loc[k].to_dict() if k in by_key.index else {"record_key": k}
            for k in (row["record_key_l"], row["record_key_r"])
        ]
        console.print(
            pair_table(
                number, len(pick), float(row["match_probability"]), pool.levels[int(p)], sides[0], sides[1], show_pii
            )
        )
        answer = read_answer(answers, lambda text: console.print(text))
        if answer == "quit":
            break
        counts["asked"] += 1
        counts[answer] += 1
        if answer in ("match", "no_match"):
            store_label(store, row["record_key_l"], row["record_key_r"], answer, user)
    return counts
