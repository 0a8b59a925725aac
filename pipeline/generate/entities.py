"""True customers (entities) with hard-negative groups; everything drawn from one seeded RNG.

Entities are built column-wise with numpy; only the few percent of hard-negative group members
are touched one by one afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from . import pools as P

SYSTEMS = ("crm_legacy_cn", "crm_web_us", "crm_sales")

# Share of customers in each hard-negative kind (groups are built from these budgets).
HARD_NEGATIVE_SHARE = {"household": 0.04, "twins": 0.02, "jr_sr": 0.02, "common_name": 0.03}
MOVED_SHARE = 0.06
ALT_EMAIL_SHARE = 0.2


@lru_cache(maxsize=1)
def _char_tables() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Pinyin and traditional form per pool character, computed once (never per row)."""
    import opencc
    from pypinyin import lazy_pinyin

    s2t = opencc.OpenCC("s2t")
    chars = set("".join(P.CN_GIVEN_CHARS) + "".join(P.CN_SURNAMES) + "".join(P.CN_COMMON_NAMES))
    pinyin = {c: lazy_pinyin(c)[0] for c in chars}
    trad = {}
    for c in chars:
        t = s2t.convert(c)
        try:
            t.encode("gbk")
            trad[c] = t
        except UnicodeEncodeError:  # keep the file GBK-writable
            trad[c] = c
    surname_py = {s: P.CN_SURNAME_READINGS.get(s) or "".join(pinyin[c] for c in s) for s in P.CN_SURNAMES}
    return pinyin, trad, surname_py


def surname_pinyin(surname: str) -> str:
    """Pinyin of a Chinese surname with its surname reading (单 -> shan, 曾 -> zeng)."""
    from pypinyin import lazy_pinyin

    _, _, table = _char_tables()
    return table.get(surname) or P.CN_SURNAME_READINGS.get(surname) or "".join(lazy_pinyin(surname))


def given_syllables(given: str) -> list[str]:
    pinyin, _, _ = _char_tables()
    return [pinyin.get(c) or c for c in given]


def to_traditional(text: str) -> str:
    _, trad, _ = _char_tables()
    return "".join(trad.get(c, c) for c in text)


@dataclass
class Entities:
    """Column-wise entity attributes (lists/arrays of length n)."""

    n: int
    entity_id: list[str]
    is_cn: np.ndarray
    gender: np.ndarray  # 'M' / 'F'
    first: list[str]  # US formal first name / CN given name in Hanzi
    last: list[str]  # US surname / CN surname in Hanzi
    first_py: list[str]  # CN: pinyin syllables joined ("xuedong"); US: same as first
    last_py: list[str]
    suffix: list[str]  # '', 'Jr', 'Sr'
    dob: np.ndarray  # datetime64[D]
    email: list[str]
    mobile: list[str]  # national digits (CN 11, US 10)
    landline: list[str]  # national digits with area code, '' when none
    addr: list[tuple]  # see _draw_address
    old_addr: list[tuple | None]
    old_mobile: list[str | None]
    company: list[str]
    scenario: list[str]
    group_id: list[str]
    systems: np.ndarray  # bool (n, 3)
    dups: np.ndarray  # int (n, 3): extra copies within a system
    alt_email: list[str] = field(default_factory=list)  # '' when none


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, size=n).astype(str), width)


def _draw_address(rng: np.random.Generator, is_cn: np.ndarray, place: int | None = None) -> list[tuple]:
    """('cn', place, district, street, number, room, postcode) or ('us', place, street, suffix, number, unit, zip).

    `place` forces the city (index into the CN or US place pool) for every drawn address.
    """
    n = len(is_cn)
    cn_place = rng.integers(0, len(P.CN_PLACES), n)
    us_place = rng.integers(0, len(P.US_PLACES), n)
    if place is not None:
        cn_place[:] = place
        us_place[:] = place
    r1 = rng.integers(0, 1000, n)
    r2 = rng.integers(0, 1000, n)
    number = rng.integers(1, 2000, n)
    unit = np.where(rng.random(n) < 0.4, rng.integers(101, 2500, n), 0)
    suffixes = list(P.US_STREET_SUFFIXES)
    out: list[tuple] = []
    for i in range(n):
        if is_cn[i]:
            pl = P.CN_PLACES[cn_place[i]]
            out.append(
                (
                    "cn",
                    int(cn_place[i]),
                    pl[5][r1[i] % len(pl[5])],
                    pl[6][r2[i] % len(pl[6])],
                    int(number[i] % 800 + 1),
                    int(unit[i]),
                    f"{pl[4]}{r1[i] % 1000:03d}",
                )
            )
        else:
            pl = P.US_PLACES[us_place[i]]
            zp = pl[2][r1[i] % len(pl[2])]
            out.append(
                (
                    "us",
                    int(us_place[i]),
                    P.US_STREET_NAMES[r2[i] % len(P.US_STREET_NAMES)],
                    suffixes[r1[i] % len(suffixes)],
                    int(number[i]),
                    int(unit[i]),
                    f"{zp}{r2[i] % 100:02d}",
                )
            )
    return out


