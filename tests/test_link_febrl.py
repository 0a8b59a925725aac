"""FEBRL3 through link + connected components: the accuracy floor of the matching model."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_febrl import febrl_rules, run  # noqa: E402

from pipeline.settings import load_rules  # noqa: E402

FAST = {"u_sample_pairs": 200_000}


def test_febrl3_pairwise_f1_with_the_febrl_profile():
    rules = febrl_rules()
    rules.matching.update(FAST)
    scores = run("febrl3", rules)
    assert scores["f1"] >= 0.99, scores
    assert scores["precision"] >= 0.999, scores


def test_febrl3_default_rules_never_merge_wrongly():
    """The CRM guards (twins: different or similar given name; no shared birth date/e-mail/mobile) send
    many FEBRL duplicates to review — FEBRL replaces given names at random and, without
    soc_sec_id, has no personal identifier but the often corrupted birth date — but nothing
    wrong is merged."""
    rules = load_rules()
    rules.matching.update(FAST)
    for with_id, min_recall in ((True, 0.8), (False, 0.55)):
        scores = run("febrl3", rules, with_id=with_id)
        assert scores["precision"] >= 0.999, scores
        assert scores["recall"] >= min_recall, scores
        assert scores["review"] > 500, scores  # the capped pairs wait for a person
