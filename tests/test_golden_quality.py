"""Golden-record quality on generated exports (issue 3 "done when").

The generator knows every customer's true mobile, e-mail and birth date. After a full
pipeline run, the master record each customer ended in (the one holding most of its source
records) must carry the true value for ≥ 99 % of the customers whose true value appears,
standardized, in at least one of their accepted records — a value no record carries cannot be
expected in the golden record. The measure lives in `crmclean.golden_quality` (bench.py prints
it too). Three seeds, so a survivorship rule tuned to one data set shows up on the others.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crmclean.generate import generate
from crmclean.generate.entities import build_entities
from crmclean.golden_quality import golden_joined, golden_rate
from crmclean.run import RunOptions, run_pipeline

pytestmark = pytest.mark.slow  # whole-pipeline runs over generated or public data

CUSTOMERS = 1000
SEEDS = (11, 12, 13)
TARGET = 0.99


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def joined(request, tmp_path_factory) -> pd.DataFrame:
    """One row per accepted source record: its entity, true values, own std values, and the
    golden values of the master its entity mostly ended in."""
    seed = request.param
    tmp = tmp_path_factory.mktemp(f"golden{seed}")
    info = generate(customers=CUSTOMERS, seed=seed, out_dir=tmp / "gen")
    db_url = f"sqlite:///{tmp / 'golden.db'}"
    run_pipeline(RunOptions(inputs=[Path(p) for p in info["files"]], db_url=db_url, out_dir=tmp / "out"))
    ents = build_entities(CUSTOMERS, seed)
    truth = pd.read_csv(info["truth"], dtype=str, keep_default_na=False)
    assert set(truth.loc[truth["entity_id"] != "", "entity_id"]) <= set(ents.entity_id), (
        "build_entities must rebuild the generated entities"
    )
    return golden_joined(info["truth"], db_url, ents)


# Measured (1,000 customers; phone / e-mail / birth date):
#   seed 11: 99.37 % / 99.89 % / 99.48 %   (before the survivorship rules below: 98.6 / 98.8 / 99.5)
#   seed 12: 99.58 % / 99.89 % / 99.79 %   (before: 99.4 / 99.0 / 99.8)
#   seed 13: 99.26 % / 99.58 % / 99.69 %   (before: 99.2 / 98.5 / 99.7)
# and on seeds not looked at while tuning: 16: 99.48 / 99.68, 17: 99.68 / 99.68, 18: 99.36 / 99.57;
# 20,000 customers (seed 21): 99.56 / 99.63 (before: 99.2 / 98.3).
# What fixed it (rules/survivorship.yaml): a US number from an untyped "Phone" column is flagged
# `type_guessed` and loses to a number of known type (`type_evidence`), unless it is not the
# customer's known landline; a record whose postal code is not the master address's loses the
# mobile (`same_address`: a moved customer's stale record); e-mails are chosen by agreement on the
# match key (gmail dots/+tags), then by fit with the customer's name words and birth year
# (`identity_match`: a one-letter typo, a dot inside a name, swapped year digits lose), then by
# support from one-edit variants (`most_similar`).
# What is left (seeds 11-18: 41 phone, 20 e-mail misses): clustering splits (the record with the
# true value is in another master: 21 and 11 of them), a landline written in a sales "Mobile" column
# beating the true mobile from the untyped web "Phone" column, a moved US customer whose stale
# record has no postal code, and a typo with no name/year evidence (qq numbers, 1:1 ties). The
# test fails when any field of any seed drops below 99 %.


def _check(joined, field: str, target: float) -> None:
    rate, counted, misses = golden_rate(joined, field)
    assert counted >= CUSTOMERS * 0.5, f"only {counted} customers carry a true {field}: the join is wrong"
    shown = misses[["entity_id", f"true_{field}", f"g_{field}" if field != "phone" else "g_mobile"]].head(10)
    assert rate >= target, f"{field}: {rate:.2%} of {counted} customers correct; misses:\n{shown.to_string()}"


@pytest.mark.parametrize("field", ["phone", "email", "birth_date"])
def test_golden_record_meets_target(joined, field):
    _check(joined, field, TARGET)


def test_every_customer_reaches_a_master(joined):
    assert joined["entity_id"].nunique() >= CUSTOMERS * 0.95
