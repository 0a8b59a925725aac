"""Labeled raw → expected cases (tests/data/standardize_cases.csv), English and Chinese.

Each row is a real-world format seen in legacy CRM exports; `context` carries the other inputs
(`region=CN`, `day_first=true`, `field=created_at`, `city=…;state=…;country=…`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crmclean.standardize.addresses import standardize_address
from crmclean.standardize.company import standardize_company
from crmclean.standardize.dates import standardize_date
from crmclean.standardize.emails import email_config, standardize_email
from crmclean.standardize.names import standardize_gender, standardize_name
from crmclean.standardize.national_id import standardize_national_id
from crmclean.standardize.phones import standardize_phone

CASES_FILE = Path(__file__).parent / "data" / "standardize_cases.csv"
EMAIL_CFG = email_config(None)


def _load() -> list:
    with CASES_FILE.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [pytest.param(r, id=f"{i:03d}-{r['field']}-{r['note'] or r['raw']}"[:80]) for i, r in enumerate(rows)]


def _ctx(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (text or "").split(";")):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def _none(value):
    return None if value in ("", None) else value


def _codes(flag: str) -> set[str]:
    return set(filter(None, flag.split(";")))


def _address(raw: str, ctx: dict) -> tuple:
    return standardize_address(
        _none(raw), _none(ctx.get("city")), _none(ctx.get("state")), _none(ctx.get("postal")), _none(ctx.get("country"))
    )


def actual(field: str, raw: str, ctx: dict):
    """The value the case's `expected` column describes (None prints as empty)."""
    raw_v = _none(raw)
    region = ctx.get("region") or None
    if field in ("phone", "phone_kind", "phone_flag"):
        e164, kind, flag = standardize_phone(raw_v, region)
        return {"phone": e164, "phone_kind": kind, "phone_flag": flag}[field]
    if field.startswith("email"):
        std, key, flag = standardize_email(raw_v, EMAIL_CFG)
        return {"email": std, "email_key": key, "email_flag": flag}[field]
    if field in ("date", "date_flag"):
        df = {"true": True, "false": False}.get(ctx.get("day_first", ""), None)
        iso, flag = standardize_date(raw_v, df, ctx.get("field", "birth_date"))
        return iso if field == "date" else flag
    if field.startswith("name"):
        r = standardize_name(raw_v, None, None)
        full, first, last, script, fkey, lkey, key, title, suffix = r[:9]
        return {
            "name": full,
            "name_key": key,
            "name_split": f"{last or ''}|{first or ''}",
            "name_title": title,
            "name_suffix": suffix,
            "name_script": script,
            "name_flag": r[9],
        }[field]
    if field == "first_name_key":
        return standardize_name(None, raw_v, "Smith")[4]
    if field in ("address_flag", "city_flag", "state_flag", "postal_code_flag"):
        pos = {"address_flag": 7, "city_flag": 8, "state_flag": 9, "postal_code_flag": 10}[field]
        return standardize_address(
            _none(raw) if field == "address_flag" else None,
            _none(raw) if field == "city_flag" else _none(ctx.get("city")),
            _none(raw) if field == "state_flag" else _none(ctx.get("state")),
            _none(raw) if field == "postal_code_flag" else _none(ctx.get("postal")),
            _none(ctx.get("country")),
        )[pos]
    if field == "company_flag":
        return standardize_company(raw_v)[2]
    if field == "gender":
        return standardize_gender(raw_v)[0]
    if field in ("address", "city", "state", "district"):
        r = _address(raw, ctx)
        return {"address": r[0], "city": r[1], "state": r[2], "district": r[5]}[field]
    if field in ("postal_code", "postal_plus4"):
        r = standardize_address(None, None, None, raw_v, _none(ctx.get("country")))
        return r[3] if field == "postal_code" else r[4]
    if field == "country":
        if raw.startswith("@infer:"):
            return _address(raw[len("@infer:") :], ctx)[6]
        return standardize_address(None, None, None, None, raw_v)[6]
    if field in ("company", "company_key"):
        std, key, _ = standardize_company(raw_v)
        return std if field == "company" else key
    if field in ("national_id", "national_id_flag"):
        std, flag = standardize_national_id(raw_v)
        return std if field == "national_id" else flag
    raise AssertionError(f"unknown field in cases file: {field}")


def test_cases_file_is_large_and_covers_every_field():
    with CASES_FILE.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 300
    fields = {r["field"].split("_")[0] for r in rows}
    assert {
        "phone",
        "email",
        "date",
        "name",
        "address",
        "city",
        "state",
        "postal",
        "country",
        "company",
        "gender",
    } <= fields
    assert any("\u4e00" <= ch <= "\u9fff" for r in rows for ch in r["raw"])  # Chinese cases present


@pytest.mark.parametrize("case", _load())
def test_case(case):
    ctx = _ctx(case["context"])
    got = actual(case["field"], case["raw"], ctx)
    if case["field"].endswith("_flag"):
        expected = case["expected"]
        if expected:
            assert expected in _codes(got), f"{case['raw']!r}: flag {got!r} lacks {expected!r} ({case['note']})"
        else:
            assert got == "", f"{case['raw']!r}: expected a clean value, got flag {got!r} ({case['note']})"
        return
    assert (got or "") == case["expected"], f"{case['raw']!r} → {got!r}, expected {case['expected']!r} ({case['note']})"


# ------------------------------------------------------------------ national_id (appended)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from crmclean.standardize.national_id import cn_check_digit, is_dummy  # noqa: E402

_ID_TEXT = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.text(alphabet="0123456789Xx -.*:#", max_size=24),
    st.from_regex(r"\A[0-9]{3}-[0-9]{2}-[0-9]{4}\Z"),
    st.from_regex(r"\A[1-8][0-9]{16}[0-9Xx]\Z"),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True),
)


def test_national_id_cases_are_in_the_table():
    with CASES_FILE.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["field"].startswith("national_id")]
    assert len(rows) >= 15
    assert {"placeholder", "invalid", "changed"} <= {r["expected"] for r in rows if r["field"].endswith("_flag")}


@settings(max_examples=400, deadline=None)
@given(_ID_TEXT)
def test_national_id_never_raises_and_is_idempotent(raw):
    std, flag = standardize_national_id(raw)
    assert isinstance(flag, str)
    if std is None:
        return
    assert std.isascii() and std.isalnum() and std == std.upper() and 5 <= len(std) <= 20
    assert not is_dummy(std)
    again, again_flag = standardize_national_id(std)
    assert again == std and again_flag == ""  # the canonical form is a fixed point, and clean


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"\A[1-8][0-9]{5}(19[0-9]{2}|200[0-9])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}\Z"),
    st.integers(0, 9),
)
def test_national_id_cn_check_digit_accepts_the_right_one_only(first17, wrong):
    right = cn_check_digit(first17)
    assert standardize_national_id(first17 + right)[0] == first17 + right
    other = str(wrong) if str(wrong) != right else "X" if right != "X" else "0"
    std, flag = standardize_national_id(first17 + other)
    assert std is None and "invalid" in flag.split(";")
