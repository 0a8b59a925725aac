"""Vectorized pair comparison: each feature maps a candidate pair to one comparison level.

Levels are Splink-style: level 0 is always ``null`` (either side missing → weight 0), then
from strongest agreement to ``different``. Exact checks run on whole arrays with numpy; the
fuzzy scores (Jaro-Winkler, token-set ratio) run only on the pairs that are not already
exact, with rapidfuzz's C functions in a list comprehension — recordlinkage's string compare
is far slower. Names are compared on the pinyin/latin keys, so Hanzi vs pinyin and nicknames
are already reconciled by standardize; swapped given/family names count as exact.
"""

from __future__ import annotations

import re

from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from .given_names import given_name_words, middle_name_variant

# feature -> level labels; index = level code stored in the int8 level matrix.
FEATURES: dict[str, tuple[str, ...]] = {
    # close: Jaro-Winkler >= jw_high (a typo); similar: >= jw_low (see COMPARE_DEFAULTS)
    "first_name": ("null", "exact", "close", "initial", "similar", "different"),
    "last_name": ("null", "exact", "close", "similar", "different"),
    "birth_date": ("null", "exact", "day_month_swapped", "one_char", "same_year", "different", "years_apart"),
    # fuzzy_local: a typo in one mailbox; initial_or_digit: the one edit is the mailbox's first
    # character or an added digit (jsmith@ / msmith@, john.smith@ / john.smith2@): a typo, or two
    # people of one name pattern at one domain (colleagues, father and son) — EM learns which
    "email": ("null", "exact", "fuzzy_local", "initial_or_digit", "different"),
    "phone": ("null", "mobile_exact", "landline_exact", "different"),
    "address": ("null", "exact", "fuzzy", "same_postal", "same_city", "different"),
    "suffix": ("null", "same", "conflict"),
    "gender": ("null", "same", "different"),
    # one_edit: one digit mistyped, inserted, dropped, or two neighbours swapped (OSA distance 1)
    "national_id": ("null", "exact", "one_edit", "different"),
    # company_key (legal suffix dropped); similar: token-set ratio >= address_fuzzy ("Albion
    # Analytics" / "Albion Analytics Group"). A place as much as evidence: colleagues share it
    "company": ("null", "exact", "similar", "different"),
}
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)

# Term-frequency adjusted features: the exact level's u is replaced by the value's frequency.
# feature -> {level label: record column whose value frequency is used}
TF_COLUMNS: dict[str, dict[str, str]] = {
    "first_name": {"exact": "first_name_key"},
    "last_name": {"exact": "last_name_key"},
    "email": {"exact": "email_key"},
    "phone": {"mobile_exact": "mobile_std", "landline_exact": "landline_std"},
    "address": {"exact": "address_std"},
    "national_id": {"exact": "national_id_std"},
    "company": {"exact": "company_key"},
}

# Unmapped categorical columns (ingest's attr_<slug>_std: occupation, birth place, job title ...)
# are compared exactly with term-frequency adjustment, one feature each after the fixed ones,
# in column-name order: levels null / exact / different.
EXTRA_PREFIX, EXTRA_SUFFIX = "attr_", "_std"
EXTRA_LEVELS: tuple[str, ...] = ("null", "exact", "different")


def extra_columns(columns, matching: dict | None) -> tuple[str, ...]:
    """The attr_*_std columns compared, sorted; ``extra_comparisons: {enabled, exclude}`` in
    rules/matching.yaml switches them off or leaves some out (by column or feature name)."""
    cfg = (matching or {}).get("extra_comparisons") or {}
    if cfg.get("enabled", True) is False:
        return ()
    exclude = {str(x) for x in (cfg.get("exclude") or [])}
    return tuple(
        sorted(
            c
            for c in columns
            if isinstance(c, str)
            and c.startswith(EXTRA_PREFIX)
            and c.endswith(EXTRA_SUFFIX)
            and len(c) > 9
            and c not in exclude
            and extra_feature(c) not in exclude
        )
    )


# an extra column whose values are mostly these columns' values is one of them under a header
# ingest did not know ("Town/City"): compared on its own it would count the household's
# location a second time, outside the address feature and the look-alike cells that know it
LOCATION_COLUMNS: tuple[str, ...] = (
    "address_std",
    "city_std",
    "postal_code_std",
    "district_std",
    "state_std",
    "country_std",
)
LOCATION_SHARE = 0.5


def location_in_disguise(records: pd.DataFrame, column: str) -> str | None:
    """The location column ``column``'s values mostly belong to (case-insensitively), if any."""
    values = records[column].dropna()
    if not len(values):
        return None
    codes, uniques = pd.factorize(values.astype(str).str.casefold())
    for other in LOCATION_COLUMNS:
        if other not in records.columns:
            continue
        known = set(pd.Series(records[other].dropna().unique()).astype(str).str.casefold())
        if known and float(np.isin(np.asarray(uniques, dtype=object), list(known))[codes].mean()) >= LOCATION_SHARE:
            return other
    return None


def extra_feature(column: str) -> str:
    """attr_occupation_std -> attr_occupation (the feature name in the model and evidence)."""
    return column[: -len(EXTRA_SUFFIX)]


def feature_levels(feature: str) -> tuple[str, ...]:
    """The level labels of a fixed or an extra feature."""
    return FEATURES.get(feature) or EXTRA_LEVELS


def extras_in(cols: dict) -> tuple[str, ...]:
    """The extra columns prepared in ``cols`` (their codes are ``<column>#``), sorted."""
    return tuple(sorted(k[:-1] for k in cols if k.startswith(EXTRA_PREFIX) and k.endswith(EXTRA_SUFFIX + "#")))


# Standardized columns read by comparison and blocking (missing columns are treated as empty).
COMPARE_COLUMNS: tuple[str, ...] = (
    "first_name_key",
    "first_name_std",  # its words: a middle name the key runs together (given_name_words)
    "last_name_key",
    "name_key",
    "name_suffix_std",
    "gender_std",
    "email_key",
    "mobile_std",
    "landline_std",
    "phone_std",
    "birth_date_std",
    "address_std",
    "postal_code_std",
    "city_std",
    "national_id_std",
    "company_key",
)

JW_HIGH = 0.92
JW_LOW = 0.80
YEARS_APART = 10  # birth years this far apart: another generation (Jr/Sr), not a typo
ADDRESS_FUZZY = 0.85
# the thresholds behind the level labels; rules/matching.yaml `comparison:` overrides them
COMPARE_DEFAULTS: dict[str, float] = {
    "jw_high": JW_HIGH,
    "jw_low": JW_LOW,
    "years_apart": YEARS_APART,
    "address_fuzzy": ADDRESS_FUZZY,
    "middle_names": 1.0,
    "name_boundary": 1.0,
}


def compare_settings(matching: dict | None) -> dict[str, float]:
    """The comparison thresholds: the defaults overlaid with ``matching["comparison"]``."""
    out = dict(COMPARE_DEFAULTS)
    user = (matching or {}).get("comparison") or {}
    for key in COMPARE_DEFAULTS:
        if user.get(key) is not None:
            out[key] = float(user[key])
    return out


