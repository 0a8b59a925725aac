"""Candidate pairs: several blocking rules unioned, never all pairs.

Each rule is a list of key parts (a column, optionally with a transform: ``initial``,
``soundex``, ``year``). Exact-key rules are pandas self-merges on the factorized key (faster
than recordlinkage's Block, same result); sorted-neighbourhood rules use recordlinkage's
``SortedNeighbourhood`` index to catch typos in the sorting key. A key value shared by more
than ``max_block_size`` records (a switchboard number, a placeholder that slipped through) is
skipped and reported instead of exploding into a giant block.

Rows are addressed by position in a frame sorted by ``record_key``, so ``left < right``
means ``record_key_l < record_key_r``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import recordlinkage

from ..errors import RulesError

DEFAULT_RULES: list[dict] = [
    {"name": "phone", "columns": ["phone_std"]},
    {"name": "mobile", "columns": ["mobile_std"]},
    {"name": "landline", "columns": ["landline_std"]},
    {"name": "email", "columns": ["email_key"]},
    # a personal number (SSN, 身份证号); a value shared by many records is skipped like any key
    {"name": "national_id", "columns": ["national_id_std"]},
    {"name": "name", "columns": ["name_key"]},
    # a common name (张伟, John Smith) is a block too big to keep; with the birth date it is not
    {"name": "name_dob", "columns": ["name_key", "birth_date_std"]},
    {"name": "dob_last_initial", "columns": ["birth_date_std", "last_name_key:initial"]},
    {"name": "dob_first_initial", "columns": ["birth_date_std", "first_name_key:initial"]},
    {"name": "postal_last", "columns": ["postal_code_std", "last_name_key"]},
    {"name": "last_first_initial_city", "columns": ["last_name_key", "first_name_key:initial", "city_std"]},
    {"name": "address", "columns": ["address_std"]},
    {"name": "soundex_dob_year", "columns": ["last_name_key:soundex", "first_name_key:initial", "birth_date_std:year"]},
    {"name": "name_neighbourhood", "method": "sortedneighbourhood", "columns": "name_key", "window": 3},
]
DEFAULT_MAX_BLOCK_SIZE = 50
TRANSFORMS = ("initial", "soundex", "year")
_SOUNDEX = {c: d for d, letters in {"1": "bfpv", "2": "cgjkqsxz", "3": "dt", "4": "l", "5": "mn", "6": "r"}.items() for c in letters}


def soundex(value: str | None) -> str | None:
    """American soundex of an ASCII name key (pinyin keys are ASCII too)."""
    if not value:
        return None
    letters = [c for c in value.lower() if c.isalpha() and c.isascii()]
    if not letters:
        return None
    code, last = letters[0].upper(), _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        d = _SOUNDEX.get(c, "")
        if d and d != last:
            code += d
        if c not in "hw":
            last = d
    return (code + "000")[:4]


def rule_columns(rule) -> list[str]:
    """A rule's key parts; `on` is accepted as an alias (YAML 1.1 reads a bare `on` as true)."""
    if not isinstance(rule, dict):
        return []
    cols = rule.get("columns", rule.get("on", rule.get(True)))
    if cols is None:
        return []
    return [str(c) for c in (cols if isinstance(cols, list) else [cols])]


@dataclass
class Candidates:
    left: np.ndarray  # int32 row positions, left < right
    right: np.ndarray
    rule_mask: np.ndarray  # int64 bitmask of the rules that produced each pair
    rule_names: list[str]
    summary: pd.DataFrame  # rule, method, pairs, largest_block, skipped_keys, skipped_records, skipped_examples

    def rules_text(self, mask: np.ndarray) -> np.ndarray:
        """';'-joined rule names for each bitmask (computed once per distinct mask)."""
        uniq, inv = np.unique(mask, return_inverse=True)
        names = [";".join(n for b, n in enumerate(self.rule_names) if int(m) >> b & 1) for m in uniq]
        return np.asarray(names, dtype=object)[inv]


