"""Named test scenarios: tiny raw record frames with their truth, for every stage's tests.

Each builder returns `(records, truth)`:

* `records` — one row per source record, columns `source`, `source_record_id` and every
  canonical field of `crmclean.schema.CANONICAL_FIELDS`, holding the *raw text* as ingest would
  hand it over (None where the source has no value). `as_records_frame(records)` adds the
  remaining identity columns (`record_key`, `locator`, `file`, `extra`, `raw`) so the frame is a
  valid ingest output for standardize/link/cluster tests.
* `truth` — `source, source_record_id, entity_id, scenario, group_id`, the same layout as the
  generator's truth.csv, so `crmclean.evaluate.evaluate(truth, xref)` scores a result directly.

Source names are the three demo systems: `crm_legacy_cn` (Chinese), `crm_web_us` (US web shop,
pinyin for Chinese customers), `crm_sales` (Excel export). Values are realistic but fictional.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from crmclean.schema import CANONICAL_FIELDS, record_key

TRUTH_COLUMNS = ["source", "source_record_id", "entity_id", "scenario", "group_id"]
CN, WEB, SALES = "crm_legacy_cn", "crm_web_us", "crm_sales"


def _build(rows: list[dict], scenario: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rows: dicts with source, source_record_id, entity (truth), optional group, and raw fields."""
    records, truth = [], []
    for row in rows:
        rec = {"source": row["source"], "source_record_id": row["source_record_id"]}
        for f in CANONICAL_FIELDS:
            rec[f] = row.get(f)
        if rec["record_id"] is None:
            rec["record_id"] = row["source_record_id"]
        records.append(rec)
        truth.append(
            {
                "source": row["source"],
                "source_record_id": row["source_record_id"],
                "entity_id": row["entity"],
                "scenario": row.get("scenario", scenario),
                "group_id": row.get("group", ""),
            }
        )
    cols = ["source", "source_record_id", *CANONICAL_FIELDS]
    return pd.DataFrame(records, columns=cols).astype(object), pd.DataFrame(truth, columns=TRUTH_COLUMNS)


def as_records_frame(records: pd.DataFrame) -> pd.DataFrame:
    """Add record_key/locator/file/extra/raw so a factory frame looks like `ingest(...).records`."""
    out = records.copy()
    out.insert(0, "record_key", [record_key(s, r) for s, r in zip(out["source"], out["source_record_id"])])
    out.insert(3, "locator", [f"{s}.csv@line:{i + 2}" for i, s in enumerate(out["source"])])
    out.insert(4, "file", [f"{s}.csv" for s in out["source"]])
    out["extra"] = "{}"
    out["raw"] = [
        json.dumps({f: r[f] for f in CANONICAL_FIELDS if r[f] is not None}, ensure_ascii=False)
        for r in out.to_dict("records")
    ]
    return out


