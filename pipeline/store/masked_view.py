"""The analysts' view of the master on PostgreSQL: `master_customer_masked`.

The same masking policy as every report (pipeline/masking.py: `masker_for` picks the rule per
column, each rule has a SQL twin below), so a read-only role granted only this view never sees
a full e-mail, phone, national id, name, birth date or street (README: "Erasing a person and
limiting who sees what"). tests/test_forget.py compares the view with `mask_frame` row by row.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from .. import masking
from .tables import columns_of

VIEW = "master_customer_masked"

_BLANK = r"v IS NULL OR v ~ '^\s*$'"
_TRIM = r"regexp_replace(v, '^\s+|\s+$', '', 'g')"


def _phone_function() -> str:
    """mask_phone: country code (phonenumbers' list: calling codes are prefix-free, so one
    alternation finds the code parse() finds), then the first 3 and last 4 national digits."""
    import phonenumbers

    codes = "|".join(str(c) for c in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
    return f"""
CREATE OR REPLACE FUNCTION crmclean_mask_digits(n text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN char_length(n) > 7 THEN left(n, 3) || '****' || right(n, 4)
    ELSE left(n, 1) || repeat('*', char_length(n) - 3) || right(n, 2) END
$$;
CREATE OR REPLACE FUNCTION crmclean_mask_phone(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN {_BLANK} THEN v
    WHEN char_length(d) < 7 THEN repeat('*', char_length(d))
    WHEN t LIKE '+%' AND cc IS NOT NULL
      THEN '+' || cc || ' ' || crmclean_mask_digits(ltrim(substr(d, char_length(cc) + 1), '0'))
    WHEN t LIKE '+%' THEN '+' || left(d, 2) || ' ' || crmclean_mask_digits(substr(d, 3))
    ELSE crmclean_mask_digits(d)
  END
  FROM (SELECT t, d, substring(d from '^({codes})') AS cc
        FROM (SELECT {_TRIM} AS t, regexp_replace(v, '\\D', '', 'g') AS d) AS a) AS b
$$;"""


_FUNCTIONS = rf"""
CREATE OR REPLACE FUNCTION crmclean_mask_text(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN {_BLANK} THEN v ELSE left(v, 1) || '***' END
$$;
CREATE OR REPLACE FUNCTION crmclean_mask_email(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN {_BLANK} THEN v
    WHEN position('@' in v) = 0 THEN left(v, 1) || '***'
    ELSE left(regexp_replace(v, '@[^@]*$', ''), 1) || '***@' || regexp_replace(v, '^.*@', '')
  END
$$;
CREATE OR REPLACE FUNCTION crmclean_mask_name(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN {_BLANK} THEN v
    WHEN t ~ '[\u3400-\u9fff\uf900-\ufaff]' AND position(' ' in t) = 0
      THEN left(t, 1) || repeat('*', char_length(t) - 1)
    ELSE (SELECT string_agg(left(w, 1) || repeat('*', char_length(w) - 1), ' ' ORDER BY i)
          FROM regexp_split_to_table(t, '\s+') WITH ORDINALITY AS s(w, i))
  END
  FROM (SELECT {_TRIM} AS t) AS x
$$;
CREATE OR REPLACE FUNCTION crmclean_mask_date(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN {_BLANK} THEN v WHEN v ~ '^\d{{4}}' THEN left(v, 4) || '-**-**' ELSE left(v, 1) || '***' END
$$;
CREATE OR REPLACE FUNCTION crmclean_mask_national_id(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN {_BLANK} THEN v
    ELSE repeat('*', char_length(t) - k) || CASE WHEN k > 0 THEN right(t, k) ELSE '' END END
  FROM (SELECT t, CASE WHEN char_length(t) >= 8 THEN 4 WHEN char_length(t) >= 4 THEN 2 ELSE 0 END AS k
        FROM (SELECT regexp_replace(v, '[\s-]', '', 'g') AS t) AS a) AS b
$$;"""

#: masking.py's rule → its SQL function (a rule added there without a twin here masks as text)
_SQL_NAMES: dict[Callable[[Any], Any], str] = {
    masking.mask_email: "crmclean_mask_email",
    masking.mask_phone: "crmclean_mask_phone",
    masking.mask_name: "crmclean_mask_name",
    masking.mask_date: "crmclean_mask_date",
    masking.mask_national_id: "crmclean_mask_national_id",
    masking.mask_text: "crmclean_mask_text",
}


def column_sql(column: str) -> str:
    """One select-list item: the column as is, or through its masking function."""
    rule = masking.masker_for(column)
    if rule is None:
        return f'm."{column}"'
    return f'{_SQL_NAMES.get(rule, "crmclean_mask_text")}(m."{column}"::text) AS "{column}"'


def view_sql() -> str:
    """The functions and the view, in one script (CREATE OR REPLACE keeps the view's grants)."""
    select_list = ",\n  ".join(column_sql(c) for c in columns_of("master_customer"))
    return f"{_FUNCTIONS}\n{_phone_function()}\nCREATE OR REPLACE VIEW {VIEW} AS SELECT\n  {select_list}\nFROM master_customer AS m;"


def view_version() -> str:
    """Written as the view's comment: the view is only replaced when its SQL changed (a
    replace locks out the analysts reading it until the publish commits)."""
    return "crmclean masked view " + hashlib.sha1(view_sql().encode("utf-8")).hexdigest()[:12]