def _key_part(frame_cols: dict[str, np.ndarray], part: str) -> np.ndarray:
    column, _, transform = part.partition(":")
    if column not in frame_cols:
        raise RulesError("rules/matching.yaml", f"blocking key uses unknown column {column!r}")
    values = frame_cols[column]
    if not transform:
        return values
    if transform not in TRANSFORMS:
        raise RulesError("rules/matching.yaml", f"unknown blocking transform {transform!r} (use {', '.join(TRANSFORMS)})")
    s = pd.Series(values, dtype="object")
    uniq = s.dropna().unique()
    if transform == "initial":
        mapping = {u: u[:1] for u in uniq}
    elif transform == "year":
        mapping = {u: u[:4] for u in uniq}
    else:
        mapping = {u: soundex(u) for u in uniq}
    out = s.map(mapping).astype(object)
    return out.where(out.notna(), None).to_numpy(dtype=object)


def blocking_key(frame_cols: dict[str, np.ndarray], parts: list[str]) -> np.ndarray:
    """Joined key per row; None when any part is missing (a missing value never blocks)."""
    arrays = [_key_part(frame_cols, p) for p in parts]
    if len(arrays) == 1:
        return arrays[0]
    missing = np.zeros(len(arrays[0]), dtype=bool)
    for a in arrays:
        missing |= a == None  # noqa: E711
    joined = np.full(len(arrays[0]), None, dtype=object)
    ok = np.flatnonzero(~missing)
    joined[ok] = ["\x1f".join(t) for t in zip(*(a[ok] for a in arrays))]
    return joined


def _block_codes(key: np.ndarray, max_block: int) -> tuple[np.ndarray, dict]:
    """Factorized key with oversize blocks and singletons set to -1, plus stats."""
    codes, uniques = pd.factorize(pd.Series(key, dtype="object"), use_na_sentinel=True)
    valid = codes >= 0
    if not len(uniques):
        empty = {"largest_block": 0, "skipped_keys": 0, "skipped_records": 0, "skipped_examples": ""}
        return np.full(len(codes), -1, dtype=np.int64), empty
    sizes = np.bincount(codes[valid], minlength=len(uniques))
    oversize = np.flatnonzero(sizes > max_block)
    usable = sizes[codes.clip(min=0)]
    keep = valid & (usable >= 2) & (usable <= max_block)
    codes = np.where(keep, codes, -1)
    kept_sizes = sizes[sizes <= max_block]
    stats = {
        "largest_block": int(kept_sizes.max()) if len(kept_sizes) else 0,
        "skipped_keys": int(len(oversize)),
        "skipped_records": int(sizes[oversize].sum()),
        "skipped_examples": "; ".join(
            f"{str(uniques[k]).replace(chr(31), ' ')} ({sizes[k]})" for k in oversize[np.argsort(-sizes[oversize])][:5]
        ),
    }
    return codes, stats