def _mobiles(rng: np.random.Generator, is_cn: np.ndarray, addr: list[tuple]) -> list[str]:
    n = len(is_cn)
    pref = np.array(P.CN_MOBILE_PREFIXES)[rng.integers(0, len(P.CN_MOBILE_PREFIXES), n)]
    cn = np.char.add(pref, _digits(rng, n, 8))
    exch = rng.integers(200, 1000, n).astype(str)
    line = _digits(rng, n, 4)
    pick = rng.integers(0, 3, n)
    out = []
    for i in range(n):
        if is_cn[i]:
            out.append(str(cn[i]))
        else:
            codes = P.US_PLACES[addr[i][1]][3]
            out.append(codes[pick[i] % len(codes)] + str(exch[i]) + str(line[i]))
    return out


def _landlines(rng: np.random.Generator, is_cn: np.ndarray, addr: list[tuple], share: float) -> list[str]:
    n = len(is_cn)
    has = rng.random(n) < share
    body8 = np.char.add(rng.integers(2, 9, n).astype(str), _digits(rng, n, 7))
    exch = rng.integers(200, 1000, n).astype(str)
    line = _digits(rng, n, 4)
    out = []
    for i in range(n):
        if not has[i]:
            out.append("")
        elif is_cn[i]:
            out.append(P.CN_PLACES[addr[i][1]][7] + str(body8[i]))
        else:
            out.append(P.US_PLACES[addr[i][1]][3][0] + str(exch[i]) + str(line[i]))
    return out


def _email(rng_py, first_py: str, last_py: str, is_cn: bool, dob_year: int) -> str:
    f = "".join(ch for ch in first_py.lower() if ch.isalnum())
    last = "".join(ch for ch in last_py.lower() if ch.isalnum())
    k = rng_py.random()
    yy = f"{dob_year % 100:02d}"
    if is_cn:
        dom = P.CN_EMAIL_DOMAINS[int(rng_py.random() * len(P.CN_EMAIL_DOMAINS))]
        if dom == "qq.com" and k < 0.7:
            return f"{int(rng_py.random() * 9e8) + 10**7}@qq.com"
        local = [f"{last}{f}{yy}", f"{f}.{last}", f"{last}_{f}{int(rng_py.random() * 100)}", f"{f}{last}{dob_year}"][
            int(k * 4)
        ]
    else:
        dom = P.US_EMAIL_DOMAINS[int(rng_py.random() * len(P.US_EMAIL_DOMAINS))]
        local = [
            f"{f}.{last}",
            f"{f[0]}{last}",
            f"{f}{last}{yy}",
            f"{f}_{last}",
            f"{last}.{f}{int(rng_py.random() * 100)}",
        ][int(k * 5)]
    return f"{local}@{dom}"


