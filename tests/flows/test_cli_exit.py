"""The `retune` process skips the interpreter's teardown at exit: nothing it printed, logged or sent to Prefect is
lost, and its exit status is the one the command chose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dag_config import tiny_config, write_config

RETUNE = Path(sys.prefix) / "bin" / "retune"
REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(RETUNE), *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})})  # fmt: skip


def test_exit_status_is_the_commands(tmp_path):
    shown = cli("--help")
    assert shown.returncode == 0 and "Usage" in shown.stdout

    missing = cli("run", "--config", str(tmp_path / "nowhere.yaml"))
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("error:") and "Traceback" not in missing.stderr

    unknown = cli("no-such-command")
    assert unknown.returncode == 2  # click's usage error


def test_everything_written_to_a_pipe_arrives(tmp_path):
    # far more than a pipe's buffer: it all has to be flushed before the process ends
    lines = [json.dumps({"id": i, "text": f"write to jane.doe{i}@example.com please"}) for i in range(5000)]
    done = cli("anonymize", "-", "--output", "-", "--fields", "text", stdin="\n".join(lines) + "\n",
               env={"RETUNE_PII_KEY": "k" * 32})  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["id"] for r in out] == list(range(5000))
    assert not any("@example.com" in r["text"] for r in out)


@pytest.mark.slow
def test_a_flows_task_runs_reach_the_server_before_the_process_ends(tmp_path, prefect_harness):
    """Task runs reach Prefect 3 as events, sent by a background worker that exit hooks drain."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL

    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    done = cli("ingest", "--config", str(config), env={"PREFECT_API_URL": PREFECT_API_URL.value()})
    assert done.returncode == 0, done.stderr
    assert " = kept " in done.stdout and "main at" in done.stdout

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["ingest"])),
                                       sort="START_TIME_DESC", limit=1)  # fmt: skip
        assert run.state.is_completed()
        deadline = time.monotonic() + 30  # the server turns the events into task runs on its own time
        while True:
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            completed = {t.name.rsplit("-", 1)[0] for t in tasks if t.state and t.state.is_completed()}
            if {"ingest", "anonymize", "validate", "version", "publish"} <= completed or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert {"ingest", "anonymize", "validate", "version", "publish"} <= completed, sorted(completed)
