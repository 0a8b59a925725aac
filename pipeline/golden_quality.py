"""Golden-record quality on generated exports: does each customer's master carry their true
mobile, e-mail and birth date? (issue 3; used by tests/test_golden_quality.py and bench/bench.py)

The generator's entities know every customer's true values (`build_entities(customers, seed)`
rebuilds them from the seed). A customer's master is the one holding most of their accepted
records. Only customers whose true value appears, standardized, in at least one of their
records are counted: a value no record carries cannot be expected in the golden record.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .generate.entities import Entities, build_entities

FIELDS = ("phone", "email", "birth_date")


def truth_values(ents: Entities) -> pd.DataFrame:
    """entity_id → true E.164 mobile, lower-case e-mail (and second e-mail), ISO birth date."""
    return pd.DataFrame(
        {
            "entity_id": ents.entity_id,
            "true_phone": [("+86" if cn else "+1") + m for cn, m in zip(ents.is_cn, ents.mobile)],
            "true_email": [e.strip().lower() if e else None for e in ents.email],
            # some customers have a second address (ents.alt_email); either one is their e-mail
            "alt_email": [(a or "").strip().lower() or None for a in (ents.alt_email or [""] * ents.n)],
            "true_birth_date": [str(d) for d in ents.dob.astype("datetime64[D]")],
        }
    )


def _tables(db_url: str, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    from .store import opened

    with opened(db_url) as store:
        return {n: store.read_table(n) for n in names}


def _home_masters(rows: pd.DataFrame) -> pd.DataFrame:
    """entity_id → the master holding most of its records (ties: the smallest master id)."""
    return (
        rows.groupby(["entity_id", "master_id"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["entity_id", "n", "master_id"], ascending=[True, False, True])
        .drop_duplicates("entity_id")[["entity_id", "master_id"]]
    )


def golden_joined(truth_path: str | Path, db_url: str, ents: Entities) -> pd.DataFrame:
    """One row per accepted source record: its entity, true values, own std values, and the
    golden values (`g_phone`, `g_mobile`, `g_email`, `g_birth_date`) of the master its entity
    mostly ended in."""
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    truth = truth[truth["entity_id"] != ""]
    t = _tables(db_url, ("customer_xref", "customer_record", "master_customer"))
    records = t["customer_record"][["record_key", "mobile_std", "landline_std", "email_std", "birth_date_std"]]
    master = t["master_customer"][["master_id", "phone", "mobile", "email", "birth_date"]]
    xref = t["customer_xref"][["source", "source_record_id", "record_key", "master_id"]]
    rows = truth.merge(xref, on=["source", "source_record_id"])
    rows = rows.merge(records, on="record_key").merge(truth_values(ents), on="entity_id")
    home = _home_masters(rows)
    golden = home.merge(master, on="master_id").rename(
        columns={"phone": "g_phone", "mobile": "g_mobile", "email": "g_email", "birth_date": "g_birth_date"}
    )
    return rows.drop(columns="master_id").merge(golden, on="entity_id")


def _holds_true(frame: pd.DataFrame, field: str, phones: tuple[str, str], own: str) -> pd.Series:
    """Whether the row's value of field (a record's, or its master's) is the customer's true one:
    a phone in either of two slots; an e-mail, case-blind, equal to either of their addresses."""
    true = frame[f"true_{field}"]
    if field == "phone":
        return (frame[phones[0]] == true) | (frame[phones[1]] == true)
    if field == "email":
        value = frame[own].str.lower()
        return (value == true) | (value == frame["alt_email"])
    return frame[own] == true


def golden_rate(joined: pd.DataFrame, field: str) -> tuple[float, int, pd.DataFrame]:
    """(share correct, customers counted, missed customers) for field in phone/email/birth_date.
    Phone: the true mobile is the master mobile or phone; e-mail: either of their addresses."""
    carried = _holds_true(joined, field, phones=("mobile_std", "landline_std"), own=f"{field}_std")
    eligible = set(joined.loc[carried, "entity_id"])
    per_customer = joined[joined["entity_id"].isin(eligible)].drop_duplicates("entity_id")
    ok = _holds_true(per_customer, field, phones=("g_mobile", "g_phone"), own=f"g_{field}")
    rate = float(ok.mean()) if len(per_customer) else float("nan")
    return rate, len(per_customer), per_customer[~ok]


def golden_quality(truth_path: str | Path, db_url: str, customers: int, seed: int, systems: int = 3) -> dict:
    """{field: {"rate", "customers", "correct"}} for a database built from
    `generate(customers, seed, systems=systems)`'s exports."""
    joined = golden_joined(truth_path, db_url, build_entities(customers, seed, systems))
    out = {}
    for field in FIELDS:
        rate, counted, misses = golden_rate(joined, field)
        out[field] = {"rate": rate, "customers": counted, "correct": counted - len(misses)}
    return out


