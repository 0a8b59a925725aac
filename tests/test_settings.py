"""Typed settings (crmclean.config): every rules file is validated by its model, a typo names
the file, the dotted key and the nearest valid key, and the shipped rules/*.yaml show the
models' defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from crmclean import config, config_check
from crmclean.errors import RulesError
from crmclean.settings import DEFAULT_RULES_DIR, SECTIONS, Rules, load_rules

#: keys whose shipped value is this project's setup, not a default: the example sources, and the
#: survivorship chains tuned on the bench data (Rules built in code keep the plain chains)
SHIPPED_NOT_DEFAULT = {("sources", "sources"), ("survivorship", "fields")}


def _shipped(name: str, directory: Path = DEFAULT_RULES_DIR) -> dict:
    return yaml.safe_load((directory / f"{name}.yaml").read_text(encoding="utf-8")) or {}


def _missing_keys(defaults: dict, shown: dict, prefix: str = "") -> list[str]:
    """Key paths of the defaults that a YAML file does not write out."""
    missing = []
    for key, value in defaults.items():
        if key not in shown:
            missing.append(prefix + key)
        elif isinstance(value, dict) and isinstance(shown[key], dict):
            missing += _missing_keys(value, shown[key], f"{prefix}{key}.")
    return missing


@pytest.mark.parametrize("name", sorted(config.MODELS))
def test_shipped_rules_file_shows_every_default(name):
    """Replaces the old check that link's code defaults and matching.yaml give the same pairs:
    the values are compared (comments are free), and every default key is written out."""
    shown = _shipped(name)
    defaults = config.defaults(name)
    validated = config.validate_section(name, shown)
    for section, key in SHIPPED_NOT_DEFAULT:
        if section == name:
            defaults.pop(key), validated.pop(key), shown.pop(key, None)
    assert validated == defaults
    assert _missing_keys(defaults, shown) == []


def test_defaults_are_the_values_link_and_cluster_use_today():
    """matching's model holds link's and cluster's defaults (the stages keep copies for Rules
    built in code): the two must not drift."""
    from crmclean import link
    from crmclean.cluster import DEFAULTS as CLUSTER_DEFAULTS
    from crmclean.link import blocking, compare, model, training
    from crmclean.link.family import DEFAULT_NOISE_SIGMAS

    m = config.defaults("matching")
    assert m["thresholds"] == link.DEFAULT_THRESHOLDS
    assert (m["chunk_size"], m["u_sample_pairs"], m["training_max_pairs"]) == (
        link.DEFAULT_CHUNK_SIZE,
        training.DEFAULT_U_SAMPLE,
        training.DEFAULT_TRAINING_MAX_PAIRS,
    )
    assert m["caps"] == link.DEFAULT_CAPS
    assert m["hard_constraints"] == link.DEFAULT_HARD_CONSTRAINTS
    assert m["training_minimum"] == link.DEFAULT_TRAINING_MINIMUM
    assert m["family_noise_sigmas"] == DEFAULT_NOISE_SIGMAS
    rules = config.validate_section(
        "matching", {"blocking": {"rules": blocking.DEFAULT_RULES}, "training_rules": link.DEFAULT_TRAINING_RULES}
    )
    assert m["blocking"]["rules"] == rules["blocking"]["rules"]
    assert m["training_rules"] == rules["training_rules"]
    assert m["blocking"]["max_block_size"] == blocking.DEFAULT_MAX_BLOCK_SIZE == m["shared_value_limit"]
    assert m["level_weight_max"] == model.DEFAULT_LEVEL_WEIGHT_MAX
    assert m["correlated_disagreement"] == model.DEFAULT_CORRELATED_DISAGREEMENT
    assert m["clustering"] == CLUSTER_DEFAULTS
    c = m["comparison"]
    assert (c["jw_high"], c["jw_low"], c["years_apart"], c["address_fuzzy"]) == (
        compare.JW_HIGH,
        compare.JW_LOW,
        compare.YEARS_APART,
        compare.ADDRESS_FUZZY,
    )


def test_default_tables_equal_the_stages_own_copies():
    """The tables the stages use for Rules built in code are crmclean.config_defaults' (aliases,
    e-mail lists and rule tables are read from it); the rest must stay equal to it."""
    from crmclean import config_defaults, survivorship
    from crmclean.ingest.columns import DEFAULT_ALIASES, DEFAULT_PREFIXES, EXTRA_ALIASES
    from crmclean.standardize import text

    aliases = {**DEFAULT_ALIASES, **EXTRA_ALIASES}
    assert config_defaults.ALIASES == {f: list(names) for f, names in aliases.items()}
    assert config_defaults.STRIP_PREFIXES == list(DEFAULT_PREFIXES)
    assert config_defaults.PLACEHOLDER_FIELDS == tuple(text.DEFAULT_PLACEHOLDERS)
    assert config_defaults.STRATEGIES == survivorship.STRATEGIES
    assert config_defaults.GROUP_MEMBERS == {
        g.name: tuple(m for m, _ in g.columns if m != g.name) for g in survivorship.GROUPS
    }


def test_standardize_defaults_are_the_code_tables():
    from crmclean.standardize import dates, emails, parallel

    s = config.defaults("standardize")
    assert (s["dates"]["excel_serial_min"], s["dates"]["excel_serial_max"]) == dates.DEFAULT_SERIAL_RANGE
    assert s["in_process_below"] == parallel.IN_PROCESS_BELOW
    assert s["emails"]["placeholders"] == list(emails.DEFAULT_PLACEHOLDERS)
    assert s["emails"]["domain_typos"] == emails.DEFAULT_DOMAIN_TYPOS
    assert s["emails"]["placeholder_patterns"] == list(emails.DEFAULT_PLACEHOLDER_PATTERNS)
    assert s["emails"]["plus_tag_domains"] == list(emails.DEFAULT_PLUS_TAG_DOMAINS)
    assert s["emails"]["dot_free_domains"] == list(emails.DEFAULT_DOT_FREE_DOMAINS)


def test_febrl_profile_validates():
    profile = _shipped("matching", DEFAULT_RULES_DIR / "profiles" / "febrl")
    matching = config.validate_section("matching", profile)
    assert [c["name"] for c in matching["hard_constraints"]] == ["generation_conflict", "birth_dates_decades_apart"]
    assert matching["caps"] == []


# (file, edit of the shipped YAML text, the error line after the file name)
TYPOS = [
    ("matching", ("  review: 0.6", "  reveiw: 0.5"), "unknown key 'thresholds.reveiw' (did you mean 'review'?)"),
    (
        "matching",
        ("    twins: learned", "    twin: learned"),
        "unknown key 'clustering.guards.twin' (did you mean 'twins'?)",
    ),
    (
        "sources",
        ("    default_region: CN", "    default_regon: CN"),
        "unknown key 'sources.crm_legacy_cn.default_regon' (did you mean 'default_region'?)",
    ),
    ("columns", ("strip_prefixes:", "strip_prefix:"), "unknown key 'strip_prefix' (did you mean 'strip_prefixes'?)"),
    (
        "standardize",
        ("  excel_serial_max:", "  excel_serial_maxi:"),
        "unknown key 'dates.excel_serial_maxi' (did you mean 'excel_serial_max'?)",
    ),
    ("survivorship", ("exclude_flags:", "exclude_flag:"), "unknown key 'exclude_flag' (did you mean 'exclude_flags'?)"),
    ("overrides", ("unmerge: []", "unmerged: []"), "unknown key 'unmerged' (did you mean 'unmerge'?)"),
]


def _rules_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = directory / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return directory


@pytest.mark.parametrize("name, edit, message", TYPOS, ids=[f"{t[0]}-{t[1][1].split(':')[0].strip()}" for t in TYPOS])
def test_a_typo_in_any_rules_file_names_file_key_and_nearest_key(tmp_path, name, edit, message):
    directory = _rules_with(tmp_path, name, *edit)
    with pytest.raises(RulesError) as err:
        load_rules(directory)
    assert str(err.value) == f"{directory / f'{name}.yaml'}: {message}"


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("matching", {"thresholds": {"match": 1.5}}, "thresholds.match: input should be less than 1 (got 1.5)"),
        (
            "matching",
            {"thresholds": {"match": 0.5, "review": 0.9}},
            "thresholds: review (0.9) must not be above match (0.5)",
        ),
        ("matching", {"blocking": {"max_block_size": 0}}, "blocking.max_block_size: input should be greater than"),
        (
            "matching",
            {"clustering": {"guards": {"first_name_min_similarity": 2}}},
            "clustering.guards.first_name_min_similarity: input should be less than or equal to 1",
        ),
        (
            "matching",
            {"caps": [{"when": {"email": ["nul"]}, "decision": "review"}]},
            "caps[0].when has level 'nul' for email; its levels are null, exact, fuzzy_local, initial_or_digit, different",
        ),
        (
            "matching",
            {"caps": [{"when": {"emial": ["null"]}, "decision": "review"}]},
            "unknown key 'caps[0].when.emial': not a feature of the comparison (did you mean 'email'?)",
        ),
        (
            "matching",
            {"blocking": {"rules": [{"name": "x", "method": "sorted", "columns": ["a"]}]}},
            "blocking.rules[0].method: input should be 'block' or 'sortedneighbourhood'",
        ),
        (
            "standardize",
            {"placeholders": {"adress": ["x"]}},
            "unknown key 'placeholders.adress': no placeholder list for that field (did you mean 'address'?)",
        ),
        ("standardize", {"emails": {"placeholders": ["n/a", None]}}, "emails.placeholders must be a list of values"),
        ("standardize", {"dates": {"excel_serial_min": 80000}}, "dates: excel_serial_min (80000) must be below"),
        ("standardize", {"default_region": "USA"}, "default_region must be a two-letter ISO country code"),
        (
            "columns",
            {"aliases": {"emial": ["mail"]}},
            "unknown key 'aliases.emial': not a canonical or extra person field (did you mean 'email'?)",
        ),
        (
            "survivorship",
            {"fields": {"email": ["most_recnt"]}},
            "fields.email has unknown strategy 'most_recnt' (did you mean 'most_recent'?",
        ),
        ("overrides", {"must_link": [["crm_a:1", "crm_b"]]}, "must_link[0][1] is not a record reference"),
    ],
)
def test_a_bad_value_names_the_key_and_what_is_allowed(name, data, message):
    with pytest.raises(RulesError) as err:
        config.validate_section(name, data)
    assert str(err.value).startswith(f"rules/{name}.yaml: {message}")


def test_absent_files_and_keys_give_the_defaults(tmp_path):
    (tmp_path / "matching.yaml").write_text("thresholds: {match: 0.95}\nblocking: {max_block_size: 80}\n")
    rules = load_rules(tmp_path)
    assert rules.matching["thresholds"] == {"match": 0.95, "review": 0.6}
    assert rules.matching["shared_value_limit"] == 80  # null = blocking.max_block_size, made explicit
    assert rules.matching["clustering"] == config.defaults("matching")["clustering"]
    for name in config.MODELS:
        if name != "matching":
            assert getattr(rules, name) == config.defaults(name)


def test_validating_again_gives_the_same_values():
    """Stages validate a section again (Rules built by hand are not loaded): a fixed point."""
    rules = load_rules()
    for name in config.MODELS:
        assert config.validate_section(name, getattr(rules, name)) == getattr(rules, name)


def test_rules_built_by_hand_are_validated_on_request():
    rules = Rules(matching={"chunk_size": 10}, survivorship={"source_priority": ["crm_a"]})
    full = rules.validated()
    assert full.matching["chunk_size"] == 10 and full.matching["seed"] == 42
    assert full.survivorship["source_priority"] == ["crm_a"]
    assert rules.matching == {"chunk_size": 10}  # the original is left as it was
    with pytest.raises(
        RulesError, match=r"rules/matching.yaml: unknown key 'chunksize' \(did you mean 'chunk_size'\?\)"
    ):
        Rules(matching={"chunksize": 10}).validated()
    assert set(full.to_dict()) == set(SECTIONS)


def test_a_source_entry_keeps_unset_keys_unset_so_they_inherit_the_defaults():
    data = {
        "defaults": {"day_first": True, "delimiter": "tab"},
        "sources": {"a": {"files": "a*.csv"}, "b": {"day_first": None}},
    }
    sources = config.validate_section("sources", data)
    assert sources["defaults"] == {
        "max_value_chars": 4000,
        "max_line_chars": 1_000_000,
        "chunk_rows": 50_000,
        "day_first": True,
        "delimiter": "\t",
        "full_snapshot": False,
    }
    assert sources["sources"] == {"a": {"files": ["a*.csv"]}, "b": {"day_first": None}}
    from crmclean.ingest import source_settings

    rules = Rules(sources=sources)
    assert source_settings(rules, "a").day_first is True and source_settings(rules, "b").day_first is None


def test_check_command(tmp_path, capsys):
    assert config_check.main([str(DEFAULT_RULES_DIR)]) == 0
    directory = _rules_with(tmp_path, "matching", "  review: 0.6", "  reveiw: 0.5")
    assert config_check.main([str(directory)]) == 1
    assert "unknown key 'thresholds.reveiw'" in capsys.readouterr().err


def test_a_blocking_rule_may_name_its_columns_with_on():
    """link reads `on:` too, which YAML reads as the key true."""
    data = yaml.safe_load("blocking: {rules: [{name: x, on: [a, b]}]}\ntraining_rules: [{on: c}]")
    matching = config.validate_section("matching", data)
    assert matching["blocking"]["rules"] == [{"name": "x", "columns": ["a", "b"], "method": "block", "window": 3}]
    assert matching["training_rules"][0]["columns"] == "c"
    assert (
        config.validate_section("matching", {"blocking": {"rules": []}})["blocking"]["rules"]
        == config.defaults("matching")["blocking"]["rules"]
    )  # link reads an empty list as its default rules