def household() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hard negative: a couple and their daughter share address and landline, not identity.

    Robert and Susan Miller (and Emma) live at 12 Oak St; Robert also appears in the sales
    workbook with the same landline. Only Robert's two records may merge.
    """
    addr = dict(address="12 Oak St", city="Springfield", state="IL", postal_code="62704", country="US")
    return _build(
        [
            dict(
                source=WEB,
                source_record_id="1001",
                entity="HH-ROBERT",
                group="HH1",
                first_name="Robert",
                last_name="Miller",
                email="robert.miller@gmail.com",
                phone="(217) 555-0142",
                birth_date="03/14/1961",
                **addr,
            ),
            dict(
                source=WEB,
                source_record_id="1002",
                entity="HH-SUSAN",
                group="HH1",
                first_name="Susan",
                last_name="Miller",
                email="sue.miller64@yahoo.com",
                phone="(217) 555-0142",
                birth_date="09/02/1964",
                **addr,
            ),
            dict(
                source=WEB,
                source_record_id="1003",
                entity="HH-EMMA",
                group="HH1",
                first_name="Emma",
                last_name="Miller",
                email="emma.miller@outlook.com",
                phone="217.555.0142",
                birth_date="06/30/1995",
                **addr,
            ),
            dict(
                source=SALES,
                source_record_id="ACC-000101",
                entity="HH-ROBERT",
                group="HH1",
                full_name="Miller, Robert",
                mobile="2175550142",
                email="Robert.Miller@gmail.com",
                birth_date="1961-03-14",
                address="12 Oak Street, Springfield, IL 62704",
            ),
        ],
        "household",
    )


def twins() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hard negative: twins share surname, birth date, address and landline; emails/mobiles differ.

    李明 and 李亮 (born 1990-05-14) at 朝阳区建国路88号; 李明 is also in crm_web_us as
    "Ming Li" with his own mobile. Only 李明's two records may merge.
    """
    return _build(
        [
            dict(
                source=CN,
                source_record_id="KH00000201",
                entity="TW-MING",
                group="TW1",
                full_name="李明",
                gender="男",
                mobile="138 0013 8000",
                landline="010-65871234",
                email="liming90@163.com",
                birth_date="1990年5月14日",
                state="北京市",
                city="北京市",
                address="朝阳区建国路88号",
                postal_code="100022",
            ),
            dict(
                source=CN,
                source_record_id="KH00000202",
                entity="TW-LIANG",
                group="TW1",
                full_name="李亮",
                gender="男",
                mobile="139 1122 3344",
                landline="010-65871234",
                email="liliang_90@qq.com",
                birth_date="1990/5/14",
                state="北京市",
                city="北京市",
                address="朝阳区建国路88号",
                postal_code="100022",
            ),
            dict(
                source=WEB,
                source_record_id="1201",
                entity="TW-MING",
                group="TW1",
                first_name="Ming",
                last_name="Li",
                email="liming90@163.com",
                phone="+86 138 0013 8000",
                birth_date="05/14/1990",
                address="88 Jianguo Lu, Chaoyang District",
                city="Beijing",
                state="Beijing",
                postal_code="100022",
                country="China",
            ),
        ],
        "twins",
    )


def jr_sr() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hard negative: father and son with the same full name, Sr/Jr, 29 years apart, same address.

    The son's sales record has no suffix at all; his birth date and mobile still tell him apart.
    """
    addr = dict(address="455 Maple Ave Apt 3", city="Austin", state="TX", postal_code="78704", country="USA")
    return _build(
        [
            dict(
                source=WEB,
                source_record_id="1301",
                entity="JS-SR",
                group="JS1",
                first_name="James",
                last_name="Walker Sr.",
                email="jwalker.sr@aol.com",
                phone="(512) 555-0199",
                birth_date="07/04/1955",
                **addr,
            ),
            dict(
                source=WEB,
                source_record_id="1302",
                entity="JS-JR",
                group="JS1",
                first_name="James",
                last_name="Walker Jr.",
                email="james.walker84@gmail.com",
                phone="(512) 555-0188",
                birth_date="11/21/1984",
                **addr,
            ),
            dict(
                source=SALES,
                source_record_id="ACC-000301",
                entity="JS-JR",
                group="JS1",
                full_name="James Walker",
                mobile="5125550188",
                email="jameswalker84@gmail.com",
                birth_date="1984-11-21",
                address="455 Maple Avenue, Apt. 3, Austin, TX 78704",
            ),
            dict(
                source=SALES,
                source_record_id="ACC-000302",
                entity="JS-SR",
                group="JS1",
                full_name="Mr. James Walker Sr",
                mobile="15125550199",
                birth_date="1955-07-04",
                address="455 Maple Ave #3, Austin, TX 78704",
            ),
        ],
        "jr_sr",
    )


def moved_customer() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Same person, new address and new mobile in one system; name, birth date and email unchanged."""
    return _build(
        [
            dict(
                source=WEB,
                source_record_id="1401",
                entity="MV-ANNA",
                first_name="Anna",
                last_name="Kowalski",
                email="anna.kowalski@gmail.com",
                phone="(206) 555-0110",
                birth_date="02/28/1979",
                address="1200 Pine St",
                city="Seattle",
                state="WA",
                postal_code="98101",
                country="US",
            ),
            dict(
                source=SALES,
                source_record_id="LEAD-000401",
                entity="MV-ANNA",
                full_name="Anna Kowalski",
                mobile="3035550177",
                email="anna.kowalski@gmail.com",
                birth_date="1979-02-28",
                address="77 Cedar Dr, Denver, CO 80202",
            ),
        ],
        "moved",
    )