def format_golden_quality(result: dict) -> str:
    """One line: golden record correct for phone 99.4 % (940/946), e-mail …"""
    label = {"phone": "phone", "email": "e-mail", "birth_date": "birth date"}
    parts = [f"{label[f]} {v['rate']:.2%} ({v['correct']}/{v['customers']})" for f, v in result.items()]
    return "golden record correct (customers whose true value a record carries): " + ", ".join(parts)


# ------------------------------------------------------------------ per-field accuracy and ceiling
SCORED_FIELDS = ("full_name", "email", "phone", "birth_date")


def true_names(ents: Entities) -> list[str]:
    """The customer's true full name as crmclean publishes it: Hanzi surname+given (simplified)
    for Chinese customers, "First Last" (suffix apart) for the others."""
    return [(la + fi) if cn else f"{fi} {la}" for cn, fi, la in zip(ents.is_cn, ents.first, ents.last)]


def _record_frame(truth: pd.DataFrame, xref: pd.DataFrame, records: pd.DataFrame, ents: Entities) -> pd.DataFrame:
    """One row per accepted record with an entity: its std values, master_id and true values."""
    truth = truth[truth["entity_id"] != ""]
    cols = ["record_key", "full_name_std", "mobile_std", "landline_std", "email_std", "birth_date_std"]
    rows = truth.merge(
        xref[["source", "source_record_id", "record_key", "master_id"]], on=["source", "source_record_id"]
    )
    rows = rows.merge(records[[c for c in cols if c in records.columns]], on="record_key")
    values = truth_values(ents)
    values["true_full_name"] = true_names(ents)
    return rows.merge(values, on="entity_id")


def _value_matches(frame: pd.DataFrame, field: str, own: str, phones: tuple[str, str]) -> pd.Series:
    if field == "full_name":
        return frame[own].astype("string").fillna("").str.strip() == frame["true_full_name"]
    return _holds_true(frame, field, phones=phones, own=own)


def score_golden(truth: pd.DataFrame, xref: pd.DataFrame, records: pd.DataFrame, master: pd.DataFrame, ents) -> dict:
    """{field: {customers, carried, correct, accuracy, ceiling}} over every customer with an
    accepted record. `ceiling` = share of customers for whom some record carries the true value
    (after standardization); `accuracy` = share whose home master (the one holding most of their
    records) publishes it."""
    rows = _record_frame(truth, xref, records, ents)
    home = _home_masters(rows)
    g = master[["master_id", "full_name", "phone", "mobile", "email", "birth_date"]].add_prefix("g_")
    per_customer = rows.drop_duplicates("entity_id").drop(columns="master_id").merge(home, on="entity_id")
    per_customer = per_customer.merge(g, left_on="master_id", right_on="g_master_id", how="left")
    out = {}
    for field in SCORED_FIELDS:
        own = "full_name_std" if field == "full_name" else f"{field}_std"
        carried = rows.loc[_value_matches(rows, field, own, ("mobile_std", "landline_std")), "entity_id"]
        ok = _value_matches(per_customer, field, f"g_{field}", ("g_mobile", "g_phone"))
        n = len(per_customer)
        out[field] = {
            "customers": n,
            "carried": int(per_customer["entity_id"].isin(set(carried)).sum()),
            "correct": int(ok.sum()),
            "accuracy": float(ok.mean()) if n else float("nan"),
            "ceiling": float(per_customer["entity_id"].isin(set(carried)).mean()) if n else float("nan"),
        }
    return out


