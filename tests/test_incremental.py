"""combine_with_prior and merge_overrides: what counts as changed, what is retired, which prior
edges survive, and how rules/overrides.yaml plus review decisions become one frame."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.errors import RulesError
from pipeline.incremental import combine_with_prior, content_hash, merge_overrides
from pipeline.settings import DEFAULT_RULES_DIR, Rules, load_rules
from pipeline.store import PriorState
from test_store import make_std


def prior_from(std: pd.DataFrame, edges: list[tuple[str, str]] = ()) -> PriorState:
    p = PriorState.empty()
    p.records = std.assign(content_hash=content_hash(std), first_seen_run="R0", last_seen_run="R0", status="active")
    p.edges = pd.DataFrame([(l, r, 10.0, 0.99, "match") for l, r in edges],
                           columns=["record_key_l", "record_key_r", "match_weight", "match_probability", "decision"])
    return p


def test_content_hash_reacts_to_raw_canonical_fields_only():
    a = make_std(3)
    h = content_hash(a)
    assert h.str.len().eq(40).all() and h.is_unique
    b = a.copy()
    b["email_std"] = "changed-std-only"
    b["extra"] = "{}"
    assert content_hash(b).equals(h)  # std columns and unmapped extras do not make a record "changed"
    b.loc[1, "email"] = "other@example.com"
    assert (content_hash(b) != h).tolist() == [False, True, False]
    c = a.copy()
    c.loc[0, "company"] = ""  # empty and missing hash alike
    assert content_hash(c).equals(h)
    # moving a value between fields is a change (field order is part of the hash)
    d = a.copy()
    d.loc[0, ["full_name", "company"]] = [None, a.loc[0, "full_name"]]
    assert content_hash(d)[0] != h[0]


def test_new_changed_unchanged_and_carried_records():
    prior_std = pd.concat([make_std(4), make_std(2, source="crm_b")], ignore_index=True)
    prior = prior_from(prior_std, edges=[("crm_a|1000", "crm_a|1001"), ("crm_a|1002", "crm_b|1000"),
                                         ("crm_a|1003", "crm_b|1001")])
    run = make_std(5)  # crm_a again (+1 new); crm_b not ingested this run
    run.loc[run["record_key"] == "crm_a|1001", "mobile"] = "13900000000"
    combined = combine_with_prior(run, prior, Rules())
    assert combined.changed_keys == {"crm_a|1001", "crm_a|1004"} and combined.new_keys == {"crm_a|1004"}
    assert combined.retired.empty
    assert sorted(combined.records["record_key"]) == sorted(set(prior_std["record_key"]) | {"crm_a|1004"})
    assert combined.records["record_key"].is_unique
    rec = combined.records.set_index("record_key")
    assert rec.loc["crm_a|1001", "mobile"] == "13900000000"  # this run's version replaces the prior one
    assert rec.loc["crm_b|1000", "email"] == "P0@Example.com"  # crm_b carried over
    kept = set(zip(combined.kept_edges["record_key_l"], combined.kept_edges["record_key_r"]))
    assert kept == {("crm_a|1002", "crm_b|1000"), ("crm_a|1003", "crm_b|1001")}


def test_full_snapshot_source_retires_missing_records_others_do_not():
    prior_std = pd.concat([make_std(3), make_std(3, source="crm_b")], ignore_index=True)
    prior = prior_from(prior_std, edges=[("crm_a|1002", "crm_b|1002"), ("crm_a|1000", "crm_b|1000")])
    run = pd.concat([make_std(2), make_std(1, source="crm_b")], ignore_index=True)  # both drop records
    rules = Rules(sources={"sources": {"crm_a": {"files": ["a*.csv"], "full_snapshot": True},
                                       "crm_b": {"files": ["b*.csv"]}}})
    combined = combine_with_prior(run, prior, rules)
    assert combined.retired["record_key"].tolist() == ["crm_a|1002"]
    assert "crm_a|1002" not in set(combined.records["record_key"])
    assert {"crm_b|1001", "crm_b|1002"} <= set(combined.records["record_key"])  # crm_b is a delta feed
    assert combined.kept_edges[["record_key_l", "record_key_r"]].values.tolist() == [["crm_a|1000", "crm_b|1000"]]
    # a full-snapshot source that was not ingested this run retires nothing
    only_b = combine_with_prior(make_std(3, source="crm_b"), prior, rules)
    assert only_b.retired.empty and len(only_b.records) == 6


def test_full_snapshot_default_applies_to_sources_not_listed():
    prior = prior_from(make_std(3, source="crm_x"))
    rules = Rules(sources={"defaults": {"full_snapshot": True}, "sources": {"crm_b": {"full_snapshot": False}}})
    assert combine_with_prior(make_std(1, source="crm_x"), prior, rules).retired["record_key"].tolist() == [
        "crm_x|1001", "crm_x|1002"]


def test_first_run_everything_is_new():
    run = make_std(3)
    combined = combine_with_prior(run, PriorState.empty(), Rules())
    assert combined.changed_keys == set(run["record_key"]) and combined.kept_edges.empty
    assert combined.records["content_hash"].notna().all()


def test_merge_overrides_from_yaml_and_review_decisions():
    rules = {"must_link": [["crm_b:9", "crm_a:123", "crm_c:@line:4"]], "cannot_link": [["crm_a:1", "crm_a:2"]],
             "unmerge": ["crm_a:777"]}
    reviews = pd.DataFrame([
        {"record_key_l": "crm_a|5", "record_key_r": "crm_a|4", "decision": "match", "decided_at": "2026-01-01",
         "origin": "review_file"},
        {"record_key_l": "crm_a|4", "record_key_r": "crm_a|5", "decision": "no_match", "decided_at": "2026-02-01",
         "origin": "review_file"},  # later decision on the same pair wins
        {"record_key_l": "crm_a|8", "record_key_r": "crm_a|9", "decision": "match", "decided_at": "2026-01-01",
         "origin": None},
    ])
    ov = merge_overrides(rules, reviews)
    assert list(ov.columns) == ["record_key_l", "record_key_r", "kind", "origin"]
    got = {(r.record_key_l, r.record_key_r, r.kind) for r in ov.itertuples()}
    assert got == {
        ("crm_a|123", "crm_b|9", "must_link"), ("crm_b|9", "crm_c|@line:4", "must_link"),
        ("crm_a|1", "crm_a|2", "cannot_link"), ("crm_a|777", None, "unmerge"),
        ("crm_a|4", "crm_a|5", "cannot_link"), ("crm_a|8", "crm_a|9", "must_link"),
    }
    assert set(ov["origin"]) == {"rules/overrides.yaml", "review:review_file", "review:review"}


@pytest.mark.parametrize("bad", [{"must_link": [["crm_a:1"]]}, {"must_link": [["crm_a_1", "crm_b:2"]]},
                                 {"cannot_link": ["crm_a:1"]}, {"unmerge": [["crm_a:1"]]}])
def test_malformed_overrides_name_the_file_and_the_entry(bad):
    with pytest.raises(RulesError, match="overrides.yaml"):
        merge_overrides(bad, PriorState.empty().overrides)


def test_shipped_overrides_file_is_valid_and_empty():
    rules = load_rules(DEFAULT_RULES_DIR)
    assert merge_overrides(rules.overrides, PriorState.empty().overrides).empty
