"""Issue 14, the link and cluster stages' CPU: each shortcut gives what the plain code gave, and
the work it saves is not done (the identical-group sizes once per link, no phone parser for
Chinese mobiles and NANP numbers)."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest

import crmclean.link.blocking as blocking
import crmclean.link.compare as compare
import crmclean.cluster as cluster_module
from crmclean.cluster import _edges, _shared_identifier, _written_key
from crmclean.generate import generate
from crmclean.ingest import ingest
from crmclean.link import link
from crmclean.settings import load_rules
from crmclean.standardize import standardize
from crmclean.standardize.names import latin_key
from crmclean.survivorship import names, phones


@pytest.fixture(scope="module")
def standardized(tmp_path_factory):
    info = generate(customers=300, seed=5, out_dir=tmp_path_factory.mktemp("gen"))
    rules = load_rules()
    std, _ = standardize(ingest([Path(p) for p in info["files"]], rules).records, rules, workers=1)
    return std, rules


def test_link_computes_the_identical_group_sizes_once(standardized, monkeypatch):
    """term frequencies, blocking, training's plan and the model's record of the largest group
    all read one computation (it was four passes over every row)."""
    std, rules = standardized
    calls = []
    plain = compare.identical_group_sizes

    def counted(*args, **kwargs):
        calls.append(1)
        return plain(*args, **kwargs)

    monkeypatch.setattr(compare, "identical_group_sizes", counted)
    monkeypatch.setattr(blocking, "identical_group_sizes", counted)
    result = link(std, rules, workers=1)
    assert len(calls) == 1
    expected = int(plain({c: compare.prepare_columns(std)[c + "#"] for c in compare.IDENTITY_COLUMNS}).max())
    assert result.model["training"]["largest_identical_group"] == expected
    assert (result.pairs["decision"] == "match").sum() > 50


def _random_numbers(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    digits = "0123456789"
    out = []
    for _ in range(count):
        out.append("+861" + rng.choice("3456789") + "".join(rng.choices(digits, k=9)))
        area, exchange = rng.choice("23456789"), rng.choice("23456789")
        out.append(f"+1{area}{''.join(rng.choices(digits, k=2))}{exchange}{''.join(rng.choices(digits, k=6))}")
    return out


def test_allocated_by_prefix_equals_libphonenumber_on_the_parsed_number():
    numbers = _random_numbers(11, 3000) + ["+8617912345678", "+12015550123", "+15551234567", "+861999999999"]
    numbers += ["+442079460000", "+8610655299880", "+16135550123", "+8613800138000"]
    assert [phones.allocated(n) for n in numbers] == [phones._allocated(n) for n in numbers]
    assert 0 < sum(map(phones.allocated, numbers)) < len(numbers)  # both kinds occur


def test_allocated_skips_the_parser_for_chinese_mobiles_and_nanp(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(phonenumbers, "parse", refuse)
    for number in _random_numbers(12, 50):
        phones.allocated(number)


def _plain_fold(text: str) -> tuple[str, int]:
    decomposed = unicodedata.normalize("NFKD", text)
    marks = sum(1 for ch in decomposed if unicodedata.combining(ch))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold(), marks


def _plain_odd_case(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha() and ch.lower() != ch.upper()]
    return len(letters) > 1 and (all(ch.isupper() for ch in letters) or all(ch.islower() for ch in letters))


def test_ascii_fold_and_case_shortcuts_equal_the_unicode_path(monkeypatch):
    rng = random.Random(3)
    alphabet = [chr(c) for c in range(128)] + list("ÉéßİıǅŁłÓöﬁ张")
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 8))) for _ in range(20000)]
    texts += ["O'NEIL", "McDonald", "ÉMILE", "a", "AB", "a1b", "Ab-Cd", ""]
    assert [names._fold(t) for t in texts] == [_plain_fold(t) for t in texts]
    assert [names._is_odd_case(t) for t in texts] == [_plain_odd_case(t) for t in texts]

    def refuse(*args):
        raise AssertionError("normalized")

    with monkeypatch.context() as patched:  # only around the call: pytest itself normalizes
        patched.setattr(names.unicodedata, "normalize", refuse)
        folded = names._fold("Plain ASCII, never seen before 7")
    assert folded == ("plain ascii, never seen before 7", 0)


def test_medoid_support_votes_unchanged(monkeypatch):
    """Of Jackson, Jackson, Jacksjon the first wins 2.5 to 2; of Jackson and Jacksjon neither.
    Edit distances are asked only between different values."""
    asked = []
    plain = names._close_folded

    def counted(a, b, max_edits):
        asked.append((a, b))
        return plain(a, b, max_edits)

    monkeypatch.setattr(names, "_close_folded", counted)
    cluster = np.array([0, 0, 0, 1, 1, 2])
    texts = np.array(["Jackson", "Jackson", "Jacksjon", "Jackson", "Jacksjon", "Lee"], dtype=object)
    keys = np.array(["jackson", "jackson", "jacksjon", "jackson", "jacksjon", None], dtype=object)
    value = np.array([0, 0, 1, 0, 1, 2])
    out = names.medoid_support(cluster, keys, texts, value, 1, 0.5)
    assert out.tolist() == [-2.5, -2.5, -2.0, -1.5, -1.5, 0.0]
    assert sorted(asked) == [("jacksjon", "jackson")] * 2 + [("jackson", "jacksjon")] * 2


def test_bucket_histograms_in_blocks_equal_one_table(monkeypatch):
    rng = random.Random(4)
    texts = ["".join(rng.choices("ab c\u00e9\u4e2d", k=rng.randint(1, 40))) for _ in range(300)] + ["x" * 200]
    ts = np.array(texts, dtype=object)
    lens = np.array([len(t) for t in texts])
    cp = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    row = np.repeat(np.arange(len(texts)), lens)
    sp = cp == 32
    counts = np.bincount(row[~sp] * compare.HIST_BUCKETS + cp[~sp] % compare.HIST_BUCKETS, minlength=len(texts) * 61)
    counts = counts.reshape(len(texts), compare.HIST_BUCKETS)
    monkeypatch.setattr(compare, "_HIST_BLOCK", 7)
    hist, over = compare._bucket_histograms(cp, row, lens)
    assert np.array_equal(hist, counts.astype(np.int8)) and np.array_equal(over, counts.max(axis=1) > 127)
    length, _, _ = compare._token_set_profiles(ts)
    assert length[-1] == -1 and (length[:-1] >= -1).all()
    assert all(c < 32 or c >= 133 for c in compare._ODD_SPACE.tolist())  # the prefilter's range


def test_token_set_profiles_in_blocks_equal_one_block(monkeypatch):
    """Profiles are made a block of texts at a time (128 MB of per-character arrays at 200k
    customers at once, before): any block size gives the same profiles, repeated and empty
    words and odd spaces included."""
    rng = random.Random(5)
    words = ["main", "st", "12", "北京市", "apt", "a", ""]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 5))) or "x" for _ in range(200)] + ["a\u3000b", "y" * 150]
    ts = np.array(texts, dtype=object)
    whole = compare._token_set_profiles(ts)
    monkeypatch.setattr(compare, "_PROFILE_BLOCK", 7)
    calls = []
    real = compare._profile_block
    monkeypatch.setattr(compare, "_profile_block", lambda block: calls.append(len(block)) or real(block))
    blocked = compare._token_set_profiles(ts)
    assert max(calls) == 7 and sum(calls) == len(texts)
    assert all(np.array_equal(a, b) for a, b in zip(whole, blocked))
    assert whole[0].dtype == np.int32 and whole[2].shape == (len(texts), compare.HIST_BUCKETS)
    assert (whole[0] == -1).any() and (whole[0] > 0).any()  # some texts are not profiled, most are
    empty = compare._token_set_profiles(np.array([], dtype=object))
    assert [len(a) for a in empty] == [0, 0, 0] and empty[2].shape == (0, compare.HIST_BUCKETS)


def test_match_edges_and_shared_identifiers_read_as_before(monkeypatch):
    """Decisions in any case are matches; each evidence text is searched for the mobile only
    where the mailbox is shared, for the national id only where that pair is not."""
    pairs = pd.DataFrame(
        {
            "record_key_l": ["a", "b", "c", "d", "e"],
            "record_key_r": ["b", "c", "d", "e", "a"],
            "match_weight": [9.0, 8.0, 7.0, 6.0, 5.0],
            "match_probability": [0.99] * 5,
            "decision": ["match", "MATCH", "review", None, "Match"],
            "evidence": [
                '{"email": {"level": "exact", "weight": 1}, "phone": {"level": "mobile_exact", "weight": 2}}',
                '{"email": {"level": "exact", "weight": 1}, "phone": {"level": "landline_exact"}}',
                '{"national_id": {"level": "exact", "weight": 3}}',
                None,
                '{"phone": {"level": "mobile_exact"}, "national_id": {"level": "exact"}}',
            ],
        }
    )
    keys = np.array(["a", "b", "c", "d", "e"], dtype=object)
    ei, ej, _, _, _, ident = _edges(pairs, None, keys)
    assert sorted(zip(ei.tolist(), ej.tolist())) == [(0, 1), (0, 4), (1, 2)]  # match in any case
    text = pairs["evidence"].astype(str)
    plain = (
        text.str.contains('"email": {"level": "exact"', regex=False)
        & text.str.contains('"phone": {"level": "mobile_exact"', regex=False)
    ) | text.str.contains('"national_id": {"level": "exact"', regex=False)
    searched = []
    holds = cluster_module._holds
    monkeypatch.setattr(
        cluster_module, "_holds", lambda texts, needle: searched.append(len(texts)) or holds(texts, needle)
    )
    assert _shared_identifier(pairs).tolist() == plain.tolist() == [True, False, True, False, True]
    assert searched == [5, 2, 4]


def test_written_key_of_ascii_names_equals_latin_key_without_folding(monkeypatch):
    rng = random.Random(6)
    texts = ["".join(rng.choices([chr(c) for c in range(128)], k=rng.randint(0, 10))) for _ in range(20000)]
    texts += ["mary-ann", "o'neil", "j.", "", "José", "łukasz", "xue dong"]
    assert [_written_key(t) for t in texts] == [latin_key(t) for t in texts]
    with monkeypatch.context() as patched:
        patched.setattr("crmclean.standardize.names.latin_key", None)
        written = _written_key("Mary-Ann O'Neil 2")
    assert written == "maryannoneil2"


def _plain_crossed(c_l, c_r, first, last, jw_high, jw_low):
    """compare._crossed_if_better as it was: all four similarities of every pair."""
    cfl, cfr, cll, clr = c_l["first_name_key#"], c_r["first_name_key#"], c_l["last_name_key#"], c_r["last_name_key#"]
    code = compare.FEATURES["first_name"]
    low = (first != code.index("exact")) | (last != compare.FEATURES["last_name"].index("exact"))
    idx = np.flatnonzero(compare._both(cfl, cfr) & compare._both(cll, clr) & low & (cfl != cfr) & (cll != clr))
    jw = compare._cross_jw
    x1, x2 = jw(c_l, "first_name_key", c_r, "last_name_key", idx), jw(c_l, "last_name_key", c_r, "first_name_key", idx)
    s1, s2 = jw(c_l, "first_name_key", c_r, "first_name_key", idx), jw(c_l, "last_name_key", c_r, "last_name_key", idx)
    better = (x1 >= jw_low) & (x2 >= jw_low) & (x1 + x2 > s1 + s2)
    hit = idx[better]
    x1, x2, e1, e2 = x1[better], x2[better], cfl[hit] == clr[hit], cll[hit] == cfr[hit]
    lo = x1 <= x2
    first, last = first.copy(), last.copy()
    first[hit] = compare._name_level(np.where(lo, x1, x2), np.where(lo, e1, e2), code, jw_high, jw_low)
    last[hit] = compare._name_level(
        np.where(lo, x2, x1), np.where(lo, e2, e1), compare.FEATURES["last_name"], jw_high, jw_low
    )
    return first, last


def test_crossed_names_scored_only_where_a_swap_can_win(monkeypatch):
    rng = random.Random(8)
    given = ["lily", "lilly", "foster", "fster", "john", "jon", "baker", "teddy", "charles", "hayes", "mary", "marie"]
    rows = [
        {"record_key": f"r{k}", "first_name_key": rng.choice(given), "last_name_key": rng.choice(given)}
        for k in range(400)
    ]
    frame = pd.DataFrame(rows)
    frame["name_key"] = frame["first_name_key"] + " " + frame["last_name_key"]
    cols = compare.prepare_columns(frame)
    left, right = np.triu_indices(len(frame), k=1)
    c_l, c_r = compare._Side(cols, left), compare._Side(cols, right)
    first, last = compare.compare_names(c_l, c_r)
    monkeypatch.setattr(compare, "_crossed_if_better", lambda c_l, c_r, f, la, h, lo: (f, la))
    straight = compare.compare_names(c_l, c_r)
    monkeypatch.undo()
    plain = _plain_crossed(c_l, c_r, *straight, compare.JW_HIGH, compare.JW_LOW)
    assert np.array_equal(first, plain[0]) and np.array_equal(last, plain[1])
    assert (first != straight[0]).any()  # some swaps counted
    asked = []
    scored = compare._cross_jw
    monkeypatch.setattr(compare, "_cross_jw", lambda *a: asked.append(len(a[-1])) or scored(*a))
    compare._crossed_if_better(c_l, c_r, *straight, compare.JW_HIGH, compare.JW_LOW)
    assert asked[1] < asked[0] and asked[2] <= asked[1]
