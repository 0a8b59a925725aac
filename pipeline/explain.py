"""Why were two records (not) merged? A text waterfall of the Fellegi-Sunter evidence.

Each line is one comparison feature: its level, its weight (log2 Bayes factor, TF adjustment
shown separately), a bar, and the running total from the prior. ``explain_pair`` recomputes a
pair from a records frame; ``explain_master`` / ``explain_records`` read the published tables
(customer_record, customer_xref, match_edge, match_model) and use the evidence stored with
each edge, so the explanation is exactly what the run decided.

Personal values (names, e-mails, phones, birth dates, addresses) are masked like the report
unless `show_pii`; the weights and levels are the same either way.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from .errors import CrmcleanError
from .ids import key_to_ref, parse_record_ref
from .masking import masker_for
from .link import DEFAULT_THRESHOLDS, _caps, _shared_value_limit, _thresholds, decide
from .link.compare import (
    COMPARE_COLUMNS,
    FEATURE_NAMES,
    FEATURES,
    TF_COLUMNS,
    compare_pairs,
    pair_term_frequencies,
    prepare_columns,
    term_frequencies,
)
from .link.model import model_compatible, score_levels, weight_tables

# the record values shown next to each feature
FEATURE_VALUES = {
    "first_name": ("first_name_key",),
    "last_name": ("last_name_key",),
    "birth_date": ("birth_date_std",),
    "email": ("email_key",),
    "phone": ("mobile_std", "landline_std"),
    "address": ("address_std", "postal_code_std", "city_std"),
    "suffix": ("name_suffix_std",),
    "gender": ("gender_std",),
    "national_id": ("national_id_std",),
    "company": ("company_std", "company_key"),
}
NOT_PERSONAL = frozenset({"name_suffix_std", "gender_std"})  # masker_for reads "name" in the suffix column
BAR_SCALE = 1.0  # one character per unit of weight
BAR_MAX = 24


def _bar(w: float) -> str:
    n = min(int(round(abs(w) * BAR_SCALE)), BAR_MAX)
    return ("+" * n).ljust(BAR_MAX) if w >= 0 else ("-" * n).rjust(BAR_MAX)


def _value(row: dict, feature: str, show_pii: bool = False) -> str:
    columns = FEATURE_VALUES.get(feature, (feature + "_std",))  # an extra feature: its attr_*_std column
    vals = [_shown(c, row.get(c), show_pii) for c in columns if row.get(c) not in (None, "") and not _isnan(row.get(c))]
    return ", ".join(vals) if vals else "∅"


def _shown(column: str, value, show_pii: bool) -> str:
    """A record value as explain prints it: masked by its column's rule unless show_pii."""
    mask = None if show_pii or column in NOT_PERSONAL else masker_for(column)
    return str(mask(value) if mask else value)


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def render_waterfall(
    key_a: str,
    key_b: str,
    row_a: dict,
    row_b: dict,
    evidence: dict,
    prior_weight: float,
    match_weight: float | None = None,
    probability: float | None = None,
    decision: str | None = None,
    cap: str | None = None,
    show_pii: bool = False,
) -> str:
    """Text waterfall from an evidence dict {feature: {level, weight[, tf_adjustment |
    correlation_adjustment]}}; a correlation adjustment is shown with a trailing "c"."""
    lines = [f"A = {key_to_ref(key_a)}", f"B = {key_to_ref(key_b)}", ""]
    header = f"{'feature':<11} {'level':<18} {'weight':>8} {'(tf)':>7}  {'':<{BAR_MAX}} {'cumulative':>10}   A | B"
    lines.append(header)
    lines.append("-" * len(header))
    cum = prior_weight
    lines.append(f"{'prior':<11} {'':<18} {prior_weight:>8.2f} {'':>7}  {_bar(prior_weight)} {cum:>10.2f}")
    for feature in [*FEATURE_NAMES, *(f for f in evidence if f not in FEATURE_NAMES)]:  # then the extras (attr_*)
        e = evidence.get(feature)
        if not e:
            continue
        w = float(e.get("weight", 0.0))
        cum += w
        tf = e.get("tf_adjustment")
        corr = e.get("correlation_adjustment")
        tf_txt = f"{tf:+.2f}" if tf is not None else (f"{corr:+.2f}c" if corr is not None else "")
        lines.append(
            f"{feature:<11} {e.get('level', '?'):<18} {w:>+8.2f} {tf_txt:>7}  {_bar(w)} {cum:>10.2f}   "
            f"{_value(row_a, feature, show_pii)} | {_value(row_b, feature, show_pii)}"
        )
    total = cum if match_weight is None else match_weight
    prob = probability if probability is not None else 1.0 / (1.0 + 2.0 ** (-total))
    lines.append("-" * len(header))
    tail = f"match weight {total:.2f}   probability {prob:.6f}"
    if decision:
        tail += f"   decision {decision}"
    if cap:
        tail += f"   (capped by {cap})"
    lines.append(tail)
    return "\n".join(lines)


