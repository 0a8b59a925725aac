"""Survivorship for phone numbers judged by what the number is.

`possible_only`: standardize keeps a number libphonenumber finds possible (the right length for
its country) but outside every allocated range (555-123-4567, a UK 020 6xxx number), flagged
`unallocated`, so it still links records. Such a number is often invented (a form's filler, a
clerk's dummy) or mistyped; a number in an allocated range that another record of the customer
holds is the better golden value. Checked on the E.164 value itself, so it holds wherever the
number came from (a typed column, the untyped phone column, another slot).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers

# E.164 numbers whose validity libphonenumber decides from their first 6 national digits (its
# patterns for these allow any digits after): Chinese mobiles and NANP numbers, most of the data
_CN_MOBILE_E164 = re.compile(r"\+861[3-9][0-9]{9}")
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}")


def allocated(e164: str) -> bool:
    """Is the E.164 number in an allocated range (libphonenumber's is_valid_number)? A Chinese
    mobile or a NANP number is judged once per 6-digit prefix, built without the parser."""
    if _CN_MOBILE_E164.fullmatch(e164):
        return _allocated_prefix(86, e164[3:9], 11)
    if _NANP_E164.fullmatch(e164):
        return _allocated_prefix(1, e164[2:8], 10)
    return _allocated(e164)


@lru_cache(maxsize=100_000)
def _allocated_prefix(country_code: int, prefix: str, length: int) -> bool:
    national = int(prefix + "0" * (length - len(prefix)))
    return phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=country_code, national_number=national))


@lru_cache(maxsize=100_000)
def _allocated(e164: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False


def possible_only(cluster: np.ndarray, texts: np.ndarray, value: np.ndarray, contested: np.ndarray) -> np.ndarray:
    """Per candidate row: 1 for a number outside libphonenumber's allocated ranges, 0 otherwise.
    Only rows of `contested` clusters (more than one distinct number) are checked: elsewhere
    there is nothing to prefer, and the number is published as the only one."""
    key = np.zeros(len(cluster), np.int64)
    pick = (value >= 0) & np.isin(cluster, contested)
    if not pick.any():
        return key
    distinct = np.unique(value[pick])
    bad = distinct[[not allocated(str(texts[v])) for v in distinct]]
    key[pick] = np.isin(value[pick], bad)
    return key


def foreign_reading(cluster: np.ndarray, texts: np.ndarray, value: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Per candidate: 1 for a number that is one digit string read in another country than the
    customer's, when another candidate of its cluster is the same digits read in the customer's
    country (`country`: the customer's ISO country per candidate, None = unknown).

    "15125687019" is +1 512-568-7019 to an export whose default region is the US and the Chinese
    mobile +86 151 2568 7019 to one whose default region is China: two records of one customer
    give the two readings of one number, and only the reading in the country the customer lives
    in is theirs. Two different people's numbers sharing all those digits is far less likely."""
    key = np.zeros(len(cluster), np.int64)
    pick = (value >= 0) & pd.notna(country)
    if not pick.any():
        return key
    frame = pd.DataFrame({"cluster": cluster[pick], "value": value[pick], "country": country[pick]})
    frame = frame.drop_duplicates(["cluster", "value"])
    frame["digits"] = pd.Series(texts[frame["value"].to_numpy()], index=frame.index, dtype=object).str.lstrip("+")
    # candidate pairs: the other number's digits are this one's without a 1-3 digit country code
    found = []
    for cc_len in (1, 2, 3):
        long = frame.assign(rest=frame["digits"].str[cc_len:])
        found.append(
            long.merge(frame, left_on=["cluster", "rest"], right_on=["cluster", "digits"], suffixes=("", "_o"))
        )
    pairs = pd.concat(found, ignore_index=True)
    if len(pairs) == 0:
        return key
    # confirmed by the parser: this number's national digits are exactly the other's digits
    read = {t: _reading(t) for t in set(pairs["digits"]) | set(pairs["digits_o"])}
    pairs = pairs[[read[a][0] == b for a, b in zip(pairs["digits"], pairs["digits_o"])]]
    home = np.array([c in read[a][1] for a, c in zip(pairs["digits"], pairs["country"])], bool)
    home_o = np.array([c in read[b][1] for b, c in zip(pairs["digits_o"], pairs["country"])], bool)
    pairs, home = pairs[home != home_o], home[home != home_o]
    if len(pairs) == 0:
        return key
    foreign = np.where(home, pairs["value_o"].to_numpy(), pairs["value"].to_numpy()).astype(np.int64)
    width = int(value.max()) + 1
    bad = np.unique(pairs["cluster"].to_numpy(np.int64) * width + foreign)
    key[pick] = np.isin(cluster[pick] * width + value[pick], bad)
    return key


@lru_cache(maxsize=100_000)
def _reading(digits: str) -> tuple[str, frozenset[str]]:
    """(national significant number, the regions of its country code) of the E.164 number +digits."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return "", frozenset()
    national = phonenumbers.national_significant_number(number)
    return national, frozenset(phonenumbers.region_codes_for_country_code(number.country_code or 0))


def held_elsewhere(
    cluster: np.ndarray, slots: list[np.ndarray], numbers: np.ndarray, totals: dict[str, int] | None, rows, cand
) -> np.ndarray:
    """Per candidate (table row `rows`, number id `cand`, -1 = none): 1 when records outside its
    cluster give the number too, in any phone slot (`slots`: each slot's number id per table
    row; `numbers`: the text of each id).

    A mobile is one person's: a number records of other customers also give is a line they
    share (a household's landline, an office switchboard), so it is not this customer's mobile.
    `totals` (records giving each number, data-wide) lets a build over part of the data judge as
    a build over everything; without it the given records are counted. Only clusters with more
    than one number are looked at: elsewhere there is nothing to prefer."""
    key = np.zeros(len(rows), np.int64)
    width = len(numbers) + 1
    present = cand >= 0
    pair = np.unique(cluster[rows[present]] * width + cand[present])
    ids, n = np.unique(pair // width, return_counts=True)
    contested = ids[n > 1]
    pick = present & np.isin(cluster[rows], contested)
    if not pick.any():
        return key
    held = _distinct(slots)
    if totals is None:
        everyone = np.bincount(np.concatenate([h[h >= 0] for h in held]), minlength=len(numbers))
    else:
        everyone = pd.Series(numbers, dtype=object).map(totals).fillna(0).to_numpy(np.int64)
    inside = np.isin(cluster, contested)
    mine = np.concatenate([cluster[inside & (h >= 0)] * width + h[inside & (h >= 0)] for h in held])
    mine, count = np.unique(mine, return_counts=True)
    wanted = cluster[rows[pick]] * width + cand[pick]
    at = np.minimum(np.searchsorted(mine, wanted), len(mine) - 1)
    own = np.where(mine[at] == wanted, count[at], 0)
    key[pick] = everyone[cand[pick]] > own
    return key


def _distinct(slots: list[np.ndarray]) -> list[np.ndarray]:
    """The slots' number ids with a number a record already gave in an earlier slot set to -1:
    a record giving one number as mobile and landline counts once."""
    out = []
    for j, ids in enumerate(slots):
        repeat = np.zeros(len(ids), bool)
        for earlier in slots[:j]:
            repeat |= ids == earlier
        out.append(np.where(repeat, -1, ids))
    return out


def number_counts(slots: list[np.ndarray]) -> dict[str, int]:
    """{number: records giving it in any slot} (`slots`: each slot's number per record, None =
    none): the data-wide totals of `held_elsewhere`."""
    codes, numbers = pd.factorize(np.concatenate(slots))
    ids = np.split(codes.astype(np.int64), len(slots))
    counts = np.bincount(np.concatenate([h[h >= 0] for h in _distinct(ids)]), minlength=len(numbers))
    return dict(zip(numbers.tolist(), counts.tolist()))
