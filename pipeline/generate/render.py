"""Render entities as rows of the three legacy exports, each with its own formats and noise.

One row per (customer, system) plus within-system duplicates; every value goes through the
formatting habits of that system (GBK Hanzi CSV, BOM US CSV, numeric-phone Excel).
"""

from __future__ import annotations

import random
from functools import lru_cache
from datetime import date, datetime, timedelta

import numpy as np

from . import pools as P
from .entities import Entities, _char_tables, ascii_name, given_syllables, to_traditional

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
PLACEHOLDERS_TEXT = ["n/a", "N/A", "-", "NULL", "none", "未知"]
PLACEHOLDER_PHONES = ["000-000-0000", "0000000000", "n/a", "123", "1234567"]
PLACEHOLDER_EMAILS = ["n/a", "test@test.com", "none@none.com", "noemail@example.com"]

# Per-record noise rates (a user of the generator can read the realism knobs here).
RATES = {
    "missing": 0.08,
    "placeholder": 0.2,
    "name_typo": 0.03,
    "nickname": 0.12,
    "email_domain_typo": 0.02,
    "gmail_variant": 0.15,
    "case_noise": 0.05,
    "space_noise": 0.04,
    "fullwidth": 0.04,
    "traditional": 0.12,
    "day_month_swap": 0.01,
    "email_typo": 0.02,
}  # "placeholder": share of the missing values written as n/a, 000-000-0000, test@test.com ...

# The crm_names profile: the CRM exports with name noise turned up (accented names typed without
# accents, nicknames, Hanzi homophone typos, traditional Hanzi, pinyin instead of Hanzi, names in
# capitals, spreadsheet formulas pasted into a duplicate's name field).
NAME_RATES = {
    **RATES,
    "nickname": 0.3,
    "name_typo": 0.06,
    "case_noise": 0.15,
    "traditional": 0.3,
    "accent_drop": 0.4,
    "hanzi_typo": 0.06,
    "sales_hanzi": 0.5,
    "formula_name": 0.02,
}
FORMULA_PAYLOADS = ["@SUM(1+1)*cmd|' /c calc'!A0", '=HYPERLINK("http://x","y")', "+cmd|'/c calc'!A1", "<b>x</b>"]


class Noise:
    """Seeded per-record variation; all randomness of the rendering goes through here."""

    def __init__(self, seed: int, rates: dict | None = None):
        self.r = random.Random(seed)
        self.rates = rates or RATES

    def p(self, key: str) -> bool:
        return self.r.random() < self.rates[key]

    def maybe(self, key: str) -> bool:
        """Like p() for the profile-only knobs: a knob the rates do not set draws nothing, so the
        crm profile's output stays byte-for-byte the same."""
        rate = self.rates.get(key, 0.0)
        return rate > 0 and self.r.random() < rate

    def formula(self, name: str) -> str:
        """crm_names: a spreadsheet formula or markup pasted over the name."""
        return self.pick(FORMULA_PAYLOADS) if self.maybe("formula_name") else name

    def pick(self, seq):
        return seq[int(self.r.random() * len(seq))]

    def typo(self, s: str) -> str:
        """One edit (substitute, delete, insert, transpose) inside the word, never the first letter."""
        if len(s) < 4:
            return s
        i = 1 + int(self.r.random() * (len(s) - 2))
        op = int(self.r.random() * 4)
        c = self.pick("aeiounrst")
        if op == 0:
            return s[:i] + c + s[i + 1 :]
        if op == 1:
            return s[:i] + s[i + 1 :]
        if op == 2:
            return s[:i] + c + s[i:]
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]

    def email(self, email: str) -> str:
        local, dom = email.split("@")
        if dom == "gmail.com" and self.p("gmail_variant"):
            if self.r.random() < 0.5 and len(local) > 3:
                j = 1 + int(self.r.random() * (len(local) - 2))
                local = local[:j] + "." + local[j:] if local[j - 1] != "." and local[j] != "." else local
            else:
                local = f"{local}+{self.pick(['shop', 'news', 'crm', 'promo'])}"
        if self.p("email_domain_typo") and dom in P.EMAIL_DOMAIN_TYPOS:
            dom = self.pick(P.EMAIL_DOMAIN_TYPOS[dom])
        elif self.p("email_typo"):
            local = self.typo(local)
        out = f"{local}@{dom}"
        if self.p("case_noise"):
            out = out.upper() if self.r.random() < 0.3 else out[0].upper() + out[1:]
        if self.p("space_noise"):
            out = f" {out} "
        return out

    def blank(self, value: str, placeholders=PLACEHOLDERS_TEXT) -> str:
        """Missing field: mostly empty, sometimes a placeholder that must not define an entity."""
        if self.p("missing"):
            return self.pick(placeholders) if self.r.random() < RATES["placeholder"] else ""
        return value


