"""build_golden: one master row per cluster chosen by per-field strategy chains, with lineage.
Records are standardized frames built by hand, plus one run over the shared factory scenarios
through the real standardize stage."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.errors import RulesError
from pipeline.schema import MASTER_COLUMNS
from pipeline.settings import Rules, load_rules
from pipeline.survivorship import GOLDEN_COLUMNS, LINEAGE_COLUMNS, build_golden, survivorship_settings

FIELDS = ("full_name_std", "first_name_std", "last_name_std", "name_suffix_std", "name_script", "gender_std",
          "email_std", "mobile_std", "landline_std", "phone_std", "birth_date_std", "address_std", "district_std",
          "city_std", "state_std", "postal_code_std", "country_std", "company_std", "updated_at_std",
          "created_at_std", "email_flag", "birth_date_flag", "address_flag", "postal_code_flag")


def rec(key: str, cluster: int, **values) -> dict:
    row = {"record_key": key, "source": key.split("|")[0], "cluster": cluster}
    row.update({f: None for f in FIELDS})
    row.update({f if f.endswith(("_flag", "_script")) else f"{f}_std" if not f.endswith("_std") else f: v
                for f, v in values.items()})
    return row


def build(*rows: dict, rules: Rules | None = None):
    df = pd.DataFrame(list(rows))
    clusters = df[["record_key", "cluster"]]
    golden, lineage = build_golden(df.drop(columns="cluster"), clusters, rules or Rules())
    return golden.set_index("cluster"), lineage


def src(lineage: pd.DataFrame, cluster: int, field: str) -> tuple[str, str]:
    row = lineage[(lineage["cluster"] == cluster) & (lineage["field"] == field)]
    assert len(row) == 1, row
    return row["record_key"].iloc[0], row["rule"].iloc[0]


def test_shape_counts_and_sources():
    golden, lineage = build(rec("crm|1", 0, email="a@x.com"), rec("erp|1", 0, email="a@x.com"),
                            rec("crm|2", 0), rec("web|9", 1, email="b@x.com"))
    assert list(golden.reset_index().columns) == list(GOLDEN_COLUMNS)
    assert set(GOLDEN_COLUMNS) == {"cluster"} | (set(MASTER_COLUMNS) - {"master_id"})
    assert golden.loc[0, "record_count"] == 3 and golden.loc[1, "record_count"] == 1
    assert golden.loc[0, "sources"] == "crm;erp" and golden.loc[1, "sources"] == "web"
    assert list(lineage.columns) == list(LINEAGE_COLUMNS)
    # two records agree on the email: the tie goes to the smallest record_key
    assert src(lineage, 0, "email") == ("crm|1", "all_agree")
    assert src(lineage, 1, "email") == ("web|9", "only_value")
    assert golden.loc[0, "gender"] is None


def test_most_recent_by_updated_then_created():
    golden, lineage = build(
        rec("a|1", 0, email="old@x.com", updated_at="2021-01-01T00:00:00"),
        rec("a|2", 0, email="new@x.com", updated_at="2024-06-01T08:00:00+08:00"),
        rec("a|3", 0, email="none@x.com"),
        rec("b|1", 1, email="first@x.com", created_at="2020-01-01"),
        rec("b|2", 1, email="later@x.com", created_at="2022-01-01"),
    )
    assert golden.loc[0, "email"] == "new@x.com"
    assert src(lineage, 0, "email") == ("a|2", "most_recent")
    assert golden.loc[1, "email"] == "later@x.com"


def test_source_priority_global_and_per_field():
    rows = [rec("crm|1", 0, email="crm@x.com", company="Crm Co", updated_at="2024-01-01"),
            rec("erp|1", 0, email="erp@x.com", company="Erp Co", updated_at="2020-01-01")]
    rules = Rules(survivorship={"source_priority": ["erp", "crm"],
                                "fields": {"email": ["source_priority", "most_recent"],
                                           "company": [{"source_priority": ["crm"]}]}})
    golden, lineage = build(*rows, rules=rules)
    assert golden.loc[0, "email"] == "erp@x.com"
    assert src(lineage, 0, "email") == ("erp|1", "source_priority")
    assert golden.loc[0, "company"] == "Crm Co"
    # without a priority the default email chain takes the most recent
    assert build(*rows)[0].loc[0, "email"] == "crm@x.com"


def test_most_frequent_mobile():
    golden, lineage = build(rec("a|1", 0, mobile="+8613800000001", updated_at="2025-01-01"),
                            rec("a|2", 0, mobile="+8613800000002"), rec("a|3", 0, mobile="+8613800000002"))
    assert golden.loc[0, "mobile"] == "+8613800000002"
    assert src(lineage, 0, "mobile") == ("a|2", "most_frequent")


def test_valid_only_never_publishes_an_invalid_value():
    golden, lineage = build(
        rec("a|1", 0, email="not-an-email", email_flag="invalid", updated_at="2025-01-01"),
        rec("a|2", 0, email="ok@x.com", email_flag="changed", updated_at="2019-01-01"),
        rec("b|1", 1, email="test@test.com", email_flag="changed;placeholder"),
    )
    assert golden.loc[0, "email"] == "ok@x.com"
    assert src(lineage, 0, "email") == ("a|2", "valid_only")
    assert golden.loc[1, "email"] is None
    assert lineage[(lineage["cluster"] == 1) & (lineage["field"] == "email")].empty


def test_prefer_clean_birth_date():
    golden, lineage = build(rec("a|1", 0, birth_date="1985-03-04", birth_date_flag="ambiguous_day_month"),
                            rec("a|2", 0, birth_date="1985-04-03", birth_date_flag="changed"))
    assert golden.loc[0, "birth_date"] == "1985-04-03"
    assert src(lineage, 0, "birth_date") == ("a|2", "prefer_clean")


def test_hanzi_name_preferred_over_pinyin_and_taken_whole():
    golden, lineage = build(
        rec("web|1", 0, full_name="Xie Xuedong", first_name="Xuedong", last_name="Xie", name_script="latin",
            updated_at="2025-01-01"),
        rec("cn|1", 0, full_name="谢雪冬", first_name="雪冬", last_name="谢", name_script="han"),
        rec("web|2", 1, full_name="Anna Kowalski", first_name="Anna", last_name="Kowalski", name_script="latin"),
        rec("web|3", 1, full_name="Anna Kowalski", first_name="Anna", last_name="Kowalski", name_suffix="Jr",
            name_script="latin"),
    )
    assert golden.loc[0, ["full_name", "first_name", "last_name"]].tolist() == ["谢雪冬", "雪冬", "谢"]
    assert src(lineage, 0, "full_name") == ("cn|1", "prefer_script:han")
    assert src(lineage, 0, "last_name") == ("cn|1", "prefer_script:han")
    # no Hanzi record: the most complete name (with its suffix) wins, all parts from one record
    assert golden.loc[1, ["full_name", "name_suffix"]].tolist() == ["Anna Kowalski", "Jr"]
    assert src(lineage, 1, "first_name")[0] == "web|3"


def test_address_fields_come_from_one_record():
    golden, lineage = build(
        rec("a|1", 0, address="12 Oak St", city="Springfield", state="IL", updated_at="2025-01-01"),
        rec("a|2", 0, address="9 Elm Rd", city="Chicago", state="IL", postal_code="60601", country="US"),
        rec("a|3", 0, city="Denver", postal_code="80202", updated_at="2026-01-01"),
    )
    g = golden.loc[0]
    assert [g["street"], g["city"], g["state_or_province"], g["postal_code"], g["country"]] == \
        ["9 Elm Rd", "Chicago", "IL", "60601", "US"]
    addr = lineage[(lineage["cluster"] == 0) & lineage["field"].isin(
        ["street", "city", "state_or_province", "postal_code", "country"])]
    assert set(addr["record_key"]) == {"a|2"} and set(addr["rule"]) == {"most_complete"}


def test_an_invalid_part_of_the_chosen_address_is_dropped_not_replaced():
    golden, _ = build(rec("a|1", 0, address="12 Oak St", city="Springfield", postal_code="ABCDE",
                          postal_code_flag="invalid", country="US"),
                      rec("a|2", 0, city="Boston", postal_code="02101"))
    g = golden.loc[0]
    assert (g["street"], g["city"], g["postal_code"]) == ("12 Oak St", "Springfield", None)


def test_phone_is_the_mobile_else_the_landline_else_untyped_phone():
    golden, lineage = build(
        rec("a|1", 0, landline="+861065871234"), rec("a|2", 0, mobile="+8613800138000"),
        rec("b|1", 1, landline="+12175550142"),
        rec("c|1", 2, phone="+12175550199"),
    )
    assert golden.loc[0, "phone"] == "+8613800138000" and golden.loc[0, "landline"] == "+861065871234"
    assert src(lineage, 0, "phone") == ("a|2", "mobile_first")
    assert golden.loc[1, "phone"] == "+12175550142"
    assert src(lineage, 1, "phone") == ("b|1", "landline_when_no_mobile")
    assert golden.loc[2, "phone"] == "+12175550199" and golden.loc[2, "mobile"] is None


def test_full_tie_goes_to_the_smallest_record_key():
    golden, lineage = build(rec("b|1", 0, company="Beta"), rec("a|1", 0, company="Alpha"))
    assert golden.loc[0, "company"] == "Alpha"
    assert src(lineage, 0, "company") == ("a|1", "record_key")


def test_lineage_points_at_the_record_holding_each_value():
    rows = [rec("cn|1", 0, full_name="谢雪冬", first_name="雪冬", last_name="谢", name_script="han",
                mobile="+8613800138000", city="广州市", country="CN"),
            rec("web|1", 0, full_name="Xie Xuedong", name_script="latin", email="x@163.com",
                birth_date="1985-03-07", address="385 Tianhe Lu", city="Guangzhou", country="CN",
                updated_at="2024-01-01")]
    golden, lineage = build(*rows)
    by_key = pd.DataFrame(rows).set_index("record_key")
    column = {"street": "address_std", "state_or_province": "state_std", "phone": "phone_std"}
    for r in lineage.itertuples():
        assert golden.loc[r.cluster, r.field] == r.value
        std = column.get(r.field, f"{r.field}_std")
        if r.field != "phone":
            assert by_key.at[r.record_key, std] == r.value, r
    filled = {c for c in GOLDEN_COLUMNS if c not in ("cluster", "record_count", "sources")
              and golden.loc[0, c] is not None}
    assert set(lineage["field"]) == filled


def test_shuffled_input_gives_identical_golden_and_lineage():
    rows = [rec(f"s{i % 3}|{i}", i // 4, email=f"e{i % 2}@x.com", mobile=f"+1555000{i % 3}",
                updated_at=f"2024-01-{1 + i % 5:02d}", city=["A", "B"][i % 2]) for i in range(24)]
    df = pd.DataFrame(rows)
    g1, l1 = build_golden(df.drop(columns="cluster"), df[["record_key", "cluster"]], Rules())
    shuffled = df.sample(frac=1, random_state=3)
    g2, l2 = build_golden(shuffled.drop(columns="cluster"), shuffled[["record_key", "cluster"]].sample(frac=1), Rules())
    pd.testing.assert_frame_equal(g1, g2)
    pd.testing.assert_frame_equal(l1, l2)


def test_missing_columns_and_records_without_cluster_rows():
    records = pd.DataFrame({"record_key": ["a|1", "a|2"], "source": ["a", "a"], "email_std": ["x@y.z", None]})
    clusters = pd.DataFrame({"record_key": ["a|1", "a|2"], "cluster": [5, 7]})
    golden, lineage = build_golden(records, clusters, Rules())
    assert golden["cluster"].tolist() == [5, 7]
    assert golden["email"].tolist() == ["x@y.z", None]
    assert lineage[["cluster", "field", "value"]].values.tolist() == [[5, "email", "x@y.z"]]


@pytest.mark.parametrize("bad, message", [
    ({"fields": {"email": ["loudest"]}}, "unknown strategy 'loudest'"),
    ({"fields": {"street": ["most_recent"]}}, "chosen with the 'address' group"),
    ({"fields": {"shoe": ["most_recent"]}}, "not a master field"),
    ({"fields": {"email": []}}, "non-empty list"),
    ({"source_priority": "crm"}, "source_priority must be a list"),
    ({"colour": 1}, "unknown key"),
])
def test_bad_rules_are_rules_errors(bad, message):
    with pytest.raises(RulesError, match=message):
        survivorship_settings(Rules(survivorship=bad))


def test_shipped_rules_file_is_valid():
    cfg = survivorship_settings(load_rules())
    assert cfg["chains"]["name"][0] == ("prefer_script", "han")


def test_factory_scenarios_through_standardize():
    """Real standardize output: the Hanzi/pinyin customer gets the Hanzi name, the phone is the
    mobile, and every value has lineage."""
    import factories
    from pipeline.standardize import standardize

    raw, truth = factories.hanzi_pinyin()
    std, _ = standardize(factories.as_records_frame(raw), load_rules(), workers=1)
    truth = truth.assign(record_key=truth["source"] + "|" + truth["source_record_id"])
    clusters = truth[["record_key"]].assign(cluster=pd.factorize(truth["entity_id"])[0])
    golden, lineage = build_golden(std, clusters, load_rules())
    xie = golden.set_index("cluster").loc[clusters.set_index("record_key").at["crm_legacy_cn|KH00000601", "cluster"]]
    assert xie["full_name"] == "谢雪冬" and xie["city"] == "广州市"
    assert xie["phone"] == xie["mobile"] == "+8613800138000"
    assert xie["sources"] == "crm_legacy_cn;crm_web_us" and xie["record_count"] == 2
    assert len(golden) == truth["entity_id"].nunique()
    assert lineage.merge(golden.melt(id_vars="cluster", var_name="field", value_name="v"),
                         on=["cluster", "field"]).eval("value == v").all()


def test_no_records_gives_empty_frames_with_the_contract_columns():
    records = pd.DataFrame({"record_key": pd.Series(dtype=object), "source": pd.Series(dtype=object)})
    clusters = pd.DataFrame({"record_key": pd.Series(dtype=object), "cluster": pd.Series(dtype="int64")})
    golden, lineage = build_golden(records, clusters, Rules())
    assert golden.empty and list(golden.columns) == list(GOLDEN_COLUMNS)
    assert lineage.empty and list(lineage.columns) == list(LINEAGE_COLUMNS)
