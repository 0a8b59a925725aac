"""True people of the non-CRM profiles, with hard-negative groups that fit each profile's fields.

A `Locale` draws names, birth dates, places and contact points of one population (modern
British, German, US, Victorian, business contacts); `population` turns a share of the people
into look-alike groups of *different* people: twins (same surname, birth date and place),
households (spouses, children: same surname and place), father and son of the same name
(jr_sr), common names, and colleagues sharing one company switchboard. Everything is drawn from
one `random.Random`, so a seed gives the same people.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import date, timedelta

from . import people as W
from . import pools as P


@dataclass
class Person:
    entity_id: str = ""
    sex: str = "M"
    given: str = ""
    second: str = ""  # second given name (German records), "" if none
    surname: str = ""
    dob: date | None = None
    town: str = ""
    postcode: str = ""
    email: str = ""
    occupation: str = ""
    company: tuple = ()  # (legal name, e-mail domain, switchboard digits, e-mail pattern) for b2b
    title: str = ""
    phone: str = ""  # office line digits: the company switchboard or a direct line
    scenario: str = "normal"
    group_id: str = ""


def _postcode_uk(r: random.Random, area: str) -> str:
    return f"{area}{r.randint(1, 28)} {r.randint(1, 9)}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"


class Locale:
    """Where and when a profile's people live; subclasses only change the pools."""

    male: list[str] = W.UK_MALE
    female: list[str] = W.UK_FEMALE
    surnames: list[str] = W.UK_SURNAMES
    common: list[tuple[str, str]] = W.UK_COMMON_NAMES
    email_domains: list[str] = W.UK_EMAIL_DOMAINS
    born: tuple[int, int] = (1940, 2005)
    second_share = 0.0

    def __init__(self, r: random.Random):
        self.r = r

    def given(self, sex: str) -> str:
        return self.r.choice(self.female if sex == "F" else self.male)

    def place(self) -> tuple[str, str]:
        town, areas = self.r.choice(W.UK_TOWNS)
        return town, _postcode_uk(self.r, self.r.choice(areas))

    def birth(self, lo: int | None = None, hi: int | None = None) -> date:
        lo, hi = lo or self.born[0], hi or self.born[1]
        return date(lo, 1, 1) + timedelta(days=self.r.randrange((date(hi, 12, 31) - date(lo, 1, 1)).days))

    def email(self, given: str, surname: str, dob: date | None) -> str:
        g, s = _ascii(given).lower(), _ascii(surname).lower().replace("'", "").replace(" ", "")
        yy = f"{dob.year % 100:02d}" if dob else str(self.r.randint(1, 99))
        local = self.r.choice(
            [
                f"{g}.{s}",
                f"{g}{s}",
                f"{g[0]}{s}",
                f"{g}_{s}",
                f"{g}.{s}{yy}",
                f"{s}{g[0]}",
                f"{g}{self.r.randint(1, 999)}",
            ]
        )
        return f"{local}@{self.r.choice(self.email_domains)}"

    def person(self) -> Person:
        sex = self.r.choice("MF")
        town, postcode = self.place()
        p = Person(
            sex=sex,
            given=self.given(sex),
            surname=self.r.choice(self.surnames),
            dob=self.birth(),
            town=town,
            postcode=postcode,
        )
        if self.r.random() < self.second_share:
            p.second = self.r.choice([g for g in (self.female if sex == "F" else self.male) if g != p.given])
        p.email = self.email(p.given, p.surname, p.dob)
        return p


class UsLocale(Locale):
    male = sorted(set(P.US_FIRST_NAMES) - P.US_FEMALE)
    female = sorted(P.US_FEMALE & set(P.US_FIRST_NAMES))
    surnames = P.US_SURNAMES
    common = P.US_COMMON_NAMES
    born = (1935, 2006)

    def place(self) -> tuple[str, str]:
        city, _, zips, _ = self.r.choice(P.US_PLACES)
        return city, f"{self.r.choice(zips)}{self.r.randint(0, 99):02d}"


class GermanLocale(Locale):
    male, female, surnames, common = W.DE_MALE, W.DE_FEMALE, W.DE_SURNAMES, W.DE_COMMON_NAMES
    born = (1930, 2005)
    second_share = 0.35

    def place(self) -> tuple[str, str]:
        city, prefixes = self.r.choice(W.DE_CITIES)
        return city, f"{self.r.choice(prefixes)}{self.r.randint(0, 999):03d}"