def level_code(feature: str, label: str) -> int:
    return FEATURES[feature].index(label)


def clean_column(values) -> np.ndarray:
    """Object array of str or None: NaN/None/blank all become None so `!= None` tests are exact."""
    s = pd.Series(values, dtype="object")
    s = s.where(s.notna(), None)
    out = s.map(lambda v: None if v is None else (str(v).strip() or None), na_action="ignore")
    out = out.where(out.notna(), None)
    return out.to_numpy(dtype=object)


# columns compared with each other share one code space (swapped names, mobile vs phone)
CODE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("first_name_key", "last_name_key"),
    ("mobile_std", "landline_std", "phone_std"),
    ("birth_date_std", "birth_date_swapped"),
)


# contact values that identify one person; shared by very many records they are junk
# ("n/a" address, a switchboard number, info@) and must not count as agreement
SHARED_VALUE_COLUMNS: tuple[str, ...] = (
    "email_key",
    "mobile_std",
    "landline_std",
    "phone_std",
    "address_std",
    "national_id_std",
)


def codes_and_texts(values) -> tuple[np.ndarray, np.ndarray]:
    """(int64 code per row, -1 = missing; the clean distinct texts): each distinct raw value is
    cleaned once (as clean_column cleans it), then values equal after cleaning share a code.
    Clean values come back as the very objects given: no text is copied."""
    raw, uniques = pd.factorize(pd.Series(values, dtype="object"), use_na_sentinel=True)
    u = pd.Series(np.asarray(uniques, dtype=object), dtype="object")
    if pd.api.types.infer_dtype(u, skipna=True) in ("string", "empty") and _clean_already(u.tolist()):
        return raw.astype(np.int64), u.to_numpy(dtype=object)
    cleaned = clean_column(u.to_numpy(dtype=object))
    sub, texts = pd.factorize(pd.Series(cleaned, dtype="object"), use_na_sentinel=True)
    return np.append(sub.astype(np.int64), -1)[raw], np.asarray(texts, dtype=object)


# code points str.strip() strips (all below U+3001)
_WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)


def _clean_already(texts: list[str]) -> bool:
    """True if no text is empty, has whitespace at an end or holds a NUL: standardized text,
    which needs no cleaning (checked a block of texts at a time: one join, one encode)."""
    return all(_block_clean(texts[s : s + _CLEAN_BLOCK]) for s in range(0, len(texts), _CLEAN_BLOCK))


_CLEAN_BLOCK = 32_768  # texts joined at a time by _clean_already (all 218k addresses: ≈ 70 MB)


def _block_clean(texts: list[str]) -> bool:
    """_clean_already of one block of texts."""
    joined = "\x00".join(texts)
    cp = np.frombuffer(("\x00" + joined + "\x00").encode("utf-32-le"), dtype=np.uint32)
    sep = np.flatnonzero(cp == 0)
    if len(sep) != len(texts) + 1 or (np.diff(sep) == 1).any():
        return False
    return not (np.isin(cp[sep[:-1] + 1], _WHITESPACE).any() or np.isin(cp[sep[1:] - 1], _WHITESPACE).any())


def _derived(codes: np.ndarray, texts: np.ndarray | list, fn) -> tuple[np.ndarray, np.ndarray]:
    """A per-value derived column (fn on each distinct text, None = missing), as int32 codes and texts."""
    sub, out = pd.factorize(np.array([fn(v) for v in texts] + [None], dtype=object)[:-1], use_na_sentinel=True)
    return np.append(sub.astype(np.int32), -1)[codes], np.asarray(out, dtype=object)


def prepare_columns(
    records: pd.DataFrame,
    shared_value_limit: int | None = None,
    extras: tuple[str, ...] = (),
    compact: bool = False,
    rows: np.ndarray | None = None,
) -> dict[str, Any]:
    """The comparison columns as clean object arrays, in the frame's row order, plus
    ``<column>#``: int32 codes (-1 = missing) so presence and equality tests are integer ops.

    With ``shared_value_limit``, a contact value (SHARED_VALUE_COLUMNS) held by more records
    than that is treated as missing. Work is per distinct value (cleaning, day/month swap,
    domain, year), then gathered to rows: most columns have far fewer values than rows.
    ``extras`` (extra_columns): only their codes are kept, ``<column>#``. ``compact``: each
    text column a TextColumn made from its distinct texts, never an object array per row
    (link's column preparation 798 -> 616 MB PSS in a 200k replay). ``rows``: the frame's
    rows to prepare, in that order (link's records sorted by key), read a column at a time:
    the slice of the compared columns and its sorted copy took ≈ 140 MB in a 200k run."""
    codes, texts = _compared_codes(records, shared_value_limit, rows)
    # per distinct value, once: the date with day and month swapped, the e-mail domain, the year
    codes["birth_date_swapped"], texts["birth_date_swapped"] = _derived(
        codes["birth_date_std"],
        texts["birth_date_std"],
        lambda v: v[:5] + v[8:10] + "-" + v[5:7] if len(v) == 10 else None,
    )
    emails = texts["email_key"].tolist()  # not partitioned once for both: 3 strings an e-mail, 40 MB at 200k
    codes["email_domain"], texts["email_domain"] = _derived(codes["email_key"], emails, lambda v: v.partition("@")[2])
    spaces = _code_spaces(codes, texts)
    cols: dict[str, Any] = {name + "#": code for name, (code, _) in spaces.items()}
    make = _text_columns(compact)
    for name, (code, table) in spaces.items():
        cols[name] = make(code, table)
    cols.update(_value_features(codes, texts))
    cols["name_joined#"], cols["name_joined_reversed#"] = _joined_names(codes, texts)
    words_code, words = _derived(codes["first_name_std"], texts["first_name_std"], given_name_words)
    cols["first_name_words"] = make(words_code, words)
    several = np.fromiter((" " in w for w in words.tolist()), bool, len(words))
    cols["first_name_several"] = np.append(several, False)[words_code]
    cols["email_local"] = make(codes["email_key"], np.array([v.partition("@")[0] for v in emails], dtype=object))
    for name in extras:
        if name in records.columns:
            cols[name + "#"] = codes_and_texts(_column_values(records, name, rows))[0].astype(np.int32)
    return cols


def _column_values(records: pd.DataFrame, name: str, rows: np.ndarray | None) -> np.ndarray:
    """A column's values as an object array, at ``rows`` when given."""
    values = records[name].to_numpy(dtype=object)
    return values if rows is None else values[rows]


