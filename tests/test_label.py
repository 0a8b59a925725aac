"""crmclean label: the sampler, labels stored as review decisions, refine_model, the CLI."""

from __future__ import annotations

import copy
import sqlite3

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crmclean.cli import app
from crmclean.label import (
    candidate_pool,
    em_weights,
    latest_labels,
    pick_uncertain,
    pattern_codes,
    refine_model,
    weighted_pick,
)
from crmclean.link import levels_frame, train_supervised
from crmclean.link.compare import FEATURE_NAMES, FEATURES
from crmclean.link.model import model_compatible, weight_tables

FIRST = FEATURE_NAMES.index("first_name")
BIRTH = FEATURE_NAMES.index("birth_date")


def _level(feature: str, label: str) -> int:
    return FEATURES[feature].index(label)


# ---------------------------------------------------------------- the sampler


def _sampler_case():
    """10 near-identical pairs at p≈0.5 (one level pattern), 5 other patterns a little less
    uncertain, and certain pairs that must never be asked."""
    same = np.tile(np.arange(1, len(FEATURE_NAMES) + 1) % 3, (10, 1))
    others = np.array([same[0] + np.eye(len(FEATURE_NAMES), dtype=int)[k] for k in range(5)])
    certain = np.ones((4, len(FEATURE_NAMES)), dtype=int)
    levels = np.vstack([same, others, certain]).astype(np.int8)
    prob = np.r_[0.5 + np.linspace(-0.01, 0.01, 10), [0.35, 0.6, 0.7, 0.3, 0.62], [0.001, 0.999, 0.9999, 0.01]]
    return prob, levels


def test_sampler_asks_the_most_uncertain_pairs_only():
    prob, levels = _sampler_case()
    pick = pick_uncertain(prob, levels, 20)
    assert len(pick) == 15  # every pair in the band, none of the certain ones
    assert set(pick) == set(range(15))
    assert abs(prob[pick[0]] - 0.5) == np.abs(prob[:15] - 0.5).min()


def test_sampler_spreads_questions_over_level_patterns():
    prob, levels = _sampler_case()
    plain = pick_uncertain(prob, levels, 6, diversity=0.0)
    assert len(set(pattern_codes(levels[plain]))) == 1  # without diversity: six near-identical pairs
    spread = pick_uncertain(prob, levels, 6)
    # a second near-identical pair counts 0.15 less uncertain: it comes after the patterns at
    # p = 0.6, 0.62, 0.35 and before those at 0.3 and 0.7
    assert (spread < 10).sum() == 2 and len(set(pattern_codes(levels[spread]))) == 5
    assert list(np.round(prob[spread[1:4]], 2)) == [0.6, 0.62, 0.35] and spread[4] < 10
    assert spread[0] in plain[:1]  # the most uncertain pair still comes first


def test_sampler_skips_labelled_pairs():
    prob, levels = _sampler_case()
    first = pick_uncertain(prob, levels, 3)
    done = np.zeros(len(prob), dtype=bool)
    done[first] = True
    again = pick_uncertain(prob, levels, 3, exclude=done)
    assert not set(first) & set(again)


def test_weighted_sampler_draws_from_the_band_only():
    prob, levels = _sampler_case()
    done = np.zeros(len(prob), dtype=bool)
    done[[0, 11]] = True
    pick = weighted_pick(prob, levels, 10, exclude=done, seed=3)
    assert len(pick) == 10 and set(pick) <= set(range(15)) - {0, 11}
    assert list(pick) == list(weighted_pick(prob, levels, 10, exclude=done, seed=3))  # a seed, one draw
    distance = np.abs(prob[pick] - 0.5)
    assert (np.diff(distance) >= 0).all()  # asked most uncertain first


def test_latest_labels_one_per_unordered_pair():
    decisions = pd.DataFrame(
        {
            "record_key_l": ["b|1", "a|1", "a|2"],
            "record_key_r": ["a|1", "b|1", "c|2"],
            "decision": ["match", "no_match", "match"],
            "decided_at": ["2026-01-01", "2026-01-02", "2026-01-01"],
            "origin": ["label", "review:x.csv", "label"],
        }
    )
    got = latest_labels(decisions)
    assert sorted(zip(got["record_key_l"], got["record_key_r"], got["decision"])) == [
        ("a|1", "b|1", "no_match"),
        ("a|2", "c|2", "match"),
    ]


