"""The delta night's passes over the whole master (issue 14, branch delta14d): each shortcut
gives what the long way gives, and takes the short way where it applies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crmclean.incremental as incremental
from crmclean.incremental import combine_with_prior, content_hash
from crmclean.link import given_names
from crmclean.link.blocking import DEFAULT_RULES
from crmclean.link.incremental import near_new
from crmclean.settings import Rules
from crmclean.store import PriorState
from test_incremental import NO_OVERRIDES, _combined, _pairs, _prior_with
from test_store import make_std


@pytest.fixture
def cold_given_names():
    given_names.given_name_words.cache_clear()
    yield
    given_names.given_name_words.cache_clear()


@pytest.mark.parametrize("name", ["小明", "欧阳 娜娜", "㐀丽", "建国."])
def test_han_given_name_has_no_word_key_without_folding_it(name, monkeypatch, cold_given_names):
    def fold(word):
        raise AssertionError(f"{word!r} folded")

    monkeypatch.setattr(given_names, "_word_key", fold)
    assert given_names.given_name_words(name) is None
    assert given_names.first_given_word(name) is None


@pytest.mark.parametrize("name", ["小明 Li", "José 小明", "Ｌｉ", "丽A", "Søren", "", None])
def test_other_given_names_are_folded_as_before(name, cold_given_names):
    # not Han only (a Latin or fullwidth letter): the words are folded and keyed as before
    words = [w for w in (given_names._word_key(t) for t in given_names._WORD_SPLIT.split(name or "")) if w]
    expected = " ".join([given_names._nicknames().get(words[0], words[0]), *words[1:]]) if words else None
    assert given_names.given_name_words(name) == expected


def _prior_of(std: pd.DataFrame) -> PriorState:
    p = PriorState.empty()
    p.records = std.assign(content_hash=content_hash(std), status="active").reset_index(drop=True)
    return p


def test_a_night_of_new_records_stacks_the_prior_rows_without_copying_them(monkeypatch):
    prior = _prior_of(make_std(4))
    run = make_std(6).iloc[4:]  # two new records, every prior one carried
    tops = []
    real = incremental._stacked
    monkeypatch.setattr(incremental, "_stacked", lambda top, bottom: tops.append(top) or real(top, bottom))
    combined = combine_with_prior(run, prior, Rules())
    assert len(tops) == 1 and tops[0] is prior.records
    assert list(combined.records["record_key"]) == [*prior.records["record_key"], *run["record_key"]]
    # a changed record is taken out of the prior rows first (its new version is stacked after)
    changed = make_std(4).iloc[[1]].assign(mobile="13900000000")
    combined = combine_with_prior(changed, prior, Rules())
    assert tops[-1] is not prior.records
    keys = list(prior.records["record_key"])
    assert list(combined.records["record_key"]) == [*keys[:1], *keys[2:], keys[1]]


def test_region_skips_missing_repeated_and_unknown_keys():
    from crmclean.incremental import affected_region

    prior = _prior_with([("a|1", "M1"), ("a|2", "M1"), ("b|1", "M2")], [("a|1", "a|2")])
    keys = np.array(["a|1", None, "a|2", "a|1", "b|1", "a|3"], dtype=object)
    pairs = _pairs([("a|2", "a|3")])
    # a|3 is new and links to M1; "z|9" (a seed no record or edge names) starts nothing
    scope = affected_region(keys, pairs, NO_OVERRIDES, prior, _combined(changed={"a|3", "z|9"}), NO_OVERRIDES)
    assert scope.keys == {"a|1", "a|2", "a|3"} and scope.prior_ids == {"M1"} and scope.seeds == 2
    scope = affected_region(keys, pairs, NO_OVERRIDES, prior, _combined(changed={"z|9"}), NO_OVERRIDES)
    assert scope.keys == set() and scope.prior_ids == set()


def test_near_new_reads_a_rule_key_s_texts_by_row():
    # the first-word and sorted-neighbourhood rules read the texts of some rows only
    names = ["Ann Lee", "Anne", "Bob", "Robert K", "小明", None, "Ann"]
    n = len(names)
    frame = pd.DataFrame(
        {
            "record_key": [f"a|{i}" for i in range(n)],
            "first_name_std": names,
            "first_name_key": ["ann", "anne", "bob", "robert", "xiaoming", None, "ann"],
            "last_name_key": ["lee"] * n,
            "name_key": ["ann lee", "anne lee", "bob lee", "lee robert", "lee xiaoming", None, "ann lee"],
            "birth_date_std": ["1980-01-01"] * n,
        }
    )
    rules = [r for r in DEFAULT_RULES if r.get("name") in ("name", "name_neighbourhood")]
    rules.append({"name": "last_first_word", "columns": ["last_name_key", "first_name_std:first_word"]})
    is_new = np.array([False, False, False, True, False, False, False])
    sub, new, _, usable, _ = near_new(frame, {"blocking": {"rules": rules}}, is_new)
    # Robert K (new): Bob (robert by nickname, first word) and its neighbours in name order
    # (bob lee < lee robert < lee xiaoming); the Ann rows are further away
    assert set(sub["record_key"]) == {"a|2", "a|3", "a|4"}
    assert new.tolist() == [k == "a|3" for k in sub["record_key"]]
    assert len(usable) == len(rules)
