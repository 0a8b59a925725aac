"""Throughput of crmclean.standardize.standardize on a realistic mixed US/CN frame.

    python bench/bench_standardize.py [--records 200000] [--workers 2]
    python bench/bench_standardize.py --exports DIR --by-field   # ingested exports, CPU per field
    python bench/bench_standardize.py --exports DIR --as-workers # ... as the pool's workers run it

Prints records/s. `--exports` standardizes the records ingest reads from DIR (e.g. a bench/scale.py
export folder) instead; `--by-field` runs in this process (workers=1) and prints each field's CPU
seconds and distinct values, and what the parent spends besides (factorizing, mapping back,
summary, the whole-input phone-region and date-order votes). The frame mimics the sample CRMs: ~half US (Latin names, US phones in
several formats, street addresses with city/state/ZIP), ~half Chinese (Hanzi or pinyin names,
+86 mobiles, 省/市/区 addresses), dates in mixed formats, ~15 % near-duplicate people.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import pandas as pd


from crmclean.settings import load_rules  # noqa: E402
from crmclean.standardize import standardize  # noqa: E402

US_FIRST = "James Mary Robert Patricia John Jennifer Michael Linda William Elizabeth David Barbara Richard Susan Joseph Jessica Thomas Sarah Bob Bill Liz Jim Kate Mike".split()
US_LAST = "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee McDonald O'Neil".split()
AREA_CODES = [
    212,
    213,
    305,
    312,
    415,
    503,
    512,
    617,
    646,
    702,
    713,
    718,
    720,
    773,
    808,
    817,
    917,
    206,
    303,
    404,
    469,
    602,
    614,
    619,
    650,
    703,
    704,
    818,
    832,
    949,
]
STREETS = "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Sunset Lincoln".split()
SUFFIXES = ["Street", "St", "Avenue", "Ave.", "Road", "Blvd", "Lane", "Drive"]
CITIES = [
    ("Springfield", "IL", "627"),
    ("Boston", "MA", "021"),
    ("Austin", "TX", "787"),
    ("Seattle", "Washington", "981"),
    ("Denver", "CO", "802"),
]
CN_SUR = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾单") + ["欧阳", "司马", "诸葛"]
CN_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华雪东国庆")
CN_PLACES = [
    ("广东省", "广州市", "天河区"),
    ("广东省", "深圳市", "南山区"),
    ("北京市", "", "朝阳区"),
    ("上海市", "", "浦东新区"),
    ("浙江省", "杭州市", "西湖区"),
    ("四川省", "成都市", "武侯区"),
]
ROADS = ["天河路", "深南大道", "建国路", "世纪大道", "文三路", "人民南路"]
DOMAINS = ["gmail.com", "yahoo.com", "hotmail.com", "qq.com", "163.com", "gmial.com", "outlook.com"]


def _us(r: random.Random, i: int) -> dict:
    first, last = r.choice(US_FIRST), r.choice(US_LAST)
    city, state, z = r.choice(CITIES)
    area = r.choice(AREA_CODES)
    line, ex = r.randint(1000, 9999), r.randint(201, 989)
    phone = r.choice(
        [
            f"({area}) {ex}-{line}",
            f"{area}-{ex}-{line}",
            f"+1 {area} {ex} {line}",
            f"1{area}{ex}{line}",
            f"{area}.{ex}.{line} x12",
        ]
    )
    name = r.choice(
        [f"{first} {last}", f"{last}, {first}", f"{first.upper()} {last.upper()}", f"Mr. {first} {last} Jr."]
    )
    return {
        "full_name": name,
        "email": f"{first}.{last}{i % 997}@{r.choice(DOMAINS)}",
        "phone": phone,
        "birth_date": r.choice(
            [
                f"{r.randint(1, 12)}/{r.randint(1, 28)}/{r.randint(1940, 2004)}",
                f"{r.randint(1940, 2004)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}",
                str(r.randint(15000, 38000)),
            ]
        ),
        "address": f"{r.randint(1, 9999)} {r.choice(['', 'N ', 'South '])}{r.choice(STREETS)} {r.choice(SUFFIXES)}{r.choice(['', ' Apt 4', ' #12'])}",
        "city": city,
        "state": state,
        "postal_code": f"{z}{r.randint(10, 99)}" + r.choice(["", "-1234"]),
        "country": r.choice([None, "US", "USA", "United States"]),
        "created_at": f"20{r.randint(10, 24)}-0{r.randint(1, 9)}-1{r.randint(0, 9)} 10:2{r.randint(0, 9)}:00",
        "source": "us_crm",
    }


def _cn(r: random.Random, i: int) -> dict:
    sur, given = r.choice(CN_SUR), "".join(r.choice(CN_GIVEN) for _ in range(r.randint(1, 2)))
    prov, city, dist = r.choice(CN_PLACES)
    mobile = f"1{r.choice(['38', '39', '35', '58', '86', '89', '77', '99', '50', '52'])}{r.randint(0, 99999999):08d}"
    return {
        "full_name": r.choice([sur + given, sur + given + "先生", sur + given]),
        "email": r.choice([f"{i}{r.randint(0, 99999)}@qq.com", f"user{i}@163.com", None, "无"]),
        "mobile": r.choice([mobile, f"+86 {mobile}", f"0086-{mobile}", f"{mobile}.0", f"86{mobile}"]),
        "landline": r.choice([None, None, f"010-{r.randint(60000000, 69999999)}"]),
        "birth_date": r.choice(
            [
                f"{r.randint(1950, 2004)}年{r.randint(1, 12)}月{r.randint(1, 28)}日",
                f"{r.randint(1950, 2004)}/{r.randint(1, 12)}/{r.randint(1, 28)}",
                f"{r.randint(1950, 2004)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}",
            ]
        ),
        "address": f"{prov}{city}{dist}{r.choice(ROADS)}{r.randint(1, 999)}号{r.randint(1, 30)}楼{r.randint(101, 2505)}室",
        "country": r.choice([None, "中国", "CN"]),
        "company": r.choice([None, "腾讯科技有限公司", "阿里巴巴集团"]),
        "created_at": f"20{r.randint(10, 24)}-{r.randint(1, 12)}-{r.randint(1, 28)}",
        "source": "cn_crm",
    }


def build_frame(n: int, seed: int = 7) -> pd.DataFrame:
    r = random.Random(seed)
    rows = []
    for i in range(n):
        if rows and r.random() < 0.15:
            row = dict(r.choice(rows[-500:]))  # a near-duplicate person from another system
        else:
            row = _us(r, i) if r.random() < 0.5 else _cn(r, i)
        row["source_record_id"] = str(i)
        row["record_key"] = f"{row['source']}|{i}"
        row["locator"] = f"{row['source']}.csv@line:{i + 2}"
        row["file"] = f"{row['source']}.csv"
        row["raw"] = "{}"
        rows.append(row)
    return pd.DataFrame(rows)


def ingested(exports: str) -> pd.DataFrame:
    """The records frame `crmclean run` would standardize from the exports in `exports`."""
    from pathlib import Path

    from crmclean.ingest import ingest

    return ingest(sorted(p for p in Path(exports).iterdir() if p.is_file()), load_rules()).records  # not truth/


def by_field(frame: pd.DataFrame, rules) -> None:
    """CPU seconds per field standardizer (in this process) and of the rest of the stage."""
    from crmclean import standardize as std_module
    from crmclean.standardize.parallel import FieldJob

    spent: dict[str, tuple[float, int]] = {}
    columns = FieldJob._columns

    def timed(job):
        start = time.process_time()
        out = columns(job)
        spent[f"{job.fn.__name__} → {job.names[0]}"] = (time.process_time() - start, len(job.uniques))
        return out

    FieldJob._columns = timed  # type: ignore[method-assign]
    start = time.process_time()
    votes = {
        "day_first": std_module.infer_date_orders(frame, rules),
        "phone_regions": std_module.infer_phone_regions(frame, rules),
    }
    voting = time.process_time() - start
    std_module.standardize(frame, rules, workers=1, **votes)
    total = time.process_time() - start
    FieldJob._columns = columns  # type: ignore[method-assign]
    for field, (cpu, distinct) in sorted(spent.items(), key=lambda kv: -kv[1][0]):
        print(f"{field:40s} {cpu:7.2f} CPU s  {distinct:9,d} distinct  {1e6 * cpu / max(distinct, 1):6.1f} µs each")
    per_value = sum(cpu for cpu, _ in spent.values())
    print(
        f"region/date votes {voting:.2f}, rest of the parent {total - per_value - voting:.2f}, total {total:.2f} CPU s"
    )
    print(f"{len(frame):,} records, load average {os.getloadavg()[0]:.1f}")


class _InlinePool:
    """An executor that runs each chunk at once in this process, the way a pool worker runs it
    (`_run_chunk_uncached`: the standardizer without its top-level cache, the per-value caches
    emptied after each chunk), and adds its CPU seconds to `spent` by standardizer."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def submit(self, fn, standardizer, *args):
        from concurrent.futures import Future

        start = time.process_time()
        future: Future = Future()
        future.set_result(fn(standardizer, *args))
        name = standardizer.__name__
        self.spent[name] = self.spent.get(name, 0.0) + time.process_time() - start
        return future

    def shutdown(self) -> None:
        pass


