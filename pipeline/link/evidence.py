"""The kept pairs' evidence as codes: one int32 a feature into that feature's distinct texts.

The evidence of a pair is the JSON object {feature: {"level", "weight"[, adjustment]}}, ≈ 0.6 KB
of text a kept pair (with its str header, the largest item of the pairs frame), held from link to
publish. Each feature's piece takes few distinct values (level × weight × adjustment), so a pair
is stored as the code of each of its pieces (4 bytes a feature) and its text is joined when it is
read: `to_numpy(object)`, `astype(str)` (the store writing match_edge, a concat with stored
edges' text). The text is the one the link stage held before (one JSON object a pair), byte for byte.
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype, take
from pandas.core.dtypes.astype import astype_array


TEXT_BATCH = 5_000  # rows joined at once when the text is read (≈ 3.5 MB of text, held twice by a join)


class EvidenceDtype(ExtensionDtype):
    """Evidence JSON text, stored as codes; any other dtype beside it makes the column object."""

    name = "crmclean_evidence"
    type = str
    kind = "O"
    na_value = None

    @classmethod
    def construct_array_type(cls) -> builtins.type[EvidenceArray]:
        return EvidenceArray


def joined(pieces: list[np.ndarray]) -> list[str]:
    """Row i: "{" + pieces[0][i] + ", " + pieces[1][i] ... + "}", with one join and one split."""
    n, k = (len(pieces[0]), len(pieces)) if pieces else (0, 0)
    if not n:
        return []
    if not k:
        return ["{}"] * n
    flat: list = [", "] * (2 * k * n)
    for f, texts in enumerate(pieces):
        flat[2 * f :: 2 * k] = texts.tolist()
    flat[2 * k - 1 :: 2 * k] = ["}\x1e{"] * n
    return ("{" + "".join(flat)[:-2]).split("\x1e")[:n]


class EvidenceArray(ExtensionArray):
    """``codes`` (n × features, int32; a row of -1: missing) into ``texts`` (per feature, its
    distinct pieces as an object array, shared by every slice of the array)."""

    def __init__(self, codes: np.ndarray, texts: Sequence[np.ndarray]):
        self._codes = np.asarray(codes, dtype=np.int32).reshape(len(codes), len(texts))
        self._texts = tuple(texts)

    # ---------------------------------------------------------------- the text, when read

    @property
    def features(self) -> int:
        """The pieces a row's text joins (a store writing the text sizes its batches by them)."""
        return len(self._texts)

    def texts(self) -> np.ndarray:
        """Every row's JSON text (None where missing), as an object array, joined TEXT_BATCH rows
        at a time (a join holds its rows' text twice: the joined string and its split)."""
        out = np.full(len(self), None, dtype=object)
        present = np.flatnonzero(~self.isna())
        for at in range(0, len(present), TEXT_BATCH):
            rows = present[at : at + TEXT_BATCH]
            codes = self._codes[rows]
            out[rows] = joined([t[codes[:, f]] for f, t in enumerate(self._texts)])
        return out

    def contains(self, needle: str) -> np.ndarray:
        """Rows whose text holds ``needle``, read from the distinct pieces (no text is joined)
        when the needle cannot cross from one piece to the next: it starts with a quote (as
        every piece does) and holds no closing brace (as every piece ends)."""
        if not needle.startswith('"') or "}" in needle:
            return pd.Series(self.texts(), dtype=object).str.contains(needle, regex=False).to_numpy(bool)
        out = np.zeros(len(self), dtype=bool)
        present = ~self.isna()
        for f, texts in enumerate(self._texts):
            hit = np.array([needle in t for t in texts.tolist()] + [False], dtype=bool)
            out |= hit[np.where(present, self._codes[:, f], -1)]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.texts()
        return out if dtype is None or np.dtype(dtype) == object else out.astype(dtype)

    def __iter__(self):
        return iter(self.texts().tolist())  # joined at once: one row at a time costs a join each

    def __arrow_array__(self, type: Any = None):  # noqa: A002 - pyarrow's protocol
        import pyarrow as pa

        return pa.array(self.texts(), type=type or pa.string())

    def astype(self, dtype: Any, copy: bool = True):
        dtype = pd.api.types.pandas_dtype(dtype)
        if isinstance(dtype, EvidenceDtype):
            return self.copy() if copy else self
        return astype_array(self.texts(), dtype, copy=False)  # pandas' rules for an object array

    # ---------------------------------------------------------------- the ExtensionArray interface

    @property
    def dtype(self) -> EvidenceDtype:
        return EvidenceDtype()

    @property
    def nbytes(self) -> int:
        return int(self._codes.nbytes)

    def __len__(self) -> int:
        return len(self._codes)

    def isna(self) -> np.ndarray:
        # no features: rows pandas made for a missing column (an all-missing concat partner)
        return self._codes[:, 0] < 0 if self._texts else np.ones(len(self), dtype=bool)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, (int, np.integer)):
            return self[[int(item)]].texts()[0]
        if not isinstance(item, slice):
            item = pd.api.indexers.check_array_indexer(self, item)
        return EvidenceArray(self._codes[item], self._texts)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Read-only: pandas makes the column object (text) to set a value in it."""
        raise TypeError("evidence codes are read-only")

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        other = other.texts() if isinstance(other, EvidenceArray) else other
        return self.texts() == other

    def take(self, indices: Any, allow_fill: bool = False, fill_value: Any = None) -> EvidenceArray:
        if allow_fill and fill_value is not None and not pd.isna(fill_value):
            raise TypeError("evidence codes take only a missing fill value")
        rows = take(np.arange(len(self)), indices, allow_fill=allow_fill, fill_value=-1)
        codes = self._codes[np.maximum(rows, 0)] if len(self) else np.zeros((len(rows), len(self._texts)), np.int32)
        codes = np.where((rows < 0)[:, None], -1, codes)
        return EvidenceArray(codes, self._texts)

    def copy(self) -> EvidenceArray:
        return EvidenceArray(self._codes.copy(), self._texts)

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> EvidenceArray:
        if isinstance(scalars, EvidenceArray):
            return scalars.copy() if copy else scalars
        if not len(scalars):
            return cls(np.zeros((0, 0), np.int32), ())
        raise TypeError("evidence codes are made from levels and weights, not from text")

    @classmethod
    def _from_factorized(cls, values: Any, original: EvidenceArray) -> EvidenceArray:
        raise TypeError("evidence codes factorize through factorize()")

    def factorize(self, use_na_sentinel: bool = True) -> tuple[np.ndarray, EvidenceArray]:
        codes, uniques = pd.factorize(self.texts(), use_na_sentinel=use_na_sentinel)
        rows = np.flatnonzero(codes >= 0)
        first = np.empty(len(uniques), dtype=np.int64)
        first[codes[rows][::-1]] = rows[::-1]  # each distinct text's first row
        return codes, self.take(first)

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        return self.texts(), None

    def _values_for_argsort(self) -> np.ndarray:
        return self.texts()

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence[EvidenceArray]) -> EvidenceArray:
        """One array: each feature's pieces put together (distinct again) and codes renumbered."""
        width = max((len(a._texts) for a in to_concat), default=0)
        empty = [np.zeros(0, dtype=object)] * width
        # an all-missing array of no features (pandas' rows for a column a partner lacks) widened
        arrays = [a if a._texts or not width else cls(np.full((len(a), width), -1), empty) for a in to_concat]
        if any(len(a._texts) != width for a in arrays):
            raise TypeError("evidence of different features")
        if not arrays:
            return cls(np.zeros((0, 0), np.int32), ())
        codes = np.concatenate([a._codes for a in arrays])
        texts = []
        for f in range(width):
            pieces = np.concatenate([a._texts[f] for a in arrays])
            renumber, distinct = pd.factorize(pieces)
            offsets = np.cumsum([0] + [len(a._texts[f]) for a in arrays])
            column = np.concatenate(
                [np.where(a._codes[:, f] < 0, -1, a._codes[:, f] + o) for a, o in zip(arrays, offsets)]
            )
            codes[:, f] = np.where(column < 0, -1, np.append(renumber, -1)[column])
            texts.append(np.asarray(distinct, dtype=object))
        return cls(codes, texts)
