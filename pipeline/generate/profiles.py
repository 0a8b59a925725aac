"""Generator profiles: person data shaped unlike the CRM exports, each with its own truth.

`write_profile(name, customers, seed, out_dir)` draws the profile's people (`persons`), gives each
one to three records spread over the profile's sources, puts realistic noise on the duplicates
(typos, nicknames, first/last swaps, missing values, moved house, clerks' abbreviations ...),
and writes each source as the CSV a user would receive (its own header spelling, date format,
delimiter and encoding) plus `truth/truth.csv` in the CRM generator's truth format.

Profiles (see PROFILES): few_fields, name_dob_postcode, split_dob, old_dob, b2b. The noise rates
differ on purpose, so the profiles are not all alike.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from . import people as W
from . import pools as P
from .persons import (
    BusinessLocale,
    GermanLocale,
    Locale,
    Person,
    UsLocale,
    VictorianLocale,
    _ascii,
    population,
    work_email,
)

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class Source:
    """One export: file name, {logical field: header} in column order, how it writes values."""

    name: str
    headers: dict[str, str]
    dates: str = "iso"  # iso | dmy | mdy | dmon | ymd8 | dot | split
    encoding: str = "utf-8"
    delimiter: str = ","
    id_format: str = "{n}"
    full_name: str = ""  # "" (separate columns) | "first last" | "last, first"
    sex: tuple[str, str] = ("M", "F")  # how this system writes male / female


@dataclass(frozen=True)
class Profile:
    name: str
    locale: type
    sources: tuple[Source, ...]
    groups: dict[str, float]  # share of draws that start a look-alike group of this kind
    dup_share: float  # share of people with more than one record
    extra: tuple[int, ...]  # how many extra records a duplicated person has (drawn uniformly)
    noise: dict[str, float] = field(default_factory=dict)  # per duplicate record
    first_missing: float = 0.03  # missing values on a person's first record


# ------------------------------------------------------------------ noise on one record
def typo(r: random.Random, s: str) -> str:
    """One edit (substitute, delete, insert, transpose) after the first letter."""
    if len(s) < 3:
        return s
    i = 1 + r.randrange(len(s) - 1)
    c = r.choice("aeioulnrst")
    op = r.randrange(4) if i > 1 else r.randrange(3)
    if op == 0:
        return s[:i] + c + s[i + 1 :]
    if op == 1:
        return s[:i] + s[i + 1 :]
    if op == 2:
        return s[:i] + c + s[i:]
    return s[: i - 1] + s[i] + s[i - 1] + s[i + 1 :] if s[i] != s[i - 1] else s[:i] + c + s[i + 1 :]


NICKNAMES = {**P.NICKNAMES, **W.UK_NICKNAMES, **W.DE_NICKNAMES}


def _noise_names(r: random.Random, rec: dict, rates: dict, loc: Locale) -> None:
    if rates.get("nickname", 0) > r.random() and rec["given"] in NICKNAMES:
        rec["given"] = r.choice(NICKNAMES[rec["given"]])
    if rates.get("abbreviation", 0) > r.random() and rec["given"] in W.OLD_ABBREVIATIONS:
        rec["given"] = r.choice(W.OLD_ABBREVIATIONS[rec["given"]])
    if rates.get("surname_variant", 0) > r.random() and rec["surname"] in W.OLD_SURNAME_VARIANTS:
        rec["surname"] = r.choice(W.OLD_SURNAME_VARIANTS[rec["surname"]])
    if rates.get("name_typo", 0) > r.random():
        key = r.choice(["given", "surname"])
        rec[key] = typo(r, rec[key])
    if rates.get("initial", 0) > r.random():
        rec["given"] = rec["given"][0] + r.choice([".", ""])
    if rates.get("translit", 0) > r.random():
        rec["surname"], rec["given"] = _ascii(rec["surname"]), _ascii(rec["given"])
        if r.random() < 0.3:  # typed on a keyboard without umlauts: ü -> u
            rec["surname"] = rec["surname"].replace("ue", "u").replace("oe", "o").replace("ae", "a")
    if rec["second"] and rates.get("second_dropped", 0) > r.random():
        rec["second"] = ""
    elif rec["second"] and rates.get("second_in_first", 0) > r.random():
        rec["given"], rec["second"] = f"{rec['given']} {rec['second']}", ""
    if rates.get("swap", 0) > r.random():
        rec["given"], rec["surname"] = rec["surname"], rec["given"]


def _noise_dob(r: random.Random, rec: dict, rates: dict) -> None:
    d: date | None = rec["dob"]
    if d is None:
        return
    if rates.get("dob_missing", 0) > r.random():
        rec["dob"] = None
        return
    if rates.get("year_shift", 0) > r.random():  # age given in years, birth year back-computed
        d = d.replace(year=d.year + r.choice([-2, -1, -1, 1, 1, 2]), day=min(d.day, 28))
    if rates.get("dob_swap", 0) > r.random() and d.day <= 12:
        d = d.replace(month=d.day, day=d.month)
    if rates.get("dob_typo", 0) > r.random():
        kind = r.randrange(3)
        if kind == 0:
            d = d.replace(day=min(28, max(1, d.day + r.choice([-10, -1, 1, 10]))))
        elif kind == 1:
            d = d.replace(year=d.year + r.choice([-10, -1, 1, 10]), day=min(d.day, 28))
        else:
            d = d.replace(month=r.randint(1, 12), day=min(d.day, 28))
    rec["dob"] = d
    if rates.get("year_only", 0) > r.random():
        rec["year_only"] = True
    if rates.get("day_missing", 0) > r.random():
        rec["day_missing"] = True


def _noise_place(r: random.Random, rec: dict, rates: dict, loc: Locale) -> None:
    if rates.get("moved", 0) > r.random():
        rec["town"], rec["postcode"] = loc.place()
    if rates.get("town_variant", 0) > r.random():
        variants = W.TOWN_VARIANTS.get(rec["town"], []) + [rec["town"].upper(), rec["town"].lower()]
        if rec["town"] in {"München", "Köln", "Düsseldorf", "Nürnberg", "Münster", "Göttingen"}:
            variants.append(_ascii(rec["town"]))
        if rec["town"] in {"Frankfurt am Main", "Freiburg im Breisgau"}:
            variants += [rec["town"].split()[0], rec["town"].split()[0] + " a.M."]
        rec["town"] = r.choice(variants)
    if rates.get("postcode_typo", 0) > r.random() and len(rec["postcode"]) > 3:
        pc = rec["postcode"]
        i = r.randrange(1, len(pc))
        if pc[i].isdigit():
            rec["postcode"] = pc[:i] + str((int(pc[i]) + r.randint(1, 9)) % 10) + pc[i + 1 :]
    if rates.get("postcode_missing", 0) > r.random():
        rec["postcode"] = ""


def _noise_contact(r: random.Random, rec: dict, rates: dict, loc: Locale) -> None:
    if rec["email"]:
        if rates.get("email_new", 0) > r.random():
            rec["email"] = loc.email(rec["given"], rec["surname"], rec["dob"])
        if rates.get("email_typo", 0) > r.random():
            local, _, dom = rec["email"].partition("@")
            rec["email"] = f"{typo(r, local)}@{dom}"
        if rates.get("email_missing", 0) > r.random():
            rec["email"] = ""
    if rec["company"]:
        if rates.get("company_variant", 0) > r.random():
            rec["company_name"] = _company_variant(r, rec["company_name"])
        if rates.get("title_variant", 0) > r.random():
            if rec["title"] in W.TITLE_VARIANTS:
                rec["title"] = r.choice(W.TITLE_VARIANTS[rec["title"]])
            elif r.random() < 0.3:  # promoted or moved to another role
                rec["title"] = r.choice(W.JOB_TITLES)
        if rates.get("phone_ext", 0) > r.random():
            rec["ext"] = str(r.randint(100, 899))
        if rates.get("phone_missing", 0) > r.random():
            rec["phone"] = ""
    if rec["occupation"] and rates.get("occupation_variant", 0) > r.random():
        rec["occupation"] = r.choice(W.OCCUPATION_VARIANTS.get(rec["occupation"], [rec["occupation"].title()]))
    if rates.get("sex_missing", 0) > r.random():
        rec["sex"] = ""


def _company_variant(r: random.Random, name: str) -> str:
    words = name.split()
    stem = " ".join(words[:2])
    return r.choice(
        [
            stem,
            name.upper(),
            stem.upper(),
            name.replace("Ltd", "Limited"),
            name.replace(" & ", " and "),
            name.replace("Ltd", "Ltd."),
            words[0],
        ]
    )


def _job_change(r: random.Random, rec: dict, loc: Locale) -> None:
    """b2b: the person moved to another company (new e-mail, phone, title) - still one person."""
    if isinstance(loc, BusinessLocale):
        company = r.choice(loc.companies)
        rec.update(
            company=company,
            company_name=company[0],
            email=work_email(rec["given"], rec["surname"], company),
            phone=company[2],
            title=r.choice(W.JOB_TITLES),
        )


def record_of(p: Person) -> dict:
    return {
        "given": p.given,
        "second": p.second,
        "surname": p.surname,
        "dob": p.dob,
        "town": p.town,
        "postcode": p.postcode,
        "email": p.email,
        "sex": p.sex,
        "occupation": p.occupation,
        "company": p.company,
        "company_name": p.company[0] if p.company else "",
        "title": p.title,
        "phone": p.phone,
        "ext": "",
    }


def noisy_record(r: random.Random, p: Person, prof: Profile, loc: Locale, duplicate: bool) -> dict:
    rec = record_of(p)
    if not duplicate:  # the first record is mostly clean, only sometimes incomplete
        for key in ("email", "postcode", "phone", "occupation"):
            if rec[key] and r.random() < prof.first_missing:
                rec[key] = ""
        if rec["dob"] and r.random() < prof.first_missing:
            rec["dob"] = None
        return rec
    rates = prof.noise
    if rates.get("job_change", 0) > r.random():
        _job_change(r, rec, loc)
    _noise_names(r, rec, rates, loc)
    _noise_dob(r, rec, rates)
    _noise_place(r, rec, rates, loc)
    _noise_contact(r, rec, rates, loc)
    if rates.get("upper", 0) > r.random():
        rec["given"], rec["surname"] = rec["given"].upper(), rec["surname"].upper()
    return rec


# ------------------------------------------------------------------ rendering
def date_text(d: date | None, style: str, year_only: bool = False) -> str:
    if d is None:
        return ""
    if year_only:
        return str(d.year)
    return {
        "iso": f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
        "dmy": f"{d.day:02d}/{d.month:02d}/{d.year:04d}",
        "mdy": f"{d.month}/{d.day}/{d.year:04d}",
        "dmon": f"{d.day} {MONTHS[d.month - 1]} {d.year:04d}",
        "ymd8": f"{d.year:04d}{d.month:02d}{d.day:02d}",
        "dot": f"{d.day:02d}.{d.month:02d}.{d.year:04d}",
    }[style]


def phone_text(r: random.Random, digits: str, ext: str) -> str:
    if not digits:
        return ""
    code = next((c for _, c, _ in W.UK_AREA_CODES if digits.startswith(c)), digits[:4])
    local = digits[len(code) :]
    half = len(local) // 2
    text = r.choice(
        [
            f"{code} {local[:half]} {local[half:]}",
            f"+44 {code[1:]} {local[:half]} {local[half:]}",
            f"+44 (0){code[1:]} {local}",
            digits,
            f"({code}) {local}",
        ]
    )
    return text + (r.choice([" ext. ", " x", " ext "]) + ext if ext else "")


def render(rec: dict, src: Source, r: random.Random) -> dict[str, str]:
    """Logical record -> {logical field: text} for the fields this source has."""
    d = rec["dob"]
    year_only = rec.get("year_only", False)
    out = {
        "given": rec["given"],
        "second": rec["second"],
        "surname": rec["surname"],
        "town": rec["town"],
        "postcode": rec["postcode"],
        "email": rec["email"],
        "occupation": rec["occupation"],
        "company": rec["company_name"],
        "title": rec["title"],
        "phone": phone_text(r, rec["phone"], rec["ext"]),
        "sex": {"M": src.sex[0], "F": src.sex[1]}.get(rec["sex"], ""),
    }
    if src.dates == "split":
        out["birth_year"] = str(d.year) if d else ""
        out["birth_month"] = "" if d is None or year_only else r.choice([str(d.month), f"{d.month:02d}"])
        out["birth_day"] = "" if d is None or year_only or rec.get("day_missing") else str(d.day)
    else:
        out["dob"] = date_text(d, src.dates, year_only)
    if src.full_name == "first last":
        out["name"] = " ".join(x for x in (rec["given"], rec["second"], rec["surname"]) if x)
    elif src.full_name == "last, first":
        out["name"] = f"{rec['surname']}, {rec['given']}".strip(", ")
    return out


def _csv_text(src: Source, rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=src.delimiter, lineterminator="\r\n")
    w.writerow(list(src.headers.values()))
    w.writerows(rows)
    return buf.getvalue().encode(src.encoding, errors="replace")


# ------------------------------------------------------------------ the profiles
def _h(*pairs: str) -> dict[str, str]:
    """_h("id:Customer ID", "given:First Name") -> {"id": "Customer ID", "given": "First Name"}."""
    return dict(p.split(":", 1) for p in pairs)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            "few_fields",
            Locale,
            (
                Source(
                    "shop_customers",
                    _h(
                        "id:Customer ID",
                        "given:First Name",
                        "surname:Surname",
                        "dob:Date of Birth",
                        "town:City",
                        "email:Email",
                    ),
                    dates="dmy",
                    id_format="SC{n:06d}",
                ),
                Source(
                    "newsletter_signups",
                    _h(
                        "id:id",
                        "given:first_name",
                        "surname:last_name",
                        "dob:birthday",
                        "town:town",
                        "email:email_address",
                    ),
                    dates="iso",
                    encoding="utf-8-sig",
                ),
                Source(
                    "loyalty_app",
                    _h(
                        "id:Member ID",
                        "given:Forename",
                        "surname:Family Name",
                        "dob:DOB",
                        "town:Town/City",
                        "email:E-mail",
                    ),
                    dates="dmon",
                    id_format="LA-{n}",
                ),
            ),
            groups={"twins": 0.03, "household": 0.05, "common_name": 0.03, "jr_sr": 0.01},
            dup_share=0.4,
            extra=(1, 1, 2, 3),
            noise={
                "name_typo": 0.35,
                "swap": 0.15,
                "nickname": 0.1,
                "email_missing": 0.25,
                "email_new": 0.15,
                "email_typo": 0.05,
                "dob_typo": 0.04,
                "dob_swap": 0.03,
                "dob_missing": 0.05,
                "town_variant": 0.15,
                "moved": 0.08,
                "upper": 0.05,
            },
            first_missing=0.08,
        ),
        Profile(
            "name_dob_postcode",
            UsLocale,
            (
                Source(
                    "clinic_a_patients",
                    _h("id:Patient ID", "given:Given Name", "surname:Surname", "dob:DOB", "postcode:ZIP"),
                    dates="mdy",
                    id_format="P{n:07d}",
                ),
                Source(
                    "clinic_b_patients",
                    _h(
                        "id:record_id",
                        "given:given_name",
                        "surname:family_name",
                        "dob:date_of_birth",
                        "postcode:postal_code",
                    ),
                    dates="ymd8",
                    delimiter="|",
                    id_format="B-{n}",
                ),
            ),
            groups={"twins": 0.04, "household": 0.06, "common_name": 0.04, "jr_sr": 0.02},
            dup_share=0.5,
            extra=(1, 1, 2),
            noise={
                "name_typo": 0.15,
                "nickname": 0.12,
                "swap": 0.03,
                "initial": 0.05,
                "dob_typo": 0.06,
                "dob_swap": 0.04,
                "dob_missing": 0.03,
                "postcode_typo": 0.05,
                "moved": 0.12,
                "postcode_missing": 0.04,
            },
            first_missing=0.02,
        ),
        Profile(
            "split_dob",
            GermanLocale,
            (
                Source(
                    "residents_2019",
                    _h(
                        "id:rec_id",
                        "given:forename",
                        "second:second_forename",
                        "surname:surname",
                        "birth_year:birth_year",
                        "birth_month:birth_month",
                        "birth_day:birth_day",
                        "sex:sex",
                        "postcode:postcode",
                        "town:city",
                    ),
                    dates="split",
                    delimiter=";",
                    id_format="rec-{n}-a",
                    sex=("m", "w"),
                ),
                Source(
                    "residents_2023",
                    _h(
                        "id:rec_id",
                        "given:Forename",
                        "second:Second Forename",
                        "surname:Surname",
                        "birth_year:Birth Year",
                        "birth_month:Birth Month",
                        "birth_day:Birth Day",
                        "sex:Sex",
                        "postcode:Postcode",
                        "town:City",
                    ),
                    dates="split",
                    delimiter=";",
                    encoding="cp1252",
                    id_format="rec-{n}-b",
                ),
            ),
            groups={"twins": 0.05, "household": 0.06, "common_name": 0.04, "jr_sr": 0.02},
            dup_share=0.35,
            extra=(1, 1, 2),
            noise={
                "second_dropped": 0.25,
                "second_in_first": 0.15,
                "translit": 0.2,
                "name_typo": 0.12,
                "nickname": 0.05,
                "dob_swap": 0.03,
                "dob_typo": 0.04,
                "day_missing": 0.04,
                "moved": 0.1,
                "postcode_typo": 0.03,
                "town_variant": 0.1,
                "sex_missing": 0.05,
                "swap": 0.02,
            },
            first_missing=0.02,
        ),
        Profile(
            "old_dob",
            VictorianLocale,
            (
                Source(
                    "baptisms_transcribed",
                    _h(
                        "id:Ref",
                        "given:Forename",
                        "surname:Surname",
                        "sex:Sex",
                        "dob:Date of Birth",
                        "postcode:Postcode",
                        "occupation:Occupation",
                    ),
                    dates="dmon",
                    id_format="BAP/{n}",
                    sex=("Male", "Female"),
                ),
                Source(
                    "census_index",
                    _h(
                        "id:ID",
                        "given:given_name",
                        "surname:surname",
                        "sex:gender",
                        "dob:dob",
                        "postcode:post code",
                        "occupation:occupation",
                    ),
                    dates="dmy",
                    id_format="CEN{n:06d}",
                    sex=("m", "f"),
                ),
            ),
            groups={"jr_sr": 0.05, "twins": 0.03, "household": 0.06, "common_name": 0.05},
            dup_share=0.45,
            extra=(1, 1, 2),
            noise={
                "abbreviation": 0.2,
                "surname_variant": 0.2,
                "name_typo": 0.1,
                "year_shift": 0.2,
                "year_only": 0.08,
                "dob_missing": 0.12,
                "dob_typo": 0.03,
                "occupation_variant": 0.3,
                "moved": 0.15,
                "sex_missing": 0.05,
            },
            first_missing=0.06,
        ),
        Profile(
            "b2b",
            BusinessLocale,
            (
                Source(
                    "crm_contacts",
                    _h(
                        "id:Contact ID",
                        "name:Name",
                        "company:Company",
                        "email:Email",
                        "phone:Office Phone",
                        "title:Job Title",
                    ),
                    full_name="first last",
                    id_format="CON-{n:05d}",
                ),
                Source(
                    "event_attendees",
                    _h(
                        "id:Attendee ID",
                        "given:First Name",
                        "surname:Last Name",
                        "company:Organisation",
                        "email:Work Email",
                        "phone:Phone",
                        "title:Position",
                    ),
                    id_format="ATT{n}",
                ),
                Source(
                    "webinar_signups",
                    _h(
                        "id:id",
                        "name:Full Name",
                        "company:Company Name",
                        "email:E-mail",
                        "phone:Telephone",
                        "title:Title",
                    ),
                    full_name="last, first",
                    encoding="utf-8-sig",
                ),
            ),
            groups={"colleagues": 0.1, "common_name": 0.03, "jr_sr": 0.01},
            dup_share=0.45,
            extra=(1, 1, 2, 3),
            noise={
                "nickname": 0.2,
                "name_typo": 0.08,
                "company_variant": 0.4,
                "email_missing": 0.15,
                "phone_missing": 0.2,
                "phone_ext": 0.3,
                "title_variant": 0.3,
                "job_change": 0.05,
                "swap": 0.02,
                "upper": 0.03,
            },
            first_missing=0.05,
        ),
    ]
}


def _locale(prof: Profile, r: random.Random, customers: int) -> Locale:
    return prof.locale(r, max(3, customers // 4)) if prof.locale is BusinessLocale else prof.locale(r)


def write_profile(name: str, customers: int, seed: int, out_dir: Path) -> dict:
    """Write the profile's exports and truth/truth.csv; same seed, same bytes."""
    prof = PROFILES[name]
    r = random.Random(f"{name}:{seed}")
    loc = _locale(prof, r, customers)
    persons = population(loc, customers, prof.groups)
    per_source: list[list[tuple[Person, dict]]] = [[] for _ in prof.sources]
    for p in persons:
        copies = 1 + (r.choice(prof.extra) if r.random() < prof.dup_share else 0)
        for k in range(copies):
            per_source[r.randrange(len(prof.sources))].append((p, noisy_record(r, p, prof, loc, k > 0)))
    out_dir.mkdir(parents=True, exist_ok=True)
    files, truth = [], []
    for src, recs in zip(prof.sources, per_source):
        r.shuffle(recs)
        base = r.randrange(1, 9) * 10**4
        rows = []
        for i, (p, rec) in enumerate(recs):
            rid = src.id_format.format(n=base + i)
            text = render(rec, src, r)
            rows.append([rid if f == "id" else text.get(f, "") for f in src.headers])
            truth.append((src.name, rid, p.entity_id, p.scenario, p.group_id))
        path = out_dir / f"{src.name}.csv"
        path.write_bytes(_csv_text(src, rows))
        files.append(path)
    truth_path = out_dir / "truth" / "truth.csv"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    with truth_path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["source", "source_record_id", "entity_id", "scenario", "group_id"])
        w.writerows(truth)
    return {"files": [str(p) for p in files], "truth": str(truth_path), "rows": len(truth)}
