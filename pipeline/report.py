"""The run report: ONE self-contained HTML file (no CDN, no script; charts are inline SVG) that
says what the run did, or how far it got and why it stopped.

It renders a `stages.ReportInput`, in which every part may be missing (a run that failed
early): each section renders from what exists and a broken section shows its own error instead
of losing the whole report. Values are
HTML-escaped by Jinja2 autoescape; personal data is masked unless `show_pii`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from markupsafe import Markup

from .docs_site import build_error
from .ids import key_to_ref
from .spill import SpilledTable
from .masking import mask_date, mask_email, mask_name, mask_phone, mask_text, masker_for
from .stages import ReportInput, RunCounts

TEMPLATE_DIR = Path(__file__).parent / "templates"
MAX_EXAMPLES = 3
MAX_ROWS = 20
#: the counts a run produces (stages.RunCounts): the only ones the report shows
COUNT_NAMES = tuple(f.name for f in dataclasses.fields(RunCounts))


# --------------------------------------------------------------------------- SVG charts


def bar_chart_svg(labels: list[str], values: list[float], title: str, unit: str = "", width: int = 640) -> Markup:
    """Horizontal bars with labels and values; escaped text, fixed palette."""
    if not values:
        return Markup("")
    row_h, label_w, pad = 22, 170, 60
    height = row_h * len(values) + 30
    vmax = max(max(values), 1e-9)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 20 + i * row_h
        w = max((width - label_w - pad) * (value / vmax), 1 if value else 0)
        fractional = isinstance(value, float) and not float(value).is_integer()
        shown = f"{value:,.3f}".rstrip("0").rstrip(".") if fractional else f"{int(value):,}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="lbl">{html.escape(str(label)[:28])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" class="bar"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" class="val">{html.escape(shown + unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram_svg(
    counts: list[int],
    edges: list[float],
    title: str,
    stacks: dict[str, list[int]] | None = None,
    width: int = 640,
    height: int = 220,
    log: bool = False,
    markers: dict[str, float] | None = None,
) -> Markup:
    """Vertical histogram; `stacks` (name → counts per bin) draws stacked coloured bars; `log`
    scales heights by log10(1 + count) so a bin of 20,000 leaves a bin of 3 visible; `markers`
    (label → x value) draws dashed vertical lines (the decision thresholds)."""
    if not counts or not sum(counts):
        return Markup("")
    left, bottom, top = 48, 30, 26
    plot_w, plot_h = width - left - 10, height - bottom - top
    cmax = max(counts)
    scale = (lambda c: math.log10(1 + c) / math.log10(1 + cmax)) if log else (lambda c: c / cmax)
    bw = plot_w / len(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
    ]
    ticks = [10**k for k in range(int(math.log10(cmax)) + 1)] if log else [cmax]
    for t in [0, *ticks]:
        y = top + plot_h - plot_h * scale(t)
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="val">{t:,}</text>'
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
        )
    series = stacks or {"all": counts}
    for i in range(len(counts)):
        base = 0
        for k, (name, vals) in enumerate(series.items()):
            v = vals[i]
            if not v:
                continue
            y_top, y_base = top + plot_h - plot_h * scale(base + v), top + plot_h - plot_h * scale(base)
            parts.append(
                f'<rect x="{left + i * bw + 1:.1f}" y="{y_top:.1f}" width="{max(bw - 2, 1):.1f}" '
                f'height="{max(y_base - y_top, 1):.1f}" class="s{k}"><title>{html.escape(name)}: {v:,} '
                f"({html.escape(_fmt_edge(edges[i]))} to {html.escape(_fmt_edge(edges[i + 1]))})</title></rect>"
            )
            base += v
    step = max(1, len(edges) // 8)
    for i in range(0, len(edges), step):
        parts.append(
            f'<text x="{left + i * bw:.1f}" y="{height - 12}" text-anchor="middle" class="val">'
            f"{html.escape(_fmt_edge(edges[i]))}</text>"
        )
    span = (edges[-1] - edges[0]) or 1
    for j, (label, value) in enumerate((markers or {}).items()):
        x = left + plot_w * (min(max(value, edges[0]), edges[-1]) - edges[0]) / span
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + plot_h}" class="marker"/>'
            f'<text x="{x + 3:.1f}" y="{top - 8 + 10 * j}" class="val marker-label">{html.escape(label)}</text>'
        )
    if stacks:
        for k, name in enumerate(stacks):
            parts.append(
                f'<rect x="{width - 100}" y="{top + 14 * k}" width="10" height="10" class="s{k}"/>'
                f'<text x="{width - 86}" y="{top + 9 + 14 * k}" class="val">{html.escape(name)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


MU_ROW, MU_HEAD = 24, 20  # pixels per comparison level / per feature heading


def mu_chart_spec(features: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The m/u chart as data: one dict per comparison level (feature, level, m, u, weight)."""
    return [
        {
            "feature": feature,
            "level": str(lv["level"]),
            "m": float(lv["m"]),
            "u": float(lv["u"]),
            "weight": float(lv["weight"]),
        }
        for feature, levels in features.items()
        for lv in levels
    ]


