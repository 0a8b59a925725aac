"""Incremental link: only the records that can pair with a new or changed one are prepared and
blocked, with value frequencies counted over every record (see link(new_keys=...))."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .blocking import DEFAULT_MAX_BLOCK_SIZE, DEFAULT_RULES, Candidates, _key_texts, block, oversize_window_for
from .blocking import rule_codes, rule_columns, thins_oversize
from .compare import COMPARE_COLUMNS, IDENTITY_COLUMNS, SHARED_VALUE_COLUMNS, TF_COLUMNS, code_frequencies
from .compare import codes_and_texts, identical_group_sizes
from .decisions import _shared_value_limit

# ---------------------------------------------------------------- incremental: records near new ones


def near_new(frame: pd.DataFrame, matching: dict, is_new: np.ndarray, extras: tuple[str, ...] = ()):
    """The rows an incremental link needs, and what linking every row would know about them.

    Kept: new rows, every row sharing a usable block key value with one (a value held by at
    most max_block_size records; a larger block that blocking thins is kept whole), and for
    sorted-neighbourhood rules every holder of a usable value within the window of a new row's
    value, in the sorted order of all usable values.
    Value frequencies (shared-value limit, term frequencies) and block sizes are counted over
    every row, so the pairs and scores equal those of linking the whole frame; only the
    blocking summary's block statistics describe the rows kept.

    Returns (rows kept sorted by record_key with shared values nulled, is_new, term
    frequencies, per rule: is the row's key value usable over all rows, the largest identical
    group over all rows: it decides whether oversized blocks are thinned), or None when a rule
    blocks on something other than the comparison columns.
    """
    cfg = matching.get("blocking") or {}
    rules = cfg.get("rules") or DEFAULT_RULES
    max_block = int(cfg.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE))
    parts_of = [rule_columns(r) for r in rules]
    if any(not parts or any(p.partition(":")[0] not in COMPARE_COLUMNS for p in parts) for parts in parts_of):
        return None
    n = len(frame)
    limit = _shared_value_limit(matching)
    codes: dict[str, np.ndarray] = {}
    texts: dict[str, np.ndarray] = {}
    tf_columns = {c for spec in TF_COLUMNS.values() for c in spec.values()}
    needed = {p.partition(":")[0] for parts in parts_of for p in parts} | tf_columns | set(SHARED_VALUE_COLUMNS)
    needed |= set(IDENTITY_COLUMNS)
    for c in [c for c in COMPARE_COLUMNS if c in needed]:
        values = frame[c].to_numpy(dtype=object) if c in frame.columns else np.full(n, None, dtype=object)
        code, text = codes_and_texts(values)
        if limit and c in SHARED_VALUE_COLUMNS and len(text):
            junk = np.bincount(code[code >= 0], minlength=len(text)) > limit
            code = np.where((code >= 0) & junk[code.clip(min=0)], -1, code)
        codes[c], texts[c] = code, text

    # the columns as blocking sees them (row values and their codes, shared values nulled), so
    # the rule keys below are blocking's own (rule_codes, _key_texts)
    cols: dict = {}
    for c, code in codes.items():
        cols[c] = _RowTexts(texts[c], code)
        cols[c + "#"] = code

    keep = is_new.copy()
    usable: list[np.ndarray] = []
    group_sizes = identical_group_sizes({c: codes[c] for c in IDENTITY_COLUMNS})  # over every row
    largest = int(group_sizes.max(initial=0))
    window = oversize_window_for(cfg, largest)
    for rule, parts in zip(rules, parts_of):
        key = rule_codes(cols, parts)
        present = key >= 0
        counts = np.bincount(key[present]) if present.any() else np.zeros(0, np.int64)
        ok = present.copy()
        ok[present] = counts[key[present]] <= max_block
        if thins_oversize({"oversize_window": window, **rule}):
            # an oversized block holding a new row is kept whole: blocking thins it alike
            big = present & ~ok
            ok |= big & np.isin(key, np.unique(key[is_new & big]))
        usable.append(ok)
        if not ok.any():
            continue
        if rule.get("method", "block") != "sortedneighbourhood":
            keep |= np.isin(key, np.unique(key[is_new & ok]))
            continue
        # sorted neighbourhood: the usable values in the order blocking sorts them (their
        # parts' texts joined as blocking joins them), and the window around each new value
        rows = np.flatnonzero(ok)
        values, first = np.unique(key[rows], return_index=True)
        pick = rows[first]
        label = _key_texts(cols, parts, pick)
        order = values[np.argsort(label, kind="stable")]
        rank = np.full(len(counts), -1, np.int64)
        rank[order] = np.arange(len(order))
        new_ranks = np.unique(rank[key[is_new & ok]])
        half = (int(rule.get("window", 3)) - 1) // 2
        near = (new_ranks[:, None] + np.arange(-half, half + 1)[None, :]).ravel()
        near = np.unique(near[(near >= 0) & (near < len(order))])
        keep |= ok & np.isin(key, order[near])

    order = np.flatnonzero(keep)
    order = order[np.argsort(frame["record_key"].to_numpy(dtype=object)[order], kind="stable")]
    sub = frame.iloc[order].reset_index(drop=True)
    for c in SHARED_VALUE_COLUMNS:  # shared values nulled as prepare_columns would on the whole frame
        if c in sub.columns and c in codes:
            sub[c] = np.where(codes[c][order] >= 0, sub[c].to_numpy(dtype=object), None)
    tf: dict[str, np.ndarray] = {}
    weight = 1.0 / group_sizes  # compare.profile_weights: identical records count once
    for column in tf_columns:
        tf[column] = code_frequencies(codes[column], weight)[order]
    for column in extras:  # extra columns' value frequencies, over every row too
        if column in frame.columns:
            tf[column] = code_frequencies(codes_and_texts(frame[column].to_numpy(dtype=object))[0], weight)[order]
    return sub, is_new[order], tf, [u[order] for u in usable], largest


class _RowTexts:
    """A column's text per row, gathered only for the rows asked: the rule keys read the rows
    of each distinct value and the sorted-neighbourhood labels a few more, never all 365k."""

    def __init__(self, texts: np.ndarray, code: np.ndarray):
        self._texts = np.append(texts, np.array([None], dtype=object))
        self._code = code

    def __getitem__(self, rows) -> np.ndarray:
        return self._texts[self._code[rows]]

    def __len__(self) -> int:
        return len(self._code)


def _block_usable(
    cols: dict[str, np.ndarray], matching: dict, is_new: np.ndarray, usable: list[np.ndarray], largest_group: int
) -> Candidates:
    """block() rule by rule on the rows near new ones, each rule seeing only the rows whose key
    value is usable over all rows (the others get no key: a value too frequent overall stays
    skipped even if few of its holders were kept). Same union and rule bits as block()."""
    cfg = matching.get("blocking") or {}
    rules = cfg.get("rules") or DEFAULT_RULES
    n = len(is_new)
    chunks_i, chunks_j, chunks_m, summaries = [], [], [], []
    for b, (rule, ok) in enumerate(zip(rules, usable)):
        column = rule_columns(rule)[0].partition(":")[0]
        view = dict(cols)
        view[column] = np.where(ok, cols[column], np.array(None, dtype=object))
        if column + "#" in cols:  # blocking reads the codes
            view[column + "#"] = np.where(ok, cols[column + "#"], -1).astype(cols[column + "#"].dtype)
        one = block(view, {**matching, "blocking": {**cfg, "rules": [rule]}}, is_new, largest_group=largest_group)
        chunks_i.append(one.left.astype(np.int64))
        chunks_j.append(one.right.astype(np.int64))
        chunks_m.append(np.where(one.rule_mask > 0, 1 << b, 0).astype(np.int64))
        summaries.append(one.summary)
    names = [str(r.get("name") or f"rule{b + 1}") for b, r in enumerate(rules)]
    i, j, m = np.concatenate(chunks_i), np.concatenate(chunks_j), np.concatenate(chunks_m)
    if len(i):
        pair_id = i * max(n, 1) + j
        order = np.argsort(pair_id, kind="stable")
        pair_id, m = pair_id[order], m[order]
        starts = np.flatnonzero(np.r_[True, pair_id[1:] != pair_id[:-1]])
        mask = np.bitwise_or.reduceat(m, starts)
        uniq = pair_id[starts]
        left, right = (uniq // n).astype(np.int32), (uniq % n).astype(np.int32)
    else:
        left = right = np.empty(0, np.int32)
        mask = np.empty(0, np.int64)
    return Candidates(left, right, mask, names, pd.concat(summaries, ignore_index=True))
