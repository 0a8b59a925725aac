"""build_golden: one master row per cluster chosen by per-field strategy chains, with lineage.
Records are standardized frames built by hand, plus one run over the shared factory scenarios
through the real standardize stage."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmclean.errors import RulesError
from crmclean.schema import MASTER_COLUMNS
from crmclean.settings import Rules, load_rules
from crmclean.survivorship import GOLDEN_COLUMNS, LINEAGE_COLUMNS, build_golden, survivorship_settings

FIELDS = (
    "full_name_std",
    "first_name_std",
    "last_name_std",
    "name_suffix_std",
    "name_script",
    "gender_std",
    "email_std",
    "mobile_std",
    "landline_std",
    "phone_std",
    "birth_date_std",
    "address_std",
    "district_std",
    "city_std",
    "state_std",
    "postal_code_std",
    "country_std",
    "company_std",
    "updated_at_std",
    "created_at_std",
    "email_flag",
    "birth_date_flag",
    "address_flag",
    "postal_code_flag",
)


def rec(key: str, cluster: int, **values) -> dict:
    row = {"record_key": key, "source": key.split("|")[0], "cluster": cluster}
    row.update({f: None for f in FIELDS})
    row.update(
        {
            f if f.endswith(("_flag", "_script")) else f"{f}_std" if not f.endswith("_std") else f: v
            for f, v in values.items()
        }
    )
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
    golden, lineage = build(
        rec("crm|1", 0, email="a@x.com"),
        rec("erp|1", 0, email="a@x.com"),
        rec("crm|2", 0),
        rec("web|9", 1, email="b@x.com"),
    )
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
    rows = [
        rec("crm|1", 0, email="crm@x.com", company="Crm Co", updated_at="2024-01-01"),
        rec("erp|1", 0, email="erp@x.com", company="Erp Co", updated_at="2020-01-01"),
    ]
    rules = Rules(
        survivorship={
            "source_priority": ["erp", "crm"],
            "fields": {"email": ["source_priority", "most_recent"], "company": [{"source_priority": ["crm"]}]},
        }
    )
    golden, lineage = build(*rows, rules=rules)
    assert golden.loc[0, "email"] == "erp@x.com"
    assert src(lineage, 0, "email") == ("erp|1", "source_priority")
    assert golden.loc[0, "company"] == "Crm Co"
    # without a priority the default email chain takes the most recent
    assert build(*rows)[0].loc[0, "email"] == "crm@x.com"


def test_most_frequent_mobile():
    golden, lineage = build(
        rec("a|1", 0, mobile="+8613800000001", updated_at="2025-01-01"),
        rec("a|2", 0, mobile="+8613800000002"),
        rec("a|3", 0, mobile="+8613800000002"),
    )
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
    golden, lineage = build(
        rec("a|1", 0, birth_date="1985-03-04", birth_date_flag="ambiguous_day_month"),
        rec("a|2", 0, birth_date="1985-04-03", birth_date_flag="changed"),
    )
    assert golden.loc[0, "birth_date"] == "1985-04-03"
    assert src(lineage, 0, "birth_date") == ("a|2", "prefer_clean")


def test_hanzi_name_preferred_over_pinyin_and_taken_whole():
    golden, lineage = build(
        rec(
            "web|1",
            0,
            full_name="Xie Xuedong",
            first_name="Xuedong",
            last_name="Xie",
            name_script="latin",
            updated_at="2025-01-01",
        ),
        rec("cn|1", 0, full_name="谢雪冬", first_name="雪冬", last_name="谢", name_script="han"),
        rec("web|2", 1, full_name="Anna Kowalski", first_name="Anna", last_name="Kowalski", name_script="latin"),
        rec(
            "web|3",
            1,
            full_name="Anna Kowalski",
            first_name="Anna",
            last_name="Kowalski",
            name_suffix="Jr",
            name_script="latin",
        ),
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
    assert [g["street"], g["city"], g["state_or_province"], g["postal_code"], g["country"]] == [
        "9 Elm Rd",
        "Chicago",
        "IL",
        "60601",
        "US",
    ]
    addr = lineage[
        (lineage["cluster"] == 0)
        & lineage["field"].isin(["street", "city", "state_or_province", "postal_code", "country"])
    ]
    assert set(addr["record_key"]) == {"a|2"} and set(addr["rule"]) == {"most_complete"}


def test_an_invalid_part_of_the_chosen_address_is_dropped_not_replaced():
    golden, _ = build(
        rec(
            "a|1",
            0,
            address="12 Oak St",
            city="Springfield",
            postal_code="ABCDE",
            postal_code_flag="invalid",
            country="US",
        ),
        rec("a|2", 0, city="Boston", postal_code="02101"),
    )
    g = golden.loc[0]
    assert (g["street"], g["city"], g["postal_code"]) == ("12 Oak St", "Springfield", None)


def test_phone_is_the_mobile_else_the_landline_else_untyped_phone():
    golden, lineage = build(
        rec("a|1", 0, landline="+861065871234"),
        rec("a|2", 0, mobile="+8613800138000"),
        rec("b|1", 1, landline="+12175550142"),
        rec("c|1", 2, phone="+12175550199"),
    )
    assert golden.loc[0, "phone"] == "+8613800138000" and golden.loc[0, "landline"] == "+861065871234"
    assert src(lineage, 0, "phone") == ("a|2", "mobile_first")
    assert golden.loc[1, "phone"] == "+12175550142"
    assert src(lineage, 1, "phone") == ("b|1", "landline_when_no_mobile")
    assert golden.loc[2, "phone"] == "+12175550199" and golden.loc[2, "mobile"] is None


def test_an_unallocated_number_loses_to_a_valid_one_and_is_kept_when_alone():
    from crmclean.standardize.phones import standardize_phone

    dummy, kind, flag = standardize_phone("555-123-4567", "US")
    assert (dummy, kind) == ("+15551234567", "other") and "unallocated" in flag  # kept, flagged
    golden, lineage = build(
        # the newer and more frequent record holds a possible but unallocated number
        rec("a|1", 0, mobile=dummy, mobile_flag=flag, updated_at="2025-01-01"),
        rec("b|1", 0, mobile=dummy, mobile_flag=flag, updated_at="2024-01-01"),
        rec("c|1", 0, mobile="+12126494502", updated_at="2019-01-01"),
        rec("a|2", 1, mobile=dummy, mobile_flag=flag),
    )
    assert golden.loc[0, "mobile"] == golden.loc[0, "phone"] == "+12126494502"
    assert src(lineage, 0, "mobile") == ("c|1", "valid_over_possible")
    assert golden.loc[1, "mobile"] == dummy  # the only number: published, not dropped
    assert src(lineage, 1, "mobile")[1] == "only_value"


def test_full_tie_goes_to_the_smallest_record_key():
    golden, lineage = build(rec("b|1", 0, company="Beta"), rec("a|1", 0, company="Alpha"))
    assert golden.loc[0, "company"] == "Alpha"
    assert src(lineage, 0, "company") == ("a|1", "record_key")


def test_lineage_points_at_the_record_holding_each_value():
    rows = [
        rec(
            "cn|1",
            0,
            full_name="谢雪冬",
            first_name="雪冬",
            last_name="谢",
            name_script="han",
            mobile="+8613800138000",
            city="广州市",
            country="CN",
        ),
        rec(
            "web|1",
            0,
            full_name="Xie Xuedong",
            name_script="latin",
            email="x@163.com",
            birth_date="1985-03-07",
            address="385 Tianhe Lu",
            city="Guangzhou",
            country="CN",
            updated_at="2024-01-01",
        ),
    ]
    golden, lineage = build(*rows)
    by_key = pd.DataFrame(rows).set_index("record_key")
    column = {"street": "address_std", "state_or_province": "state_std", "phone": "phone_std"}
    for r in lineage.itertuples():
        assert golden.loc[r.cluster, r.field] == r.value
        std = column.get(r.field, f"{r.field}_std")
        if r.field != "phone":
            assert by_key.at[r.record_key, std] == r.value, r
    filled = {
        c for c in GOLDEN_COLUMNS if c not in ("cluster", "record_count", "sources") and golden.loc[0, c] is not None
    }
    assert set(lineage["field"]) == filled


def test_shuffled_input_gives_identical_golden_and_lineage():
    rows = [
        rec(
            f"s{i % 3}|{i}",
            i // 4,
            email=f"e{i % 2}@x.com",
            mobile=f"+1555000{i % 3}",
            updated_at=f"2024-01-{1 + i % 5:02d}",
            city=["A", "B"][i % 2],
        )
        for i in range(24)
    ]
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


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"fields": {"email": ["loudest"]}}, "unknown strategy 'loudest'"),
        ({"fields": {"street": ["most_recent"]}}, "chosen with the 'address' group"),
        ({"fields": {"shoe": ["most_recent"]}}, "not a master field"),
        ({"fields": {"email": []}}, "non-empty list"),
        ({"source_priority": "crm"}, "source_priority must be a list"),
        ({"colour": 1}, "unknown key"),
    ],
)
def test_bad_rules_are_rules_errors(bad, message):
    with pytest.raises(RulesError, match=message):
        survivorship_settings(Rules(survivorship=bad))


def test_shipped_rules_file_is_valid():
    cfg = survivorship_settings(load_rules())
    assert cfg["chains"]["name"][:3] == [("valid_only", None), ("prefer_script", "han"), ("formal_name", None)]
    assert cfg["similarity"] == {"max_edits": 1, "variant_weight": 0.5}
    assert "junk" in cfg["exclude_flags"]


def test_factory_scenarios_through_standardize():
    """Real standardize output: the Hanzi/pinyin customer gets the Hanzi name, the phone is the
    mobile, and every value has lineage."""
    import factories
    from crmclean.standardize import standardize

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
    assert (
        lineage.merge(golden.melt(id_vars="cluster", var_name="field", value_name="v"), on=["cluster", "field"])
        .eval("value == v")
        .all()
    )


def test_no_records_gives_empty_frames_with_the_contract_columns():
    records = pd.DataFrame({"record_key": pd.Series(dtype=object), "source": pd.Series(dtype=object)})
    clusters = pd.DataFrame({"record_key": pd.Series(dtype=object), "cluster": pd.Series(dtype="int64")})
    golden, lineage = build_golden(records, clusters, Rules())
    assert golden.empty and list(golden.columns) == list(GOLDEN_COLUMNS)
    assert lineage.empty and list(lineage.columns) == list(LINEAGE_COLUMNS)


# ------------------------------------------------------------------ issue 3: contact strategies
def rec2(key: str, cluster: int, extra: dict | None = None, **values) -> dict:
    """rec() plus columns outside FIELDS (match keys, name keys, phone flags) given as is."""
    return {**rec(key, cluster, **values), **(extra or {})}


def test_a_typed_mobile_beats_a_more_recent_guessed_number():
    golden, lineage = build(
        # web "Phone" (US, type unknown) is the landline; the sales "Mobile" column is typed
        rec2("web|1", 0, {"mobile_flag": "from_phone;type_guessed"}, mobile="+16025067686", updated_at="2023-01-01"),
        rec2("sales|1", 0, mobile="+16023337258", created_at="2019-01-01"),
        # two guessed numbers: nothing to tell them apart but recency
        rec2("web|2", 1, {"mobile_flag": "from_phone;type_guessed"}, mobile="+12155550100", updated_at="2020-01-01"),
        rec2("web|3", 1, {"mobile_flag": "from_phone;type_guessed"}, mobile="+12155550199", updated_at="2021-01-01"),
    )
    assert golden.loc[0, "mobile"] == golden.loc[0, "phone"] == "+16023337258"
    assert src(lineage, 0, "mobile") == ("sales|1", "type_evidence")
    assert golden.loc[1, "mobile"] == "+12155550199"
    assert src(lineage, 1, "mobile")[1] == "most_recent"


def test_a_guessed_number_known_elsewhere_as_the_landline_is_not_the_mobile():
    guessed = {"mobile_flag": "from_phone;type_guessed"}
    golden, lineage = build(
        # the CN CRM has both numbers typed; the newer web record guessed the landline as mobile
        rec2("cn|1", 0, mobile="+12672346297", landline="+12158224910", created_at="2023-11-07"),
        rec2("web|1", 0, guessed, mobile="+12158224910", updated_at="2023-11-30"),
        # a guessed number that is NOT the known landline counts as a mobile: recency decides
        rec2("cn|2", 1, mobile="+13125550100", landline="+13125550111", created_at="2012-01-01"),
        rec2("web|2", 1, guessed, mobile="+13125550177", updated_at="2020-01-01"),
    )
    assert golden.loc[0, "mobile"] == "+12672346297" and golden.loc[0, "landline"] == "+12158224910"
    assert src(lineage, 0, "mobile") == ("cn|1", "type_evidence")
    assert golden.loc[1, "mobile"] == "+13125550177"
    assert src(lineage, 1, "mobile") == ("web|2", "most_recent")


def test_a_record_with_an_old_address_loses_the_mobile():
    golden, lineage = build(
        # moved customer: the stale CRM record (old ZIP, typed mobile) vs the web record (new ZIP)
        rec2("cn|1", 0, mobile="+17732332929", city="Chicago", postal_code="60601", created_at="2011-01-12"),
        rec2(
            "web|1",
            0,
            {"mobile_flag": "from_phone;type_guessed"},
            mobile="+13059094080",
            city="Miami",
            postal_code="33101",
            updated_at="2019-05-06",
        ),
        # a record without a postal code is not held against
        rec2("cn|2", 1, mobile="+17735550100", created_at="2011-01-12"),
        rec2(
            "web|2",
            1,
            {"mobile_flag": "from_phone;type_guessed"},
            mobile="+13055550100",
            city="Miami",
            postal_code="33101",
            updated_at="2019-05-06",
        ),
        rules=load_rules(),  # the shipped address chain: the most recent address is the master's
    )
    assert golden.loc[0, "postal_code"] == "33101"
    assert golden.loc[0, "mobile"] == "+13059094080"
    assert src(lineage, 0, "mobile") == ("web|1", "same_address")
    assert golden.loc[1, "mobile"] == "+17735550100"
    assert src(lineage, 1, "mobile") == ("cn|2", "type_evidence")


def test_without_postal_codes_the_city_tells_an_old_address():
    guessed = {"mobile_flag": "from_phone;type_guessed"}
    golden, lineage = build(
        # the stale legacy record gives no postal code but another city (and state): it loses
        rec2("cn|1", 0, mobile="+16695615808", city="San Jose", state="CA", created_at="2011-06-16"),
        rec2("web|1", 0, guessed, mobile="+15125740021", city="Austin", state="TX", updated_at="2018-11-09"),
        # no city either: the state alone decides
        rec2("cn|2", 1, mobile="+12152537133", state="PA", created_at="2013-09-19"),
        rec2("web|2", 1, guessed, mobile="+12179224313", state="IL", updated_at="2017-04-05"),
        # same city, postal code on one side only: nothing is held against the typed number
        rec2("cn|3", 2, mobile="+12174837700", city="Springfield", created_at="2011-07-29"),
        rec2(
            "web|3", 2, guessed, mobile="+13478050801", city="Springfield", postal_code="62713", updated_at="2024-03-12"
        ),
        rules=load_rules(),
    )
    assert golden.loc[0, "city"] == "Austin"
    assert golden.loc[0, "mobile"] == "+15125740021"
    assert src(lineage, 0, "mobile") == ("web|1", "same_address")
    assert golden.loc[1, "mobile"] == "+12179224313"
    assert src(lineage, 1, "mobile") == ("web|2", "same_address")
    assert golden.loc[2, "mobile"] == "+12174837700"
    assert src(lineage, 2, "mobile") == ("cn|3", "type_evidence")


GUESSED = {"mobile_flag": "from_phone;type_guessed"}
# a household: the spouse's records give the family's landline, in the legacy landline column
# and in the web form's untyped "Phone"
SPOUSE = [
    rec2("cn|9", 9, mobile="+13125550148", landline="+13125786933", created_at="2020-02-02"),
    rec2("web|9", 9, GUESSED, mobile="+13125786933", updated_at="2021-03-03"),
]


def test_a_number_other_customers_give_is_not_the_mobile():
    golden, lineage = build(
        # the sales "Mobile" column holds the family's landline; the web form the true mobile
        rec2("sales|1", 1, mobile="+13125786933", created_at="2022-07-25"),
        rec2("web|1", 1, GUESSED, mobile="+13127652711", updated_at="2020-01-01"),
        # the customer's own landline given as mobile and as landline by one record counts once
        rec2("cn|2", 2, mobile="+12155550111", landline="+12155550111", created_at="2022-01-01"),
        rec2("web|2", 2, GUESSED, mobile="+12155550122", updated_at="2020-01-01"),
        *SPOUSE,
        rules=load_rules(),
    )
    assert golden.loc[1, "mobile"] == golden.loc[1, "phone"] == "+13127652711"
    assert src(lineage, 1, "mobile") == ("web|1", "own_number")
    assert src(lineage, 2, "mobile") == ("web|2", "type_evidence")  # not own_number
    # the spouse's own mobile is not held against: only its landline is given by others
    assert golden.loc[9, "mobile"] == "+13125550148"
    assert golden.loc[9, "landline"] == "+13125786933"  # a shared landline is still a landline


def test_a_build_over_part_of_the_master_counts_numbers_data_wide():
    from crmclean.survivorship import spelling_counts

    rows = [
        rec2("sales|1", 1, mobile="+13125786933", created_at="2022-07-25"),
        rec2("web|1", 1, GUESSED, mobile="+13127652711", updated_at="2020-01-01"),
    ]
    everything, part = pd.DataFrame([*rows, *SPOUSE]), pd.DataFrame(rows)
    rules = load_rules()
    spelling = spelling_counts(everything.drop(columns="cluster"), rules)
    golden, lineage = build_golden(part.drop(columns="cluster"), part[["record_key", "cluster"]], rules, spelling)
    assert golden["mobile"].tolist() == ["+13127652711"]
    assert src(lineage, 1, "mobile") == ("web|1", "own_number")
    alone, _ = build_golden(part.drop(columns="cluster"), part[["record_key", "cluster"]], rules)
    assert alone["mobile"].tolist() == ["+13125786933"]  # nobody else in sight: the typed column


def test_one_number_read_in_two_countries_keeps_the_customers_country():
    golden, lineage = build(
        # "15125687019" in a Chinese export with no address country: read as the CN mobile
        # +86 151 2568 7019; the web form of the same Chicago customer reads it +1 512-568-7019
        rec2("cn|1", 1, mobile="+8615125687019", city="Chicago", created_at="2016-11-20"),
        rec2("web|1", 1, GUESSED, mobile="+15125687019", city="CHICAGO", country="US", updated_at="2019-03-13"),
        # the same, the master address (the newer, Chinese export's) giving no country: the
        # one country the customer's records give decides
        rec2("cn|4", 4, mobile="+8615125687031", city="Chicago", created_at="2019-03-13"),
        rec2("web|4", 4, GUESSED, mobile="+15125687031", city="CHICAGO", country="US", updated_at="2016-11-20"),
        # the other way round (issue 13): a Chinese mobile without +86 in an English-headed export
        rec2("sales|2", 2, mobile="+13127652711", city="上海市", country="CN", created_at="2023-01-01"),
        rec2("cn|2", 2, mobile="+8613127652711", city="上海市", country="CN", created_at="2019-01-01"),
        # two different numbers, no shared digits: the rule has nothing to say
        rec2("cn|3", 3, mobile="+8615125687042", city="Chicago", created_at="2019-03-13"),
        rec2("web|3", 3, GUESSED, mobile="+13125550142", city="CHICAGO", country="US", updated_at="2016-11-20"),
        rules=load_rules(),
    )
    assert golden.loc[1, "country"] == "US" and golden.loc[1, "mobile"] == "+15125687019"
    assert src(lineage, 1, "mobile") == ("web|1", "home_country")
    assert golden.loc[4, "country"] is None and golden.loc[4, "mobile"] == "+15125687031"
    assert src(lineage, 4, "mobile") == ("web|4", "home_country")
    assert golden.loc[2, "mobile"] == "+8613127652711"
    assert src(lineage, 2, "mobile") == ("cn|2", "home_country")
    assert golden.loc[3, "mobile"] == "+8615125687042"  # the typed number, as without the rule
    assert src(lineage, 3, "mobile") == ("cn|3", "type_evidence")


def test_same_address_compares_cities_case_blind():
    golden, lineage = build(
        # one export keeps the city as written, the other upper-cases it: the same city, so the
        # guessed web number is not held against, and the typed number wins on its type
        rec2("cn|1", 1, mobile="+13055550123", city="Miami", created_at="2016-09-16"),
        rec2("web|1", 1, GUESSED, mobile="+13059170524", city="MIAMI", updated_at="2018-01-11"),
        rules=load_rules(),
    )
    assert golden.loc[1, "city"] == "MIAMI"  # the most recent address
    assert golden.loc[1, "mobile"] == "+13055550123"
    assert src(lineage, 1, "mobile") == ("cn|1", "type_evidence")


def email(
    key: str,
    cluster: int,
    address: str,
    match_key: str | None = None,
    first=None,
    last=None,
    born=None,
    flag=None,
    when=None,
) -> dict:
    names = {"first_name_key": (first or "").lower() or None, "last_name_key": (last or "").lower() or None}
    return rec2(
        key,
        cluster,
        {"email_key": match_key or address, **names},
        email=address,
        first_name=first,
        last_name=last,
        birth_date=born,
        email_flag=flag,
        updated_at=when,
    )


def test_a_typo_domain_loses_to_the_domain_the_data_uses_even_unknown_to_the_typo_table():
    from crmclean.standardize.emails import standardize_email

    assert standardize_email("jli@gmaik.com")[0] == "jli@gmaik.com"  # not a known typo: kept as is
    others = [email(f"z|{i}", 100 + i, f"user{i}@gmail.com") for i in range(3)]
    others += [email("y|1", 200, "wang@163.com"), email("y|2", 201, "zhao@163.com")]
    golden, lineage = build(
        email("a|1", 0, "jli@gmaik.com", when="2025-01-01"),
        email("b|1", 0, "jli@gmail.com", when="2016-01-01"),
        # two real domains two edits apart: no typo, the chain goes on (most recent)
        email("a|2", 1, "qli@163.com", when="2016-01-01"),
        email("b|2", 1, "qli@126.com", when="2025-01-01"),
        *others,
    )
    assert golden["email"].loc[[0, 1]].tolist() == ["jli@gmail.com", "qli@126.com"]
    assert src(lineage, 0, "email") == ("b|1", "common_domain")
    assert src(lineage, 1, "email") == ("b|2", "most_recent")


def test_email_consensus_on_the_match_key_then_the_name_fit():
    def rows(**names):
        return [
            dict(r, **names)
            for r in (
                # two records agree on the mailbox (gmail ignores dots); the newest record has another one
                email("a|1", 0, "jordan.levi3@gmail.com", "jordanlevi3@gmail.com", when="2016-01-01"),
                email("a|2", 0, "j.ordan.levi3@gmail.com", "jordanlevi3@gmail.com", when="2024-01-01"),
                email("a|3", 0, "jlevi@work.com", when="2025-01-01"),
            )
        ]

    # the agreed mailbox, and within it the spelling with fewer ignored dots
    golden, lineage = build(*rows())
    assert golden.loc[0, "email"] == "jordan.levi3@gmail.com"
    assert src(lineage, 0, "email") == ("a|1", "plain_mailbox")
    # without plain_mailbox, the customer's name: the spelling without a dot inside "jordan"
    chain = ["valid_only", {"most_frequent": "match_key"}, "identity_match", "most_recent"]
    by_name = Rules(survivorship={"fields": {"email": chain}})
    golden, lineage = build(*rows(first_name_key="jordan", last_name_key="levi"), rules=by_name)
    assert golden.loc[0, "email"] == "jordan.levi3@gmail.com"
    assert src(lineage, 0, "email") == ("a|1", "identity_match")
    # exact-value frequency alone (the old chain) would have taken the newest, other mailbox
    old = Rules(survivorship={"fields": {"email": ["valid_only", "most_frequent", "most_recent"]}})
    assert build(*rows(), rules=old)[0].loc[0, "email"] == "jlevi@work.com"


def test_identity_match_drops_typos_against_name_words_and_birth_year():
    golden, lineage = build(
        # a one-letter typo inside the pinyin given name, in the newer record
        email("cn|1", 0, "cai_tongirong87@163.com", first="Tongrong", last="Cai", when="2023-04-09"),
        email("web|1", 0, "cai_tongrong87@163.com", first="Tongrong", last="Cai", when="2016-12-22"),
        # swapped year digits: the birth year decides
        email("cn|2", 1, "haoxilin1987@sina.com", first="Xilin", last="Hao", born="1978-05-02", when="2022-05-01"),
        email("web|2", 1, "haoxilin1978@sina.com", first="Xilin", last="Hao", born="1978-05-02", when="2018-08-28"),
        # a second address with other digits is no typo of the first: recency decides
        email("web|3", 2, "amy.lee84@x.com", first="Amy", last="Lee", born="1984-01-01", when="2018-01-01"),
        email("web|4", 2, "amylee85@y.com", first="Amy", last="Lee", born="1984-01-01", when="2020-01-01"),
        # nickname records: the e-mail uses the canonical first name (first_name_key)
        rec2(
            "web|5",
            3,
            {"first_name_key": "robert", "last_name_key": "smith"},
            email="robert.smith@x.com",
            first_name="Bob",
            last_name="Smith",
            updated_at="2018-01-01",
        ),
        rec2(
            "web|6",
            3,
            {"first_name_key": "robert", "last_name_key": "smith"},
            email="robert.smth@x.com",
            first_name="Bob",
            last_name="Smith",
            updated_at="2020-01-01",
        ),
    )
    assert golden.loc[0, "email"] == "cai_tongrong87@163.com"
    assert src(lineage, 0, "email") == ("web|1", "identity_match")
    assert golden.loc[1, "email"] == "haoxilin1978@sina.com"
    assert src(lineage, 1, "email") == ("web|2", "identity_match")
    assert golden.loc[2, "email"] == "amylee85@y.com"
    assert src(lineage, 2, "email") == ("web|4", "most_recent")
    assert golden.loc[3, "email"] == "robert.smith@x.com"


def test_most_similar_takes_the_spelling_the_others_are_typos_of():
    golden, lineage = build(
        email("cn|1", 0, "687380253@qq.com", when="2021-03-09"),
        email("web|1", 0, "678380253@qq.com", when="2019-12-26"),
        email("sales|1", 0, "678382053@qq.com", when="2021-05-13"),
        # two spellings one edit apart: no evidence, recency decides
        email("cn|2", 1, "480423971@qq.com", when="2017-07-09"),
        email("sales|2", 1, "48042971@qq.com", when="2022-11-15"),
    )
    assert golden.loc[0, "email"] == "678380253@qq.com"
    assert src(lineage, 0, "email") == ("web|1", "most_similar")
    assert golden.loc[1, "email"] == "48042971@qq.com"


def test_plain_gmail_address_beats_its_plus_tag_and_domain_fix_is_kept():
    golden, _ = build(
        email(
            "a|1",
            0,
            "samantha_peterson+news@gmail.com",
            "samanthapeterson@gmail.com",
            first="Samantha",
            last="Peterson",
            flag="plus_tag",
            when="2024-01-01",
        ),
        email(
            "a|2",
            0,
            "samantha_peterson@gmail.com",
            "samanthapeterson@gmail.com",
            first="Samantha",
            last="Peterson",
            when="2016-01-01",
        ),
        # the dot variant vs the domain-typo-fixed original: the name decides before prefer_clean
        email(
            "b|1",
            1,
            "samuel.bak.er@gmail.com",
            "samuelbaker@gmail.com",
            first="Samuel",
            last="Baker",
            when="2020-12-14",
        ),
        email(
            "b|2",
            1,
            "samuel.baker@gmail.com",
            "samuelbaker@gmail.com",
            first="Samuel",
            last="Baker",
            flag="changed;typo_fixed",
            when="2021-06-29",
        ),
    )
    assert golden.loc[0, "email"] == "samantha_peterson@gmail.com"
    assert golden.loc[1, "email"] == "samuel.baker@gmail.com"


def test_most_frequent_argument_is_checked():
    with pytest.raises(RulesError, match="most_frequent takes no argument or 'match_key'"):
        survivorship_settings(Rules(survivorship={"fields": {"email": [{"most_frequent": "loudest"}]}}))
    cfg = survivorship_settings(load_rules())
    assert ("most_frequent", "match_key") in cfg["chains"]["email"]
    assert cfg["chains"]["mobile"][:6] == [
        ("valid_only", None),
        ("valid_over_possible", None),
        ("home_country", None),
        ("same_address", None),
        ("own_number", None),
        ("type_evidence", None),
    ]


# ------------------------------------------------------------------ names (issue 13)


def name_rec(key: str, cluster: int, full: str, first: str | None, last: str | None, **values) -> dict:
    """A Latin-name record; name_key as standardize writes it (nicknames mapped, sorted words)."""
    from crmclean.standardize.names import nickname_map

    words = [nickname_map().get(w.lower(), w.lower()) for w in (first or "", last or "") if w]
    row = rec(key, cluster, full_name=full, first_name=first, last_name=last, name_script="latin", **values)
    return row | {"name_key": " ".join(sorted(words)) or None}


def names_of(*rows: dict) -> dict[int, str]:
    golden, _ = build(*rows)
    return golden["full_name"].to_dict()


def test_typo_variant_loses_to_the_spelling_the_others_agree_on():
    rows = [
        name_rec("a|1", 1, "Benjamin Rase", "Benjamin", "Rase"),
        name_rec("b|1", 1, "Benjamin Rose", "Benjamin", "Rose"),
        name_rec("c|1", 1, "Benjamin Rose", "Benjamin", "Rose"),
        # three spellings, two of them typos of the third
        name_rec("a|2", 2, "Jesry Andrews", "Jesry", "Andrews"),
        name_rec("b|2", 2, "Jerry Andrews", "Jerry", "Andrews"),
        name_rec("c|2", 2, "Jeruy Andrews", "Jeruy", "Andrews"),
    ]
    assert names_of(*rows) == {1: "Benjamin Rose", 2: "Jerry Andrews"}


def test_one_to_one_typo_is_decided_by_the_spelling_common_in_the_data():
    others = [name_rec(f"z|{i}", 100 + i, "Kenneth Jackson", "Kenneth", "Jackson") for i in range(3)]
    rows = [
        name_rec("a|1", 1, "Kenneth Jacksjon", "Kenneth", "Jacksjon"),
        name_rec("b|1", 1, "Kenneth Jackson", "Kenneth", "Jackson"),
    ]
    assert names_of(*rows, *others)[1] == "Kenneth Jackson"


def test_formal_name_beats_its_nicknames_even_outnumbered():
    rows = [
        name_rec("a|1", 1, "Mike Johnson", "Mike", "Johnson"),
        name_rec("b|1", 1, "Mike Johnson", "Mike", "Johnson"),
        name_rec("c|1", 1, "Michael Johnson", "Michael", "Johnson"),
        name_rec("a|2", 2, "Sam Lewis", "Sam", "Lewis"),
        name_rec("b|2", 2, "Samantha Lewis", "Samantha", "Lewis"),
        name_rec("a|3", 3, "Jack Cunningham", "Jack", "Cunningham"),
        name_rec("b|3", 3, "John Cunningham", "John", "Cunningham"),
        # a typo of the formal name is no nickname of it: Phillp is not the formal Phillip's nickname
        name_rec("a|4", 4, "Phillp Moreno", "Phillp", "Moreno"),
        name_rec("b|4", 4, "Phillip Moreno", "Phillip", "Moreno"),
    ]
    assert names_of(*rows) == {1: "Michael Johnson", 2: "Samantha Lewis", 3: "John Cunningham", 4: "Phillip Moreno"}
    # the table's formal name one letter longer is still the formal one (steve -> steven); a
    # one-letter respelling the table lists (katherine -> catherine) is no nickname: the tie stays
    rows = [
        name_rec("a|5", 5, "Steve Ortiz", "Steve", "Ortiz"),
        name_rec("b|5", 5, "Steve Ortiz", "Steve", "Ortiz"),
        name_rec("c|5", 5, "Steven Ortiz", "Steven", "Ortiz"),
        name_rec("a|6", 6, "Katherine Soto", "Katherine", "Soto"),
        name_rec("b|6", 6, "Catherine Soto", "Catherine", "Soto"),
    ]
    golden, lineage = build(*rows)
    assert golden["full_name"].to_dict() == {5: "Steven Ortiz", 6: "Katherine Soto"}
    assert src(lineage, 5, "full_name")[1] == "formal_name" and src(lineage, 6, "full_name")[1] != "formal_name"


def test_one_full_name_parsed_two_ways_still_votes_as_one():
    # "St. John" read as the surname by one export, as "John" (with St. dropped) by another: the
    # two records showing the same full name agree; the typo "Stt." is longer, not better
    rows = [
        name_rec("a|1", 1, "Jayden St. John", "Jayden", "St. John"),
        name_rec("b|1", 1, "Jayden St. John", "Jayden", "John"),
        name_rec("c|1", 1, "Jayden Stt. John", "Jayden", "John"),
    ]
    assert names_of(*rows)[1] == "Jayden St. John"


def test_accented_form_wins_over_its_unaccented_twin_and_missing_parts_lose():
    rows = [
        name_rec("a|1", 1, "Lucia Gutierrez", "Lucia", "Gutierrez"),
        name_rec("b|1", 1, "Lucia Gutierrez", "Lucia", "Gutierrez"),
        name_rec("c|1", 1, "Lucía Gutiérrez", "Lucía", "Gutiérrez"),
        name_rec("a|2", 2, "Pérez", None, "Pérez"),
        name_rec("b|2", 2, "Óscar Pérez", "Óscar", "Pérez"),
    ]
    assert names_of(*rows) == {1: "Lucía Gutiérrez", 2: "Óscar Pérez"}


def test_hanzi_over_pinyin_and_all_junk_names_publish_nothing_with_a_flag():
    rows = [
        name_rec("a|1", 1, "Tingping Hu", "Tingping", "Hu"),
        name_rec("b|1", 1, "Tingping Hu", "Tingping", "Hu"),
        rec("c|1", 1, full_name="胡婷平", first_name="婷平", last_name="胡", name_script="han")
        | {"name_key": "hu tingping"},
        rec("a|2", 2, full_name=None, email="x@y.com", full_name_flag="junk"),
        rec("b|2", 2, full_name=None, full_name_flag="placeholder;junk"),
    ]
    golden, lineage = build(*rows)
    names = golden["full_name"].to_dict()
    assert names[1] == "胡婷平" and names[2] is None
    flagged = lineage[(lineage["cluster"] == 2) & (lineage["field"] == "full_name")]
    assert flagged[["value", "rule"]].values.tolist() == [["", "all_junk"]]


def han_rec(key: str, cluster: int, last: str, given: str, gender: str | None = None) -> dict:
    """A Hanzi-name record; name_key: the pinyin (眉山 and 梅山 both read "meishan")."""
    row = rec(key, cluster, full_name=last + given, first_name=given, last_name=last, name_script="han")
    sound = {"眉": "mei", "梅": "mei", "山": "shan", "王": "wang"}
    return row | {
        "gender_std": gender,
        "name_key": " ".join("".join(sound.get(c, c) for c in p) for p in (last, given)),
    }


# other customers: women's given names start with 梅 (plum), men's with 眉 (brow) in this data
HAN_BACKGROUND = [
    han_rec("z|1", 101, "李", "梅英", "F"),
    han_rec("z|2", 102, "赵", "梅兰", "F"),
    han_rec("z|3", 103, "陈", "梅", "F"),
    han_rec("z|4", 104, "刘", "眉", "M"),
    han_rec("z|5", 105, "孙", "眉山", "M"),
]


def test_hanzi_homophone_tie_goes_to_the_characters_this_gender_uses():
    rows = [
        # one record each, same sound: the characters decide, by the customer's gender
        han_rec("a|1", 1, "王", "眉山", "F"),
        han_rec("b|1", 1, "王", "梅山"),
        han_rec("a|2", 2, "王", "眉山", "M"),
        han_rec("b|2", 2, "王", "梅山"),
        # the majority still wins over the characters
        han_rec("a|3", 3, "王", "眉山", "F"),
        han_rec("b|3", 3, "王", "眉山"),
        han_rec("c|3", 3, "王", "梅山"),
    ]
    golden, lineage = build(*rows, *HAN_BACKGROUND)
    assert golden["full_name"].loc[[1, 2, 3]].tolist() == ["王梅山", "王眉山", "王眉山"]
    assert src(lineage, 1, "full_name") == ("b|1", "common_characters")
    assert src(lineage, 2, "full_name") == ("a|2", "common_characters")
    assert src(lineage, 3, "full_name")[1] == "most_frequent"


def test_a_build_over_part_of_the_master_counts_characters_data_wide():
    from crmclean.survivorship import spelling_counts

    rows = [han_rec("a|1", 1, "王", "眉山", "F"), han_rec("b|1", 1, "王", "梅山")]
    everything = pd.DataFrame([*rows, *HAN_BACKGROUND])
    part = pd.DataFrame(rows)
    spelling = spelling_counts(everything.drop(columns="cluster"), Rules())
    golden, _ = build_golden(part.drop(columns="cluster"), part[["record_key", "cluster"]], Rules(), spelling)
    assert golden["full_name"].tolist() == ["王梅山"]
    alone, _ = build_golden(part.drop(columns="cluster"), part[["record_key", "cluster"]], Rules())
    assert alone["full_name"].tolist() == ["王眉山"]  # no counts: the tie falls through to record_key


def test_lineage_lists_the_values_that_lost_with_their_records():
    import json

    rows = [
        name_rec("a|1", 1, "Benjamin Rase", "Benjamin", "Rase", email="ben@x.com"),
        name_rec("b|1", 1, "Benjamin Rose", "Benjamin", "Rose", email="ben@x.com"),
        name_rec("c|1", 1, "Benjamin Rose", "Benjamin", "Rose"),
    ]
    _, lineage = build(*rows)
    row = lineage[lineage["field"] == "full_name"].iloc[0]
    assert row["value"] == "Benjamin Rose" and row["rule"] == "medoid"
    assert json.loads(row["alternatives"]) == [{"value": "Benjamin Rase", "records": ["a|1"]}]
    assert lineage.loc[lineage["field"] == "email", "alternatives"].isna().all()  # nothing lost


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"similarity": {"max_edits": 9}}, "max_edits"),
        ({"similarity": {"variant_weight": 2}}, "variant_weight"),
        ({"similarity": {"max_edit": 1}}, "max_edits"),
    ],
)
def test_similarity_settings_are_validated(bad, message):
    with pytest.raises(RulesError, match=message):
        survivorship_settings(Rules(survivorship=bad))


# ------------------------------------------------------------------ issue 13: names composed from components
SPELLING_BACKGROUND = [name_rec(f"z|{i}", 200 + i, "Kenneth Johnston", "Kenneth", "Johnston") for i in range(3)] + [
    name_rec(f"y|{i}", 300 + i, "Jane Smith", "Jane", "Smith") for i in range(3)
]


def test_the_name_is_composed_when_its_best_parts_come_from_different_records():
    import json

    rows = [
        # the formal given name in one record, the common spelling of the family name in the other
        name_rec("a|1", 1, "Mike Johnston", "Mike", "Johnston"),
        name_rec("b|1", 1, "Michael Jonhston", "Michael", "Jonhston"),
        # each word's accents in another record
        name_rec("a|2", 2, "María Rodriguez", "María", "Rodriguez"),
        name_rec("b|2", 2, "Maria Rodríguez", "Maria", "Rodríguez"),
        # the middle name of the chosen record stays
        name_rec("a|3", 3, "Mike Ann Johnston", "Mike", "Johnston") | {"full_name_std": "Mike Ann Johnston"},
        name_rec("b|3", 3, "Michael Ann Jonhston", "Michael", "Jonhston"),
        # a singleton is published as it is, typo and all
        name_rec("a|4", 4, "Jon Jonhston", "Jon", "Jonhston"),
    ]
    golden, lineage = build(*rows, *SPELLING_BACKGROUND)
    assert golden["full_name"].loc[[1, 2, 3, 4]].tolist() == [
        "Michael Johnston",
        "María Rodríguez",
        "Michael Ann Johnston",
        "Jon Jonhston",
    ]
    assert golden.loc[1, ["first_name", "last_name"]].tolist() == ["Michael", "Johnston"]
    # lineage names the rule and both records: the chosen record's layout, the donor's family name
    assert src(lineage, 1, "full_name") == ("b|1", "composed")
    assert src(lineage, 1, "first_name")[0] == "b|1"
    assert src(lineage, 1, "last_name") == ("a|1", "composed:common_spelling")
    assert src(lineage, 2, "last_name") == ("b|2", "composed:prefer_accents")
    assert src(lineage, 4, "full_name") == ("a|4", "only_value")
    lost = lineage[(lineage["cluster"] == 1) & (lineage["field"] == "full_name")]["alternatives"].iloc[0]
    assert {a["value"] for a in json.loads(lost)} == {"Mike Johnston", "Michael Jonhston"}


def test_composition_takes_no_other_name_no_junk_and_can_be_switched_off():
    rows = [
        # a spouse's records: John is no spelling of Jane, however many records hold it
        name_rec("a|1", 1, "Jane Smith", "Jane", "Smith"),
        name_rec("b|1", 1, "John Smiht", "John", "Smiht"),
        name_rec("c|1", 1, "John Smyth", "John", "Smyth"),
        # the better family name sits only in a record whose full name is junk: never taken
        name_rec("a|2", 2, "Kenneth Jonhston", "Kenneth", "Jonhston"),
        name_rec("b|2", 2, None, None, "Johnston", full_name_flag="junk"),
        # the parts written the other way round are no spellings of the part in that slot: never
        # "Wang Wang" (Wang is one letter from Hang, and a common given name elsewhere)
        name_rec("a|4", 4, "Hang Wang", "Hang", "Wang"),
        name_rec("b|4", 4, "Wang Hang", "Wang", "Hang"),
        *(name_rec(f"x|{i}", 400 + i, "Wang Li", "Wang", "Li") for i in range(3)),
        # pinyin parts never enter a Hanzi name
        rec("a|3", 3, full_name="谢雪冬", first_name="雪冬", last_name="谢", name_script="han")
        | {"name_key": "xie xuedong"},
        name_rec("b|3", 3, "Xuedong Xie", "Xuedong", "Xie"),
        name_rec("c|3", 3, "Xuedong Xie", "Xuedong", "Xie"),
    ]
    golden, lineage = build(*rows, *SPELLING_BACKGROUND)
    assert golden["full_name"].loc[[1, 2, 3]].tolist() == ["Jane Smith", "Kenneth Jonhston", "谢雪冬"]
    assert golden.loc[4, "full_name"] in ("Hang Wang", "Wang Hang")
    assert not lineage["rule"].str.startswith("composed").any()
    split = [
        name_rec("a|1", 1, "Mike Johnston", "Mike", "Johnston"),
        name_rec("b|1", 1, "Michael Jonhston", "Michael", "Jonhston"),
    ]
    off, _ = build(*split, *SPELLING_BACKGROUND, rules=Rules(survivorship={"compose_name": False}))
    assert off.loc[1, "full_name"] == "Michael Jonhston"
    # a chain without prefer_script: the Hanzi name wins on its characters, the pinyin surname
    # (same match key, more records) still never enters it
    keys = {"first_name_key": "xuedong", "last_name_key": "xie"}
    mixed = [row | keys for row in rows if row["cluster"] == 3]
    chain = ["valid_only", "common_characters", "most_frequent", "most_recent"]
    han, _ = build(*mixed, rules=Rules(survivorship={"fields": {"name": chain}}))
    assert han.loc[3, ["full_name", "last_name"]].tolist() == ["谢雪冬", "谢"]


# ------------------------------------------------------------------ issue 13: birth dates
def test_a_date_read_by_convention_loses_to_its_swap_read_without_doubt():
    # the web export is month-first; "5/10/2005" was a day-first slip, the CN export is sure
    golden, lineage = build(
        rec2("cn|1", 0, {"birth_date": "2005.10.5"}, birth_date="2005-10-05", birth_date_flag="changed"),
        rec2("web|1", 0, {"birth_date": "5/10/2005"}, birth_date="2005-05-10", birth_date_flag="changed"),
        rec2("cn|2", 1, {"birth_date": "2005.10.5"}, birth_date="2005-10-05"),
        rec2("web|2", 1, {"birth_date": "5/30/2005"}, birth_date="2005-05-30"),  # no swap: no evidence
    )
    assert golden.loc[0, "birth_date"] == "2005-10-05"
    assert src(lineage, 0, "birth_date") == ("cn|1", "unambiguous_date")
    assert src(lineage, 1, "birth_date")[1] == "record_key"


def test_near_majority_gathers_one_digit_typos_and_swaps():
    chain = ["valid_only", "near_majority", "most_frequent"]  # available, not in the shipped chain
    golden, lineage = build(
        rec("a|1", 0, birth_date="1984-03-07"),
        rec("a|2", 0, birth_date="1984-03-08"),  # one digit off the first
        rec("a|3", 0, birth_date="1984-07-03"),  # its day/month swap
        rec("a|4", 0, birth_date="1991-11-20"),  # unrelated
        rules=Rules(survivorship={"fields": {"birth_date": chain}}),
    )
    assert golden.loc[0, "birth_date"] == "1984-03-07"
    assert src(lineage, 0, "birth_date") == ("a|1", "near_majority")


def test_date_strategies_are_validated_and_shown_in_the_defaults():
    settings = survivorship_settings(Rules())
    names = [s for s, _ in settings["chains"]["birth_date"]]
    assert "unambiguous_date" in names
    with pytest.raises(RulesError, match="did you mean 'near_majority'"):
        survivorship_settings(Rules(survivorship={"fields": {"birth_date": ["near_majorty"]}}))


_ISO = st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)).map(date.isoformat)


@given(_ISO)
def test_swap_is_an_involution_and_near(iso):
    from crmclean.survivorship.dates import near_dates, swap_day_month

    swapped = swap_day_month(np.array([iso], dtype=object))[0]
    if swapped is None:
        assert int(iso[8:]) > 12
    elif swapped != iso:
        assert swap_day_month(np.array([swapped], dtype=object))[0] == iso
        assert near_dates(iso, swapped) and near_dates(swapped, iso)


@given(st.lists(_ISO, min_size=1, max_size=6), st.floats(0, 1))
def test_near_support_counts_own_records_at_least(values, weight):
    from crmclean.survivorship.dates import near_support

    arr = np.array(values, dtype=object)
    support = -near_support(np.zeros(len(arr), np.int64), arr, weight)
    own = pd.Series(values).map(pd.Series(values).value_counts()).to_numpy()
    if len(set(values)) > 1:
        assert (support >= own - 1e-9).all()
        assert (support <= len(values) + 1e-9).all()
    else:
        assert (support == 0).all()


@given(st.integers(1, 31), st.integers(1, 31), st.integers(1900, 2030))
def test_ambiguous_raw_only_when_both_parts_can_be_a_month(a, b, year):
    from crmclean.survivorship.dates import ambiguous_raw

    got = ambiguous_raw(np.array([f"{a}/{b}/{year}", f"{year}-{a:02d}-{b:02d}"], dtype=object))
    assert got[0] == (a <= 12 and b <= 12 and a != b)
    assert not got[1]


# ------------------------------------------------------------------ issue 13: e-mail spellings
def test_plain_mailbox_takes_the_fewest_dots_and_tags_within_one_mailbox_only():
    golden, lineage = build(
        email("a|1", 0, "qiqiangli.1966@gmail.com", "qiqiangli1966@gmail.com", when="2024-01-01"),
        email("b|1", 0, "qiqiangli1966@gmail.com", "qiqiangli1966@gmail.com", when="2016-01-01"),
        email("c|1", 0, "qiqiangli1966+shop@gmail.com", "qiqiangli1966@gmail.com", when="2025-01-01"),
        # aol keeps dots: two mailboxes, no evidence either way (recency decides)
        email("a|2", 1, "brooklyn.young@aol.com", when="2016-01-01"),
        email("b|2", 1, "brooklynyoung@aol.com", when="2022-01-01"),
    )
    assert golden.loc[0, "email"] == "qiqiangli1966@gmail.com"
    assert src(lineage, 0, "email") == ("b|1", "plain_mailbox")
    assert golden.loc[1, "email"] == "brooklynyoung@aol.com"
    assert src(lineage, 1, "email")[1] == "most_recent"


@given(st.lists(st.sampled_from(["ab", "a.b", "a.b+x", "ab+y", "a..b", None]), min_size=1, max_size=6))
def test_extra_marks_is_zero_for_some_spelling_of_each_mailbox(locals_):
    from crmclean.survivorship.emails import extra_marks

    texts = np.array([None if v is None else f"{v}@gmail.com" for v in locals_], dtype=object)
    keys = np.array([None if v is None else "ab@gmail.com" for v in locals_], dtype=object)
    marks = extra_marks(np.zeros(len(texts), np.int64), texts, keys)
    assert (marks >= 0).all()
    assert (marks[pd.isna(texts)] == 0).all()
    if pd.notna(texts).any():
        assert marks[pd.notna(texts)].min() == 0


def test_lost_values_are_listed_most_records_first_then_by_value_per_cluster():
    import json

    city = {
        "p|1": "Paris", "p|2": "Paris", "p|3": "Paris", "z|9": "Nice", "a|4": "Lyon",
        "c|1": "Lyon", "b|2": "Metz",
    }  # fmt: skip
    rows = [rec(k, 1, city=v) for k, v in city.items()] + [rec("q|1", 2, city="Oslo"), rec("q|2", 2, city="Bergen")]
    golden, lineage = build(*rows)
    lost = lineage.set_index(["cluster", "field"])["alternatives"]
    won = golden.loc[1, "city"]
    expected: dict[str, list[str]] = {}
    for k, v in sorted(city.items()):
        if v != won:
            expected.setdefault(v, []).append(k)
    order = sorted(expected, key=lambda v: (-len(expected[v]), v))
    assert json.loads(lost[(1, "city")]) == [{"value": v, "records": expected[v]} for v in order]
    assert [x["value"] for x in json.loads(lost[(2, "city")])] == [
        {"Oslo": "Bergen", "Bergen": "Oslo"}[golden.loc[2, "city"]]
    ]