def mu_chart_svg(spec: list[dict[str, Any]], width: int = 900) -> Markup:
    """Splink-style chart: per level, m and u as paired horizontal bars (0..1) and the match
    weight log2(m/u) as a bar signed around zero, levels grouped under their feature."""
    if not spec:
        return Markup("")
    label_w, mu_x, mu_w, w_x, w_w = 130, 290, 250, 560, 320
    wmax = max(max(abs(r["weight"]) for r in spec), 1.0)
    zero = w_x + w_w / 2
    n_features = len(dict.fromkeys(r["feature"] for r in spec))
    height = 34 + MU_ROW * len(spec) + MU_HEAD * n_features
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart mu-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>m and u probabilities and match weight per comparison level</title>',
        f'<rect x="{mu_x}" y="4" width="10" height="8" class="m"/><text x="{mu_x + 14}" y="12" class="val">m: share among matches</text>',
        f'<rect x="{mu_x}" y="16" width="10" height="8" class="u"/><text x="{mu_x + 14}" y="24" class="val">u: share among non-matches</text>',
        f'<text x="{zero}" y="12" text-anchor="middle" class="val">match weight log2(m/u)</text>',
        f'<text x="{w_x}" y="24" class="val">−{wmax:.1f}</text><text x="{w_x + w_w}" y="24" text-anchor="end" class="val">+{wmax:.1f}</text>',
        f'<line x1="{zero}" y1="28" x2="{zero}" y2="{height}" class="axis"/>',
    ]
    y, feature = 30, ""
    for r in spec:
        if r["feature"] != feature:
            feature = r["feature"]
            parts.append(
                f'<text x="4" y="{y + 15}" class="feature">{html.escape(feature)}</text>'
                f'<line x1="0" y1="{y + 1}" x2="{width}" y2="{y + 1}" class="grid"/>'
            )
            y += MU_HEAD
        m_w, u_w = mu_w * min(max(r["m"], 0), 1), mu_w * min(max(r["u"], 0), 1)
        w = r["weight"]
        bar = (w_w / 2) * min(abs(w), wmax) / wmax
        bx = zero if w >= 0 else zero - bar
        tx, anchor = (zero + bar + 4, "start") if w >= 0 else (zero - bar - 4, "end")
        parts.append(
            f'<g class="level"><title>{html.escape(feature)} {html.escape(r["level"])}: m={r["m"]:.4g}, '
            f"u={r['u']:.4g}, weight={w:+.2f}</title>"
            f'<text x="{label_w}" y="{y + 15}" text-anchor="end" class="lbl">{html.escape(r["level"][:22])}</text>'
            f'<text x="{label_w + 8}" y="{y + 10}" class="val">m {r["m"]:.4g}</text>'
            f'<text x="{label_w + 8}" y="{y + 21}" class="val">u {r["u"]:.4g}</text>'
            f'<rect x="{mu_x}" y="{y + 3}" width="{max(m_w, 0.5):.1f}" height="8" class="m"/>'
            f'<rect x="{mu_x}" y="{y + 13}" width="{max(u_w, 0.5):.1f}" height="8" class="u"/>'
            f'<rect x="{bx:.1f}" y="{y + 5}" width="{max(bar, 0.5):.1f}" height="14" class="{"pos" if w >= 0 else "neg"}"/>'
            f'<text x="{tx:.1f}" y="{y + 16}" text-anchor="{anchor}" class="val">{w:+.2f}</text></g>'
        )
        y += MU_ROW
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt_edge(x: float) -> str:
    return f"{x:g}" if abs(x) >= 1 or x == 0 else f"{x:.2f}"