def build_entities(n: int, seed: int, n_systems: int = 3, profile: str = "crm") -> Entities:
    """Draw n customers with overlap across systems and hard-negative groups (deterministic per seed).
    `profile="crm_names"` gives a share of the US customers accented Spanish names (own RNG
    stream: every other draw is the same as the crm profile's)."""
    import random

    rng = np.random.default_rng(seed)
    rpy = random.Random(seed)
    pinyin, _, surname_py = _char_tables()

    is_cn = rng.random(n) < 0.55
    gender = np.where(rng.random(n) < 0.5, "F", "M")
    # Names
    us_f_female = [x for x in P.US_FIRST_NAMES if x in P.US_FEMALE]
    us_f_male = [x for x in P.US_FIRST_NAMES if x not in P.US_FEMALE]
    i_uf = rng.integers(0, 10**6, n)
    i_ul = rng.integers(0, len(P.US_SURNAMES), n)
    # Chinese surnames: skew towards the frequent ones (head of the list) like real data.
    i_cs = np.minimum((rng.pareto(1.2, n) * 12).astype(int), len(P.CN_SURNAMES) - 1)
    i_g1 = rng.integers(0, 10**6, n)
    i_g2 = rng.integers(0, len(P.CN_GIVEN_CHARS), n)
    single = rng.random(n) < 0.3
    first, last, first_py, last_py = [], [], [], []
    for i in range(n):
        if is_cn[i]:
            pool = P.CN_GIVEN_FEMALE if gender[i] == "F" else P.CN_GIVEN_MALE
            given = pool[i_g1[i] % len(pool)] + ("" if single[i] else P.CN_GIVEN_CHARS[i_g2[i]])
            sur = P.CN_SURNAMES[i_cs[i]]
            first.append(given)
            last.append(sur)
            first_py.append("".join(pinyin[c] for c in given))
            last_py.append(surname_py[sur])
        else:
            pool = us_f_female if gender[i] == "F" else us_f_male
            f = pool[i_uf[i] % len(pool)]
            sur = P.US_SURNAMES[i_ul[i]]
            first.append(f)
            last.append(sur)
            first_py.append(f)
            last_py.append(sur)
    dob = np.datetime64("1940-01-01") + rng.integers(0, 365 * 66, n).astype("timedelta64[D]")
    addr = _draw_address(rng, is_cn)
    mobile = _mobiles(rng, is_cn, addr)
    landline = _landlines(rng, is_cn, addr, share=0.3)
    comp_pick = rng.integers(0, 1000, n)
    has_comp = rng.random(n) < 0.4
    company = [
        (
            ""
            if not has_comp[i]
            else (
                P.COMPANIES_CN[comp_pick[i] % len(P.COMPANIES_CN)]
                if is_cn[i]
                else P.COMPANIES_EN[comp_pick[i] % len(P.COMPANIES_EN)]
            )
        )
        for i in range(n)
    ]
    ents = Entities(
        n=n,
        entity_id=[f"E{i + 1:07d}" for i in range(n)],
        is_cn=is_cn,
        gender=gender,
        first=first,
        last=last,
        first_py=first_py,
        last_py=last_py,
        suffix=[""] * n,
        dob=dob,
        email=[""] * n,
        mobile=mobile,
        landline=landline,
        addr=addr,
        old_addr=[None] * n,
        old_mobile=[None] * n,
        company=company,
        scenario=["normal"] * n,
        group_id=[""] * n,
        systems=np.zeros((n, 3), bool),
        dups=np.zeros((n, 3), int),
    )
    if profile == "crm_names":
        _accented_names(ents, random.Random(seed + 1013), ACCENTED_SHARE)
    _hard_negatives(ents, rng, rpy)
    years = ents.dob.astype("datetime64[Y]").astype(int) + 1970
    ents.email = [_email(rpy, ents.first_py[i], ents.last_py[i], bool(is_cn[i]), int(years[i])) for i in range(n)]
    # a second address some people give to some systems (work mail, a new provider)
    has_alt = rng.random(n) < ALT_EMAIL_SHARE
    ents.alt_email = [
        _email(rpy, ents.first_py[i], ents.last_py[i], bool(is_cn[i]), int(years[i]) + 1) if has_alt[i] else ""
        for i in range(n)
    ]
    _dedupe_contacts(ents)
    _moved(ents, rng)
    _memberships(ents, rng, n_systems)
    return ents


ACCENTED_SHARE = 0.3  # crm_names profile: share of US customers with an accented name


def _accented_names(ents: Entities, r, share: float) -> None:
    """Accented Spanish first and last names (Lucía Gutiérrez) for a share of the US customers;
    the pinyin/ASCII slots (used for e-mails) get the unaccented form."""
    for i in range(ents.n):
        if ents.is_cn[i] or r.random() >= share:
            continue
        pool = P.ACCENTED_FIRST_FEMALE if ents.gender[i] == "F" else P.ACCENTED_FIRST_MALE
        ents.first[i], ents.last[i] = r.choice(pool), r.choice(P.ACCENTED_SURNAMES)
        ents.first_py[i], ents.last_py[i] = ascii_name(ents.first[i]), ascii_name(ents.last[i])


