"""Survivorship strategies that judge a value by what it says, not by where it came from.

Each function returns one sort key per candidate row (smaller = better), computed on the
distinct values (never per row in Python) and on the few clusters that hold competing values:

- `medoid_support`: the value the others are typo variants of (votes: 1 for the same match key,
  `variant_weight` for a key within `max_edits` edits);
- `nickname_of_other`: 1 for a first name that is a nickname of another candidate's first name;
- `accent_deficit`: how many accents a value lacks against its accented twin in the cluster;
- `odd_case`: 1 for an ALL-CAPS or all-lower value;
- `rarity`: how rare the value's name words are in the whole data set (a typo is rare);
- `character_support`: how rarely the data set's given names of the customer's gender use the
  characters of a Hanzi given name (a homophone typed by its sound is one picked at random).
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA


def medoid_support(cluster, keys: np.ndarray, texts: np.ndarray, value: np.ndarray, max_edits: int, weight: float):
    """Per candidate row: minus its votes. Per row: `keys` its match key text (None = no key),
    `texts` its value text and `value` the value's id (-1 = no value, no vote). Each record votes 1
    for a value with the same match key or text (one full name parsed two ways) and `weight` for one whose key or text is at most
    `max_edits` edits (a transposition is one) away: of Jackson, Jackson, Jacksjon the first wins
    2.5 to 2; of Jackson and Jacksjon neither wins (no evidence). Only clusters holding two or more
    values are compared."""
    out = np.zeros(len(cluster), float)
    has = value >= 0
    frame = pd.DataFrame({"cluster": cluster[has], "value": value[has], "key": keys[has], "text": texts[has]})
    units = frame.groupby(["cluster", "value"], sort=False).agg(
        n=("key", "size"), key=("key", "first"), text=("text", "first")
    )
    units = units.reset_index()
    units = units[units["cluster"].map(units["cluster"].value_counts()).to_numpy() > 1]
    if units.empty:
        return out
    # each unit's text and key folded once, not once per pair it is compared in
    units = units.assign(text_f=_folded(units["text"]), key_f=_folded(units["key"]))
    both = units.merge(units, on="cluster", suffixes=("", "_o"))
    same_key = (both["key"] == both["key_o"]).to_numpy() & both["key"].notna().to_numpy()
    same_key |= (both["text"] == both["text_o"]).to_numpy()  # one name parsed two ways (St. John)
    same = same_key | (both["value"] == both["value_o"]).to_numpy()
    # edit distances only where the vote is not already a full one (half the pairs are a value
    # with itself)
    near = np.zeros(len(both), bool)
    ask = np.flatnonzero(~same)
    near[ask] = np.fromiter(
        (
            _close_folded(a, b, max_edits) or _close_folded(ka, kb, max_edits)
            for a, b, ka, kb in zip(
                *(both[c].to_numpy(object)[ask].tolist() for c in ("text_f", "text_f_o", "key_f", "key_f_o"))
            )
        ),
        bool,
        count=len(ask),
    )
    vote = np.where(same, 1.0, np.where(near, weight, 0.0))
    votes = (both["n_o"].to_numpy() * vote).astype(float)
    support = pd.Series(votes).groupby([both["cluster"].to_numpy(), both["value"].to_numpy()]).sum()
    index = pd.MultiIndex.from_arrays([cluster[has], value[has]])
    out[has] = -support.reindex(index).fillna(0.0).to_numpy()
    return out


def _folded(values: pd.Series) -> np.ndarray:
    """Each text accent-free and casefolded (`_fold`); None for a missing one. Each distinct
    text is folded once (a common name recurs in many clusters)."""
    codes, uniques = pd.factorize(values.to_numpy(object), use_na_sentinel=True)
    folded = [_fold(v)[0] if isinstance(v, str) else None for v in uniques.tolist()]
    return np.array(folded + [None], dtype=object)[codes]


def _close_folded(a, b, max_edits: int) -> bool:
    """Two folded texts at most `max_edits` edits apart (a missing one is never close)."""
    if a is None or b is None:
        return False
    return OSA.distance(a, b, score_cutoff=max_edits) <= max_edits


def nickname_of_other(cluster: np.ndarray, firsts: np.ndarray, nicknames: dict[str, set[str]]) -> np.ndarray:
    """1 for a candidate whose first name is a nickname (nickname table: nickname -> formal
    names) of a first name another candidate of the cluster holds: "Mike" next to "Michael"
    (the table's formal name, a one-edit spelling of it "Katherine"/"catherine", a longer name
    starting with it "Nathaniel"/"nathan", or a longer name starting with the nickname
    "Samantha"/"Sam")."""
    key = np.zeros(len(cluster), np.int64)
    low = pd.Series(firsts, dtype=object).str.casefold()
    nick = low.isin(nicknames.keys()).to_numpy()
    if not nick.any():
        return key
    frame = pd.DataFrame({"cluster": cluster, "first": low.to_numpy(), "nick": nick})
    formal = frame[~frame["nick"] & frame["first"].notna()].drop_duplicates(["cluster", "first"])
    cand = frame[frame["nick"] & frame["cluster"].isin(formal["cluster"])].drop_duplicates(["cluster", "first"])
    if cand.empty:
        return key
    # the formal names of the clusters with a nickname only, by a plain loop (groupby().agg(list)
    # ran Python per group of every cluster: 4-5 CPU s at 365k records)
    formal = formal[formal["cluster"].isin(cand["cluster"])]
    by_cluster: dict[int, list[str]] = {}
    for c, f in zip(formal["cluster"].tolist(), formal["first"].tolist()):
        by_cluster.setdefault(c, []).append(f)
    hits = set()
    for c, first in zip(cand["cluster"].tolist(), cand["first"].tolist()):
        formal = nicknames[first]
        if any(_formal_of(f, first, formal) for f in by_cluster.get(c, ())):
            hits.add((c, first))
    if hits:
        index = pd.MultiIndex.from_arrays([cluster, low.to_numpy()])
        key[index.isin(list(hits))] = 1
    return key


def _formal_of(name: str, nickname: str, formal: set[str]) -> bool:
    if name in formal and name != nickname and (name.startswith(nickname) or not _near(name, nickname)):
        return True  # the table's formal name, even one letter longer (Steve, Steven); not a
        # one-letter respelling the table lists (Katherine, Catherine: neither is the nickname)
    if name == nickname or _near(name, nickname):  # a typo of the nickname is no formal name
        return False
    if len(name) > len(nickname) and name.startswith(nickname):
        return True
    return any(name.startswith(f) or _near(name, f) for f in formal)


def _near(a: str, b: str) -> bool:
    return OSA.distance(a, b, score_cutoff=1) <= 1


def accent_deficit(cluster: np.ndarray, texts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Accents a candidate lacks against the most accented value of the cluster that folds to the
    same letters: "Lucia Perez" loses to "Lucía Pérez", never to another name."""
    present = codes >= 0
    if not present.any():
        return np.zeros(len(codes), np.int64)
    used = np.unique(codes[present])  # only the values the candidates hold are folded
    folds, accents = np.zeros(len(texts), np.int64), np.zeros(len(texts), np.int64)
    folds[used], accents[used] = _fold_table(texts[used])
    fold_id = np.where(present, folds[np.where(present, codes, 0)], -1)
    own = np.where(present, accents[np.where(present, codes, 0)], 0)
    best = pd.Series(own).groupby([cluster, fold_id]).transform("max").to_numpy()
    return np.where(present, best - own, 0).astype(np.int64)


