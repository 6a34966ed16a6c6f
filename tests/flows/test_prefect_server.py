"""A real Prefect server on a free local port: run a flow against it through the CLI and read the run back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dag_config import REPO, running_prefect_server, tiny_config, write_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    with running_prefect_server(tmp_path_factory.mktemp("server")) as server:
        yield server


def test_ingest_runs_on_a_real_server_and_is_read_back(tmp_path, prefect_server):
    url, server_env = prefect_server
    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    env = {**server_env, "PREFECT_API_URL": url, "HF_HUB_OFFLINE": "1"}

    done = subprocess.run(
        [str(BIN / "retune"), "ingest", "--config", str(config), "--source", str(REPO / "examples/batch1/*")],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kept" in done.stdout

    runs = httpx.post(f"{url}/flow_runs/filter", json={"limit": 10}).json()
    assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED"
    run_id = runs[0]["id"]
    tasks = httpx.post(f"{url}/task_runs/filter", json={"flow_runs": {"id": {"any_": [run_id]}}}).json()
    names = {t["name"].rsplit("-", 1)[0] for t in tasks}
    assert {"ingest", "anonymize", "validate", "version"} <= names, names
    assert all(t["state_type"] == "COMPLETED" for t in tasks)
    artifacts = httpx.post(f"{url}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
    keys = {a["key"] for a in artifacts}
    assert {"ingest-counts", "pii-found", "contract-anonymized-turns", "dataset-version"} <= keys, keys
    # nothing personal reached the artifacts: the planted e-mail domain never appears
    assert not any("@" in str(a.get("data")) for a in artifacts)

    history = subprocess.run(
        [str(BIN / "retune"), "history"], env={**env, "COLUMNS": "250"}, capture_output=True, text=True, timeout=120
    )
    assert history.returncode == 0, history.stderr[-2000:]
    assert "ingest" in history.stdout and "Completed" in history.stdout
    assert "main at" in history.stdout  # what the run did, from its artifacts
    assert "127.0.0.1" in history.stdout  # a link into the UI of the configured server


def test_make_deploy_registers_schedules_triggers_and_the_retrain_limit(prefect_server):
    url, server_env = prefect_server
    env = {**server_env, "PREFECT_API_URL": url, "RETUNE_HOME": str(REPO)}
    pool = subprocess.run(
        [str(BIN / "prefect"), "work-pool", "create", "retune", "--type", "process"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    deployments = {d["name"]: d for d in httpx.post(f"{url}/deployments/filter", json={}).json()}
    assert set(deployments) == {"watch", "ingest", "retrain", "monitor", "run"}
    assert deployments["retrain"]["parameters"] == {"config": "retune.yaml"}
    assert deployments["retrain"]["work_pool_name"] == "retune"
    crons = {name: [s["schedule"].get("cron") for s in d["schedules"]] for name, d in deployments.items()}
    assert crons["retrain"] == ["0 3 * * 1"] and crons["monitor"] == ["30 2 * * *"]
    limit = deployments["retrain"].get("global_concurrency_limit") or {}
    assert limit.get("limit") == 1 or deployments["retrain"].get("concurrency_limit") == 1

    automations = httpx.post(f"{url}/automations/filter", json={}).json()
    expected = {tuple(a["trigger"]["expect"]) for a in automations}
    assert expected == {("retune.data.arrived",), ("retune.dataset.updated",), ("retune.drift.detected",)}
    targets = {a["trigger"]["expect"][0]: a["actions"][0]["deployment_id"] for a in automations}
    assert targets["retune.data.arrived"] == deployments["ingest"]["id"]
    assert targets["retune.dataset.updated"] == targets["retune.drift.detected"] == deployments["retrain"]["id"]

