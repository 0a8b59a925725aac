"""The standardized frame holds each distinct text once per field (issue 14: bytes per record)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from crmclean.standardize.parallel import CHUNK_SIZE, FieldJob, interned


def _city(value):
    """Distinct inputs, few outputs (as cities spelled many ways are); a flag built per call."""
    text = str(value).split("#")[0].strip().title()
    return text, ";".join(["changed"] * (text != value))


def _objects(values) -> int:
    return len({id(v) for v in values})


def test_equal_outputs_of_distinct_inputs_are_one_object_per_field():
    raw = pd.Series([f"{c}#{i}" for i in range(300) for c in ("boston", "BOSTON ", "Lyon")], dtype=object)
    out = FieldJob(_city, [raw], (), ("city_std", "city_flag")).submit(None).result()
    assert sorted(set(out["city_std"])) == ["Boston", "Lyon"] and set(out["city_flag"]) == {"changed"}
    assert _objects(out["city_std"]) == 2 and _objects(out["city_flag"]) == 1


def test_chunks_from_a_pool_share_their_equal_texts_too():
    n = 2 * CHUNK_SIZE + 10  # three chunks
    raw = pd.Series([f"{'lyon' if i % 2 else 'Paris'}#{i}" for i in range(n)], dtype=object)
    with ThreadPoolExecutor(2) as pool:
        job = FieldJob(_city, [raw], (), ("city_std", "city_flag")).submit(pool, in_process_below=1)
        assert job.futures is not None and len(job.futures) == 3
        out = job.result()
    expected = [_city(v) for v in raw]
    assert list(out["city_std"]) == [e[0] for e in expected] and list(out["city_flag"]) == [e[1] for e in expected]
    assert _objects(out["city_std"]) == 2 and _objects(out["city_flag"]) == 1


def test_interned_keeps_values_and_what_is_not_text():
    a, b = "".join(["ab", "c"]), "".join(["a", "bc"])
    assert a is not b
    nan = float("nan")
    first, second = interned([(a, None, 1), (b, nan, a)])
    assert first == (a, None, 1) and second[0] is a and second[1] is nan and second[2] is a
