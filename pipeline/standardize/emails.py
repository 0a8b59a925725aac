"""E-mail addresses: normalized `email_std` plus a looser `email_key` used only for matching.

A cheap regex rejects obvious junk before email-validator runs (each distinct value is
validated once by the caller). Local parts are lower-cased too: almost every provider treats
them case-insensitively and CRMs disagree on case, so keeping case would split people.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from .. import config_defaults
from .text import clean_text, flag_for

_PRECHECK_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# Plain lower-case ASCII addresses that email-validator always accepts unchanged: skip it.
_PLAIN_RE = re.compile(
    r"^[a-z0-9_%+\-](?:[a-z0-9._%+\-]{0,62}[a-z0-9_%+\-])?@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.){1,8}[a-z]{2,24}$"
)
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test", "internal", "example"})
_ANGLE_RE = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")
_FIND_RE = re.compile(r"[^\s<>,;:\"()\[\]]+@[^\s<>,;:\"'()\[\]]+")
_STRAY_SPACE_RE = re.compile(r"\s*([@.])\s*")
_SPACE_CHAR_RE = re.compile(r"\s")

DEFAULT_DOMAIN_TYPOS = dict(config_defaults.EMAIL_DOMAIN_TYPOS)  # one copy: crmclean.config_defaults
DEFAULT_PLACEHOLDERS = tuple(config_defaults.EMAIL_PLACEHOLDERS)
DEFAULT_PLACEHOLDER_PATTERNS = tuple(config_defaults.EMAIL_PLACEHOLDER_PATTERNS)
DEFAULT_PLUS_TAG_DOMAINS = tuple(config_defaults.EMAIL_PLUS_TAG_DOMAINS)
DEFAULT_DOT_FREE_DOMAINS = tuple(config_defaults.EMAIL_DOT_FREE_DOMAINS)


def email_config(cfg: dict | None) -> tuple:
    """Rules section → hashable config tuple (so results can be cached per distinct value)."""
    cfg = cfg or {}
    typos = dict(DEFAULT_DOMAIN_TYPOS)
    typos.update({str(k).lower(): str(v).lower() for k, v in (cfg.get("domain_typos") or {}).items()})
    placeholders = tuple(str(p).lower() for p in cfg.get("placeholders", DEFAULT_PLACEHOLDERS))
    patterns = tuple(cfg.get("placeholder_patterns", DEFAULT_PLACEHOLDER_PATTERNS))
    plus = tuple(cfg.get("plus_tag_domains", DEFAULT_PLUS_TAG_DOMAINS))
    dots = tuple(cfg.get("dot_free_domains", DEFAULT_DOT_FREE_DOMAINS))
    return tuple(sorted(typos.items())), placeholders, patterns, plus, dots


@lru_cache(maxsize=64)
def _compiled(patterns: tuple) -> re.Pattern | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


def _extract(text: str) -> tuple[str, tuple[str, ...]]:
    """`mailto:`, `Name <a@b.com>`, several addresses in one cell → one candidate."""
    codes = []
    m = _ANGLE_RE.search(text)
    if m:
        return m.group(1), ("changed",)
    low = text.lower()
    if low.startswith("mailto:"):
        text = text[7:]
    if _SPACE_CHAR_RE.search(text):  # without one, every match would be replaced by itself
        text = _STRAY_SPACE_RE.sub(r"\1", text)  # "john @gmail. com": spaces next to @ or . are typos
    found = _FIND_RE.findall(text)
    if len(found) > 1:
        codes.append("multiple")
    if found:
        return found[0].strip("."), tuple(codes)
    return text.replace(" ", ""), tuple(codes)


def email_key(email_std: str | None, config: tuple = ()) -> str | None:
    """Match key: gmail/googlemail dots and `+tags` dropped, googlemail → gmail."""
    if not email_std:
        return None
    plus = config[3] if config else DEFAULT_PLUS_TAG_DOMAINS
    dots = config[4] if config else DEFAULT_DOT_FREE_DOMAINS
    local, _, domain = email_std.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except Exception:  # keep the unicode form if IDNA refuses it
        pass
    if domain in plus:
        local = local.split("+", 1)[0]
    if domain in dots:
        local = local.replace(".", "")
    if domain == "googlemail.com":
        domain = "gmail.com"
    return f"{local}@{domain}"


@lru_cache(maxsize=300_000)
def standardize_email(raw, config: tuple | None = None) -> tuple[str | None, str | None, str]:
    """raw → (email_std, email_key, flag). Never raises."""
    config = config or email_config(None)
    typos, placeholders, patterns, _, _ = config
    text, cell_codes = clean_text(raw)
    if text is None:
        return None, None, flag_for(raw, None, cell_codes)
    codes: list[str] = list(cell_codes)
    low = text.lower()
    if low in placeholders:
        return None, None, flag_for(raw, None, codes + ["placeholder"])
    candidate, extract_codes = _extract(text)
    codes.extend(c for c in extract_codes if c != "changed")
    if not _PRECHECK_RE.match(candidate):
        return None, None, flag_for(raw, None, codes + ["invalid"])
    local, _, domain = candidate.rpartition("@")
    domain = domain.lower().rstrip(".")
    fixed = dict(typos).get(domain)
    if fixed:
        domain = fixed
        codes.append("typo_fixed")
    candidate = f"{local.lower()}@{domain}"
    pattern = _compiled(patterns)
    if candidate in placeholders or (pattern is not None and pattern.search(candidate)):
        return None, None, flag_for(raw, None, codes + ["placeholder"])
    if "+" in local and domain in config[3]:
        codes.append("plus_tag")  # a sub-address of the same mailbox: survivorship prefers the plain one
    std = candidate if _is_plain(candidate) else _validated(candidate)
    if std is None:
        return None, None, flag_for(raw, None, codes + ["invalid"])
    return std, email_key(std, config), flag_for(raw, std, codes)


def _is_plain(candidate: str) -> bool:
    """A plain lower-case ASCII address that email-validator accepts unchanged (so it need not
    run; tests/test_standardize_fast_paths.py compares the two on generated addresses)."""
    return bool(
        len(candidate) <= 200  # email-validator caps the address (254) and the domain (253)
        and _PLAIN_RE.match(candidate)
        and ".." not in candidate
        and "--" not in candidate.rpartition("@")[2]  # it refuses "ab--" labels that are not Punycode
        and candidate.rsplit(".", 1)[1] not in _SPECIAL_TLDS
    )


def _validated(candidate: str) -> str | None:
    """email-validator's normalized address, lower-cased; None when it rejects it."""
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except (EmailNotValidError, Exception):
        return None
    return f"{valid.local_part.lower()}@{valid.domain.lower()}"