# ---------------------------------------------------------------- refine_model


@pytest.fixture(scope="module")
def em_like_model():
    """A model in which a different given name is strong evidence against a match."""
    rng = np.random.default_rng(0)
    n = 400
    levels = np.ones((n, len(FEATURE_NAMES)), dtype=np.int8)
    y = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    diff_first, diff_birth = _level("first_name", "different"), _level("birth_date", "different")
    levels[~y, FIRST] = diff_first
    levels[~y, BIRTH] = np.where(rng.random(n // 2) < 0.7, diff_birth, 1)
    levels[y, BIRTH] = np.where(rng.random(n // 2) < 0.1, diff_birth, 1)
    return train_supervised(levels_frame(levels), y, prior=1e-4)


def _contradicting_labels():
    """People say: a different given name with the same birth date is the same customer (a
    nickname, a typo); the same given name with another birth date is not."""
    rows, y = [], []
    for _k in range(30):
        lv = np.ones(len(FEATURE_NAMES), dtype=np.int8)
        lv[FIRST] = _level("first_name", "different")
        rows.append(lv), y.append("match")
        lv = np.ones(len(FEATURE_NAMES), dtype=np.int8)
        lv[BIRTH] = _level("birth_date", "different")
        rows.append(lv), y.append("no_match")
    return np.array(rows), y


@pytest.mark.parametrize("method", ["fs", "classifier"])
def test_refine_model_moves_weights_toward_the_labels(em_like_model, method):
    before = copy.deepcopy(em_like_model)
    levels, labels = _contradicting_labels()
    refined = refine_model(em_like_model, levels, labels, method=method)
    assert em_like_model == before  # pure
    assert model_compatible(refined) and set(refined) >= set(before)
    old, new = weight_tables(before, {}), weight_tables(refined, {})
    diff_first, diff_birth = _level("first_name", "different"), _level("birth_date", "different")
    assert new["first_name"][diff_first] > old["first_name"][diff_first] + 1.0
    # EM ranks the pattern people call a match far below the one they call no match; the
    # refined model narrows that gap by more than 2 bits
    said_match, said_no = levels[0:1], levels[1:2]
    gap_before = em_weights(before, said_match)[0][0] - em_weights(before, said_no)[0][0]
    gap_after = em_weights(refined, said_match)[0][0] - em_weights(refined, said_no)[0][0]
    assert gap_before < 0 and gap_after > gap_before + 2.0
    if method == "fs":  # m from the labelled matches: they all share the birth date
        assert new["birth_date"][diff_birth] < old["birth_date"][diff_birth]
    assert refined["training"]["labels"] == {"method": method, "pairs": 60, "matches": 30}


def test_refine_model_accepts_a_levels_frame_and_no_labels(em_like_model):
    levels, labels = _contradicting_labels()
    by_codes = refine_model(em_like_model, levels, labels)
    by_frame = refine_model(em_like_model, levels_frame(levels), [lab == "match" for lab in labels])
    assert by_codes["comparisons"] == by_frame["comparisons"]
    unchanged = refine_model(em_like_model, levels[:0], [])
    assert unchanged["comparisons"] == em_like_model["comparisons"]
    with pytest.raises(ValueError):
        refine_model(em_like_model, levels, labels[:-1])


# ---------------------------------------------------------------- the command on a real master


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    """A master published by a whole run on generator data (a few hundred customers)."""
    from crmclean.generate import generate
    from crmclean.run import RunOptions, run_pipeline

    work = tmp_path_factory.mktemp("label")
    generate(400, 5, work / "data")
    url = f"sqlite:///{work / 'master.db'}"
    run_pipeline(RunOptions(inputs=[work / "data"], db_url=url, out_dir=work / "out", workers=1))
    return work / "master.db"


def _labels(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT record_key_l, record_key_r, decision, origin FROM review_decision ORDER BY decided_at"
        ).fetchall()


def test_label_answers_are_stored_as_review_decisions(master, tmp_path):
    db = tmp_path / "copy.db"
    db.write_bytes(master.read_bytes())
    url = f"sqlite:///{db}"
    answers = tmp_path / "answers.txt"
    answers.write_text("y\nmaybe\nn\ns\nq\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["label", "--db", url, "--answers", str(answers), "--pairs", "5"])
    assert result.exit_code == 0, result.output
    assert "not 'maybe'" in result.output and "recorded 1 match and 1 no-match labels (1 skipped)" in result.output
    first = _labels(db)
    assert [(d, o) for *_, d, o in first] == [("match", "label"), ("no_match", "label")]
    assert all(a < b for a, b, *_ in first)

    # a second session learns from them and never asks the same pair again
    result = CliRunner().invoke(app, ["label", "--db", url, "--pairs", "2"], input="n\nn\n")
    assert result.exit_code == 0, result.output
    assert "2 labelled before (2 of them train the model)" in result.output
    second = _labels(db)[2:]
    assert len(second) == 2 and not {p[:2] for p in second} & {p[:2] for p in first}


def test_label_masks_personal_data_unless_asked(master, tmp_path):
    from crmclean.settings import load_rules
    from crmclean.store import open_store

    db = tmp_path / "copy.db"
    db.write_bytes(master.read_bytes())
    url = f"sqlite:///{db}"
    store = open_store(url)
    try:
        state = store.load_state()
    finally:
        store.close()
    pool = candidate_pool(state.records, load_rules(), state.model)
    top = pool.pairs.iloc[int(pick_uncertain(pool.pairs["match_probability"].to_numpy(), pool.levels, 1)[0])]
    record = state.records.set_index("record_key").loc[top["record_key_l"]]
    email = record["email_std"] or record["mobile_std"] or record["birth_date_std"]
    assert email
    masked = CliRunner().invoke(app, ["label", "--db", url, "--pairs", "1", "--sampler", "uncertainty"], input="s\n")
    shown = CliRunner().invoke(
        app, ["label", "--db", url, "--pairs", "1", "--show-pii", "--sampler", "uncertainty"], input="s\n"
    )
    assert masked.exit_code == shown.exit_code == 0
    assert email not in masked.output.replace("\n", "") and "***" in masked.output
    assert email[:10] in shown.output


def test_label_without_a_run_says_so_and_creates_nothing(tmp_path):
    db = tmp_path / "nothing" / "master.db"
    result = CliRunner().invoke(app, ["label", "--db", f"sqlite:///{db}"], input="q\n")
    assert result.exit_code == 1
    assert f"no crmclean master at sqlite:///{db}: run 'crmclean run' first" in " ".join(result.output.split())
    assert not db.exists() and not db.parent.exists()


def test_label_on_an_empty_master_says_so(tmp_path):
    from crmclean.store import open_store

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).close()  # the schema, no run
    result = CliRunner().invoke(app, ["label", "--db", url], input="q\n")
    assert result.exit_code == 1
    assert "no run has published a master" in result.output


def test_stored_labels_refine_the_next_runs_model(master, tmp_path, monkeypatch):
    """Labels from `crmclean label` reach the next run's link stage (and its saved model is the
    EM one, not the refined one)."""
    import crmclean.link as link_module
    from crmclean.run import RunOptions, run_pipeline

    db = tmp_path / "copy.db"
    db.write_bytes(master.read_bytes())
    url = f"sqlite:///{db}"
    result = CliRunner().invoke(app, ["label", "--db", url, "--pairs", "3"], input="y\nn\ny\n")
    assert result.exit_code == 0, result.output
    seen = []
    real = link_module.link

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out.usage)
        return out

    monkeypatch.setattr(link_module, "link", spy)
    data = master.parent / "data"
    run_pipeline(RunOptions(inputs=[data], db_url=url, out_dir=tmp_path / "out", workers=1, retrain=True))
    assert seen and seen[0]["labels"] == len(_labels(db)) == 3
    with sqlite3.connect(db) as conn:
        saved = conn.execute("SELECT * FROM match_model").fetchall()
    assert saved and all('"labels"' not in str(row) for row in saved)
