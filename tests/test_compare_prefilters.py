"""The comparison's shortcuts give the levels the plain string scores give.

Addresses are scored with token_set_ratio only where a character-count bound says the
cutoff can be reached; birth dates one character off are found by packed digits; mailbox
typos by an OSA prefilter; clean text is detected and copied in one pass. Each is checked
here against the plain computation on generated values, including the awkward ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from crmclean.link.compare import (
    ADDRESS_FUZZY,
    FEATURE_NAMES,
    FEATURES,
    _mailbox_edit,
    _mailbox_typo,
    _clean_already,
    compare_pairs,
    level_code,
    prepare_columns,
)

ADDRESS = FEATURE_NAMES.index("address")
BIRTH = FEATURE_NAMES.index("birth_date")
EMAIL = FEATURE_NAMES.index("email")
FIRST = FEATURE_NAMES.index("first_name")

# few letters, so that random texts are often similar; a space, an ideographic space, Hanzi, digits
WORD = st.text(alphabet="abAB12 北京路号\u3000\t", min_size=0, max_size=9)


def _all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"record_key": [f"s|{k}" for k in range(n)], **columns})


def _all_levels(column: str, values: list, feature: int):
    """The feature's level for every pair of the values, with both sides' clean texts."""
    cols = prepare_columns(_frame(**{column: values}))
    left, right = _all_pairs(len(values))
    return zip(compare_pairs(cols, left, right)[:, feature], cols[column][left], cols[column][right])


@settings(max_examples=150, deadline=None)
@given(st.lists(WORD, min_size=2, max_size=12))
def test_address_levels_equal_plain_token_set_ratio(addresses):
    for lv, a, b in _all_levels("address_std", addresses, ADDRESS):
        if a is None or b is None:
            assert lv == 0
        elif a == b:
            assert lv == level_code("address", "exact")
        else:
            fuzzy = fuzz.token_set_ratio(a, b) / 100.0 >= ADDRESS_FUZZY
            assert (lv == level_code("address", "fuzzy")) == fuzzy, (a, b, fuzz.token_set_ratio(a, b))


def test_address_bound_keeps_subsets_and_reorders():
    addresses = [
        "12 main st apt 4",
        "main st 12",
        "12 main st apt 5",
        "12 main st apt 4 apt 4",
        "北京市 朝阳区 建国路 88号",
        "北京市 建国路 88号",
        "上海市 浦东新区 世纪大道 100号",
    ]
    cols = prepare_columns(_frame(address_std=addresses))
    left, right = _all_pairs(len(addresses))
    got = compare_pairs(cols, left, right)[:, ADDRESS]
    want = [
        level_code("address", "fuzzy")
        if fuzz.token_set_ratio(addresses[i], addresses[j]) >= 85
        else level_code("address", "different")
        for i, j in zip(left, right)
    ]
    assert got.tolist() == want
    assert level_code("address", "fuzzy") in want and level_code("address", "different") in want


DATES = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["1980-01-02", "1980-01-03", "1980-02-01", "1981-01-02", "1980-1-02", "19800102", "1980-01-0٣"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(DATES, min_size=2, max_size=12))
def test_birth_date_one_char_equals_levenshtein(dates):
    for lv, a, b in _all_levels("birth_date_std", dates, BIRTH):
        if a == b:
            continue
        swapped = len(a) == 10 and a[:5] + a[8:10] + "-" + a[5:7] == b
        if swapped:
            continue
        assert (lv == level_code("birth_date", "one_char")) == (Levenshtein.distance(a, b) <= 1), (a, b)


MAILBOX = st.text(alphabet="ab1.2_", min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(MAILBOX, st.sampled_from(["x.com", "y.com"])), min_size=2, max_size=12))
def test_email_typo_level_equals_mailbox_typo(parts):
    emails = [f"{local}@{domain}" for local, domain in parts]
    for lv, a, b in _all_levels("email_key", emails, EMAIL):
        if a != b:
            typo = lv in (level_code("email", "fuzzy_local"), level_code("email", "initial_or_digit"))
            assert typo == _mailbox_typo(a, b), (a, b)
            edit = _mailbox_edit(a, b)
            assert lv == level_code("email", edit or "different"), (a, b)


def test_initial_level_needs_a_single_letter_that_starts_the_other_name():
    names = ["j", "john", "james", "k", "jo"]
    cols = prepare_columns(_frame(first_name_key=names))
    left, right = _all_pairs(len(names))
    got = dict(zip(zip(left.tolist(), right.tolist()), compare_pairs(cols, left, right)[:, FIRST].tolist()))
    initial = level_code("first_name", "initial")
    assert got[(0, 1)] == initial and got[(0, 2)] == initial and got[(0, 4)] == initial
    assert got[(1, 3)] != initial and got[(0, 3)] != initial  # k vs john; j vs k
    assert got[(1, 4)] != initial  # jo is not a single letter


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab \t\u3000\u00a0\x00\n北"), max_size=5), max_size=6))
def test_clean_already_accepts_exactly_clean_texts(texts):
    clean = all(t and t == t.strip() and "\x00" not in t for t in texts)
    assert _clean_already(texts) == clean


TOKENS = st.sampled_from(
    ["12", "main", "st", "apt", "4", "5", "mian", "北京市", "朝阳区", "建国路", "88号", "89号", "a", "ab"]
)


def _edit(text: str, data) -> str:
    """The text with one or two character edits (near the cutoff, where a loose bound shows)."""
    for _ in range(data.draw(st.integers(1, 2))):
        i = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        c = data.draw(st.sampled_from("ab1号 "))
        text = (
            text[:i] + c + text[i:] if kind == "insert" else text[:i] + (c if kind == "replace" else "") + text[i + 1 :]
        )
    return text


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=6), st.data())
def test_token_set_bound_is_never_below_the_score(words, data):
    from crmclean.link.compare import _Side, _token_set_bound

    a = " ".join(words)
    b = _edit(a, data) if data.draw(st.booleans()) else " ".join(data.draw(st.permutations(words))[1:])
    cols = prepare_columns(_frame(address_std=[a, b]))
    if cols["address_std"][1] is None:
        return
    bound = _token_set_bound(_Side(cols, np.array([0])), _Side(cols, np.array([1])), np.array([0]))[0]
    assert bound >= fuzz.token_set_ratio(cols["address_std"][0], cols["address_std"][1]) / 100 - 1e-9


def _levels_of(frame: pd.DataFrame, feature: str) -> dict[tuple[int, int], str]:
    cols = prepare_columns(frame)
    left, right = _all_pairs(len(frame))
    k = FEATURE_NAMES.index(feature)
    labels = FEATURES[feature]
    return {
        (a, b): labels[lv] for a, b, lv in zip(left.tolist(), right.tolist(), compare_pairs(cols, left, right)[:, k])
    }


def test_mailbox_initial_or_digit_is_its_own_level_and_own_initials_are_different():
    """A slip at the mailbox's first character or an added digit is a level of its own (EM
    learns what it is worth); two mailboxes each starting with its owner's initial are two people."""
    frame = _frame(
        first_name_key=["claire", "mason", "claire", "john", "john", "claire"],
        email_key=["ccarr@w.com", "mcarr@w.com", "xcarr@w.com", "john.smith@a.com", "john.smith2@a.com", "ccaxr@w.com"],
    )
    got = _levels_of(frame, "email")
    assert got[(0, 1)] == "different"  # ccarr@ Claire / mcarr@ Mason: each its owner's initial
    assert got[(0, 2)] == "initial_or_digit"  # xcarr@: not the owner's initial, maybe a slip
    assert got[(3, 4)] == "initial_or_digit"  # a digit added: a second mailbox of one name pattern
    assert got[(0, 5)] == "fuzzy_local"  # a slip inside the mailbox


def test_company_levels_exact_similar_different():
    frame = _frame(company_key=["albion analytics", "albion analytics", "albion analytics group", "cedar pharma", None])
    got = _levels_of(frame, "company")
    assert got[(0, 1)] == "exact" and got[(0, 2)] == "similar" and got[(0, 3)] == "different"
    assert got[(0, 4)] == "null"
