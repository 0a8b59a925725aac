"""A given name with and without a middle name (or its initial) is one given name: compared
`exact`, blocked together, and the given name's m(similar) is not lost when such pairs leave
that level (link/given_names.py, compare.py, blocking.py, training.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmclean.link.blocking import block
from crmclean.link.compare import FEATURE_NAMES, FEATURES, compare_pairs, compare_settings, prepare_columns
from crmclean.link.given_names import first_given_word, given_name_words, middle_name_variant


@pytest.mark.parametrize(
    "x, y",
    [
        ("william", "william gibbens"),  # the middle name on one side only
        ("william g", "william gibbens"),  # written as its initial
        ("abhishek p", "abhishek"),
        ("p gregory", "gregory"),  # a first initial before the name used
        ("john a", "john c a"),
    ],
)
def test_middle_name_variants(x, y):
    assert middle_name_variant(x, y) and middle_name_variant(y, x)


@pytest.mark.parametrize(
    "x, y",
    [
        ("kristin h", "kristin k"),  # middle initials that differ: two people
        ("john", "robert john"),  # a full first name before: another name
        ("j", "john"),  # an initial alone is the `initial` level, not a full name
        ("j r", "john robert"),
        ("ann", "mary ann"),
    ],
)
def test_not_middle_name_variants(x, y):
    assert not middle_name_variant(x, y) and not middle_name_variant(y, x)


def test_given_name_words_and_first_word():
    assert given_name_words("William Gibbens") == "william gibbens"
    assert given_name_words("Abhishek P.") == "abhishek p"
    assert given_name_words("Søren") == "soren"
    assert given_name_words("雪东") is None  # no Latin letter: the pinyin key is compared as before
    assert first_given_word("William Gibbens") == "william"
    assert first_given_word("Bob") == "robert"  # nickname mapped, as the key is
    assert first_given_word(None) is None


def _frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Standardized records (record_key, given name as written, surname): keys as standardize
    makes them (the given name's words run together)."""
    out = []
    for key, given, last in rows:
        first_key = "".join(c for c in given.lower() if c.isalnum())
        out.append(
            {
                "record_key": key,
                "first_name_std": given,
                "first_name_key": first_key,
                "last_name_key": last,
                "name_key": " ".join(sorted((first_key, last))),
                "city_std": "Glendale",
            }
        )
    return pd.DataFrame(out)


def _first_name_level(cols, i: int, j: int, settings=None) -> str:
    lv = compare_pairs(cols, np.array([i]), np.array([j]), settings)[0]
    return FEATURES["first_name"][lv[FEATURE_NAMES.index("first_name")]]


def test_a_middle_name_on_one_side_compares_exact():
    """PatentsView's `William Gibbens Redmann` / `William Redmann` / `William G. Redmann`: the
    key runs the words together (`williamgibbens` / `william`: Jaro-Winkler 0.90, `similar`)."""
    cols = prepare_columns(
        _frame(
            [
                ("a|1", "William Gibbens", "redmann"),
                ("a|2", "William", "redmann"),
                ("a|3", "William G.", "redmann"),
                ("a|4", "Kristin H.", "jarman"),
                ("a|5", "Kristin K.", "jarman"),
            ]
        )
    )
    assert _first_name_level(cols, 0, 1) == "exact"
    assert _first_name_level(cols, 1, 0) == "exact"
    assert _first_name_level(cols, 2, 0) == "exact"
    assert _first_name_level(cols, 3, 4) != "exact"
    off = compare_settings({"comparison": {"middle_names": False}})
    assert _first_name_level(cols, 0, 1, off) == "similar"


def test_blocking_on_the_given_names_first_word():
    """`last_first_word` pairs a record with a middle name with one without: their name keys
    (`redmann williamgibbens` / `redmann william`) block apart."""
    cols = prepare_columns(
        _frame([("a|1", "William Gibbens", "redmann"), ("a|2", "William", "redmann"), ("a|3", "Walter", "redmann")])
    )
    rule = {"name": "last_first_word", "columns": ["last_name_key", "first_name_std:first_word"]}
    cand = block(cols, {"blocking": {"rules": [rule]}})
    assert set(zip(cand.left.tolist(), cand.right.tolist())) == {(0, 1)}


def test_similar_given_names_keep_their_m_when_other_surnames_show_none():
    """old_dob: its only other-surname duplicates with a `similar` given name were `mary ann` /
    `mary`; compared `exact`, EM there learnt m(similar) at its smoothing and every typo of a
    given name (`loiisa` / `louisa`) weighed -9 bits. Where the other-surname pairs expect
    less than one duplicate on `similar`, the all-pairs m stands; where they see some, theirs."""
    from crmclean.link.training import _disagreement_from

    # exact, close, initial, similar, different
    m_all = np.array([0.8254, 0.0444, 0.0, 0.0099, 0.1204])
    m_other = np.array([0.9176, 0.0118, 0.0, 0.0000118, 0.0706])
    got = _disagreement_from(m_all, m_other, duplicates=30.0)
    assert got.sum() == pytest.approx(1.0)
    assert got[3] == pytest.approx(0.0099) and got[4] == pytest.approx(0.0706)
    seen = _disagreement_from(m_all, np.array([0.9, 0.01, 0.0, 0.02, 0.07]), duplicates=300.0)
    assert seen[3] == pytest.approx(0.02)


def test_the_boundary_between_given_and_family_name_placed_elsewhere():
    """PatentsView's `Jaume Anguera` + `Pros` / `Jaume` + `Anguera Pros`: the keys joined are one
    name, so both names compare `exact` (either order of the joined names); a different
    surname that merely starts alike does not."""
    frame = pd.DataFrame(
        [
            {"record_key": "a|1", "first_name_key": "jaumeanguera", "last_name_key": "pros"},
            {"record_key": "a|2", "first_name_key": "jaume", "last_name_key": "anguerapros"},
            {"record_key": "a|3", "first_name_key": "anguerapros", "last_name_key": "jaume"},
            {"record_key": "a|4", "first_name_key": "jaume", "last_name_key": "anguera"},
        ]
    )
    frame["name_key"] = [" ".join(sorted(p)) for p in zip(frame.first_name_key, frame.last_name_key)]
    cols = prepare_columns(frame)
    f, la = FEATURE_NAMES.index("first_name"), FEATURE_NAMES.index("last_name")
    for j in (1, 2):
        lv = compare_pairs(cols, np.array([0]), np.array([j]))[0]
        assert (FEATURES["first_name"][lv[f]], FEATURES["last_name"][lv[la]]) == ("exact", "exact")
    lv = compare_pairs(cols, np.array([0]), np.array([3]))[0]
    assert FEATURES["last_name"][lv[la]] != "exact"
    off = compare_settings({"comparison": {"name_boundary": False}})
    lv = compare_pairs(cols, np.array([0]), np.array([1]), off)[0]
    assert FEATURES["first_name"][lv[f]] != "exact"


def test_ascii_given_names_take_the_short_path_to_the_same_key():
    """An ASCII word's key skips folding and NFKD (they leave ASCII as it is): same key."""
    import unicodedata

    from crmclean.link import given_names

    def slow(word: str) -> str:
        folded = unicodedata.normalize("NFKD", word.lower().translate(given_names._FOLD))
        return given_names._NOT_KEY.sub("", "".join(c for c in folded if ord(c) < 128))

    for word in ["William", "O'Brien", "Anne-Marie", "DAN", "j.", "x_1", "José", "Søren", "ß", "李", ""]:
        assert given_names._word_key(word) == slow(word), word
