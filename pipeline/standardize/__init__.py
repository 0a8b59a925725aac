"""Standardize stage: raw canonical fields → `<field>_std`, `<field>_flag` and match keys.

Each standardizer is a pure, cached function of one distinct input tuple; `standardize` runs
it once per distinct tuple (over a process pool for large inputs) and maps the results back.
Raw columns are never modified. See docs/standardize.md for every output column and flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import memory
from ..config import section
from ..schema import CANONICAL_FIELDS, QUARANTINE_COLUMNS, empty_quarantine
from .addresses import standardize_address
from .company import standardize_company
from .dates import infer_day_first, standardize_date
from .emails import email_config, standardize_email
from .national_id import standardize_national_id
from .names import PINYIN_RE, nickname_map, pinyin_surnames, standardize_gender, standardize_name
from . import regions
from .parallel import FieldJob, make_pool
from .phones import route_phones
from .text import placeholder_sets, placeholders_for, standardize_attribute

# Bumped whenever the same raw input can standardize differently (new placeholders, nicknames,
# phone-region rules): a store that reuses prior std values can compare it and re-standardize.
STANDARDIZE_VERSION = "7"  # 3: national_id; 4: junk names, spaced pinyin, kept implausible/partial dates, attr_*;
# 5: phone region from the source's own +CC numbers, region_guessed flag;
# 6: nicknames checked against a reference list (izzy, hattie, lola ...);
# 7: clerks' abbreviations of given names (Wm, Jas, Chas, Thos ...)

DATE_FIELDS = ("birth_date", "created_at", "updated_at")
SUMMARY_FIELDS = tuple(f for f in CANONICAL_FIELDS if f != "record_id")

NAME_COLUMNS = (
    "full_name_std",
    "first_name_std",
    "last_name_std",
    "name_script",
    "first_name_key",
    "last_name_key",
    "name_key",
    "name_title_std",
    "name_suffix_std",
    "full_name_flag",
    "first_name_flag",
    "last_name_flag",
    "_gender_hint",
    "_first_key_if_male",
    "_first_key_if_female",
    "middle_name_std",
    "second_last_name_std",
)
# Second names are present only when a source has such a column (ingest adds it then).
NAME_PART_COLUMNS = {"middle_name": "middle_name_std", "second_last_name": "second_last_name_std"}
ADDRESS_COLUMNS = (
    "address_std",
    "city_std",
    "state_std",
    "postal_code_std",
    "postal_plus4_std",
    "district_std",
    "country_std",
    "address_flag",
    "city_flag",
    "state_flag",
    "postal_code_flag",
    "country_flag",
)
PHONE_COLUMNS = ("mobile_std", "landline_std", "phone_std", "mobile_flag", "landline_flag", "phone_flag")

OUTPUT_COLUMNS: tuple[str, ...] = (
    "full_name_std",
    "first_name_std",
    "last_name_std",
    "name_title_std",
    "name_suffix_std",
    "name_script",
    "first_name_key",
    "last_name_key",
    "name_key",
    "full_name_flag",
    "first_name_flag",
    "last_name_flag",
    "gender_std",
    "gender_flag",
    "email_std",
    "email_key",
    "email_flag",
    "mobile_std",
    "landline_std",
    "phone_std",
    "mobile_flag",
    "landline_flag",
    "phone_flag",
    "birth_date_std",
    "birth_date_flag",
    "national_id_std",
    "national_id_flag",
    *ADDRESS_COLUMNS,
    "company_std",
    "company_key",
    "company_flag",
    "created_at_std",
    "created_at_flag",
    "updated_at_std",
    "updated_at_flag",
)

#: columns of a few distinct texts that only survivorship (`to_numpy(object)`, then factorized)
#: and publish read after standardize (link reads none): held as categoricals from then on
#: (crmclean.frames.compacted), a byte a row instead of an 8-byte pointer
CATEGORY_COLUMNS = (
    *(c for c in OUTPUT_COLUMNS if c.endswith("_flag")),
    "name_script",
    "name_title_std",
    "postal_plus4_std",
    "std_fingerprint",
)

__all__ = [
    "standardize",
    "quarantine_unidentifiable",
    "unidentifiable",
    "infer_date_orders",
    "infer_phone_regions",
    "OUTPUT_COLUMNS",
    "STANDARDIZE_VERSION",
    "standardize_name",
    "standardize_email",
    "standardize_date",
    "standardize_address",
    "standardize_company",
    "standardize_gender",
    "route_phones",
]


def _cfg(rules) -> dict[str, Any]:
    """rules.standardize validated and default-filled (crmclean.config.StandardizeSettings);
    Rules built by hand are validated here too, so every key below is present."""
    return section(rules, "standardize")


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


def infer_phone_regions(records: pd.DataFrame, rules) -> dict[str, str | None]:
    """{source: region its own +CC numbers agree on, or None} decided on the whole input
    before chunking (rules.standardize.phone_region_evidence)."""
    evidence = _cfg(rules)["phone_region_evidence"]
    return regions.infer_phone_regions(records, evidence["min_numbers"], evidence["min_share"])


def infer_date_orders(records: pd.DataFrame, rules) -> dict[str, dict[str, bool | None]]:
    """{source: {date field: day_first}} decided on the whole input before chunking.

    Precedence: rules.standardize.dates.day_first[source] (bool or {field: bool}), then the
    ingest column `source_day_first`, then a majority vote over that source's values.
    """
    overrides = _cfg(rules)["dates"]["day_first"]
    sources = _col(records, "source").fillna("")
    out: dict[str, dict[str, bool | None]] = {}
    voted = [c for c in ("source_day_first", *DATE_FIELDS) if c in records.columns]
    for source, idx in sources.groupby(sources, sort=False).groups.items():
        part = records.loc[idx, voted]  # only the columns read below: no copy of the whole frame
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


CN_EMAIL_DOMAINS = frozenset(
    {
        "qq.com",
        "vip.qq.com",
        "foxmail.com",
        "163.com",
        "126.com",
        "yeah.net",
        "139.com",
        "189.cn",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "aliyun.com",
        "21cn.com",
        "tom.com",
    }
)


def _chinese_hint(
    email_std: pd.Series, first_key: pd.Series, last_key: pd.Series, name_script: pd.Series
) -> np.ndarray:
    """A record with no country that still looks Chinese: a Chinese mail provider (or .cn), or a
    pinyin name (common surname + pinyin given name that is not an English first name). Each
    distinct value is tested once."""

    def per_distinct(values: pd.Series, test) -> np.ndarray:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        hit = np.array([bool(test(u)) for u in uniques] + [False], dtype=bool)
        return hit[codes]

    def cn_domain(email) -> bool:
        domain = str(email).rpartition("@")[2]
        return domain in CN_EMAIL_DOMAINS or domain.endswith(".cn")

    english = set(nickname_map()) | set(nickname_map().values())
    surnames = pinyin_surnames()
    is_pinyin = lambda k: bool(k) and k not in english and PINYIN_RE.match(k) is not None  # noqa: E731
    by_mail = per_distinct(email_std, cn_domain)
    pinyin_name = (
        per_distinct(last_key, lambda k: k in surnames)
        & per_distinct(first_key, is_pinyin)
        & (name_script == "latin").to_numpy()
    )
    return by_mail | pinyin_name


def _phone_regions(
    records: pd.DataFrame,
    country_std: pd.Series,
    name_script: pd.Series,
    default: str,
    chinese_hint: np.ndarray | None = None,
    source_regions: dict[str, str | None] | None = None,
) -> pd.Series:
    """Region for numbers without a country code: record country, else the source's configured
    default, else CN for Hanzi names, else the region the source's own +CC numbers agree on
    (`source_regions`), else unknown (None: 11-digit 1[3-9]… read as a Chinese mobile, the rest
    in the default region) when the record looks Chinese, else rules.standardize.default_region."""
    region = country_std.copy()
    if "source_default_region" in records.columns:
        src = _per_distinct(_col(records, "source_default_region"), lambda v: str(v).strip().upper() if v else None)
        region = region.where(region.notna(), src)
    region = region.where(region.notna(), np.where(name_script == "han", "CN", np.array(None, dtype=object)))
    if source_regions:
        region = region.where(region.notna(), _col(records, "source").map(source_regions))
    fallback = pd.Series(default, index=region.index, dtype=object)
    if chinese_hint is not None:
        fallback[chinese_hint] = None
    return region.where(region.notna(), fallback)


def _per_distinct(values: pd.Series, fn) -> pd.Series:
    """`values.map(fn)` with `fn` called once per distinct value (None for a missing one)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:] = [fn(u) for u in uniques] + [fn(None)]
    return pd.Series(mapped[codes], index=values.index)


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


