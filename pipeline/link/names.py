"""Given names written as a nickname with a typo in it.

Standardize maps a nickname to its formal name (`max` → `maximilian`, data/nicknames.csv), but
only a clean one: `mxa` or `izyz` keep their own key, and a plain string similarity to
`maximilian` / `isabella` is low. One function says whether two given-name keys are one name
once each side's nickname spellings are tried too; the cluster guards use it so that such a
typo is not read as a different person (a twin, a household member).
"""

from __future__ import annotations

from functools import lru_cache

from rapidfuzz.distance import OSA, JaroWinkler

from ..standardize.names import _nickname_rows, latin_key

#: a spelling shorter than this is not compared fuzzily (`al`, `ed`: too many names start so)
MIN_FUZZY_LENGTH = 3


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
