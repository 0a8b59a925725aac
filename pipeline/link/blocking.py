"""Candidate pairs: several blocking rules unioned, never all pairs.

Each rule is a list of key parts (a column, optionally with a transform: ``initial``,
``soundex``, ``year``, ``first_word``: a given name's first word, without its middle names). Keys are built from prepare_columns' integer codes (a transform runs
once per distinct value), and the pairs of each block are enumerated with numpy (no pandas
self-merge, no joined text keys). Sorted-neighbourhood rules pair records whose key values are
neighbours in sorted order (recordlinkage's ``SortedNeighbourhood`` definition) to catch typos
in the sorting key. A key value shared by more than ``max_block_size`` records is reported and
never enumerated whole: a contact value (a switchboard number, a placeholder that slipped
through) is skipped; a name, date or place block is skipped too, unless the data shows one
person holding that many records (``oversize_window_for``), and then thinned to each record's
next ``oversize_window`` - 1 neighbours in the order of its other evidence (``thins_oversize``).

Rows are addressed by position in a frame sorted by ``record_key``, so ``left < right``
means ``record_key_l < record_key_r``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import config_defaults
from ..errors import RulesError
from .compare import IDENTITY_COLUMNS, SHARED_VALUE_COLUMNS, identical_group_sizes
from .given_names import first_given_word

DEFAULT_RULES: list[dict] = [dict(r) for r in config_defaults.BLOCKING_RULES]
DEFAULT_MAX_BLOCK_SIZE = 50
DEFAULT_OVERSIZE_WINDOW = 10
# the order an oversized block's records are put in before each is paired with its next
# neighbours: the evidence a duplicate shares beside the key, strongest first
CONTEXT_COLUMNS = (
    "national_id_std",
    "email_key",
    "mobile_std",
    "phone_std",
    "birth_date_std",
    "postal_code_std",
    "address_std",
    "company_key",
    "city_std",
    "first_name_key",
    "last_name_key",
)
TRANSFORMS = ("initial", "soundex", "year", "first_word")
_SOUNDEX = {
    c: d
    for d, letters in {"1": "bfpv", "2": "cgjkqsxz", "3": "dt", "4": "l", "5": "mn", "6": "r"}.items()
    for c in letters
}


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
    rule_mask: np.ndarray  # bitmask of the rules that produced each pair (mask_dtype: int16 up to 15 rules)
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
        raise RulesError(
            "rules/matching.yaml", f"unknown blocking transform {transform!r} (use {', '.join(TRANSFORMS)})"
        )
    s = pd.Series(values, dtype="object")
    uniq = s.dropna().unique()
    if transform == "initial":
        mapping = {u: u[:1] for u in uniq}
    elif transform == "year":
        mapping = {u: u[:4] for u in uniq}
    elif transform == "first_word":
        mapping = {u: first_given_word(u) for u in uniq}
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


def _column_codes(cols: dict[str, np.ndarray], column: str) -> np.ndarray:
    """int64 codes of a column (-1 = missing): prepare_columns' ``<column>#`` when present."""
    if column not in cols:
        raise RulesError("rules/matching.yaml", f"blocking key uses unknown column {column!r}")
    codes = cols.get(column + "#")
    if codes is None:
        codes, _ = pd.factorize(pd.Series(cols[column], dtype="object"), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def _refactorize(key: np.ndarray) -> np.ndarray:
    """Dense codes in order of first appearance (as factorizing the joined text key would
    number them), -1 kept for missing."""
    out = np.full(len(key), -1, dtype=np.int64)
    present = np.flatnonzero(key >= 0)
    if len(present):
        out[present] = pd.factorize(key[present])[0]
    return out


def _part_codes(cols: dict[str, np.ndarray], part: str) -> np.ndarray:
    """Codes of one key part; a transform is applied once per distinct value, not per row."""
    column, _, transform = part.partition(":")
    codes = _column_codes(cols, column)
    if not transform:
        return codes
    if transform not in TRANSFORMS:
        raise RulesError(
            "rules/matching.yaml", f"unknown blocking transform {transform!r} (use {', '.join(TRANSFORMS)})"
        )
    rows = np.flatnonzero(codes >= 0)
    if not len(rows):
        return codes
    distinct, first = np.unique(codes[rows], return_index=True)
    mapped = _key_part({column: cols[column][rows[first]]}, part)
    sub, _ = pd.factorize(pd.Series(mapped, dtype="object"), use_na_sentinel=True)
    lookup = np.full(int(distinct[-1]) + 1, -1, dtype=np.int64)
    lookup[distinct] = sub
    return np.where(codes >= 0, lookup[codes.clip(min=0)], -1)


def rule_codes(cols: dict[str, np.ndarray], parts: list[str]) -> np.ndarray:
    """Integer blocking key per row (-1 when any part is missing): the same grouping as
    ``blocking_key``'s joined text, built from the column codes without making strings."""
    key = _refactorize(_part_codes(cols, parts[0]))
    for p in parts[1:]:
        other = _part_codes(cols, p)
        both = (key >= 0) & (other >= 0)
        key = _refactorize(np.where(both, key * (int(other.max(initial=0)) + 1) + other, -1))
    return key


def _key_texts(cols: dict[str, np.ndarray], parts: list[str], rows: np.ndarray) -> np.ndarray:
    """The joined text key (as ``blocking_key`` makes it) of the given rows only."""
    return blocking_key({p.partition(":")[0]: cols[p.partition(":")[0]][rows] for p in parts}, parts)


def _block_codes(codes: np.ndarray, max_block: int, text_of) -> tuple[np.ndarray, np.ndarray, dict]:
    """Key codes with oversize blocks and singletons set to -1, block sizes, and stats
    (``text_of(rows)`` names the skipped keys)."""
    valid = codes >= 0
    if not valid.any():
        empty = {"largest_block": 0, "skipped_keys": 0, "skipped_records": 0, "skipped_examples": ""}
        return np.full(len(codes), -1, dtype=np.int64), np.zeros(0, np.int64), empty
    sizes = np.bincount(codes[valid])
    oversize = np.flatnonzero(sizes > max_block)
    usable = sizes[codes.clip(min=0)]
    keep = valid & (usable >= 2) & (usable <= max_block)
    kept_sizes = sizes[sizes <= max_block]
    shown = oversize[np.argsort(-sizes[oversize])][:5]
    if len(shown):
        first = np.full(len(sizes), -1, dtype=np.int64)
        rows = np.flatnonzero(valid)
        first[codes[rows[::-1]]] = rows[::-1]
        names = text_of(first[shown])
    else:
        names = []
    stats = {
        "largest_block": int(kept_sizes.max()) if len(kept_sizes) else 0,
        "skipped_keys": int(len(oversize)),
        "skipped_records": int(sizes[oversize].sum()),
        "skipped_examples": "; ".join(f"{str(t).replace(chr(31), ' ')} ({sizes[k]})" for k, t in zip(shown, names)),
    }
    return np.where(keep, codes, -1), sizes, stats


def _group_pairs(group: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows whose group numbers differ by at most ``reach`` (0: same group),
    rows with group -1 left out. numpy only: each row is repeated once per partner."""
    rows = np.flatnonzero(group >= 0)
    if len(rows) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows = rows[np.argsort(group[rows])]  # any order within a group: the pair set is the same
    g = group[rows]
    n_groups = int(g[-1]) + 1
    size = np.bincount(g, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    # partners of sorted position k: k+1 .. end of its own group, then the next `reach` groups
    last_group = np.minimum(g + reach, n_groups - 1)
    end_all = start[last_group] + size[last_group]
    counts = end_all - np.arange(len(rows)) - 1
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src = np.repeat(np.arange(len(rows)), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    dst = src + 1 + offset
    i, j = rows[src], rows[dst]
    return np.minimum(i, j), np.maximum(i, j)


def _only_new(i: np.ndarray, j: np.ndarray, is_new: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if is_new is None:
        return i, j
    keep = is_new[i] | is_new[j]
    return i[keep], j[keep]


def _sorted_neighbourhood(
    cols: dict[str, np.ndarray],
    parts: list[str],
    codes: np.ndarray,
    window: int,
    max_block: int,
    is_new: np.ndarray | None,
):
    """Sorted neighbourhood (recordlinkage's definition): the distinct key values in sorted
    order, every pair of records whose values are at most (window - 1) / 2 places apart
    (same value included); values held by more than max_block records are left out."""
    if window < 1 or window % 2 == 0:
        raise RulesError(
            "rules/matching.yaml", f"sorted-neighbourhood window must be a positive odd number, got {window}"
        )
    _, sizes, stats = _block_codes(codes, max_block, lambda rows: _key_texts(cols, parts, rows))
    usable = (codes >= 0) & (sizes[codes.clip(min=0)] <= max_block) if len(sizes) else np.zeros(len(codes), bool)
    rows = np.flatnonzero(usable)
    if len(rows) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), stats
    distinct, first = np.unique(codes[rows], return_index=True)
    texts = _key_texts(cols, parts, rows[first]).astype(str).astype(object)
    rank = np.full(int(distinct[-1]) + 1, -1, dtype=np.int64)
    rank[distinct[np.argsort(texts, kind="stable")]] = np.arange(len(distinct))
    group = np.where(usable, rank[codes.clip(min=0)], -1)
    i, j = _group_pairs(group, (window - 1) // 2)
    i, j = _only_new(i, j, is_new)
    return i, j, stats


def identical_sizes(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Per row of prepared ``cols``, the size of its group of records identical on every
    compared column (``identical_group_sizes``). link computes it once and passes it on: the
    term-frequency weights, blocking and training all read it."""
    return identical_group_sizes({c: cols[c + "#"] for c in IDENTITY_COLUMNS if c + "#" in cols})


def largest_identical_group(cols: dict[str, np.ndarray]) -> int:
    """The largest group of records identical on every compared column (three or more filled):
    how many records one person holds in this data, at least."""
    return int(identical_sizes(cols).max(initial=0))


def oversize_window_for(cfg: dict, largest_group: int) -> int:
    """blocking.oversize_window when the data shows one person holding about as many records as
    an oversized block (twice its largest identical group exceeds max_block_size: an inventor on
    760 identical patent records), else 0: a block that big is then many people of a common
    name, or junk, and is skipped as before (a CRM export shows 2 to 4 identical records)."""
    window = int(cfg.get("oversize_window", DEFAULT_OVERSIZE_WINDOW))
    return window if 2 * largest_group > int(cfg.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE)) else 0


def thins_oversize(rule: dict) -> bool:
    """Does this rule thin its oversized blocks? Exact-key rules on names, dates and places do;
    a contact value or id held by that many records is junk (treated as missing when comparing,
    shared_value_limit), not one person, so those blocks stay skipped."""
    if rule.get("method", "block") != "block" or int(rule.get("oversize_window", DEFAULT_OVERSIZE_WINDOW)) < 2:
        return False
    return not any(p.partition(":")[0] in SHARED_VALUE_COLUMNS for p in rule_columns(rule))


def _oversize_neighbours(
    cols: dict[str, np.ndarray], parts: list[str], codes: np.ndarray, max_block: int, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs inside oversized blocks, linear in their size: a block's records sorted by the rest
    of their evidence (CONTEXT_COLUMNS not in the key, by text, then by row), each paired with
    its next window - 1 records. A person who recurs hundreds of times (an inventor, a loyal
    customer) is chained through records that share an employer or a place. The order depends
    only on the block's own records, so an incremental run holding the block pairs alike."""
    valid = codes >= 0
    if window < 2 or not valid.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    sizes = np.bincount(codes[valid])
    rows = np.flatnonzero(valid & (sizes[codes.clip(min=0)] > max_block))
    if len(rows) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    in_key = {p.partition(":")[0] for p in parts}
    context = [
        pd.factorize(pd.Series(cols[c][rows], dtype="object"), sort=True, use_na_sentinel=True)[0]
        for c in CONTEXT_COLUMNS
        if c in cols and c not in in_key
    ]
    rows = rows[np.lexsort((rows, *reversed(context), codes[rows]))]
    block_of = codes[rows]
    lefts, rights = [], []
    for step in range(1, min(window, len(rows))):
        same = np.flatnonzero(block_of[:-step] == block_of[step:])
        lefts.append(rows[same])
        rights.append(rows[same + step])
    i, j = np.concatenate(lefts), np.concatenate(rights)
    return np.minimum(i, j), np.maximum(i, j)


def rule_pairs(
    cols: dict[str, np.ndarray],
    rule: dict,
    b: int,
    max_block: int,
    is_new: np.ndarray | None,
):
    """One blocking rule: (name, method, left rows, right rows, stats)."""
    parts = rule_columns(rule)
    if not parts:
        raise RulesError("rules/matching.yaml", f"blocking rule #{b + 1} needs 'columns' (a column or list of columns)")
    name = str(rule.get("name") or f"rule{b + 1}")
    method = rule.get("method", "block")
    if method not in ("block", "sortedneighbourhood"):
        raise RulesError("rules/matching.yaml", f"blocking rule {name!r}: unknown method {method!r}")
    codes = rule_codes(cols, parts)
    if method == "sortedneighbourhood":
        i, j, stats = _sorted_neighbourhood(cols, parts, codes, int(rule.get("window", 3)), max_block, is_new)
    else:
        kept, _, stats = _block_codes(codes, max_block, lambda rows: _key_texts(cols, parts, rows))
        i, j = _group_pairs(_refactorize(kept), 0)
        if stats["skipped_keys"] and thins_oversize(rule):
            window = int(rule.get("oversize_window", DEFAULT_OVERSIZE_WINDOW))
            oi, oj = _oversize_neighbours(cols, parts, codes, max_block, window)
            i, j = np.concatenate([i, oi]), np.concatenate([j, oj])
        i, j = _only_new(i, j, is_new)
    return name, method, i.astype(np.int32), j.astype(np.int32), stats


def block(
    cols: dict[str, np.ndarray],
    matching: dict,
    is_new: np.ndarray | None = None,
    run_rules=None,
    largest_group: int | None = None,
) -> Candidates:
    """Union of the configured blocking rules, deduplicated, with per-rule statistics.

    ``run_rules(rules, max_block, is_new)`` may compute the rules elsewhere (link's worker
    pool) and return ``rule_pairs`` results in rule order. ``largest_group``: the data's
    largest identical group (``largest_identical_group``), when ``cols`` are only part of it."""
    cfg = matching.get("blocking") or {}
    if largest_group is None:
        largest_group = largest_identical_group(cols)
    window = oversize_window_for(cfg, largest_group)
    rules = [{"oversize_window": window, **r} if isinstance(r, dict) else r for r in cfg.get("rules") or DEFAULT_RULES]
    max_block = int(cfg.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE))
    if len(rules) > 62:
        raise RulesError("rules/matching.yaml", "at most 62 blocking rules are supported")
    n = len(next(iter(cols.values()))) if cols else 0
    for b, rule in enumerate(rules):  # rules errors before any work
        if not rule_columns(rule):
            raise RulesError(
                "rules/matching.yaml", f"blocking rule #{b + 1} needs 'columns' (a column or list of columns)"
            )
    if run_rules is None:
        results = [rule_pairs(cols, rule, b, max_block, is_new) for b, rule in enumerate(rules)]
    else:
        results = run_rules(rules, max_block, is_new)
    names = [r[0] for r in results]
    rows = [{"rule": name, "method": method, "pairs": int(len(i)), **stats} for name, method, i, _, stats in results]
    left, right, mask = union_of_rules(results, n)
    summary = pd.DataFrame(
        rows,
        columns=["rule", "method", "pairs", "largest_block", "skipped_keys", "skipped_records", "skipped_examples"],
    )
    return Candidates(left, right, mask, names, summary)


UNION_PART_PAIRS = 4_000_000  # pairs of all rules deduplicated at a time (bounds the union's sort)


def mask_dtype(rules: int) -> type:
    """The narrowest integer holding one bit per rule (int16 for up to 15 rules): the mask is
    kept for every candidate pair, for the whole link stage."""
    return np.int16 if rules <= 15 else np.int32 if rules <= 31 else np.int64


def union_of_rules(results: list, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left, right, rule mask) of the distinct pairs of ``rule_pairs`` results, sorted by pair
    id (left * n + right). Each rule's pairs are packed and sorted alone (its row arrays let go),
    then deduplicated a range of left rows at a time: one sort of every rule's pairs at once held
    four copies of them (≈ 33 bytes a proposed pair), which grew with the blocks."""
    dtype = mask_dtype(len(results))
    packed = []
    for b in range(len(results)):
        i, j = results[b][2], results[b][3]
        one = (i.astype(np.int64) * n + j) * 64 + b  # a pair id is < n², the bit < 64
        one.sort()
        packed.append(one)
        results[b] = (*results[b][:2], None, None, results[b][4])
    total = sum(len(p) for p in packed)
    if not total:
        return np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, dtype)
    parts = max(1, -(-total // UNION_PART_PAIRS))
    bounds = np.linspace(0, n, parts + 1).astype(np.int64) * n * 64
    lefts, rights, masks = [], [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        chunk = np.concatenate([p[np.searchsorted(p, lo) : np.searchsorted(p, hi)] for p in packed])
        chunk.sort(kind="stable")  # sorted runs, one per rule: merged
        pair_id = chunk >> 6
        bits = np.left_shift(1, chunk & 63).astype(dtype)
        starts = np.flatnonzero(np.r_[True, pair_id[1:] != pair_id[:-1]]) if len(pair_id) else np.empty(0, np.int64)
        masks.append(np.bitwise_or.reduceat(bits, starts) if len(starts) else np.empty(0, dtype))
        uniq = pair_id[starts]
        lefts.append((uniq // n).astype(np.int32))
        rights.append((uniq % n).astype(np.int32))
    del packed
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(masks)


def block_pairs_at(
    cols: dict[str, np.ndarray], matching: dict, pick, largest_group: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The (left, right) pairs of ``block(cols, matching)`` at the positions ``pick(total)``
    returns (sorted positions in block's order, by pair id), for a training session that keeps
    a sample. One exact-key rule is sampled without making its pairs: a birth-date block grows
    with the data, so its pairs grew with the square of the records (13.6M at 911k records, for
    a sample of 300,000). Other rules, and blocks thinned by ``oversize_window``, go through block()."""
    cfg = matching.get("blocking") or {}
    rules = cfg.get("rules") or []
    max_block = int(cfg.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE))
    if len(rules) == 1 and rules[0].get("method", "block") == "block" and rule_columns(rules[0]):
        parts = rule_columns(rules[0])
        codes = rule_codes(cols, parts)
        kept, _, stats = _block_codes(codes, max_block, lambda rows: _key_texts(cols, parts, rows))
        largest = largest_identical_group(cols) if largest_group is None else largest_group
        window = oversize_window_for(cfg, largest)
        if not (stats["skipped_keys"] and thins_oversize({"oversize_window": window, **rules[0]})):
            return _group_pairs_at(kept, pick)
    one = block(cols, matching, largest_group=largest_group)
    take = pick(len(one.left))
    return one.left[take], one.right[take]


def _group_pairs_at(group: np.ndarray, pick) -> tuple[np.ndarray, np.ndarray]:
    """``_group_pairs(group, 0)`` sorted by (left, right), at the positions ``pick(total)``:
    row i's pairs are its group's later rows, so a position is found from the rows' counts."""
    rows = np.flatnonzero(group >= 0)
    members = rows[np.lexsort((rows, group[rows]))]  # by group, then row
    g = group[members]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.empty(0, np.int64)
    size = np.diff(np.r_[starts, len(g)])
    pos = np.argsort(members)  # where each row (in row order) is in `members`
    later = np.repeat(starts + size, size)[pos] - pos - 1  # its pairs as the left row
    ends = np.cumsum(later)
    take = np.asarray(pick(int(ends[-1]) if len(ends) else 0), np.int64)
    at = np.searchsorted(ends, take, side="right")  # the left row of each position
    offset = take - (ends[at] - later[at])
    return rows[at].astype(np.int32), members[pos[at] + 1 + offset].astype(np.int32)
