"""EM training sessions that rest on one feature learn nothing (docs/matching.md "Model")."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from crmclean.link import link
from crmclean.link.compare import feature_levels
from crmclean.link.model import model_summary
from crmclean.link.training import _alone_feature, _disagreement_capped
from crmclean.settings import load_rules

FIRST = ["hans", "uwe", "karl", "anna", "erika", "jonas", "lena", "paul", "marie", "otto", "ida", "emil"]
LAST = ["meier", "bauer", "wolf", "krause", "lang", "beck", "roth", "vogel", "koch", "hahn", "wagner", "braun"]


def _register(n: int = 1500, seed: int = 3) -> pd.DataFrame:
    """Names and birth dates only (RLdata's shape): each duplicate has one error, here in the
    birth date, so the pairs of one name hold many strangers and duplicates with a date typo."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        f, last = rng.choice(FIRST), rng.choice(LAST)
        dob = f"{rng.integers(1930, 2005)}-{rng.integers(1, 13):02d}-{rng.integers(10, 29):02d}"
        rows.append((f"r{i}", f, last, dob))
        if i % 10 == 0:
            rows.append((f"r{i}d", f, last, dob[:-1] + str((int(dob[-1]) + 1) % 10)))
    frame = pd.DataFrame(rows, columns=["record_key", "first_name_key", "last_name_key", "birth_date_std"])
    return frame.assign(name_key=frame["first_name_key"] + " " + frame["last_name_key"])


def test_a_session_on_one_feature_is_not_used_and_says_so():
    model = link(_register(), load_rules(None), model=None, workers=1).model
    sessions = {s["rule"]: s for s in model["training"]["sessions"]}
    assert sessions["train_name"]["used"] is False and sessions["train_name"]["single_feature"] == "birth_date"
    # the birth date's m comes from no session: the documented neutral start, exact most likely
    m = model["comparisons"]["birth_date"]["m"]
    assert "birth_date" in model["training"]["default_m"] and m[0] == max(m)


def test_alone_feature_needs_two_features_in_half_the_pairs():
    features = ("first_name", "birth_date", "email")
    lv = np.zeros((10, 3), dtype=np.int8)
    lv[:, 1] = 1  # birth date everywhere
    lv[:2, 2] = 1  # e-mail in 2 of 10 pairs
    assert _alone_feature(lv, ["birth_date", "email"], features) == "birth_date"
    lv[:5, 2] = 1  # e-mail in half of them: EM sees two features together
    assert _alone_feature(lv, ["birth_date", "email"], features) is None


def test_a_level_never_seen_among_many_pairs_keeps_a_finite_weight():
    """EM's m for a level no pair showed is ~1e-9 after normalising 10^5+ pairs (PatentsView's
    address levels with large name blocks): the model keeps it at the floor, never 0 (-inf)."""
    from crmclean.link.compare import FEATURE_NAMES, feature_levels
    from crmclean.link.model import PROB_FLOOR, build_model, model_summary

    m = {f: np.full(len(feature_levels(f)) - 1, 1.0 / (len(feature_levels(f)) - 1)) for f in FEATURE_NAMES}
    u = {f: v.copy() for f, v in m.items()}
    m["address"] = np.array([3e-9, 3e-9, 3e-9, 0.7, 0.3 - 9e-9])
    model = build_model(m, u, 1e-4, {"match": 0.99, "review": 0.6}, {"trained": True})
    assert model["comparisons"]["address"]["m"][0] == PROB_FLOOR
    weights = [x["weight"] for x in model_summary(model, {})["features"]["address"]]
    assert all(np.isfinite(weights))


SYLLABLES = ["ber", "man", "kel", "dorf", "ho", "lin", "sch", "wald", "ner", "ger", "stein", "bach", "mu", "ra"]


def _register_many_surnames(n: int = 3000, seed: int = 5) -> pd.DataFrame:
    """RLdata's shape with surname blocks small enough to enumerate: names and birth dates only,
    every tenth person duplicated with one error — a birth-date digit, a given-name or a surname
    letter — so the pairs of one surname hold duplicates with the birth date exact and one off."""
    rng = np.random.default_rng(seed)
    surnames = sorted({"".join(rng.choice(SYLLABLES, size=3)) for _ in range(900)})
    rows = []
    for i in range(n):
        f, last = str(rng.choice(FIRST)), str(rng.choice(surnames))
        dob = f"{rng.integers(1930, 2005)}-{rng.integers(1, 13):02d}-{rng.integers(10, 29):02d}"
        rows.append((f"r{i}", f, last, dob))
        error = {0: "birth_date", 10: "first_name", 20: "last_name"}.get(i % 30)
        if error == "birth_date":
            rows.append((f"r{i}d", f, last, dob[:-1] + str((int(dob[-1]) + 1) % 10)))
        elif error == "first_name":
            rows.append((f"r{i}d", f + "h", last, dob))
        elif error == "last_name":
            rows.append((f"r{i}d", f, last[:-1] + ("x" if last[-1] != "x" else "y"), dob))
    frame = pd.DataFrame(rows, columns=["record_key", "first_name_key", "last_name_key", "birth_date_std"])
    return frame.assign(name_key=frame["first_name_key"] + " " + frame["last_name_key"])


def test_a_fallback_session_learns_the_birth_date_no_training_rule_could():
    """The name session rests on the birth date alone; the surname session (given name and birth
    date vary, the given name's m held from the birth-date session) learns it: a one-digit typo
    is what half the duplicates show, not the neutral 0.025."""
    model = link(_register_many_surnames(), load_rules(None), model=None, workers=1).model
    sessions = {s["rule"]: s for s in model["training"]["sessions"]}
    assert sessions["train_name"]["single_feature"] == "birth_date"
    assert sessions["train_last_name"]["estimated"] == ["birth_date"]
    assert "first_name" in sessions["train_last_name"]["held"]
    assert "birth_date" in model["training"]["learnt_m"]
    m = dict(zip(model["comparisons"]["birth_date"]["levels"], model["comparisons"]["birth_date"]["m"]))
    assert 0.3 < m["one_char"] < 0.7 and 0.3 < m["exact"] < 0.7
    assert model_summary(model, {})["fallback_m"] == {"birth_date": ["train_last_name"]}


def test_a_fallback_sessions_disagreement_is_at_most_the_neutral_priors():
    """Namesakes in a surname block land on the levels random pairs reach (birth dates years
    apart): a fallback m never gives them more than the neutral m does; the agreeing levels keep
    their learnt proportions. An m below the cap is kept as it is."""
    levels = list(feature_levels("birth_date")[1:])
    u = np.array([0.0003, 0.0001, 0.002, 0.012, 0.08, 0.9057])
    learnt = np.array([0.40, 0.005, 0.02, 0.04, 0.14, 0.395])
    capped = dict(zip(levels, _disagreement_capped(learnt, u, "birth_date")))
    assert abs(capped["different"] + capped["years_apart"] - 0.075) < 1e-9
    assert abs(capped["exact"] / capped["one_char"] - 20) < 1e-9 and abs(sum(capped.values()) - 1) < 1e-9
    fine = np.array([0.40, 0.001, 0.50, 0.03, 0.03, 0.039])
    assert np.array_equal(_disagreement_capped(fine, u, "birth_date"), fine)


def test_no_fallback_rules_leave_the_birth_date_neutral():
    rules = load_rules(None)
    matching = {**rules.matching, "training_fallback_rules": []}
    model = link(_register_many_surnames(), dataclasses.replace(rules, matching=matching), model=None, workers=1).model
    assert "birth_date" in model["training"]["default_m"]
    assert not any(s.get("fallback") for s in model["training"]["sessions"])
