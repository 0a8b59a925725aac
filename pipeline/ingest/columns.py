"""Automatic header → canonical field mapping (English and Chinese header names).

Headers are compared in a normal form (NFKC, traditional → simplified Chinese, lower case, no
spaces or punctuation), so "E-Mail Address", "email_address" and "电子邮箱" need no
configuration. rules/columns.yaml may replace the alias list of any field; a field it does not
mention keeps the built-in list below.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from ..errors import RulesError
from ..schema import CANONICAL_FIELDS
from ..settings import Rules

DEFAULT_ALIASES: dict[str, list[str]] = {
    "record_id": ["id", "customer id", "cust id", "customer no", "customer number", "client id",
                  "contact id", "account id", "member id", "record id", "客户编号", "客户ID", "客户号",
                  "编号", "会员号", "会员编号", "客户代码", "ID号"],
    "full_name": ["name", "full name", "customer name", "client name", "contact name", "姓名",
                  "客户姓名", "客户名称", "名称", "联系人", "联系人姓名"],
    "first_name": ["first name", "given name", "fname", "forename", "名"],
    "last_name": ["last name", "surname", "family name", "lname", "姓"],
    "gender": ["gender", "sex", "性别"],
    "email": ["email", "e-mail", "email address", "mail", "e-mail address", "邮箱", "电子邮件",
              "电子邮箱", "邮件", "邮箱地址"],
    "mobile": ["mobile", "cell", "cell phone", "mobile phone", "mobile number", "cellphone", "手机",
               "手机号", "手机号码", "移动电话"],
    "landline": ["landline", "home phone", "work phone", "office phone", "tel", "telephone", "电话",
                 "固定电话", "座机", "办公电话", "家庭电话"],
    "phone": ["phone", "phone number", "contact number", "phone no", "联系电话", "电话号码",
              "联系方式"],
    "birth_date": ["dob", "birth date", "birthday", "date of birth", "birthdate", "出生日期", "生日",
                   "出生年月"],
    "national_id": ["national id", "national id number", "national identification number", "ssn",
                    "social security number", "social security no", "soc sec id", "soc sec no", "sin",
                    "social insurance number", "nino", "ni number", "national insurance number",
                    "national insurance no", "id card", "id card number", "identity card number",
                    "identity number", "citizen id", "身份证", "身份证号", "身份证号码", "公民身份号码",
                    "身份证件号码", "身份号码", "证件号", "证件号码"],
    "address": ["address", "street", "street address", "address1", "address line 1", "addr",
                "mailing address", "地址", "详细地址", "住址", "街道", "联系地址", "通讯地址"],
    "city": ["city", "town", "城市", "市"],
    "state": ["state", "province", "region", "state province", "省", "省份"],
    "postal_code": ["zip", "zip code", "zipcode", "postal code", "postcode", "邮编", "邮政编码"],
    "country": ["country", "country code", "国家", "国家地区"],
    "company": ["company", "organization", "organisation", "employer", "company name", "公司",
                "单位", "工作单位", "公司名称"],
    "created_at": ["created", "created at", "create date", "created date", "date created",
                   "signup date", "创建时间", "注册时间", "创建日期", "注册日期"],
    "updated_at": ["updated", "updated at", "last modified", "modified", "last updated",
                   "更新时间", "修改时间", "最后更新"],
}

# Tried only when the whole header is not an alias: "Customer Email" → "email".
DEFAULT_PREFIXES: list[str] = ["customer", "cust", "client", "contact", "primary", "客户", "会员"]

_NON_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=1)
def _t2s():
    import opencc  # imported lazily: only header names are converted

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=4096)
def normalize_header(header: str) -> str:
    """Comparable form of a header: NFKC, simplified Chinese, lower case, letters/digits only."""
    text = unicodedata.normalize("NFKC", str(header)).strip().lower()
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        text = _t2s().convert(text)
    return _NON_WORD.sub("", text)


class HeaderMapper:
    """Maps one table's headers to canonical fields using aliases and per-source overrides."""

    def __init__(self, rules: Rules):
        path = (rules.directory or Path("rules")) / "columns.yaml"
        section = rules.columns or {}
        aliases = dict(DEFAULT_ALIASES)
        configured = section.get("aliases") or {}
        if not isinstance(configured, dict):
            raise RulesError(path, "'aliases' must map a canonical field to a list of header names")
        for fld, names in configured.items():
            if fld not in CANONICAL_FIELDS:
                raise RulesError(path, f"aliases: unknown field '{fld}' (fields: {', '.join(CANONICAL_FIELDS)})")
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list):
                raise RulesError(path, f"aliases.{fld} must be a list of header names")
            aliases[fld] = [str(n) for n in names]
        prefixes = section.get("strip_prefixes", DEFAULT_PREFIXES)
        if not isinstance(prefixes, list):
            raise RulesError(path, "'strip_prefixes' must be a list")
        self.lookup: dict[str, str] = {}
        for fld in CANONICAL_FIELDS:  # field order decides a (rare) alias listed under two fields
            for name in aliases.get(fld, []):
                self.lookup.setdefault(normalize_header(name), fld)
        self.prefixes = sorted({normalize_header(p) for p in prefixes if normalize_header(p)}, key=len, reverse=True)

    def guess(self, header: str) -> str | None:
        """The canonical field a header names, or None."""
        key = normalize_header(header)
        if not key:
            return None
        if key in self.lookup:
            return self.lookup[key]
        for prefix in self.prefixes:
            if key.startswith(prefix) and key[len(prefix):] in self.lookup:
                return self.lookup[key[len(prefix):]]
        return None

    def map_headers(
        self, headers: list[str], overrides: dict[str, str | None], id_column: str | None
    ) -> dict[str, str | None]:
        """{header: field or None}. Explicit settings (id_column, per-source `columns`) win over
        aliases; when two headers name the same field the first wins and the other stays extra."""
        wanted = {normalize_header(h): t for h, t in overrides.items()}
        if id_column is not None:
            wanted[normalize_header(id_column)] = "record_id"
        mapping: dict[str, str | None] = {h: None for h in headers}
        taken: set[str] = set()
        explicit: set[str] = set()
        for header in headers:  # pass 1: explicit settings
            key = normalize_header(header)
            if key in wanted:
                explicit.add(header)
                target = wanted[key]
                if target is not None and target not in taken:
                    mapping[header] = target
                    taken.add(target)
        for header in headers:  # pass 2: aliases, first header wins
            if header in explicit:
                continue
            target = self.guess(header)
            if target is not None and target not in taken:
                mapping[header] = target
                taken.add(target)
        return mapping
