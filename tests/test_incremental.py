"""combine_with_prior and merge_overrides: what counts as changed, what is retired, which prior
edges survive, and how rules/overrides.yaml plus review decisions become one frame; the affected
region an incremental run reclusters; link restricted to the records near new ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crmclean.errors import RulesError
from crmclean.incremental import Combined, combine_with_prior, content_hash, merge_overrides
from crmclean.settings import DEFAULT_RULES_DIR, Rules, load_rules
from crmclean.store import PriorState
from test_store import make_std


def prior_from(std: pd.DataFrame, edges: list[tuple[str, str]] = ()) -> PriorState:
    p = PriorState.empty()
    p.records = std.assign(content_hash=content_hash(std), first_seen_run="R0", last_seen_run="R0", status="active")
    p.edges = pd.DataFrame(
        [(a, b, 10.0, 0.99, "match") for a, b in edges],
        columns=["record_key_l", "record_key_r", "match_weight", "match_probability", "decision"],
    )
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
    prior = prior_from(
        prior_std, edges=[("crm_a|1000", "crm_a|1001"), ("crm_a|1002", "crm_b|1000"), ("crm_a|1003", "crm_b|1001")]
    )
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
    rules = Rules(
        sources={"sources": {"crm_a": {"files": ["a*.csv"], "full_snapshot": True}, "crm_b": {"files": ["b*.csv"]}}}
    )
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
        "crm_x|1001",
        "crm_x|1002",
    ]


def test_first_run_everything_is_new():
    run = make_std(3)
    combined = combine_with_prior(run, PriorState.empty(), Rules())
    assert combined.changed_keys == set(run["record_key"]) and combined.kept_edges.empty
    assert combined.records["content_hash"].notna().all()
    # one set of the keys, not two equal ones (≈ 16 MB each at 200k customers, kept all run)
    assert combined.new_keys is combined.changed_keys


def test_fresh_keys_count_as_changed_without_a_content_change():
    """A record standardized again this run (new rules, say) is re-linked though its raw content
    is what the prior run saw; a fresh key this run does not hold changes nothing."""
    prior = prior_from(make_std(3))
    run = make_std(3)
    plain = combine_with_prior(run, prior, Rules())
    assert plain.changed_keys == set() and plain.new_keys == set()
    fresh = {run["record_key"].iloc[1], "crm_a|not-in-this-run"}
    combined = combine_with_prior(run, prior, Rules(), fresh_keys=frozenset(fresh))
    assert combined.changed_keys == {run["record_key"].iloc[1]} and combined.new_keys == set()


def test_merge_overrides_from_yaml_and_review_decisions():
    rules = {
        "must_link": [["crm_b:9", "crm_a:123", "crm_c:@line:4"]],
        "cannot_link": [["crm_a:1", "crm_a:2"]],
        "unmerge": ["crm_a:777"],
    }
    reviews = pd.DataFrame(
        [
            {
                "record_key_l": "crm_a|5",
                "record_key_r": "crm_a|4",
                "decision": "match",
                "decided_at": "2026-01-01",
                "origin": "review_file",
            },
            {
                "record_key_l": "crm_a|4",
                "record_key_r": "crm_a|5",
                "decision": "no_match",
                "decided_at": "2026-02-01",
                "origin": "review_file",
            },  # later decision on the same pair wins
            {
                "record_key_l": "crm_a|8",
                "record_key_r": "crm_a|9",
                "decision": "match",
                "decided_at": "2026-01-01",
                "origin": None,
            },
        ]
    )
    ov = merge_overrides(rules, reviews)
    assert list(ov.columns) == ["record_key_l", "record_key_r", "kind", "origin"]
    got = {(r.record_key_l, r.record_key_r, r.kind) for r in ov.itertuples()}
    assert got == {
        ("crm_a|123", "crm_b|9", "must_link"),
        ("crm_b|9", "crm_c|@line:4", "must_link"),
        ("crm_a|1", "crm_a|2", "cannot_link"),
        ("crm_a|777", None, "unmerge"),
        ("crm_a|4", "crm_a|5", "cannot_link"),
        ("crm_a|8", "crm_a|9", "must_link"),
    }
    assert set(ov["origin"]) == {"rules/overrides.yaml", "review:review_file", "review:review"}


@pytest.mark.parametrize(
    "bad",
    [
        {"must_link": [["crm_a:1"]]},
        {"must_link": [["crm_a_1", "crm_b:2"]]},
        {"cannot_link": ["crm_a:1"]},
        {"unmerge": [["crm_a:1"]]},
    ],
)
def test_malformed_overrides_name_the_file_and_the_entry(bad):
    with pytest.raises(RulesError, match="overrides.yaml"):
        merge_overrides(bad, PriorState.empty().overrides)


def test_shipped_overrides_file_is_valid_and_empty():
    rules = load_rules(DEFAULT_RULES_DIR)
    assert merge_overrides(rules.overrides, PriorState.empty().overrides).empty


# ------------------------------------------------------------------ the affected region
def _prior_with(xref: list[tuple[str, str]], edges: list[tuple[str, str]], reasons: dict | None = None) -> PriorState:
    p = PriorState.empty()
    p.xref = pd.DataFrame(
        [(k, k.split("|")[0], k.split("|")[1], m, None, (reasons or {}).get(k, "matched")) for k, m in xref],
        columns=["record_key", "source", "source_record_id", "master_id", "match_probability", "reason"],
    )
    p.edges = pd.DataFrame(
        [(a, b, 10.0, 0.99, "match") for a, b in edges],
        columns=["record_key_l", "record_key_r", "match_weight", "match_probability", "decision"],
    )
    return p


def _combined(changed=(), retired=()) -> Combined:
    return Combined(
        records=pd.DataFrame(),
        changed_keys=set(changed),
        retired=pd.DataFrame({"record_key": list(retired)}),
        kept_edges=pd.DataFrame(),
    )


def _pairs(edges):
    return pd.DataFrame(
        [(a, b, 10.0, 0.99, "match") for a, b in edges],
        columns=["record_key_l", "record_key_r", "match_weight", "match_probability", "decision"],
    )


NO_OVERRIDES = pd.DataFrame(columns=["record_key_l", "record_key_r", "kind", "origin"])


def test_region_holds_what_lost_a_record_and_what_gained_one_not_the_rest():
    from crmclean.incremental import affected_region

    # prior: a|1-a|2-a|3 one master (M1), a|4 alone (M2), b|1-b|2 (M3) untouched by this run
    prior = _prior_with(
        [("a|1", "M1"), ("a|2", "M1"), ("a|3", "M1"), ("a|4", "M2"), ("b|1", "M3"), ("b|2", "M3")],
        [("a|1", "a|2"), ("a|2", "a|3"), ("b|1", "b|2")],
    )
    keys = ["a|1", "a|2", "a|3", "a|4", "a|5", "b|1", "b|2"]
    # a|3 changed and no longer links; a|5 is new and links to a|4
    pairs = _pairs([("a|1", "a|2"), ("b|1", "b|2"), ("a|4", "a|5")])
    scope = affected_region(keys, pairs, NO_OVERRIDES, prior, _combined(changed={"a|3", "a|5"}), NO_OVERRIDES)
    assert scope.keys == {"a|1", "a|2", "a|3", "a|4", "a|5"}  # M1 lost a|3: a|1, a|2 are reclustered too
    assert scope.prior_ids == {"M1", "M2"}
    # a retired record pulls in the rest of its prior master
    scope = affected_region(
        ["a|1", "a|2", "a|4", "b|1", "b|2"],
        _pairs([("a|1", "a|2"), ("b|1", "b|2")]),
        NO_OVERRIDES,
        prior,
        _combined(retired={"a|3"}),
        NO_OVERRIDES,
    )
    assert scope.keys == {"a|1", "a|2"} and scope.prior_ids == {"M1"}
    # nothing changed: nothing to do
    scope = affected_region(keys[:4] + keys[5:], pairs.iloc[:2], NO_OVERRIDES, prior, _combined(), NO_OVERRIDES)
    assert scope.keys == set() and scope.prior_ids == set()


def test_region_follows_changed_overrides_and_unknown_prior_overrides():
    from crmclean.incremental import affected_region

    prior = _prior_with(
        [("a|1", "M1"), ("a|2", "M2"), ("a|3", "M3"), ("a|4", "M3")],
        [("a|3", "a|4")],
        reasons={"a|3": "must_link", "a|4": "must_link"},
    )
    keys = ["a|1", "a|2", "a|3", "a|4"]
    pairs = _pairs([("a|3", "a|4")])
    must = pd.DataFrame(
        [("a|1", "a|2", "must_link", "rules/overrides.yaml")],
        columns=["record_key_l", "record_key_r", "kind", "origin"],
    )
    # a must-link added since the prior run: both records (and their masters) are reclustered
    scope = affected_region(keys, pairs, must, prior, _combined(), NO_OVERRIDES)
    assert scope.keys == {"a|1", "a|2"} and scope.prior_ids == {"M1", "M2"}
    # the same overrides as before: nothing to do
    assert affected_region(keys, pairs, must, prior, _combined(), must).keys == set()
    # unknown prior overrides: every record named by one, and every master shaped by one
    scope = affected_region(keys, pairs, must, prior, _combined(), None)
    assert scope.keys == {"a|1", "a|2", "a|3", "a|4"}


def test_overrides_round_trip_through_their_stored_text():
    from crmclean.incremental import overrides_from_text, overrides_text

    ov = merge_overrides({"must_link": [["crm_a:1", "crm_b:2"]], "unmerge": ["crm_a:7"]}, PriorState.empty().overrides)
    back = overrides_from_text(overrides_text(ov))
    assert overrides_text(back) == overrides_text(ov)
    assert overrides_from_text(None) is None


# ------------------------------------------------------------------ link restricted to records near new ones
@pytest.fixture(scope="module")
def generated_std(tmp_path_factory):
    from crmclean.generate import generate
    from crmclean.ingest import discover_inputs, ingest
    from crmclean.standardize import quarantine_unidentifiable, standardize

    rules = load_rules(DEFAULT_RULES_DIR)
    info = generate(customers=600, seed=5, out_dir=tmp_path_factory.mktemp("gen"))
    records = ingest(discover_inputs([Path(info["files"][0]).parent]), rules).records
    std, _ = standardize(records, rules, workers=1)
    std, _ = quarantine_unidentifiable(std, rules)
    return std, rules


def _sorted_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs.sort_values(["record_key_l", "record_key_r"]).reset_index(drop=True)


@pytest.mark.parametrize(
    "matching",
    [
        {},  # the shipped rules
        # small blocks and a wide sorted-neighbourhood window: frequent values on both sides of the cut
        {
            "blocking": {
                "max_block_size": 3,
                "rules": [
                    {"name": "email", "columns": ["email_key"]},
                    {"name": "dob_last", "columns": ["birth_date_std", "last_name_key:initial"]},
                    {"name": "soundex", "columns": ["last_name_key:soundex", "birth_date_std:year"]},
                    {"name": "nb", "method": "sortedneighbourhood", "columns": ["name_key"], "window": 5},
                ],
            },
            "shared_value_limit": 2,
        },
    ],
)
def test_link_near_new_records_gives_the_pairs_of_linking_everything(generated_std, matching):
    import numpy as np

    from crmclean.link import link
    from crmclean.settings import Rules

    std, shipped = generated_std
    rules = Rules(matching={**shipped.matching, **matching, "u_sample_pairs": 50_000})
    model = link(std, rules, workers=1).model
    rng = np.random.default_rng(3)
    new = set(rng.choice(std["record_key"].to_numpy(), size=len(std) // 30, replace=False))
    near = link(std, rules, model=model, new_keys=new, workers=1)
    whole = link(std, rules, model=model, new_keys=new, workers=1, restrict=False)
    assert len(near.pairs) > 10
    pd.testing.assert_frame_equal(_sorted_pairs(near.pairs), _sorted_pairs(whole.pairs))
    total = lambda s: s.set_index("rule").loc["total", ["pairs", "match", "review", "non_match"]].tolist()  # noqa: E731
    assert total(near.blocking_summary) == total(whole.blocking_summary)


def test_link_near_new_keeps_a_too_frequent_neighbourhood_value_too_frequent(generated_std):
    """A value too frequent for the sorted-neighbourhood window (here 'carl c', 5 holders, block
    limit 3) is skipped by linking everything; when one of its holders is kept through another
    rule (the shared e-mail), all of them must be, or the value would count as a neighbour."""
    from crmclean.link import link
    from crmclean.settings import Rules

    std, shipped = generated_std
    model = link(std.head(400), Rules(matching={**shipped.matching, "u_sample_pairs": 20_000}), workers=1).model

    def row(key, first, last, email=None):
        return {
            "record_key": key,
            "source": "s",
            "source_record_id": key[2:],
            "first_name_key": first,
            "last_name_key": last,
            "name_key": f"{first} {last}",
            "email_key": email,
        }

    frame = pd.DataFrame(
        [
            row("s|n1", "bob", "b", "x@y.com"),
            row("s|a", "alice", "a"),
            row("s|d", "dan", "d"),
            row("s|e", "eve", "e"),
            row("s|c1", "carl", "c", "x@y.com"),
            *[row(f"s|c{i}", "carl", "c") for i in range(2, 6)],
        ]
    )
    rules = Rules(
        matching={
            **shipped.matching,
            "shared_value_limit": 0,
            "blocking": {
                "max_block_size": 3,
                "rules": [
                    {"name": "email", "columns": ["email_key"]},
                    {"name": "nb", "method": "sortedneighbourhood", "columns": ["name_key"], "window": 3},
                ],
            },
        }
    )
    near = link(frame, rules, model=model, new_keys={"s|n1"}, workers=1)
    whole = link(frame, rules, model=model, new_keys={"s|n1"}, workers=1, restrict=False)
    total = lambda s: s.set_index("rule").loc["total", ["pairs", "match", "review", "non_match"]].tolist()  # noqa: E731
    assert total(whole.blocking_summary)[0] == 3  # e-mail: n1-c1; window: n1-alice, n1-dan
    assert total(near.blocking_summary) == total(whole.blocking_summary)
    pd.testing.assert_frame_equal(_sorted_pairs(near.pairs), _sorted_pairs(whole.pairs))


# ------------------------------------------------------------------ fingerprints: versions and rules only
def _rules(**changes) -> Rules:
    """The default rules with `changes` ({section: {key: value}}, nested dicts merged) applied."""
    import copy
    import dataclasses

    rules = load_rules(None)
    out = {}
    for section, patch in changes.items():
        merged = copy.deepcopy(getattr(rules, section))
        for key, value in patch.items():
            if isinstance(value, dict):
                merged[key] = {**(merged.get(key) or {}), **value}
            else:
                merged[key] = value
        out[section] = merged
    return dataclasses.replace(rules, **out)


def _edited_copy(module, tmp_path: Path, monkeypatch) -> None:
    """Make `module`'s source a copy with one more comment line (what a comment edit does)."""
    import linecache

    copy = tmp_path / Path(module.__file__).name
    copy.write_text(Path(module.__file__).read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    monkeypatch.setattr(module, "__file__", str(copy))
    linecache.clearcache()


def test_a_comment_edit_moves_no_fingerprint(tmp_path, monkeypatch):
    from crmclean import cluster, ids, standardize, survivorship
    from crmclean.incremental import cluster_fingerprint, standardize_fingerprint

    rules = load_rules(None)
    before = cluster_fingerprint(rules), standardize_fingerprint(rules)
    for module in (cluster, survivorship, ids, standardize):
        _edited_copy(module, tmp_path, monkeypatch)
    assert (cluster_fingerprint(rules), standardize_fingerprint(rules)) == before


def test_performance_knobs_move_no_fingerprint():
    from crmclean.incremental import cluster_fingerprint, standardize_fingerprint

    rules = load_rules(None)
    tuned = _rules(
        standardize={"in_process_below": 5}, matching={"chunk_size": 7, "workers": 9, "clustering": {"workers": 3}}
    )
    assert tuned.standardize["in_process_below"] == 5 and tuned.matching["chunk_size"] == 7
    assert standardize_fingerprint(tuned) == standardize_fingerprint(rules)
    assert cluster_fingerprint(tuned) == cluster_fingerprint(rules)


def test_rules_and_versions_move_their_fingerprint(monkeypatch):
    from crmclean import incremental

    rules = load_rules(None)
    cluster_fp, std_fp = incremental.cluster_fingerprint(rules), incremental.standardize_fingerprint(rules)
    bigger = _rules(matching={"clustering": {"max_cluster_size": 51}})
    assert incremental.cluster_fingerprint(bigger) != cluster_fp
    assert incremental.standardize_fingerprint(bigger) == std_fp  # standardize does not read it
    survivorship = _rules(survivorship={"source_priority": ["x"]})
    assert incremental.cluster_fingerprint(survivorship) != cluster_fp
    assert incremental.standardize_fingerprint(_rules(standardize={"max_match_chars": 150})) != std_fp
    monkeypatch.setattr(incremental, "CLUSTER_VERSION", incremental.CLUSTER_VERSION + "+1")
    assert incremental.cluster_fingerprint(rules) != cluster_fp


# ------------------------------------------------------------------ no import cycles in the package
def _package_imports(include_lazy: bool) -> dict[str, set[str]]:
    """crmclean module → the crmclean modules it imports (relative imports resolved; imports
    under `if TYPE_CHECKING:` are annotations and left out; a package's own parents too)."""
    import ast

    import crmclean

    root = Path(crmclean.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = ["crmclean", *path.relative_to(root).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(name: str, path: Path) -> set[str]:
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()

        def visit(node: ast.AST) -> None:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                return
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not include_lazy:
                return
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            for child in ast.iter_child_nodes(node):
                visit(child)

        visit(ast.parse(path.read_text(encoding="utf-8")))
        out = set()
        for target in found:  # importing a.b.c runs a.b first (but a module's own parents are no cycle)
            parts = target.split(".")
            out |= {
                m
                for m in (".".join(parts[:i]) for i in range(2, len(parts) + 1))
                if m in modules and m != name and not name.startswith(m + ".")
            }
        return out

    return {name: targets(name, path) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            connect(v)
    return found


@pytest.mark.parametrize("include_lazy", [False, True], ids=["module-level", "with-lazy-imports"])
def test_the_package_has_no_import_cycles(include_lazy):
    graph = _package_imports(include_lazy)
    assert {"crmclean.store.build", "crmclean.record_hash"} <= graph["crmclean.incremental"]
    assert "crmclean.incremental" not in graph["crmclean.store.build"]
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# ------------------------------------------------------------------ extra attributes in an incremental run
def test_incremental_run_compares_the_stored_records_extra_attributes(tmp_path):
    """A second run on the same database (new rows, a slim prior) compares the stored records'
    `attr_*` values (here the occupation of a parish register): the occupation lifts some
    pairs of a stored and a new record over the match threshold, as in a first run."""
    import json

    import numpy as np
    import sqlalchemy as sa

    from crmclean.generate import generate
    from crmclean.run import RunOptions, run_pipeline

    info = generate(400, 7, tmp_path / "data", profile="old_dob")
    baptisms, census = sorted(Path(p) for p in info["files"])
    db = f"sqlite:///{tmp_path / 'master.db'}"
    for inputs in ([baptisms], [baptisms, census]):  # a first run, then an incremental one
        result = run_pipeline(RunOptions(inputs=inputs, db_url=db, out_dir=tmp_path / "out", workers=1))
        assert result.status == "success", result.error
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        edges = pd.read_sql_query(
            sa.text("SELECT * FROM match_edge WHERE run_id = :r"), conn, params={"r": result.run_id}
        )
        model = json.loads(conn.execute(sa.text("SELECT model_json FROM match_model ORDER BY version DESC")).scalar())
    engine.dispose()
    cross = edges[edges["record_key_l"].str.split("|").str[0] != edges["record_key_r"].str.split("|").str[0]]
    occupation = [json.loads(e).get("attr_occupation") or {"level": "null", "weight": 0.0} for e in cross["evidence"]]
    assert len(cross) > 50 and np.mean([o["level"] == "exact" for o in occupation]) > 0.5
    # pairs that are a match only with the occupation's weight (log2 odds, prior included)
    without = cross["match_weight"].to_numpy() - np.array([o["weight"] for o in occupation])
    decided = (cross["decision"].to_numpy() == "match") & (1 / (1 + 2.0**-without) < model["thresholds"]["match"])
    assert decided.sum() >= 1
