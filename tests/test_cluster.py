"""cluster_records: components over match edges and must-links, split by guards at the weakest
links. Scenarios are built by hand (standardized columns as crmclean.standardize produces them),
plus one run over the shared factory scenarios through the real standardize stage."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmclean.cluster import cluster_records, clustering_settings
from crmclean.errors import RulesError
from crmclean.settings import Rules

STD_COLUMNS = ("first_name_key", "last_name_key", "name_key", "name_suffix_std", "gender_std", "birth_date_std")


def person(
    key: str,
    first: str | None = None,
    last: str | None = "smith",
    dob: str | None = None,
    suffix: str | None = None,
    gender: str | None = None,
) -> dict:
    name_key = " ".join(sorted(t for t in (first, last) if t)) or None
    return {
        "record_key": key,
        "first_name_key": first,
        "last_name_key": last,
        "name_key": name_key,
        "name_suffix_std": suffix,
        "gender_std": gender,
        "birth_date_std": dob,
    }


def frame(*people: dict) -> pd.DataFrame:
    return pd.DataFrame(list(people), columns=("record_key",) + STD_COLUMNS).astype(object)


def edges(*triples, decision: str = "match") -> pd.DataFrame:
    """(left, right, weight) -> link pairs; probability grows with the weight."""
    rows = [
        {
            "record_key_l": a,
            "record_key_r": b,
            "match_weight": w,
            "match_probability": 1 - 2.0**-w,
            "decision": decision,
        }
        for a, b, w in triples
    ]
    return pd.DataFrame(rows, columns=["record_key_l", "record_key_r", "match_weight", "match_probability", "decision"])


def overrides(*rows) -> pd.DataFrame:
    return pd.DataFrame(
        [{"record_key_l": a, "record_key_r": b, "kind": k, "origin": "test"} for a, b, k in rows],
        columns=["record_key_l", "record_key_r", "kind", "origin"],
    )


def groups(result: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(g["record_key"]) for _, g in result.groupby("cluster")}


def reason(result: pd.DataFrame, key: str) -> str:
    return result.set_index("record_key").at[key, "cluster_reason"]


def rules_with(**clustering) -> Rules:
    return Rules(matching={"clustering": clustering})


# ------------------------------------------------------------------------------- basics


def test_singletons_get_ranked_labels_in_record_key_order():
    recs = frame(person("b|2"), person("a|1"), person("c|3"))
    out = cluster_records(recs, edges(), Rules(), None)
    assert list(out.columns) == ["record_key", "cluster", "cluster_reason"]
    assert out.set_index("record_key")["cluster"].to_dict() == {"a|1": 0, "b|2": 1, "c|3": 2}
    assert set(out["cluster_reason"]) == {"singleton"}


def test_match_edges_join_records_review_and_non_match_do_not():
    recs = frame(person("a|1", "ann"), person("a|2", "ann"), person("a|3", "ann"), person("a|4", "ann"))
    pairs = pd.concat(
        [
            edges(("a|1", "a|3", 12)),
            edges(("a|2", "a|3", 5), decision="review"),
            edges(("a|2", "a|4", 1), decision="non_match"),
        ]
    )
    out = cluster_records(recs, pairs, Rules(), None)
    assert groups(out) == {frozenset({"a|1", "a|3"}), frozenset({"a|2"}), frozenset({"a|4"})}
    assert reason(out, "a|1") == "matched" and reason(out, "a|2") == "singleton"
    # label = rank of the cluster's smallest key: {a|1,a|3}=0, {a|2}=1, {a|4}=2
    assert out.set_index("record_key")["cluster"].to_dict() == {"a|1": 0, "a|2": 1, "a|3": 0, "a|4": 2}


def test_pairs_naming_unknown_records_and_duplicate_pairs_are_harmless():
    recs = frame(person("a|1", "ann"), person("a|2", "ann"))
    pairs = edges(("a|1", "a|2", 9), ("a|2", "a|1", 11), ("a|1", "gone|7", 30))
    out = cluster_records(recs, pairs, Rules(), None)
    assert groups(out) == {frozenset({"a|1", "a|2"})}
    assert len(out) == 2


def test_empty_inputs():
    out = cluster_records(frame(), edges(), Rules(), None)
    assert out.empty and list(out.columns) == ["record_key", "cluster", "cluster_reason"]
    out = cluster_records(frame(person("a|1")), None, Rules(), None)
    assert out["cluster"].tolist() == [0]


# ------------------------------------------------------------------------------- guards


def test_household_chained_through_shared_landline_is_not_merged():
    """Mary's two records match; John matches Mary's DOB-less record only through the shared
    landline/address. Chaining would make John and Mary one customer."""
    recs = frame(
        person("web|mary", "mary", dob="1960-05-01", gender="F"),
        person("shop|m", "mary"),  # no birth date, no gender: conflicts with nobody directly
        person("web|john", "john", dob="1958-02-03", gender="M"),
    )
    pairs = edges(("web|mary", "shop|m", 20), ("shop|m", "web|john", 12))
    out = cluster_records(recs, pairs, Rules(), None)
    assert groups(out) == {frozenset({"web|mary", "shop|m"}), frozenset({"web|john"})}
    assert reason(out, "web|john") == "split:household_conflict"
    # the guard is what keeps them apart
    off = rules_with(guards={"household": False, "gender": False, "birth_date": False})
    assert len(groups(cluster_records(recs, pairs, off, None))) == 1


def test_household_split_even_when_the_false_edge_is_the_strongest():
    recs = frame(
        person("a|mary", "mary", dob="1960-05-01"),
        person("b|m", "mary"),
        person("c|john", "john", dob="1958-02-03"),
        person("d|john", "john"),
    )
    # the wrong link a|mary–c|john is the strongest of all
    pairs = edges(("a|mary", "c|john", 30), ("a|mary", "b|m", 20), ("c|john", "d|john", 18), ("b|m", "d|john", 9))
    out = cluster_records(recs, pairs, Rules(), None)
    # the direct conflict can never be joined; the rest attaches by strength
    assert not any({"a|mary", "c|john"} <= g for g in groups(out))
    assert groups(out) == {frozenset({"a|mary", "b|m"}), frozenset({"c|john", "d|john"})}


def test_twins_same_birth_date_different_first_names():
    recs = frame(
        person("cn|ming", "ming", "li", "1990-05-14", gender="M"),
        person("cn|liang", "liang", "li", "1990-05-14", gender="M"),
        person("web|ming", "ming", "li", "1990-05-14"),
    )
    pairs = edges(("cn|ming", "cn|liang", 15), ("cn|ming", "web|ming", 25), ("cn|liang", "web|ming", 14))
    out = cluster_records(recs, pairs, Rules(), None)
    assert groups(out) == {frozenset({"cn|ming", "web|ming"}), frozenset({"cn|liang"})}
    assert reason(out, "cn|liang") == "split:twin_conflict"
    assert len(groups(cluster_records(recs, pairs, rules_with(guards={"twins": False}), None))) == 1


def test_jr_and_sr_are_kept_apart_even_through_a_record_without_suffix():
    recs = frame(
        person("w|sr", "james", "walker", suffix="Sr"),
        person("w|jr", "james", "walker", suffix="Jr"),
        person("s|x", "james", "walker"),
    )
    pairs = edges(("w|jr", "s|x", 15), ("s|x", "w|sr", 10))
    out = cluster_records(recs, pairs, Rules(), None)
    assert groups(out) == {frozenset({"w|jr", "s|x"}), frozenset({"w|sr"})}
    assert set(out["cluster_reason"]) == {"split:suffix_conflict"}


def test_suffix_spelling_variants_are_the_same_suffix():
    recs = frame(person("a|1", "james", suffix="Jr."), person("a|2", "james", suffix="JR"))
    out = cluster_records(recs, edges(("a|1", "a|2", 9)), Rules(), None)
    assert groups(out) == {frozenset({"a|1", "a|2"})} and reason(out, "a|1") == "matched"


def test_chain_is_split_at_its_weakest_link():
    """A–B–C, A and C same name but born 30 years apart: the weaker edge A–B goes."""
    recs = frame(person("a", "john", dob="1950-03-01"), person("b", "john"), person("c", "john", dob="1980-07-15"))
    out = cluster_records(recs, edges(("a", "b", 5), ("b", "c", 9)), Rules(), None)
    assert groups(out) == {frozenset({"a"}), frozenset({"b", "c"})}
    assert reason(out, "a") == "split:birth_date_conflict"
    out = cluster_records(recs, edges(("a", "b", 9), ("b", "c", 5)), Rules(), None)
    assert groups(out) == {frozenset({"a", "b"}), frozenset({"c"})}


def test_long_chain_keeps_every_strong_link():
    """a1–a2–a3 (strong) –weak– b1–b2 (strong); a1 and b2 conflict: only the weak edge is cut."""
    recs = frame(
        person("a1", "john", dob="1950-01-01"),
        person("a2", "john"),
        person("a3", "john"),
        person("b1", "john"),
        person("b2", "john", dob="1990-07-15"),
    )
    pairs = edges(("a1", "a2", 20), ("a2", "a3", 19), ("a3", "b1", 6), ("b1", "b2", 18))
    out = cluster_records(recs, pairs, Rules(), None)
    assert groups(out) == {frozenset({"a1", "a2", "a3"}), frozenset({"b1", "b2"})}


@pytest.mark.parametrize("other", ["1995-03-12", "1985-12-03", "1958-03-12", "1985-03-21"])
def test_birth_date_typos_are_not_conflicts(other):
    """One wrong digit (1995), day/month swap, transposed digits (1958, 21): same person."""
    recs = frame(person("a", "john", dob="1985-03-12"), person("b", "john", dob=other))
    out = cluster_records(recs, edges(("a", "b", 9)), Rules(), None)
    assert len(groups(out)) == 1


def test_birth_dates_within_the_allowed_gap_are_not_conflicts():
    recs = frame(
        person("a", "john", dob="1985-03-12"),
        person("b", "john", dob="1986-07-30"),
        person("c", "john", dob="1979-07-30"),
    )
    out = cluster_records(recs, edges(("a", "b", 9), ("b", "c", 8)), Rules(), None)
    assert groups(out) == {frozenset({"a", "b"}), frozenset({"c"})}
    wide = rules_with(guards={"max_birth_gap_years": 10})
    assert len(groups(cluster_records(recs, edges(("a", "b", 9), ("b", "c", 8)), wide, None))) == 1


def _census_pairs(n: int, gap: str) -> tuple[list[dict], list[tuple]]:
    """n people matched directly, each once with a birth date from a register and once from a
    census age: the same day ``gap`` later (e.g. 2 years and 3 days)."""
    years, days = (int(x) for x in gap.split("+"))
    people, links = [], []
    for i in range(n):
        last = f"ashton{i}"
        people += [person(f"r{i}", "john", last, dob=f"18{50 + i}-03-1{i % 9}")]
        people += [person(f"c{i}", "john", last, dob=f"18{50 + i + years}-03-{10 + i % 9 + days}")]
        links.append((f"r{i}", f"c{i}", 9))
    return people, links


def test_the_birth_gap_widens_to_the_spread_of_the_matched_pairs():
    """Birth dates derived from census ages put a duplicate 2 years and a few days from its
    register date: when the model matches many pairs that far apart (and few beyond), the guard's
    gap is learnt from them instead of splitting every one; a pair 5 years apart stays split, and
    so do the census pairs when the gap is not learnt."""
    people, links = _census_pairs(8, "2+3")
    far = [person("f1", "mary", "holt", dob="1850-01-01"), person("f2", "mary", "holt", dob="1855-01-02")]
    recs = frame(*people, *far)
    pairs = edges(*links, ("f1", "f2", 9))
    out = groups(cluster_records(recs, pairs, Rules(), None))
    assert all(frozenset({f"r{i}", f"c{i}"}) in out for i in range(8))
    assert frozenset({"f1"}) in out and frozenset({"f2"}) in out
    fixed = groups(cluster_records(recs, pairs, rules_with(guards={"learn_birth_gap": False}), None))
    assert all(frozenset({f"r{i}"}) in fixed for i in range(8))


def test_a_few_matched_pairs_far_apart_do_not_widen_the_birth_gap():
    """Two pairs 2 years and some days apart are no spread of the data: the gap stays 2 years."""
    people, links = _census_pairs(2, "2+3")
    out = groups(cluster_records(frame(*people), edges(*links), Rules(), None))
    assert frozenset({"r0"}) in out and frozenset({"c1"}) in out


@pytest.mark.parametrize(
    "a, b",
    [
        (("robert", "smith"), ("robert", "smith")),  # nickname already canonical (Bob -> robert)
        (("j", "smith"), ("john", "smith")),  # initial
        (("cat", "lee"), ("catherine", "lee")),  # short form
        (("jon", "smith"), ("john", "smith")),  # typo (Jaro-Winkler >= 0.85)
        (("mary ann", "smith"), ("mary", "smith")),  # middle name
        (("xue dong", "xie"), ("xuedong", "xie")),  # pinyin spacing
        (("shan", "lei"), ("lei", "shan")),  # family/given order swapped in a pinyin record
        (("baker", "teddy"), ("theodore", "baker")),  # swapped, the given name a nickname (Teddy)
        (("hayes", "csarlie"), ("charles", "hayes")),  # swapped, a typo of a nickname (Charlie)
    ],
)
def test_same_first_name_in_other_forms_is_not_a_conflict(a, b):
    recs = frame(
        person("x", a[0], a[1], dob="1980-01-01", gender="M"), person("y", b[0], b[1], dob="1981-01-01", gender="F")
    )
    out = cluster_records(recs, edges(("x", "y", 9)), Rules(), None)
    assert len(groups(out)) == 1


def test_gender_with_different_first_name_conflicts_without_birth_dates():
    recs = frame(person("a", "chris", gender="M"), person("b", "anna", gender="F"), person("c", "anna", gender="M"))
    out = cluster_records(recs, edges(("a", "b", 9), ("b", "c", 10)), Rules(), None)
    # a–b conflict (gender + first name); b–c same first name: gender alone is no conflict
    assert groups(out) == {frozenset({"a"}), frozenset({"b", "c"})}
    assert reason(out, "a") == "split:gender_conflict"


def test_different_first_names_alone_merge_unless_configured():
    recs = frame(person("a", "chris"), person("b", "anna"))
    assert len(groups(cluster_records(recs, edges(("a", "b", 9)), Rules(), None))) == 1
    strict = rules_with(guards={"first_name_alone": True})
    out = cluster_records(recs, edges(("a", "b", 9)), strict, None)
    assert len(groups(out)) == 2 and reason(out, "a") == "split:first_name_conflict"


def test_keys_only_input_clusters_without_guards():
    out = cluster_records(["k|2", "k|1", "k|3"], edges(("k|1", "k|2", 9)), Rules(), None)
    assert groups(out) == {frozenset({"k|1", "k|2"}), frozenset({"k|3"})}


# ------------------------------------------------------------------------------- overrides


def test_must_link_joins_records_without_an_edge_and_beats_guards():
    recs = frame(
        person("a", "chris", dob="1980-01-01", gender="M"),
        person("b", "kris", dob="1990-01-01", gender="F"),
        person("c", "zoe"),
    )
    out = cluster_records(recs, edges(), Rules(), overrides(("a", "b", "must_link")))
    assert groups(out) == {frozenset({"a", "b"}), frozenset({"c"})}
    assert reason(out, "a") == "must_link"


def test_cannot_link_removes_a_direct_match():
    recs = frame(person("a", "ann"), person("b", "ann"))
    out = cluster_records(recs, edges(("a", "b", 25)), Rules(), overrides(("a", "b", "cannot_link")))
    assert groups(out) == {frozenset({"a"}), frozenset({"b"})}
    assert reason(out, "a") == "split:cannot_link"


def test_cannot_link_through_a_chain_cuts_the_weakest_link():
    recs = frame(person("a", "ann"), person("b", "ann"), person("c", "ann"))
    out = cluster_records(recs, edges(("a", "b", 25), ("b", "c", 8)), Rules(), overrides(("c", "a", "cannot_link")))
    assert groups(out) == {frozenset({"a", "b"}), frozenset({"c"})}


def test_cannot_link_wins_over_must_link():
    recs = frame(person("a", "ann"), person("b", "ann"), person("c", "ann"))
    ov = overrides(("a", "b", "must_link"), ("b", "c", "must_link"), ("a", "c", "cannot_link"))
    out = cluster_records(recs, edges(), Rules(), ov)
    assert not any({"a", "c"} <= g for g in groups(out))


def test_unmerge_takes_a_record_out_of_its_cluster():
    recs = frame(person("a", "ann"), person("b", "ann"), person("c", "ann"), person("d", "ann"))
    pairs = edges(("a", "b", 20), ("b", "c", 20), ("a", "c", 15), ("c", "d", 9))
    ov = pd.DataFrame([{"record_key_l": "b", "record_key_r": None, "kind": "unmerge", "origin": "t"}])
    out = cluster_records(recs, pairs, Rules(), ov)
    assert groups(out) == {frozenset({"a", "c", "d"}), frozenset({"b"})}
    assert reason(out, "b") == "split:unmerge" and reason(out, "a") == "matched"
    # a must-link still holds an unmerged record
    ov2 = pd.concat([ov, overrides(("b", "d", "must_link"))])
    assert groups(cluster_records(recs, pairs, Rules(), ov2)) == {frozenset({"a", "b", "c", "d"})}


# ------------------------------------------------------------------------------- size guard


def test_oversized_component_keeps_only_strong_edges():
    keys = [f"r|{i:03d}" for i in range(60)]
    recs = frame(*(person(k, "ann") for k in keys))
    # a chain of 60: strong edges everywhere except two weak links
    triples = [(keys[i], keys[i + 1], 30 if i not in (19, 39) else 10) for i in range(59)]
    out = cluster_records(recs, edges(*triples), Rules(), None)
    assert sorted(len(g) for g in groups(out)) == [20, 20, 20]
    assert set(out["cluster_reason"]) == {"split:oversized"}
    small = cluster_records(recs.iloc[:30], edges(*triples[:29]), Rules(), None)
    assert len(groups(small)) == 1 and set(small["cluster_reason"]) == {"matched"}


def test_components_past_the_check_limit_are_checked_along_their_edges_only():
    recs = frame(person("a", "john", dob="1950-03-01"), person("b", "john"), person("c", "john", dob="1980-07-15"))
    chain = edges(("a", "b", 5), ("b", "c", 9))
    for limited in (rules_with(guard_max_cluster_size=2), rules_with(guard_max_pairs=2)):
        # the a–c conflict is two hops away: not seen …
        assert len(groups(cluster_records(recs, chain, limited, None))) == 1
        # … but a conflicting edge itself always is
        direct = edges(("a", "b", 5), ("b", "c", 9), ("a", "c", 7))
        assert not any({"a", "c"} <= g for g in groups(cluster_records(recs, direct, limited, None)))


# ------------------------------------------------------------------------------- determinism


def test_shuffled_input_gives_identical_output():
    recs = frame(
        person("a|mary", "mary", dob="1960-05-01"),
        person("b|m", "mary"),
        person("c|john", "john", dob="1958-02-03"),
        person("d|john", "john"),
        person("e|x", "xi"),
    )
    pairs = edges(("a|mary", "c|john", 30), ("a|mary", "b|m", 20), ("c|john", "d|john", 18), ("b|m", "d|john", 9))
    expected = cluster_records(recs, pairs, Rules(), None)
    rng = random.Random(7)
    for _ in range(5):
        r = recs.sample(frac=1, random_state=rng.randrange(1000))
        p = pairs.sample(frac=1, random_state=rng.randrange(1000))
        swap = rng.random() < 0.5
        if swap:
            p = p.rename(columns={"record_key_l": "record_key_r", "record_key_r": "record_key_l"})
        pd.testing.assert_frame_equal(cluster_records(r, p, Rules(), None), expected)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 25).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(1, 30)), max_size=3 * n),
            st.lists(st.sampled_from(["1950-01-01", "1980-06-12", None]), min_size=n, max_size=n),
            st.lists(st.sampled_from(["ann", "bob", None]), min_size=n, max_size=n),
            st.randoms(use_true_random=False),
        )
    )
)
def test_random_graphs_partition_and_reproduce(case):
    n, triples, dobs, firsts, rnd = case
    keys = [f"k|{i:02d}" for i in range(n)]
    recs = frame(*(person(k, f, dob=d) for k, f, d in zip(keys, firsts, dobs)))
    pairs = edges(*((keys[a], keys[b], w) for a, b, w in triples if a != b))
    out = cluster_records(recs, pairs, Rules(), None)
    # a partition of exactly the input records, labels 0..k-1 ordered by smallest key
    assert sorted(out["record_key"]) == keys
    firsts_of = out.sort_values("record_key").drop_duplicates("cluster")["cluster"].tolist()
    assert firsts_of == list(range(out["cluster"].nunique()))
    # every cluster is held together by match edges only (never joins unlinked records)
    comp = {k: k for k in keys}

    def find(x):
        while comp[x] != x:
            x = comp[x]
        return x

    for a, b, _ in ((keys[a], keys[b], w) for a, b, w in triples if a != b):
        comp[find(a)] = find(b)
    for _, g in out.groupby("cluster"):
        assert len({find(k) for k in g["record_key"]}) == 1
    # records with the same first name that are born 30 years apart never share a cluster
    dob = dict(zip(keys, dobs))
    for _, g in out.groupby("cluster"):
        born = {dob[k] for k in g["record_key"] if dob[k]}
        assert not {"1950-01-01", "1980-06-12"} <= born
    # same result whatever the row order
    shuffled = cluster_records(
        recs.sample(frac=1, random_state=rnd.randrange(99)),
        pairs.sample(frac=1, random_state=rnd.randrange(99)),
        Rules(),
        None,
    )
    pd.testing.assert_frame_equal(shuffled, out)


# ------------------------------------------------------------------------------- rules


def test_clustering_settings_defaults_and_errors():
    assert clustering_settings(Rules())["guards"]["max_birth_gap_years"] == 2
    assert clustering_settings(rules_with(max_cluster_size=10))["max_cluster_size"] == 10
    with pytest.raises(RulesError, match="max_cluster_size must be a number"):
        clustering_settings(rules_with(max_cluster_size="big"))
    with pytest.raises(RulesError, match="not a known guard"):
        clustering_settings(rules_with(guards={"shoe_size": True}))
    with pytest.raises(RulesError, match="not a known setting"):
        clustering_settings(rules_with(max_size=3))


# ------------------------------------------------------------------------------- real stage output


def test_factory_scenarios_through_standardize_recover_the_truth_under_worst_case_links():
    """Every record pair inside a hard-negative group (household, twins, Jr/Sr, common name)
    is handed to the clusterer as a `match` — true pairs strong, false pairs weaker — and the
    guards must still return exactly the true customers."""
    import factories
    from crmclean.settings import load_rules
    from crmclean.standardize import standardize

    raw, truth = factories.all_scenarios()
    std, _ = standardize(factories.as_records_frame(raw), load_rules(), workers=1)
    truth = truth.assign(record_key=truth["source"] + "|" + truth["source_record_id"])
    hard = truth[truth["group_id"] != ""]
    rows = []
    for _, g in hard.groupby("group_id"):
        recs = g.to_dict("records")
        for i, a in enumerate(recs):
            for b in recs[i + 1 :]:
                same = a["entity_id"] == b["entity_id"]
                rows.append((a["record_key"], b["record_key"], 20 if same else 12))
    out = cluster_records(std, edges(*rows), load_rules(), None)
    got = groups(out[out["record_key"].isin(hard["record_key"])])
    want = {frozenset(g["record_key"]) for _, g in hard.groupby("entity_id")}
    assert got == want


@pytest.mark.parametrize("a, b", [("daniel", "danielle"), ("paul", "paula"), ("louis", "louise"), ("eric", "erica")])
def test_other_gender_form_of_a_name_with_other_gender_conflicts(a, b):
    """Daniel/Danielle pass as the same name (Jaro-Winkler 0.95) and Paul/Paula as a short form;
    with the genders differing too they are two people (twins chained through a shared
    mobile), not one."""
    recs = frame(
        person("x", a, dob="1990-06-01", gender="M"),
        person("y", b, dob="1990-06-01", gender="F"),
        person("z", a, dob="1990-06-01"),
    )
    out = cluster_records(recs, edges(("x", "z", 12), ("y", "z", 9)), Rules(), None)
    assert groups(out) == {frozenset({"x", "z"}), frozenset({"y"})}
    assert reason(out, "y") == "split:gender_conflict"
    # the same names with one gender unknown, or the same gender: no evidence of two people
    same = frame(person("x", a, dob="1990-06-01", gender="M"), person("y", b, dob="1990-06-01"))
    assert len(groups(cluster_records(same, edges(("x", "y", 9)), Rules(), None))) == 1


def test_swapped_names_with_a_typo_are_not_twins():
    """`fster lily` and `lily foster` born the same day are one person whose names were swapped
    and mistyped, as link compares them: the twins guard does not split them."""
    recs = frame(
        person("a|1", "fster", "lily", "1965-07-16"),
        person("b|1", "lily", "foster", "1965-07-16"),
        person("c|1", "lily", "foster", "1965-07-16"),
    )
    pairs = edges(("a|1", "b|1", 15), ("b|1", "c|1", 25), ("a|1", "c|1", 15))
    assert len(groups(cluster_records(recs, pairs, Rules(), None))) == 1


@pytest.mark.parametrize("typo", ["mxa", "maxx", "mac"])
def test_a_nickname_with_a_typo_is_not_a_twin(typo):
    """`max` standardizes to `maximilian`, a mistyped `mxa` does not: the twins guard still reads
    it as Maximilian (one typo from his nickname), as a twin's name would not be."""
    recs = frame(person("a", "maximilian", "shaw", "1990-02-01"), person("b", typo, "shaw", "1990-02-01"))
    assert len(groups(cluster_records(recs, edges(("a", "b", 12)), Rules(), None))) == 1