def cn_mobile_text(d: str, style: int) -> str:
    return [f"{d[:3]} {d[3:7]} {d[7:]}", f"+86 {d}", f"0086-{d}", d, f"+86-{d[:3]}-{d[3:7]}-{d[7:]}", d][style % 6]


def us_phone_text(d: str, style: int) -> str:
    return [
        f"({d[:3]}) {d[3:6]}-{d[6:]}",
        f"{d[:3]}.{d[3:6]}.{d[6:]}",
        f"+1 {d[:3]} {d[3:6]} {d[6:]}",
        f"{d[:3]}-{d[3:6]}-{d[6:]}",
        d,
        f"1-{d[:3]}-{d[3:6]}-{d[6:]}",
    ][style % 6]


def cn_landline_text(d: str, style: int) -> str:
    ac = 3 if d.startswith(("010", "02")) else 4
    return [f"{d[:ac]}-{d[ac:]}", f"({d[:ac]}){d[ac:]}", d, f"+86 {d[1:ac]} {d[ac:]}"][style % 4]


def phone_text(d: str, is_cn: bool, landline: bool, noise: Noise) -> str:
    style = int(noise.r.random() * 6)
    if not is_cn:
        return us_phone_text(d, style)
    return cn_landline_text(d, style) if landline else cn_mobile_text(d, style)


def us_street(a: tuple, noise: Noise, unit: bool = True) -> str:
    suffix = noise.pick(P.US_STREET_SUFFIXES[a[3]])
    s = f"{a[4]} {a[2]} {suffix}"
    if unit and a[5]:
        s += ("" if noise.r.random() < 0.5 else ",") + " " + noise.pick(P.US_UNIT_FORMS).format(n=a[5])
    return s


def cn_street(a: tuple, noise: Noise, with_prefix: bool) -> str:
    pl = P.CN_PLACES[a[1]]
    s = f"{a[2]}{a[3]}{a[4]}号" + (f"{a[5]}室" if a[5] else "")
    if with_prefix:
        s = (pl[0] if pl[0] == pl[1] else pl[0] + pl[1]) + s
    return s


@lru_cache(maxsize=4096)
def place_pinyin(text: str) -> str:
    """天河路 -> Tianhe Lu (street words get their own capital), once per distinct place name."""
    from pypinyin import lazy_pinyin

    for word, english in (("大道", " Dadao"), ("大街", " Dajie"), ("路", " Lu"), ("街", " Jie"), ("道", " Dao")):
        if text.endswith(word) and len(text) > len(word):
            return "".join(lazy_pinyin(text[: -len(word)])).capitalize() + english
    return "".join(lazy_pinyin(text)).capitalize()


def cn_street_pinyin(a: tuple) -> str:
    district = a[2][:-1] if a[2].endswith(("区", "县")) and len(a[2]) > 2 else a[2]
    return f"{a[4]} {place_pinyin(a[3])}, {place_pinyin(district)} District"


def py_given(syllables: list[str], hyphen: bool) -> str:
    if hyphen and len(syllables) > 1:
        return syllables[0].capitalize() + "-" + "".join(syllables[1:])
    return "".join(syllables).capitalize()


def as_date(d: np.datetime64) -> date:
    return date.fromisoformat(str(d))