def _prior_weight(model: dict) -> float:
    lam = float(model["lambda"])
    return math.log2(lam / (1 - lam))


def _score_two(cols: dict, tf: dict, model: dict, rules) -> tuple[dict, float, float, str, str]:
    matching = dict(getattr(rules, "matching", None) or {})
    left, right = np.array([0]), np.array([1])
    levels = compare_pairs(cols, left, right)
    ptf = pair_term_frequencies(tf, left, right, levels)
    weight, prob, per_feature = score_levels(levels, ptf, model, matching)
    thresholds = _thresholds(matching) if matching else dict(DEFAULT_THRESHOLDS)
    rank, cap = decide(prob, levels, thresholds, _caps(matching))
    tables = weight_tables(model, matching)
    evidence = {}
    for k, feature in enumerate(FEATURE_NAMES):
        w = float(per_feature[feature][0])
        item = {"level": FEATURES[feature][levels[0, k]], "weight": round(w, 3)}
        adj = w - float(tables[feature][levels[0, k]])
        if abs(adj) > 1e-9:
            # on a TF level: term frequency; on `different`: moved (correlated disagreement)
            tf_level = item["level"] in TF_COLUMNS.get(feature, {})
            item["tf_adjustment" if tf_level else "correlation_adjustment"] = round(adj, 3)
        evidence[feature] = item
    return evidence, float(weight[0]), float(prob[0]), ["non_match", "review", "match"][int(rank[0])], str(cap[0])


def _require_model(model: dict | None) -> dict:
    if model is None or not model_compatible(model):
        raise CrmcleanError("explain: no usable match model (run crmclean once to train one)")
    return model


def explain_pair(records: pd.DataFrame, key_a: str, key_b: str, model: dict, rules, show_pii: bool = False) -> str:
    """Recompute one pair with the model (TF from the whole frame) and render its waterfall."""
    model = _require_model(model)
    keys = records["record_key"].astype(str)
    missing = [k for k in (key_a, key_b) if not (keys == k).any()]
    if missing:
        raise CrmcleanError(f"explain: record_key not found: {', '.join(missing)}")
    cols_all = prepare_columns(
        records, shared_value_limit=_shared_value_limit(dict(getattr(rules, "matching", None) or {}))
    )
    tf_all = term_frequencies(cols_all)
    ia = int(np.flatnonzero(keys.to_numpy() == key_a)[-1])
    ib = int(np.flatnonzero(keys.to_numpy() == key_b)[-1])
    sel = np.array([ia, ib])
    cols = {c: v[sel] for c, v in cols_all.items()}
    tf = {c: v[sel] for c, v in tf_all.items()}
    evidence, weight, prob, decision, cap = _score_two(cols, tf, model, rules)
    row_a = {c: cols[c][0] for c in cols}
    row_b = {c: cols[c][1] for c in cols}
    return render_waterfall(
        key_a, key_b, row_a, row_b, evidence, _prior_weight(model), weight, prob, decision, cap, show_pii
    )


# ---------------------------------------------------------------- from the published tables