def nickname() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Robert ↔ Bob and Elizabeth ↔ Liz: same person under a nickname, gmail dots/+tag in the email."""
    return _build(
        [
            dict(
                source=WEB,
                source_record_id="1501",
                entity="NK-ROBERT",
                first_name="Robert",
                last_name="Johnson",
                email="robert.johnson@gmail.com",
                phone="(415) 555-0123",
                birth_date="01/09/1972",
                address="88 Market St",
                city="San Francisco",
                state="CA",
                postal_code="94105",
                country="US",
            ),
            dict(
                source=SALES,
                source_record_id="ACC-000501",
                entity="NK-ROBERT",
                full_name="Bob Johnson",
                mobile="4155550123",
                email="robertjohnson+shop@gmail.com",
                birth_date="1972-01-09",
            ),
            dict(
                source=WEB,
                source_record_id="1502",
                entity="NK-ELIZABETH",
                first_name="Elizabeth",
                last_name="Brown",
                email="ebrown@hotmail.com",
                phone="415.555.0456",
                birth_date="12/01/1988",
                address="19 Mission St",
                city="San Francisco",
                state="CA",
                postal_code="94103",
                country="US",
            ),
            dict(
                source=SALES,
                source_record_id="LEAD-000502",
                entity="NK-ELIZABETH",
                full_name="Brown, Liz",
                mobile="14155550456",
                email="EBrown@hotmail.com",
                birth_date="1988-12-01",
            ),
        ],
        "nickname",
    )


def hanzi_pinyin() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One person in Hanzi in the Chinese CRM and in pinyin (either order) in the US web shop.

    谢雪冬 = "Xuedong Xie"; 单磊 = "SHAN Lei" (surname reading 单 → Shan, not Dan);
    曾慧 = "Hui Zeng" (曾 → Zeng, not Ceng); 張偉 is traditional for 张伟.
    """
    return _build(
        [
            dict(
                source=CN,
                source_record_id="KH00000601",
                entity="HP-XIE",
                full_name="谢雪冬",
                gender="男",
                mobile="+86 13800138000",
                email="xuedong.xie@163.com",
                birth_date="1985年3月7日",
                state="广东省",
                city="广州市",
                address="天河区天河路385号",
                postal_code="510620",
            ),
            dict(
                source=WEB,
                source_record_id="1601",
                entity="HP-XIE",
                first_name="Xuedong",
                last_name="Xie",
                email="xuedong.xie@163.com",
                phone="+86 138 0013 8000",
                birth_date="03/07/1985",
                address="385 Tianhe Lu, Tianhe District",
                city="Guangzhou",
                state="Guangdong",
                postal_code="510620",
                country="China",
            ),
            dict(
                source=CN,
                source_record_id="KH00000602",
                entity="HP-SHAN",
                full_name="单磊",
                gender="男",
                mobile="0086-139 2233 4455",
                birth_date="1979/11/2",
                state="上海市",
                city="上海市",
                address="浦东新区世纪大道100号",
            ),
            dict(
                source=WEB,
                source_record_id="1602",
                entity="HP-SHAN",
                first_name="SHAN",
                last_name="Lei",
                phone="+8613922334455",
                birth_date="11/02/1979",
                city="Shanghai",
                country="CN",
            ),
            dict(
                source=CN,
                source_record_id="KH00000603",
                entity="HP-ZENG",
                full_name="曾慧",
                gender="女",
                mobile="186 2000 1111",
                email="zenghui@qq.com",
                birth_date="1992-08-15",
                city="成都市",
            ),
            dict(
                source=WEB,
                source_record_id="1603",
                entity="HP-ZENG",
                first_name="Hui",
                last_name="Zeng",
                email="zenghui@qq.com",
                birth_date="08/15/1992",
                city="Chengdu",
                country="China",
            ),
            dict(
                source=SALES,
                source_record_id="ACC-000603",
                entity="HP-ZHANGWEI",
                full_name="張偉",
                mobile="8613700137000",
                birth_date="1980-01-01",
                address="北京市海淀区中关村大街27号1201室",
            ),
            dict(
                source=CN,
                source_record_id="KH00000604",
                entity="HP-ZHANGWEI",
                full_name="张伟",
                mobile="137 0013 7000",
                birth_date="1980年1月1日",
                state="北京市",
                city="北京市",
                address="海淀区中关村大街27号1201室",
                postal_code="100080",
            ),
        ],
        "hanzi_pinyin",
    )


