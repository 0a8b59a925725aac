"""Link's memory per candidate pair (issue 14): what the parent holds beside the comparison
and while scoring does not take a full-length transient per candidate."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from concurrent.futures import Future

import numpy as np
import pytest
import pandas as pd

from crmclean.link import link, model, parallel, training
from crmclean.link.blocking import Candidates
from test_link import R, synthetic


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


class _DonePool:
    """A pool whose chunks are compared at once: each pair's levels are its left row's number."""

    def usable(self):
        return True

    def get(self):
        return self

    def submit(self, fn, left, right):
        future: Future = Future()
        future.set_result(np.repeat((left % 100).astype(np.int8)[:, None], 3, axis=1))
        return future


def test_the_candidates_levels_wait_in_a_file_read_a_part_at_a_time(monkeypatch):
    monkeypatch.setattr(parallel, "FEATURE_NAMES", ("a", "b", "c"))
    n = 3_000_000
    left, right = np.arange(n, dtype=np.int32), np.arange(1, n + 1, dtype=np.int32)
    tracemalloc.start()
    try:
        levels = parallel._levels_later({}, left, right, 100_000, _DonePool(), on_disk=True)()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < n  # in memory the matrix was 3 bytes a pair, held to the end of scoring
    whole = np.repeat((left % 100).astype(np.int8)[:, None], 3, axis=1)
    assert len(levels) == n and levels.shape == (n, 3)
    assert (levels[:] == whole).all() and (levels[5:250_007] == whole[5:250_007]).all()
    monkeypatch.setattr(parallel, "LEVEL_FILE_ROWS", 7_000)  # a gather over many parts
    at = np.random.default_rng(1).integers(0, n, 20_000)
    at[:3] = [n - 1, 0, n - 1]  # any order, repeats, both ends
    assert (levels[at] == whole[at]).all() and levels[np.zeros(0, np.int64)].shape == (0, 3)
    rows, counts = model.level_patterns(levels)  # training's pass over every candidate
    assert len(rows) == 100 and counts.sum() == n


def test_link_scores_the_same_with_its_levels_in_a_file():
    frame, _ = synthetic(n_people=300)
    whole = link(frame, R(), workers=1)
    parts = link(frame, R(chunk_size=200), workers=2)  # chunks compared in two workers: a LevelFile
    assert len(whole.pairs) > 100
    pd.testing.assert_frame_equal(parts.pairs.astype({"evidence": object}), whole.pairs.astype({"evidence": object}))
    assert {k: v for k, v in parts.model.items() if k != "created"} == {
        k: v for k, v in whole.model.items() if k != "created"
    }


CHECK_MAPPING = """
import ctypes
import numpy as np
from crmclean.link import parallel

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def own_mapping(make):
    # glibc's bytes in mappings of their own (hblkhd) grow by the array: where it lies in the
    # address space does not tell (a heap that cannot grow in place continues in a mapping)
    mapped = libc.mallinfo2().hblkhd
    array = make()
    return libc.mallinfo2().hblkhd - mapped >= array.nbytes, array

large = np.ones(24 * 1024 * 1024, np.uint8)
del large  # glibc's dynamic threshold rises to the size of the mapped array freed: 24 MB
before, kept = own_mapping(lambda: np.ones(3 * 1024 * 1024, np.uint8))
with parallel.large_arrays_mapped():
    inside, kept_inside = own_mapping(lambda: np.ones(3 * 1024 * 1024, np.uint8))
print(before, inside)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_during_link_a_large_array_has_its_own_mapping_after_a_larger_one_was_freed():
    """In a fresh process (a heap with large free holes serves any size from them), with glibc's
    defaults: a malloc setting in the environment (Dask's nanny puts MALLOC_TRIM_THRESHOLD_ in
    this process's environment when a test starts a cluster) turns the dynamic threshold off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", CHECK_MAPPING], capture_output=True, text=True, check=True, env=env)
    # before: from the heap (a hole in it when freed); inside: its own mapping, given back when freed
    assert out.stdout.split() == ["False", "True"]
