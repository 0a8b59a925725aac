"""Name survivorship at component level: the given name and the family name each survive on
their own evidence, as MDM hubs treat first and last name as attributes of their own.

The whole-name chain picks one record's name. When another record of the customer carries a
better-supported spelling of one component — "Mike Johnston" and "Michael Jonhston": the formal
given name in one record, the common spelling of the family name in the other; "María
Rodriguez" and "Maria Rodríguez": each word's accents in another record — the master takes each
component from the record the same chain prefers for it, and the full name is rebuilt around
the chosen record's middle names.

A component is replaced only
- by a spelling of the same name: the same match key (nickname mapped, pinyin), a nickname/formal
  pair, or a typo of the text (at most `similarity.max_edits` edits that leave most of it
  intact, so a one-character Hanzi surname is never "a typo" of another, nor is a pinyin key one
  letter off: zhu/zhou); a different name (a spouse's, a wrong merge's) never enters;
- from a record that gives the parts in the same slots (not "Wang Hang" beside "Hang Wang");
- in the chosen record's script, from a record none of whose name parts is junk;
- when a strategy that judges the value (accents, nickname, medoid, case, frequency, spelling,
  characters) prefers it: on the record-level strategies (most_complete, source_priority,
  most_recent) the chosen record's own component stays (`whole_name` ranks it first there).
Hanzi components are taken whole (a surname and a given name), never spliced by character.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA

from . import names as _names

if TYPE_CHECKING:
    from . import FieldGroup, _Table

#: strategies that judge where a record came from, not what its value says: a component is
#: never replaced on their account
RECORD_LEVEL = frozenset({"most_complete", "source_priority", "most_recent"})
#: the lineage rule of a composed full name (its components: "composed:<rule that chose it>")
COMPOSED = "composed"
_NAME_FLAGS = ("full_name_flag", "first_name_flag", "last_name_flag")
#: suffixes of the columns of a composed winner that name one master column's record and rule
KEY, RULE = "__record_key", "__rule"
_LINEAGE_COLUMNS = tuple(m + s for m in ("full_name", "first_name", "last_name") for s in (KEY, RULE))


def part_chain(chain: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The name chain for one component: its value-judging strategies, then `whole_name` (the
    chosen record's own component first), then the record-level strategies."""
    at = next((i for i, (s, _) in enumerate(chain) if s in RECORD_LEVEL), len(chain))
    return list(chain[:at]) + [("whole_name", None)] + list(chain[at:])


def whole_name_key(table: "_Table", group: "FieldGroup", cols, codes, cluster) -> np.ndarray:
    """0 for a candidate holding the whole-name winner's own component, 1 otherwise."""
    if table.name_winner is None:  # not a component's chain: no evidence
        return np.zeros(len(cluster), np.int64)
    own = table.name_winner[group.columns[0][0]].reindex(cluster).to_numpy(object)
    return (cols[0].uniques[codes[:, 0]] != own).astype(np.int64)


def compose_names(table: "_Table", win: pd.DataFrame, chain, parts, choose: Callable):
    """(`win` with the components the part chains prefer and the full name rebuilt, the clusters
    composed), over the clusters whose records disagree on the name. A composed cluster names
    the rule and record of each master column in `<master>__record_key` / `<master>__rule`."""
    contested = win[~win["rule"].isin(("only_value", "all_agree"))]
    contested = contested[contested["first_name"].notna() & contested["last_name"].notna()]
    if contested.empty:
        return win, pd.Index([])
    at = pd.Index(table.record_key).get_indexer(contested["record_key"].to_numpy(object))
    own = contested[["full_name", "first_name", "last_name", "record_key"]].copy()
    own["script"] = table.script[at]
    table.name_winner = own
    sure = _clean_rows(table) & np.isin(table.cluster, own.index.to_numpy())
    sure &= table.script == own["script"].reindex(table.cluster).to_numpy(object)
    sure &= ~_swapped_rows(table, own, at)
    chosen = {}
    for part in parts:
        master = part.columns[0][0]
        best = choose(table, part, part_chain(chain), sure & _variant_rows(table, part, own[master]))
        chosen[master] = best[best[master].to_numpy(object) != own[master].reindex(best.index).to_numpy(object)]
    table.name_winner = None
    return _rebuild(win, own, chosen)


