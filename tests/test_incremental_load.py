"""What an incremental run reads of the prior master up front (issue 14: the nightly run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_store import fake_run, make_std

from crmclean.incremental import Combined, affected_region
from crmclean.store import open_store
from crmclean.store.prior import PriorState


def test_slim_state_keeps_no_copy_of_customer_xref(tmp_path):
    """An incremental run rewrites customer_xref by key: the slim state reads only the xref
    columns it holds and keeps no whole-table copy of it for the publish (a full state does)."""
    store = open_store(f"sqlite:///{tmp_path}/master.db")
    fake_run(store, make_std(6), "R1", matches=[("crm_a|0", "crm_a|1")])
    full = store.load_state()
    assert "customer_xref" in store._snapshot and len(full.xref) == 6
    slim = store.load_state(record_columns=["first_name_std"])
    assert "customer_xref" not in store._snapshot and "quarantine" in store._snapshot
    pd.testing.assert_frame_equal(slim.xref, full.xref[list(slim.xref.columns)])
    assert slim.next_master_number == full.next_master_number
    store.close()


def test_slim_xref_reads_the_reason_only_for_a_master_that_does_not_know_its_overrides(tmp_path):
    """The slim state's xref holds each record's key, master and source; `reason` (what
    changed_override_keys reads when the stored overrides are unknown) only when master_state
    has no overrides: a master written by an older version."""
    store = open_store(f"sqlite:///{tmp_path}/master.db")
    fake_run(store, make_std(6), "R1", matches=[("crm_a|0", "crm_a|1")])
    unknown = store.load_state(record_columns=["first_name_std"])
    assert list(unknown.xref.columns) == ["record_key", "source", "master_id", "reason"]
    store.publish("R2", _tables_of(store), state={"overrides": "[]"})
    known = store.load_state(record_columns=["first_name_std"])
    assert list(known.xref.columns) == ["record_key", "source", "master_id"]
    assert known.xref["master_id"].tolist() == unknown.xref["master_id"].tolist()
    store.close()


def _tables_of(store) -> dict:
    """The stored tables as a publish takes them (the same content again)."""
    from crmclean.store import REPLACED_TABLES

    store.load_state()
    return {name: store.read_table(name) for name in REPLACED_TABLES}


def test_a_prior_master_holds_its_records_together_in_any_order():
    """Records of one prior master, listed apart in customer_xref and with no edge left between
    them, are one region: a change to the last one reclusters the first."""
    xref = pd.DataFrame(
        {
            "record_key": ["a|1", "b|1", "a|2", "c|1", "a|3"],
            "master_id": ["C0000001", "C0000002", None, "C0000002", "C0000001"],
        }
    )
    prior = PriorState.empty()
    prior.xref = xref
    combined = Combined(
        records=pd.DataFrame({"record_key": xref["record_key"]}),
        changed_keys={"a|3"},
        retired=pd.DataFrame(columns=["record_key"]),
        kept_edges=pd.DataFrame(),
    )
    no_pairs = pd.DataFrame(columns=["record_key_l", "record_key_r", "decision"])
    scope = affected_region(np.array(xref["record_key"]), no_pairs, None, prior, combined, None)
    assert scope.keys == {"a|1", "a|3"} and scope.prior_ids == {"C0000001"}
    combined.changed_keys = {"c|1"}
    scope = affected_region(np.array(xref["record_key"]), no_pairs, None, prior, combined, None)
    assert scope.keys == {"b|1", "c|1"} and scope.prior_ids == {"C0000002"}


def test_working_set_stacks_like_concat_with_none_for_missing():
    """The prior records and this run's rows are stacked as pd.concat would (same columns in
    the same order, same values and types), NaN as None where a side lacks the column or it
    is not text; a column one side holds only as None is no special case."""
    from crmclean.incremental import _stacked

    top = pd.DataFrame(
        {
            "record_key": ["a|1", "a|2", "a|3"],
            "first_name_std": [None, None, None],
            "score": [1.5, np.nan, 2.0],
            "n": [1, 2, 3],
            "only_top": ["x", None, "z"],
        },
        index=[7, 3, 9],
    )
    bottom = pd.DataFrame(
        {"record_key": ["b|1"], "first_name_std": ["Ann"], "score": [np.nan], "only_bottom": [np.nan]}, index=[0]
    )
    got = _stacked(top, bottom)
    want = pd.concat([top, bottom], ignore_index=True)
    for c in want.columns:
        if c not in top.columns or c not in bottom.columns or want[c].dtype != object:
            want[c] = want[c].astype(object).where(want[c].notna(), None)
    pd.testing.assert_frame_equal(got, want)
    assert got["n"].tolist() == [1.0, 2.0, 3.0, None]  # as concat upcasts it
    assert got["only_bottom"].tolist() == [None] * 4 and got["score"].tolist()[1] is None


def test_record_index_is_built_once_per_frame():
    """standardize, link and cluster look this run's keys up in one Index of the prior keys."""
    from crmclean.incremental import record_index

    frame = pd.DataFrame({"record_key": ["a|1", "a|2"]})
    first = record_index(frame)
    assert record_index(frame) is first and first.get_indexer(["a|2"]).tolist() == [1]
    other = frame.copy()
    assert record_index(other) is not first


