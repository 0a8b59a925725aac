"""Link stage: blocking, comparison levels, EM model, TF adjustment, decisions, incremental."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from crmclean.errors import RulesError
from crmclean.link import DEFAULT_HARD_CONSTRAINTS, PAIR_COLUMNS, LinkResult, link, train_supervised
from crmclean.link.blocking import block, soundex
from crmclean.link.compare import FEATURE_NAMES, FEATURES, compare_pairs, prepare_columns
from crmclean.link.model import levels_frame, model_compatible, model_summary
from crmclean.settings import Rules

STD_COLUMNS = [
    "record_key",
    "source",
    "source_record_id",
    "first_name_key",
    "last_name_key",
    "name_key",
    "name_script",
    "full_name_std",
    "name_suffix_std",
    "email_key",
    "email_std",
    "mobile_std",
    "landline_std",
    "phone_std",
    "birth_date_std",
    "address_std",
    "city_std",
    "state_std",
    "postal_code_std",
    "district_std",
    "country_std",
    "gender_std",
    "company_std",
]

FIRST = [
    "robert",
    "william",
    "james",
    "mary",
    "patricia",
    "jennifer",
    "michael",
    "linda",
    "david",
    "susan",
    "wei",
    "fang",
    "xuedong",
    "li",
    "na",
    "jing",
    "qiang",
    "min",
    "yan",
    "jun",
    "thomas",
    "karen",
    "daniel",
    "nancy",
    "paul",
    "lisa",
    "mark",
    "betty",
    "steven",
    "helen",
]
LAST = [
    "smith",
    "johnson",
    "brown",
    "garcia",
    "miller",
    "davis",
    "wilson",
    "moore",
    "taylor",
    "anderson",
    "zhang",
    "wang",
    "li",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
    "xie",
    "sun",
    "ma",
    "hu",
]
CITIES = ["springfield", "shanghai", "beijing", "riverside", "franklin"]
FAST = {"u_sample_pairs": 100_000}  # smaller random sample for u: keeps the tests fast


def R(**matching) -> Rules:
    return Rules(matching={**FAST, **matching})


def person(key, first, last, **kw):
    row = {c: None for c in STD_COLUMNS}
    src, _, rid = key.partition("|")
    row.update(
        record_key=key,
        source=src,
        source_record_id=rid,
        first_name_key=first,
        last_name_key=last,
        name_key=" ".join(sorted(p for p in (first, last) if p)) or None,
        name_script="latin",
    )
    row.update(kw)
    if row.get("phone_std") is None:
        row["phone_std"] = row.get("mobile_std") or row.get("landline_std")
    return row


def _typo(rng, s):
    if not s or len(s) < 4:
        return s
    k = int(rng.integers(1, len(s) - 1))
    return s[:k] + s[k + 1] + s[k] + s[k + 2 :]


def synthetic(n_people=600, seed=7):
    """People with a second record for ~half of them (typos, missing fields, new address)."""
    rng = np.random.default_rng(seed)
    rows, truth = [], set()
    for p in range(n_people):
        first, last = FIRST[rng.integers(len(FIRST))], LAST[rng.integers(len(LAST))]
        y, m, d = int(rng.integers(1940, 2005)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        base = dict(
            birth_date_std=f"{y:04d}-{m:02d}-{d:02d}",
            email_key=f"{first}.{last}{p}@example.com",
            mobile_std=f"+1555{p:07d}",
            address_std=f"{int(rng.integers(1, 999))} {LAST[rng.integers(len(LAST))]} street",
            city_std=CITIES[rng.integers(len(CITIES))],
            postal_code_std=f"{int(rng.integers(10000, 99999))}",
            gender_std=["M", "F"][int(rng.integers(2))],
        )
        rows.append(person(f"crm|{p}", first, last, **base))
        if rng.random() < 0.5:
            dup = dict(base)
            f2, l2 = first, last
            r = rng.random()
            if r < 0.25:
                f2 = _typo(rng, first)
            elif r < 0.4:
                dup["email_key"] = None
            elif r < 0.55:
                dup["address_std"] = f"{int(rng.integers(1, 999))} new road"  # moved
                dup["postal_code_std"] = None
            elif r < 0.7:
                dup["mobile_std"] = None
            elif r < 0.8:
                f2, l2 = last, first  # swapped given/family name
            rows.append(person(f"web|{p}", f2, l2, **dup))
            truth.add(tuple(sorted((f"crm|{p}", f"web|{p}"))))
    return pd.DataFrame(rows, columns=STD_COLUMNS), truth


TWIN_NAMES = [
    ("daniel", "danielle"),
    ("paul", "paula"),
    ("louis", "louise"),
    ("eric", "erica"),
    ("emma", "olivia"),
    ("liam", "noah"),
    ("jian", "jianyang"),
    ("wei", "ming"),
    ("anna", "hanna"),
    ("mark", "maria"),
]


SYLLABLES = ("ka", "lo", "mi", "ru", "se", "ta", "vu")


def look_alikes(n=200, seed=11, prefix="fam"):
    """Families as customer data has them: twins (same surname, birth date, address, landline;
    own given name, e-mail, mobile) and father and son without suffixes (same name and
    address, no birth date, own e-mail and mobile) — so that the model can learn that this
    data holds look-alikes."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        last = f"{LAST[k % len(LAST)]}{'abcdefghij'[k % 10]}{k}"
        street = "".join(SYLLABLES[(k // 7**i) % 7] for i in range(3)) + SYLLABLES[k % 5]
        home = dict(
            address_std=f"{k + 1} {street} {('way', 'close', 'row', 'hill')[k % 4]}",
            city_std=CITIES[k % len(CITIES)],
            postal_code_std=f"{60000 + k}",
            landline_std=f"+1444{k:07d}",
        )
        if k % 2 == 0:
            a, b = TWIN_NAMES[int(rng.integers(len(TWIN_NAMES)))]
            dob = f"{1950 + k % 50}-0{1 + k % 9}-1{k % 10}"
            rows.append(
                person(
                    f"{prefix}|{k}a",
                    a,
                    last,
                    birth_date_std=dob,
                    email_key=f"{a}{k}@family.com",
                    mobile_std=f"+1333{k:06d}1",
                    **home,
                )
            )
            rows.append(
                person(
                    f"{prefix}|{k}b",
                    b,
                    last,
                    birth_date_std=dob,
                    email_key=f"{b}.{last}@family.com",
                    mobile_std=f"+1333{k:06d}2",
                    **home,
                )
            )
        else:
            first = FIRST[k % len(FIRST)]
            rows.append(
                person(
                    f"{prefix}|{k}a",
                    first,
                    last,
                    email_key=f"{first}{k}@family.com",
                    mobile_std=f"+1333{k:06d}1",
                    **home,
                )
            )
            rows.append(
                person(
                    f"{prefix}|{k}b",
                    first,
                    last,
                    email_key=f"{first}.{last}@family.com",
                    mobile_std=f"+1333{k:06d}2",
                    **home,
                )
            )
    return pd.DataFrame(rows, columns=STD_COLUMNS)


@pytest.fixture(scope="module")
def data():
    frame, truth = synthetic()
    return frame, truth


@pytest.fixture(scope="module")
def linked(data) -> LinkResult:
    return link(data[0], R(), workers=1)


def _pairset(pairs, decision="match"):
    p = pairs[pairs["decision"] == decision]
    return set(zip(p["record_key_l"], p["record_key_r"]))


# ------------------------------------------------------------------ end-to-end quality


def test_link_finds_duplicates_with_high_precision_and_recall(data, linked):
    _, truth = data
    found = _pairset(linked.pairs)
    tp = len(found & truth)
    precision, recall = tp / len(found), tp / len(truth)
    assert precision >= 0.99, (precision, sorted(found - truth)[:5])
    assert recall >= 0.95, (recall, sorted(truth - found)[:5])


def test_pairs_contract(linked):
    pairs = linked.pairs
    assert list(pairs.columns) == PAIR_COLUMNS
    assert (pairs["record_key_l"] < pairs["record_key_r"]).all()
    assert not pairs.duplicated(["record_key_l", "record_key_r"]).any()
    assert set(pairs["decision"]) <= {"match", "review"}  # non-matches are counted, not kept
    assert (pairs["match_probability"] >= 0.6).all()
    row = pairs.iloc[0]
    ev = json.loads(row["evidence"])
    assert set(ev) == set(FEATURE_NAMES)
    prior = math.log2(linked.model["lambda"] / (1 - linked.model["lambda"]))
    assert math.isclose(prior + sum(v["weight"] for v in ev.values()), row["match_weight"], abs_tol=0.05)
    assert math.isclose(row["match_probability"], 1 / (1 + 2 ** -row["match_weight"]), rel_tol=1e-3)
    # every pair records which blocking rules proposed it
    assert pairs["rules"].str.len().gt(0).all()
    assert pairs["rules"].str.contains(";").any()


def test_model_is_serialisable_and_reused_without_training(data, linked):
    model = json.loads(json.dumps(linked.model))
    assert model["version"] == 2 and 0 < model["lambda"] < 1 and model_compatible(model)
    for feature in FEATURE_NAMES:
        c = model["comparisons"][feature]
        assert len(c["m"]) == len(c["u"]) == len(FEATURES[feature]) - 1
    # a true exact match is far more likely among matches than among random pairs
    fn = model["comparisons"]["first_name"]
    assert fn["m"][0] > 0.5 and fn["u"][0] < 0.2
    again = link(data[0], R(), model=model, workers=1)
    assert again.model["created"] == model["created"]  # reused, not retrained
    pd.testing.assert_frame_equal(again.pairs, linked.pairs)


def test_summary_counts_every_candidate(linked):
    s = linked.blocking_summary
    total = s[s["rule"] == "total"].iloc[0]
    assert total["match"] + total["review"] + total["non_match"] == total["pairs"]
    assert total["match"] == (linked.pairs["decision"] == "match").sum()
    assert {"phone", "email", "name", "name_neighbourhood"} <= set(s["rule"])


# ------------------------------------------------------------------ hard cases


def hard_cases():
    rows = [
        # Hanzi record vs pinyin record: standardize gives both the same pinyin keys
        person(
            "cn|1",
            "xuedong",
            "xie",
            name_script="han",
            full_name_std="谢雪东",
            mobile_std="+8613800138000",
            birth_date_std="1985-03-12",
            city_std="shanghai",
        ),
        person(
            "us|1",
            "xuedong",
            "xie",
            mobile_std="+8613800138000",
            birth_date_std="1985-03-12",
            email_key="xuedong.xie@example.com",
        ),
        # nickname already canonical (Bob → robert) and day/month swapped birth date
        person(
            "a|2",
            "robert",
            "miller",
            birth_date_std="1970-04-05",
            email_key="bob.miller@example.com",
            address_std="12 oak street",
            postal_code_std="12345",
            city_std="springfield",
        ),
        person(
            "b|2",
            "robert",
            "miller",
            birth_date_std="1970-05-04",
            email_key="bob.miller@example.com",
            address_std="12 oak st",
            postal_code_std="12345",
            city_std="springfield",
        ),
        # twins: same surname, birth date, address and landline; different given names
        person(
            "a|3",
            "emma",
            "clarke",
            birth_date_std="1999-09-09",
            landline_std="+15550001111",
            address_std="7 elm street",
            postal_code_std="55555",
            city_std="franklin",
            gender_std="F",
        ),
        person(
            "b|3",
            "olivia",
            "clarke",
            birth_date_std="1999-09-09",
            landline_std="+15550001111",
            address_std="7 elm street",
            postal_code_std="55555",
            city_std="franklin",
            gender_std="F",
        ),
        # Jr / Sr: same name, address and landline
        person(
            "a|4",
            "john",
            "walker",
            name_suffix_std="Jr",
            landline_std="+15550002222",
            address_std="3 pine road",
            postal_code_std="66666",
            city_std="riverside",
            gender_std="M",
        ),
        person(
            "b|4",
            "john",
            "walker",
            name_suffix_std="Sr",
            landline_std="+15550002222",
            address_std="3 pine road",
            postal_code_std="66666",
            city_std="riverside",
            gender_std="M",
        ),
        # spouses: surname, address and landline shared
        person(
            "a|5",
            "peter",
            "hughes",
            birth_date_std="1960-01-01",
            landline_std="+15550003333",
            address_std="9 birch lane",
            postal_code_std="77777",
            city_std="springfield",
            gender_std="M",
        ),
        person(
            "b|5",
            "susan",
            "hughes",
            birth_date_std="1962-06-30",
            landline_std="+15550003333",
            address_std="9 birch lane",
            postal_code_std="77777",
            city_std="springfield",
            gender_std="F",
        ),
    ]
    return pd.DataFrame(rows, columns=STD_COLUMNS)


def test_hard_positives_and_negatives(data):
    """In data that holds families (look_alikes), the model learns that sharing surname, birth
    date and address is weak evidence when the given names differ: twins and spouses are not
    merged, with no rule saying so."""
    frame = pd.concat([data[0], look_alikes(), hard_cases()], ignore_index=True)
    res = link(frame, R(), workers=1)
    decisions = {
        (a, b): d for a, b, d in zip(res.pairs["record_key_l"], res.pairs["record_key_r"], res.pairs["decision"])
    }
    assert decisions.get(("cn|1", "us|1")) == "match"  # Hanzi vs pinyin
    assert decisions.get(("a|2", "b|2")) == "match"  # nickname + day/month swap
    assert decisions.get(("a|3", "b|3")) != "match"  # twins
    assert ("a|4", "b|4") not in decisions  # Jr vs Sr: the generation_conflict hard constraint
    assert decisions.get(("a|5", "b|5")) != "match"  # spouses
    ev = json.loads(res.pairs.set_index(["record_key_l", "record_key_r"]).loc[("a|2", "b|2"), "evidence"])
    assert ev["birth_date"]["level"] == "day_month_swapped"


def test_term_frequency_makes_common_names_weak(data):
    """Two Zhang Wei records that share only their (common) name weigh less than two rare names."""
    frame = data[0].copy()
    extra = [person(f"z|{k}", "wei", "zhang", city_std="beijing") for k in range(30)]
    extra += [
        person("r|1", "xuedong", "quimby", city_std="beijing"),
        person("r|2", "xuedong", "quimby", city_std="beijing"),
    ]
    frame = pd.concat([frame, pd.DataFrame(extra, columns=STD_COLUMNS)], ignore_index=True)
    res = link(frame, R(thresholds={"match": 0.99, "review": 0.0001}), workers=1)
    p = res.pairs.set_index(["record_key_l", "record_key_r"])
    common = json.loads(p.loc[("z|0", "z|1"), "evidence"])
    rare = json.loads(p.loc[("r|1", "r|2"), "evidence"])
    assert common["last_name"]["weight"] < rare["last_name"]["weight"] - 3
    assert common["last_name"]["tf_adjustment"] < 0 < rare["last_name"]["tf_adjustment"]
    assert p.loc[("z|0", "z|1"), "decision"] != "match"


# ------------------------------------------------------------------ blocking


def test_junk_key_shared_by_many_records_is_skipped_and_reported():
    rows = [
        person(f"s|{k:03d}", FIRST[k % len(FIRST)], LAST[k % len(LAST)], landline_std="+15550000000") for k in range(60)
    ]
    cols = prepare_columns(pd.DataFrame(rows, columns=STD_COLUMNS))
    cand = block(
        cols, {"blocking": {"max_block_size": 50, "rules": [{"name": "landline", "columns": ["landline_std"]}]}}
    )
    assert len(cand.left) == 0
    row = cand.summary.iloc[0]
    assert row["skipped_keys"] == 1 and row["skipped_records"] == 60 and "+15550000000" in row["skipped_examples"]
    cand = block(
        cols, {"blocking": {"max_block_size": 100, "rules": [{"name": "landline", "columns": ["landline_std"]}]}}
    )
    assert len(cand.left) == 60 * 59 // 2


def test_blocking_union_is_deduplicated_and_ordered(data):
    frame = data[0].sort_values("record_key").reset_index(drop=True)
    cand = block(prepare_columns(frame), {})
    assert (cand.left < cand.right).all()
    ids = cand.left.astype(np.int64) * len(frame) + cand.right
    assert len(np.unique(ids)) == len(ids)
    # far fewer than all pairs
    assert len(ids) < len(frame) * (len(frame) - 1) / 2 / 20


def test_incremental_only_compares_pairs_touching_new_keys(data, linked):
    frame = data[0]
    new = set(frame["record_key"].iloc[:40])
    res = link(frame, R(), model=linked.model, new_keys=new, workers=1)
    assert len(res.pairs)
    assert (res.pairs["record_key_l"].isin(new) | res.pairs["record_key_r"].isin(new)).all()
    full = linked.pairs[linked.pairs["record_key_l"].isin(new) | linked.pairs["record_key_r"].isin(new)]
    assert _pairset(res.pairs) == _pairset(full)


def test_chunked_parallel_comparison_equals_single_pass(data):
    small = R(chunk_size=300)
    a = link(data[0], small, workers=2)
    b = link(data[0], R(), model=a.model, workers=1)
    pd.testing.assert_frame_equal(a.pairs, b.pairs)


def test_bad_blocking_rule_is_a_rules_error(data):
    with pytest.raises(RulesError, match="unknown column"):
        link(data[0], R(blocking={"rules": [{"name": "x", "columns": ["no_such_col"]}]}), workers=1)
    with pytest.raises(RulesError, match="thresholds"):
        link(data[0], R(thresholds={"match": 0.5, "review": 0.9}), workers=1)


def test_empty_and_tiny_inputs_do_not_fail():
    empty = pd.DataFrame(columns=STD_COLUMNS)
    res = link(empty, R(), workers=1)
    assert res.pairs.empty and list(res.pairs.columns) == PAIR_COLUMNS
    one = pd.DataFrame([person("a|1", "ann", "lee")], columns=STD_COLUMNS)
    assert link(one, R(), workers=1).pairs.empty


# ------------------------------------------------------------------ comparison levels


def test_comparison_levels():
    rows = [
        person(
            "x|1",
            "jon",
            "smith",
            birth_date_std="1980-01-02",
            email_key="jon.smith@a.com",
            mobile_std="+15550000001",
            address_std="1 main street",
            postal_code_std="11111",
            city_std="springfield",
            gender_std="M",
        ),
        person(
            "x|2",
            "john",
            "smyth",
            birth_date_std="1980-01-03",
            email_key="jon.smiht@a.com",
            landline_std="+15550000009",
            address_std="1 main street apt 2",
            postal_code_std="11111",
            city_std="springfield",
            gender_std="F",
        ),
        person("x|3", "smith", "jon", birth_date_std="1980", mobile_std="+15550000009"),
        person("x|4", "j", "smith", birth_date_std="1979-05-05", address_std="99 far road", postal_code_std="22222"),
    ]
    cols = prepare_columns(pd.DataFrame(rows, columns=STD_COLUMNS))
    lv = levels_frame(compare_pairs(cols, np.array([0, 0, 0, 1]), np.array([1, 2, 3, 2])))
    assert lv.loc[0].to_dict() == {
        "first_name": "close",
        "last_name": "similar",
        "birth_date": "one_char",
        "email": "fuzzy_local",
        "phone": "different",
        "address": "fuzzy",
        "suffix": "null",
        "gender": "different",
        "national_id": "null",
        "company": "null",
    }
    assert lv.loc[1, "first_name"] == "exact" and lv.loc[1, "last_name"] == "exact"  # swapped order
    assert lv.loc[1, "birth_date"] == "same_year"  # year-only value
    assert lv.loc[2, "first_name"] == "initial" and lv.loc[2, "address"] == "different"
    assert lv.loc[3, "phone"] == "landline_exact"  # x|2 landline == x|3 phone


def test_soundex():
    assert soundex("robert") == soundex("rupert") == "R163"
    assert soundex("ashcraft") == "A261"
    assert soundex(None) is None


# ------------------------------------------------------------------ supervised


def test_train_supervised_from_labelled_pairs(data):
    frame, truth = data
    frame = frame.sort_values("record_key").reset_index(drop=True)
    cols = prepare_columns(frame)
    cand = block(cols, {})
    levels = compare_pairs(cols, cand.left, cand.right)
    keys = frame["record_key"].to_numpy()
    labels = [(keys[i], keys[j]) in truth for i, j in zip(cand.left, cand.right)]
    model = train_supervised(levels_frame(levels), labels, thresholds={"match": 0.99, "review": 0.6})
    assert model_compatible(model) and model["training"]["method"] == "supervised"
    # u comes from labelled non-matches among blocked pairs: names agree there by design,
    # birth dates and e-mails do not
    for feature in ("birth_date", "email"):
        c = model["comparisons"][feature]
        assert c["m"][0] > 0.5 and c["m"][0] > c["u"][0] * 20
    res = link(frame, R(), model=model, workers=1)
    found = _pairset(res.pairs)
    assert len(found & truth) / len(found) >= 0.98
    with pytest.raises(ValueError):
        train_supervised(levels_frame(levels[:5]), [True] * 5)


# ------------------------------------------------------------------ properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.sampled_from([None, "robert", "rob", "r", "roberta", "smith", "smyth", "xie", "xuedong"])
_dates = st.sampled_from([None, "1980-01-02", "1980-02-01", "1980-01-03", "1980", "1995-01-02", "bad"])
_emails = st.sampled_from([None, "a.b@x.com", "a_b@x.com", "ab1@x.com", "ab12@x.com", "ab1@y.com"])
_phones = st.sampled_from([None, "+15550000001", "+15550000002"])
_text = st.sampled_from([None, "1 main street", "1 main st apt 2", "9 far road"])
_small = st.sampled_from([None, "Jr", "Sr", "M", "F"])


@st.composite
def _row(draw):
    first, last = draw(_names), draw(_names)
    return person(
        "h|x",
        first,
        last,
        birth_date_std=draw(_dates),
        email_key=draw(_emails),
        mobile_std=draw(_phones),
        landline_std=draw(_phones),
        address_std=draw(_text),
        postal_code_std=draw(st.sampled_from([None, "11111", "22222"])),
        city_std=draw(st.sampled_from([None, "a", "b"])),
        name_suffix_std=draw(_small),
        gender_std=draw(_small),
    )


@settings(max_examples=60, deadline=None)
@given(_row(), _row())
def test_comparison_is_symmetric_and_in_range(a, b):
    cols = prepare_columns(pd.DataFrame([a, b], columns=STD_COLUMNS))
    ab = compare_pairs(cols, np.array([0]), np.array([1]))
    ba = compare_pairs(cols, np.array([1]), np.array([0]))
    assert (ab == ba).all()
    for k, f in enumerate(FEATURE_NAMES):
        assert 0 <= ab[0, k] < len(FEATURES[f])
    same = compare_pairs(cols, np.array([0]), np.array([0]))[0]
    for k, f in enumerate(FEATURE_NAMES):  # a record agrees with itself wherever it has data
        assert FEATURES[f][same[k]] in (
            "null",
            "exact",
            "same",
            "mobile_exact",
            "landline_exact",
            "same_postal",
            "same_city",
        )


def test_junk_contact_values_are_not_agreement(data):
    """60 records with the address "n/a" and the switchboard number: neither is evidence."""
    junk = [
        person(f"j|{k:03d}", FIRST[k % len(FIRST)], "quimby", address_std="n/a", landline_std="+15559999999")
        for k in range(60)
    ]
    frame = pd.concat([data[0], pd.DataFrame(junk, columns=STD_COLUMNS)], ignore_index=True)
    res = link(frame, R(thresholds={"match": 0.99, "review": 0.0001}), workers=1)
    p = res.pairs[res.pairs["record_key_l"].str.startswith("j|") & res.pairs["record_key_r"].str.startswith("j|")]
    assert len(p)  # same surname: still candidates
    levels = [json.loads(e) for e in p["evidence"]]
    assert all(ev["address"]["level"] == "null" and ev["phone"]["level"] == "null" for ev in levels)
    assert (p["decision"] != "match").all()


def test_name_and_address_alone_never_auto_merge(data):
    """Father and son without suffixes: same name and address, nothing personal shared."""
    rows = [
        person(
            "f|1",
            "luis",
            "tucker",
            address_std="832 franklin dr",
            city_std="atlanta",
            postal_code_std="30301",
            email_key="tucker.luis87@hotmail.com",
            mobile_std="+19719230322",
        ),
        person(
            "f|2",
            "luis",
            "tucker",
            address_std="832 franklin dr",
            city_std="atlanta",
            postal_code_std="30301",
            email_key="tuckerluis30@gmail.com",
            mobile_std="+14048566758",
        ),
    ]
    frame = pd.concat([data[0], look_alikes(), pd.DataFrame(rows, columns=STD_COLUMNS)], ignore_index=True)
    res = link(frame, R(), workers=1)
    assert ("f|1", "f|2") not in _pairset(res.pairs, "match")
    # learnt, not ruled: the same-name-no-birth-date cell carries a negative adjustment
    assert res.model["family"]["cells"]["exact/null/same"]["adjustment"] < 0


def test_hard_constraints_and_user_caps_lower_decisions_whatever_the_score():
    """Only facts are constraints by default (Jr vs Sr; birth dates decades apart with no shared
    personal identifier); a user's cap in the same form works too."""
    from crmclean.link import _caps, decide

    code = {f: {lab: i for i, lab in enumerate(FEATURES[f])} for f in FEATURES}

    def row(**lv):
        out = np.zeros(len(FEATURE_NAMES), dtype=np.int8)
        for f, lab in lv.items():
            out[FEATURE_NAMES.index(f)] = code[f][lab]
        return out

    levels = np.stack(
        [
            row(first_name="exact", last_name="exact", address="exact", email="different", phone="different"),
            row(first_name="exact", last_name="exact", suffix="conflict", birth_date="exact", email="exact"),
            row(first_name="different", last_name="exact", birth_date="exact", phone="mobile_exact"),
            row(first_name="close", last_name="exact", birth_date="exact", address="exact", phone="landline_exact"),
        ]
    )
    levels = np.vstack(
        [
            levels,
            row(first_name="exact", last_name="exact", birth_date="years_apart", address="exact"),
            row(first_name="exact", last_name="exact", birth_date="years_apart", national_id="exact"),
            # a family shares one e-mail: no exception
            row(first_name="exact", last_name="exact", birth_date="years_apart", email="exact"),
        ]
    )
    assert [c["name"] for c in DEFAULT_HARD_CONSTRAINTS] == ["generation_conflict", "birth_dates_decades_apart"]
    rank, cap = decide(np.full(7, 0.9999), levels, {"match": 0.99, "review": 0.6}, _caps({}))
    assert rank.tolist() == [2, 0, 2, 2, 1, 2, 1]  # decades apart: review, unless a national id is shared
    assert cap.tolist() == [
        "",
        "generation_conflict",
        "",
        "",
        "birth_dates_decades_apart",
        "",
        "birth_dates_decades_apart",
    ]
    mine = {"caps": [{"name": "mine", "when": {"first_name": ["different"]}, "decision": "review"}]}
    rank, cap = decide(np.full(7, 0.9999), levels, {"match": 0.99, "review": 0.6}, _caps(mine))
    assert rank.tolist() == [2, 0, 1, 2, 1, 2, 1] and cap.tolist()[:4] == ["", "generation_conflict", "mine", ""]


# ------------------------------------------------------------------ hard cases (issue 4)


def _decisions(res):
    return {(a, b): d for a, b, d in zip(res.pairs["record_key_l"], res.pairs["record_key_r"], res.pairs["decision"])}


def test_twins_with_similar_given_names_do_not_merge(data):
    """Daniel/Danielle (Jaro-Winkler 0.95) and Jian/Jianyang (0.90): same surname, birth date,
    address and landline, each their own e-mail and mobile, in data that holds such twins:
    the look-alike cells learn how often non-matches share all that, and the pairs stay apart.
    The same Daniel with a typo in his given name and his own e-mail and mobile still merges."""
    home = dict(
        address_std="17 elm street",
        city_std="springfield",
        postal_code_std="62704",
        landline_std="+12175550123",
        birth_date_std="1990-06-01",
    )
    rows = [
        person(
            "t|1", "daniel", "quimby", email_key="dq90@example.com", mobile_std="+12175550001", gender_std="M", **home
        ),
        person("t|2", "danielle", "quimby", email_key="danielle.q@example.com", mobile_std="+12175550002", **home),
        person("t|3", "jian", "ouyang", mobile_std="+8613800000003", **home),
        person("t|4", "jianyang", "ouyang", email_key="jy.ouyang@example.com", mobile_std="+8613800000004", **home),
        # the same Daniel again with a typo in his given name: his e-mail and mobile are shared, so it merges
        person("t|5", "daneil", "quimby", email_key="dq90@example.com", mobile_std="+12175550001", **home),
    ]
    frame = pd.concat([data[0], look_alikes(), pd.DataFrame(rows, columns=STD_COLUMNS)], ignore_index=True)
    res = link(frame, R(thresholds={"match": 0.99, "review": 0.0001}), workers=1)
    d = _decisions(res)
    assert d.get(("t|1", "t|2"), "non_match") != "match"
    assert d.get(("t|3", "t|4"), "non_match") != "match"
    assert d[("t|1", "t|5")] == "match"
    ev = json.loads(res.pairs.set_index(["record_key_l", "record_key_r"]).loc[("t|1", "t|2"), "evidence"])
    assert ev["first_name"].get("correlation_adjustment", 0) < 0  # the learnt look-alike adjustment


def test_first_name_typos_merge_where_the_data_has_no_look_alikes(data):
    """The same pattern as twins — same surname, birth date and address, given names differ —
    in data without families is a typo: "antghony"/"anthony", "quique"/"enrique" merge."""
    home = dict(address_std="5 quiet lane", city_std="franklin", postal_code_std="37064", birth_date_std="1977-07-07")
    rows = [
        person("q|1", "anthony", "zabriskie", email_key="az77@example.com", mobile_std="+16155550101", **home),
        person("q|2", "antghony", "zabriskie", email_key="az77@example.com", mobile_std="+16155550101", **home),
        person("q|3", "enrique", "valderrama", email_key="ev@example.com", mobile_std="+16155550103", **home),
        person("q|4", "quique", "valderrama", email_key="ev@example.com", mobile_std="+16155550103", **home),
    ]
    frame = pd.concat([data[0], pd.DataFrame(rows, columns=STD_COLUMNS)], ignore_index=True)
    res = link(frame, R(), workers=1)
    d = _decisions(res)
    assert d[("q|1", "q|2")] == "match" and d[("q|3", "q|4")] == "match"
    assert (res.pairs["cap"] == "").all()


def test_moved_customer_with_name_and_birth_date_merges(data):
    """A customer who moved keeps name and birth date; address and phone are new, the e-mail is
    missing on one side. Moving changes address and phone together, so only the larger of
    their two penalties counts (correlated_disagreement), not both."""
    rows = [
        person(
            "m|1",
            "ignatius",
            "quackenbush",
            birth_date_std="1971-03-09",
            email_key="iq71@example.com",
            mobile_std="+13125550111",
            address_std="4 lake shore dr",
            city_std="chicago",
            postal_code_std="60601",
        ),
        person(
            "m|2",
            "ignatius",
            "quackenbush",
            birth_date_std="1971-03-09",
            mobile_std="+17205550999",
            address_std="88 colfax ave",
            city_std="denver",
            postal_code_std="80202",
        ),
    ]
    # background: 80 customers who moved (new address and new mobile, same e-mail), so EM
    # learns how often true matches differ in both
    base = data[0].iloc[:80]
    movers = base.assign(
        record_key="mv|" + base["source_record_id"],
        source="mv",
        address_std="1 new road",
        postal_code_std=None,
        city_std="franklin",
        mobile_std=[f"+1666{k:07d}" for k in range(80)],
        phone_std=None,
    )
    frame = pd.concat([data[0], movers, pd.DataFrame(rows, columns=STD_COLUMNS)], ignore_index=True)
    res = link(frame, R(), workers=1)
    pair = res.pairs.set_index(["record_key_l", "record_key_r"]).loc[("m|1", "m|2")]
    assert pair["decision"] == "match"
    ev = json.loads(pair["evidence"])
    assert ev["phone"]["level"] == ev["address"]["level"] == "different"
    penalties = sorted([ev["phone"]["weight"], ev["address"]["weight"]])
    assert penalties[0] < 0 and penalties[1] == 0  # one penalty, not two
    assert "correlation_adjustment" in ev["phone"] or "correlation_adjustment" in ev["address"]
    prior = math.log2(res.model["lambda"] / (1 - res.model["lambda"]))
    assert math.isclose(prior + sum(v["weight"] for v in ev.values()), pair["match_weight"], abs_tol=0.01)

    # counted independently, both penalties apply: the weight is lower by the smaller one
    independent = link(frame, R(correlated_disagreement=[]), workers=1)
    alone = independent.pairs.set_index(["record_key_l", "record_key_r"]).loc[("m|1", "m|2")]
    ev_alone = json.loads(alone["evidence"])
    assert ev_alone["phone"]["weight"] < 0 and ev_alone["address"]["weight"] < 0
    smaller = max(ev_alone["phone"]["weight"], ev_alone["address"]["weight"])
    assert math.isclose(pair["match_weight"] - alone["match_weight"], -smaller, abs_tol=0.01)


def test_correlated_disagreement_keeps_only_the_largest_penalty():
    from crmclean.link.model import correct_correlated

    code = {f: {lab: i for i, lab in enumerate(FEATURES[f])} for f in FEATURES}
    levels = np.zeros((3, len(FEATURE_NAMES)), dtype=np.int8)
    a, p = FEATURE_NAMES.index("address"), FEATURE_NAMES.index("phone")
    levels[:, a] = [code["address"]["different"], code["address"]["different"], code["address"]["exact"]]
    levels[:, p] = [code["phone"]["different"], 0, code["phone"]["different"]]
    weights = {f: np.zeros(3) for f in FEATURE_NAMES}
    weights["address"] = np.array([-4.0, -4.0, 12.0])
    weights["phone"] = np.array([-3.0, 0.0, -3.0])
    correct_correlated(levels, weights, {})
    assert weights["address"].tolist() == [-4.0, -4.0, 12.0]
    assert weights["phone"].tolist() == [0.0, 0.0, -3.0]  # only the pair where both differ changes
    off = {f: w.copy() for f, w in weights.items()}
    off["phone"] = np.array([-3.0, 0.0, -3.0])
    correct_correlated(levels, off, {"correlated_disagreement": []})
    assert off["phone"].tolist() == [-3.0, 0.0, -3.0]


def test_febrl_example_profile_differs_from_the_default_rules_only_in_blocking():
    """rules/profiles/febrl/matching.yaml is an example: the default matching section plus the
    two name-typo blocking rules the default leaves out (FEBRL has no phone or e-mail)."""
    import yaml
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "rules"
    default = yaml.safe_load((root / "matching.yaml").read_text(encoding="utf-8"))
    profile = yaml.safe_load((root / "profiles" / "febrl" / "matching.yaml").read_text(encoding="utf-8"))
    extra = ["last_first_initial_city", "soundex_dob_year"]
    febrl_rules = profile["blocking"].pop("rules")
    assert [r for r in febrl_rules if r["name"] not in extra] == default["blocking"].pop("rules")
    assert sorted(r["name"] for r in febrl_rules if r["name"] in extra) == extra
    assert profile == default


def test_common_name_too_big_to_block_is_still_paired_by_name_and_birth_date():
    """60 "wei zhang" records: the name block is skipped as oversized (no record recurs in this
    data, so a block that big is many people), but the two sharing a birth date (a moved
    customer: nothing else in common) are still proposed by name_dob."""
    rows = [
        person(f"z|{k:02d}", "wei", "zhang", birth_date_std=f"19{50 + k % 40}-0{1 + k % 9}-1{k % 10}")
        for k in range(60)
    ]
    rows[1]["birth_date_std"] = rows[0]["birth_date_std"]
    cols = prepare_columns(pd.DataFrame(rows, columns=STD_COLUMNS).sort_values("record_key"))
    cand = block(cols, {})
    summary = cand.summary.set_index("rule")
    assert summary.loc["name", "skipped_keys"] == 1 and summary.loc["name", "pairs"] == 0
    pairs = dict(zip(zip(cand.left.tolist(), cand.right.tolist()), cand.rules_text(cand.rule_mask)))
    assert "name_dob" in pairs[(0, 1)].split(";")


# ------------------------------------------------------------------ speed work: same output as the plain way


def _reference_block(frame: pd.DataFrame, rule: dict, max_block: int, is_new=None) -> set[tuple[int, int]]:
    """The straightforward definition: joined text keys, a pandas self-merge per block, and
    recordlinkage's SortedNeighbourhood index for a window rule."""
    import recordlinkage

    from crmclean.link.blocking import blocking_key, rule_columns
    from crmclean.link.compare import clean_column

    cols = {c: clean_column(frame[c].to_numpy(dtype=object)) for c in frame.columns if c != "record_key"}
    key = pd.Series(blocking_key(cols, rule_columns(rule)), dtype="object")
    counts = key.map(key.value_counts())
    if rule.get("method") == "sortedneighbourhood":
        usable = key.notna() & (counts <= max_block)
        k = pd.DataFrame({"k": key[usable].astype(str)}, index=np.flatnonzero(usable.to_numpy()))
        indexer = recordlinkage.Index()
        indexer.sortedneighbourhood(left_on="k", window=int(rule.get("window", 3)))
        mi = indexer.index(k)
        pairs = {(min(a, b), max(a, b)) for a, b in zip(mi.get_level_values(0), mi.get_level_values(1)) if a != b}
    else:
        ok = key.notna() & (counts <= max_block)
        d = pd.DataFrame({"k": key[ok], "i": np.flatnonzero(ok.to_numpy())})
        m = d.merge(d, on="k")
        pairs = {(a, b) for a, b in zip(m["i_x"], m["i_y"]) if a < b}
    if is_new is not None:
        pairs = {p for p in pairs if is_new[p[0]] or is_new[p[1]]}
    return pairs


@pytest.mark.parametrize(
    "rule",
    [
        {"name": "email", "columns": ["email_key"]},
        {"name": "dob_last_initial", "columns": ["birth_date_std", "last_name_key:initial"]},
        {"name": "soundex", "columns": ["last_name_key:soundex", "first_name_key:initial", "birth_date_std:year"]},
        {"name": "city_last", "columns": ["city_std", "last_name_key"]},
        {"name": "window", "method": "sortedneighbourhood", "columns": "name_key", "window": 3},
        {"name": "window5", "method": "sortedneighbourhood", "columns": ["last_name_key", "city_std"], "window": 5},
    ],
)
def test_blocking_from_codes_equals_text_key_reference(data, rule):
    """Integer keys + numpy pair enumeration give exactly the pairs of the text-key definition
    (and recordlinkage's sorted neighbourhood), with blocks above max_block_size skipped
    (oversize_window 0: the thinning of oversized blocks is tested in test_recurring.py)."""
    frame = data[0].sort_values("record_key").reset_index(drop=True)
    frame.loc[::7, "city_std"] = "  springfield "  # values equal after cleaning block together
    cols = prepare_columns(frame)
    for max_block in (50, 8):
        cand = block(cols, {"blocking": {"max_block_size": max_block, "oversize_window": 0, "rules": [rule]}})
        got = set(zip(cand.left.tolist(), cand.right.tolist()))
        assert got == _reference_block(frame, rule, max_block)
        assert int(cand.summary.iloc[0]["pairs"]) == len(got)
    is_new = np.zeros(len(frame), dtype=bool)
    is_new[::13] = True
    cand = block(cols, {"blocking": {"max_block_size": 50, "oversize_window": 0, "rules": [rule]}}, is_new)
    assert set(zip(cand.left.tolist(), cand.right.tolist())) == _reference_block(frame, rule, 50, is_new)


def test_comparison_of_many_pairs_equals_pair_by_pair(data):
    """Scores computed once per distinct value pair and columns gathered lazily give the same
    levels as comparing each pair on its own."""
    frame = data[0].sort_values("record_key").reset_index(drop=True)
    cols = prepare_columns(frame, shared_value_limit=50)
    cand = block(cols, {})
    rng = np.random.default_rng(3)
    left = np.concatenate([cand.left, rng.integers(0, len(frame), 400)])
    right = np.concatenate([cand.right, rng.integers(0, len(frame), 400)])
    together = compare_pairs(cols, left, right)
    alone = np.vstack([compare_pairs(cols, left[k : k + 1], right[k : k + 1]) for k in range(len(left))])
    assert (together == alone).all()
    assert (together[:, FEATURE_NAMES.index("first_name")] == FEATURES["first_name"].index("close")).any()


def test_prepare_columns_cleans_and_codes_each_value():
    rows = [
        person("a|1", "wei", "zhang", email_key=" w@x.com ", birth_date_std="1980-03-04"),
        person("a|2", "wei", "zhang", email_key="w@x.com", birth_date_std="1980-04-03"),
        person("a|3", "zhang", "wei", email_key="   ", birth_date_std=None),
    ]
    cols = prepare_columns(pd.DataFrame(rows, columns=STD_COLUMNS))
    assert cols["email_key"].tolist() == ["w@x.com", "w@x.com", None]
    assert cols["email_key#"][0] == cols["email_key#"][1] >= 0 and cols["email_key#"][2] == -1
    assert cols["email_domain"].tolist() == ["x.com", "x.com", None]
    assert cols["birth_date_swapped"].tolist() == ["1980-04-03", "1980-03-04", None]
    assert cols["birth_date_swapped#"][0] == cols["birth_date_std#"][1]  # one code space: swap is an equality test
    assert cols["birth_year"].tolist() == [1980, 1980, -1]
    assert cols["first_name_key#"][2] == cols["last_name_key#"][0]  # swapped names share codes


# ------------------------------------------------------------------ what the model knows it learnt (issue 12)


def test_a_two_row_first_run_uses_neutral_priors_and_is_never_reused():
    """Two rows cannot teach anything: the model says so, weights are the documented neutral
    priors (not 0.00), and a later run on real data retrains instead of reusing it."""
    from crmclean.link.model import model_summary, neutral_u, reuse_verdict

    two = pd.DataFrame(
        [person("a|1", "anna", "berg", email_key="anna@x.com"), person("b|1", "anna", "berg", email_key="anna@x.com")],
        columns=STD_COLUMNS,
    )
    res = link(two, R(), workers=1)
    training = res.model["training"]
    assert not training["trained"] and "only 2 records" in training["why"]
    summary = model_summary(res.model)
    assert not summary["trained"] and summary["mode"] == "trained"
    exact = summary["features"]["email"][0]
    assert exact["level"] == "exact" and exact["weight"] > 5  # log2(0.85 / 0.01), not 0
    assert np.allclose(res.model["comparisons"]["email"]["u"], neutral_u("email"))
    assert reuse_verdict(res.model, 1000, {}) == "the saved model was not trained (too little data then)"
    one = link(two.iloc[:1], R(), workers=1)
    assert len(one.pairs) == 0 and not one.model["training"]["trained"]


def test_model_reuse_needs_the_same_shape_and_size(data, linked):
    """Reused only for data of the same shape and size: other thresholds or much more data retrain."""
    from crmclean.link.model import model_summary, reuse_verdict

    model, n = linked.model, len(data[0])
    assert model["training"]["trained"] and linked.usage["mode"] == "trained" and "usage" not in model
    assert reuse_verdict(model, n, {}) == ""
    assert "grew" in reuse_verdict(model, 3 * n, {})
    assert reuse_verdict(model, 3 * n, {"training_minimum": {"growth_factor": 5}}) == ""
    assert reuse_verdict(model, n, {"comparison": {"jw_high": 0.95}}) == "the comparison thresholds changed"
    again = link(data[0], R(), model=model, workers=1)
    assert again.usage["mode"] == "reused" and again.model["created"] == model["created"]
    grown = pd.concat(
        [data[0]] + [data[0].assign(record_key=f"{c}" + data[0]["record_key"]) for c in "xy"], ignore_index=True
    )
    retrained = link(grown, R(), model=model, workers=1)
    assert retrained.usage["mode"] == "trained" and "grew" in retrained.usage["why"]
    assert model_summary(retrained.model, retrained.usage)["why"] == retrained.usage["why"]
    summary = model_summary(model)
    assert {"level", "m", "u", "weight"} <= set(summary["features"]["first_name"][0])
    assert summary["records"] == n and summary["candidate_pairs"] > 0


def test_junk_names_never_merge():
    """A file whose every name is the same junk and nothing else: the run finishes, nothing merges."""
    rows = [person(f"j|{k:03d}", "test", "test", city_std="springfield") for k in range(120)]
    res = link(pd.DataFrame(rows, columns=STD_COLUMNS), R(), workers=1)
    assert (res.pairs["decision"] != "match").all()


def test_a_column_that_is_one_value_learns_no_weight(data):
    """Gender 99 % one value: its agreement is worth about nothing, and linking is unchanged."""
    frame = data[0].copy()
    frame["gender_std"] = "F"
    frame.loc[frame.index[:5], "gender_std"] = "M"
    res = link(frame, R(), workers=1)
    same = dict(zip(res.model["comparisons"]["gender"]["levels"], res.model["comparisons"]["gender"]["u"]))["same"]
    assert same > 0.95
    from crmclean.link.model import model_summary

    summary = {r["level"]: r["weight"] for r in model_summary(res.model)["features"]["gender"]}
    assert abs(summary["same"]) < 0.2
    f1 = len(_pairset(res.pairs) & data[1]) / len(data[1])
    assert f1 > 0.9


# ---------------------------------------------------------------- labels refine the run's model


def _ranks(res, pairs):
    rank = {"non_match": 0, "review": 1, "match": 2}
    got = res.pairs.set_index(["record_key_l", "record_key_r"])["decision"]
    return np.array([rank[got.get(p, "non_match")] for p in pairs])


def test_labels_that_contradict_em_move_the_affected_decisions(data):
    """EM keeps twins (same surname, birth date, address; other given name) apart; a person who
    labels 60 twin pairs as matches pulls the other 40 up, without a second relink."""
    frame = pd.concat([data[0], look_alikes()], ignore_index=True)
    twins = [(f"fam|{k}a", f"fam|{k}b") for k in range(0, 200, 2)]
    labels = pd.DataFrame(
        [(a, b, "match") for a, b in twins[:60]], columns=["record_key_l", "record_key_r", "decision"]
    )
    plain = link(frame, R(), workers=1)
    refined = link(frame, R(), workers=1, labels=labels)
    before, after = _ranks(plain, twins[60:]), _ranks(refined, twins[60:])
    assert (after >= before).all() and (after > before).sum() >= 5
    assert refined.usage["labels"] == 60 and plain.usage["labels"] == 0
    # the saved model is the EM one: labels never compound over runs
    assert refined.model["comparisons"] == plain.model["comparisons"]
    assert "labels" not in refined.model["training"]


def test_no_labels_give_identical_output(data, linked):
    """No labels (or labels of records not in the frame) score exactly as before."""
    none = pd.DataFrame(columns=["record_key_l", "record_key_r", "decision"])
    elsewhere = pd.DataFrame([("x|1", "x|2", "match")], columns=none.columns)
    for labels in (none, elsewhere):
        res = link(data[0], R(), workers=1, labels=labels)
        pd.testing.assert_frame_equal(res.pairs, linked.pairs)
        assert res.usage["labels"] == 0


# ---------------------------------------------------------------- extra (attr_*) comparisons


OCCUPATIONS = np.array(["nurse", "teacher", "driver", "clerk", "engineer", "farmer", "cook", "lawyer"])


def with_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    """An occupation per person (a record's duplicate shares it; 10 % missing), a column that
    is one value everywhere, and one that is almost always empty."""
    out = frame.copy()
    person_no = out["record_key"].str.partition("|")[2].astype(int)
    out["attr_occupation_std"] = OCCUPATIONS[person_no % len(OCCUPATIONS)]
    out.loc[np.random.default_rng(1).random(len(out)) < 0.1, "attr_occupation_std"] = None
    out["attr_flag_std"] = "yes"
    out["attr_rare_std"] = None
    out.loc[:3, "attr_rare_std"] = "x"
    return out


@pytest.fixture(scope="module")
def attr_linked(data) -> LinkResult:
    return link(with_attrs(data[0]), R(), workers=1)


def _weights(model, feature):
    return {row["level"]: row["weight"] for row in model_summary(model)["features"][feature]}


def test_unmapped_categorical_columns_are_compared_with_em_weights(attr_linked):
    model = attr_linked.model
    assert model["extra_features"] == ["attr_flag", "attr_occupation", "attr_rare"]
    assert model["comparisons"]["attr_occupation"]["tf_levels"] == ["exact"]
    occupation = _weights(model, "attr_occupation")
    assert occupation["exact"] > 1.0 and occupation["different"] < -1.0  # duplicates share it, strangers seldom
    # one value everywhere, or almost always empty: (about) no evidence either way
    assert all(abs(w) < 0.5 for w in _weights(model, "attr_flag").values())
    assert all(abs(w) < 0.5 for w in _weights(model, "attr_rare").values())
    evidence = json.loads(attr_linked.pairs["evidence"].iloc[0])
    assert evidence["attr_occupation"]["level"] in ("exact", "different", "null")
    assert list(evidence)[-3:] == model["extra_features"]


def test_common_occupation_counts_less_than_a_rare_one(data):
    """Term frequencies on the exact level: a shared value everyone has is weaker evidence."""
    frame = with_attrs(data[0])
    person_no = frame["record_key"].str.partition("|")[2].astype(int)
    frame["attr_occupation_std"] = np.where(person_no % 10 == 0, "astronaut", "clerk")
    res = link(frame, R(), workers=1)
    ev = [json.loads(e)["attr_occupation"] for e in res.pairs["evidence"]]
    exact = {(e.get("tf_adjustment", 0.0) > 0): e["weight"] for e in ev if e["level"] == "exact"}
    assert exact[True] > exact[False]


def test_a_model_is_reused_only_for_data_of_the_same_shape(data, attr_linked):
    frame = with_attrs(data[0])
    assert link(frame, R(), model=attr_linked.model, workers=1).usage["mode"] == "reused"
    for other in (frame.assign(attr_birth_place_std="x"), frame.drop(columns=["attr_flag_std"]), data[0]):
        res = link(other, R(), model=attr_linked.model, workers=1)
        assert res.usage["mode"] == "trained" and "extra columns" in res.usage["why"]
    # a model without extras retrains on data with a new column
    plain = link(data[0], R(), workers=1)
    assert link(frame, R(), model=plain.model, workers=1).usage["mode"] == "trained"


def test_extra_comparisons_can_be_switched_off_or_excluded(data, linked):
    frame = with_attrs(data[0])
    off = link(frame, R(extra_comparisons={"enabled": False}), workers=1)
    assert "extra_features" not in off.model
    pd.testing.assert_frame_equal(off.pairs, linked.pairs)
    some = link(frame, R(extra_comparisons={"exclude": ["attr_flag", "attr_rare_std"]}), workers=1)
    assert some.model["extra_features"] == ["attr_occupation"]


def test_a_location_under_an_unknown_header_is_not_compared_twice(data):
    """A "Town/City" column ingest did not map holds city names: the address feature already
    compares the city, so it is no extra comparison."""
    frame = data[0].copy()
    frame["attr_town_city_std"] = frame["city_std"].str.upper()
    frame.loc[::2, "city_std"] = None
    assert "extra_features" not in link(frame, R(), workers=1).model


def test_incremental_link_with_extras_equals_linking_everything(data, attr_linked):
    frame = with_attrs(data[0])
    new = set(frame["record_key"].iloc[::7])
    fast = link(frame, R(), model=attr_linked.model, new_keys=new, workers=1)
    full = link(frame, R(), model=attr_linked.model, new_keys=new, workers=1, restrict=False)
    assert fast.usage["mode"] == full.usage["mode"] == "reused"
    key = ["record_key_l", "record_key_r"]
    pd.testing.assert_frame_equal(
        fast.pairs.sort_values(key).reset_index(drop=True), full.pairs.sort_values(key).reset_index(drop=True)
    )


def test_explain_shows_the_extra_features_of_stored_evidence(attr_linked):
    from crmclean.explain import render_waterfall

    row = attr_linked.pairs.iloc[0]

    def line(show_pii: bool) -> str:
        text = render_waterfall(
            row["record_key_l"],
            row["record_key_r"],
            {"attr_occupation_std": "nurse"},
            {"attr_occupation_std": "nurse"},
            json.loads(row["evidence"]),
            -10.0,
            show_pii=show_pii,
        )
        return next(x for x in text.splitlines() if x.startswith("attr_occupation"))

    assert "nurse | nurse" in line(show_pii=True)
    # an unmapped column may hold anything: masked like other personal text by default
    assert "nurse" not in line(show_pii=False) and "n*** | n***" in line(show_pii=False)


def test_swapped_names_with_a_typo_compare_crossed():
    """`fster lily` vs `lily foster`: given and family name swapped and one mistyped is a close
    surname and an exact given name, not two different names; the same levels either way round."""
    cols = prepare_columns(
        pd.DataFrame(
            [person("a|1", "fster", "lily"), person("b|1", "lily", "foster"), person("c|1", "anna", "foster")],
            columns=STD_COLUMNS,
        )
    )
    f, la = FEATURE_NAMES.index("first_name"), FEATURE_NAMES.index("last_name")
    ab = compare_pairs(cols, np.array([0]), np.array([1]))[0]
    ba = compare_pairs(cols, np.array([1]), np.array([0]))[0]
    assert (ab == ba).all()
    assert {FEATURES["first_name"][ab[f]], FEATURES["last_name"][ab[la]]} == {"close", "exact"}
    # a different given name with the same surname stays a straight comparison
    bc = compare_pairs(cols, np.array([1]), np.array([2]))[0]
    assert FEATURES["first_name"][bc[f]] == "different" and FEATURES["last_name"][bc[la]] == "exact"


def test_look_alikes_counted_by_the_cells_own_evidence():
    """A cell whose expected matches were inflated (EM took twins for matches): 100 twins with
    different e-mails and 40 duplicates sharing theirs. Held at 200 expected matches, the twins
    vanish; the evidence outside the cell still counts them."""
    from crmclean.link.family import _look_alikes, _look_alikes_free

    w = np.array([-2.0] * 100 + [9.5] * 40)
    held, free = _look_alikes(w, 200.0, 50), _look_alikes_free(w, 50)
    assert held < 55 and 80 <= free <= 100
    assert _look_alikes_free(np.zeros(10), 50) == 0.0  # no evidence: nothing to say


def test_a_shared_company_places_a_look_alike_like_a_shared_address():
    """Colleagues of one surname at one company fall in the same cell as relatives at one
    address; one name at one company without birth dates is a duplicate's pattern, no cell."""
    from crmclean.link.compare import FEATURE_NAMES, level_code
    from crmclean.link.family import cells_of

    def pair(**levels):
        row = np.zeros(len(FEATURE_NAMES), dtype=np.int8)
        for feature, label in levels.items():
            row[FEATURE_NAMES.index(feature)] = level_code(feature, label)
        return row

    levels = np.array(
        [
            pair(first_name="different", last_name="exact", company="exact"),
            pair(first_name="different", last_name="exact", address="exact", company="different"),
            pair(first_name="exact", last_name="exact", company="exact"),
            pair(first_name="different", last_name="exact", company="similar"),
            pair(first_name="different", last_name="exact", company="different"),
        ]
    )
    assert cells_of(levels).tolist() == ["different/null/same", "different/null/same", "", "different/null/fuzzy", ""]


def _levels_rows(n: int, **levels) -> np.ndarray:
    from crmclean.link.compare import FEATURE_NAMES, level_code

    row = np.zeros(len(FEATURE_NAMES), dtype=np.int8)
    for feature, label in levels.items():
        row[FEATURE_NAMES.index(feature)] = level_code(feature, label)
    return np.tile(row, (n, 1))


def test_look_alikes_are_counted_against_the_duplicates_of_the_same_place_not_the_prior():
    """A prior that EM inflated (relatives taken for matches) expects more matches in the twins
    cell than it has pairs; the duplicates that agree on given name and birth date at the same
    place say how many of the cell's pairs can be duplicates, and the rest are look-alikes."""
    from crmclean.link.compare import FEATURES
    from crmclean.link.family import fit_family

    def flat(feature, first=0.85):
        k = len(FEATURES[feature]) - 1
        return np.array([first] + [(1 - first) / (k - 1)] * (k - 1))

    m = {f: flat(f) for f in FEATURES}
    u = {f: flat(f, 0.001) for f in FEATURES}
    levels = np.vstack(
        [
            _levels_rows(200, first_name="exact", last_name="exact", birth_date="exact", address="same_postal"),
            _levels_rows(60, first_name="different", last_name="exact", birth_date="exact", address="same_postal"),
        ]
    )
    null = {f: 0.0 for f in FEATURES}
    cells = fit_family(levels, m, u, null, null, prior=0.3, possible_pairs=1_000_000)
    twins = cells["different/exact/postal"]
    # prior × pairs × m expects 300,000 × 0.0375 × 0.85 × 0.85 × 0.0375 ≈ 305 matches: no look-alike
    assert twins["expected_matches"] < 15 and twins["look_alikes"] > 45
    assert twins["found"] and twins["adjustment"] < 0


def test_a_few_look_alikes_shown_by_their_evidence_lower_the_cell_without_switching_guards():
    """Twins with similar given names: 25 duplicates in the cell share their e-mail, 5 pairs
    have both e-mail and phone different. Five are too few for the count alone (a Poisson
    allowance needs ~10), but their evidence shows them: the cell's weight is lowered, and the
    cell is not reported as a population of look-alikes (no guard switched on). With every
    pair sharing its e-mail nothing is lowered."""
    from crmclean.link.compare import FEATURES
    from crmclean.link.family import fit_family

    def flat(feature, first=0.85):
        k = len(FEATURES[feature]) - 1
        return np.array([first] + [(1 - first) / (k - 1)] * (k - 1))

    m = {f: flat(f) for f in FEATURES}
    m["first_name"] = np.array([0.7, 0.05, 0.05, 0.175, 0.025])  # exact, close, initial, similar, different
    u = {f: flat(f, 0.001) for f in FEATURES}
    null = {f: 0.0 for f in FEATURES}
    same = dict(last_name="exact", birth_date="exact", address="exact")
    dupes = _levels_rows(100, first_name="exact", email="exact", **same)

    def cell(other):
        similar = np.vstack([_levels_rows(25, first_name="similar", email="exact", **same), other])
        return fit_family(np.vstack([dupes, similar]), m, u, null, null, prior=0.3, possible_pairs=1_000_000)[
            "similar/exact/same"
        ]

    twins = cell(_levels_rows(5, first_name="similar", email="different", phone="different", **same))
    assert 3 < twins["look_alikes"] < 7 and not twins["found"] and twins["adjustment"] < -5
    shared = cell(_levels_rows(5, first_name="similar", email="exact", **same))
    assert shared["adjustment"] == 0.0


def test_given_name_disagreement_from_other_surnames_keeps_the_typo_levels():
    """The other-surname pairs decide how often given names disagree; a typo level they never
    saw keeps its share from all pairs instead of m = 0."""
    from crmclean.link.training import _disagreement_from

    # exact, close, initial, similar, different
    m_all = np.array([0.80, 0.06, 0.04, 0.02, 0.08])
    m_other = np.array([0.95, 0.0, 0.0, 0.01, 0.04])
    got = _disagreement_from(m_all, m_other)
    assert got.sum() == pytest.approx(1.0)
    assert got[3:].tolist() == pytest.approx([0.01, 0.04])
    assert got[1] == pytest.approx(0.95 * 0.06 / 0.90) and got[1] > 0.05