def _pairs_from_codes(codes: np.ndarray, is_new: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """All pairs inside each block (self-merge), restricted to pairs touching a new row."""
    pos = np.flatnonzero(codes >= 0)
    if len(pos) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    right = pd.DataFrame({"c": codes[pos], "j": pos})
    left = right if is_new is None else right[is_new[pos]]
    left = left.rename(columns={"j": "i"})
    m = left.merge(right, on="c", how="inner", sort=False)
    i, j = m["i"].to_numpy(), m["j"].to_numpy()
    keep = i < j if is_new is None else i != j
    i, j = i[keep], j[keep]
    return np.minimum(i, j), np.maximum(i, j)


def _sorted_neighbourhood(key: np.ndarray, window: int, max_block: int, is_new: np.ndarray | None):
    """recordlinkage's sorted-neighbourhood index on the key, frequent values left out."""
    if window < 1 or window % 2 == 0:
        raise RulesError("rules/matching.yaml", f"sorted-neighbourhood window must be a positive odd number, got {window}")
    codes, stats = _block_codes(key, max_block)
    # singletons are kept here: the window pairs neighbouring distinct values
    s = pd.Series(key, dtype="object")
    counts = s.map(s.value_counts())
    usable = s.notna() & (counts <= max_block)
    frame = pd.DataFrame({"k": s[usable].astype(str)}, index=np.flatnonzero(usable.to_numpy()))
    if len(frame) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), stats
    indexer = recordlinkage.Index()
    indexer.sortedneighbourhood(left_on="k", window=window)
    if is_new is None:
        mi = indexer.index(frame)
    else:
        new_frame = frame[is_new[frame.index.to_numpy()]]
        if new_frame.empty:
            return np.empty(0, np.int64), np.empty(0, np.int64), stats
        mi = indexer.index(new_frame, frame)
    a = mi.get_level_values(0).to_numpy(dtype=np.int64)
    b = mi.get_level_values(1).to_numpy(dtype=np.int64)
    keep = a != b
    a, b = a[keep], b[keep]
    return np.minimum(a, b), np.maximum(a, b), stats


def block(
    cols: dict[str, np.ndarray],
    matching: dict,
    is_new: np.ndarray | None = None,
) -> Candidates:
    """Union of the configured blocking rules, deduplicated, with per-rule statistics."""
    cfg = matching.get("blocking") or {}
    rules = cfg.get("rules") or DEFAULT_RULES
    max_block = int(cfg.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE))
    if len(rules) > 62:
        raise RulesError("rules/matching.yaml", "at most 62 blocking rules are supported")
    n = len(next(iter(cols.values()))) if cols else 0
    chunks_i, chunks_j, chunks_m, rows, names = [], [], [], [], []
    for b, rule in enumerate(rules):
        parts = rule_columns(rule)
        if not parts:
            raise RulesError("rules/matching.yaml", f"blocking rule #{b + 1} needs 'columns' (a column or list of columns)")
        name = str(rule.get("name") or f"rule{b + 1}")
        names.append(name)
        method = rule.get("method", "block")
        key = blocking_key(cols, parts)
        if method == "sortedneighbourhood":
            i, j, stats = _sorted_neighbourhood(key, int(rule.get("window", 3)), max_block, is_new)
        elif method == "block":
            codes, stats = _block_codes(key, max_block)
            i, j = _pairs_from_codes(codes, is_new)
        else:
            raise RulesError("rules/matching.yaml", f"blocking rule {name!r}: unknown method {method!r}")
        chunks_i.append(i)
        chunks_j.append(j)
        chunks_m.append(np.full(len(i), 1 << b, dtype=np.int64))
        rows.append({"rule": name, "method": method, "pairs": int(len(i)), **stats})
    if chunks_i and n:
        i = np.concatenate(chunks_i).astype(np.int64)
        j = np.concatenate(chunks_j).astype(np.int64)
        m = np.concatenate(chunks_m)
        pair_id = i * n + j
        order = np.argsort(pair_id, kind="stable")
        pair_id, m = pair_id[order], m[order]
        starts = np.flatnonzero(np.r_[True, pair_id[1:] != pair_id[:-1]]) if len(pair_id) else np.empty(0, np.int64)
        mask = np.bitwise_or.reduceat(m, starts) if len(starts) else np.empty(0, np.int64)
        uniq = pair_id[starts]
        left, right = (uniq // n).astype(np.int32), (uniq % n).astype(np.int32)
    else:
        left = right = np.empty(0, np.int32)
        mask = np.empty(0, np.int64)
    summary = pd.DataFrame(
        rows, columns=["rule", "method", "pairs", "largest_block", "skipped_keys", "skipped_records", "skipped_examples"]
    )
    return Candidates(left, right, mask, names, summary)
