"""Link's memory per candidate pair (issue 14): what the parent holds beside the comparison
and while scoring does not take a full-length transient per candidate."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd

from crmclean.link import training
from crmclean.link.blocking import Candidates


def _candidates(n_rows: int, per_row: int) -> Candidates:
    """Every row paired with its next ``per_row`` rows, sorted by pair id as block() gives them."""
    left = np.repeat(np.arange(n_rows, dtype=np.int32), per_row)
    right = (left + np.tile(np.arange(1, per_row + 1, dtype=np.int32), n_rows)).astype(np.int32)
    keep = right < n_rows
    mask = np.ones(int(keep.sum()), dtype=np.int16)
    return Candidates(left[keep], right[keep], mask, ["near"], pd.DataFrame())


def test_known_levels_finds_each_candidate_without_a_pair_id_per_candidate(monkeypatch):
    cand = _candidates(200_000, 10)  # ≈ 2M candidates
    rng = np.random.default_rng(3)
    left = rng.integers(0, 199_990, 5000)
    right = left + rng.integers(1, 20, 5000)  # half of them candidates, half not
    have = cand.left.astype(np.int64) * 200_000 + cand.right
    expected = np.searchsorted(have, left * 200_000 + right)
    expected = np.where(have[expected.clip(max=len(have) - 1)] == left * 200_000 + right, expected, -1)
    monkeypatch.setattr(training, "KNOWN_PART_PAIRS", 100_000, raising=False)
    tracemalloc.start()
    try:
        pos = training._known_levels(cand, left, right)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (pos == expected).all() and 0 < (pos >= 0).sum() < len(pos)
    # whole, the candidates' int64 pair ids and their int64 copy of left: 16 bytes a candidate
    assert peak < 2 * len(cand.left), peak