def _latest_model(store) -> dict:
    df = store.read_columns("match_model", ["version", "created", "model_json"])
    if df.empty:
        raise CrmcleanError("explain: the database holds no match model yet; run crmclean first")
    row = df.sort_values("created").iloc[-1]
    try:
        return _require_model(json.loads(row["model_json"]))
    except (TypeError, ValueError):
        raise CrmcleanError("explain: the stored match model is not valid JSON") from None


def _records(store, keys: list[str]) -> dict[str, dict]:
    df = store.read_by_keys("customer_record", ("record_key",), keys)
    return {str(r["record_key"]): r for r in df.to_dict("records")}


def _edge_text(edge: dict, recs: dict[str, dict], model: dict, show_pii: bool = False) -> str:
    a, b = str(edge["record_key_l"]), str(edge["record_key_r"])
    try:
        evidence = json.loads(edge.get("evidence") or "{}")
    except (TypeError, ValueError):
        evidence = {}
    return render_waterfall(
        a,
        b,
        recs.get(a, {}),
        recs.get(b, {}),
        evidence,
        _prior_weight(model),
        float(edge["match_weight"]) if edge.get("match_weight") is not None else None,
        float(edge["match_probability"]) if edge.get("match_probability") is not None else None,
        edge.get("decision"),
        edge.get("cap") or None,
        show_pii,
    )


def _record_line(key: str, r: dict, show_pii: bool = False, asked: bool = False) -> str:
    shown = ["full_name_std", "email_std", "phone_std", "birth_date_std", "address_std", "city_std"]
    vals = [_shown(c, r.get(c), show_pii) for c in shown if r.get(c) not in (None, "") and not _isnan(r.get(c))]
    return f"{'▶' if asked else ' '} {key_to_ref(key)}: " + " · ".join(vals)


def is_record_ref(text: str) -> bool:
    """A record reference (`source:id`, `source|id`) rather than a master id (`C0000123`)."""
    return ":" in str(text) or "|" in str(text)


def explain_one(db_url: str, ref: str, show_pii: bool = False) -> str:
    """`crmclean explain` with one argument: a master id, or a record shown within its master."""
    if not is_record_ref(ref):
        return explain_master(db_url, str(ref).strip(), show_pii)
    from .store import opened

    with opened(db_url) as store:
        key, master_id = _record_ref(store, ref)
    head = f"{key_to_ref(key)} → master {master_id}\n\n"
    return head + explain_master(db_url, master_id, show_pii, asked=key)


def explain_master(db_url: str, master_id: str, show_pii: bool = False, asked: str | None = None) -> str:
    """A master's records and the waterfall of every stored edge inside it (the record_key
    `asked` about, if any, marked with ▶ and its edges first)."""
    from .store import opened

    with opened(db_url) as store:
        xref = store.find_rows("customer_xref", master_id=master_id)
        if xref.empty:
            raise CrmcleanError(f"explain: master {master_id} not found")
        keys = sorted(xref["record_key"].astype(str))
        model = _latest_model(store)
        recs = _records(store, keys)
        edges = store.read_by_keys("match_edge", ("record_key_l", "record_key_r"), keys)
        lineage = store.find_rows("master_lineage", master_id=master_id)
    edges = edges[edges["record_key_l"].isin(keys) & edges["record_key_r"].isin(keys)]
    out = [f"Master {master_id}: {len(keys)} record(s)"]
    out += [_record_line(k, recs.get(k, {}), show_pii, asked=k == asked) for k in keys]
    out += lineage_lines(lineage, show_pii)
    if len(keys) > 1 and edges.empty:
        out.append("\nNo stored match edge inside this master (merged by an override or must-link).")
    touches = (edges["record_key_l"] == asked) | (edges["record_key_r"] == asked)
    edges = edges.assign(_first=~touches).sort_values(["_first", "match_weight"], ascending=[True, False])
    for edge in edges.drop(columns="_first").to_dict("records"):
        out += ["", _edge_text(edge, recs, model, show_pii)]
    return "\n".join(out)