def _swapped_rows(table: "_Table", own: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """Records that give the chosen name's parts the other way round ("Wang Hang" beside "Hang
    Wang"): their given name is the chosen family name (or the reverse), by match key or text,
    so neither of their parts is a spelling of the part in the same slot."""
    out = np.zeros(len(table.cluster), bool)
    for columns in (("first_name_key", "last_name_key"), ("first_name_std", "last_name_std")):
        first, last = (_folded(table, c) for c in columns)
        own_first = pd.Series(first[at], own.index).reindex(table.cluster).to_numpy(object)
        own_last = pd.Series(last[at], own.index).reindex(table.cluster).to_numpy(object)
        known = pd.notna(first) & pd.notna(last) & pd.notna(own_first) & pd.notna(own_last)
        turned = ((first == own_last) & (first != own_first)) | ((last == own_first) & (last != own_last))
        out |= known & turned
    return out


def _folded(table: "_Table", column: str) -> np.ndarray:
    """Per row: the column's text, case folded (None when missing)."""
    col = table.columns[column]
    folded = np.array([u.casefold() if isinstance(u, str) else None for u in col.uniques], dtype=object)
    return folded[col.codes]


def _clean_rows(table: "_Table") -> np.ndarray:
    """Records none of whose name parts carries an excluded flag (junk, placeholder)."""
    bad = np.zeros(len(table.cluster), bool)
    for flag in _NAME_FLAGS:
        if flag in table.excluded:
            bad |= table.excluded[flag]
    return ~bad


def _variant_rows(table: "_Table", part: "FieldGroup", own: pd.Series) -> np.ndarray:
    """Per table row: is its component a spelling of the name its cluster's chosen record holds?
    Judged once per distinct (chosen, candidate) pair of texts and match keys."""
    col, key = table.columns[part.columns[0][1]], table.columns[part.key or part.columns[0][1]]
    rows = np.flatnonzero(np.isin(table.cluster, own.index.to_numpy()) & (col.codes >= 0))
    frame = pd.DataFrame(
        {"cluster": table.cluster[rows], "text": col.uniques[col.codes[rows]], "key": key.uniques[key.codes[rows]]}
    )
    frame["own"] = own.reindex(frame["cluster"]).to_numpy(object)
    mine = frame[frame["text"] == frame["own"]].drop_duplicates("cluster").set_index("cluster")["key"]
    frame["own_key"] = mine.reindex(frame["cluster"]).to_numpy(object)
    group = frame.groupby(["own", "text", "own_key", "key"], dropna=False, sort=False).ngroup().to_numpy()
    pairs = frame.drop_duplicates(["own", "text", "own_key", "key"])  # first rows, in ngroup order
    nick = table.settings["nicknames"] if part.columns[0][0] == "first_name" else {}
    max_edits = int(table.settings["similarity"]["max_edits"])
    same = np.fromiter(
        (
            isinstance(a, str) and (a == b or _same_name(a, b, ka, kb, max_edits, nick))
            for a, b, ka, kb in zip(pairs["own"], pairs["text"], pairs["own_key"], pairs["key"])
        ),
        bool,
        count=len(pairs),
    )
    out = np.zeros(len(table.cluster), bool)
    out[rows] = same[group]
    return out


def _same_name(a: str, b: str, ka, kb, max_edits: int, nicknames: dict[str, set[str]]) -> bool:
    """Two spellings of one name: the same match key (nicknames mapped, pinyin: 张/章), a
    nickname and its formal name, or a typo of the text (`max_edits` edits at most, and fewer
    than half the letters of the shorter one: never between one- or two-character Hanzi)."""
    if isinstance(ka, str) and ka == kb:
        return True
    la, lb = a.casefold(), b.casefold()
    if (la in nicknames and _names._formal_of(lb, la, nicknames[la])) or (
        lb in nicknames and _names._formal_of(la, lb, nicknames[lb])
    ):
        return True
    # a typo of the text, never of the match key: a pinyin key one letter off (zhu, zhou) is
    # another character, another name
    return _typo(a, b, max_edits)


def _typo(a: str, b: str, max_edits: int) -> bool:
    fa, fb = _names._fold(a)[0], _names._fold(b)[0]
    edits = OSA.distance(fa, fb, score_cutoff=max_edits)
    return edits <= max_edits and 2 * edits < min(len(fa), len(fb))


def _rebuild(win: pd.DataFrame, own: pd.DataFrame, chosen: dict[str, pd.DataFrame]):
    """(win, composed clusters): the full name of each cluster with a replaced component,
    rebuilt in its chosen record's layout; one whose full name is not laid out as its
    components keeps the chosen record's name whole."""
    hit = pd.Index(sorted(set().union(*(c.index for c in chosen.values()))))
    parts = own.loc[hit, ["first_name", "last_name"]].copy()
    for master, best in chosen.items():
        parts.loc[best.index, master] = best[master]
    mine = own.loc[hit]
    full = pd.Series(
        [
            _layout(*args)
            for args in zip(
                mine["full_name"], mine["first_name"], mine["last_name"], *parts.T.to_numpy(), mine["script"]
            )
        ],
        index=hit,
        dtype=object,
    ).dropna()
    if full.empty:
        return win, full.index
    win = win.copy()
    done = full.index
    win.loc[done, "full_name"] = full
    for column in _LINEAGE_COLUMNS:
        win[column] = pd.Series(None, index=win.index, dtype=object)
    win.loc[done, "full_name" + RULE] = COMPOSED
    for master, best in chosen.items():
        win.loc[done, master] = parts.loc[done, master]
        best = best[best.index.isin(done)]
        win.loc[best.index, master + KEY] = best["record_key"]
        win.loc[best.index, master + RULE] = COMPOSED + ":" + best["rule"].astype(str)
    return win, done


def _layout(full, first_old, last_old, first_new, last_new, script) -> str | None:
    """The full name with its components replaced, or None when the full name is not laid out
    as its components (Hanzi: surname + given; Latin: given, middle names, family)."""
    if not isinstance(full, str):
        return None
    if script == "han":
        return last_new + first_new if full == last_old + first_old else None
    head, tail = first_old + " ", " " + last_old
    if full.startswith(head) and full.endswith(tail) and len(full) >= len(head) + len(tail) - 1:
        return first_new + full[len(first_old) : len(full) - len(last_old)] + last_new
    return None
