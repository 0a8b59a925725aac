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


def test_a_pool_chunk_empties_the_per_value_caches_after_it():
    """A worker's caches are hit within a chunk; kept, they grew chunk after chunk (the parsed
    phone cells: +150 MB a worker at 200k customers)."""
    from crmclean.standardize.parallel import _run_chunk_uncached, value_caches
    from crmclean.standardize.phones import _kind_by_prefix, parse_cell, route_phones

    parse_cell.cache_clear()
    columns = _run_chunk_uncached(route_phones, [("+1 212 555 0100", None, "13812345678", "US")], ("US",))
    assert columns[0] == ("+8613812345678",)  # mobile_std
    assert parse_cell.cache_info().currsize == 0
    assert parse_cell in value_caches() and _kind_by_prefix not in value_caches()


def test_the_caches_kept_across_chunks_exist():
    from importlib import import_module

    from crmclean.standardize.parallel import KEPT_ACROSS_CHUNKS

    for name in KEPT_ACROSS_CHUNKS:
        module, _, attr = name.rpartition(".")
        assert hasattr(import_module(module), attr), name


def test_a_collected_job_holds_neither_its_chunks_nor_its_distinct_values():
    raw = pd.Series([f"{'lyon' if i % 2 else 'Paris'}#{i}" for i in range(2 * CHUNK_SIZE + 10)], dtype=object)
    with ThreadPoolExecutor(2) as pool:
        job = FieldJob(_city, [raw], (), ("city_std", "city_flag")).submit(pool, in_process_below=1)
        out = job.result()
    assert job.futures is None  # each chunk's result was let go once copied in
    job.release()
    assert not job.uniques and not job.distinct and not job.inputs and len(job.codes) == 0
    assert out["city_std"][1] == "Lyon" and len(out["city_flag"]) == len(raw)


def test_the_standardized_frame_reuses_the_column_arrays():
    """Raw columns no standardizer reads go in as they are: a concat of the raw and the new
    columns consolidated (copied) every column of the frame."""
    import numpy as np

    from crmclean.settings import Rules
    from crmclean.standardize import standardize

    records = pd.DataFrame({"email": ["A@b.com", None, "c@d.org"], "locator": ["f.csv:2", "f.csv:3", "f.csv:4"]})
    std, _ = standardize(records, Rules(), workers=1)
    assert list(std["email_std"]) == ["a@b.com", None, "c@d.org"]
    assert np.shares_memory(std["locator"].to_numpy(), records["locator"].to_numpy())