def _compared_codes(
    records: pd.DataFrame, shared_value_limit: int | None, rows: np.ndarray | None = None
) -> tuple[dict, dict]:
    """Per compared column, int32 codes per row (-1 = missing) and the distinct clean texts they
    number; a shared contact value held by more than ``shared_value_limit`` records is missing."""
    n = len(records) if rows is None else len(rows)
    codes: dict[str, np.ndarray] = {}
    texts: dict[str, np.ndarray] = {}
    for name in COMPARE_COLUMNS:
        if name in records.columns:
            code, text = codes_and_texts(_column_values(records, name, rows))
        else:
            code, text = np.full(n, -1, dtype=np.int64), np.empty(0, dtype=object)
        if shared_value_limit and name in SHARED_VALUE_COLUMNS and len(text):
            junk = np.bincount(code[code >= 0], minlength=len(text)) > shared_value_limit
            code = np.where((code >= 0) & junk[code.clip(min=0)], -1, code)
        codes[name], texts[name] = code.astype(np.int32), text
    return codes, texts


def _code_spaces(codes: dict, texts: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per text column, its ``<column>#`` codes and the texts they number. Columns compared
    with each other (CODE_GROUPS) get one code space: their distinct texts factorized together."""
    grouped = {c for g in CODE_GROUPS for c in g}
    groups = list(CODE_GROUPS) + [(c,) for c in (*COMPARE_COLUMNS, "email_domain") if c not in grouped]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for group in groups:
        if len(group) == 1:  # the codes already number the column's distinct texts
            out[group[0]] = codes[group[0]], texts[group[0]]
            continue
        joint, table = pd.factorize(pd.Series(np.concatenate([texts[c] for c in group]), dtype="object"))
        table = np.asarray(table, dtype=object)
        offset = 0
        for c in group:
            lookup = np.append(joint[offset : offset + len(texts[c])], -1).astype(np.int32)
            out[c] = lookup[codes[c]], table
            offset += len(texts[c])
    return out


def _text_columns(compact: bool):
    """A maker of text columns from (int32 codes per row, the texts they number): object arrays,
    or with ``compact`` TextColumns, columns sharing a table sharing its one Arrow buffer."""
    import pyarrow as pa

    buffers: dict[int, Any] = {}  # id(texts) -> (texts, kept alive so the id stays theirs; its Arrow array)

    def make(codes: np.ndarray, texts: np.ndarray) -> Any:
        if compact:
            try:
                if id(texts) not in buffers:
                    buffers[id(texts)] = texts, pa.array(texts, type=pa.string())
                return TextColumn(codes, buffers[id(texts)][1])
            except (pa.ArrowException, TypeError, ValueError):  # not all str: an object array
                pass
        return np.append(texts, np.array([None], dtype=object))[codes]

    return make


def _value_features(codes: dict, texts: dict) -> dict[str, np.ndarray]:
    """Numbers per row computed once per distinct value: birth year and date digits, a given
    name's initial and first letter, the address's token-set profile (see _may_be_fuzzy)."""
    cols: dict[str, np.ndarray] = {}
    years = pd.to_numeric(pd.Series([v[:4] for v in texts["birth_date_std"]], dtype="object"), errors="coerce")
    year_of = np.append(years.fillna(-1).to_numpy().astype(np.int32), np.int32(-1))
    cols["birth_year"] = year_of[codes["birth_date_std"]]
    # a given name that is one letter (an initial): its letter, else -1
    first_texts = texts["first_name_key"].tolist()
    initial = np.fromiter((ord(v) if len(v) == 1 else -1 for v in first_texts), np.int32, len(first_texts))
    cols["first_name_initial"] = np.append(initial, np.int32(-1))[codes["first_name_key"]]
    cols["first_name_head"] = np.append(
        np.fromiter((ord(v[0]) if v else -1 for v in first_texts), np.int32, len(first_texts)), np.int32(-1)
    )[codes["first_name_key"]]
    digits = _date_digits(texts["birth_date_std"])
    cols["birth_date_digits"] = np.append(digits, np.int64(-1))[codes["birth_date_std"]]
    length, spaces, hist = _token_set_profiles(texts["address_std"])
    cols["address_len"] = np.append(length, np.int32(-1))[codes["address_std"]]
    cols["address_spaces"] = np.append(spaces, np.int32(0))[codes["address_std"]]
    cols["address_hist"] = _rows_of(hist, codes["address_std"])
    return cols


def _rows_of(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]``, a row of zeros where the code is -1 (missing), gathered straight into
    the result: no copy of the table with a row of zeros appended."""
    out = np.zeros((len(codes), *table.shape[1:]), table.dtype)
    if len(table):
        np.take(table, codes, axis=0, out=out, mode="clip")
        out[codes < 0] = 0
    return out


class TextColumn:
    """A text column as int32 codes per row into its distinct texts, held in one Arrow buffer
    instead of Python str objects. Indexed like the object array it replaces (rows → object
    array of str or None), each distinct text of the rows asked for made once.

    Why: reading a Python object writes its reference count. Forked link workers that read
    the parent's strings copied every page they sat on (≈ 60 MB a worker at 100k customers),
    and the parent did the same to pages the workers still shared; nobody writes to these
    buffers, so they stay shared. Made by ``prepare_columns(compact=True)``."""

    dtype = np.dtype(object)
    ndim = 1

    def __init__(self, codes: np.ndarray, table: Any):
        self.codes, self.table = codes, table

    @property
    def shape(self) -> tuple[int]:
        return (len(self.codes),)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows: Any) -> Any:
        codes = self.codes[rows]
        if np.ndim(codes) == 0:
            return None if codes < 0 else self.table[int(codes)].as_py()
        inverse, distinct = pd.factorize(codes)
        texts = np.full(len(distinct), None, dtype=object)
        present = distinct >= 0
        if present.any():
            texts[present] = self.table.take(distinct[present]).to_numpy(zero_copy_only=False)
        return texts[inverse]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[np.arange(len(self.codes))]
        return out if dtype is None else out.astype(dtype)

    def __iter__(self):
        return iter(self[np.arange(len(self.codes))])