@pytest.mark.parametrize("other", ["maxine", "mia", "oliver"])
def test_twins_whose_name_only_starts_like_a_nickname_stay_apart(other):
    recs = frame(person("a", "maximilian", "shaw", "1990-02-01"), person("b", other, "shaw", "1990-02-01"))
    out = cluster_records(recs, edges(("a", "b", 12)), Rules(), None)
    assert len(groups(out)) == 2 and reason(out, "b") == "split:twin_conflict"


@pytest.mark.parametrize(("other", "together"), [("1821-08-10", True), ("1821-08-09", True), ("1821-08-11", False)])
def test_the_birth_date_gap_is_counted_in_calendar_years(other, together):
    """Two years apart is two calendar years, however many leap days lie between (1820 is one)."""
    recs = frame(person("a", "ezra", "wright", "1819-08-10"), person("b", "ezra", "wright", other))
    out = cluster_records(recs, edges(("a", "b", 12)), Rules(), None)
    assert (len(groups(out)) == 1) is together


def _written(key: str, first_key: str, written: str, dob: str = "1957-10-11") -> dict:
    return {**person(key, first_key, "gonzales", dob), "first_name_std": written}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("samuel", "Sam"), ("samantha", "Samantha")),  # Sam: a nickname of Samuel and of Samantha
        (("samuel", "SAM"), ("samantha", "Sam")),  # one written name, keyed apart by gender
        (("edward", "Ted"), ("theodore", "Theodore")),  # Ted: Edward's nickname, Teddy's start
    ],
)
def test_a_nickname_of_two_formal_names_is_not_a_twin(a, b):
    """Standardize keys a nickname by one formal name (`Sam` → samuel); as written it is also the
    other record's name, so the twins guard does not split the two records."""
    recs = pd.DataFrame([_written("a", *a), _written("b", *b)])
    assert len(groups(cluster_records(recs, edges(("a", "b", 12)), Rules(), None))) == 1


def test_twins_written_with_their_formal_names_stay_apart():
    recs = pd.DataFrame([_written("a", "samuel", "Samuel"), _written("b", "samantha", "Samantha")])
    out = cluster_records(recs, edges(("a", "b", 12)), Rules(), None)
    assert len(groups(out)) == 2 and reason(out, "b") == "split:twin_conflict"