def dob_cn_text(d: date, noise: Noise) -> str:
    k = int(noise.r.random() * 4)
    return [
        f"{d.year}年{d.month}月{d.day}日",
        f"{d.year}/{d.month}/{d.day}",
        d.isoformat(),
        f"{d.year}.{d.month}.{d.day}",
    ][k]


def dob_us_text(d: date, noise: Noise) -> str:
    m, dd = d.month, d.day
    if noise.p("day_month_swap") and dd <= 12 and dd != m:
        m, dd = dd, m
    return f"{m:02d}/{dd:02d}/{d.year}" if noise.r.random() < 0.85 else f"{m}/{dd}/{d.year}"


def created_at(noise: Noise, old: bool = False) -> datetime:
    """Record timestamp; a record still showing a moved customer's old address and mobile was
    last touched before the move (2010-2015), every other record later (2016-2024)."""
    start, years = (datetime(2010, 1, 1), 6) if old else (datetime(2016, 1, 1), 9)
    return start + timedelta(seconds=int(noise.r.random() * years * 365 * 86400))


class Record:
    """What one system knows about one customer at export time (before formatting)."""

    __slots__ = ("e", "system", "old")

    def __init__(self, e: int, system: int, old: bool):
        self.e, self.system, self.old = e, system, old


def first_name_variant(ents: Entities, e: int, noise: Noise) -> str:
    f = ents.first[e]
    if not ents.is_cn[e] and f in P.NICKNAMES and ents.scenario[e] not in ("jr_sr",) and noise.p("nickname"):
        f = noise.pick(P.NICKNAMES[f])
    elif not ents.is_cn[e] and noise.p("name_typo"):
        f = noise.typo(f)
    return _accent_dropped(f, noise)


def last_name_variant(ents: Entities, e: int, noise: Noise) -> str:
    last = ents.last[e]
    if not ents.is_cn[e] and noise.p("name_typo"):
        last = noise.typo(last)
    return _accent_dropped(last, noise)


def _gbk_ok(text: str) -> bool:
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def _accent_dropped(name: str, noise: Noise) -> str:
    """crm_names: an accented name typed without its accents (Lucía -> Lucia)."""
    if not name.isascii() and noise.maybe("accent_drop"):
        return ascii_name(name)
    return name


@lru_cache(maxsize=1)
def _homophones() -> dict[str, list[str]]:
    """Given-name characters by pinyin reading: 军 -> [君, 均 ...] (a Hanzi typed by its sound)."""
    pinyin, _, _ = _char_tables()
    by_sound: dict[str, list[str]] = {}
    for c in P.CN_GIVEN_CHARS:
        by_sound.setdefault(pinyin.get(c, c), []).append(c)
    return {c: [o for o in by_sound[pinyin.get(c, c)] if o != c] for c in P.CN_GIVEN_CHARS}


def _hanzi_typo(given: str, noise: Noise) -> str:
    """crm_names: one given-name character replaced by a homophone (张军艳 -> 张君艳)."""
    if not noise.maybe("hanzi_typo"):
        return given
    i = int(noise.r.random() * len(given))
    others = _homophones().get(given[i], [])
    return given[:i] + noise.pick(others) + given[i + 1 :] if others else given


def hanzi_name(ents: Entities, e: int, noise: Noise) -> str:
    name = ents.last[e] + _hanzi_typo(ents.first[e], noise)
    if noise.p("traditional"):
        name = to_traditional(name)
    if noise.p("space_noise"):
        name = name[: len(ents.last[e])] + " " + name[len(ents.last[e]) :]
    return name


def email_of(ents: Entities, r: Record, noise: Noise) -> str:
    """The customer's e-mail as this system has it: sometimes the second address, with noise."""
    e = r.e
    email = ents.alt_email[e] if ents.alt_email[e] and r.system != 0 and noise.r.random() < 0.6 else ents.email[e]
    return noise.email(email)


def contact(ents: Entities, r: Record) -> tuple[tuple, str]:
    old_addr, old_mobile = ents.old_addr[r.e], ents.old_mobile[r.e]
    if r.old and old_addr is not None and old_mobile is not None:  # _moved sets both or neither
        return old_addr, old_mobile
    return ents.addr[r.e], ents.mobile[r.e]


