"""Vectorized pair comparison: each feature maps a candidate pair to one comparison level.

Levels are Splink-style: level 0 is always ``null`` (either side missing → weight 0), then
from strongest agreement to ``different``. Exact checks run on whole arrays with numpy; the
fuzzy scores (Jaro-Winkler, token-set ratio) run only on the pairs that are not already
exact, with rapidfuzz's C functions in a list comprehension — recordlinkage's string compare
is far slower. Names are compared on the pinyin/latin keys, so Hanzi vs pinyin and nicknames
are already reconciled by standardize; swapped given/family names count as exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

# feature -> level labels; index = level code stored in the int8 level matrix.
FEATURES: dict[str, tuple[str, ...]] = {
    "first_name": ("null", "exact", "jw_0.92", "initial", "jw_0.80", "different"),
    "last_name": ("null", "exact", "jw_0.92", "jw_0.80", "different"),
    "birth_date": ("null", "exact", "day_month_swapped", "one_char", "same_year", "different", "years_apart"),
    "email": ("null", "exact", "fuzzy_local", "different"),  # fuzzy_local: a typo in one mailbox
    "phone": ("null", "mobile_exact", "landline_exact", "different"),
    "address": ("null", "exact", "fuzzy", "same_postal", "same_city", "different"),
    "suffix": ("null", "same", "conflict"),
    "gender": ("null", "same", "different"),
    # one_edit: one digit mistyped, inserted, dropped, or two neighbours swapped (OSA distance 1)
    "national_id": ("null", "exact", "one_edit", "different"),
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
}

# Standardized columns read by comparison and blocking (missing columns are treated as empty).
COMPARE_COLUMNS: tuple[str, ...] = (
    "first_name_key",
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
)

JW_HIGH = 0.92
JW_LOW = 0.80
YEARS_APART = 10  # birth years this far apart: another generation (Jr/Sr), not a typo
ADDRESS_FUZZY = 0.85


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
SHARED_VALUE_COLUMNS: tuple[str, ...] = ("email_key", "mobile_std", "landline_std", "phone_std", "address_std",
                                         "national_id_std")


def codes_and_texts(values) -> tuple[np.ndarray, np.ndarray]:
    """(int64 code per row, -1 = missing; the clean distinct texts): each distinct raw value is
    cleaned once (as clean_column cleans it), then values equal after cleaning share a code."""
    raw, uniques = pd.factorize(pd.Series(values, dtype="object"), use_na_sentinel=True)
    u = pd.Series(np.asarray(uniques, dtype=object), dtype="object")
    if pd.api.types.infer_dtype(u, skipna=True) in ("string", "empty"):
        stripped = u.str.strip()
        if not (stripped != u).any() and not (stripped == "").any():  # standardized text: clean already
            return raw.astype(np.int64), u.to_numpy(dtype=object)
    cleaned = clean_column(u.to_numpy(dtype=object))
    sub, texts = pd.factorize(pd.Series(cleaned, dtype="object"), use_na_sentinel=True)
    return np.append(sub.astype(np.int64), -1)[raw], np.asarray(texts, dtype=object)


def _derived(codes: np.ndarray, texts: np.ndarray, fn) -> tuple[np.ndarray, np.ndarray]:
    """A per-value derived column (fn on each distinct text, None = missing), as codes and texts."""
    sub, out = pd.factorize(pd.Series([fn(v) for v in texts], dtype="object"), use_na_sentinel=True)
    return np.append(sub.astype(np.int64), -1)[codes], np.asarray(out, dtype=object)


def prepare_columns(records: pd.DataFrame, shared_value_limit: int | None = None) -> dict[str, np.ndarray]:
    """The comparison columns as clean object arrays, in the frame's row order, plus
    ``<column>#``: int32 codes (-1 = missing) so presence and equality tests are integer ops.

    With ``shared_value_limit``, a contact value (SHARED_VALUE_COLUMNS) held by more records
    than that is treated as missing. Work is per distinct value (cleaning, day/month swap,
    domain, year), then gathered to rows: most columns have far fewer values than rows."""
    n = len(records)
    codes: dict[str, np.ndarray] = {}
    texts: dict[str, np.ndarray] = {}
    for name in COMPARE_COLUMNS:
        if name in records.columns:
            code, text = codes_and_texts(records[name].to_numpy(dtype=object))
        else:
            code, text = np.full(n, -1, dtype=np.int64), np.empty(0, dtype=object)
        if shared_value_limit and name in SHARED_VALUE_COLUMNS and len(text):
            junk = np.bincount(code[code >= 0], minlength=len(text)) > shared_value_limit
            code = np.where((code >= 0) & junk[code.clip(min=0)], -1, code)
        codes[name], texts[name] = code, text
    # per distinct value, once: the date with day and month swapped, the e-mail domain, the year
    codes["birth_date_swapped"], texts["birth_date_swapped"] = _derived(
        codes["birth_date_std"], texts["birth_date_std"], lambda v: v[:5] + v[8:10] + "-" + v[5:7] if len(v) == 10 else None
    )
    codes["email_domain"], texts["email_domain"] = _derived(
        codes["email_key"], texts["email_key"], lambda v: v.partition("@")[2]
    )
    years = pd.to_numeric(pd.Series([v[:4] for v in texts["birth_date_std"]], dtype="object"), errors="coerce")
    year_of = np.append(years.fillna(-1).to_numpy().astype(np.int32), np.int32(-1))
    cols: dict[str, np.ndarray] = {}
    for name in (*COMPARE_COLUMNS, "birth_date_swapped", "email_domain"):
        cols[name] = np.append(texts[name], None)[codes[name]]
    cols["birth_year"] = year_of[codes["birth_date_std"]]
    grouped = {c for g in CODE_GROUPS for c in g}
    groups = list(CODE_GROUPS) + [(c,) for c in COMPARE_COLUMNS + ("email_domain",) if c not in grouped]
    for group in groups:
        if len(group) == 1:  # the codes already number the column's distinct texts
            cols[group[0] + "#"] = codes[group[0]].astype(np.int32)
            continue
        # columns compared with each other get one code space: the distinct texts factorized together
        joint, _ = pd.factorize(pd.Series(np.concatenate([texts[c] for c in group]), dtype="object"))
        offset = 0
        for c in group:
            lookup = np.append(joint[offset : offset + len(texts[c])], -1).astype(np.int32)
            cols[c + "#"] = lookup[codes[c]]
            offset += len(texts[c])
    return cols


def term_frequencies(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per record, the relative frequency of its value among the non-null values of the column."""
    tf: dict[str, np.ndarray] = {}
    for column in {c for spec in TF_COLUMNS.values() for c in spec.values()}:
        code = cols.get(column + "#")
        if code is None:
            code = pd.factorize(pd.Series(cols[column], dtype="object"), use_na_sentinel=True)[0]
        present = code >= 0
        counts = np.bincount(code[present]) if present.any() else np.zeros(0, np.int64)
        total = max(int(counts.sum()), 1)
        freq = np.append(counts / total, np.nan)
        tf[column] = freq[np.where(present, code, len(counts))]
    return tf


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


