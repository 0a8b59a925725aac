"""B2B contacts (issue 12): office phones, the job title column, the company as a place."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd

from crmclean.ingest import ingest
from crmclean.link import link
from crmclean.link.blocking import block
from crmclean.link.compare import FEATURE_NAMES, FEATURES, prepare_columns
from crmclean.link.model import correct_conditional, model_summary
from crmclean.settings import Rules
from crmclean.standardize import route_phones

COLUMNS = [
    "record_key",
    "source",
    "source_record_id",
    "first_name_key",
    "last_name_key",
    "name_key",
    "name_script",
    "email_key",
    "mobile_std",
    "landline_std",
    "phone_std",
    "company_key",
]


def contact(key: str, first: str, last: str, company: str | None, email=None, landline=None, mobile=None) -> dict:
    src, _, rid = key.partition("|")
    return {
        "record_key": key,
        "source": src,
        "source_record_id": rid,
        "first_name_key": first,
        "last_name_key": last,
        "name_key": " ".join(sorted((first, last))),
        "name_script": "latin",
        "email_key": email,
        "mobile_std": mobile,
        "landline_std": landline,
        "phone_std": mobile or landline,
        "company_key": company,
    }


# ------------------------------------------------------------------ office phones
def test_an_unallocated_number_from_an_untyped_phone_column_is_no_mobile():
    """020 6351 8557 is outside the UK's allocated ranges: nothing says it is a personal mobile
    (b2b: switchboards in a `Phone` column filled the mobile slot, and the mobile training session
    learnt colleagues as duplicates). It fills the landline slot; a NANP number (mobile or
    landline, phonenumbers cannot tell) from the same column still fills the mobile slot."""
    mobile, landline, phone, mflag, lflag, _ = route_phones(None, None, "020 6351 8557", "GB")
    assert (mobile, landline, phone) == (None, "+442063518557", "+442063518557")
    assert "type_guessed" in lflag.split(";") and "type_guessed" not in mflag
    mobile, landline, *_ = route_phones(None, None, "415-800-3186", "US")
    assert (mobile, landline) == ("+14158003186", None)
    # beside a typed landline it still fills the free mobile slot (a guess), never lost
    mobile, landline, _, mflag, _, _ = route_phones(None, "0113 496 0000", "020 6351 8557", "GB")
    assert (mobile, landline) == ("+442063518557", "+441134960000") and "type_guessed" in mflag.split(";")
    # a column that says mobile keeps an unallocated number in the mobile slot
    mobile, landline, *_ = route_phones("020 6351 8557", None, None, "GB")
    assert (mobile, landline) == ("+442063518557", None)


# ------------------------------------------------------------------ the job title column
def _mapping(tmp_path: Path, name: str, text: str) -> dict:
    path = tmp_path / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    result = ingest([path], Rules(directory=tmp_path, sources={}, columns={}))
    return result.mapping[name]["files"][path.name][""]


def test_a_title_column_of_job_titles_is_the_job_title_and_one_of_salutations_is_not(tmp_path):
    """`Title` is the job title in webinar exports and Mr/Mrs in others: the values decide.
    Job titles go where `Job Title` and `Position` go (attr_occupation), so they meet across files."""
    jobs = _mapping(
        tmp_path,
        "webinar",
        "id,Full Name,Title\n1,Ann Lee,Head of IT\n2,Bo Chan,CEO\n3,Cy Dunn,Head of IT\n4,Di Eze,Buyer\n",
    )
    assert jobs["Title"] == "attr_occupation"
    salutations = _mapping(
        tmp_path,
        "mailing",
        "id,Title,First Name,Last Name\n1,Mr,Al Roy,X\n2,Mrs.,Bea,Y\n3,Dr,Cas,Z\n4,Ms,Dee,W\n5,Mr,Ed,V\n",
    )
    assert salutations["Title"] != "attr_occupation"
    both = _mapping(
        tmp_path, "crm", "id,Name,Job Title,Title\n1,Ann Lee,CEO,Head of IT\n2,Bo Chan,CEO,Buyer\n3,Cy,CFO,Buyer\n"
    )
    assert both["Job Title"] == "attr_occupation" and both["Title"] != "attr_occupation"  # the named one wins
    chinese = _mapping(tmp_path, "cn", "编号,姓名,职位\n1,王芳,经理\n2,李伟,会计\n3,张伟,经理\n")
    assert chinese["职位"] == "attr_occupation"


# ------------------------------------------------------------------ the company as a place
def test_a_name_typo_at_one_company_with_nothing_else_shared_is_a_candidate():
    """company + surname and company + given name block like postal code + surname: a contact
    whose surname is mistyped and who left no e-mail or phone on one record is still proposed."""
    rows = [
        contact("a|1", "laura", "hunter", "compass analytics", email="laura.hunter@compass.com"),
        contact("b|1", "laura", "hunetr", "compass analytics"),
        contact("a|2", "htarry", "thompson", "solent analytics"),
        contact("b|2", "harold", "thompson", "solent analytics", email="harry@solent.co.uk"),
        contact("a|3", "laura", "hunter", None),
    ]
    cols = prepare_columns(pd.DataFrame(rows, columns=COLUMNS).sort_values("record_key").reset_index(drop=True))
    cand = block(cols, {})
    keys = sorted(r["record_key"] for r in rows)
    rules = dict(zip(zip(cand.left.tolist(), cand.right.tolist()), cand.rules_text(cand.rule_mask)))
    hunter = (keys.index("a|1"), keys.index("b|1"))
    thompson = (keys.index("a|2"), keys.index("b|2"))
    assert "company_first" in rules[hunter].split(";")
    assert "company_last" in rules[thompson].split(";")


def _companies(n_companies: int = 70, seed: int = 5) -> tuple[pd.DataFrame, dict[str, str]]:
    """Contacts of many companies, all reached on the company's switchboard; some colleagues
    share a surname; 40 % of the people have a second record (same name, phone; the e-mail
    on 60 % of the records)."""
    rng = random.Random(seed)
    firsts = [
        f"{a}{b}" for a in ("an", "be", "cla", "da", "ev", "fin", "gi", "hu") for b in ("na", "ra", "lo", "mi", "te")
    ]
    lasts = [
        f"{a}{b}"
        for a in ("hol", "mar", "ash", "bel", "cor", "dun", "fen", "gar")
        for b in "by ton ley well ford".split()
    ]
    rows, entity = [], {}
    n = 0
    for c in range(n_companies):
        company, switchboard = f"company{c} systems", f"+44113{c:07d}"
        shared_surname = rng.choice(lasts)
        for _ in range(rng.randint(4, 7)):
            n += 1
            first = rng.choice(firsts)
            last = shared_surname if rng.random() < 0.3 else rng.choice(lasts)
            email = f"{first}.{last}{n}@company{c}.com"
            for copy in range(1 + (rng.random() < 0.4)):
                key = f"s{copy}|{n}"
                rows.append(
                    contact(
                        key, first, last, company, email=email if rng.random() < 0.6 else None, landline=switchboard
                    )
                )
                entity[key] = f"P{n}"
    return pd.DataFrame(rows, columns=COLUMNS), entity


def test_colleagues_on_one_switchboard_do_not_merge_on_it():
    """A switchboard is every colleague's number: the model learns how often two different people
    at one company share the phone (conditional_u) and the phone weighs only that much there."""
    frame, entity = _companies()
    res = link(frame, Rules(matching={"u_sample_pairs": 100_000}), workers=1)
    cond = res.model["conditional_u"]
    assert cond["given"] == "company" and set(cond["u"]) == {"phone", "email"}
    landline = FEATURES["phone"].index("landline_exact") - 1
    assert cond["u"]["phone"][landline] > 0.9  # everybody is on the switchboard here
    shown = model_summary(res.model, res.usage)["same_company_max_weight"]
    assert shown["phone"]["landline_exact"] < 0.2 and set(shown["email"]) == {
        "exact",
        "fuzzy_local",
        "initial_or_digit",
    }
    pairs = res.pairs
    true = pairs["record_key_l"].map(entity) == pairs["record_key_r"].map(entity)
    merged = pairs["decision"] == "match"
    assert (merged & ~true).sum() == 0  # no two colleagues merged
    dups = sum(1 for k in entity if k.startswith("s1|"))
    assert true.sum() >= 0.95 * dups  # duplicates are kept: matched, or in review where only the name speaks
    email = frame.set_index("record_key")["email_key"]
    shared = (pairs["record_key_l"].map(email) == pairs["record_key_r"].map(email)).to_numpy()
    assert shared.sum() > 20 and merged[shared & true].all()  # the same name and mailbox merge


def test_the_company_caps_the_phone_only_where_it_agrees():
    """correct_conditional: a shared number counts log2(m / u among colleagues) where the company
    agrees, its full weight elsewhere; a different phone keeps its penalty."""
    code = {f: {lab: i for i, lab in enumerate(FEATURES[f])} for f in FEATURES}
    p, c = FEATURE_NAMES.index("phone"), FEATURE_NAMES.index("company")
    levels = np.zeros((4, len(FEATURE_NAMES)), dtype=np.int8)
    levels[:, p] = [code["phone"]["landline_exact"]] * 3 + [code["phone"]["different"]]
    levels[:, c] = [code["company"]["exact"], code["company"]["different"], 0, code["company"]["exact"]]
    weights = {f: np.zeros(4) for f in FEATURE_NAMES}
    weights["phone"] = np.array([4.0, 4.0, 4.0, -6.0])
    model = {
        "comparisons": {"phone": {"m": [0.01, 0.98, 0.01], "u": [1e-6, 0.002, 0.998]}},
        "conditional_u": {"given": "company", "pairs": 100, "u": {"phone": [0.001, 0.49, 0.509]}},
    }
    correct_conditional(levels, weights, model)
    assert weights["phone"].tolist() == [1.0, 4.0, 4.0, -6.0]
    unchanged = {f: np.zeros(4) for f in FEATURE_NAMES}
    unchanged["phone"] = np.array([4.0, 4.0, 4.0, -6.0])
    correct_conditional(levels, unchanged, {"comparisons": model["comparisons"]})  # a model without it
    assert unchanged["phone"].tolist() == [4.0, 4.0, 4.0, -6.0]