def _fold_table(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct value: an id of its accent-free casefolded form, and its number of accents."""
    folded, accents = [], []
    for text in texts.tolist():
        plain, marks = _fold(str(text))
        folded.append(plain)
        accents.append(marks)
    return pd.factorize(pd.Series(folded, dtype=object))[0], np.asarray(accents, np.int64)


def _fold(text: str) -> tuple[str, int]:
    """(text accent-free and casefolded, how many accents it had). ASCII text has no
    decomposition and no accents and casefolds as it lowers: most names, no cache needed."""
    if text.isascii():
        return text.lower(), 0
    return _fold_unicode(text)


@lru_cache(maxsize=65536)
def _fold_unicode(text: str) -> tuple[str, int]:
    decomposed = unicodedata.normalize("NFKD", text)
    marks = sum(1 for ch in decomposed if unicodedata.combining(ch))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold(), marks


def odd_case(texts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """1 for a value in ALL CAPS or all lower case (letters with case only); each distinct value
    the candidates hold is looked at once."""
    used = np.unique(codes[codes >= 0])
    odd = np.zeros(len(texts), bool)  # the last entry: "no value"
    odd[used] = [_is_odd_case(str(t)) for t in texts[used]]
    return odd[codes].astype(np.int64)


def _is_odd_case(text: str) -> bool:
    if text.isascii():  # every ASCII letter has case: str.isupper/islower say it all
        return (text.isupper() or text.islower()) and sum(map(str.isalpha, text)) > 1
    letters = [ch for ch in text if ch.isalpha() and ch.lower() != ch.upper()]
    return len(letters) > 1 and (all(ch.isupper() for ch in letters) or all(ch.islower() for ch in letters))


def rarity(part_codes: list[np.ndarray], part_counts: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Minus the data-wide count of the candidate's rarest name part (first, last): a typo
    ("Jacksjon") is rare in the whole data set, the name it is a typo of is not. A missing part
    counts 0: "Pérez" alone loses to "Óscar Pérez". `part_counts[i][c]` is how many records
    hold value code c of part i."""
    counts = []
    for codes, n in zip(part_codes, part_counts):
        own = codes[rows]
        counts.append(np.where(own >= 0, n[np.clip(own, 0, len(n) - 1)], 0))
    least = np.minimum.reduce(counts) if counts else np.zeros(len(rows), np.int64)
    return -least.astype(np.int64)


_HANZI_RE = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]+$")


