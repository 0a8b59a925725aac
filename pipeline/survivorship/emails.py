"""Survivorship for e-mail spellings of one mailbox.

`extra_marks`: for a provider that ignores dots and +tags (the domains standardize's
`email_key` folds: gmail), "q.li.1966@", "qli1966+shop@" and "qli1966@" reach one mailbox.
The spelling with the fewest ignored marks is the mailbox as its owner gave it; a dot or a tag
more is what a form or a clerk added. Only spellings that share a match key are compared, so
"brooklyn.young@aol.com" never loses to "brooklynyoung@aol.com" (two mailboxes there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA

# two domains this many edits apart (a transposition is one) can be a typo of each other
DOMAIN_EDITS = 1


def ignored_marks(texts: np.ndarray) -> np.ndarray:
    """Per e-mail: dots in the local part, plus 1 for a +tag (None = 0)."""
    local = pd.Series(texts, dtype=object).astype("string").str.rpartition("@")[0]
    dots = local.str.count(r"\.").fillna(0)
    tag = local.str.contains("+", regex=False).fillna(False).astype(np.int64)
    return (dots + tag).to_numpy(np.int64)


def extra_marks(cluster: np.ndarray, texts: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per row: its ignored marks minus the fewest of any row of the cluster with the same
    match key (0 for a row without a key or value)."""
    marks = ignored_marks(texts)
    has = pd.notna(keys) & pd.notna(texts)
    out = np.zeros(len(cluster), np.int64)
    if not has.any():
        return out
    least = pd.Series(marks[has]).groupby([cluster[has], keys[has]]).transform("min").to_numpy()
    out[has] = marks[has] - least
    return out


def domain_counts(emails) -> dict[str, int]:
    """Data-wide: how many records hold an address at each domain."""
    text = [str(e) for e in emails if isinstance(e, str) and "@" in e]
    domains = pd.Series([t.rpartition("@")[2] for t in text], dtype=object)
    return {str(d): int(n) for d, n in domains.value_counts().items()}


def rare_domain(groups: list, counts: dict[str, int]) -> list[int]:
    """Per value of each cluster's group [(address, records)]: 1 when another value of the
    cluster has the same local part at a domain a typo away (DOMAIN_EDITS edit) that more
    records of the whole data set use: jli@gmial.com, jli@gmail.con lose to jli@gmail.com
    whatever the standardize typo table knows (a slip lands on a domain few others use).
    Domains two edits apart (jli@163.com, jli@126.com) are not compared: both can be real."""
    out = []
    for _, values in groups:
        parts = [v.rpartition("@") for v, _ in values]
        for local, _, domain in parts:
            n = counts.get(domain, 0)
            out.append(
                int(
                    any(
                        other_local == local
                        and other != domain
                        and counts.get(other, 0) > n
                        and OSA.distance(domain, other, score_cutoff=DOMAIN_EDITS) <= DOMAIN_EDITS
                        for other_local, _, other in parts
                    )
                )
            )
    return out