def lineage_lines(lineage: pd.DataFrame, show_pii: bool = False) -> list[str]:
    """Lineage of a master: per field the published value, the rule that chose it and its
    record, then each value that lost with the records holding it (values masked by their
    field's rule unless show_pii)."""
    if lineage is None or lineage.empty:
        return []
    out = ["", "Golden record (value ← rule, record; values that lost):"]
    for row in lineage.sort_values("field", kind="stable").to_dict("records"):
        field = str(row["field"])
        value = _shown(field, row["value"], show_pii) if row.get("value") else "(empty)"
        out.append(f"  {field}: {value}  ← {row.get('rule')} ({key_to_ref(row.get('record_key'))})")
        for alt in _alternatives(row.get("alternatives")):
            lost = _shown(field, alt.get("value"), show_pii) if alt.get("value") else alt.get("value")
            out.append(f"      lost: {lost}  ({', '.join(key_to_ref(r) for r in alt.get('records') or [])})")
    return out


def _alternatives(text) -> list[dict]:
    import json

    if not isinstance(text, str) or not text:
        return []
    try:
        items = json.loads(text)
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _parse_ref(ref: str) -> tuple[str, str]:
    """`source:id` or `source|id` (the one parser: crmclean.ids.parse_record_ref)."""
    try:
        return parse_record_ref(ref)
    except CrmcleanError as exc:
        raise CrmcleanError(f"explain: {exc}") from None


def explain_records(db_url: str, ref_a: str, ref_b: str, show_pii: bool = False) -> str:
    """Two records named as source:source_record_id: the stored edge, else a fresh comparison."""
    from .store import opened

    with opened(db_url) as store:
        keys = [_record_ref(store, ref) for ref in (ref_a, ref_b)]
        (ka, ma), (kb, mb) = keys
        a, b = sorted([ka, kb])
        model = _latest_model(store)
        recs = _records(store, [a, b])
        head = (
            f"{ref_a} → master {ma}\n{ref_b} → master {mb}\n"
            + ("same master" if ma == mb else "different masters")
            + "\n"
        )
        edges = store.find_rows("match_edge", record_key_l=a, record_key_r=b)
        if not edges.empty:
            return head + "\n" + _edge_text(edges.iloc[0].to_dict(), recs, model, show_pii)
        # not a stored edge (not a candidate, or below review): compare afresh, TF from counts in SQL
        frame = pd.DataFrame([recs.get(a, {"record_key": a}), recs.get(b, {"record_key": b})])
        cols = prepare_columns(frame)
        tf = _tf_from_db(store, cols)
    from types import SimpleNamespace

    evidence, weight, prob, decision, cap = _score_two(
        cols,
        tf,
        model,
        SimpleNamespace(
            matching=model.get("matching_rules") or {"thresholds": model.get("thresholds") or DEFAULT_THRESHOLDS}
        ),
    )
    row_a = {c: cols[c][0] for c in cols}
    row_b = {c: cols[c][1] for c in cols}
    note = "(no stored edge: not a blocking candidate or scored below review; recomputed now)\n"
    return (
        head
        + note
        + "\n"
        + render_waterfall(a, b, row_a, row_b, evidence, _prior_weight(model), weight, prob, decision, cap, show_pii)
    )


def _record_ref(store, ref: str) -> tuple[str, str]:
    """(record_key, master_id) of a record named source:source_record_id."""
    source, rid = _parse_ref(ref)
    x = store.find_rows("customer_xref", source=source, source_record_id=rid)
    if x.empty:
        raise CrmcleanError(f"explain: record {ref} not found")
    return str(x["record_key"].iloc[0]), str(x["master_id"].iloc[0])


def _tf_from_db(store, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Value frequencies for the two records, counted in customer_record."""
    out = {}
    for column in {c for spec in TF_COLUMNS.values() for c in spec.values()}:
        vals = np.full(2, np.nan)
        if column not in COMPARE_COLUMNS:
            continue
        try:
            total = store.count_values("customer_record", column)
        except (CrmcleanError, KeyError):  # a column this master does not store
            out[column] = vals
            continue
        for k in range(2):
            v = cols[column][k]
            if v is not None and total:
                n = store.count_values("customer_record", column, v)
                vals[k] = max(int(n), 1) / int(total)
        out[column] = vals
    return out
