"""Given names written as a nickname with a typo in it.

Standardize maps a nickname to its formal name (`max` → `maximilian`, data/nicknames.csv), but
only a clean one: `mxa` or `izyz` keep their own key, and a plain string similarity to
`maximilian` / `isabella` is low. One function says whether two given-name keys are one name
once each side's nickname spellings are tried too; the cluster guards use it so that such a
typo is not read as a different person (a twin, a household member).
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz.distance import OSA, JaroWinkler

from ..standardize.names import _nickname_rows, latin_key

#: a spelling shorter than this is not compared fuzzily (`al`, `ed`: too many names start so)
MIN_FUZZY_LENGTH = 3
_WORD_SPLIT = re.compile(r"[\s.,()\"“”']+")


@lru_cache(maxsize=1)
def name_forms() -> dict[str, tuple[str, ...]]:
    """Formal given-name key -> every key that standardizes to it (itself and its nicknames;
    a gender-dependent nickname counts for both formal names)."""
    forms: dict[str, set[str]] = {}
    for nick, canonical, if_male, if_female in _nickname_rows():
        n = latin_key(nick)
        for formal in {latin_key(c) for c in (canonical, if_male, if_female) if c}:
            if n and formal:
                forms.setdefault(formal, {formal}).add(n)
    return {k: tuple(sorted(v)) for k, v in forms.items()}


def one_typo_apart(x: str, y: str, min_sim: float) -> bool:
    """Both at least MIN_FUZZY_LENGTH long and one typo apart: one letter replaced, added,
    dropped or two neighbours swapped, or Jaro-Winkler >= min_sim with lengths within one
    (a prefix alone — `max` / `maxine` — is not a typo)."""
    if min(len(x), len(y)) < MIN_FUZZY_LENGTH or abs(len(x) - len(y)) > 1:
        return False
    return OSA.distance(x, y, score_cutoff=1) <= 1 or JaroWinkler.normalized_similarity(x, y) >= min_sim


def same_given_name(x: str, y: str, min_sim: float) -> bool:
    """Two given-name keys are one name: equal, or one is a typo of a spelling of the other
    (its formal name or one of its nicknames: `mxa` / `maximilian` via `max`)."""
    if x == y:
        return True
    forms = name_forms()
    return any(one_typo_apart(x, n, min_sim) for n in forms.get(y, (y,))) or any(
        one_typo_apart(n, y, min_sim) for n in forms.get(x, (x,))
    )


def _given_words(first_name_std: str | None) -> list[str]:
    """The given-name field's words as keys, the first one nickname mapped as standardize maps
    the whole key (`Dan L.` -> daniel, l)."""
    from ..standardize.names import nickname_map

    words = [w for w in (latin_key(t) for t in _WORD_SPLIT.split(first_name_std or "")) if w]
    if words:
        words[0] = nickname_map().get(words[0], words[0])
    return words


def given_name_words(first_name_std: str | None) -> str | None:
    """The given name's words, space-joined (`William Gibbens` -> `william gibbens`), or None
    for one word: the key (`williamgibbens`) runs the words together."""
    words = _given_words(first_name_std)
    return " ".join(words) if len(words) > 1 else None


def first_given_word(first_name_std: str | None) -> str | None:
    """The given name's first word (`William Gibbens` -> william, `Bob` -> robert): a blocking
    key that a middle name present on one record only does not split."""
    words = _given_words(first_name_std)
    return words[0] if words else None


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