def test_record_index_goes_with_its_frame():
    """The kept index holds every prior key string: it is dropped when its frame is."""
    import gc
    import weakref

    from crmclean import incremental

    frame = pd.DataFrame({"record_key": ["a|1", "a|2"]})
    index = weakref.ref(incremental.record_index(frame))
    del frame
    gc.collect()
    assert incremental._KEY_INDEX == [None, None] and index() is None


def test_next_master_number_reads_ids_as_before():
    """max_master_number's fast path gives what ids.master_number reads: the number after a
    leading C, whatever else the column holds."""
    from crmclean.ids import master_number
    from crmclean.store.values import max_master_number

    def reference(ids: pd.Series) -> int:
        nums = master_number(pd.Series(ids.dropna().unique()))
        return int(nums.max()) if nums.notna().any() else 0

    cases = [
        ["C0000001", "C0000123", None, "C0000050", "C0000123"],
        ["C0000007", "X9", "C", "C12a", "c99"],
        ["C1e3", "C10"],
        ["C²", "C5"],
        [None],
        [],
    ]
    for ids in cases:
        series = pd.Series(ids, dtype=object)
        assert max_master_number(series) == reference(series), ids
    assert max_master_number(pd.Series(["C0000123", "C0000050"], dtype=object)) == 123


def test_the_prior_state_is_read_with_the_collector_off(tmp_path, monkeypatch):
    """A tuple per row read holds no reference cycle: the collector stays off while the state
    is read (it ran ≈ 1,500 times over them at 200k customers) and is on again after."""
    import gc

    from crmclean.store import prior

    store = open_store(f"sqlite:///{tmp_path}/master.db")
    fake_run(store, make_std(6), "R1", matches=[("crm_a|0", "crm_a|1")])
    seen = []
    fetch = prior._fetch

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return fetch(*args, **kwargs)

    monkeypatch.setattr(prior, "_fetch", watched)
    assert gc.isenabled()
    store.load_state(record_columns=["first_name_std"])
    assert seen and not any(seen) and gc.isenabled()
    store.close()


def test_a_night_reads_the_hashes_of_its_own_records_only(tmp_path):
    """The hashes and standardizer fingerprint are compared only for the run's records: a run
    naming few records reads them by key (None on the other rows); one naming at least half the
    stored records reads them in the one pass, as a load without run keys does."""
    store = open_store(f"sqlite:///{tmp_path}/master.db")
    fake_run(store, make_std(6, std_fingerprint="fp1"), "R1")
    every = store.load_state(record_columns=["first_name_std"])
    assert every.records["std_fingerprint"].eq("fp1").all()
    night = store.load_state(record_columns=["first_name_std"], run_keys=np.array(["crm_a|1001", "crm_b|9"], object))
    assert night.records["record_key"].tolist() == every.records["record_key"].tolist()
    for column in ("content_hash", "row_hash", "std_fingerprint"):
        assert night.records[column].notna().tolist() == [k == "crm_a|1001" for k in every.records["record_key"]]
        own = every.records["record_key"] == "crm_a|1001"
        assert night.records.loc[own, column].tolist() == every.records.loc[own, column].tolist()
    whole = store.load_state(record_columns=["first_name_std"], run_keys=every.records["record_key"].to_numpy()[:3])
    pd.testing.assert_frame_equal(whole.records, every.records)
    store.close()


def test_the_next_master_number_is_kept_by_the_publish_that_used_it(tmp_path):
    """Each publish after a load_state stores the next master number (past every id it wrote);
    the next load reads it instead of parsing every master id, unless another run published
    since (its run_id is not the last publish's): then every id is parsed again."""
    import sqlalchemy as sa

    store = open_store(f"sqlite:///{tmp_path}/master.db")
    fake_run(store, make_std(4), "R1")
    fake_run(store, make_std(2, start=4), "R2")  # two new masters
    assert store.read_state()["next_master_number"] == "7"
    with store.engine.begin() as conn:  # R2 published last (as a run's state says); a number only the row gives
        conn.execute(sa.text("INSERT INTO master_state VALUES ('cluster_fingerprint', 'f', 'R2')"))
        conn.execute(sa.text("UPDATE master_state SET value = '50' WHERE name = 'next_master_number'"))
    assert store.load_state(record_columns=["first_name_std"]).next_master_number == 50
    with store.engine.begin() as conn:  # written by a run that did not publish last
        conn.execute(sa.text("UPDATE master_state SET run_id = 'R1' WHERE name = 'next_master_number'"))
    assert store.load_state(record_columns=["first_name_std"]).next_master_number == 7
    store.close()