PHONE_FIELDS = regions.PHONE_FIELDS  # the raw phone columns, in route_phones order


def _summary_row(records: pd.DataFrame, field: str, std: pd.DataFrame) -> dict:
    """unchanged / changed / invalid / empty for one field (they add up to the row count).
    A placeholder ("n/a", "test@test.com") counts as empty, not invalid."""
    raw_present = _non_blank(_raw(records, field))
    if field == "phone":  # generic column: is *its own* number usable?
        flag = std["phone_flag"]
        value_ok = ~(_flag_has(flag, "invalid") | _flag_has(flag, "placeholder")) & raw_present
    else:
        flag = std[f"{field}_flag"]
        value_ok = std[f"{field}_std"].notna()
    placeholder = _flag_has(flag, "placeholder") & ~value_ok
    raw_present = raw_present & ~placeholder  # "n/a", "test@test.com": an empty value in disguise
    clean = (flag == "").to_numpy()
    present, ok = raw_present.to_numpy(), value_ok.to_numpy()
    return {
        "field": field,
        "unchanged": int((present & ok & clean).sum()),
        "changed": int((present & ok & ~clean).sum()),
        "invalid": int((present & ~ok).sum()),
        "empty": int((~present).sum()),
    }


def summarize(records: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    """Per field: unchanged / changed / invalid / empty counts (they add up to the row count)."""
    rows = [_summary_row(records, field, std) for field in SUMMARY_FIELDS]
    return pd.DataFrame(rows, columns=["field", "unchanged", "changed", "invalid", "empty"])


def _raw(records: pd.DataFrame, name: str) -> pd.Series:
    """A column as read, for factorizing (NaN/None both become the missing code); an absent
    column is all None. No copy: the standardizers never see the frame itself."""
    if name in records.columns:
        return records[name]
    return pd.Series([None] * len(records), index=records.index, dtype=object)


def _name_part(records: pd.DataFrame, name: str) -> pd.Series:
    """A second-name column as read, its missing marker (R's NA filling half of it) dropped, so
    the full name is never "Frank Na Mueller Na"."""
    raw = _raw(records, name)
    low = raw.astype("string").str.strip().str.lower()
    kept = _column_missing_marker_dropped(low.to_numpy(dtype=object, na_value=None))
    return raw.where(pd.notna(kept) | raw.isna(), None)


def _pick_gendered_first_keys(names: dict[str, np.ndarray], gender_std: np.ndarray) -> None:
    """Sam/Chris/Alex/Pat: use the female (or male) formal name when the record's gender says
    so; rebuild name_key for those rows only (few)."""
    alt_m, alt_f = names.pop("_first_key_if_male"), names.pop("_first_key_if_female")
    rows = pd.notna(alt_m) & ((gender_std == "M") | (gender_std == "F"))
    if not rows.any():
        return
    picked = np.where(gender_std[rows] == "F", alt_f[rows], alt_m[rows])
    first = names["first_name_key"].copy()
    first[rows] = picked
    last = names["last_name_key"][rows]
    keys = names["name_key"].copy()
    keys[rows] = [" ".join(sorted({k for k in (f, la) if k})) or None for f, la in zip(picked, last)]
    names["first_name_key"] = first
    names["name_key"] = keys


def standardize(
    records: pd.DataFrame,
    rules,
    workers: int = 2,
    *,
    day_first: dict[str, dict[str, bool | None]] | None = None,
    phone_regions: dict[str, str | None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records frame → (standardized frame, summary[field, unchanged, changed, invalid, empty]).

    `day_first` ({source: {field: bool|None}}, from `infer_date_orders`) lets a flow that fans
    out over record chunks pass the whole-input decision in; computed here when omitted. The same
    holds for `phone_regions` ({source: region}, from `infer_phone_regions`).

    Every independent field is queued on the pool before any result is awaited, so the
    workers stay busy while this process maps results back and counts the summary; phones
    follow as soon as names and addresses (which give the phone region) are back.
    """
    cfg = _cfg(rules)
    max_chars = cfg["max_match_chars"]
    default_region = cfg["default_region"]
    serial_min, serial_max = cfg["dates"]["excel_serial_min"], cfg["dates"]["excel_serial_max"]
    email_cfg = email_config(cfg["emails"])
    nick_extra = tuple(sorted(cfg["names"]["nicknames"].items()))
    placeholders = placeholder_sets(cfg["placeholders"])
    in_process_below = cfg["in_process_below"]
    if day_first is None:
        day_first = infer_date_orders(records, rules)
    if phone_regions is None:
        phone_regions = infer_phone_regions(records, rules)

    index = records.index
    pool = make_pool(workers) if len(records) >= in_process_below else None
    try:
        summary_rows: dict[str, dict] = {}

        def job(fn, cols, extra, names):
            inputs = [_raw(records, c) if isinstance(c, str) else c for c in cols]
            return FieldJob(fn, inputs, extra, names).submit(pool, in_process_below)

        names_job = job(
            standardize_name,
            ("full_name", "first_name", "last_name", *(_name_part(records, c) for c in NAME_PART_COLUMNS)),
            (max_chars, nick_extra, placeholders_for(placeholders, "name")),
            NAME_COLUMNS,
        )
        address_job = job(
            standardize_address,
            ("address", "city", "state", "postal_code", "country"),
            (max_chars, placeholders),
            ADDRESS_COLUMNS,
        )
        email_job = job(standardize_email, ("email",), (email_cfg,), ("email_std", "email_key", "email_flag"))
        company_job = job(
            standardize_company,
            ("company",),
            (max_chars, placeholders_for(placeholders, "company")),
            ("company_std", "company_key", "company_flag"),
        )
        national_id_job = job(
            standardize_national_id,
            ("national_id",),
            (placeholders_for(placeholders, "national_id"),),
            ("national_id_std", "national_id_flag"),
        )
        source = _raw(records, "source")
        date_jobs = []
        for field in DATE_FIELDS:
            decided = {s: (d or {}).get(field) for s, d in day_first.items()}
            if len(set(decided.values())) <= 1:
                order = pd.Series(next(iter(decided.values()), None), index=index, dtype=object)
            else:
                order = source.fillna("").map(decided).astype(object)
                order = order.where(order.notna(), None)
            date_jobs.append(
                job(
                    standardize_date,
                    (field, order),
                    (field, None, serial_min, serial_max),
                    (f"{field}_std", f"{field}_flag"),
                )
            )

        names = _collect(names_job, ("full_name", "first_name", "last_name"), summary_rows)
        address = _collect(address_job, ("address", "city", "state", "postal_code", "country"), summary_rows)
        email = _collect(email_job, ("email",), summary_rows)
        script = pd.Series(names["name_script"], index=index)
        hint = _chinese_hint(
            pd.Series(email["email_std"], index=index),
            pd.Series(names["first_name_key"], index=index),
            pd.Series(names["last_name_key"], index=index),
            script,
        )
        region = _phone_regions(
            records, pd.Series(address["country_std"], index=index), script, default_region, hint, phone_regions
        )
        phones_job = job(route_phones, ("mobile", "landline", "phone", region), (default_region,), PHONE_COLUMNS)
        del script, hint, region

        # While the pool works on phones: gender (few distinct values, in-process), the map-back
        # of the other fields and their summary counts.
        gender_inputs = [_raw(records, "gender"), pd.Series(names.pop("_gender_hint"), index=index)]
        gender_job = FieldJob(standardize_gender, gender_inputs, (), ("gender_std", "gender_flag"))
        gender = _collect(gender_job, ("gender",), summary_rows)
        _pick_gendered_first_keys(names, gender["gender_std"])
        out = {**names, **gender, **address, **email}
        del names, gender, address, email
        out.update(_collect(company_job, ("company",), summary_rows))
        out.update(_collect(national_id_job, ("national_id",), summary_rows))
        for field, date_job in zip(DATE_FIELDS, date_jobs):
            out.update(_collect(date_job, (field,), summary_rows))
        out.update(_collect(phones_job, PHONE_FIELDS, summary_rows))
    finally:
        if pool is not None:
            pool.shutdown()

    dynamic = {std_col: out[std_col] for raw_col, std_col in NAME_PART_COLUMNS.items() if raw_col in records.columns}
    dynamic.update(attribute_columns(records))
    stale = {c for c in (*OUTPUT_COLUMNS, *dynamic) if c in records.columns}  # re-standardizing a standardized frame
    # the raw columns as they are (ingest holds each repeated text once: frames.shared_texts), then
    # the outputs: one frame of the column arrays, not a concat (which copies them all)
    columns = {c: records[c] for c in records.columns if c not in stale}
    columns.update({c: out.pop(c) for c in OUTPUT_COLUMNS})
    std = pd.DataFrame({**columns, **dynamic}, index=index, copy=False)
    summary = pd.DataFrame(
        [summary_rows[f] for f in SUMMARY_FIELDS], columns=["field", "unchanged", "changed", "invalid", "empty"]
    )
    return std, summary


def _attribute_sources(columns) -> dict[str, str]:
    """{attr name: the ingested column it comes from} (`attr_middle_name`: `middle_name`)."""
    sources = {c: c for c in columns if isinstance(c, str) and c.startswith("attr_") and not c.endswith("_std")}
    sources.update({f"attr_{c}": c for c in NAME_PART_COLUMNS if c in columns})
    return sources


def attribute_names(columns) -> list[str]:
    """The `attr_<slug>_std` columns `attribute_columns` makes from ingested `columns`."""
    return sorted(f"{name}_std" for name in _attribute_sources(list(columns)))


def attribute_columns(records: pd.DataFrame) -> dict[str, np.ndarray]:
    """`attr_<slug>_std` for every `attr_<slug>` column ingest found (categorical columns,
    birth place, occupation) and for the second names (`attr_middle_name_std`,
    `attr_second_last_name_std`): NFKC, casefolded, whitespace collapsed, junk → None. The
    matcher compares each exactly, with term-frequency adjustment."""
    out = {}
    for name, column in sorted(_attribute_sources(records.columns).items()):
        codes, uniques = pd.factorize(records[column], use_na_sentinel=True)
        values = np.empty(len(uniques) + 1, dtype=object)
        values[:] = [standardize_attribute(u) for u in uniques] + [None]
        out[f"{name}_std"] = _column_missing_marker_dropped(values[codes])
    return out


# R writes NA (and pandas <NA>) for every missing cell. "Na" is a given name (娜) and a
# surname, so it is no placeholder by itself; held by at least half of a column's values it is
# that column's missing marker (RLdata10000: fname_c2 "NA" in 91 % of rows, lname_c2 in 98 %).
COLUMN_MISSING_MARKERS = frozenset({"na", "<na>"})


def _column_missing_marker_dropped(values: np.ndarray) -> np.ndarray:
    """``values`` with a missing marker (``COLUMN_MISSING_MARKERS``) set to None when at least
    half of the column's values are it; otherwise unchanged (a middle name Na among others stays)."""
    counts = pd.Series(values, dtype=object).value_counts(dropna=True)
    if not len(counts) or counts.index[0] not in COLUMN_MISSING_MARKERS or counts.iloc[0] * 2 < counts.sum():
        return values
    out = values.copy()
    out[out == counts.index[0]] = None
    return out


def _collect(job: FieldJob, fields: tuple[str, ...], summary_rows: dict[str, dict]) -> dict[str, np.ndarray]:
    """The job's outputs per row; the summary rows of its input `fields` (in input order) are
    added to `summary_rows`, then the job lets go of its distinct values."""
    out = job.result()
    summary_rows.update({f: _job_summary_row(f, job, pos) for pos, f in enumerate(fields)})
    job.release()
    # its chunks' results, distinct values and summary arrays go back to the OS before the next
    # job's arrive (glibc kept ≈ 100 MB of them free but resident beside the rows at 200k customers)
    memory.release_freed()
    return out


def _job_summary_row(field: str, job: FieldJob, pos: int) -> dict:
    """`_summary_row` computed on distinct tuples (same definitions, no per-row string work)."""
    present = job.input_present(pos)
    flag = "phone_flag" if field == "phone" else f"{field}_flag"
    has = lambda code: job.per_row(flag, lambda f: code in f.split(";"))  # noqa: E731
    placeholder = has("placeholder")
    if field == "phone":
        ok = ~(has("invalid") | placeholder) & present
    else:
        ok = job.present_rows(f"{field}_std")
    present = present & ~(placeholder & ~ok)
    clean = job.per_row(flag, lambda f: f == "")
    return {
        "field": field,
        "unchanged": int((present & ok & clean).sum()),
        "changed": int((present & ok & ~clean).sum()),
        "invalid": int((present & ~ok).sum()),
        "empty": int((~present).sum()),
    }


def quarantine_unidentifiable(std: pd.DataFrame, rules) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`std` without its unidentifiable rows, their quarantine rows): see `unidentifiable`."""
    bad, quarantine = unidentifiable(std, rules)
    return (std if bad is None else std[~bad]), quarantine


def unidentifiable(std: pd.DataFrame, rules) -> tuple[np.ndarray | None, pd.DataFrame]:
    """(per row: nothing to match on, or None when no row is; their quarantine rows). A row
    with no usable name, e-mail, phone or national id goes to quarantine.

    No other field is required: a name alone (with a birth date, a postcode or nothing else)
    is enough to keep a record. rules.standardize.min_identity: `fields` (subset of
    name/email/phone/national_id that count as identifying, default all four), `min_count`
    (how many must be present, default 1), `enabled` (default true).
    """
    conf = _cfg(rules)["min_identity"]
    if not conf["enabled"] or std.empty:
        return None, empty_quarantine()
    fields, min_count = conf["fields"], conf["min_count"]

    def present(col: str) -> pd.Series:
        if col not in std.columns:
            return pd.Series(False, index=std.index)
        return std[col].notna() & (std[col].astype(str).str.strip() != "")

    checks = {
        "name": present("full_name_std") | present("last_name_std"),
        "email": present("email_std"),
        "phone": present("phone_std"),
        "national_id": present("national_id_std"),
    }
    count = sum(checks[f].astype(int) for f in fields if f in checks)
    bad = (count < min_count).to_numpy()
    if not bad.any():
        return None, empty_quarantine()
    rejected = std.loc[bad, [c for c in ("source", "source_record_id", "locator", "raw") if c in std.columns]]
    locator = _col(rejected, "locator").fillna("<unknown row>")
    labels = {"name": "usable name", "email": "e-mail", "phone": "phone number", "national_id": "national id"}
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
            "reason": locator.map(lambda loc: f"Row {loc} {what}, so it cannot be matched to a customer."),
            "raw": _col(rejected, "raw"),
        },
        columns=list(QUARANTINE_COLUMNS),
    ).reset_index(drop=True)
    return bad, quarantine