def character_counts(firsts, genders) -> dict[str, int]:
    """Data-wide counts of Hanzi given-name characters: "pos|gender|char" (the character at that
    position of a given name, on a record of that gender) and "pos||char" (any gender)."""
    firsts = pd.Series(firsts, dtype=object)
    genders = pd.Series(genders if genders is not None else [None] * len(firsts), dtype=object)
    frame = pd.DataFrame({"first": firsts.to_numpy(), "gender": genders.to_numpy()})
    # the pattern is tried once per distinct name, not once per record
    codes, uniques = pd.factorize(frame["first"].to_numpy(object), use_na_sentinel=True)
    hanzi = np.array([isinstance(f, str) and bool(_HANZI_RE.match(f)) for f in uniques.tolist()] + [False], bool)
    frame = frame[hanzi[codes]]
    if frame.empty:
        return {}
    frame["gender"] = frame["gender"].where(frame["gender"].isin(("F", "M")), "")
    pairs = frame.groupby(["first", "gender"]).size()
    out: dict[str, int] = {}
    for (first, gender), n in zip(pairs.index.tolist(), pairs.tolist()):  # Series.items: a tuple per row
        for pos, ch in enumerate(first):
            for g in {gender, ""}:
                key = f"{pos}|{g}|{ch}"
                out[key] = out.get(key, 0) + int(n)
    return out


def character_support(firsts: np.ndarray, genders: np.ndarray, counts: dict[str, int]) -> np.ndarray:
    """Per candidate row (its Hanzi given name, its customer's gender F/M/""): minus the sum of
    log(1 + count) of its characters at their positions among the data set's given names of
    that gender (any gender when unknown). Given-name characters carry gender and position
    (婷 and 芳 are women's, 强 and 军 men's); a homophone typed by its sound (张君艳 for 张军艳)
    is a character of that sound picked without regard to either, so it is the rarer one.
    A non-Hanzi given name gets 0 (no evidence)."""
    out = np.zeros(len(firsts), float)
    if not counts or len(firsts) == 0:
        return out
    # each distinct (name, gender) scored once: the two columns factorized apart, then their pair
    first_codes, first_uniques = pd.factorize(pd.Series(firsts, dtype=object).fillna(""))
    gender_codes, gender_uniques = pd.factorize(pd.Series(genders, dtype=object).fillna(""))
    pair = first_codes.astype(np.int64) * (len(gender_uniques) + 1) + gender_codes
    codes, uniques = pd.factorize(pair)
    firsts_of, genders_of = np.divmod(uniques, len(gender_uniques) + 1)
    scores = np.array(
        [
            _character_score(first, gender, counts)
            for first, gender in zip(first_uniques[firsts_of].tolist(), gender_uniques[genders_of].tolist())
        ],
        float,
    )
    return -scores[codes]


def _character_score(first: str, gender: str, counts: dict[str, int]) -> float:
    if not first or not _HANZI_RE.match(first):
        return 0.0
    return sum(math.log1p(counts.get(f"{pos}|{gender}|{ch}", 0)) for pos, ch in enumerate(first))