def compare_names(c_l: dict, c_r: dict) -> tuple[np.ndarray, np.ndarray]:
    """first_name and last_name levels; order-free name_key or a clean swap counts as exact."""
    cfl, cfr, cll, clr = c_l["first_name_key#"], c_r["first_name_key#"], c_l["last_name_key#"], c_r["last_name_key#"]
    same_name = _eq(c_l["name_key#"], c_r["name_key#"]) | (_eq(cfl, clr) & _eq(cll, cfr))

    first = np.full(len(cfl), level_code("first_name", "different"), dtype=np.int8)
    both = _both(cfl, cfr)
    exact = _eq(cfl, cfr) | same_name
    fuzzy = np.flatnonzero(both & ~exact)
    sim_u, a, b, inv = _jw(c_l, c_r, "first_name_key", fuzzy)
    initial_u = np.array([(len(x) == 1 or len(y) == 1) and x[0] == y[0] for x, y in zip(a, b)], dtype=bool)
    sim = np.zeros(len(cfl), dtype=np.float32)
    sim[fuzzy] = sim_u[inv]
    initial = np.zeros(len(cfl), dtype=bool)
    initial[fuzzy] = initial_u[inv]
    first[both & (sim >= JW_LOW)] = level_code("first_name", "jw_0.80")
    first[initial] = level_code("first_name", "initial")
    first[both & (sim >= JW_HIGH)] = level_code("first_name", "jw_0.92")
    first[exact] = level_code("first_name", "exact")
    first[~both & ~same_name] = 0

    last = np.full(len(cll), level_code("last_name", "different"), dtype=np.int8)
    both = _both(cll, clr)
    exact = _eq(cll, clr) | same_name
    fuzzy = np.flatnonzero(both & ~exact)
    sim_u, _, _, inv = _jw(c_l, c_r, "last_name_key", fuzzy)
    sim = np.zeros(len(cll), dtype=np.float32)
    sim[fuzzy] = sim_u[inv]
    last[both & (sim >= JW_LOW)] = level_code("last_name", "jw_0.80")
    last[both & (sim >= JW_HIGH)] = level_code("last_name", "jw_0.92")
    last[exact] = level_code("last_name", "exact")
    last[~both & ~same_name] = 0
    return first, last


