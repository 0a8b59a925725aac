"""Standardize stage: raw canonical fields → `<field>_std`, `<field>_flag` and match keys.

Each standardizer is a pure, cached function of one distinct input tuple; `standardize` runs
it once per distinct tuple (over a process pool for large inputs) and maps the results back.
Raw columns are never modified. See docs/standardize.md for every output column and flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..schema import CANONICAL_FIELDS, QUARANTINE_COLUMNS, empty_quarantine
from .addresses import standardize_address
from .company import standardize_company
from .dates import DEFAULT_SERIAL_RANGE, infer_day_first, standardize_date
from .emails import email_config, standardize_email
from .names import standardize_gender, standardize_name
from .parallel import IN_PROCESS_BELOW, expand, make_pool, map_distinct
from .phones import route_phones

DATE_FIELDS = ("birth_date", "created_at", "updated_at")
SUMMARY_FIELDS = tuple(f for f in CANONICAL_FIELDS if f != "record_id")

NAME_COLUMNS = (
    "full_name_std", "first_name_std", "last_name_std", "name_script", "first_name_key", "last_name_key",
    "name_key", "name_title_std", "name_suffix_std", "full_name_flag", "first_name_flag", "last_name_flag",
    "_gender_hint",
)
ADDRESS_COLUMNS = (
    "address_std", "city_std", "state_std", "postal_code_std", "postal_plus4_std", "district_std",
    "country_std", "address_flag", "city_flag", "state_flag", "postal_code_flag", "country_flag",
)
PHONE_COLUMNS = ("mobile_std", "landline_std", "phone_std", "mobile_flag", "landline_flag", "phone_flag")

OUTPUT_COLUMNS: tuple[str, ...] = (
    "full_name_std", "first_name_std", "last_name_std", "name_title_std", "name_suffix_std", "name_script",
    "first_name_key", "last_name_key", "name_key", "full_name_flag", "first_name_flag", "last_name_flag",
    "gender_std", "gender_flag",
    "email_std", "email_key", "email_flag",
    "mobile_std", "landline_std", "phone_std", "mobile_flag", "landline_flag", "phone_flag",
    "birth_date_std", "birth_date_flag",
    "address_std", "city_std", "state_std", "postal_code_std", "postal_plus4_std", "district_std", "country_std",
    "address_flag", "city_flag", "state_flag", "postal_code_flag", "country_flag",
    "company_std", "company_key", "company_flag",
    "created_at_std", "created_at_flag", "updated_at_std", "updated_at_flag",
)

__all__ = [
    "standardize", "quarantine_unidentifiable", "infer_date_orders", "OUTPUT_COLUMNS",
    "standardize_name", "standardize_email", "standardize_date", "standardize_address",
    "standardize_company", "standardize_gender", "route_phones",
]


def _cfg(rules) -> dict[str, Any]:
    cfg = getattr(rules, "standardize", None) if rules is not None else None
    return cfg if isinstance(cfg, dict) else {}


def _col(records: pd.DataFrame, name: str) -> pd.Series:
    """A canonical column as object dtype with None for missing (absent column → all None)."""
    if name in records.columns:
        s = records[name].astype(object)
        return s.where(s.notna(), None)
    return pd.Series([None] * len(records), index=records.index, dtype=object)


def _day_first_override(value, field: str) -> bool | None:
    if isinstance(value, dict):
        value = value.get(field)
    return value if isinstance(value, bool) else None


def infer_date_orders(records: pd.DataFrame, rules) -> dict[str, dict[str, bool | None]]:
    """{source: {date field: day_first}} decided on the whole input before chunking.

    Precedence: rules.standardize.dates.day_first[source] (bool or {field: bool}), then the
    ingest column `source_day_first`, then a majority vote over that source's values.
    """
    overrides = (_cfg(rules).get("dates") or {}).get("day_first") or {}
    sources = _col(records, "source").fillna("")
    out: dict[str, dict[str, bool | None]] = {}
    for source, idx in sources.groupby(sources, sort=False).groups.items():
        part = records.loc[idx]
        decisions: dict[str, bool | None] = {}
        ingest_hint = None
        if "source_day_first" in part.columns:
            hints = part["source_day_first"].dropna()
            if len(hints):
                h = hints.iloc[0]
                ingest_hint = h if isinstance(h, (bool, np.bool_)) else str(h).strip().lower() in ("true", "1", "yes")
        for field in DATE_FIELDS:
            decided = _day_first_override(overrides.get(source), field)
            if decided is None and ingest_hint is not None:
                decided = bool(ingest_hint)
            if decided is None and field in part.columns:
                decided = infer_day_first(part[field])
            decisions[field] = decided
        out[source] = decisions
    return out


def _phone_regions(records: pd.DataFrame, country_std: pd.Series, name_script: pd.Series, default: str) -> pd.Series:
    """Region for numbers without a country code: record country, else the source default,
    else CN for Hanzi names, else rules.standardize.default_region."""
    region = country_std.copy()
    if "source_default_region" in records.columns:
        src = _col(records, "source_default_region").map(lambda v: str(v).strip().upper() if v else None)
        region = region.where(region.notna(), src)
    region = region.where(region.notna(), np.where(name_script == "han", "CN", None))
    return region.where(region.notna(), default)


def _non_blank(values: pd.Series) -> pd.Series:
    """Present and not just whitespace; evaluated once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    blank = np.array([str(u).strip() == "" for u in uniques] + [True], dtype=bool)
    return pd.Series(~blank[codes], index=values.index)  # code -1 → the trailing True