def common_name() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hard negative: three different 张伟 and two different John Smith in one city each."""
    bj = dict(state="北京市", city="北京市")
    return _build(
        [
            dict(
                source=CN,
                source_record_id="KH00000701",
                entity="CN-ZW1",
                group="CN1",
                full_name="张伟",
                gender="男",
                mobile="13501010101",
                email="zhangwei77@163.com",
                birth_date="1977/4/2",
                address="海淀区学院路20号",
                **bj,
            ),
            dict(
                source=CN,
                source_record_id="KH00000702",
                entity="CN-ZW2",
                group="CN1",
                full_name="张伟",
                gender="男",
                mobile="13602020202",
                email="zw_1990@qq.com",
                birth_date="1990/10/30",
                address="朝阳区建国路5号",
                **bj,
            ),
            dict(
                source=CN,
                source_record_id="KH00000703",
                entity="CN-ZW3",
                group="CN1",
                full_name="张伟",
                gender="女",
                mobile="15803030303",
                birth_date="1985/6/18",
                address="东城区长安街1号",
                **bj,
            ),
            dict(
                source=WEB,
                source_record_id="1701",
                entity="CN-JS1",
                group="CN2",
                first_name="John",
                last_name="Smith",
                email="john.smith@gmail.com",
                phone="(212) 555-0101",
                birth_date="02/02/1970",
                city="New York",
                state="NY",
            ),
            dict(
                source=WEB,
                source_record_id="1702",
                entity="CN-JS2",
                group="CN2",
                first_name="John",
                last_name="Smith",
                email="jsmith88@yahoo.com",
                phone="(646) 555-0202",
                birth_date="08/19/1988",
                city="New York",
                state="NY",
            ),
        ],
        "common_name",
    )


def typo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One-edit typos in surname and email domain (gmial.com), plus case/whitespace noise."""
    return _build(
        [
            dict(
                source=WEB,
                source_record_id="1801",
                entity="TY-KATHERINE",
                first_name="Katherine",
                last_name="Thompson",
                email="k.thompson@gmail.com",
                phone="(617) 555-0133",
                birth_date="10/10/1983",
                city="Boston",
                state="MA",
            ),
            dict(
                source=SALES,
                source_record_id="LEAD-000801",
                entity="TY-KATHERINE",
                full_name="  katherine THOMSPON ",
                mobile="6175550133",
                email="K.Thompson@gmial.com",
                birth_date="1983-10-10",
            ),
        ],
        "typo",
    )


