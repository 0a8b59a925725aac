"""Score a published customer_xref against the generator's truth.csv.

Pairwise and B-cubed precision/recall/F1 are computed from cluster-size contingency counts
(records per (master, entity) cell), so 1M records cost one groupby, never a list of pairs.
Hard negatives (household, twins, jr_sr, common_name) get their own false-merge rate: among
pairs of records of *different* people in the same look-alike group, the share that ended up
in one master.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import CrmcleanError, InputFileError

HARD_NEGATIVE_KINDS = ("household", "twins", "jr_sr", "common_name")
TRUTH_REQUIRED = ("source", "source_record_id", "entity_id")  # scenario, group_id: optional
#: more truth records than this share found neither in customer_xref nor in quarantine means
#: the truth file is not of this master's inputs: its scores would be meaningless
MAX_NOT_FOUND_SHARE = 0.5
XREF_REQUIRED = ("source", "source_record_id", "master_id")


def _pairs(counts) -> int:
    """Number of unordered pairs inside groups of the given sizes."""
    c = np.asarray(counts, dtype=np.int64)
    return int((c * (c - 1) // 2).sum())


def _ratio(num: float, den: float, empty: float | None = 1.0) -> float | None:
    return float(num) / float(den) if den else empty


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 2 * p * r / (p + r) if (p + r) else 0.0


def _check_columns(frame: pd.DataFrame, required, what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CrmcleanError(f"{what} lacks column(s) {', '.join(missing)}")


def _keys(frame: pd.DataFrame) -> list[str]:
    """`source|source_record_id` as text; list comprehension beats .str on 1M rows by ~10x."""
    return [
        f"{s.strip()}|{r.strip()}"
        for s, r in zip(frame["source"].astype(str).tolist(), frame["source_record_id"].astype(str).tolist())
    ]


def _text(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[column].fillna("").astype(str).to_numpy(dtype=object)


def _cell_sizes(*codes: np.ndarray) -> np.ndarray:
    """Records per distinct combination of integer codes (a contingency table's non-empty cells)."""
    if len(codes[0]) == 0:
        return np.zeros(0, dtype=np.int64)
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        combined = combined * (int(c.max()) + 1) + c
    return np.unique(combined, return_counts=True)[1]


def evaluate(truth: pd.DataFrame, xref: pd.DataFrame, quarantine: pd.DataFrame | None = None) -> dict:
    """Compare predicted masters (xref) with true entities (truth); returns plain numbers.

    Truth rows absent from xref (quarantined or dropped) are counted per scenario and left out
    of the pair metrics. Junk truth rows (empty entity_id) that were kept count as singletons,
    so two junk rows merged together are a false merge. `quarantine` (optional keyword, the
    published quarantine table) splits the absent rows into quarantined vs missing.
    """
    _check_columns(truth, TRUTH_REQUIRED, "truth")
    _check_columns(xref, XREF_REQUIRED, "customer_xref")
    t_keys = pd.Index(_keys(truth))
    first = ~t_keys.duplicated()
    t_keys = t_keys[first]
    entity = _text(truth, "entity_id")[first]
    scenario = _text(truth, "scenario")[first]
    group = _text(truth, "group_id")[first]
    x_keys = pd.Index(_keys(xref))
    x_first = ~x_keys.duplicated()
    x_keys = x_keys[x_first]
    master = xref["master_id"].astype(str).to_numpy(dtype=object)[x_first]

    pos = x_keys.get_indexer(t_keys)
    present = pos >= 0
    absent_scen = pd.Series(scenario[~present]).replace("", "(no scenario)").value_counts().sort_index()
    q_keys = pd.Index(_keys(quarantine)) if quarantine is not None and len(quarantine) else None

    # integer codes for the evaluated rows; kept junk rows become singleton entities
    m_code = pd.factorize(master[pos[present]])[0].astype(np.int64)
    ent = entity[present]
    junk = ent == ""
    e_code = pd.factorize(ent)[0].astype(np.int64)
    if junk.any():
        e_code[junk] = e_code.max() + 1 + np.arange(junk.sum())
    scen = scenario[present]
    grp = group[present]

    n = len(m_code)
    master_size = np.bincount(m_code) if n else np.zeros(0, np.int64)
    entity_size = np.bincount(e_code) if n else np.zeros(0, np.int64)
    tp = _pairs(_cell_sizes(m_code, e_code))
    pred_pairs, true_pairs = _pairs(master_size), _pairs(entity_size)
    p, r = _ratio(tp, pred_pairs), _ratio(tp, true_pairs)
    bp, br = _bcubed(m_code, e_code, master_size, entity_size)

    return {
        "records_truth": int(len(t_keys)),
        "records_evaluated": int(n),
        "records_in_xref_not_in_truth": int((t_keys.get_indexer(x_keys) < 0).sum()),
        "absent_from_xref": int((~present).sum()),
        "quarantined": int(q_keys.isin(t_keys[~present]).sum()) if q_keys is not None else None,
        "absent_by_scenario": {str(k): int(v) for k, v in absent_scen.items()},
        "real_records_absent": int((entity[~present] != "").sum()),
        "entities_true": int(len(np.unique(e_code))),
        "masters_predicted": int(len(master_size)),
        "pairwise": {
            "true_pairs": true_pairs,
            "predicted_pairs": pred_pairs,
            "true_positive_pairs": tp,
            "precision": p,
            "recall": r,
            "f1": _f1(p, r),
        },
        "bcubed": {"precision": bp, "recall": br, "f1": _f1(bp, br)},
        "false_merges": _false_merges(scen, grp, e_code, m_code),
        "recall_by_scenario": _recall_by_scenario(scen, e_code, m_code),
        "junk_merged_records": int((master_size[m_code[junk]] > 1).sum()) if n else 0,
    }


def _bcubed(m_code, e_code, master_size, entity_size) -> tuple[float | None, float | None]:
    """B-cubed (precision, recall): per record, the share of its master (entity) that is its
    entity (master), averaged; None for no records."""
    n = len(m_code)
    if not n:
        return None, None
    combined = m_code * (int(e_code.max()) + 1) + e_code
    _, first_row, nij = np.unique(combined, return_index=True, return_counts=True)
    ci, tj = master_size[m_code[first_row]], entity_size[e_code[first_row]]
    return float((nij * nij / ci).sum() / n), float((nij * nij / tj).sum() / n)


def _false_merges(scen, grp, e_code, m_code) -> dict:
    """Per hard-negative kind: pairs of different people in one look-alike group that share a master."""
    out: dict[str, dict[str, float | None]] = {}
    for kind in HARD_NEGATIVE_KINDS:
        sel = (scen == kind) & (grp != "")
        if not sel.any():
            out[kind] = {"groups": 0, "pairs": 0, "merged_pairs": 0, "rate": None}
            continue
        g = pd.factorize(grp[sel])[0].astype(np.int64)
        e, m = e_code[sel], m_code[sel]
        pairs = _pairs(np.bincount(g)) - _pairs(_cell_sizes(g, e))
        merged = _pairs(_cell_sizes(g, m)) - _pairs(_cell_sizes(g, m, e))
        out[kind] = {
            "groups": int(g.max() + 1),
            "pairs": int(pairs),
            "merged_pairs": int(merged),
            "rate": _ratio(merged, pairs, None),
        }
    return out


def _recall_by_scenario(scen, e_code, m_code) -> dict:
    """Per scenario: share of same-person record pairs that ended in one master (missed merges)."""
    out = {}
    for kind in sorted(set(pd.unique(scen)) - {"", "junk"}):
        sel = scen == kind
        e, m = e_code[sel], m_code[sel]
        true_pairs = _pairs(_cell_sizes(e))
        found = _pairs(_cell_sizes(e, m))
        out[str(kind)] = {"pairs": int(true_pairs), "found": int(found), "recall": _ratio(found, true_pairs, None)}
    return out


def read_truth(path: str | Path) -> pd.DataFrame:
    """truth.csv as text columns (IDs such as 00123 keep their zeros)."""
    path = Path(path)
    try:
        truth = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(path, "truth file not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(path, f"is not a readable truth CSV ({exc.__class__.__name__})") from None
    missing = [c for c in TRUTH_REQUIRED if c not in truth.columns]
    if missing:
        raise InputFileError(path, f"is not a truth file: missing column(s) {', '.join(missing)}")
    return truth


def evaluate_db(truth_path: str | Path, db_url: str) -> dict:
    """Evaluate the published customer_xref (and quarantine) of a crmclean database."""
    from .store import opened

    truth = read_truth(truth_path)
    with opened(db_url) as store:
        xref = store.read_columns("customer_xref", ["source", "source_record_id", "master_id"])
        quarantine = store.read_columns("quarantine", ["source", "source_record_id"])
    result = evaluate(truth, xref, quarantine=quarantine)
    check_truth_found(result, truth_path)
    return result


def not_found(result: dict) -> int:
    """Truth records neither in customer_xref nor quarantined: unknown to this master."""
    return max(0, int(result["absent_from_xref"] - (result.get("quarantined") or 0)))


def check_truth_found(result: dict, truth_path: str | Path) -> None:
    """Refuse to score against a truth file of other inputs (most of its records unknown here)."""
    missing, total = not_found(result), result["records_truth"]
    if total and missing > MAX_NOT_FOUND_SHARE * total:
        raise CrmcleanError(
            f"{truth_path}: {missing:,} of {total:,} truth records were not found in the master "
            "(neither in customer_xref nor quarantined); is this the truth file of the inputs of this master?"
        )


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def format_evaluation(result: dict) -> str:
    """A plain-text table for the terminal and the bench output."""
    lines = [
        f"records in truth      {result['records_truth']}",
        f"records evaluated     {result['records_evaluated']}  (absent from xref: {result['absent_from_xref']}"
        + (f", quarantined: {result['quarantined']}" if result.get("quarantined") is not None else "")
        + f", real records absent: {result['real_records_absent']})",
        f"entities / masters    {result['entities_true']} / {result['masters_predicted']}",
        "",
        f"{'metric':<10}{'precision':>11}{'recall':>9}{'F1':>9}",
    ]
    for name in ("pairwise", "bcubed"):
        r = result[name]
        lines.append(f"{name:<10}{_fmt(r['precision']):>11}{_fmt(r['recall']):>9}{_fmt(r['f1']):>9}")
    pw = result["pairwise"]
    lines.append(
        f"pairs: true {pw['true_pairs']}, predicted {pw['predicted_pairs']}, correct {pw['true_positive_pairs']}"
    )
    lines += ["", f"{'hard negative':<14}{'groups':>8}{'pairs':>8}{'merged':>8}{'rate':>9}"]
    for kind, r in result["false_merges"].items():
        lines.append(f"{kind:<14}{r['groups']:>8}{r['pairs']:>8}{r['merged_pairs']:>8}{_fmt(r['rate']):>9}")
    lines += ["", f"{'scenario':<14}{'pairs':>8}{'found':>8}{'recall':>9}"]
    for kind, r in result["recall_by_scenario"].items():
        lines.append(f"{kind:<14}{r['pairs']:>8}{r['found']:>8}{_fmt(r['recall']):>9}")
    if result["absent_by_scenario"]:
        lines += [
            "",
            "absent from xref by scenario: " + ", ".join(f"{k} {v}" for k, v in result["absent_by_scenario"].items()),
        ]
    lines.append(f"junk records merged into another record's master: {result['junk_merged_records']}")
    return "\n".join(lines)
