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
