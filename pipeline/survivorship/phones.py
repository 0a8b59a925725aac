"""Survivorship for phone numbers judged by what the number is.

`possible_only`: standardize keeps a number libphonenumber finds possible (the right length for
its country) but outside every allocated range (555-123-4567, a UK 020 6xxx number), flagged
`unallocated`, so it still links records. Such a number is often invented (a form's filler, a
clerk's dummy) or mistyped; a number in an allocated range that another record of the customer
holds is the better golden value. Checked on the E.164 value itself, so it holds wherever the
number came from (a typed column, the untyped phone column, another slot).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import phonenumbers


@lru_cache(maxsize=100_000)
def _allocated(e164: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False


def possible_only(cluster: np.ndarray, texts: np.ndarray, value: np.ndarray, contested: np.ndarray) -> np.ndarray:
    """Per candidate row: 1 for a number outside libphonenumber's allocated ranges, 0 otherwise.
    Only rows of `contested` clusters (more than one distinct number) are checked: elsewhere
    there is nothing to prefer, and the number is published as the only one."""
    key = np.zeros(len(cluster), np.int64)
    pick = (value >= 0) & np.isin(cluster, contested)
    if not pick.any():
        return key
    distinct = np.unique(value[pick])
    bad = distinct[[not _allocated(str(texts[v])) for v in distinct]]
    key[pick] = np.isin(value[pick], bad)
    return key