def as_workers(frame: pd.DataFrame, rules) -> None:
    """CPU seconds per standardizer as the pool's workers spend them (every chunk run in this
    process, no pickling), and the parent's share: steadier than timing the pool itself."""
    from crmclean import standardize as std_module

    votes = {
        "day_first": std_module.infer_date_orders(frame, rules),
        "phone_regions": std_module.infer_phone_regions(frame, rules),
    }
    pool = _InlinePool()
    make_pool, std_module.make_pool = std_module.make_pool, lambda workers: pool
    start = time.process_time()
    try:
        std_module.standardize(frame, rules, workers=2, **votes)
    finally:
        std_module.make_pool = make_pool
    total = time.process_time() - start
    for name, cpu in sorted(pool.spent.items(), key=lambda kv: -kv[1]):
        print(f"{name:28s} {cpu:7.2f} CPU s (workers' share)")
    workers = sum(pool.spent.values())
    print(f"workers {workers:.2f}, parent {total - workers:.2f}, total {total:.2f} CPU s (votes apart)")
    print(f"{len(frame):,} records, load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--exports", help="standardize the ingested exports of this folder instead")
    ap.add_argument("--by-field", action="store_true", help="CPU per field, in this process")
    ap.add_argument("--as-workers", action="store_true", help="CPU per standardizer as the pool's workers run it")
    args = ap.parse_args()
    frame = ingested(args.exports) if args.exports else build_frame(args.records)
    rules = load_rules()
    if args.by_field:
        by_field(frame, rules)
        return
    if args.as_workers:
        as_workers(frame, rules)
        return
    t0, c0 = time.perf_counter(), os.times()
    std, summary = standardize(frame, rules, workers=args.workers)
    elapsed, c1 = time.perf_counter() - t0, os.times()
    parent = (c1.user - c0.user) + (c1.system - c0.system)
    children = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    cpu = parent + children
    print(summary.to_string(index=False))
    print(
        f"{len(frame)} records in {elapsed:.1f} s wall with workers={args.workers}: {len(frame) / elapsed:,.0f} records/s"
    )
    print(
        f"CPU time {cpu:.1f} s (parent {parent:.1f} s, workers {children:.1f} s): "
        f"{len(frame) / cpu:,.0f} records per CPU-second; load average {os.getloadavg()[0]:.1f}"
    )
    # The parent waits while the pool works, so on an otherwise idle machine the wall time is
    # about parent CPU + worker CPU / workers. Printed because shared machines distort wall time.
    idle = parent + children / max(args.workers, 1)
    print(f"estimated wall on an idle machine: {idle:.1f} s → {len(frame) / idle:,.0f} records/s")


if __name__ == "__main__":
    main()
