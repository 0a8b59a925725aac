"""bench/golden.py miss_kinds: how the golden-record misses split (issue 13)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

BENCH = Path(__file__).resolve().parents[1] / "bench" / "golden.py"


def golden_bench():
    spec = importlib.util.spec_from_file_location("golden_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_misses_by_kind():
    misses = pd.DataFrame(
        {
            "entity_id": ["E1", "E2", "E3", "E4", "E5"],
            "true_phone": ["+1301", "+1302", "+1303", "+1304", "+1305"],
            "master_id": ["M1", "M2", "M3", "M4", "M5"],
            "g_mobile": ["+1901", "+1902", "+1903", None, "+1905"],
            "split": [False, False, False, True, True],
        }
    )
    records = pd.DataFrame(
        [
            # one record each: the typed landline against the mobile
            ("a|1", "+1901", None),
            ("b|1", "+1301", None),
            # the published number held by two records
            ("a|2", "+1902", None),
            ("b|2", "+1902", None),
            ("c|2", "+1302", None),
            # the true number held twice, once as the landline
            ("a|3", "+1903", None),
            ("b|3", "+1303", None),
            ("c|3", None, "+1303"),
            # split: the true number sits in another master
            ("a|4", None, None),
            ("a|5", "+1905", None),
        ],
        columns=["record_key", "mobile_std", "landline_std"],
    )
    xref = pd.DataFrame(
        {"record_key": records["record_key"], "master_id": [f"M{k[-1]}" for k in records["record_key"]]}
    )
    kinds = golden_bench().miss_kinds(misses, xref, records, "phone")
    assert kinds == {"split": 2, "split_none": 1, "one_each": 1, "outvoted": 1, "true_more": 1}
    assert "as many 1, fewer 1, more 1" in golden_bench().format_kinds(kinds)