def suffix_text(ents: Entities, e: int, noise: Noise) -> str:
    s = ents.suffix[e]
    if not s or noise.r.random() < 0.25:  # the suffix is often simply not captured
        return ""
    return " " + noise.pick([s, s + ".", s.upper()] if s == "Jr" else [s, s + ".", "Senior"])


# ----------------------------------------------------------------------------------- systems
CN_HEADERS = [
    "客户编号",
    "姓名",
    "性别",
    "手机",
    "电话",
    "邮箱",
    "出生日期",
    "省份",
    "城市",
    "地址",
    "邮编",
    "创建时间",
]


def cn_row(ents: Entities, r: Record, noise: Noise) -> list[str]:
    e = r.e
    a, mob = contact(ents, r)
    cn = bool(ents.is_cn[e])
    if cn:
        name = hanzi_name(ents, e, noise)
        gender = "女" if ents.gender[e] == "F" else "男"
    else:
        name = f"{first_name_variant(ents, e, noise)} {last_name_variant(ents, e, noise)}{suffix_text(ents, e, noise)}"
        name = name if _gbk_ok(name) else ascii_name(name)  # a GBK system has no Ñ, Á ...: it loses the accents
        gender = noise.pick(["女", "F"]) if ents.gender[e] == "F" else noise.pick(["男", "M"])
    mobile = phone_text(mob, cn, False, noise)
    if noise.p("fullwidth"):
        mobile = mobile.translate(FULLWIDTH)
    landline = phone_text(ents.landline[e], cn, True, noise) if ents.landline[e] else ""
    if a[0] == "cn":
        pl = P.CN_PLACES[a[1]]
        province, city = pl[0], pl[1]
        if noise.r.random() < 0.3:
            province, city = province.rstrip("省市"), city.rstrip("市")
        address = cn_street(a, noise, with_prefix=noise.r.random() < 0.15)
    else:
        pl = P.US_PLACES[a[1]]
        province, city = (pl[1] if noise.r.random() < 0.6 else P.US_STATE_NAMES[pl[1]]), pl[0]
        address = us_street(a, noise)
    return [
        "",
        noise.formula(name),
        noise.blank(gender),
        noise.blank(mobile, PLACEHOLDER_PHONES),
        landline,
        noise.blank(email_of(ents, r, noise), PLACEHOLDER_EMAILS),
        noise.blank(dob_cn_text(as_date(ents.dob[e]), noise)),
        noise.blank(province),
        noise.blank(city),
        noise.blank(address),
        noise.blank(a[6]),
        created_at(noise, r.old).strftime("%Y-%m-%d %H:%M:%S"),
    ]


WEB_HEADERS = [
    "Customer ID",
    "First Name",
    "Last Name",
    "Email",
    "Phone",
    "DOB",
    "Street",
    "City",
    "State",
    "ZIP",
    "Country",
    "Last Modified",
]