def shared_placeholders() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four different people whose e-mail/phone are the same placeholder (n/a, test@test.com,
    000-000-0000, 123): shared junk values must never link them."""
    return _build(
        [
            dict(
                source=WEB,
                source_record_id="1901",
                entity="PH-1",
                first_name="Olivia",
                last_name="Reed",
                email="test@test.com",
                phone="000-000-0000",
                birth_date="04/04/1990",
                city="Denver",
                state="CO",
            ),
            dict(
                source=WEB,
                source_record_id="1902",
                entity="PH-2",
                first_name="Marcus",
                last_name="Hill",
                email="test@test.com",
                phone="000-000-0000",
                birth_date="09/19/1975",
                city="Miami",
                state="FL",
            ),
            dict(
                source=CN,
                source_record_id="KH00000901",
                entity="PH-3",
                full_name="周敏",
                mobile="n/a",
                email="n/a",
                birth_date="1988年2月2日",
                city="杭州市",
            ),
            dict(
                source=CN,
                source_record_id="KH00000902",
                entity="PH-4",
                full_name="吴刚",
                mobile="123",
                email="n/a",
                birth_date="1969/12/30",
                city="南京市",
            ),
        ],
        "shared_placeholders",
    )


SCENARIOS = {
    f.__name__: f
    for f in (household, twins, jr_sr, moved_customer, nickname, hanzi_pinyin, common_name, typo, shared_placeholders)
}


def all_scenarios() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every scenario in one frame (record ids are unique across scenarios)."""
    parts = [f() for f in SCENARIOS.values()]
    return (pd.concat([p[0] for p in parts], ignore_index=True), pd.concat([p[1] for p in parts], ignore_index=True))


# ------------------------------------------------------------------------------ expectation suites


def refusing_expectations(folder) -> Path:
    """A copy of the shipped suites in `folder` with one more critical expectation that any
    master of more than 10 customers fails: a run with it is refused at publish (exit 3)."""
    return expectations_with(folder, "expect_table_row_count_to_be_between", {"min_value": 0, "max_value": 10})


def expectations_with(folder, kind: str, kwargs: dict, table: str = "master_customer") -> Path:
    """A copy of the shipped suites in `folder` with one more critical result expectation on
    `table`: what a user adds to expectations/result.json without a code change."""
    import shutil

    from crmclean.settings import DEFAULT_EXPECTATIONS_DIR

    folder = Path(folder)
    shutil.copytree(DEFAULT_EXPECTATIONS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    suite = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    suite["expectations"].append({"type": kind, "kwargs": kwargs, "meta": {"severity": "critical", "table": table}})
    (folder / "result.json").write_text(json.dumps(suite), encoding="utf-8")
    return folder


def generated_truth_clusters(customers: int, seed: int, out_dir: Path):
    """Standardized records of a generated data set with the truth's clusters (only records
    standardize kept), and the rules: survivorship's input with clustering taken as perfect."""
    from crmclean.generate import generate
    from crmclean.ingest import ingest
    from crmclean.settings import load_rules
    from crmclean.standardize import standardize

    info = generate(customers=customers, seed=seed, out_dir=out_dir)
    rules = load_rules()
    std, _ = standardize(ingest([Path(p) for p in info["files"]], rules).records, rules, workers=1)
    truth = pd.read_csv(info["truth"], dtype=str, keep_default_na=False)
    truth = truth.assign(record_key=truth["source"] + "|" + truth["source_record_id"])
    clusters = truth[["record_key"]].assign(cluster=pd.factorize(truth["entity_id"])[0])
    return std, clusters[clusters["record_key"].isin(std["record_key"])], rules


def demo_project(root: Path, customers: int, seed: int) -> tuple[Path, Path]:
    """(the demo exports of `customers` customers, a rules folder from `crmclean init`) in `root`:
    a whole-run test's inputs, its rules ready for `set_rule`."""
    from typer.testing import CliRunner

    from crmclean.cli import app

    runner, data, init = CliRunner(), root / "data", root / "init"
    made = runner.invoke(app, ["demo-data", "--customers", str(customers), "--seed", str(seed), "--out", str(data)])
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, ["init", str(init)]).exit_code == 0
    return data, init / "rules"


def set_rule(path: Path, key: str, value: str) -> None:
    """A top-level `key: value` line of a rules YAML file replaced (it must be there once)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(f"{key}:")]
    assert len(hits) == 1, f"{path.name}: {key} not found once"
    lines[hits[0]] = f"{key}: {value}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