# --------------------------------------------------------------------------- sections


def _frame_rows(frame: pd.DataFrame, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    return [{k: _cell(v) for k, v in row.items()} for row in frame.head(limit).to_dict("records")]


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    return value


def _masked(frame: pd.DataFrame, show_pii: bool, columns: list[str] | None = None) -> pd.DataFrame:
    if show_pii or frame.empty:
        return frame
    from .masking import mask_frame

    return mask_frame(frame, columns)


def _quarantine(inp: ReportInput) -> pd.DataFrame | None:
    """The most complete quarantine the run got to: published table, then combined, then ingest's."""
    for frame in (inp.tables.get("quarantine"), inp.quarantine, getattr(inp.ingest, "quarantine", None)):
        if isinstance(frame, pd.DataFrame):
            return frame
    return None


def _section_counts(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    counts = {k: int(v) for k, v in inp.counts.items() if k in COUNT_NAMES}
    ingested = inp.ingest
    if not counts and ingested is not None:  # failed before counts: derive what we can
        counts = {
            "rows_read": int(ingested.rows_read or 0),
            "records_accepted": int(len(ingested.records)),
            "quarantined": int(len(ingested.quarantine)),
        }
    labels = list(counts)
    return {
        "counts": counts,
        "chart": bar_chart_svg(labels, [counts[k] for k in labels], "Counts by stage"),
        "flow": _stage_flow(inp, counts),
    }


def _stage_flow(inp: ReportInput, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Rows through the stages: where they were quarantined, how many masters came out."""
    quarantine = _quarantine(inp)
    by_stage = (
        quarantine["stage"].fillna("?").value_counts().to_dict()
        if quarantine is not None and len(quarantine) and "stage" in quarantine
        else {}
    )
    pairs = inp.pairs
    steps = [
        ("ingest", "rows read", counts.get("rows_read")),
        ("ingest", "quarantined at ingest", by_stage.get("ingest")),
        ("standardize", "quarantined at standardize", by_stage.get("standardize")),
        ("standardize", "records accepted", counts.get("records_accepted")),
        ("link", "candidate pairs scored", len(pairs) if pairs is not None else None),
        ("cluster", "master customers", counts.get("masters")),
        ("review", "pairs for review", counts.get("review_pairs")),
    ]
    return [{"stage": st, "what": what, "n": int(n)} for st, what, n in steps if n is not None]


def _section_sources(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    tables = inp.tables
    parts = []
    records = getattr(inp.ingest, "records", None)
    if records is not None and len(records) and "source" in records:
        parts.append(records.groupby("source").size().rename("records_read_ok"))
    quarantine = _quarantine(inp)
    if quarantine is not None and len(quarantine) and "source" in quarantine:
        parts.append(quarantine.groupby("source").size().rename("quarantined"))
    xref = tables.get("customer_xref")
    if xref is not None and len(xref) and "source" in xref:
        parts.append(xref.groupby("source").size().rename("in_master"))
        if "master_id" in xref:
            parts.append(xref.groupby("source")["master_id"].nunique().rename("distinct_masters"))
    if not parts:
        return {"rows": [], "columns": []}
    frame = pd.concat(parts, axis=1).fillna(0).astype(int).reset_index().rename(columns={"index": "source"})
    return {"rows": _frame_rows(frame, 500), "columns": list(frame.columns)}


def _section_mapping(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    mapping = getattr(inp.ingest, "mapping", None) or {}
    rows = []
    for source, spec in mapping.items():
        for file_name, sheets in ((spec or {}).get("files") or {}).items():
            for sheet, headers in (sheets or {}).items():
                for header, canonical in (headers or {}).items():
                    rows.append(
                        {
                            "source": source,
                            "file": file_name,
                            "sheet": sheet or "",
                            "header": header,
                            "field": canonical or "(unmapped → extra)",
                        }
                    )
        if (spec or {}).get("id_column"):
            rows.append({"source": source, "file": "", "sheet": "", "header": spec["id_column"], "field": "ID column"})
    return {"rows": rows}


def _section_standardize(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    summary = inp.std_summary
    if summary is None or not len(summary):
        return {"rows": [], "columns": []}
    return {"rows": _frame_rows(summary, 200), "columns": list(summary.columns)}


def _section_quarantine(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    quarantine = _quarantine(inp)
    if quarantine is None or not len(quarantine):
        return {"total": 0, "reasons": [], "chart": Markup("")}
    code = "reason_code" if "reason_code" in quarantine else "reason"
    counts = quarantine[code].fillna("(none)").value_counts()
    reasons = []
    for reason_code, n in counts.items():
        examples = quarantine[quarantine[code].fillna("(none)") == reason_code].head(MAX_EXAMPLES)
        examples = examples[[c for c in ("source", "locator", "reason", "raw") if c in examples]]
        if not show_pii and "raw" in examples:
            examples = examples.assign(raw=examples["raw"].map(_mask_raw))
        reasons.append({"code": reason_code, "count": int(n), "examples": _frame_rows(examples, MAX_EXAMPLES)})
    return {
        "total": int(len(quarantine)),
        "reasons": reasons,
        "chart": bar_chart_svg([r["code"] for r in reasons], [r["count"] for r in reasons], "Quarantine by reason"),
    }


def _mask_raw(raw: Any) -> Any:
    """Raw rows are JSON {header: value}: mask each value by its header, else mask the text."""
    if raw is None or raw == "":
        return raw
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return _mask_line(raw)
    if not isinstance(data, dict):
        return _mask_line(raw)
    return json.dumps(
        {k: (masker_for(str(k)) or mask_text)(v) if v not in (None, "") else v for k, v in data.items()},
        ensure_ascii=False,
    )


def _mask_line(raw: Any) -> str:
    """A row as read (a CSV line): each field masked, so a blank row stays `,,,` and a short
    row shows its shape, never its values."""
    return ",".join(mask_text(v) if v.strip() else v for v in str(raw).split(","))


def _mask_skipped(examples: Any) -> Any:
    """Blocking's `skipped_examples` ("value (records); …"): the values are personal data."""
    if not isinstance(examples, str) or not examples.strip():
        return examples
    out = []
    for item in examples.split("; "):
        value, sep, size = item.rpartition(" (")
        out.append(f"{mask_text(value)} ({size}" if sep else mask_text(item))
    return "; ".join(out)


def _section_matching(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    pairs = inp.pairs
    out: dict[str, Any] = {
        "pairs": 0,
        "chart": Markup(""),
        "decisions": {},
        "blocking": [],
        "blocking_columns": [],
        "thresholds": {},
    }
    blocking = inp.blocking_summary
    if blocking is not None and len(blocking):
        if not show_pii and "skipped_examples" in blocking:
            blocking = blocking.assign(skipped_examples=blocking["skipped_examples"].map(_mask_skipped))
        out["blocking"], out["blocking_columns"] = _frame_rows(blocking, 50), list(blocking.columns)
    if pairs is None or not len(pairs) or "match_weight" not in pairs:
        return out
    weight = pd.to_numeric(pairs["match_weight"], errors="coerce").dropna()
    if weight.empty:
        return out
    markers = _threshold_weights(inp.model)
    edges = _weight_edges(float(weight.min()), float(weight.max()), list(markers.values()))
    bins = pd.cut(weight, bins=edges, include_lowest=True, labels=False)
    n_bins = len(edges) - 1
    counts = bins.value_counts().reindex(range(n_bins), fill_value=0).astype(int).tolist()
    stacks = {}
    if "decision" in pairs:
        decision = pairs.loc[weight.index, "decision"]
        for name in ("non_match", "review", "match"):  # all three: each keeps its colour
            sel = bins[decision == name]
            stacks[name] = sel.value_counts().reindex(range(n_bins), fill_value=0).astype(int).tolist()
        out["decisions"] = {str(k): int(v) for k, v in pairs["decision"].value_counts().items()}
    out["pairs"] = int(len(pairs))
    out["thresholds"] = {k: round(v, 2) for k, v in markers.items()}
    out["chart"] = histogram_svg(
        counts,
        edges,
        "Match weight histogram (log scale)",
        stacks or None,
        width=900,
        height=260,
        log=True,
        markers=markers,
    )
    return out


def _threshold_weights(model: dict | None) -> dict[str, float]:
    """The match and review probability thresholds as match weights (weight = log2(p/(1-p)):
    the pairs' match_weight includes the prior)."""
    out = {}
    for name in ("review", "match"):
        p = ((model or {}).get("thresholds") or {}).get(name)
        if p is not None and 0 < float(p) < 1:
            out[f"{name} ≥ {float(p):g}"] = math.log2(float(p) / (1 - float(p)))
    return out


def _weight_edges(low: float, high: float, marks: list[float]) -> list[float]:
    """About 40 bins of a whole width covering the weights and the thresholds."""
    low, high = math.floor(min([low, *marks])), math.ceil(max([high, *marks]))
    step = max(1, math.ceil((high - low) / 40)) if high > low else 1
    high = max(high, low + step)
    return [float(x) for x in range(low, high + step, step)]


def _section_model(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    """What the model learnt: trained, reused or neutral priors and why; m/u per level."""
    summary = inp.model
    if not summary:
        return {}
    usage = summary.get("usage") or {}
    spec = mu_chart_spec(summary.get("features") or {})
    return {
        "line": model_line(summary),
        "mode": model_mode(summary),
        "why": summary.get("why") or "",
        "records": summary.get("records"),
        "candidate_pairs": summary.get("candidate_pairs"),
        "run_records": summary.get("working_records") or usage.get("records"),
        "prior": summary.get("prior"),
        "learnt_m": summary.get("learnt_m") or [],
        "default_m": summary.get("default_m") or [],
        "fallback_m": summary.get("fallback_m") or {},
        "thresholds": summary.get("thresholds") or {},
        "chart": mu_chart_svg(spec),
        "spec": spec,
    }


def model_mode(summary: dict[str, Any]) -> str:
    """trained, reused, or neutral priors (a model made without training: too little data)."""
    if summary.get("mode") == "reused":
        return "reused"
    return "trained" if summary.get("trained") else "neutral priors"


def model_line(summary: dict[str, Any] | None) -> str:
    """One line on the match model, for the terminal and the report's model section."""
    if not summary:
        return ""
    mode, why = model_mode(summary), summary.get("why") or ""
    if mode == "neutral priors":
        reason = str(summary.get("training_why") or why).removesuffix(": neutral priors used")
        return f"match model: neutral priors: {reason}"
    records, pairs = summary.get("records"), summary.get("candidate_pairs")
    on = f"on {records:,} records / {pairs:,} candidate pairs" if records and pairs is not None else ""
    if mode == "trained":
        return f"match model: trained {on} ({why})".replace("  ", " ")
    now = summary.get("working_records")
    grew = f"; data grew {now / records:.2f}×" if now and records else ""
    return f"match model: reused ({why}{grew}), trained {on}".rstrip(", ")


def _section_clusters(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    tables = inp.tables
    xref, master = tables.get("customer_xref"), tables.get("master_customer")
    if xref is None or not len(xref) or "master_id" not in xref:
        return {"distribution": [], "chart": Markup(""), "largest": [], "columns": []}
    sizes = xref.groupby("master_id").size()
    dist = sizes.value_counts().sort_index()
    labels = [f"{s} record{'s' if s != 1 else ''}" for s in dist.index]
    largest = sizes.sort_values(ascending=False, kind="stable").head(10).rename("records").reset_index()
    if master is not None and "master_id" in master:
        cols = [c for c in ("master_id", "full_name", "email", "phone", "city", "sources") if c in master]
        largest = largest.merge(master[cols], on="master_id", how="left")
    largest = _masked(largest, show_pii, [c for c in ("full_name", "email", "phone") if c in largest])
    return {
        "distribution": [{"size": int(s), "masters": int(n)} for s, n in dist.items()],
        "chart": bar_chart_svg(labels[:25], [int(v) for v in dist.values[:25]], "Cluster sizes"),
        "largest": _frame_rows(largest, 10),
        "columns": list(largest.columns),
        "conflicts": _conflict_sample(tables.get("master_lineage"), show_pii),
    }


CONFLICT_FIELDS = {"full_name": mask_name, "email": mask_email, "phone": mask_phone, "birth_date": mask_date}


def _conflict_sample(
    lineage: "pd.DataFrame | SpilledTable | None", show_pii: bool, masters: int = 10
) -> list[dict[str, Any]]:
    """Golden values chosen among disagreeing records, for the first `masters` masters with a
    conflict: field, published value, the rule that chose it, and the values that lost."""
    frame = _spilled_conflicts(lineage, masters) if isinstance(lineage, SpilledTable) else lineage
    if frame is None or frame.empty or "alternatives" not in frame:
        return []
    rows = frame[frame["alternatives"].notna() & frame["field"].isin(list(CONFLICT_FIELDS))]
    keep = sorted(rows["master_id"].unique())[:masters]
    rows = rows[rows["master_id"].isin(keep)].sort_values(["master_id", "field"], kind="stable")
    out = []
    for row in rows.to_dict("records"):
        mask = (lambda v: v) if show_pii else CONFLICT_FIELDS[row["field"]]
        lost = [f"{mask(a.get('value'))} ({len(a.get('records') or [])})" for a in _lost_values(row["alternatives"])]
        out.append(
            {"master_id": row["master_id"], "field": row["field"], "value": mask(row["value"]), "rule": row["rule"]}
            | {"lost": "; ".join(lost)}
        )
    return out


def _spilled_conflicts(lineage: SpilledTable, masters: int) -> pd.DataFrame:
    """The lineage rows of the first `masters` masters with a conflict, read from the spill
    file (the master ids of the conflicts first, then those masters' rows)."""
    import pyarrow.compute as pc

    conflict = pc.field("alternatives").is_valid() & pc.field("field").isin(sorted(CONFLICT_FIELDS))
    ids = lineage.frame(columns=["master_id"], where=conflict)["master_id"]
    keep = sorted(ids.dropna().unique())[:masters]
    return lineage.frame(where=conflict & pc.field("master_id").isin(keep))


def _lost_values(text: Any) -> list[dict[str, Any]]:
    try:
        items = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _section_review(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    """The review queue, most likely first, each pair with why it is held; how many are held by a
    hard constraint (likely matches) and how many are uncertain."""
    from .link.decisions import probability_text

    queue = inp.tables.get("review_queue")
    if queue is None or not len(queue):
        return {"total": 0, "rows": [], "columns": [], "held": 0, "uncertain": 0}
    columns = ("record_key_l", "record_key_r", "match_probability", "match_weight", "review_reason")
    show = queue[[c for c in columns if c in queue]]
    if "match_probability" in show:
        show = show.sort_values("match_probability", ascending=False, kind="stable")
    why = _review_reasons(show, inp)
    held = sum(w.startswith(("hard constraint", "held by")) for w in why)
    show = show.assign(why=why).drop(columns=["review_reason"], errors="ignore").head(MAX_ROWS)
    if "match_probability" in show:  # 0.99995 must not read as 1.0
        prob = pd.to_numeric(show["match_probability"], errors="coerce")
        show = show.assign(match_probability=[probability_text(p) if p == p else "" for p in prob])
    show = _with_names(show, inp.tables.get("customer_record"), show_pii)
    show = _as_record_refs(show)
    return {
        "total": int(len(queue)),
        "rows": _frame_rows(show, MAX_ROWS),
        "columns": list(show.columns),
        "held": int(held),
        "uncertain": int(len(queue) - held),
    }


def _with_names(show: pd.DataFrame, records: pd.DataFrame | None, show_pii: bool) -> pd.DataFrame:
    """Both records' names beside the pair (masked unless show_pii)."""
    name_col = next((c for c in ("full_name_std", "full_name") if records is not None and c in records), None)
    if not name_col or records is None or "record_key" not in records:
        return show
    keys = set(show["record_key_l"]) | set(show["record_key_r"])
    sub = records[records["record_key"].isin(keys)]
    names = sub.drop_duplicates("record_key").set_index("record_key")[name_col]
    show = show.assign(name_l=show["record_key_l"].map(names), name_r=show["record_key_r"].map(names))
    return _masked(show, show_pii, ["name_l", "name_r"])


def _as_record_refs(show: pd.DataFrame) -> pd.DataFrame:
    """The pair's records as people write them everywhere else (`source:id`, what `crmclean
    explain` takes), in columns `record_l` and `record_r`."""
    refs = {f"record_key_{side}": f"record_{side}" for side in "lr"}
    show = show.assign(**{key: show[key].map(key_to_ref) for key in refs if key in show})
    return show.rename(columns=refs)


def _review_reasons(show: pd.DataFrame, inp: ReportInput) -> list[str]:
    """Why each pair is in review: the queue's `review_reason`, else (a master written before
    the column existed) worked out from the run's pairs: the hard constraint that lowered it, or
    where its probability sits between the thresholds."""
    from .link.decisions import review_reasons

    caps: dict[tuple[str, str], str] = {}
    pairs = inp.pairs
    if pairs is not None and len(pairs) and "cap" in pairs:
        capped = pairs[pairs["cap"].fillna("").astype(str) != ""]
        caps = dict(zip(zip(capped["record_key_l"], capped["record_key_r"]), capped["cap"].astype(str)))
    keys = list(zip(show["record_key_l"], show["record_key_r"]))
    prob = show["match_probability"].tolist() if "match_probability" in show else [None] * len(show)
    worked_out = review_reasons(
        prob, [caps.get((a, b)) or caps.get((b, a)) or "" for a, b in keys], (inp.model or {}).get("thresholds")
    )
    stored = show["review_reason"].tolist() if "review_reason" in show else [None] * len(show)
    return [s if isinstance(s, str) and s else w for s, w in zip(stored, worked_out)]


def _section_expectations(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    reports = [r for r in inp.validations if r is not None]
    out_dir = Path(inp.out_dir or ".")
    docs = inp.data_docs
    docs_rel = None
    docs_error = build_error(docs)
    if docs and not docs_error:  # failed docs have no pages to link to
        docs_rel = os.path.relpath(Path(docs), out_dir).replace(os.sep, "/")
    docs_base = docs_rel.rsplit("/", 1)[0] + "/" if docs_rel and "/" in docs_rel else ""
    stages = []
    for rep in reports:
        rows = []
        for r in rep.results:
            page = rep.docs_pages.get(r["batch"]) if docs_rel else None
            examples = r.get("examples") or []
            if examples and not show_pii:
                fn = masker_for(str(r.get("column") or "")) or mask_text
                examples = [fn(str(v)) for v in examples]
            rows.append(
                {**r, "examples": ", ".join(str(v) for v in examples), "link": (docs_base + page) if page else None}
            )
        failed = [r for r in rows if not r["success"]]
        failed_first = sorted(rows, key=lambda r: (r["success"], r["severity"] != "critical"))
        stages.append(
            {
                "stage": rep.stage,
                "rows": failed_first,
                "failed": len(failed),
                "critical": sum(r["severity"] == "critical" for r in failed),
                "total": len(rows),
            }
        )
    return {"stages": stages, "docs": docs_rel, "docs_error": docs_error}


def _section_timings(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    timings = dict(inp.timings)
    if not timings:
        return {"rows": [], "chart": Markup(""), "total": 0, "wall": None, "overhead": None}
    order = list(timings)  # the order the stages ran in
    total = round(sum(float(v) for v in timings.values()), 3)
    wall = inp.wall_seconds
    overhead = round(max(float(wall) - total, 0.0), 3) if wall is not None else None
    labels, values = list(order), [float(timings[s]) for s in order]
    if overhead is not None:  # orchestration (Prefect tasks), report and database work between stages
        labels, values = [*labels, "between stages"], [*values, overhead]
    return {
        "rows": [{"stage": s, "seconds": round(float(timings[s]), 3)} for s in order],
        "chart": bar_chart_svg(labels, values, "Stage timings", " s"),
        "total": total,
        "wall": round(float(wall), 3) if wall is not None else None,
        "overhead": overhead,
    }


def _section_skipped(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    """Files of an input folder that were not read (a README): named, with the reason."""
    return {"rows": [{"file": path, "reason": why} for path, why in inp.skipped]}


SECTIONS: dict[str, Callable[[ReportInput, bool], dict[str, Any]]] = {
    "counts": _section_counts,
    "sources": _section_sources,
    "mapping": _section_mapping,
    "skipped": _section_skipped,
    "standardize": _section_standardize,
    "quarantine": _section_quarantine,
    "model": _section_model,
    "matching": _section_matching,
    "clusters": _section_clusters,
    "review": _section_review,
    "expectations": _section_expectations,
    "timings": _section_timings,
}


def _what_happened(inp: ReportInput, status: str, error: str | None, sections: dict[str, Any]) -> str:
    """One paragraph in plain words: the outcome, and where a failed run stopped."""
    if status != "success":
        timings = inp.timings
        # StageTimer records a stage when it ends, also when it raised: the last one is where it stopped.
        where = f" during stage '{list(timings)[-1]}'" if timings else " before any stage finished"
        return (
            f"The run failed{where}: {error or 'unknown error'}. Nothing was published; the master table is unchanged."
        )
    counts = sections.get("counts", {}).get("counts", {})
    if not counts.get("records_accepted") and not counts.get("records_in_master"):
        return "The run finished but no records were accepted: there was nothing to publish."
    return (
        f"The run succeeded: {counts.get('rows_read', 0):,} rows read, "
        f"{counts.get('records_accepted', 0):,} records accepted, {counts.get('quarantined', 0):,} quarantined, "
        f"{counts.get('masters', 0):,} master customers published."
    )


def build_report_model(inp: ReportInput, status: str, error: str | None, show_pii: bool) -> dict[str, Any]:
    """Everything the template shows; a section that fails records its error instead."""
    sections: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, fn in SECTIONS.items():
        try:
            sections[name] = fn(inp, show_pii)
        except Exception as exc:  # one broken section never loses the report
            sections[name] = {}
            errors[name] = f"{exc.__class__.__name__}: {exc}"
    return {
        "run_id": inp.run_id or "(unknown run)",
        "status": status,
        "error": error,
        "show_pii": show_pii,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "summary": _what_happened(inp, status, error, sections),
        "s": sections,
        "section_errors": errors,
    }


def render_report(model: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v
    return env.get_template("report.html.j2").render(**model)


def write_report(inp: ReportInput, status: str, error: str | None, show_pii: bool) -> Path:
    """Write `out_dir/report.html` and return its path."""
    out_dir = Path(inp.out_dir or ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(build_report_model(inp, status, error, show_pii)), encoding="utf-8")
    return path
