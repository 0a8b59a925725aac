"""Phone region from a source's own +CC numbers (issue 13: the default region comes from evidence)."""

from __future__ import annotations

import pandas as pd
import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from crmclean.settings import Rules
from crmclean.standardize import infer_phone_regions, standardize
from crmclean.standardize.phones import parse_one
from crmclean.standardize.regions import explicit_region, majority_region

REGIONS = sorted(r for r in ("GB", "US", "CN", "DE", "FR", "AU", "IN", "JP", "BR", "ES") if r)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(REGIONS), st.sampled_from(["+", "00"]))
def test_explicit_region_names_the_country_of_an_example_number(region, prefix):
    num = phonenumbers.example_number(region)
    text = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    text = prefix + text[1:]
    got = explicit_region(text)
    # +1 is shared by NANP countries and libphonenumber names the US for it
    assert got == region


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(REGIONS))
def test_national_format_names_no_region(region):
    num = phonenumbers.example_number(region)
    assert explicit_region(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)) is None


def test_majority_needs_enough_numbers_and_a_clear_share():
    uk = ["+44 20 7946 0958"] * 4
    assert majority_region(uk, min_numbers=5, min_share=0.8) is None  # too few
    assert majority_region(uk + ["+44 161 496 0000"], 5, 0.8) == "GB"
    mixed = uk + ["+1 773 256 6035"] * 3
    assert majority_region(mixed, 5, 0.8) is None  # an international source decides nothing


def _records(rows):
    return pd.DataFrame(rows, columns=["source", "record_id", "full_name", "phone"]).astype(object)


def test_a_uk_source_reads_its_national_numbers_as_uk():
    """`020 …` in a source whose explicit numbers are +44 is a London number, not +86 020 …
    (Guangzhou), which the fallback would otherwise find valid."""
    uk = [("uk", str(i), f"Ann Lee{i}", f"+44 20 7946 {i:04d}") for i in range(6)]
    uk.append(("uk", "99", "Bob Carr", "020 6351 8557"))
    us = [("us", str(i), f"Al Roe{i}", f"(773) 256-{i:04d}") for i in range(6)]
    us.append(("us", "99", "Cy Doe", "020 6351 8557"))
    records = _records(uk + us)
    assert infer_phone_regions(records, Rules()) == {"uk": "GB", "us": None}
    std, _ = standardize(records, Rules(), workers=1)
    phone = dict(zip(zip(std["source"], std["record_id"]), std["phone_std"]))
    assert phone[("uk", "99")] == "+442063518557"  # possible in GB, flagged unallocated
    flags = dict(zip(zip(std["source"], std["record_id"]), std["phone_flag"].fillna("")))
    assert "unallocated" in flags[("uk", "99")]
    # the US source has no evidence for GB: the CN reading is kept but said to be a guess
    assert phone[("us", "99")] == "+862063518557"
    assert "region_guessed" in flags[("us", "99")]


def test_configured_source_region_beats_evidence():
    rules = Rules()
    uk = [("uk", str(i), f"Ann Lee{i}", f"+44 20 7946 {i:04d}") for i in range(6)]
    records = _records(uk + [("uk", "99", "Bob Carr", "(773) 256-0101")])
    records["source_default_region"] = "US"
    std, _ = standardize(records, rules, workers=1)
    assert std.loc[std["record_id"] == "99", "phone_std"].item() == "+17732560101"


def test_possible_at_home_beats_valid_elsewhere():
    # an 11-digit 1… number in a Chinese record is an unallocated Chinese mobile, not +1 463 …
    e164, kind, codes = parse_one("14636343332", "CN", "US")
    assert e164 == "+8614636343332" and "unallocated" in codes and kind == "other"
    # a valid home number is never flagged
    assert parse_one("020 7946 0958", "GB", "US") == ("+442079460958", "landline", ())


def test_deciding_the_regions_keeps_no_cell_alive():
    """The region decision reads every distinct phone cell of the input once; its cache of them
    (50k cells at 200k customers) is emptied when the decision is made, not kept all run."""
    uk = [("uk", str(i), f"Ann Lee{i}", f"+44 20 7946 {i:04d}") for i in range(6)]
    assert infer_phone_regions(_records(uk), Rules()) == {"uk": "GB"}
    assert explicit_region.cache_info().currsize == 0
