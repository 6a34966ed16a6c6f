"""Retraining that starts itself, on a real Prefect server with a process worker: a file lands in the landing
directory → `watch` announces it → the `ingest` deployment runs on that event → `retrain` runs on
`retune.dataset.updated` with the new commit."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
from dag_config import BIN, REPO, running_prefect_server, stop_process_group, tiny_config, write_config

from retune.config import load_config
from retune.registry import Registry
from retune.store import open_store

pytestmark = pytest.mark.slow


def _flow_runs(url: str) -> list[dict]:
    flows = {f["id"]: f["name"] for f in httpx.post(f"{url}/flows/filter", json={}).json()}
    runs = httpx.post(f"{url}/flow_runs/filter", json={"sort": "START_TIME_ASC", "limit": 200}).json()
    return [{**r, "flow": flows[r["flow_id"]]} for r in runs if r["state_type"] != "SCHEDULED"]


def test_landed_file_runs_watch_then_ingest_then_retrain(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    config = write_config(
        tmp_path / "retune.yaml",
        tiny_config(tmp_path / "work", watch={"landing": [str(landing)]}, retrain={"min_new_conversations": 10}),
    )
    with running_prefect_server(tmp_path) as (url, server_env):
        env = {**server_env, "PREFECT_API_URL": url, "RETUNE_HOME": str(REPO), "PREFECT_WORKER_QUERY_SECONDS": "1"}

        def prefect(*args: str) -> None:
            done = subprocess.run([str(BIN / "prefect"), *args], env=env, cwd=REPO, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

        prefect("work-pool", "create", "retune", "--type", "process")
        prefect("--no-prompt", "deploy", "--all")
        worker_log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "retune", "--type", "process"],
            env=env, cwd=REPO, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            landed = landing / "export-2026-09.jsonl"
            shutil.copy(REPO / "examples/batch1/chat.jsonl", landed)
            prefect("deployment", "run", "watch/watch", "--param", f"config={config}")

            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                runs = _flow_runs(url)
                retrains = [r for r in runs if r["flow"] == "retrain" and r["state_type"] in ("COMPLETED", "FAILED",
                                                                                             "CRASHED", "CANCELLED")]
                if retrains:
                    break
                time.sleep(2)
            else:
                pytest.fail("no retrain ran within 10 minutes:\n" + (tmp_path / "worker.log").read_text()[-4000:])
        finally:
            stop_process_group(worker)
            worker_log.close()

    # `runs` was read from the server just before it stopped
    watch = next(r for r in runs if r["flow"] == "watch" and r["parameters"].get("config") == str(config))
    ingest = next(r for r in runs if r["flow"] == "ingest")
    retrain = next(r for r in runs if r["flow"] == "retrain")
    assert [watch["state_type"], ingest["state_type"], retrain["state_type"]] == ["COMPLETED"] * 3, (
        (tmp_path / "worker.log").read_text()[-4000:]
    )
    assert watch["start_time"] < ingest["start_time"] < retrain["start_time"]
    assert ingest["parameters"] == {"config": str(config), "sources": [str(landed.resolve())]}

    store = open_store(load_config(config))
    main = store.resolve("main")
    assert retrain["parameters"] == {"config": str(config), "dataset_commit": main}
    production = Registry(store).production()
    assert production is not None and production.lineage["dataset_commit"] == main
