"""Survivorship: build one golden (master) row per cluster and record where each value came from.

Each master field is chosen by a chain of strategies from `rules/survivorship.yaml`; each
strategy breaks the ties the previous one left, and the record_key breaks whatever is left, so
reruns give the same master. Names and addresses are chosen as groups from ONE record (a
master never mixes one record's street with another's city, or a pinyin given name with a Hanzi
surname). Everything is one sort + first-per-cluster per field; the only per-cluster Python
loops (identity_match, most_similar) run over the few clusters whose e-mails disagree.

Lineage: one row per non-empty master value: `cluster, field, value, record_key, rule`, where
`rule` is the strategy that decided between the winner and the best candidate holding a
different value (`only_value` / `all_agree` when there was nothing to decide).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, Callable

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA

from .. import memory
from ..schema import MASTER_COLUMNS
from . import dates as _dates
from . import emails as _emails
from . import names as _names
from . import compose as _compose
from . import phones as _phones
from .compose import KEY as _KEY
from .compose import RULE as _RULE
from .compose import compose_names

# name columns whose words an e-mail local part is checked against (identity_match)
NAME_TOKEN_COLUMNS = ("first_name_key", "last_name_key", "name_key", "first_name_std", "last_name_std")

# raw (as exported) columns a strategy reads: unambiguous_date checks how the date was written
RAW_COLUMNS = ("birth_date",)

# the typed phone slots `own_number` looks for a number in
PHONE_SLOTS = ("mobile_std", "landline_std")

GOLDEN_COLUMNS = ("cluster",) + tuple(c for c in MASTER_COLUMNS if c != "master_id")
LINEAGE_COLUMNS = ("cluster", "field", "value", "record_key", "rule", "alternatives")
#: records of a group of clusters built at a time when the lineage is handed on (golden_in_groups)
GROUP_RECORDS = 100_000

STRATEGIES = (
    "valid_only",  # never publish a value whose flag has an excluded code (invalid, placeholder)
    "prefer_clean",  # fewer quality flags (typo_fixed, ambiguous_day_month …) first
    "source_priority",  # earlier in the source list first
    "most_recent",  # latest of updated_at/created_at ("last touched"), then created_at
    "most_frequent",  # the value most records of the cluster agree on ({most_frequent: match_key}: its match key)
    "most_complete",  # more fields filled, then longer text
    "prefer_script",  # names: records in this script first (default han: Hanzi over pinyin)
    "type_evidence",  # mobile/landline: numbers of known type first, numbers known as the other type last
    "identity_match",  # e-mail: local parts made of the customer's name words / birth year first
    "most_similar",  # the value most records hold or are one edit (a typo) away from
    "same_address",  # records showing another postal code (else city, else state) than the master's last
    "medoid",  # the value (match key) the others are typo variants of (similarity settings)
    "formal_name",  # names: a nickname loses to the formal name another record holds (Mike < Michael)
    "prefer_accents",  # the accented form over its unaccented twin (Lucía over Lucia)
    "standard_case",  # ALL CAPS / all lower last
    "common_spelling",  # values whose words are common in the whole data set first (a typo is rare)
    "unambiguous_date",  # dates: one read by its column's day/month convention loses to its swap read without doubt
    "plain_mailbox",  # e-mail: of one mailbox's spellings (gmail dots/+tags), the fewest dots/tags first
    "near_majority",  # dates: support counts records one digit or a day/month swap away (similarity.variant_weight)
    "valid_over_possible",  # phones: a number outside libphonenumber's allocated ranges (`unallocated`) last
    "common_characters",  # Hanzi given names: characters the data's given names of the customer's gender use first
    "common_domain",  # e-mail: of one local part at domains a typo apart, the domain more records use first
    "own_number",  # phones: a number records of other customers also give (a shared line) last
    "home_country",  # phones: of one digit string read in two countries, the reading in the customer's country
)


@dataclass(frozen=True)
class FieldGroup:
    """Master fields chosen together from one record: master column -> standardized column."""

    name: str
    columns: tuple[tuple[str, str], ...]
    flags: tuple[str, ...]
    key: str | None = None  # match-key column, for {most_frequent: match_key}


GROUPS: tuple[FieldGroup, ...] = (
    FieldGroup(
        "name",
        (
            ("full_name", "full_name_std"),
            ("first_name", "first_name_std"),
            ("last_name", "last_name_std"),
            ("name_suffix", "name_suffix_std"),
        ),
        ("full_name_flag", "first_name_flag", "last_name_flag", "full_name_flag"),
        "name_key",
    ),
    FieldGroup("gender", (("gender", "gender_std"),), ("gender_flag",)),
    FieldGroup("email", (("email", "email_std"),), ("email_flag",), "email_key"),
    FieldGroup("mobile", (("mobile", "mobile_std"),), ("mobile_flag",)),
    FieldGroup("landline", (("landline", "landline_std"),), ("landline_flag",)),
    FieldGroup("birth_date", (("birth_date", "birth_date_std"),), ("birth_date_flag",)),
    FieldGroup("national_id", (("national_id", "national_id_std"),), ("national_id_flag",)),
    FieldGroup(
        "address",
        (
            ("street", "address_std"),
            ("district", "district_std"),
            ("city", "city_std"),
            ("state_or_province", "state_std"),
            ("postal_code", "postal_code_std"),
            ("country", "country_std"),
        ),
        ("address_flag", "address_flag", "city_flag", "state_flag", "postal_code_flag", "country_flag"),
    ),
    FieldGroup("company", (("company", "company_std"),), ("company_flag",), "company_key"),
    # only used when no record has a mobile or a landline (an untyped "phone" column)
    FieldGroup("phone", (("phone", "phone_std"),), ("phone_flag",)),
)
#: the name's components, each chosen on its own by the name chain when `compose_name` is on
NAME_PARTS: tuple[FieldGroup, ...] = (
    FieldGroup("first_name", (("first_name", "first_name_std"),), ("first_name_flag",), "first_name_key"),
    FieldGroup("last_name", (("last_name", "last_name_std"),), ("last_name_flag",), "last_name_key"),
)

#: {standardized column: {value: how many records of the whole master hold it}}
SpellingCounts = dict[str, dict[str, int]]
#: what an incremental run keeps of every record for the data-wide counts of `common_spelling`,
#: `common_characters` (gender), `common_domain` (the e-mail match key's domain) and `own_number`
#: (the phone slots); a chain that uses it on another field counts that field over the region's
#: records only (documented)
SPELLING_WORKING_COLUMNS = ("first_name_std", "last_name_std", "gender_std", "email_key", *PHONE_SLOTS)
#: the SpellingCounts entry of `common_characters` (Hanzi given-name characters by position and gender)
CHARACTERS = "given_characters"
#: the SpellingCounts entry of `common_domain` (records per e-mail domain)
DOMAINS = "email_domains"
#: the SpellingCounts entry of `own_number` (records per phone number, any slot)
NUMBERS = "phone_numbers"

# --------------------------------------------------------------------------------------------
# rules


def survivorship_settings(rules) -> dict[str, Any]:
    """rules/survivorship.yaml, validated and default-filled by crmclean.config
    (SurvivorshipSettings: an unknown key, field or strategy is a RulesError naming the file),
    with each field's chain parsed to [(strategy, argument)]."""
    from ..config import section

    cfg = section(rules, "survivorship")
    parsed: dict[str, Any] = {"source_priority": cfg["source_priority"], "exclude_flags": set(cfg["exclude_flags"])}
    parsed["similarity"] = dict(cfg["similarity"])
    parsed["compose_name"] = bool(cfg["compose_name"])
    below = cfg["in_process_below"]
    parsed["in_process_below"] = None if below is None else int(below)
    parsed["nicknames"] = _nicknames(rules)
    parsed["chains"] = {g.name: _parse_chain(cfg["fields"].get(g.name, cfg["default"])) for g in GROUPS}
    return parsed