def _flag_has(flags: pd.Series, code: str) -> pd.Series:
    """Whether each `;`-joined flag contains `code` — evaluated once per distinct flag value."""
    codes, uniques = pd.factorize(flags, use_na_sentinel=True)
    hit = np.array([code in str(u).split(";") for u in uniques] + [False], dtype=bool)
    return pd.Series(hit[codes], index=flags.index)


def summarize(records: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    """Per field: unchanged / changed / invalid / empty counts (they add up to the row count).
    A placeholder ("n/a", "test@test.com") counts as empty, not invalid."""
    rows = []
    std_of = {"phone": "phone_std"}
    for field in SUMMARY_FIELDS:
        raw = _col(records, field)
        raw_present = _non_blank(raw)
        std_col = std_of.get(field, f"{field}_std")
        if field == "phone":  # generic column: is *its own* number usable?
            flag = std["phone_flag"]
            value_ok = ~(_flag_has(flag, "invalid") | _flag_has(flag, "placeholder")) & raw_present
        else:
            flag = std[f"{field}_flag"]
            value_ok = std[std_col].notna()
        placeholder = _flag_has(flag, "placeholder") & ~value_ok
        raw_present = raw_present & ~placeholder  # "n/a", "test@test.com": an empty value in disguise
        empty = ~raw_present
        invalid = raw_present & ~value_ok
        changed = raw_present & value_ok & (flag != "")
        unchanged = raw_present & value_ok & (flag == "")
        rows.append(
            {"field": field, "unchanged": int(unchanged.sum()), "changed": int(changed.sum()),
             "invalid": int(invalid.sum()), "empty": int(empty.sum())}
        )
    return pd.DataFrame(rows, columns=["field", "unchanged", "changed", "invalid", "empty"])


def standardize(
    records: pd.DataFrame,
    rules,
    workers: int = 2,
    *,
    day_first: dict[str, dict[str, bool | None]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records frame → (standardized frame, summary[field, unchanged, changed, invalid, empty]).

    `day_first` ({source: {field: bool|None}}, from `infer_date_orders`) lets a flow that fans
    out over record chunks pass the whole-input decision in; computed here when omitted.
    """
    cfg = _cfg(rules)
    max_chars = int(cfg.get("max_match_chars", 200) or 0)
    default_region = str(cfg.get("default_region", "US") or "US").upper()
    dates_cfg = cfg.get("dates") or {}
    serial_min = int(dates_cfg.get("excel_serial_min", DEFAULT_SERIAL_RANGE[0]))
    serial_max = int(dates_cfg.get("excel_serial_max", DEFAULT_SERIAL_RANGE[1]))
    email_cfg = email_config(cfg.get("emails"))
    nick_extra = tuple(sorted(((cfg.get("names") or {}).get("nicknames") or {}).items()))
    in_process_below = int(cfg.get("in_process_below", IN_PROCESS_BELOW))
    if day_first is None:
        day_first = infer_date_orders(records, rules)

    index = records.index
    distinct_estimate = len(records)
    pool = make_pool(workers) if distinct_estimate >= in_process_below else None
    try:
        run = lambda fn, cols, extra=(): map_distinct(fn, cols, extra, pool, in_process_below)  # noqa: E731

        names = expand(run(standardize_name, [_col(records, c) for c in ("full_name", "first_name", "last_name")],
                          (max_chars, nick_extra)), NAME_COLUMNS, index)
        gender = expand(run(standardize_gender, [_col(records, "gender"), names["_gender_hint"]]),
                       ("gender_std", "gender_flag"), index)
        address = expand(run(standardize_address, [_col(records, c) for c in ("address", "city", "state", "postal_code", "country")],
                            (max_chars,)), ADDRESS_COLUMNS, index)
        region = _phone_regions(records, address["country_std"], names["name_script"], default_region)
        phones = expand(run(route_phones, [_col(records, c) for c in ("mobile", "landline", "phone")] + [region],
                           (default_region,)), PHONE_COLUMNS, index)
        email = expand(run(standardize_email, [_col(records, "email")], (email_cfg,)),
                      ("email_std", "email_key", "email_flag"), index)
        company = expand(run(standardize_company, [_col(records, "company")], (max_chars,)),
                        ("company_std", "company_key", "company_flag"), index)
        source = _col(records, "source").fillna("")
        date_frames = []
        for field in DATE_FIELDS:
            decided = {s: (d or {}).get(field) for s, d in day_first.items()}
            order = source.map(lambda s: decided.get(s)) if len(decided) > 1 else pd.Series(
                [next(iter(decided.values()), None)] * len(source), index=index, dtype=object)
            results = run(standardize_date, [_col(records, field), order.astype(object).where(order.notna(), None)],
                          (field, None, serial_min, serial_max))
            date_frames.append(expand(results, (f"{field}_std", f"{field}_flag"), index))
    finally:
        if pool is not None:
            pool.shutdown()

    new = pd.concat([names.drop(columns="_gender_hint"), gender, email, phones, address, company, *date_frames], axis=1)
    new = new[list(OUTPUT_COLUMNS)]
    for c in new.columns:
        if c.endswith("_flag"):
            new[c] = new[c].fillna("").astype(object)
    base = records.drop(columns=[c for c in OUTPUT_COLUMNS if c in records.columns])
    std = pd.concat([base, new], axis=1)
    return std, summarize(records, std)


def quarantine_unidentifiable(std: pd.DataFrame, rules) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with nothing to match on (no usable name, e-mail or phone) → quarantine.

    rules.standardize.min_identity: `fields` (subset of name/email/phone that count as
    identifying, default all three), `min_count` (how many must be present, default 1),
    `enabled` (default true).
    """
    conf = _cfg(rules).get("min_identity") or {}
    if conf.get("enabled", True) is False or std.empty:
        return std, empty_quarantine()
    fields = conf.get("fields") or ["name", "email", "phone"]
    min_count = int(conf.get("min_count", 1))

    def present(col: str) -> pd.Series:
        if col not in std.columns:
            return pd.Series(False, index=std.index)
        return std[col].notna() & (std[col].astype(str).str.strip() != "")

    checks = {
        "name": present("full_name_std") | present("last_name_std"),
        "email": present("email_std"),
        "phone": present("phone_std"),
    }
    count = sum(checks[f].astype(int) for f in fields if f in checks)
    bad = count < min_count
    if not bad.any():
        return std, empty_quarantine()
    rejected = std[bad]
    locator = _col(rejected, "locator").fillna("<unknown row>")
    labels = {"name": "usable name", "email": "e-mail", "phone": "phone number"}
    names = [labels[f] for f in fields if f in labels]
    if min_count <= 1:
        what = "has no " + (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0])
    else:
        what = f"has fewer than {min_count} of: " + ", ".join(labels[f] for f in fields if f in labels)
    quarantine = pd.DataFrame(
        {
            "source": _col(rejected, "source"),
            "source_record_id": _col(rejected, "source_record_id"),
            "locator": locator,
            "stage": "standardize",
            "reason_code": "no_identifying_fields",
            "reason": locator.map(
                lambda loc: f"Row {loc} {what}, so it cannot be matched to a customer."
            ),
            "raw": _col(rejected, "raw"),
        },
        columns=list(QUARANTINE_COLUMNS),
    ).reset_index(drop=True)
    return std[~bad], quarantine
