"""Link's per-pair memory does not grow with the blocks: the union, the level matrix, training.

Each test checks that a bounded way of working gives what the whole-array way gave."""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import Future

import numpy as np
import pandas as pd

from crmclean.link import blocking, model, parallel
from crmclean.link.blocking import block
from crmclean.link.compare import prepare_columns


def _people(n: int = 600, seed: int = 5) -> pd.DataFrame:
    """Few names and birth dates, so blocks are large and rules overlap."""
    rng = np.random.default_rng(seed)
    first = rng.choice(["ann", "bob", "cy", "dee", "eve", "fay"], n)
    last = rng.choice(["lee", "ng", "roe", "poe"], n)
    dob = [f"19{rng.integers(50, 53)}-0{rng.integers(1, 3)}-1{rng.integers(0, 3)}" for _ in range(n)]
    frame = pd.DataFrame(
        {
            "record_key": [f"k{i:05d}" for i in range(n)],
            "first_name_key": first,
            "last_name_key": last,
            "birth_date_std": dob,
            "postal_code_std": rng.choice(["1000", "2000", "3000"], n),
        }
    )
    return frame.assign(name_key=frame["first_name_key"] + " " + frame["last_name_key"])


RULES = {
    "blocking": {
        "max_block_size": 60,
        "rules": [
            {"name": "name", "columns": ["name_key"]},
            {"name": "dob_last", "columns": ["birth_date_std", "last_name_key:initial"]},
            {"name": "postal_last", "columns": ["postal_code_std", "last_name_key"]},
            {"name": "near", "method": "sortedneighbourhood", "columns": "name_key", "window": 3},
        ],
    }
}


def _whole_union(cols, matching):
    """The union as one sort of every rule's packed pairs (the earlier way)."""
    cfg = matching["blocking"]
    rules = [{"oversize_window": 0, **r} for r in cfg["rules"]]  # no identical groups: nothing thinned
    results = [blocking.rule_pairs(cols, r, b, cfg["max_block_size"], None) for b, r in enumerate(rules)]
    n = len(cols["name_key"])
    packed = np.sort(np.concatenate([(r[2].astype(np.int64) * n + r[3]) * 64 + b for b, r in enumerate(results)]))
    pair_id, bits = packed >> 6, np.left_shift(np.int64(1), packed & 63)
    starts = np.flatnonzero(np.r_[True, pair_id[1:] != pair_id[:-1]])
    return pair_id[starts] // n, pair_id[starts] % n, np.bitwise_or.reduceat(bits, starts)


def test_union_by_ranges_of_rows_equals_one_sort_and_keeps_a_small_mask(monkeypatch):
    cols = prepare_columns(_people())
    left, right, mask = _whole_union(cols, RULES)
    monkeypatch.setattr(blocking, "UNION_PART_PAIRS", 1000)  # many ranges
    cand = block(cols, RULES)
    assert len(left) > 5000
    assert (cand.left == left).all() and (cand.right == right).all() and (cand.rule_mask == mask).all()
    assert cand.rule_mask.dtype == np.int16  # 4 rules: 2 bytes a pair, not 8


def test_level_patterns_in_chunks_equal_the_whole_matrix(monkeypatch):
    levels = np.random.default_rng(2).integers(0, 4, size=(5000, 6)).astype(np.int8)
    whole_rows, whole_counts = model._patterns(levels[:, [0, 2, 5]])
    monkeypatch.setattr(model, "PATTERN_ROWS", 700)
    rows, counts = model.level_patterns(levels, [0, 2, 5])
    assert (rows == whole_rows).all() and (counts == whole_counts).all() and counts.sum() == 5000


def test_a_training_session_is_sampled_without_making_its_pairs(monkeypatch):
    from crmclean.link.blocking import block_pairs_at

    cols = prepare_columns(_people())
    session = {"blocking": {"max_block_size": 60, "rules": [{"name": "dob", "columns": ["birth_date_std"]}]}}
    full = block(cols, session)
    take = np.sort(np.random.default_rng(1).choice(len(full.left), size=500, replace=False))
    monkeypatch.setattr(blocking, "_group_pairs", None)  # enumerating every pair would fail
    left, right = block_pairs_at(cols, session, lambda total: take if total == len(full.left) else None)
    assert (left == full.left[take]).all() and (right == full.right[take]).all()


class _DonePool:
    """A pool whose chunks are done at once (the parent is busy elsewhere meanwhile)."""

    def __init__(self):
        self.results: list[weakref.ref] = []

    def usable(self):
        return True

    def get(self):
        return self

    def submit(self, fn, left, right):
        levels = np.zeros((len(left), 3), np.int8) + 1
        self.results.append(weakref.ref(levels))
        future: Future = Future()
        future.set_result(levels)
        return future


def test_a_compared_chunk_is_let_go_once_copied(monkeypatch):
    monkeypatch.setattr(parallel, "FEATURE_NAMES", ("a", "b", "c"))
    pool = _DonePool()
    wait = parallel._levels_later({}, np.arange(100), np.arange(100) + 1, 10, pool)  # type: ignore[arg-type]
    gc.collect()
    assert len(pool.results) == 10 and all(r() is None for r in pool.results)  # not held twice until wait()
    assert (wait() == 1).all()
