"""A real Prefect server on a free local port: run a flow against it through the CLI and read the run back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dag_config import REPO, tiny_config, write_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("prefect server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # the server may ignore SIGTERM for a while
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


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
        [str(BIN / "retune"), "history"], env=env, capture_output=True, text=True, timeout=120
    )
    assert history.returncode == 0, history.stderr[-2000:]
    assert "ingest" in history.stdout and "Completed" in history.stdout


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
    assert set(deployments) == {"ingest", "retrain", "monitor", "run"}
    assert deployments["retrain"]["parameters"] == {"config": "retune.yaml"}
    assert deployments["retrain"]["work_pool_name"] == "retune"
    crons = {name: [s["schedule"].get("cron") for s in d["schedules"]] for name, d in deployments.items()}
    assert crons["retrain"] == ["0 3 * * 1"] and crons["monitor"] == ["30 2 * * *"]
    limit = deployments["retrain"].get("global_concurrency_limit") or {}
    assert limit.get("limit") == 1 or deployments["retrain"].get("concurrency_limit") == 1

    automations = httpx.post(f"{url}/automations/filter", json={}).json()
    expected = {tuple(a["trigger"]["expect"]) for a in automations}
    assert {("retune.dataset.updated",), ("retune.drift.detected",)} <= expected
    retrain_id = deployments["retrain"]["id"]
    assert all(a["actions"][0]["deployment_id"] == retrain_id for a in automations)