def compare_birth_dates(c_l: dict, c_r: dict) -> np.ndarray:
    """ISO dates: exact, day/month swapped, one character off (typo), same year, different,
    years apart (≥ 10 years: father and son, not a data-entry slip)."""
    lv = np.full(len(c_l["birth_date_std#"]), level_code("birth_date", "different"), dtype=np.int8)
    both = _both(c_l["birth_date_std#"], c_r["birth_date_std#"])
    exact = _eq(c_l["birth_date_std#"], c_r["birth_date_std#"])
    rest = np.flatnonzero(both & ~exact)
    if len(rest):
        ra, rb, inv = _distinct_pairs(c_l, c_r, "birth_date_std", rest)
        one_char = (process.cpdist(ra, rb, scorer=Levenshtein.distance, score_cutoff=1) <= 1)[inv]
        swapped = _eq(c_l["birth_date_swapped#"][rest], c_r["birth_date_std#"][rest])
        ya, yb = c_l["birth_year"][rest], c_r["birth_year"][rest]
        known = (ya >= 0) & (yb >= 0)
        same_year = known & (ya == yb)
        apart = known & (np.abs(ya - yb) >= YEARS_APART)
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
    lx, _, dx = x.partition("@")
    ly, _, dy = y.partition("@")
    if dx != dy or OSA.distance(lx, ly, score_cutoff=1) > 1:
        return False
    if lx.replace(".", "").replace("_", "").replace("-", "") == ly.replace(".", "").replace("_", "").replace("-", ""):
        return False  # only a separator differs: name-made addresses of two people
    gx = "".join(c for c in lx if c.isdigit())
    gy = "".join(c for c in ly if c.isdigit())
    if gx == gy or sorted(gx) == sorted(gy):
        return True
    short, long = (gx, gy) if len(gx) < len(gy) else (gy, gx)
    return len(long) - len(short) == 1 and _is_subsequence(short, long)


def compare_emails(c_l: dict, c_r: dict) -> np.ndarray:
    lv = np.full(len(c_l["email_key#"]), level_code("email", "different"), dtype=np.int8)
    both = _both(c_l["email_key#"], c_r["email_key#"])
    exact = _eq(c_l["email_key#"], c_r["email_key#"])
    # a typo needs the same domain: cheap integer filter before any string work
    rest = np.flatnonzero(both & ~exact & _eq(c_l["email_domain#"], c_r["email_domain#"]))
    if len(rest):
        a, b, inv = _distinct_pairs(c_l, c_r, "email_key", rest)
        typo = np.array([_mailbox_typo(x, y) for x, y in zip(a, b)], dtype=bool)[inv]
        lv[rest[typo]] = level_code("email", "fuzzy_local")
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


def compare_addresses(c_l: dict, c_r: dict) -> np.ndarray:
    both_addr = _both(c_l["address_std#"], c_r["address_std#"])
    exact = _eq(c_l["address_std#"], c_r["address_std#"])
    lv = np.full(len(both_addr), level_code("address", "different"), dtype=np.int8)
    rest = np.flatnonzero(both_addr & ~exact)
    fuzzy_idx = np.empty(0, dtype=np.int64)
    if len(rest):
        a, b, inv = _distinct_pairs(c_l, c_r, "address_std", rest)
        # cutoff: rapidfuzz stops early on pairs that cannot reach it (they score 0)
        score = process.cpdist(a, b, scorer=fuzz.token_set_ratio, score_cutoff=ADDRESS_FUZZY * 100 - 1e-6, dtype=np.float64)
        fuzzy_idx = rest[(score / 100.0 >= ADDRESS_FUZZY)[inv]]
    postal = _eq(c_l["postal_code_std#"], c_r["postal_code_std#"])
    city = _eq(c_l["city_std#"], c_r["city_std#"])
    any_both = both_addr | _both(c_l["postal_code_std#"], c_r["postal_code_std#"]) | _both(c_l["city_std#"], c_r["city_std#"])
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
    both = _both(c_l["national_id_std#"], c_r["national_id_std#"])
    exact = _eq(c_l["national_id_std#"], c_r["national_id_std#"])
    lv = np.full(len(both), level_code("national_id", "different"), dtype=np.int8)
    rest = np.flatnonzero(both & ~exact)
    if len(rest):
        a, b, inv = _distinct_pairs(c_l, c_r, "national_id_std", rest)
        one = (process.cpdist(a, b, scorer=OSA.distance, score_cutoff=1) <= 1)[inv]
        lv[rest[one]] = level_code("national_id", "one_edit")
    lv[exact] = level_code("national_id", "exact")
    lv[~both] = 0
    return lv


def compare_simple(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """null / same / different on code arrays (suffix: different = Jr vs Sr conflict; gender)."""
    lv = np.where(_both(a, b), np.where(a == b, 1, 2), 0).astype(np.int8)
    return lv


def compare_pairs(cols: dict[str, np.ndarray], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Level matrix (n_pairs × n_features, int8) for the pairs of row positions (left, right)."""
    c_l, c_r = _Side(cols, np.asarray(left)), _Side(cols, np.asarray(right))
    first, last = compare_names(c_l, c_r)
    out = np.empty((len(left), len(FEATURE_NAMES)), dtype=np.int8)
    out[:, 0] = first
    out[:, 1] = last
    out[:, 2] = compare_birth_dates(c_l, c_r)
    out[:, 3] = compare_emails(c_l, c_r)
    out[:, 4] = compare_phones(c_l, c_r)
    out[:, 5] = compare_addresses(c_l, c_r)
    out[:, 6] = compare_simple(c_l["name_suffix_std#"], c_r["name_suffix_std#"])
    out[:, 7] = compare_simple(c_l["gender_std#"], c_r["gender_std#"])
    out[:, 8] = compare_national_ids(c_l, c_r)
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
    return out