def web_row(ents: Entities, r: Record, noise: Noise) -> list[str]:
    e = r.e
    a, mob = contact(ents, r)
    cn = bool(ents.is_cn[e])
    if cn:  # pinyin, either order, sometimes SURNAME in capitals or a hyphenated given name
        sur = ents.last_py[e].capitalize()
        given = py_given(given_syllables(ents.first[e]), hyphen=noise.r.random() < 0.12)
        k = noise.r.random()
        if k < 0.2:  # surname first, sometimes in capitals: "XIE", "Xue-dong"
            first, last = (sur.upper() if noise.r.random() < 0.4 else sur), given
        elif k < 0.32:
            first, last = given, sur.upper()
        else:
            first, last = given, sur
    else:
        first = first_name_variant(ents, e, noise)
        last = last_name_variant(ents, e, noise) + suffix_text(ents, e, noise)
    if noise.p("case_noise"):
        first = first.upper()
    first = noise.formula(first)
    phone_digits = mob if (mob and noise.r.random() < 0.85) or not ents.landline[e] else ents.landline[e]
    if cn:
        phone = (
            (f"+86 {cn_mobile_text(phone_digits, 0)}" if noise.r.random() < 0.5 else f"+86{phone_digits}")
            if phone_digits == mob
            else f"+86 {phone_digits[1:]}"
        )
    else:
        phone = us_phone_text(phone_digits, int(noise.r.random() * 6))
    if a[0] == "cn":
        pl = P.CN_PLACES[a[1]]
        street, city, state, country = cn_street_pinyin(a), pl[2], pl[3], noise.pick(["China", "CN", "PRC"])
    else:
        pl = P.US_PLACES[a[1]]
        street, city, state = us_street(a, noise), pl[0], pl[1]
        country = noise.pick(["USA", "US", "United States", ""])
    zip_code = a[6]
    if a[0] == "us" and noise.r.random() < 0.1:
        zip_code = f"{zip_code}-{int(noise.r.random() * 9000) + 1000}"
    return [
        "",
        first,
        last,
        noise.blank(email_of(ents, r, noise), PLACEHOLDER_EMAILS),
        noise.blank(phone, PLACEHOLDER_PHONES),
        noise.blank(dob_us_text(as_date(ents.dob[e]), noise)),
        noise.blank(street),
        noise.blank(city),
        noise.blank(state),
        noise.blank(zip_code),
        country,
        created_at(noise, r.old).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]


SALES_HEADERS = {
    "Accounts": ["ID", "Name", "Mobile", "E-mail", "Birthday", "Address", "Company", "Created"],
    "Leads": ["Name", "E-mail", "Mobile", "Company", "Address", "Birthday", "Created", "ID"],
}


def sales_row(ents: Entities, r: Record, noise: Noise) -> dict:
    """Values keyed by header; phones as int (Excel numbers), dates as date/datetime cells."""
    e = r.e
    a, mob = contact(ents, r)
    cn = bool(ents.is_cn[e])
    if cn and noise.r.random() < noise.rates.get("sales_hanzi", 0.7):
        name = hanzi_name(ents, e, noise)
    elif cn:
        name = f"{py_given(given_syllables(ents.first[e]), False)} {ents.last_py[e].capitalize()}"
    else:
        f, last, suf = (
            first_name_variant(ents, e, noise),
            last_name_variant(ents, e, noise),
            suffix_text(ents, e, noise),
        )
        k = noise.r.random()
        if k < 0.25:
            name = f"{last}, {f}{suf}"
        elif k < 0.35:
            title = noise.pick(P.TITLES_FEMALE if ents.gender[e] == "F" else P.TITLES_MALE)
            name = f"{title} {f} {last}{suf}"
        else:
            name = f"{f} {last}{suf}"
    if cn:
        phone: object = int(("86" if noise.r.random() < 0.3 else "") + mob)
    else:
        phone = int(("1" if noise.r.random() < 0.2 else "") + mob)
    if noise.r.random() < 0.1:  # some rows typed the phone as text after all
        phone = phone_text(mob, cn, False, noise)
    if not mob or noise.p("missing"):
        phone = int(ents.landline[e]) if ents.landline[e] and noise.r.random() < 0.5 else None
    if a[0] == "cn":
        address = cn_street(a, noise, with_prefix=True)
    else:
        pl = P.US_PLACES[a[1]]
        address = f"{us_street(a, noise)}, {pl[0]}, {pl[1]} {a[6]}"
    dob = as_date(ents.dob[e])
    birthday: object = None if noise.p("missing") else dob
    if birthday is not None and noise.r.random() < 0.05:
        birthday = dob.strftime("%m/%d/%Y") if not cn else dob.isoformat()  # typed as text
    return {
        "ID": "",
        "Name": noise.formula(name),
        "Mobile": phone,
        "E-mail": noise.blank(email_of(ents, r, noise), PLACEHOLDER_EMAILS),
        "Birthday": birthday,
        "Address": noise.blank(address),
        "Company": ents.company[e] or None,
        "Created": created_at(noise, r.old),
    }