def _nicknames(rules) -> dict[str, set[str]]:
    """The standardize nickname table (data/nicknames.csv plus rules' names.nicknames)."""
    from ..config import section
    from ..standardize.names import gendered_nicknames, nickname_map

    extra = tuple(sorted(((section(rules, "standardize").get("names") or {}).get("nicknames") or {}).items()))
    formal: dict[str, set[str]] = {nick: {canon} for nick, canon in nickname_map(extra).items()}
    for nick, both in gendered_nicknames(extra).items():
        formal.setdefault(nick, set()).update(both)
    return formal


def _parse_chain(chain: list) -> list[tuple[str, Any]]:
    """A validated chain: a strategy name is (name, None), {name: argument} is (name, argument)."""
    return [next(iter(item.items())) if isinstance(item, dict) else (item, None) for item in chain]


# --------------------------------------------------------------------------------------------
# public entry point


def build_golden(
    records: pd.DataFrame, clusters: pd.DataFrame, rules, spelling: SpellingCounts | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(golden, lineage): one master row per cluster, and which record/rule gave each value.

    `spelling` (from `spelling_counts` on every record of the master) lets a build over part of
    the master — a group of clusters on a worker, an incremental run's region — judge
    `common_spelling` as a build over everything would; without it the records given count."""
    cfg = survivorship_settings(rules)
    clusters = clusters[["record_key", "cluster"]].drop_duplicates("record_key")
    table = _Table.build(records, clusters, cfg)
    table.spelling = spelling or {}

    golden = _cluster_summary(clusters, table)
    lineage_parts = []
    winners: dict[str, pd.DataFrame] = {}
    # the address first: `same_address` compares each record with the master address
    for group in sorted(GROUPS, key=lambda g: g.name != "address"):
        win = _choose(table, group, cfg["chains"][group.name])
        if group.name == "name" and cfg["compose_name"]:
            win = _composed(table, win, cfg["chains"]["name"])
        if group.name in _PHONE_WINNERS:  # the others' values are in golden and lineage_parts
            winners[group.name] = win
        if group.name == "address":
            table.master_address = win[[*_ADDRESS_PARTS, "country"]]
        if group.name == "phone":
            continue
        for master, _ in group.columns:
            golden[master] = win[master].reindex(golden.index)
            lineage_parts.append(_lineage(win, master))

    _fill_phone(golden, winners, lineage_parts)
    lineage_parts.append(_all_junk_names(table, golden))
    del table, winners  # the working columns go before the lineage is put together (the peak)
    golden = golden.reset_index()[list(GOLDEN_COLUMNS)]
    for column in GOLDEN_COLUMNS:
        if column not in ("cluster", "record_count"):
            golden[column] = golden[column].astype(object).where(golden[column].notna(), None)
    golden["record_count"] = golden["record_count"].astype(np.int64)
    return golden, _sorted_lineage(lineage_parts)


def _sorted_lineage(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The lineage parts (one field each) as one frame of LINEAGE_COLUMNS, stably sorted by
    (cluster, field), built a column at a time: concatenating the parts and taking the sorted
    rows held every column three times at once (parts, concatenation, sorted copy), the
    cluster stage's peak at 365k records."""
    parts = [p for p in parts if len(p)] or parts[:1]
    cluster = _concat_column(parts, "cluster")
    rank = cluster if cluster.dtype != object else pd.factorize(cluster, sort=True)[0]
    fields = [p["field"].iat[0] if len(p) else "" for p in parts]
    names, field_of_part = np.unique(np.asarray(fields, dtype=object), return_inverse=True)
    field_code = np.repeat(field_of_part.reshape(-1), [len(p) for p in parts])
    order = np.lexsort((field_code, rank))  # stable: ties keep their order in `parts`
    # Series of a given dtype: pandas infers nothing (its inference held ~40 bytes a row per column)
    columns = {"cluster": pd.Series(cluster[order], copy=False)}
    columns["field"] = pd.Series(names[field_code[order]], dtype=object, copy=False)
    del cluster, rank, field_code
    for c in LINEAGE_COLUMNS[2:]:
        column = _concat_column(parts, c)
        columns[c] = pd.Series(column[order], dtype=column.dtype, copy=False)
        del column
    return pd.DataFrame(columns, columns=list(LINEAGE_COLUMNS), copy=False)


def _concat_column(parts: list[pd.DataFrame], column: str) -> np.ndarray:
    """One column of every part, end to end (object when the parts' dtypes differ, as pd.concat)."""
    arrays = [p[column].to_numpy() for p in parts]
    if len({a.dtype for a in arrays}) > 1:
        arrays = [a.astype(object) for a in arrays]
    return np.concatenate(arrays) if arrays else np.array([], dtype=object)


def golden_in_groups(
    records: pd.DataFrame,
    clusters: pd.DataFrame,
    rules,
    spelling: SpellingCounts | None = None,
    workers: int | None = None,
    lineage_to: Callable[[pd.DataFrame], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """`build_golden` over groups of whole clusters (consecutive cluster numbers), concatenated
    in cluster order: on a Dask cluster its workers' share each, on this machine one group per
    `workers` (opt-in: from survivorship's `in_process_below` records on), the first here and each
    other in a child forked from this process (`executors.fork_map`: it inherits the records).
    Each golden record depends only on its own cluster's records and on the data-wide spelling
    counts, computed once here (or given: `spelling_counts(records, rules)`, which the run also
    stores) and shared by every group, so the result is the one build_golden gives on everything.

    With `lineage_to`, the lineage is handed to it in cluster order, part by part, instead of
    returned (None in its place); in this process the groups are then built one after another,
    GROUP_RECORDS records at most each (`_golden_in_turn`)."""
    from .. import executors
    from .groups import group_count, group_of_rows, read_frames, write_frames

    fanout = executors.current()
    ids = np.unique(clusters["cluster"].to_numpy())
    parts = fanout.groups(len(ids))  # a Dask cluster's choice; 1 on local processes
    local = parts <= 1 and isinstance(fanout, executors.LocalProcesses)
    if local:
        below = survivorship_settings(rules)["in_process_below"]
        parts = group_count(workers, len(records), len(ids), below)
    if parts <= 1 and lineage_to is not None:
        return _golden_in_turn(records, clusters, rules, spelling, lineage_to), None
    if parts <= 1:
        return build_golden(records, clusters, rules, spelling=spelling)
    spelling = spelling if spelling is not None else spelling_counts(records, rules)
    group = group_of_rows(clusters["cluster"].to_numpy(), parts)
    keys = records["record_key"]
    tasks = []
    for g in range(parts):
        part = clusters[group == g]
        # a forked child reads the records it inherited (build_golden takes the part's rows);
        # a Dask worker is sent its group's rows only
        tasks.append((records if local else records[keys.isin(part["record_key"])], part, rules, spelling))
    if local:
        what = "survivorship (golden records of a group of clusters)"
        results = executors.fork_map(build_golden, tasks, write_frames, read_frames, what=what)
    else:
        results = fanout.map(build_golden, tasks)
    golden = pd.concat([r[0] for r in results], ignore_index=True)
    lineage = pd.concat([r[1] for r in results], ignore_index=True)
    if lineage_to is None:
        return golden, lineage
    lineage_to(lineage)
    return golden, None


def _golden_in_turn(records: pd.DataFrame, clusters: pd.DataFrame, rules, spelling, lineage_to) -> pd.DataFrame:
    """`build_golden` over groups of whole clusters of GROUP_RECORDS records at most, one after
    another in this process, each group's lineage handed to `lineage_to` and let go before the
    next group is built: the working columns and the lineage (~7 rows a record) held at once are
    a group's, not the master's (at 365k records, the cluster stage's peak was that of one build)."""
    from .groups import group_of_rows

    parts = -(-len(clusters) // GROUP_RECORDS)
    if parts <= 1:
        golden, lineage = build_golden(records, clusters, rules, spelling=spelling)
        lineage_to(lineage)
        return golden
    spelling = spelling if spelling is not None else spelling_counts(records, rules)
    group = group_of_rows(clusters["cluster"].to_numpy(), parts)
    at = pd.Index(clusters["record_key"]).get_indexer(records["record_key"])  # one lookup, not one a group
    record_group = np.where(at >= 0, group[at], -1)
    columns = _read_columns(records)  # a group's rows of these only are copied
    goldens = []
    for g in range(parts):
        part = clusters[group == g]
        golden, lineage = build_golden(records.loc[record_group == g, columns], part, rules, spelling=spelling)
        goldens.append(golden)
        lineage_to(lineage)
        del golden, lineage, part  # before the next group's build
    memory.release_freed()  # the groups' working columns, before the tables are built
    # column by column: pd.concat scanned every object column for all-missing blocks
    return pd.DataFrame({c: _concat_column(goldens, c) for c in GOLDEN_COLUMNS}, columns=list(GOLDEN_COLUMNS))


# --------------------------------------------------------------------------------------------
# internals


@dataclass
class _Column:
    """A standardized column as codes into its distinct values (blank/missing = -1).

    `uniques` and `lengths` end with a None/0 sentinel, so indexing with code -1 gives "no value".
    """

    codes: np.ndarray
    uniques: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, values) -> "_Column":
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        stripped = list(map(str.strip, map(str, uniques)))  # builtin maps: no Python frame per value
        text = np.array(stripped + [None], dtype=object)
        blank = text == ""
        codes = codes.astype(np.int64)
        if blank.any():
            codes[blank[codes] & (codes >= 0)] = -1
        lengths = np.fromiter(map(len, stripped), dtype=np.int64, count=len(stripped))
        return cls(codes, text, np.append(lengths, 0))


@dataclass
class _Table:
    """Everything the strategies need, computed once per run (each distinct value once)."""

    cluster: np.ndarray
    record_key: np.ndarray
    key_rank: np.ndarray
    source: np.ndarray
    script: np.ndarray
    updated: np.ndarray
    created: np.ndarray
    columns: dict[str, _Column]
    excluded: dict[str, np.ndarray]  # flag column -> has an excluded code
    noise: dict[str, np.ndarray]  # flag column -> number of quality codes (besides `changed`)
    source_priority: list[str]
    settings: dict[str, Any]
    flag_sets: dict[str, tuple[np.ndarray, list[set[str]]]]  # flag column -> (codes, codes of each distinct text)
    master_address: pd.DataFrame | None = None  # cluster -> the master address (_ADDRESS_PARTS, country), once chosen
    name_winner: pd.DataFrame | None = None  # cluster -> the whole-name winner's parts (`whole_name`)
    spelling: SpellingCounts = field(default_factory=dict)  # data-wide value counts (common_spelling)
    groups_memo: tuple | None = None  # the last `_candidate_groups` (its inputs, held, and result)

    def value_counts(self, column: str) -> np.ndarray:
        """How many records hold each distinct value of `column` (code order, then a 0 for
        "no value"): data-wide when `spelling` has the column, else over this table's records."""
        col = self.columns[column]
        given = self.spelling.get(column)
        if given is not None:
            return np.array([given.get(u, 0) for u in col.uniques[:-1]] + [0], dtype=np.int64)
        return np.append(np.bincount(col.codes[col.codes >= 0], minlength=len(col.uniques) - 1), 0)

    def character_counts(self) -> dict[str, int]:
        """Hanzi given-name character counts (`common_characters`): data-wide when `spelling`
        has them, else over this table's records."""
        given = self.spelling.get(CHARACTERS)
        if given is None:  # counted once: the name and its given-name part both ask
            first, gender = self.columns["first_name_std"], self.columns["gender_std"]
            given = _names.character_counts(first.uniques[first.codes], gender.uniques[gender.codes])
            self.spelling = {**self.spelling, CHARACTERS: given}
        return given

    def cluster_gender(self) -> np.ndarray:
        """Per row: the gender (F/M) most of its cluster's records give, "" when none or a tie."""
        gender = self.columns["gender_std"]
        text = gender.uniques[np.where(self.excluded["gender_flag"], -1, gender.codes)]
        frame = pd.DataFrame({"cluster": self.cluster, "gender": text})
        frame = frame[frame["gender"].isin(("F", "M"))]
        votes = (
            frame.groupby(["cluster", "gender"]).size().unstack(fill_value=0).reindex(columns=["F", "M"], fill_value=0)
        )
        per = pd.Series(np.select([votes["F"] > votes["M"], votes["M"] > votes["F"]], ["F", "M"], ""), votes.index)
        return per.reindex(self.cluster).fillna("").to_numpy(object)

    def has_code(self, flag: str, code: str) -> np.ndarray:
        """Per row: does the flag column hold this quality code (type_guessed, …)?"""
        codes, tokens = self.flag_sets[flag]
        return np.array([code in t for t in tokens], bool)[codes]

    @classmethod
    def build(cls, records: pd.DataFrame, clusters: pd.DataFrame, cfg) -> "_Table":
        # the last row of each record_key, found on the key column alone (no copy of the frame)
        last = np.flatnonzero(~records["record_key"].duplicated(keep="last").to_numpy())
        # cluster order (then record_key) keeps every later sort cache-friendly
        clusters, key_rank = _by_cluster(clusters)
        pos = pd.Index(records["record_key"].to_numpy(object)[last]).get_indexer(clusters["record_key"])
        keep = pos >= 0
        pos = last[pos[keep]]
        n = len(pos)

        def column(name, default=None) -> np.ndarray:
            if name in records.columns:
                return records[name].to_numpy(object)[pos]
            return np.full(n, default, dtype=object)

        key = column("record_key")
        std_columns, flags = _value_columns(), _flag_columns()
        ignore = {"", "changed"} | set(cfg["exclude_flags"])
        excluded, noise, flag_sets = {}, {}, {}
        for flag in flags:  # each distinct flag text parsed once; code -1 (missing) hits the "" sentinel
            codes, uniques = pd.factorize(pd.Series(column(flag, ""), dtype=object))
            tokens = [{t.strip() for t in str(u).split(";")} for u in uniques] + [set()]
            codes = codes.astype(np.int32)  # per row and flag column: the narrowest types that hold them
            excluded[flag] = np.array([bool(t & cfg["exclude_flags"]) for t in tokens], bool)[codes]
            noise[flag] = np.array([len(t - ignore) for t in tokens], np.int16)[codes]
            flag_sets[flag] = (codes, tokens)
        return cls(
            cluster=clusters["cluster"].to_numpy()[keep].astype(np.int64),
            record_key=key,
            key_rank=key_rank[keep] if key_rank is not None else _rank(key),
            source=column("source"),
            script=pd.Series(column("name_script")).astype("string").str.lower().fillna("").to_numpy(object),
            updated=_epoch_seconds(column("updated_at_std")),
            created=_epoch_seconds(column("created_at_std")),
            columns={s: _Column.of(column(s)) for s in std_columns},
            excluded=excluded,
            noise=noise,
            source_priority=list(cfg["source_priority"]),
            settings=cfg,
            flag_sets=flag_sets,
        )


def _value_columns() -> set[str]:
    """The record columns whose values survivorship compares (the flags and _RECORD_COLUMNS aside)."""
    columns = {s for g in GROUPS for _, s in g.columns} | {g.key for g in GROUPS if g.key}
    return columns | set(NAME_TOKEN_COLUMNS) | set(RAW_COLUMNS) | {"gender_std"}


def _flag_columns() -> set[str]:
    return {f for g in GROUPS for f in g.flags}


_RECORD_COLUMNS = ("record_key", "source", "name_script", "updated_at_std", "created_at_std")


def _read_columns(records: pd.DataFrame) -> list[str]:
    """The columns of `records` build_golden reads (`_Table.build`)."""
    wanted = _value_columns() | _flag_columns() | set(_RECORD_COLUMNS)
    return [c for c in records.columns if c in wanted]


def _by_cluster(clusters: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """`clusters` sorted by (cluster, record_key), and each row's record_key rank when it is
    known for free: cluster_records gives its rows sorted by record_key (distinct keys), so a
    stable sort on the cluster number alone gives that order and each row's former position is
    its key's rank; sorting and ranking 365k key strings took ~0.5 CPU s at 200k customers."""
    if not pd.Index(clusters["record_key"]).is_monotonic_increasing:
        return clusters.sort_values(["cluster", "record_key"], kind="stable"), None
    order = np.argsort(clusters["cluster"].to_numpy(), kind="stable")
    return clusters.take(order), order.astype(np.int64)


def _rank(keys: np.ndarray) -> np.ndarray:
    """Sort rank of each record_key (the final tie-breaker); cluster_records output is sorted."""
    index = pd.Index(keys)
    if index.is_monotonic_increasing:
        return np.arange(len(keys), dtype=np.int64)
    return pd.factorize(index, sort=True)[0].astype(np.int64)


def _epoch_seconds(values: np.ndarray) -> np.ndarray:
    """ISO timestamps as seconds (missing/unparseable = -inf, i.e. oldest)."""
    text = pd.Series(values, dtype=object).astype("string")
    ts = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    seconds = (ts - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return seconds.fillna(-np.inf).to_numpy(float)


def _cluster_summary(clusters: pd.DataFrame, table: _Table) -> pd.DataFrame:
    """record_count and sources (';'-joined sorted distinct) per cluster."""
    counts = clusters.groupby("cluster").size().rename("record_count")
    golden = counts.to_frame()
    has = pd.notna(table.source)
    names, codes = np.unique(table.source[has].astype(str), return_inverse=True)
    if len(names) <= 62:  # one bit per source: each distinct combination joined once
        mask = _bit_or(table.cluster[has], codes)
        text = {m: ";".join(names[[i for i in range(len(names)) if m >> i & 1]]) for m in np.unique(mask.to_numpy())}
        golden["sources"] = mask.map(text).reindex(golden.index)
    else:
        src = pd.DataFrame({"cluster": table.cluster[has], "source": names[codes]}).drop_duplicates()
        golden["sources"] = src.sort_values(["cluster", "source"]).groupby("cluster")["source"].agg(";".join)
    return golden


def _bit_or(cluster: np.ndarray, codes: np.ndarray) -> pd.Series:
    """Per cluster, the OR of 1 << code (distinct (cluster, code) pairs summed = OR)."""
    pairs = pd.DataFrame({"cluster": cluster, "code": codes.astype(np.int64)}).drop_duplicates()
    bits = np.left_shift(np.int64(1), pairs["code"].to_numpy())
    return pd.Series(bits).groupby(pairs["cluster"].to_numpy()).sum()


def _choose(table: _Table, group: FieldGroup, chain, allowed: np.ndarray | None = None) -> pd.DataFrame:
    """Winner per cluster: index cluster, columns = master fields + record_key + rule. `allowed`
    (per table row) limits the candidates."""
    masters = [m for m, _ in group.columns]
    cols = [table.columns[s] for _, s in group.columns]
    present_all = np.column_stack([c.codes >= 0 for c in cols])
    rows = np.flatnonzero(present_all.any(axis=1) & (True if allowed is None else allowed))
    if len(rows) == 0:
        names = masters + ["record_key", "rule"] + [f"{m}{_ALT}" for m in masters]
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in names})
        empty.index = pd.Index([], dtype=np.int64, name="cluster")
        return empty
    valid_only = any(strategy == "valid_only" for strategy, _ in chain)
    codes = np.column_stack([c.codes[rows] for c in cols])
    excluded = np.column_stack([table.excluded[f][rows] for f in group.flags]) & (codes >= 0)
    if valid_only:  # an excluded part counts as missing: never published, never "more complete"
        codes = np.where(excluded, -1, codes)
    cluster = table.cluster[rows]
    value_code = codes[:, 0]
    for j, c in enumerate(cols[1:], start=1):  # one code per distinct combination of the group's values
        value_code = pd.factorize(value_code * (len(c.uniques) + 1) + (codes[:, j] + 1))[0].astype(np.int64)

    # valid_only is a filter wherever it is written: it always ranks first
    chain = sorted(chain, key=lambda item: item[0] != "valid_only")
    labels, keys = [], []  # per strategy: its label and its sort keys (ascending = better)
    multi = _multi_valued(cluster, value_code)
    for strategy, arg in chain:
        label, strategy_keys = _strategy_keys(
            strategy, arg, table, group, rows, cols, codes, cluster, value_code, multi=multi
        )
        labels.append(label)
        keys.append(strategy_keys)
    flat = [k for ks in keys for k in ks]
    order = np.lexsort([table.key_rank[rows]] + flat[::-1] + [cluster])
    sc, sv = cluster[order], value_code[order]
    first = np.ones(len(order), bool)
    first[1:] = sc[1:] != sc[:-1]
    win_pos = np.flatnonzero(first)
    n_cand = np.diff(np.append(win_pos, len(order)))
    differs = sv != np.repeat(sv[win_pos], n_cand)
    # runner-up: best-ranked candidate of the same cluster holding a different value
    ru = np.flatnonzero(differs)
    ru = ru[np.unique(sc[ru], return_index=True)[1]]

    win_rows = order[win_pos]  # positions within `rows`
    win_clusters = sc[win_pos]
    # one str object per label, not per row (np.where(...).astype(object) made 2.6M strs at 365k records)
    rule = np.full(len(win_pos), "all_agree", dtype=object)
    rule[n_cand == 1] = "only_value"
    has_ru = np.isin(win_clusters, sc[ru])
    if has_ru.any():
        w_rows = win_rows[has_ru]
        r_rows = order[ru]  # ru is sorted by cluster, as are the winners that have one
        decided = np.full(len(w_rows), "record_key", dtype=object)
        open_ = np.ones(len(w_rows), bool)
        for label, ks in zip(labels, keys):
            diff = np.zeros(len(w_rows), bool)
            for k in ks:
                diff |= k[w_rows] != k[r_rows]
            decided[open_ & diff] = label
            open_ &= ~diff
        rule[has_ru] = decided

    out = {master: col.uniques[codes[win_rows, j]] for j, (master, col) in enumerate(zip(masters, cols))}
    out["record_key"] = table.record_key[rows[win_rows]]
    out["rule"] = rule
    win = pd.DataFrame(out, index=pd.Index(win_clusters, name="cluster"))
    contested = win_clusters[has_ru]
    for j, (master, col) in enumerate(zip(masters, cols)):
        win[f"{master}{_ALT}"] = _alternatives(table, rows, cluster, col.uniques[codes[:, j]], win[master], contested)
    return win


_ALT = "__alternatives"


def _composed(table: _Table, win: pd.DataFrame, chain) -> pd.DataFrame:
    """The name winners with each component chosen on its own (survivorship/compose.py); a
    composed cluster's values that lost are listed anew against the composed name."""
    win, done = compose_names(table, win, chain, NAME_PARTS, _choose)
    if len(done) == 0:
        return win
    name = next(g for g in GROUPS if g.name == "name")
    rows = np.flatnonzero(np.isin(table.cluster, done.to_numpy()))
    for (master, std), flag in list(zip(name.columns, name.flags))[:3]:
        col = table.columns[std]
        texts = col.uniques[np.where(table.excluded[flag][rows], -1, col.codes[rows])]
        lost = _alternatives(table, rows, table.cluster[rows], texts, win[master], done.to_numpy())
        win.loc[done, f"{master}{_ALT}"] = lost.reindex(done)
    return win


def _alternatives(table: _Table, rows, cluster, texts, winner: pd.Series, contested) -> pd.Series:
    """Per contested cluster, the values that lost as JSON: [{"value": …, "records": [record_key …]}],
    most records first. Only the few clusters whose candidates disagree are looked at."""
    pick = np.flatnonzero(np.isin(cluster, contested) & pd.notna(texts))
    pick = pick[texts[pick] != winner.reindex(cluster[pick]).to_numpy()]
    if len(pick) == 0:
        return pd.Series(None, index=winner.index, dtype=object)
    # one integer sort by (cluster, value, record_key) and the JSON written as text: sorting the
    # object columns and json.dumps of a list of dicts per cluster took most of this at 365k records
    c, v = cluster[pick], texts[pick]
    value_rank = pd.factorize(v, sort=True)[0]
    order = np.lexsort((table.key_rank[rows[pick]], value_rank, c))
    c, v, value_rank = c[order], v[order], value_rank[order]
    keys = _json_strings(table.record_key[rows[pick[order]]])
    start = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (value_rank[1:] != value_rank[:-1])])
    size = np.diff(np.r_[start, len(c)])
    # each cluster's values, most records first, then by value
    by = np.lexsort((value_rank[start], -size, c[start]))
    lost: dict[Any, str] = {}
    items: list[str] = []
    last = None
    values = _json_strings([str(x) for x in v[start[by]].tolist()])
    for cl, n, at, value in zip(c[start][by].tolist(), size[by].tolist(), start[by].tolist(), values):
        if cl != last and items:
            lost[last] = "[" + ", ".join(items) + "]"
            items = []
        last = cl
        items.append('{"value": ' + value + ', "records": [' + ", ".join(keys[at : at + n]) + "]}")
    lost[last] = "[" + ", ".join(items) + "]"
    return pd.Series(lost, dtype=object).reindex(winner.index)


def _json_strings(values) -> list[str]:
    """Each value as json.dumps(value, ensure_ascii=False) writes it (the C string encoder for text)."""
    return [encode_basestring(x) if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in values]


def _strategy_keys(strategy, arg, table: _Table, group: FieldGroup, rows, cols, codes, cluster, value_code, multi=None):
    """Sort keys for one strategy (numpy arrays, smaller = better) and its lineage label.
    `codes` are the candidates' value codes per part, excluded parts already set to -1."""
    present = codes >= 0
    if strategy == "valid_only":  # candidates left with no valid part go last (and publish nothing)
        return "valid_only", [(~present.any(axis=1)).astype(np.int64)]
    if strategy == "prefer_clean":
        counts = sum(table.noise[f][rows].astype(np.int64) for f in dict.fromkeys(group.flags))
        return "prefer_clean", [counts]
    if strategy == "source_priority":
        order = list(arg) if arg is not None else table.source_priority
        rank = pd.Series(table.source[rows], dtype=object).map({s: i for i, s in enumerate(order)})
        return "source_priority", [rank.fillna(len(order)).to_numpy(np.int64)]
    if strategy == "most_recent":
        # "last touched": a source that only exports a created date competes on that date
        # instead of losing to any source that exports an updated date
        touched = np.maximum(table.updated[rows], table.created[rows])
        return "most_recent", [-touched, -table.created[rows]]
    if strategy == "most_frequent":
        label, agree = "most_frequent", value_code
        if arg == "match_key":  # records agreeing on the match key (gmail dots/+tags ignored) count together
            label = "most_frequent:match_key"
            key = table.columns.get(group.key) if group.key else None
            if key is not None:
                kc = key.codes[rows]
                own = ~(kc >= 0) | ~present.any(axis=1)  # no key: the value counts on its own
                agree = np.where(own, len(key.uniques) + value_code, kc)
        combined = cluster * (int(agree.max()) + 1) + agree
        _, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
        return label, [-counts[inverse]]
    if strategy == "same_address":
        return "same_address", [_other_address(table, rows, cluster)]
    if strategy == "type_evidence":
        return "type_evidence", [_type_evidence(table, group, rows, codes, cluster)]
    if strategy == "own_number":
        if group.name not in _OTHER_SLOT:  # the typed slots only: what the data-wide counts cover
            return "own_number", [np.zeros(len(rows), np.int64)]
        return "own_number", [_own_number(table, rows, cols[0], codes[:, 0])]
    if strategy == "home_country":
        if multi is None:
            multi = _multi_valued(cluster, value_code)
        return "home_country", [_home_country(table, cols[0], codes[:, 0], cluster, multi)]
    if strategy == "valid_over_possible":
        contested = _contested(cluster, codes[:, 0], codes[:, 0] >= 0)
        return "valid_over_possible", [_phones.possible_only(cluster, cols[0].uniques, codes[:, 0], contested)]
    if strategy == "identity_match":
        return "identity_match", [_identity_mismatch(table, group, cols, codes, cluster)]
    if strategy == "most_similar":
        return "most_similar", [_support(table, cols, codes, cluster)]
    if strategy == "common_domain":
        return "common_domain", [_domain_key(table, group, cols, codes, cluster)]
    if strategy == "most_complete":
        filled = present.sum(axis=1)
        length = sum(c.lengths[codes[:, j]] for j, c in enumerate(cols))
        return "most_complete", [-filled, -length]
    if strategy == "prefer_script":
        script = str(arg or "han").lower()
        return f"prefer_script:{script}", [(table.script[rows] != script).astype(np.int64)]
    if strategy == "whole_name":  # internal: a name component's chain (survivorship/compose.py)
        return "whole_name", [_compose.whole_name_key(table, group, cols, codes, cluster)]
    if strategy in _PER_VALUE:
        if multi is None:
            multi = _multi_valued(cluster, value_code)
        return strategy, [_per_value_key(strategy, table, group, rows, cols, codes, cluster, value_code, multi)]
    return strategy, [_content_key(strategy, table, group, rows, cols, codes, cluster, value_code)]


#: strategies whose key is a function of the candidate's cluster and value alone: where every
#: candidate of a cluster holds one value the key is the same for all of them and ranks nobody
_PER_VALUE = frozenset(
    ("medoid", "formal_name", "prefer_accents", "standard_case", "common_characters", "plain_mailbox")
)


def _multi_valued(cluster: np.ndarray, value_code: np.ndarray) -> np.ndarray:
    """Per candidate: does its cluster hold two or more distinct values? (`cluster` comes sorted
    from _Table: one pass over the runs; else by sorting.)"""
    if len(cluster) == 0:
        return np.zeros(0, bool)
    if np.all(cluster[1:] >= cluster[:-1]):
        start = np.flatnonzero(np.r_[True, cluster[1:] != cluster[:-1]])
        spread = np.maximum.reduceat(value_code, start) != np.minimum.reduceat(value_code, start)
        return np.repeat(spread, np.diff(np.r_[start, len(cluster)]))
    width = int(value_code.max()) + 1
    pairs = np.unique(cluster * width + value_code)
    ids, n = np.unique(pairs // width, return_counts=True)
    return np.isin(cluster, ids[n > 1])


def _per_value_key(
    strategy, table: _Table, group: FieldGroup, rows, cols, codes, cluster, value_code, multi: np.ndarray
) -> np.ndarray:
    """`_content_key` scored on the candidates of the clusters holding two or more values only
    (`multi`; the others get 0: a constant within a cluster changes no order and no rule), so
    the per-value Python work skips the customers whose records agree."""
    if multi.all():
        return _content_key(strategy, table, group, rows, cols, codes, cluster, value_code)
    if not multi.any():
        return np.zeros(len(rows), np.int64)
    part = _content_key(strategy, table, group, rows[multi], cols, codes[multi], cluster[multi], value_code[multi])
    key = np.zeros(len(rows), part.dtype)
    key[multi] = part
    return key


def _content_key(strategy, table: _Table, group: FieldGroup, rows, cols, codes, cluster, value_code) -> np.ndarray:
    """Keys of the strategies that judge the value itself (survivorship/names.py)."""
    if strategy == "medoid":
        key = table.columns.get(group.key) if group.key else None
        texts = cols[0].uniques[codes[:, 0]]
        keys = key.uniques[key.codes[rows]] if key is not None else texts
        sim = table.settings["similarity"]
        value = np.where((codes >= 0).any(axis=1), value_code, -1)
        return _names.medoid_support(cluster, keys, texts, value, int(sim["max_edits"]), float(sim["variant_weight"]))
    masters = [m for m, _ in group.columns]
    if strategy == "formal_name":
        if "first_name" not in masters:
            return np.zeros(len(rows), np.int64)
        j = masters.index("first_name")
        return _names.nickname_of_other(cluster, cols[j].uniques[codes[:, j]], table.settings["nicknames"])
    if strategy == "prefer_accents":
        return _names.accent_deficit(cluster, cols[0].uniques, codes[:, 0])
    if strategy == "standard_case":
        return _names.odd_case(cols[0].uniques, codes[:, 0])
    if strategy == "common_spelling":
        parts = _spelling_parts(group)
        return _names.rarity([table.columns[p].codes for p in parts], [table.value_counts(p) for p in parts], rows)
    if strategy == "common_characters":
        if "first_name" not in masters:
            return np.zeros(len(rows), np.int64)
        j = masters.index("first_name")
        firsts = cols[j].uniques[codes[:, j]]
        return _names.character_support(firsts, table.cluster_gender()[rows], table.character_counts())
    if strategy == "plain_mailbox":
        key = table.columns.get(group.key) if group.key else None
        texts = cols[0].uniques[codes[:, 0]]
        keys = key.uniques[key.codes[rows]] if key is not None else np.full(len(rows), None, object)
        return _emails.extra_marks(cluster, texts, keys)
    if strategy in ("unambiguous_date", "near_majority"):
        return _date_key(strategy, table, group, rows, cols, codes, cluster)
    raise AssertionError(strategy)  # chains are validated in survivorship_settings


def _date_key(strategy, table: _Table, group: FieldGroup, rows, cols, codes, cluster) -> np.ndarray:
    """Keys of the date strategies (survivorship/dates.py) on the group's first column."""
    values = cols[0].uniques[codes[:, 0]]
    if strategy == "near_majority":
        return _dates.near_support(cluster, values, float(table.settings["similarity"]["variant_weight"]))
    raw_column = group.columns[0][0]  # the exported column (birth_date) beside its _std
    raw = table.columns.get(raw_column)
    if raw is None:
        return np.zeros(len(rows), np.int64)
    ambiguous = np.append(_dates.ambiguous_raw(raw.uniques[:-1]), False)[raw.codes[rows]]
    return _dates.convention_read(cluster, values, ambiguous)


def _spelling_parts(group: FieldGroup) -> tuple[str, ...]:
    """The standardized columns whose data-wide counts `common_spelling` compares."""
    return ("first_name_std", "last_name_std") if group.name == "name" else (group.columns[0][1],)


def spelling_columns(rules) -> tuple[str, ...]:
    """Columns `spelling_counts` needs for the chains in `rules` (none if no chain uses it)."""
    chains = survivorship_settings(rules)["chains"]
    used = [g for g in GROUPS if any(s == "common_spelling" for s, _ in chains.get(g.name, ()))]
    return tuple(dict.fromkeys(p for g in used for p in _spelling_parts(g)))


def _uses(rules, strategy: str, field: str) -> bool:
    return any(s == strategy for s, _ in survivorship_settings(rules)["chains"].get(field, ()))


def spelling_counts(records: pd.DataFrame, rules) -> SpellingCounts:
    """{column: {value: records holding it}} over every record given (the whole master), for
    `build_golden(..., spelling=)` on a part of it."""
    out: SpellingCounts = {}
    if not records["record_key"].is_unique:  # as build_golden reads them (no copy when unique)
        records = records.drop_duplicates("record_key", keep="last")
    for column in spelling_columns(rules):
        if column in records.columns:
            col = _Column.of(records[column].to_numpy(object))
            counts = np.bincount(col.codes[col.codes >= 0], minlength=len(col.uniques) - 1)
            out[column] = dict(zip(col.uniques[:-1], counts.tolist()))
    if _uses(rules, "common_domain", "email") and "email_key" in records.columns:
        out[DOMAINS] = _emails.domain_counts(records["email_key"].to_numpy(object))
    if _uses(rules, "own_number", "mobile") or _uses(rules, "own_number", "landline"):
        slots = [records[c].to_numpy(object) for c in PHONE_SLOTS if c in records.columns]
        out[NUMBERS] = _phones.number_counts(slots) if slots else {}
    if _uses(rules, "common_characters", "name") and "first_name_std" in records.columns:
        genders = records["gender_std"] if "gender_std" in records.columns else None
        out[CHARACTERS] = _names.character_counts(records["first_name_std"].to_numpy(object), genders)
    return out


#: master address column -> record column `same_address` compares, most telling first
_ADDRESS_PARTS = {"postal_code": "postal_code_std", "city": "city_std", "state_or_province": "state_std"}


def _other_address(table: _Table, rows, cluster) -> np.ndarray:
    """1 for a record showing another address than the master's: a record still showing an old
    address likely shows the old phone too. The postal codes decide when both are known; else
    the city, then the state (standardized, so comparable across sources: a sales export
    writes no postal code, a web form may leave it blank). What neither side gives counts as 0.
    Compared case-blind: an export that keeps a city as written ("Chicago") shows the same
    city as one that upper-cases it ("CHICAGO")."""
    key = np.zeros(len(rows), np.int64)
    if table.master_address is None or len(rows) == 0:
        return key
    open_ = np.ones(len(rows), bool)  # not yet decided by a part both sides give
    for part, column in _ADDRESS_PARTS.items():
        col = table.columns[column]
        own = col.codes[rows]
        flag = f"{column.removesuffix('_std')}_flag"
        if flag in table.excluded:
            own = np.where(table.excluded[flag][rows], -1, own)
        master = table.master_address[part].reindex(cluster)
        known = open_ & (own >= 0) & master.notna().to_numpy()
        folded = np.array([None if u is None else u.casefold() for u in col.uniques], dtype=object)
        key[known] = folded[own[known]] != master.astype("string").str.casefold().to_numpy(object)[known]
        open_ &= ~known
    return key


def _home_country(table: _Table, col: _Column, cand, cluster, multi: np.ndarray) -> np.ndarray:
    """`home_country` keys (survivorship/phones.py foreign_reading) over the candidates of the
    clusters holding two or more numbers (`multi`). The customer's country is the master
    address's (the address is chosen first), else the one country their records give; none
    when they give two or none."""
    key = np.zeros(len(cand), np.int64)
    if table.master_address is None or not multi.any():
        return key
    cand, cluster = cand[multi], cluster[multi]
    country = table.master_address["country"].reindex(cluster).to_numpy(object)
    unknown = pd.isna(country)
    if unknown.any():
        given = table.columns["country_std"]
        pick = np.isin(table.cluster, cluster[unknown]) & (given.codes >= 0)
        text = pd.Series(given.uniques[given.codes[pick]], dtype=object)
        per = text.groupby(table.cluster[pick]).agg(lambda c: c.iat[0] if c.nunique() == 1 else None)
        country[unknown] = per.reindex(cluster[unknown]).to_numpy(object)
    key[multi] = _phones.foreign_reading(cluster, col.uniques, cand, country)
    return key


def _own_number(table: _Table, rows, col: _Column, cand) -> np.ndarray:
    """`own_number` keys (survivorship/phones.py held_elsewhere) with one id per number text
    across the candidate column and the phone slots."""
    columns = [col] + [table.columns[c] for c in PHONE_SLOTS]
    ids, numbers = pd.factorize(np.concatenate([c.uniques[:-1] for c in columns]))
    ids = ids.astype(np.int64)
    starts = np.cumsum([0] + [len(c.uniques) - 1 for c in columns])
    id_of = [np.append(ids[a:b], -1) for a, b in zip(starts[:-1], starts[1:])]  # code -1 -> id -1
    slots = [i[c.codes] for i, c in zip(id_of[1:], columns[1:])]
    totals = table.spelling.get(NUMBERS)
    return _phones.held_elsewhere(table.cluster, slots, np.asarray(numbers, object), totals, rows, id_of[0][cand])


_OTHER_SLOT = {"mobile": ("landline_std", "landline_flag"), "landline": ("mobile_std", "mobile_flag")}


def _type_evidence(table: _Table, group: FieldGroup, rows, codes, cluster) -> np.ndarray:
    """0 = known to be of this type, 1 = type guessed (an untyped US/CA `phone` column number),
    2 = another record of the customer holds the number in the other slot with a known type.

    A guessed number that is not the customer's known number of the other type counts as known
    (a US "Phone" number that is not their landline is their mobile). A number known as both
    types (a landline written in a mobile column) ranks 1.
    """
    key = np.zeros(len(rows), np.int64)
    if group.name not in _OTHER_SLOT or len(rows) == 0:
        return key
    other_col, other_flag = _OTHER_SLOT[group.name]
    own_col = table.columns[group.columns[0][1]]
    other = table.columns[other_col]
    # one id per number text across both slots (the uniques end with the None sentinel)
    ids = pd.factorize(np.concatenate([own_col.uniques[:-1], other.uniques[:-1]]))[0].astype(np.int64)
    own_ids, other_ids = np.append(ids[: len(own_col.uniques) - 1], -1), np.append(ids[len(own_col.uniques) - 1 :], -1)
    width = int(ids.max()) + 2 if len(ids) else 1

    def known(values: np.ndarray, flag: str, id_of: np.ndarray) -> np.ndarray:
        """(cluster, number) codes of every record holding a number of known type in this slot."""
        ok = (values >= 0) & ~table.excluded[flag] & ~table.has_code(flag, "type_guessed")
        return np.unique(table.cluster[ok] * width + id_of[values[ok]])

    known_own = known(own_col.codes, group.flags[0], own_ids)
    known_other = known(other.codes, other_flag, other_ids)
    cand = codes[:, 0]
    pair = cluster * width + own_ids[cand]
    in_own, in_other = np.isin(pair, known_own), np.isin(pair, known_other)
    guessed = table.has_code(group.flags[0], "type_guessed")[rows]
    other_known = np.isin(cluster, np.unique(known_other // width))
    key[guessed & ~in_own & ~(other_known & ~in_other)] = 1
    key[in_other] = np.where(in_own[in_other], 1, 2)
    key[cand < 0] = 0  # no valid number: valid_only already ranks it last
    return key


_RUN_RE = re.compile(r"[a-z]+|[0-9]+")


def _contested(cluster, value_code, present) -> np.ndarray:
    """Clusters whose candidates hold more than one distinct value (the only ones worth scoring)."""
    pairs = np.unique(np.column_stack([cluster[present], value_code[present]]), axis=0)
    ids, counts = np.unique(pairs[:, 0], return_counts=True)
    return ids[counts > 1]


def _value_groups(cluster, texts: np.ndarray, codes: np.ndarray, present):
    """For the clusters with competing values: (rows, inverse, groups) where groups is a list of
    (cluster, [(text, records holding it)]) and pair i of the flattened groups scores rows[inverse == i]."""
    value = codes[:, 0]
    contested = _contested(cluster, value, present)
    rows = np.flatnonzero(present & np.isin(cluster, contested))
    if len(rows) == 0:
        return rows, rows, []
    pairs, inverse, counts = np.unique(
        np.column_stack([cluster[rows], value[rows]]), axis=0, return_inverse=True, return_counts=True
    )
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]).tolist() + [len(pairs)]
    text, n = texts[pairs[:, 1]].tolist(), counts.tolist()
    groups = [(int(pairs[a, 0]), list(zip(text[a:b], n[a:b]))) for a, b in zip(starts[:-1], starts[1:])]
    return rows, inverse.ravel(), groups


def _candidate_groups(table: _Table, cluster: np.ndarray, texts: np.ndarray, codes: np.ndarray):
    """`_value_groups` of a field's candidates, made once per `_choose` call: identity_match,
    common_domain and most_similar all ask for the e-mail's (each ~0.3 CPU s at 200k). The
    arrays are held and compared by identity, so a later call never reuses another's groups."""
    memo = table.groups_memo
    if memo is not None and memo[0] is cluster and memo[1] is codes and memo[2] is texts:
        return memo[3]
    groups = _value_groups(cluster, texts, codes, codes[:, 0] >= 0)
    table.groups_memo = (cluster, codes, texts, groups)
    return groups


def _near(a: str, b: str) -> bool:
    """One edit apart (a transposition counts as one): a typo of each other."""
    return OSA.distance(a, b, score_cutoff=1) <= 1


def _identity_mismatch(table: _Table, group: FieldGroup, cols, codes, cluster) -> np.ndarray:
    """Per candidate e-mail: how badly its local part fits the customer. Each letter run that
    cannot be spelt from the words (or initials) of the names the customer's records carry
    counts 1 (a one-letter typo, a dot inserted inside a name: "j.ordan", "smth"); a 2- or
    4-digit run that is not their birth year (84, 1984) counts 1 only against a one-edit
    variant that has it right (swapped year digits) — a second address with other digits is no
    typo. Customers without a Latin/pinyin name or birth date give no evidence (0)."""
    key = np.zeros(len(cluster), np.int64)
    if group.name != "email" or len(cluster) == 0:
        return key
    in_rows, inverse, groups = _candidate_groups(table, cluster, cols[0].uniques, codes)
    if not groups:
        return key
    members = np.flatnonzero(np.isin(table.cluster, [c for c, _ in groups]))
    names = pd.concat(
        [
            pd.DataFrame({"cluster": table.cluster[members], "text": col.uniques[col.codes[members]]})
            for col in (table.columns[n] for n in NAME_TOKEN_COLUMNS)
        ],
        ignore_index=True,
    )
    names = names[names["text"].notna()].drop_duplicates()
    words: dict[int, set[str]] = {}
    for c, t in zip(names["cluster"].tolist(), names["text"].str.lower().tolist()):
        words.setdefault(c, set()).update(w for w in _RUN_RE.findall(t) if len(w) > 1 and w.isalpha())
    born = table.columns["birth_date_std"]
    dates = pd.DataFrame({"cluster": table.cluster[members], "year": born.uniques[born.codes[members]]}).dropna()
    years: dict[int, set[str]] = {}
    for c, d in zip(dates["cluster"].tolist(), dates["year"].astype(str).str[:4].tolist()):
        years.setdefault(c, set()).update((d, d[2:]))

    scores = []
    for c, values in groups:
        tokens, yy = words.get(c), years.get(c)
        spelling, year = [], []
        for value, _ in values:
            runs = _RUN_RE.findall(value.rpartition("@")[0].lower())
            spelling.append(sum(not _spelt(r, tokens) for r in runs if r.isalpha()) if tokens else 0)
            year.append(sum(r not in yy for r in runs if r.isdigit() and len(r) in (2, 4)) if yy else 0)
        texts = [v for v, _ in values]
        scores += [
            spelling[i] + any(year[j] < year[i] and _near(texts[i], texts[j]) for j in range(len(texts)))
            for i in range(len(texts))
        ]
    key[in_rows] = np.asarray(scores, np.int64)[inverse]
    return key


def _domain_key(table: _Table, group: FieldGroup, cols, codes, cluster) -> np.ndarray:
    """1 for an address whose domain is a typo of a commoner one another record gives with
    the same local part (survivorship/emails.py rare_domain), over the contested clusters."""
    key = np.zeros(len(cluster), np.int64)
    if group.name != "email" or len(cluster) == 0:
        return key
    in_rows, inverse, groups = _candidate_groups(table, cluster, cols[0].uniques, codes)
    if not groups:
        return key
    counts = table.spelling.get(DOMAINS)
    if counts is None:  # counted on the match key's domain, as spelling_counts does
        mailbox = table.columns[group.key or group.columns[0][1]]
        counts = _emails.domain_counts(mailbox.uniques[mailbox.codes])
    key[in_rows] = np.asarray(_emails.rare_domain(groups, counts), np.int64)[inverse]
    return key


def _support(table: _Table, cols, codes, cluster) -> np.ndarray:
    """Per candidate: minus the number of the cluster's records holding this value or a one-edit
    variant of it. Of three spellings, two of them typos of the third, the third has the most
    support; two spellings one edit apart tie (no evidence)."""
    key = np.zeros(len(cluster), np.int64)
    in_rows, inverse, groups = _candidate_groups(table, cluster, cols[0].uniques, codes)
    support = []
    for _, values in groups:
        support += [sum(n for w, n in values if w == v or _near(v, w)) for v, _ in values]
    if groups:
        key[in_rows] = -np.asarray(support, np.int64)[inverse]
    return key


def _spelt(segment: str, words: set[str]) -> bool:
    """Can `segment` be written as a run of these words and their initials (jsmith, smithj, xiexuedong)?"""
    initials = {w[0] for w in words}
    reach = [False] * (len(segment) + 1)
    reach[0] = True
    for i in range(len(segment)):
        if not reach[i]:
            continue
        if segment[i] in initials:
            reach[i + 1] = True
        for w in words:
            if segment.startswith(w, i):
                reach[i + len(w)] = True
    return reach[-1]


def _lineage(win: pd.DataFrame, master: str) -> pd.DataFrame:
    """The lineage rows of one master column: the winners holding a value, built from the
    columns' arrays (selecting, renaming and filtering the frame copied it three times)."""
    value = win[master].to_numpy(object)
    has = pd.notna(value)
    part = {"cluster": win.index.to_numpy()[has], "value": value[has]}
    for column, own in (("record_key", master + _KEY), ("rule", master + _RULE)):  # a composed name's part
        base = win[column].to_numpy(object)
        if own in win.columns:
            mine = win[own].to_numpy(object)
            base = np.where(pd.notna(mine), mine, base)
        part[column] = base[has]
    part["alternatives"] = win[f"{master}{_ALT}"].to_numpy(object)[has]
    frame = pd.DataFrame(part, copy=False)
    frame["field"] = master
    frame["value"] = frame["value"].astype(str)
    return frame


def _all_junk_names(table: _Table, golden: pd.DataFrame) -> pd.DataFrame:
    """A lineage row (value "", rule all_junk) for each master that publishes no name because
    every name its records hold is junk (a formula, markup, a placeholder)."""
    junk = np.zeros(len(table.cluster), bool)
    for flag in ("full_name_flag", "first_name_flag", "last_name_flag"):
        junk |= table.has_code(flag, "junk")
    clusters = np.unique(table.cluster[junk])
    clusters = clusters[golden["full_name"].reindex(clusters).isna().to_numpy()]
    first = pd.Series(table.record_key[junk]).groupby(table.cluster[junk]).first().reindex(clusters)
    frame = pd.DataFrame({"cluster": clusters, "field": "full_name", "value": "", "record_key": first.to_numpy()})
    frame["rule"] = "all_junk"
    frame["alternatives"] = None
    return frame


#: the groups whose winners _fill_phone reads
_PHONE_WINNERS = ("mobile", "landline", "phone")


def _fill_phone(golden: pd.DataFrame, winners: dict[str, pd.DataFrame], lineage_parts: list) -> None:
    """phone = the master mobile if any, else the master landline, else the best untyped phone."""
    options = [
        (winners["mobile"], "mobile", "mobile_first"),
        (winners["landline"], "landline", "landline_when_no_mobile"),
        (winners["phone"], "phone", None),
    ]
    golden["phone"] = None
    for win, column, rule in options:
        values = win[column].reindex(golden.index)
        take = golden["phone"].isna() & values.notna()
        if not take.any():
            continue
        golden.loc[take, "phone"] = values[take]
        part = win.loc[take[take].index, [column, "record_key", "rule", f"{column}{_ALT}"]]
        part = part.rename(columns={column: "value", f"{column}{_ALT}": "alternatives"})
        if rule is not None:
            part["rule"] = rule
        part = part.reset_index()
        part["field"] = "phone"
        part["value"] = part["value"].astype(str)
        lineage_parts.append(part)