class VictorianLocale(Locale):
    male, female, surnames = W.OLD_MALE, W.OLD_FEMALE, W.OLD_SURNAMES
    common = [
        ("John", "Smith"),
        ("William", "Taylor"),
        ("Mary", "Jones"),
        ("Thomas", "Wood"),
        ("Ann", "Smith"),
        ("James", "Greenwood"),
        ("Sarah", "Hargreaves"),
        ("John", "Sutcliffe"),
    ]
    born = (1815, 1925)

    def place(self) -> tuple[str, str]:
        town, area = self.r.choice(W.OLD_PLACES)
        return town, _postcode_uk(self.r, area)

    def person(self) -> Person:
        p = super().person()
        p.email = ""
        p.occupation = self.r.choice(W.OCCUPATIONS)
        return p


class BusinessLocale(Locale):
    """Contacts at companies; most reach the company through its switchboard."""

    born = (1955, 2000)

    def __init__(self, r: random.Random, n_companies: int):
        super().__init__(r)
        self.companies = [self._company() for _ in range(max(3, n_companies))]

    def _company(self) -> tuple:
        stem, trade = self.r.choice(W.COMPANY_STEMS), self.r.choice(W.COMPANY_TRADES)
        name = f"{stem} {trade} {self.r.choice(W.COMPANY_FORMS)}"
        domain = self.r.choice([f"{stem}{trade}", stem, f"{stem}-{trade}"]).lower() + self.r.choice([".co.uk", ".com"])
        _, code, digits = self.r.choice(W.UK_AREA_CODES)
        pattern = self.r.choice(["first.last", "first.last", "flast", "first", "first_last", "f.last", "firstl"])
        return (name, domain, code + "".join(self.r.choice("0123456789") for _ in range(digits)), pattern)

    def person(self) -> Person:
        p = super().person()
        self.join(p, self.r.choice(self.companies))
        return p

    def join(self, p: Person, company: tuple) -> None:
        p.company, p.title = company, self.r.choice(W.JOB_TITLES)
        p.email = work_email(p.given, p.surname, company)
        switchboard = self.r.random() < 0.65
        p.phone = company[2] if switchboard else company[2][:-4] + f"{self.r.randint(0, 9999):04d}"


def work_email(given: str, surname: str, company: tuple) -> str:
    g, s = _ascii(given).lower(), _ascii(surname).lower().replace("'", "").replace(" ", "")
    local = {
        "first.last": f"{g}.{s}",
        "flast": f"{g[0]}{s}",
        "first": g,
        "first_last": f"{g}_{s}",
        "f.last": f"{g[0]}.{s}",
        "firstl": f"{g}{s[0]}",
    }[company[3]]
    return f"{local}@{company[1]}"


def _ascii(text: str) -> str:
    return (
        text.replace("ä", "ae")
        .replace("ö", "oe")
        .replace("ü", "ue")
        .replace("ß", "ss")
        .replace("Ä", "Ae")
        .replace("Ö", "Oe")
        .replace("Ü", "Ue")
    )


# ------------------------------------------------------------------ hard-negative groups
def _other_given(loc: Locale, p: Person, sex: str) -> str:
    """A different given name; a third of the time one that starts like p's (Anna/Annabel, Jan/Jana)."""
    pool = loc.female if sex == "F" else loc.male
    similar = [g for g in pool if g != p.given and g[:3] == p.given[:3]]
    if similar and loc.r.random() < 0.33:
        return loc.r.choice(similar)
    return loc.r.choice([g for g in pool if g != p.given])


def _relative(loc: Locale, p: Person, sex: str, dob: date | None, surname: str | None = None) -> Person:
    q = dataclasses.replace(
        p, sex=sex, given=_other_given(loc, p, sex), dob=dob, surname=surname or p.surname, second=""
    )
    if loc.r.random() < loc.second_share:
        q.second = loc.r.choice([g for g in (loc.female if sex == "F" else loc.male) if g != q.given])
    if p.email:
        q.email = p.email if loc.r.random() < 0.25 else loc.email(q.given, q.surname, dob)  # family mailbox
    if isinstance(loc, BusinessLocale):
        loc.join(q, p.company)
    if p.occupation:
        q.occupation = loc.r.choice(W.OCCUPATIONS)
    return q


def twins(loc: Locale, p: Person) -> list[Person]:
    """Same surname, birth date and address; different (sometimes similar) given names."""
    return [p, _relative(loc, p, loc.r.choice("MF"), p.dob)]


