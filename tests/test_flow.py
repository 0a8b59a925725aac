"""The Prefect wiring: a real flow run (stages as tasks, typed results as their inputs), the flow
built from RunOptions, and the deployment definition."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from crmclean import run as run_module
from crmclean.flows.nightly import RETRIES, crmclean_nightly, is_transient_db_error, nightly_deployment, retries_for
from crmclean.ingest import discover_inputs
from crmclean.run import RunOptions, run_pipeline
from crmclean.settings import DEFAULT_EXPECTATIONS_DIR, DEFAULT_RULES_DIR, SAMPLE_DATA_DIR
from crmclean.store.tables import PUBLISHED_TABLES

from dbutil import read_table

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STAGE_TASKS = ["ingest", "load prior", "standardize", "link", "cluster", "validate", "plan publish", "publish"]


def _every_option_changed(tmp_path: Path, name: str) -> RunOptions:
    """RunOptions with every field away from its default (a dropped one would show)."""
    rules, expectations = tmp_path / "rules", tmp_path / "expectations"
    if not rules.exists():
        shutil.copytree(DEFAULT_RULES_DIR, rules)
        shutil.copytree(DEFAULT_EXPECTATIONS_DIR, expectations)
    options = RunOptions(
        inputs=[Path(SAMPLE_DATA_DIR)],
        db_url=f"sqlite:///{tmp_path / (name + '.db')}",
        out_dir=tmp_path / name,
        rules_dir=rules,
        expectations_dir=expectations,
        workers=1,
        retrain=True,
        show_pii=True,
        run_id="R-FLOW",
        full_refresh=True,
        recluster_all=True,
        memory_limit="64G",
        skipped=[("elsewhere/README.txt", "is not a table (no delimiter found in its first lines)")],
    )
    defaults = RunOptions(inputs=[])
    for f in dataclasses.fields(RunOptions):
        if f.name in {"dask_address", "dask_workers"}:
            continue  # a flow run on a DaskTaskRunner: tests/test_dask.py
        assert getattr(options, f.name) != getattr(defaults, f.name), f.name
    return options


def _table_view(db_url: str, name: str) -> pd.DataFrame:
    """Every column but wall-clock times, in a stable order."""
    df = read_table(db_url, name)
    df = df[[c for c in df.columns if c not in {"at", "created", "started_at", "finished_at", "timings"}]]
    if "model_json" in df.columns:  # the model records when it was trained
        df = df.assign(
            model_json=[
                json.dumps({k: v for k, v in json.loads(t).items() if k != "created"}, sort_keys=True)
                for t in df["model_json"]
            ]
        )
    return df.sort_values(list(df.columns), na_position="first").reset_index(drop=True) if len(df) else df


def test_flow_passes_every_option_and_typed_results_between_tasks(prefect_harness, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    seen: list[RunOptions] = []
    real_ingest = run_module.ingest_stage

    def ingest_stage(env):
        seen.append(env.options)
        return real_ingest(env)

    monkeypatch.setattr(run_module, "ingest_stage", ingest_stage)
    options = _every_option_changed(tmp_path, "flow")
    state = crmclean_nightly(options=options, return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result.status == "success" and result.run_id == "R-FLOW" and result.counts["masters"] > 0

    # every RunOptions field reached the stages as given (inputs expanded to their files)
    (got,) = seen
    expected = dataclasses.replace(options, inputs=discover_inputs(options.inputs))
    for f in dataclasses.fields(RunOptions):
        if f.name in {"dask_address", "dask_workers"}:
            continue  # a flow run on a DaskTaskRunner: tests/test_dask.py
        assert getattr(got, f.name) == getattr(expected, f.name), f.name

    # the same options without Prefect publish exactly the same tables
    direct = run_pipeline(
        dataclasses.replace(options, db_url=f"sqlite:///{tmp_path / 'direct.db'}", out_dir=tmp_path / "direct")
    )
    assert direct.counts == result.counts
    for table in (*PUBLISHED_TABLES, "master_state"):
        pd.testing.assert_frame_equal(
            _table_view(options.db_url, table), _table_view(f"sqlite:///{tmp_path / 'direct.db'}", table), obj=table
        )

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])), limit=50
        )
    by_name = {t.name.rsplit("-", 1)[0]: t for t in tasks}
    assert set(STAGE_TASKS) <= set(by_name)

    def upstream(task_name: str, parameter: str) -> set:
        return {i.id for i in by_name[task_name].task_inputs.get(parameter, [])}

    # each stage's inputs are the tasks whose results it was given (what the Prefect UI draws)
    assert upstream("standardize", "ingested") == {by_name["ingest"].id}
    assert upstream("standardize", "prior") == {by_name["load prior"].id}
    assert upstream("cluster", "linked") == {by_name["link"].id}
    assert upstream("validate", "clustered") == {by_name["cluster"].id}
    assert upstream("publish", "plan") == {by_name["plan publish"].id}
    # only the stages that touch the database retry
    retried = {name for name in STAGE_TASKS if by_name[name].empirical_policy.retries}
    assert retried == {"load prior", "cluster", "publish"}


def test_flow_parameter_is_run_options():
    """The flow's parameters are generated from RunOptions: no option can be left out."""
    schema = crmclean_nightly.parameters.model_dump()
    assert list(schema["properties"]) == ["options"]
    (definition,) = schema["definitions"].values()
    assert set(definition["properties"]) == {f.name for f in dataclasses.fields(RunOptions)}


def test_stages_that_take_the_store_are_the_retried_ones():
    stages = [
        run_module.ingest_stage,
        run_module.load_prior,
        run_module.standardize_stage,
        run_module.link_stage,
        run_module.cluster_stage,
        run_module.validate_stage,
        run_module.plan_publish,
        run_module.publish,
    ]
    assert {s.__name__ for s in stages if retries_for(s) == RETRIES} == {"load_prior", "cluster_stage", "publish"}
    assert all(retries_for(s) == 0 for s in stages if s.__name__ not in {"load_prior", "cluster_stage", "publish"})


def test_deployment_definition_is_valid():
    deployment = nightly_deployment(cron="0 2 * * *", inputs=["/data/exports"], db_url="sqlite:///x.db")
    assert deployment.name == "nightly"
    assert deployment.flow_name == "crmclean-nightly"
    crons = [s.schedule.cron for s in deployment.schedules]
    assert crons == ["0 2 * * *"]
    assert deployment.parameters["options"]["inputs"] == ["/data/exports"]
    # prefect.yaml points at the same flow with a cron schedule, and its parameters are RunOptions
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    (dep,) = spec["deployments"]
    module, func = dep["entrypoint"].split(":")
    assert (PROJECT_ROOT / module).is_file() and func == "crmclean_nightly"
    assert dep["schedules"][0]["cron"] == "0 2 * * *"
    options = crmclean_nightly.validate_parameters(dep["parameters"])["options"]
    assert isinstance(options, RunOptions) and options.inputs == [Path("/data/crm-exports")]


def test_transient_errors_are_recognised():
    from sqlalchemy.exc import IntegrityError, OperationalError

    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    assert is_transient_db_error(lost)
    wrapped = RuntimeError("publish failed")
    wrapped.__cause__ = lost
    assert is_transient_db_error(wrapped)
    assert not is_transient_db_error(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient_db_error(ValueError("bad data"))
