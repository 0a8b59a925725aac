"""Lineage an analyst reads (issue 13): explain's lineage lines, the report's conflict sample,
and the crm_names generator profile the golden-record bench measures on."""

from __future__ import annotations

import json

import pandas as pd

from crmclean.explain import lineage_lines
from crmclean.report import _conflict_sample


def lineage_frame() -> pd.DataFrame:
    lost = json.dumps([{"value": "Benjamin Rase", "records": ["crm_b|7"]}])
    return pd.DataFrame(
        [
            {
                "master_id": "C0000002",
                "field": "full_name",
                "value": "Benjamin Rose",
                "record_key": "crm_a|1",
                "rule": "medoid",
                "alternatives": lost,
            },
            {
                "master_id": "C0000002",
                "field": "email",
                "value": "ben@x.com",
                "record_key": "crm_a|1",
                "rule": "all_agree",
                "alternatives": None,
            },
            {
                "master_id": "C0000009",
                "field": "full_name",
                "value": "",
                "record_key": "crm_a|9",
                "rule": "all_junk",
                "alternatives": None,
            },
        ]
    )


def test_explain_prints_winner_rule_and_the_values_that_lost():
    text = "\n".join(lineage_lines(lineage_frame()[lambda f: f["master_id"] == "C0000002"], show_pii=True))
    assert "full_name: Benjamin Rose  ← medoid (crm_a|1)" in text
    assert "lost: Benjamin Rase  (crm_b|7)" in text
    assert "email: ben@x.com  ← all_agree" in text
    masked = "\n".join(lineage_lines(lineage_frame()[lambda f: f["master_id"] == "C0000002"]))  # explain's default
    assert "Benjamin" not in masked and "ben@x.com" not in masked and "← medoid (crm_a|1)" in masked


def test_report_sample_lists_only_conflicts_and_masks_unless_asked():
    shown = _conflict_sample(lineage_frame(), show_pii=True)
    assert shown == [
        {
            "master_id": "C0000002",
            "field": "full_name",
            "value": "Benjamin Rose",
            "rule": "medoid",
            "lost": "Benjamin Rase (1)",
        }
    ]
    masked = _conflict_sample(lineage_frame(), show_pii=False)
    assert "Benjamin Rose" not in json.dumps(masked, ensure_ascii=False)


def test_crm_names_profile_turns_name_noise_up_and_crm_stays_the_same(tmp_path):
    from crmclean.generate import generate
    from crmclean.generate.entities import build_entities

    info = generate(400, 5, tmp_path / "names", profile="crm_names")
    web = (tmp_path / "names" / "crm_web_us.csv").read_text(encoding="utf-8-sig")
    assert any(ch in web for ch in "áéíóúñ") and ("HYPERLINK" in web or "SUM(" in web or "cmd|" in web)
    ents = build_entities(400, 5, profile="crm_names")
    assert any(not f.isascii() for f, cn in zip(ents.first, ents.is_cn) if not cn)
    assert pd.read_csv(info["truth"])["entity_id"].notna().any()
    plain = build_entities(400, 5)
    assert all(f.isascii() for f, cn in zip(plain.first, plain.is_cn) if not cn)
