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
    home = (
        rows.groupby(["entity_id", "master_id"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["entity_id", "n", "master_id"], ascending=[True, False, True])
        .drop_duplicates("entity_id")[["entity_id", "master_id"]]
    )
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
