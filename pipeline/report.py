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
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from markupsafe import Markup

from .masking import mask_text, masker_for
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


def histogram_svg(counts: list[int], edges: list[float], title: str, stacks: dict[str, list[int]] | None = None,
                  width: int = 640, height: int = 220) -> Markup:
    """Vertical histogram; `stacks` (name → counts per bin) draws stacked coloured bars."""
    if not counts or not sum(counts):
        return Markup("")
    left, bottom, top = 40, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    cmax = max(counts)
    bw = plot_w / len(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" class="val">{cmax:,}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="val">0</text>',
    ]
    series = stacks or {"all": counts}
    for i in range(len(counts)):
        base = 0
        for k, (name, vals) in enumerate(series.items()):
            v = vals[i]
            if not v:
                continue
            h = plot_h * v / cmax
            y = top + plot_h - plot_h * (base + v) / cmax
            parts.append(
                f'<rect x="{left + i * bw + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" height="{h:.1f}" '
                f'class="s{k}"><title>{html.escape(name)}: {v:,}</title></rect>'
            )
            base += v
    step = max(1, len(edges) // 6)
    for i in range(0, len(edges), step):
        parts.append(
            f'<text x="{left + i * bw:.1f}" y="{height - 12}" text-anchor="middle" class="val">'
            f"{html.escape(_fmt_edge(edges[i]))}</text>"
        )
    if stacks:
        for k, name in enumerate(stacks):
            parts.append(f'<rect x="{width - 120}" y="{top + 14 * k}" width="10" height="10" class="s{k}"/>'
                         f'<text x="{width - 106}" y="{top + 9 + 14 * k}" class="val">{html.escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt_edge(x: float) -> str:
    return f"{x:g}" if abs(x) >= 1 or x == 0 else f"{x:.2f}"


# --------------------------------------------------------------------------- sections


def _frame_rows(frame: pd.DataFrame, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    return [{k: _cell(v) for k, v in row.items()} for row in frame.head(limit).to_dict("records")]


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
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
        counts = {"rows_read": int(ingested.rows_read or 0), "records_accepted": int(len(ingested.records)),
                  "quarantined": int(len(ingested.quarantine))}
    labels = list(counts)
    return {"counts": counts, "chart": bar_chart_svg(labels, [counts[k] for k in labels], "Counts by stage"),
            "flow": _stage_flow(inp, counts)}


def _stage_flow(inp: ReportInput, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Rows through the stages: where they were quarantined, how many masters came out."""
    quarantine = _quarantine(inp)
    by_stage = (quarantine["stage"].fillna("?").value_counts().to_dict()
                if quarantine is not None and len(quarantine) and "stage" in quarantine else {})
    pairs = inp.pairs
    steps = [("ingest", "rows read", counts.get("rows_read")),
             ("ingest", "quarantined at ingest", by_stage.get("ingest")),
             ("standardize", "quarantined at standardize", by_stage.get("standardize")),
             ("standardize", "records accepted", counts.get("records_accepted")),
             ("link", "candidate pairs scored", len(pairs) if pairs is not None else None),
             ("cluster", "master customers", counts.get("masters")),
             ("review", "pairs for review", counts.get("review_pairs"))]
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
                    rows.append({"source": source, "file": file_name, "sheet": sheet or "", "header": header,
                                 "field": canonical or "(unmapped → extra)"})
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
    return {"total": int(len(quarantine)), "reasons": reasons,
            "chart": bar_chart_svg([r["code"] for r in reasons], [r["count"] for r in reasons], "Quarantine by reason")}


def _mask_raw(raw: Any) -> Any:
    """Raw rows are JSON {header: value}: mask each value by its header, else mask the text."""
    if raw is None or raw == "":
        return raw
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return mask_text(raw)
    if not isinstance(data, dict):
        return mask_text(raw)
    return json.dumps({k: (masker_for(str(k)) or mask_text)(v) if v not in (None, "") else v for k, v in data.items()},
                      ensure_ascii=False)


def _section_matching(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    pairs = inp.pairs
    out: dict[str, Any] = {"pairs": 0, "chart": Markup(""), "decisions": {}, "blocking": [], "blocking_columns": []}
    blocking = inp.blocking_summary
    if blocking is not None and len(blocking):
        out["blocking"], out["blocking_columns"] = _frame_rows(blocking, 50), list(blocking.columns)
    if pairs is None or not len(pairs) or "match_probability" not in pairs:
        return out
    prob = pd.to_numeric(pairs["match_probability"], errors="coerce").fillna(0).clip(0, 1)
    edges = [i / 20 for i in range(21)]
    bins = pd.cut(prob, bins=edges, include_lowest=True, labels=False)
    counts = bins.value_counts().reindex(range(20), fill_value=0).astype(int).tolist()
    stacks = None
    if "decision" in pairs:
        stacks = {}
        for decision in ("non_match", "review", "match"):
            sel = bins[pairs["decision"] == decision]
            if len(sel):
                stacks[decision] = sel.value_counts().reindex(range(20), fill_value=0).astype(int).tolist()
        out["decisions"] = {str(k): int(v) for k, v in pairs["decision"].value_counts().items()}
    out["pairs"] = int(len(pairs))
    out["chart"] = histogram_svg(counts, edges, "Match probability histogram", stacks or None)
    return out


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
    return {"distribution": [{"size": int(s), "masters": int(n)} for s, n in dist.items()],
            "chart": bar_chart_svg(labels[:25], [int(v) for v in dist.values[:25]], "Cluster sizes"),
            "largest": _frame_rows(largest, 10), "columns": list(largest.columns)}


def _section_review(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    tables = inp.tables
    queue = tables.get("review_queue")
    if queue is None or not len(queue):
        return {"total": 0, "rows": [], "columns": []}
    show = queue[[c for c in ("record_key_l", "record_key_r", "match_probability", "match_weight") if c in queue]]
    if "match_probability" in show:
        show = show.sort_values("match_probability", ascending=False, kind="stable")
    show = show.head(MAX_ROWS)
    records = tables.get("customer_record")
    name_col = next((c for c in ("full_name_std", "full_name") if records is not None and c in records), None)
    if name_col and "record_key" in records:
        wanted = set(show["record_key_l"]) | set(show["record_key_r"])
        sub = records[records["record_key"].isin(wanted)]
        names = sub.drop_duplicates("record_key").set_index("record_key")[name_col]
        show = show.assign(name_l=show["record_key_l"].map(names), name_r=show["record_key_r"].map(names))
        show = _masked(show, show_pii, ["name_l", "name_r"])
    return {"total": int(len(queue)), "rows": _frame_rows(show, MAX_ROWS), "columns": list(show.columns)}


def _section_expectations(inp: ReportInput, show_pii: bool) -> dict[str, Any]:
    reports = [r for r in inp.validations if r is not None]
    out_dir = Path(inp.out_dir or ".")
    docs = inp.data_docs
    docs_rel = None
    if docs:
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
            rows.append({**r, "examples": ", ".join(str(v) for v in examples),
                         "link": (docs_base + page) if page else None})
        failed = [r for r in rows if not r["success"]]
        failed_first = sorted(rows, key=lambda r: (r["success"], r["severity"] != "critical"))
        stages.append({"stage": rep.stage, "rows": failed_first,
                       "failed": len(failed), "critical": sum(r["severity"] == "critical" for r in failed),
                       "total": len(rows)})
    return {"stages": stages, "docs": docs_rel}


def _section_timings(inp: ReportInput, _show_pii: bool) -> dict[str, Any]:
    timings = dict(inp.timings)
    if not timings:
        return {"rows": [], "chart": Markup(""), "total": 0}
    order = list(timings)  # the order the stages ran in
    return {"rows": [{"stage": s, "seconds": round(float(timings[s]), 3)} for s in order],
            "chart": bar_chart_svg(order, [float(timings[s]) for s in order], "Stage timings", " s"),
            "total": round(sum(float(v) for v in timings.values()), 3)}


SECTIONS: dict[str, Callable[[ReportInput, bool], dict[str, Any]]] = {
    "counts": _section_counts,
    "sources": _section_sources,
    "mapping": _section_mapping,
    "standardize": _section_standardize,
    "quarantine": _section_quarantine,
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
        return (f"The run failed{where}: {error or 'unknown error'}. "
                "Nothing was published; the master table is unchanged.")
    counts = sections.get("counts", {}).get("counts", {})
    if not counts.get("records_accepted") and not counts.get("records_in_master"):
        return "The run finished but no records were accepted: there was nothing to publish."
    return (f"The run succeeded: {counts.get('rows_read', 0):,} rows read, "
            f"{counts.get('records_accepted', 0):,} records accepted, {counts.get('quarantined', 0):,} quarantined, "
            f"{counts.get('masters', 0):,} master customers published.")


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
    env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) else v
    return env.get_template("report.html.j2").render(**model)


def write_report(inp: ReportInput, status: str, error: str | None, show_pii: bool) -> Path:
    """Write `out_dir/report.html` and return its path."""
    out_dir = Path(inp.out_dir or ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(build_report_model(inp, status, error, show_pii)), encoding="utf-8")
    return path

