"""The Prefect server is stopped in the middle of `retune ingest` (while the run is being versioned) and started
again on the same port and database: the run completes or fails cleanly, a retry succeeds, and main holds every
record exactly once from one publish."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from dag_config import BIN, free_port, stop_process_group, tiny_config, write_config
from faults import BATCH1, assert_main_holds_exactly, clean_ingest, publishes_on_main, retune, retune_env

from retune.config import load_config
from retune.store import open_store

pytestmark = pytest.mark.slow


def start_server(home: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    with open(log, "a") as out:
        proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process_group(proc)
            raise RuntimeError("prefect server did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.3)


def test_prefect_server_restarted_mid_run_commits_nothing_twice(tmp_path):
    port, home, log = free_port(), tmp_path / "server-home", tmp_path / "server.log"
    server = start_server(home, port, log)
    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    store = open_store(load_config(config))
    env = retune_env(tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    args = ["ingest", "--config", str(config), "--source", BATCH1]
    flow = subprocess.Popen([str(BIN / "retune"), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not [b for b in store.branches() if b.startswith("ingest-")]:  # versioning has begun
            assert flow.poll() is None, "the run ended before it reached the store"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stop_process_group(server, grace=5)  # the API goes away mid-run...
        time.sleep(2)
        server = start_server(home, port, log)  # ...and comes back: same port, same database
        out, err = flow.communicate(timeout=300)
    finally:
        if flow.poll() is None:
            stop_process_group(flow)
        stop_process_group(server)

    expected = clean_ingest(BATCH1, tmp_path / "clean")
    print(f"run through the restart: exit code {flow.returncode}; last line: {(err.strip().splitlines() or [''])[-1]}")
    if flow.returncode != 0:  # failed: cleanly, and main shows all of the run or none of it
        assert "Traceback" not in err.strip().splitlines()[-1], err[-2000:]
        if publishes_on_main(store):
            assert_main_holds_exactly(store, expected)
        server = start_server(home, port, log)
        try:
            retry = retune(args, env)
        finally:
            stop_process_group(server)
        assert retry.returncode == 0, retry.stderr[-3000:]
    assert_main_holds_exactly(store, expected)
    assert publishes_on_main(store) == 1