# raw and standardized record columns shown beside a miss, per scored field
MISS_COLUMNS = {
    "full_name": ("full_name", "full_name_std", "full_name_flag"),
    "email": ("email", "email_std", "email_flag"),
    "phone": (
        "mobile",
        "landline",
        "phone",
        "mobile_std",
        "mobile_flag",
        "landline_std",
        "landline_flag",
        "postal_code_std",
        "created_at_std",
    ),
    "birth_date": ("birth_date", "birth_date_std", "birth_date_flag"),
}


def golden_misses(
    truth: pd.DataFrame, xref: pd.DataFrame, records: pd.DataFrame, master: pd.DataFrame, ents, field: str
) -> pd.DataFrame:
    """The customers whose true `field` some record carries but whose home master does not
    publish: entity_id, true value, master_id, golden value, `split` (some record carrying the
    true value sits in another master) — what survivorship, not linking, got wrong is split False."""
    rows = _record_frame(truth, xref, records, ents)
    own = "full_name_std" if field == "full_name" else f"{field}_std"
    rows["carries"] = _value_matches(rows, field, own, ("mobile_std", "landline_std"))
    home = _home_masters(rows).rename(columns={"master_id": "home"})
    rows = rows.merge(home, on="entity_id")
    carried = rows[rows["carries"]]
    in_home = carried.groupby("entity_id")["master_id"].agg(lambda m: m.tolist())
    g = master[["master_id", "full_name", "phone", "mobile", "email", "birth_date"]].add_prefix("g_")
    per = rows.drop_duplicates("entity_id").merge(g, left_on="home", right_on="g_master_id", how="left")
    per = per[per["entity_id"].isin(in_home.index)]
    per = per[~_value_matches(per, field, f"g_{field}", ("g_mobile", "g_phone"))]
    per["split"] = [h not in in_home[e] for e, h in zip(per["entity_id"], per["home"])]
    true = "true_phone" if field == "phone" else f"true_{field}"
    golden = "g_mobile" if field == "phone" else f"g_{field}"
    return per[["entity_id", true, "home", golden, "split"]].rename(columns={"home": "master_id"})


def format_misses(
    misses: pd.DataFrame,
    xref: pd.DataFrame,
    records: pd.DataFrame,
    lineage: pd.DataFrame,
    field: str,
    n: int,
    seed: int = 0,
) -> str:
    """A sample of n survivorship misses (not split): the truth, the golden value and the rule
    that chose it (master_lineage), and every record of the master with its raw/std values."""
    own = misses[~misses["split"]]
    lines = [f"{field}: {len(misses)} misses, {len(own)} with the true value in the home master"]
    column = "phone" if field == "phone" else field
    cols = ["source", "record_key"] + [c for c in MISS_COLUMNS[field] if c in records.columns]
    for _, miss in own.sample(min(n, len(own)), random_state=seed).iterrows():
        lines.append(f"-- {miss['entity_id']} {miss['master_id']} true={miss.iloc[1]!r} golden={miss.iloc[3]!r}")
        fields = ("mobile", "landline", "phone") if field == "phone" else (column,)
        rule = lineage[(lineage["master_id"] == miss["master_id"]) & lineage["field"].isin(fields)]
        lines.extend(f"   {f}: rule={r} value={v}" for f, r, v in zip(rule["field"], rule["rule"], rule["value"]))
        keys = xref.loc[xref["master_id"] == miss["master_id"], "record_key"]
        recs = records[records["record_key"].isin(keys)][cols]
        lines.extend("   " + line for line in recs.to_string(index=False).splitlines())
    return "\n".join(lines)


def format_scores(scores: dict) -> str:
    """A small table: field, accuracy, ceiling, gap (points)."""
    lines = [f"{'field':<11} {'golden':>8} {'ceiling':>8} {'gap':>6}   customers"]
    for field, s in scores.items():
        gap = 100 * (s["ceiling"] - s["accuracy"])
        lines.append(f"{field:<11} {s['accuracy']:>8.2%} {s['ceiling']:>8.2%} {gap:>6.2f}   {s['customers']}")
    return "\n".join(lines)
