"""The Prefect wiring: one real flow run (stages as tasks) and the deployment definition."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from crmclean.flows.nightly import crmclean_nightly, is_transient_db_error, nightly_deployment
from crmclean.settings import SAMPLE_DATA_DIR

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_flow_runs_stages_as_tasks(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    db_url = f"sqlite:///{tmp_path / 'flow.db'}"
    state = crmclean_nightly(
        inputs=[str(SAMPLE_DATA_DIR)], db_url=db_url, out_dir=str(tmp_path / "out"), return_state=True
    )
    assert state.is_completed()
    result = state.result()
    assert result.status == "success" and result.counts["masters"] > 0
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        masters = pd.read_sql_table("master_customer", conn)
    engine.dispose()
    assert len(masters) == result.counts["masters"]

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=50,
        )
    names = {t.name.rsplit("-", 1)[0] for t in tasks}
    assert {"ingest", "standardize", "link", "cluster", "validate", "publish"} <= names


def test_deployment_definition_is_valid():
    deployment = nightly_deployment(cron="0 2 * * *", inputs=["/data/exports"], db_url="sqlite:///x.db")
    assert deployment.name == "nightly"
    assert deployment.flow_name == "crmclean-nightly"
    crons = [s.schedule.cron for s in deployment.schedules]
    assert crons == ["0 2 * * *"]
    assert deployment.parameters["inputs"] == ["/data/exports"]
    # prefect.yaml points at the same flow with a cron schedule
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    (dep,) = spec["deployments"]
    module, func = dep["entrypoint"].split(":")
    assert (PROJECT_ROOT / module).is_file() and func == "crmclean_nightly"
    assert dep["schedules"][0]["cron"] == "0 2 * * *"


def test_transient_errors_are_recognised():
    from sqlalchemy.exc import IntegrityError, OperationalError

    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    assert is_transient_db_error(lost)
    wrapped = RuntimeError("publish failed")
    wrapped.__cause__ = lost
    assert is_transient_db_error(wrapped)
    assert not is_transient_db_error(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient_db_error(ValueError("bad data"))


def test_database_stages_are_the_ones_that_retry():
    """The stages that call the store (load_state in standardize, publish) are the retried ones."""
    import inspect

    from crmclean.flows.nightly import DB_STAGES
    from crmclean import run

    source = inspect.getsource(run._run_stages)
    stage_bodies = source.split("    def ")[1:]
    touching = {body.split("(")[0] for body in stage_bodies if "store." in body}
    assert touching == set(DB_STAGES)