def ascii_name(text: str) -> str:
    """Lucía -> Lucia, Núñez -> Nunez: the name as typed on a keyboard without accents."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _hard_negatives(ents: Entities, rng: np.random.Generator, rpy) -> None:
    """Turn runs of consecutive entities into look-alike groups of distinct people."""
    n = ents.n
    order = rng.permutation(n)
    pos = 0
    gid = 0
    for kind, share in HARD_NEGATIVE_SHARE.items():
        budget = int(round(n * share))
        if n >= 40:
            budget = max(budget, 2)
        used = 0
        while used < budget and pos < n - 5:
            size = {
                "household": int(rng.integers(2, 5)),
                "twins": 2,
                "jr_sr": 2,
                "common_name": int(rng.integers(3, 6)),
            }[kind]
            members = [int(x) for x in order[pos : pos + size]]
            pos += size
            used += size
            gid += 1
            _make_group(ents, kind, members, f"{kind[:2].upper()}{gid:06d}", rng, rpy)


def _make_group(ents: Entities, kind: str, members: list[int], group: str, rng, rpy) -> None:
    lead = members[0]
    if kind == "jr_sr":  # US father/son; force the leader to be a US man
        for m in members:
            ents.is_cn[m] = False
            ents.gender[m] = "M"
        if ents.addr[lead][0] != "us":
            ents.addr[lead] = _draw_address(rng, np.array([False]))[0]
            ents.mobile[lead] = _mobiles(rng, np.array([False]), [ents.addr[lead]])[0]
            ents.landline[lead] = _landlines(rng, np.array([False]), [ents.addr[lead]], share=0.5)[0]
        for m in members[1:]:
            if ents.addr[m][0] != "us":
                ents.mobile[m] = _mobiles(rng, np.array([False]), [ents.addr[lead]])[0]
        male = [x for x in P.US_FIRST_NAMES if x not in P.US_FEMALE]
        fname = male[int(rng.integers(0, len(male)))]
        lname = P.US_SURNAMES[int(rng.integers(0, len(P.US_SURNAMES)))]
        son = members[1]
        for m in members:
            ents.first[m] = ents.first_py[m] = fname
            ents.last[m] = ents.last_py[m] = lname
            ents.addr[m] = ents.addr[lead]
        ents.suffix[lead], ents.suffix[son] = "Sr", "Jr"
        ents.dob[son] = ents.dob[lead] + np.timedelta64(int(rng.integers(25 * 365, 35 * 365)), "D")
        if ents.dob[son] > np.datetime64("2007-01-01"):
            ents.dob[lead] = ents.dob[lead] - np.timedelta64(30 * 365, "D")
            ents.dob[son] = ents.dob[son] - np.timedelta64(30 * 365, "D")
        ents.landline[son] = ents.landline[lead]
        if ents.mobile[son] == ents.mobile[lead]:
            ents.mobile[son] = ents.mobile[son][:-1] + str((int(ents.mobile[son][-1]) + 1) % 10)
    elif kind in ("household", "twins"):
        cn = bool(ents.is_cn[lead])
        if not ents.landline[lead]:
            ents.landline[lead] = _landlines(rng, np.array([cn]), [ents.addr[lead]], share=1.0)[0]
        for m in members[1:]:
            if bool(ents.is_cn[m]) != cn:  # same culture as the leader: redraw the given name
                ents.is_cn[m] = cn
                ents.addr[m] = ents.addr[lead]
                ents.mobile[m] = _mobiles(rng, np.array([cn]), [ents.addr[lead]])[0]
                _redraw_first(ents, m, rng)
            ents.addr[m] = ents.addr[lead]
            ents.landline[m] = ents.landline[lead]
            if kind == "twins" or rng.random() < 0.8:
                ents.last[m], ents.last_py[m] = ents.last[lead], ents.last_py[lead]
            elif cn:  # a spouse who kept her own surname
                ents.last[m] = P.CN_SURNAMES[int(rng.integers(0, 60))]
                ents.last_py[m] = surname_pinyin(ents.last[m])
            else:
                ents.last[m] = ents.last_py[m] = P.US_SURNAMES[int(rng.integers(0, len(P.US_SURNAMES)))]
            if kind == "twins":
                ents.dob[m] = ents.dob[lead]
            while ents.first[m] in [ents.first[x] for x in members if x != m]:
                _redraw_first(ents, m, rng)
    elif kind == "common_name":
        cn = bool(ents.is_cn[lead])
        if cn:
            name = P.CN_COMMON_NAMES[int(rng.integers(0, len(P.CN_COMMON_NAMES)))]
            sur, given = name[0], name[1:]
        else:
            given, sur = P.US_COMMON_NAMES[int(rng.integers(0, len(P.US_COMMON_NAMES)))]
        for m in members:
            if bool(ents.is_cn[m]) != cn:
                ents.is_cn[m] = cn
                ents.mobile[m] = _mobiles(rng, np.array([cn]), [ents.addr[lead]])[0]
                ents.landline[m] = ""
            ents.first[m], ents.last[m] = given, sur
            if cn:
                ents.first_py[m] = "".join(given_syllables(given))
                ents.last_py[m] = surname_pinyin(sur)
            else:
                ents.first_py[m], ents.last_py[m] = given, sur
            # same city, different street (and a landline of that city, if any)
            city = ents.addr[lead][1] if ents.addr[lead][0] == ("cn" if cn else "us") else None
            ents.addr[m] = _draw_address(rng, np.array([cn]), place=city)[0]
            if m == lead:
                ents.addr[lead] = ents.addr[m]
            ents.landline[m] = _landlines(rng, np.array([cn]), [ents.addr[m]], share=0.3)[0]
    for m in members:
        ents.scenario[m] = kind
        ents.group_id[m] = group


def _redraw_first(ents: Entities, m: int, rng) -> None:
    if ents.is_cn[m]:
        pool = P.CN_GIVEN_FEMALE if ents.gender[m] == "F" else P.CN_GIVEN_MALE
        g = pool[int(rng.integers(0, len(pool)))] + P.CN_GIVEN_CHARS[int(rng.integers(0, len(P.CN_GIVEN_CHARS)))]
        ents.first[m], ents.first_py[m] = g, "".join(given_syllables(g))
    else:
        f = P.US_FIRST_NAMES[int(rng.integers(0, len(P.US_FIRST_NAMES)))]
        ents.first[m] = ents.first_py[m] = f
        ents.gender[m] = "F" if f in P.US_FEMALE else "M"


def _dedupe_contacts(ents: Entities) -> None:
    """Emails and mobiles identify one person: make accidental collisions unique."""
    for attr in ("email", "alt_email", "mobile"):
        values = pd.Series(getattr(ents, attr))
        taken = set(ents.email) if attr == "alt_email" else set()
        dup = (values.duplicated(keep="first") | values.isin(taken)).to_numpy() & (values != "").to_numpy()
        vals = getattr(ents, attr)
        for i in np.flatnonzero(dup):
            if attr != "mobile":
                local, dom = vals[i].split("@")
                vals[i] = f"{local}{i % 997}@{dom}"
            else:
                vals[i] = vals[i][:-4] + f"{(int(vals[i][-4:]) + i) % 10000:04d}"


def _moved(ents: Entities, rng: np.random.Generator) -> None:
    """Some customers moved: one system still has the old address and mobile."""
    n = ents.n
    cand = np.flatnonzero((rng.random(n) < MOVED_SHARE) & (np.array(ents.scenario) == "normal"))
    if len(cand) == 0:
        return
    new_addr = _draw_address(rng, ents.is_cn[cand])
    new_mob = _mobiles(rng, ents.is_cn[cand], new_addr)
    for j, i in enumerate(cand):
        ents.old_addr[i] = new_addr[j]
        ents.old_mobile[i] = new_mob[j]
        ents.scenario[i] = "moved"


def _memberships(ents: Entities, rng: np.random.Generator, n_systems: int) -> None:
    """Each customer lives in 1-3 systems; Chinese customers mostly in the legacy CN CRM."""
    n = ents.n
    p_cn = np.array([0.9, 0.45, 0.5])
    p_us = np.array([0.12, 0.9, 0.5])
    probs = np.where(ents.is_cn[:, None], p_cn[None, :], p_us[None, :])
    probs[:, n_systems:] = 0.0
    member = rng.random((n, 3)) < probs
    none = ~member.any(axis=1)
    home = np.where(ents.is_cn, 0, np.minimum(1, n_systems - 1))
    member[np.flatnonzero(none), home[none]] = True
    # moved customers need two systems to show the two addresses
    moved = np.array(ents.scenario) == "moved"
    if n_systems > 1:
        single = moved & (member.sum(axis=1) == 1)
        rows = np.flatnonzero(single)
        member[rows, (np.argmax(member[rows], axis=1) + 1) % n_systems] = True
    ents.systems = member
    ents.dups = ((rng.random((n, 3)) < 0.04) & member).astype(int)
