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
    pd.testing.assert_frame_equal(slim.xref, full.xref)
    assert slim.next_master_number == full.next_master_number
    store.close()


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