def household(loc: Locale, p: Person) -> list[Person]:
    """Spouse (surname shared most of the time) and children at the same address."""
    r = loc.r
    spouse_dob = p.dob + timedelta(days=r.randint(-6 * 365, 6 * 365)) if p.dob else None
    members = [
        p,
        _relative(
            loc,
            p,
            "F" if p.sex == "M" else "M",
            spouse_dob,
            surname=p.surname if r.random() < 0.85 else r.choice(loc.surnames),
        ),
    ]
    for _ in range(r.choice([0, 0, 1, 2])):
        kid = _later(loc, p.dob, 22, 38)
        if kid is not None:
            members.append(_relative(loc, p, r.choice("MF"), kid))
    return members


def _later(loc: Locale, d: date | None, lo_years: int, hi_years: int) -> date | None:
    """A birth date lo..hi years after d, not after the locale's last birth year plus three; None if none fits."""
    if d is None:
        return None
    last = date(loc.born[1] + 3, 12, 31)
    lo, hi = d + timedelta(days=lo_years * 365), min(last, d + timedelta(days=hi_years * 365))
    return lo + timedelta(days=loc.r.randrange((hi - lo).days + 1)) if lo <= hi else None


def jr_sr(loc: Locale, p: Person) -> list[Person]:
    """Father and son of one name at one address, a generation apart."""
    p.sex = "M"
    p.given = loc.given("M")
    p.dob = loc.birth(loc.born[0], max(loc.born[0], loc.born[1] - 25))
    if isinstance(loc, BusinessLocale):
        loc.join(p, p.company)
    elif p.email:
        p.email = loc.email(p.given, p.surname, p.dob)
    son = _relative(loc, p, "M", _later(loc, p.dob, 18, 40))
    son.given, son.second = p.given, p.second
    if isinstance(loc, BusinessLocale):
        loc.join(son, p.company)
        local, _, domain = son.email.partition("@")  # the mailbox of that name is taken by the father
        son.email = f"{local}{loc.r.choice(['2', '1', '.jr', '-jr'])}@{domain}"
    elif p.email:
        son.email = loc.email(son.given, son.surname, son.dob)
    if p.occupation and loc.r.random() < 0.5:
        son.occupation = p.occupation
    return [p, son]


def common_name(loc: Locale, p: Person) -> list[Person]:
    """Two or three unrelated people with one of the most common names; some in one town or born one year."""
    given, surname = loc.r.choice(loc.common)
    members = []
    for k in range(loc.r.choice([2, 2, 3])):
        q = p if k == 0 else loc.person()
        q.given, q.surname = given, surname
        q.sex = "F" if given in loc.female else "M"
        if k and loc.r.random() < 0.4:
            q.town, q.postcode = p.town, loc.place()[1]
        if k and loc.r.random() < 0.25 and p.dob:
            q.dob = date(p.dob.year, loc.r.randint(1, 12), loc.r.randint(1, 28))
        if isinstance(loc, BusinessLocale):
            loc.join(q, q.company)
        elif q.email:
            q.email = loc.email(given, surname, q.dob)
        members.append(q)
    return members


def colleagues(loc: Locale, p: Person) -> list[Person]:
    """Three to seven people at one company, all on its switchboard; a few share a surname."""
    assert isinstance(loc, BusinessLocale)
    members = [p]
    for _ in range(loc.r.randint(2, 6)):
        q = loc.person()
        if loc.r.random() < 0.2:
            q.surname = p.surname
        loc.join(q, p.company)
        members.append(q)
    for q in members:
        q.phone = p.company[2]
    return members


GROUP_MAKERS = {
    "twins": twins,
    "household": household,
    "jr_sr": jr_sr,
    "common_name": common_name,
    "colleagues": colleagues,
}


def _draw_kind(x: float, kinds: list[tuple[str, float]]) -> str | None:
    """The kind whose share interval holds x (0 <= x < 1), None past the last one."""
    for kind, share in kinds:
        if x < share:
            return kind
        x -= share
    return None


def population(loc: Locale, n: int, group_shares: dict[str, float]) -> list[Person]:
    """n people; each draw starts a look-alike group with the kind's share, else one ordinary person."""
    people: list[Person] = []
    kinds = list(group_shares.items())
    n_groups = 0
    while len(people) < n:
        p = loc.person()
        kind = _draw_kind(loc.r.random(), kinds)
        members = [p] if kind is None else GROUP_MAKERS[kind](loc, p)
        if kind is not None and len(members) > 1 and len(people) + len(members) <= n:
            n_groups += 1
            for m in members:
                m.scenario, m.group_id = kind, f"{kind[:2].upper()}{n_groups:06d}"
            people.extend(members)
        else:  # no group, or no room left for it: p alone, an ordinary person
            people.append(p)
    for i, q in enumerate(people):
        q.entity_id = f"E{i + 1:07d}"
    return people
