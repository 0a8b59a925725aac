"""Labelled pairs refine a Fellegi-Sunter model (method ``fs``; see docs/labelling.md).

Here, not in crmclean.label, so that the link stage can refine the run's model without
importing the labelling tool (which imports link)."""

from __future__ import annotations

import json

import numpy as np

from .compare import feature_levels
from .model import features_of


def refine_fs(
    model: dict, codes: np.ndarray, y: np.ndarray, m_pseudo: float = 20.0, u_pseudo: float | None = None
) -> None:
    """In place, m (and, with ``u_pseudo``, u) per feature: (labelled count + pseudo × EM
    estimate) / (labelled pairs with the feature present + pseudo). u stays EM's by default: it
    comes from 500k random pairs, and labelled non-matches are look-alikes, not random pairs."""
    for k, f in enumerate(features_of(model)[: codes.shape[1]]):
        comp = model["comparisons"][f]
        n_levels = len(feature_levels(f))
        for key, rows, pseudo in (("m", y, m_pseudo), ("u", ~y, u_pseudo)):
            if pseudo is None:
                continue
            counts = np.bincount(codes[rows, k], minlength=n_levels)[1:].astype(float)
            if counts.sum() == 0:
                continue
            prior = np.asarray(comp[key], dtype=float)
            comp[key] = [float(x) for x in (counts + pseudo * prior) / (counts.sum() + pseudo)]


def refined_by_labels(model: dict, codes: np.ndarray, y: np.ndarray) -> dict:
    """A refined copy of ``model`` (method fs, the defaults), as label.refine_model makes it."""
    out = json.loads(json.dumps(model))
    if len(y):
        refine_fs(out, np.asarray(codes, dtype=np.int64), np.asarray(y, dtype=bool))
        out.setdefault("training", {})["labels"] = {"method": "fs", "pairs": int(len(y)), "matches": int(np.sum(y))}
    return out
