"""A given name written with and without a middle name (or its initial) is one given name.

Standardize's given-name key runs the field's words together (`William Gibbens` ->
`williamgibbens`), so comparison and blocking read the words of `first_name_std` here. This
module imports nothing from `crmclean.standardize` (whose package imports the settings, which
import link.compare): it folds the words to keys itself and reads the nickname table's file.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

# standardize's nickname table (standardize/names.py reads the same file)
NICKNAMES_CSV = Path(__file__).resolve().parent.parent / "standardize" / "data" / "nicknames.csv"
_WORD_SPLIT = re.compile(r"[\s.,()\"“”']+")
_NOT_KEY = re.compile(r"[^a-z0-9]")
# letters NFKD does not decompose (as standardize's ascii_fold maps them)
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "þ": "th", "œ": "oe", "ı": "i"})
# a given name of Han ideographs (and separators) only has no word key: NFKD leaves them as they
# are and none is ASCII (48k of the 69k distinct given names of a 200k night)
_HAN_ONLY = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\s.,()\"“”']*")


@lru_cache(maxsize=1)
def _nicknames() -> dict[str, str]:
    """nickname -> formal given name (the table's `canonical` column)."""
    with NICKNAMES_CSV.open(encoding="utf-8") as fh:
        rows = csv.DictReader(fh)
        return {
            (r.get("nickname") or "").strip().lower(): (r.get("canonical") or "").strip().lower()
            for r in rows
            if (r.get("nickname") or "").strip() and (r.get("canonical") or "").strip()
        }


def _word_key(word: str) -> str:
    """Lower-case ASCII letters and digits of one word (José -> jose, Søren -> soren)."""
    if word.isascii():  # folding and NFKD leave ASCII as it is: 63k distinct names a 200k night
        return _NOT_KEY.sub("", word.lower())
    folded = unicodedata.normalize("NFKD", word.lower().translate(_FOLD))
    return _NOT_KEY.sub("", "".join(c for c in folded if ord(c) < 128))


@lru_cache(maxsize=65_536)
def given_name_words(first_name_std: str | None) -> str | None:
    """The given name's words as keys, space-joined, the first one nickname mapped (`Dan L.` ->
    `daniel l`, `William Gibbens` -> `william gibbens`, `Bob` -> `robert`); None without a
    Latin letter or digit (a Hanzi given name: its key is pinyin, compared as before)."""
    if first_name_std and _HAN_ONLY.fullmatch(first_name_std):
        return None
    words = [w for w in (_word_key(t) for t in _WORD_SPLIT.split(first_name_std or "")) if w]
    if not words:
        return None
    words[0] = _nicknames().get(words[0], words[0])
    return " ".join(words)


def first_given_word(first_name_std: str | None) -> str | None:
    """The given name's first word (`William Gibbens` -> william, `Bob` -> robert): a blocking
    key that a middle name present on one record only does not split."""
    words = given_name_words(first_name_std)
    return words.split(" ", 1)[0] if words else None


def _fits(x: str, y: str) -> bool:
    """One given-name word stands for the other: equal, or one is the other's initial."""
    return x == y or (len(x) == 1 and y[:1] == x) or (len(y) == 1 and x[:1] == y)


def middle_name_variant(x: str, y: str) -> bool:
    """Two given names (space-joined word keys) that are one name written with and without a
    middle name, or with it as an initial (`william` / `william gibbens` / `william g`, `p
    gregory` / `gregory`): the shorter's words fit the longer's in order (equal or an initial),
    only initials are skipped before its first word, and one full word is the same on both.
    Middle initials that differ (`kristin h` / `kristin k`) do not fit."""
    a, b = x.split(), y.split()
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    j, whole = 0, False
    for k, word in enumerate(short):
        while j < len(long) and not _fits(word, long[j]):
            if k == 0 and len(long[j]) > 1:  # a full word before the first: another name
                return False
            if k > 0 and len(short) == len(long):  # same count of words: no word to skip
                return False
            j += 1
        if j == len(long):
            return False
        whole = whole or (word == long[j] and len(word) > 1)
        j += 1
    return whole