def _joined_names(codes: dict, texts: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per row, codes of given + family name keys joined and of family + given joined (one code
    space, -1 without both): equal joins are one name with the boundary placed elsewhere
    (`Jaume Anguera` + `Pros` / `Jaume` + `Anguera Pros`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    f, la = codes["first_name_key"].astype(np.int64), codes["last_name_key"].astype(np.int64)
    both = (f >= 0) & (la >= 0)
    n_last = len(texts["last_name_key"]) + 1
    pair, uniq = pd.factorize(f[both] * n_last + la[both])
    # the joins in Arrow buffers: as Python strings they took 2 x 60 bytes a pair (36 MB at 200k)
    ft = pa.array(texts["first_name_key"], type=pa.string()).take(uniq // n_last)
    lt = pa.array(texts["last_name_key"], type=pa.string()).take(uniq % n_last)
    joins = pa.concat_arrays([pc.binary_join_element_wise(ft, lt, ""), pc.binary_join_element_wise(lt, ft, "")])
    joint = joins.dictionary_encode().indices.to_numpy()
    out = []
    for part in (joint[: len(uniq)], joint[len(uniq) :]):
        code = np.full(len(f), -1, dtype=np.int32)
        code[both] = part[pair]
        out.append(code)
    return out[0], out[1]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_digits(texts: np.ndarray) -> np.ndarray:
    """Per distinct ISO date, its 8 digits packed one per 4 bits (-1: not an ASCII YYYY-MM-DD),
    so that "one character off" is an integer test: exactly one nibble of a XOR b is set."""
    out = np.full(len(texts), -1, dtype=np.int64)
    good = [
        i
        for i, v in enumerate(texts.tolist())
        if isinstance(v, str) and len(v) == 10 and _ISO_DATE.fullmatch(v) and v.isascii()
    ]
    if good:
        raw = np.frombuffer("".join(texts[good].tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, 10)
        d = raw[:, [0, 1, 2, 3, 5, 6, 8, 9]].astype(np.int64) - ord("0")
        out[good] = (d << (4 * np.arange(8, dtype=np.int64))).sum(axis=1)
    return out


def _one_digit_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Packed dates (see _date_digits) that differ in exactly one digit."""
    x = a ^ b
    nib = (x | (x >> 1) | (x >> 2) | (x >> 3)) & 0x11111111
    return (nib != 0) & ((nib & (nib - 1)) == 0)


def _neighbours_swapped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Packed dates (see _date_digits) equal but for two neighbouring digits swapped (1985/1958)."""
    x = a ^ b
    nib = (x | (x >> 1) | (x >> 2) | (x >> 3)) & 0x11111111
    out = np.zeros(len(a), dtype=bool)
    ok = (a >= 0) & (b >= 0)
    for k in range(7):
        pair = 0x11 << (4 * k)
        hit = ok & (nib == pair)
        if hit.any():
            lo_a, hi_a = (a >> (4 * k)) & 15, (a >> (4 * k + 4)) & 15
            lo_b, hi_b = (b >> (4 * k)) & 15, (b >> (4 * k + 4)) & 15
            out |= hit & (lo_a == hi_b) & (hi_a == lo_b)
    return out


# Bucketed character histograms bound token_set_ratio from above (see _may_be_fuzzy).
HIST_BUCKETS = 61
_ODD_SPACE = np.array(
    [9, 10, 11, 12, 13, 28, 29, 30, 31, 133, 160, 5760, *range(8192, 8203), 8232, 8233, 8239, 8287, 12288],
    dtype=np.uint32,
)


def _token_set_profiles(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct text: (length, -1 when not profiled; spaces; character counts per bucket,
    spaces left out). Profiled are texts whose words are single-space separated and distinct,
    so the text is its own token set: what token_set_ratio compares, in another order.
    Worked out a block of texts at a time: the per-character arrays of all 218k distinct
    addresses at 200k customers (code points, owner rows, split words) took 128 MB at once."""
    ts = texts.tolist()  # the distinct clean texts: all str
    lens, spaces = np.zeros(len(ts), np.int32), np.zeros(len(ts), np.int32)
    hist = np.zeros((len(ts), HIST_BUCKETS), np.int8)
    for s in range(0, len(ts), _PROFILE_BLOCK):
        e = min(s + _PROFILE_BLOCK, len(ts))
        lens[s:e], spaces[s:e], hist[s:e] = _profile_block(ts[s:e])
    return lens, spaces, hist


_PROFILE_BLOCK = 16_384  # distinct texts per block in _token_set_profiles


def _profile_block(ts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_token_set_profiles of one block of texts."""
    n = len(ts)
    lens = np.fromiter(map(len, ts), np.int64, n)
    cp = np.frombuffer("".join(ts).encode("utf-32-le"), dtype=np.uint32)
    row = np.repeat(np.arange(n), lens)
    sp = cp == 32
    spaces = np.bincount(row[sp], minlength=n)
    bad = lens == 0
    odd = np.flatnonzero((cp < 32) | (cp >= 133))  # _ODD_SPACE's range: one pass, then a few
    bad[row[odd[np.isin(cp[odd], _ODD_SPACE)]]] = True
    multi = np.flatnonzero(spaces > 0)  # a repeated word or an empty one (two spaces, an edge space)
    if len(multi):
        wcode, words = pd.factorize(np.array(" ".join([ts[i] for i in multi]).split(" ") + [None], dtype=object)[:-1])
        owner = np.repeat(multi, spaces[multi] + 1)
        repeated = pd.Series(owner * (len(words) + 1) + wcode).duplicated().to_numpy()
        empty = np.flatnonzero(np.asarray(words, dtype=object) == "")
        bad[owner[repeated | np.isin(wcode, empty)]] = True
    hist, over = _bucket_histograms(cp, row, lens)
    bad |= over | (lens > 100_000)
    return np.where(bad, -1, lens).astype(np.int32), spaces.astype(np.int32), hist  # bad rows: unread


def _bucket_histograms(cp: np.ndarray, row: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per text its non-space characters counted per bucket, as int8; True where a count
    exceeds 127). Counted a block of texts at a time: one int64 count table for every text
    (218k addresses × 61 buckets at 200k customers: 106 MB) cost more in fresh pages than the
    counting itself."""
    n = len(lens)
    hist = np.zeros((n, HIST_BUCKETS), np.int8)
    over = np.zeros(n, bool)
    ends = np.cumsum(lens)
    for s in range(0, n, _HIST_BLOCK):
        e = min(s + _HIST_BLOCK, n)
        lo, hi = int(ends[s] - lens[s]), int(ends[e - 1])
        c, r = cp[lo:hi], row[lo:hi] - s
        keep = c != 32
        counts = np.bincount(r[keep] * HIST_BUCKETS + c[keep] % HIST_BUCKETS, minlength=(e - s) * HIST_BUCKETS)
        counts = counts.reshape(e - s, HIST_BUCKETS)
        over[s:e] = counts.max(axis=1, initial=0) > 127
        hist[s:e] = counts  # int8: a count over 127 wraps, but such a text is marked unread
    return hist, over


_HIST_BLOCK = 8192  # texts per count table in _bucket_histograms (4 MB of int64 counts)


def _may_be_fuzzy(c_l: dict, c_r: dict, idx: np.ndarray, cutoff: float) -> np.ndarray:
    """False only where token_set_ratio is surely below ``cutoff`` (0-1), from the profiles.

    With token sets A, B, joined lengths LA, LB and H = the L1 distance of their character
    counts (a lower bound of any indel distance between texts made of them), token_set_ratio
    is the largest of 1 - indel(A-B, B-A)/(LA+LB) <= 1 - H/(LA+LB), and, when A and B share
    words of joined length s, 2s/(s+LA) and 2s/(s+LB), with s at most the shared character
    count plus the fewer spaces. Buckets only lower H and raise the shared count: still bounds."""
    out = np.ones(len(idx), dtype=bool)
    for s in range(0, len(idx), 250_000):
        out[s : s + 250_000] = _token_set_bound(c_l, c_r, idx[s : s + 250_000]) >= cutoff - 1e-6
    return out


def _token_set_bound(c_l: dict, c_r: dict, idx: np.ndarray) -> np.ndarray:
    """The upper bound of token_set_ratio (0-1) of _may_be_fuzzy per pair; 1 where a text
    is not profiled."""
    la, lb = _at(c_l, "address_len", idx), _at(c_r, "address_len", idx)
    sa, sb = _at(c_l, "address_spaces", idx), _at(c_r, "address_spaces", idx)
    h = np.abs(_at(c_l, "address_hist", idx) - _at(c_r, "address_hist", idx)).sum(axis=1, dtype=np.int64)
    shared = ((la - sa) + (lb - sb) - h) / 2 + np.minimum(sa, sb)
    bound = np.maximum(1 - h / np.maximum(la + lb, 1), 2 * shared / np.maximum(shared + np.minimum(la, lb), 1))
    return np.where((la < 0) | (lb < 0), 1.0, bound)


# compared columns that another one already holds (the name key joins the two names; phone is
# mobile or landline); a record with fewer of the others filled is not matched as a profile
IDENTITY_COLUMNS: tuple[str, ...] = tuple(
    c for c in COMPARE_COLUMNS if c not in ("name_key", "phone_std", "first_name_std")
)
IDENTICAL_MIN_FIELDS = 3


def identical_group_sizes(codes: dict[str, np.ndarray], min_fields: int = IDENTICAL_MIN_FIELDS) -> np.ndarray:
    """Per row, how many records are identical to it on every compared column (IDENTITY_COLUMNS
    present in ``codes``, column -> int codes, -1 = missing); 1 for a row with fewer than
    ``min_fields`` of them filled (a name alone is not a person). One factorize per column."""
    names = [c for c in IDENTITY_COLUMNS if c in codes]
    n = len(codes[names[0]]) if names else 0
    out = np.ones(n, np.int64)
    filled = np.zeros(n, np.int64)
    key = np.zeros(n, np.int64)
    for c in names:  # the row's tuple of codes as one dense number (< n, so no overflow)
        code = np.asarray(codes[c], dtype=np.int64)
        filled += code >= 0
        key = pd.factorize(key * (int(code.max(initial=-1)) + 2) + (code + 1))[0].astype(np.int64)
    rich = filled >= min_fields
    if rich.sum() > 1:
        out[rich] = np.bincount(key[rich])[key[rich]]
    return out


def profile_weights(codes: dict[str, np.ndarray]) -> np.ndarray:
    """Per row, 1 / its identical group's size: value frequencies count people, not records. A
    term frequency stands for how often a different person holds the value; an inventor on
    1,000 identical patent records (or a customer imported ten times) is one holder."""
    return 1.0 / identical_group_sizes(codes)


def term_frequencies(cols: dict[str, np.ndarray], group_sizes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per record, the relative frequency of its value among the non-null values of the column,
    identical records counted once (``profile_weights``; ``group_sizes``: the identical-group
    sizes when the caller has them already)."""
    if group_sizes is None:
        weight = profile_weights({c: cols[c + "#"] for c in IDENTITY_COLUMNS if c + "#" in cols})
    else:
        weight = 1.0 / group_sizes
    tf: dict[str, np.ndarray] = {}
    for column in {c for spec in TF_COLUMNS.values() for c in spec.values()}:
        code = cols.get(column + "#")
        if code is None:
            code = pd.factorize(pd.Series(cols[column], dtype="object"), use_na_sentinel=True)[0]
        tf[column] = code_frequencies(np.asarray(code), weight if len(weight) == len(code) else None)
    for column in extras_in(cols):
        tf[column] = code_frequencies(cols[column + "#"], weight)
    return tf


def code_frequencies(code: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Per row, its code's share of the non-null rows (NaN where null), rows weighted by
    ``weight`` when given."""
    present = code >= 0
    w = None if weight is None else weight[present]
    counts = np.bincount(code[present], weights=w) if present.any() else np.zeros(0, np.float64)
    freq = np.append(counts / max(float(counts.sum()), 1e-12), np.nan)
    return freq[np.where(present, code, len(counts))]


def _both(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Both present; a and b are code arrays (see prepare_columns)."""
    return (a >= 0) & (b >= 0)


def _eq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) & (a >= 0)


class _Side(dict):
    """One side of the compared pairs: a column is gathered to the pairs' rows on first use
    (most features only read integer codes; strings are read for the few pairs that need a
    fuzzy score, via ``_at``)."""

    def __init__(self, cols: dict[str, np.ndarray], rows: np.ndarray):
        super().__init__()
        self.cols, self.rows = cols, rows

    def __missing__(self, key: str) -> np.ndarray:
        value = self[key] = self.cols[key][self.rows]
        return value


def _at(side: dict, column: str, idx: np.ndarray) -> np.ndarray:
    """side[column][idx] without gathering the whole column."""
    if isinstance(side, _Side) and column not in side:
        return side.cols[column][side.rows[idx]]
    return side[column][idx]


def _distinct_pairs(c_l: dict, c_r: dict, column: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (left value, right value) pairs among the pairs ``idx`` (by code), as two
    text arrays, and for each pair of ``idx`` its distinct pair: many candidates share their
    values (a common surname, a birth date), and a string score is computed once per distinct pair."""
    a = c_l[column + "#"][idx].astype(np.int64)
    b = c_r[column + "#"][idx].astype(np.int64)
    inverse, uniques = pd.factorize(a * (int(b.max()) + 1) + b)
    first = np.empty(len(uniques), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(idx))[::-1]
    return _at(c_l, column, idx[first]), _at(c_r, column, idx[first]), inverse


def _jw(c_l: dict, c_r: dict, column: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Jaro-Winkler similarity of the pairs ``idx`` (per distinct value pair), with the
    distinct texts and the inverse map (for further per-value tests)."""
    if not len(idx):
        e = np.empty(0, dtype=object)
        return np.zeros(0, np.float32), e, e, np.zeros(0, np.int64)
    a, b, inverse = _distinct_pairs(c_l, c_r, column, idx)
    sim = np.asarray(process.cpdist(a, b, scorer=JaroWinkler.normalized_similarity), dtype=np.float32)
    return sim, a, b, inverse


def compare_names(
    c_l: dict,
    c_r: dict,
    jw_high: float = JW_HIGH,
    jw_low: float = JW_LOW,
    middle_names: bool = True,
    name_boundary: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """first_name and last_name levels; order-free name_key or a clean swap counts as exact;
    with ``middle_names``, so does one given name written with and without a middle name; with
    ``name_boundary``, so do both names when their keys joined are equal."""
    cfl, cfr, cll, clr = c_l["first_name_key#"], c_r["first_name_key#"], c_l["last_name_key#"], c_r["last_name_key#"]
    same_name = _eq(c_l["name_key#"], c_r["name_key#"]) | (_eq(cfl, clr) & _eq(cll, cfr))
    if name_boundary:  # the boundary between the names placed elsewhere (`jaumeanguera pros` / `jaume anguerapros`)
        joined = c_l["name_joined#"]
        same_name |= _eq(joined, c_r["name_joined#"]) | _eq(joined, c_r["name_joined_reversed#"])

    first = np.full(len(cfl), level_code("first_name", "different"), dtype=np.int8)
    both = _both(cfl, cfr)
    exact = _eq(cfl, cfr) | same_name
    fuzzy = np.flatnonzero(both & ~exact)
    sim_u, _, _, inv = _jw(c_l, c_r, "first_name_key", fuzzy)
    sim = np.zeros(len(cfl), dtype=np.float32)
    sim[fuzzy] = sim_u[inv]
    # one side is a single letter, the other starts with it
    ia, ib = _at(c_l, "first_name_initial", fuzzy), _at(c_r, "first_name_initial", fuzzy)
    ha, hb = _at(c_l, "first_name_head", fuzzy), _at(c_r, "first_name_head", fuzzy)
    initial = np.zeros(len(cfl), dtype=bool)
    initial[fuzzy] = ((ia >= 0) | (ib >= 0)) & (ha == hb) & (ha >= 0)
    first[both & (sim >= jw_low)] = level_code("first_name", "similar")
    first[initial] = level_code("first_name", "initial")
    first[both & (sim >= jw_high)] = level_code("first_name", "close")
    first[exact] = level_code("first_name", "exact")
    first[~both & ~same_name] = 0
    if middle_names:
        first[_middle_name_variants(c_l, c_r, np.flatnonzero(both & ~exact))] = MIDDLE_NAME_LEVEL

    last = np.full(len(cll), level_code("last_name", "different"), dtype=np.int8)
    both = _both(cll, clr)
    exact = _eq(cll, clr) | same_name
    fuzzy = np.flatnonzero(both & ~exact)
    sim_u, _, _, inv = _jw(c_l, c_r, "last_name_key", fuzzy)
    sim = np.zeros(len(cll), dtype=np.float32)
    sim[fuzzy] = sim_u[inv]
    last[both & (sim >= jw_low)] = level_code("last_name", "similar")
    last[both & (sim >= jw_high)] = level_code("last_name", "close")
    last[exact] = level_code("last_name", "exact")
    last[~both & ~same_name] = 0
    return _crossed_if_better(c_l, c_r, first, last, jw_high, jw_low)


# a given name with and without its middle name is the same given name
MIDDLE_NAME_LEVEL = level_code("first_name", "exact")


def _middle_name_variants(c_l: dict, c_r: dict, idx: np.ndarray) -> np.ndarray:
    """The pairs of ``idx`` whose given names are one name with and without a middle name (or
    its initial): ``middle_name_variant`` on the words of ``first_name_std``, where one side has
    several. The key runs them together (`williamgibbens` / `william`: Jaro-Winkler 0.90, `similar`)."""
    some = idx[_at(c_l, "first_name_several", idx) | _at(c_r, "first_name_several", idx)]
    a, b = _at(c_l, "first_name_words", some), _at(c_r, "first_name_words", some)
    some, a, b = some[pd.notna(a) & pd.notna(b)], a[pd.notna(a) & pd.notna(b)], b[pd.notna(a) & pd.notna(b)]
    seen: dict[tuple[str, str], bool] = {}
    hit = [seen[p] if p in seen else seen.setdefault(p, middle_name_variant(*p)) for p in zip(a.tolist(), b.tolist())]
    return some[np.asarray(hit, dtype=bool)]


def _name_level(
    sim: np.ndarray, equal: np.ndarray, labels: tuple[str, ...], jw_high: float, jw_low: float
) -> np.ndarray:
    """Levels exact / close / similar / different of name similarities (``labels``: the feature's)."""
    lv = np.full(len(sim), labels.index("different"), dtype=np.int8)
    lv[sim >= jw_low] = labels.index("similar")
    lv[sim >= jw_high] = labels.index("close")
    lv[equal] = labels.index("exact")
    return lv


def _crossed_if_better(c_l, c_r, first, last, jw_high: float, jw_low: float) -> tuple[np.ndarray, np.ndarray]:
    """Given and family name swapped *and* one of them mistyped (`fster lily` / `lily foster`):
    where each name compared with the other side's opposite one is at least `similar` and the
    two crossed similarities sum higher than the straight ones, the crossed levels count (a
    clean swap is already `exact`; the weaker of the two is the given name's level). Splink's "columns reversed" level, kept inside the two
    name features so EM learns one m per level either way."""
    cfl, cfr, cll, clr = c_l["first_name_key#"], c_r["first_name_key#"], c_l["last_name_key#"], c_r["last_name_key#"]
    code = FEATURES["first_name"]
    low = (first != code.index("exact")) | (last != FEATURES["last_name"].index("exact"))
    idx = np.flatnonzero(_both(cfl, cfr) & _both(cll, clr) & low & (cfl != cfr) & (cll != clr))
    if not len(idx):
        return first, last
    # each similarity only where the ones before it leave the swap possible: both crossed
    # names at least similar (most pairs fail the first), then the straight ones to beat
    x1 = _cross_jw(c_l, "first_name_key", c_r, "last_name_key", idx)
    idx, x1 = idx[x1 >= jw_low], x1[x1 >= jw_low]
    x2 = _cross_jw(c_l, "last_name_key", c_r, "first_name_key", idx)
    idx, x1, x2 = idx[x2 >= jw_low], x1[x2 >= jw_low], x2[x2 >= jw_low]
    s1 = _cross_jw(c_l, "first_name_key", c_r, "first_name_key", idx)
    s2 = _cross_jw(c_l, "last_name_key", c_r, "last_name_key", idx)
    better = x1 + x2 > s1 + s2
    if not better.any():
        return first, last
    hit = idx[better]
    x1, x2, e1, e2 = x1[better], x2[better], cfl[hit] == clr[hit], cll[hit] == cfr[hit]
    # the weaker crossed similarity counts for the given name, the stronger for the surname:
    # the same levels whichever record is on the left
    lo = x1 <= x2
    first, last = first.copy(), last.copy()
    first[hit] = _name_level(np.where(lo, x1, x2), np.where(lo, e1, e2), code, jw_high, jw_low)
    last[hit] = _name_level(np.where(lo, x2, x1), np.where(lo, e2, e1), FEATURES["last_name"], jw_high, jw_low)
    return first, last


def _cross_jw(c_l: dict, col_l: str, c_r: dict, col_r: str, idx: np.ndarray) -> np.ndarray:
    """Jaro-Winkler of left ``col_l`` against right ``col_r`` for the pairs ``idx`` (both share
    one code space, so a score is computed once per distinct pair of codes)."""
    if not len(idx):
        return np.zeros(0, np.float32)
    a = c_l[col_l + "#"][idx].astype(np.int64)
    b = c_r[col_r + "#"][idx].astype(np.int64)
    inverse, uniques = pd.factorize(a * (int(max(a.max(), b.max())) + 1) + b)
    first = np.empty(len(uniques), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(idx))[::-1]
    ta, tb = _at(c_l, col_l, idx[first]), _at(c_r, col_r, idx[first])
    return np.asarray(process.cpdist(ta, tb, scorer=JaroWinkler.normalized_similarity), dtype=np.float32)[inverse]


def compare_birth_dates(c_l: dict, c_r: dict, years_apart: float = YEARS_APART) -> np.ndarray:
    """ISO dates: exact, day/month swapped, one character off (a typo: one digit replaced or
    two neighbouring digits swapped), same year, different, years apart (>= years_apart
    years: father and son, not a data-entry slip)."""
    lv = np.full(len(c_l["birth_date_std#"]), level_code("birth_date", "different"), dtype=np.int8)
    both = _both(c_l["birth_date_std#"], c_r["birth_date_std#"])
    exact = _eq(c_l["birth_date_std#"], c_r["birth_date_std#"])
    rest = np.flatnonzero(both & ~exact)
    if len(rest):
        # one character off: for two YYYY-MM-DD dates, one digit differs; other texts are scored
        da, db = _at(c_l, "birth_date_digits", rest), _at(c_r, "birth_date_digits", rest)
        one_char = _one_digit_apart(da, db) | _neighbours_swapped(da, db)
        other = np.flatnonzero((da < 0) | (db < 0))
        if len(other):
            ra, rb, inv = _distinct_pairs(c_l, c_r, "birth_date_std", rest[other])
            one_char[other] = (process.cpdist(ra, rb, scorer=Levenshtein.distance, score_cutoff=1) <= 1)[inv]
        swapped = _eq(c_l["birth_date_swapped#"][rest], c_r["birth_date_std#"][rest])
        ya, yb = c_l["birth_year"][rest], c_r["birth_year"][rest]
        known = (ya >= 0) & (yb >= 0)
        same_year = known & (ya == yb)
        apart = known & (np.abs(ya - yb) >= years_apart)
        sub = np.full(len(rest), level_code("birth_date", "different"), dtype=np.int8)
        sub[apart] = level_code("birth_date", "years_apart")
        sub[same_year] = level_code("birth_date", "same_year")
        sub[one_char] = level_code("birth_date", "one_char")
        sub[swapped] = level_code("birth_date", "day_month_swapped")
        lv[rest] = sub
    lv[exact] = level_code("birth_date", "exact")
    lv[~both] = 0
    return lv


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(c in it for c in short)


def _mailbox_typo(x: str, y: str) -> bool:
    """One slip inside the same mailbox: same domain, one edit or adjacent swap in the local
    part, and the digits not replaced (maria.garcia@ vs maria_garcia@, or liqiang77@ vs
    liqiang63@, are different people with name-made addresses, not typos)."""
    return _mailbox_edit(x, y) is not None


def _mailbox_edit(x: str, y: str) -> str | None:
    """The e-mail level of two mailboxes one slip apart (see _mailbox_typo), or None:
    ``initial_or_digit`` when the slip is the first character (the given name's initial in
    jsmith@) or a digit added or dropped (john.smith2@), else ``fuzzy_local``."""
    lx, _, dx = x.partition("@")
    ly, _, dy = y.partition("@")
    if dx != dy or OSA.distance(lx, ly, score_cutoff=1) > 1:
        return None
    if lx.replace(".", "").replace("_", "").replace("-", "") == ly.replace(".", "").replace("_", "").replace("-", ""):
        return None  # only a separator differs: name-made addresses of two people
    gx = "".join(c for c in lx if c.isdigit())
    gy = "".join(c for c in ly if c.isdigit())
    if gx != gy and sorted(gx) != sorted(gy):
        short, long = (gx, gy) if len(gx) < len(gy) else (gy, gx)
        if not (len(long) - len(short) == 1 and _is_subsequence(short, long)):
            return None  # a digit replaced: liqiang77@ / liqiang63@
        return "initial_or_digit"
    if lx[1:] == ly[1:] or lx[1:] == ly or lx == ly[1:]:
        return "initial_or_digit"
    return "fuzzy_local"


def _own_initials(c_l: dict, c_r: dict, idx: np.ndarray) -> np.ndarray:
    """Per pair of ``idx``: the two mailboxes start with different letters and each with its
    own record's given-name initial (ccarr@ for Claire, mcarr@ for Mason): each is its owner's
    name-made address, not a typo of the other."""
    head_l = np.array([ord(v[0]) if v else -1 for v in _at(c_l, "email_local", idx)], dtype=np.int64)
    head_r = np.array([ord(v[0]) if v else -1 for v in _at(c_r, "email_local", idx)], dtype=np.int64)
    first_l, first_r = c_l["first_name_head"][idx], c_r["first_name_head"][idx]
    return (head_l != head_r) & (head_l == first_l) & (head_r == first_r)


def compare_emails(c_l: dict, c_r: dict) -> np.ndarray:
    lv = np.full(len(c_l["email_key#"]), level_code("email", "different"), dtype=np.int8)
    both = _both(c_l["email_key#"], c_r["email_key#"])
    exact = _eq(c_l["email_key#"], c_r["email_key#"])
    # a typo needs the same domain: cheap integer filter before any string work
    rest = np.flatnonzero(both & ~exact & _eq(c_l["email_domain#"], c_r["email_domain#"]))
    if len(rest):  # a typo is one edit (OSA) in the mailbox: C code first, the finer test on those left
        rest = rest[
            process.cpdist(
                _at(c_l, "email_local", rest), _at(c_r, "email_local", rest), scorer=OSA.distance, score_cutoff=1
            )
            <= 1
        ]
    if len(rest):
        a, b, inv = _distinct_pairs(c_l, c_r, "email_key", rest)
        codes = {None: -1, "fuzzy_local": level_code("email", "fuzzy_local")}
        codes["initial_or_digit"] = level_code("email", "initial_or_digit")
        edit = np.array([codes[_mailbox_edit(x, y)] for x, y in zip(a, b)], dtype=np.int8)[inv]
        lv[rest[edit >= 0]] = edit[edit >= 0]
        lv[rest[_own_initials(c_l, c_r, rest)]] = level_code("email", "different")
    lv[exact] = level_code("email", "exact")
    lv[~both] = 0
    return lv


def compare_phones(c_l: dict, c_r: dict) -> np.ndarray:
    """A shared mobile is strong evidence; a shared landline only weak (households share it)."""
    ml, mr = c_l["mobile_std#"], c_r["mobile_std#"]
    ll, lr = c_l["landline_std#"], c_r["landline_std#"]
    pl, pr = c_l["phone_std#"], c_r["phone_std#"]
    # a number filed as a landline on either side counts as a landline
    mobile = _eq(ml, mr) | (_eq(ml, pr) & ~_eq(pr, lr)) | (_eq(pl, mr) & ~_eq(pl, ll))
    any_l = (ml >= 0) | (ll >= 0) | (pl >= 0)
    any_r = (mr >= 0) | (lr >= 0) | (pr >= 0)
    shared = _eq(ll, lr) | _eq(ll, pr) | _eq(pl, lr) | _eq(pl, pr)
    lv = np.full(len(ml), level_code("phone", "different"), dtype=np.int8)
    lv[shared] = level_code("phone", "landline_exact")
    lv[mobile] = level_code("phone", "mobile_exact")
    lv[~(any_l & any_r)] = 0
    return lv


def compare_addresses(c_l: dict, c_r: dict, address_fuzzy: float = ADDRESS_FUZZY) -> np.ndarray:
    both_addr = _both(c_l["address_std#"], c_r["address_std#"])
    exact = _eq(c_l["address_std#"], c_r["address_std#"])
    lv = np.full(len(both_addr), level_code("address", "different"), dtype=np.int8)
    rest = np.flatnonzero(both_addr & ~exact)
    fuzzy_idx = np.empty(0, dtype=np.int64)
    if len(rest) and "address_hist" in getattr(c_l, "cols", c_l):  # only pairs that can reach the cutoff are scored
        rest = rest[_may_be_fuzzy(c_l, c_r, rest, address_fuzzy)]
    if len(rest):
        a, b, inv = _distinct_pairs(c_l, c_r, "address_std", rest)
        # cutoff: rapidfuzz stops early on pairs that cannot reach it (they score 0)
        score = process.cpdist(
            a, b, scorer=fuzz.token_set_ratio, score_cutoff=address_fuzzy * 100 - 1e-6, dtype=np.float64
        )
        fuzzy_idx = rest[(score / 100.0 >= address_fuzzy)[inv]]
    postal = _eq(c_l["postal_code_std#"], c_r["postal_code_std#"])
    city = _eq(c_l["city_std#"], c_r["city_std#"])
    any_both = (
        both_addr | _both(c_l["postal_code_std#"], c_r["postal_code_std#"]) | _both(c_l["city_std#"], c_r["city_std#"])
    )
    lv[city] = level_code("address", "same_city")
    lv[postal] = level_code("address", "same_postal")
    lv[fuzzy_idx] = level_code("address", "fuzzy")
    lv[exact] = level_code("address", "exact")
    lv[~any_both] = 0
    return lv


def compare_national_ids(c_l: dict, c_r: dict) -> np.ndarray:
    """exact / one_edit (a single typo: one digit replaced, added or dropped, or two neighbours
    swapped) / different. Two valid 身份证 are never one edit apart (the check digit catches
    every single substitution and swap), so one_edit there means a typo, not a relative."""

    def one_edit(a, b) -> np.ndarray:
        return process.cpdist(a, b, scorer=OSA.distance, score_cutoff=1) <= 1

    return _exact_near_different(c_l, c_r, "national_id", "national_id_std", "one_edit", one_edit)


def compare_companies(c_l: dict, c_r: dict, fuzzy: float = ADDRESS_FUZZY) -> np.ndarray:
    """exact / similar (token-set ratio >= ``fuzzy``: a name with or without "Group",
    "Analytics") / different, on company_key."""

    def similar(a, b) -> np.ndarray:
        score = process.cpdist(a, b, scorer=fuzz.token_set_ratio, score_cutoff=fuzzy * 100 - 1e-6, dtype=np.float64)
        return score / 100.0 >= fuzzy

    return _exact_near_different(c_l, c_r, "company", "company_key", "similar", similar)


def _exact_near_different(c_l: dict, c_r: dict, feature: str, column: str, near: str, is_near) -> np.ndarray:
    """The three-level comparison: exact, `near` where `is_near(a, b)` holds for the pair's
    distinct values (each distinct pair judged once), different; 0 where a side is missing."""
    both = _both(c_l[f"{column}#"], c_r[f"{column}#"])
    exact = _eq(c_l[f"{column}#"], c_r[f"{column}#"])
    lv = np.full(len(both), level_code(feature, "different"), dtype=np.int8)
    rest = np.flatnonzero(both & ~exact)
    if len(rest):
        a, b, inv = _distinct_pairs(c_l, c_r, column, rest)
        lv[rest[np.asarray(is_near(a, b), dtype=bool)[inv]]] = level_code(feature, near)
    lv[exact] = level_code(feature, "exact")
    lv[~both] = 0
    return lv


def compare_simple(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """null / same / different on code arrays (suffix: different = Jr vs Sr conflict; gender)."""
    lv = np.where(_both(a, b), np.where(a == b, 1, 2), 0).astype(np.int8)
    return lv


def compare_pairs(
    cols: dict[str, Any], left: np.ndarray, right: np.ndarray, settings: dict[str, float] | None = None
) -> np.ndarray:
    """Level matrix (n_pairs × n_features, int8) for the pairs of row positions (left, right);
    ``settings``: the thresholds (compare_settings), the defaults when None."""
    t = settings or COMPARE_DEFAULTS
    c_l, c_r = _Side(cols, np.asarray(left)), _Side(cols, np.asarray(right))
    first, last = compare_names(
        c_l, c_r, t["jw_high"], t["jw_low"], bool(t.get("middle_names", 1.0)), bool(t.get("name_boundary", 1.0))
    )
    extras = extras_in(cols)
    out = np.empty((len(left), len(FEATURE_NAMES) + len(extras)), dtype=np.int8)
    out[:, 0] = first
    out[:, 1] = last
    out[:, 2] = compare_birth_dates(c_l, c_r, t["years_apart"])
    out[:, 3] = compare_emails(c_l, c_r)
    out[:, 4] = compare_phones(c_l, c_r)
    out[:, 5] = compare_addresses(c_l, c_r, t["address_fuzzy"])
    out[:, 6] = compare_simple(c_l["name_suffix_std#"], c_r["name_suffix_std#"])
    out[:, 7] = compare_simple(c_l["gender_std#"], c_r["gender_std#"])
    out[:, 8] = compare_national_ids(c_l, c_r)
    out[:, 9] = compare_companies(c_l, c_r, t["address_fuzzy"])
    for k, column in enumerate(extras):  # exact (1) / different (2) on the codes
        out[:, len(FEATURE_NAMES) + k] = compare_simple(c_l[column + "#"], c_r[column + "#"])
    return out


def pair_term_frequencies(
    tf: dict[str, np.ndarray], left: np.ndarray, right: np.ndarray, levels: np.ndarray
) -> dict[str, np.ndarray]:
    """feature -> per-pair value frequency where the pair sits on a TF level, else NaN."""
    out: dict[str, np.ndarray] = {}
    for f_idx, feature in enumerate(FEATURE_NAMES):
        spec = TF_COLUMNS.get(feature)
        if not spec:
            continue
        vals = np.full(len(left), np.nan)
        for label, column in spec.items():
            hit = levels[:, f_idx] == level_code(feature, label)
            if hit.any():
                vals[hit] = np.fmax(tf[column][left[hit]], tf[column][right[hit]])
        out[feature] = vals
    for k, column in enumerate(sorted(c for c in tf if c.startswith(EXTRA_PREFIX))):
        f_idx = len(FEATURE_NAMES) + k
        if f_idx >= levels.shape[1]:
            break
        vals = np.full(len(left), np.nan)
        hit = levels[:, f_idx] == 1
        if hit.any():
            vals[hit] = np.fmax(tf[column][left[hit]], tf[column][right[hit]])
        out[extra_feature(column)] = vals
    return out
