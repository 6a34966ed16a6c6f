"""Human approval on a real Prefect server: the flow pauses for an approver's input, the test answers through the
API (as the UI does) and the answer lands in the registry; with no answer, the timeout rejects.

The flow here runs the same `request_approval` and `promote` steps as the retrain flow, on a registered version,
without a fine-tune in front of them. Run as a script, this file is that flow (started by the tests)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dag_config import REPO, running_prefect_server, write_config
from prefect import flow

from retune.config import load_config
from retune.evaluation import Check, Decision
from retune.registry import Registry
from retune.store import open_store
from tasks.approve import request_approval
from tasks.promote import Candidate, promote

pytestmark = pytest.mark.slow


@flow(name="approval-check")
def approval_flow(config: str, version: str) -> None:
    cfg = load_config(config)
    gate = Decision(True, "promoted: perplexity 4.000 beats base 9.000", [Check("perplexity vs base", True, "4 < 9")])
    candidate = Candidate(version, True, gate.reason, gate)
    approval = request_approval(cfg, candidate)
    promote(cfg, candidate, approval)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    with running_prefect_server(tmp_path_factory.mktemp("server")) as server:
        yield server


def _setup(tmp_path: Path, timeout_s: int) -> tuple[Path, Registry]:
    config = write_config(tmp_path / "retune.yaml", {
        "workdir": str(tmp_path / "work"),
        "promote": {"require_approval": True, "approval_timeout_s": timeout_s},
    })
    registry = Registry(open_store(load_config(config)))
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")
    registry.register(model, {"perplexity": 4.0}, {"dataset_commit": "c" * 64}, decision={"promote": True})
    return config, registry


def _start(config: Path, url: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, str(config), "v1"], cwd=REPO, env={**env, "PREFECT_API_URL": url},
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def _runs(url: str) -> list[dict]:
    return httpx.post(f"{url}/flow_runs/filter", json={"flow_runs": {}, "limit": 50}).json()


def _artifact(url: str, run_id: str, key: str) -> dict:
    found = httpx.post(f"{url}/artifacts/filter",
                       json={"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": [key]}}}).json()
    assert len(found) == 1, found
    return found[0]


def test_the_flow_pauses_and_an_approver_answer_promotes(tmp_path, prefect_server):
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, env = prefect_server
    config, registry = _setup(tmp_path, timeout_s=300)
    known = {r["id"] for r in _runs(url)}
    proc = _start(config, url, env, tmp_path / "flow.log")
    try:
        deadline = time.monotonic() + 180
        while True:  # the run shows up paused, with the approval form the UI renders saved on it
            paused = [r for r in _runs(url) if r["id"] not in known and r["state_type"] == "PAUSED"]
            keyset = paused[0]["state"]["state_details"].get("run_input_keyset") if paused else None
            if keyset and httpx.get(f"{url}/flow_runs/{paused[0]['id']}/input/{keyset['description']}").is_success:
                break
            assert proc.poll() is None, (tmp_path / "flow.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the flow never paused"
            time.sleep(0.5)
        run_id = paused[0]["id"]
        schema = httpx.get(f"{url}/flow_runs/{run_id}/input/{keyset['schema']}").json()
        assert {"approve", "approver", "comment"} <= set(schema["properties"])
        form = httpx.get(f"{url}/flow_runs/{run_id}/input/{keyset['description']}").json()
        assert "Approve v1 for production?" in form and "perplexity 4.000 beats base 9.000" in form
        assert registry.production() is None  # nothing happens before the answer
        with temporary_settings({PREFECT_API_URL: url}):
            resume_flow_run(run_id, run_input={"approve": True, "approver": "dana", "comment": "replies look right"})
        assert proc.wait(timeout=180) == 0, (tmp_path / "flow.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert httpx.get(f"{url}/flow_runs/{run_id}").json()["state_type"] == "COMPLETED"

    answer = registry.get("v1").approval
    assert answer["approved"] is True and answer["by"] == "dana" and answer["comment"] == "replies look right"
    assert answer["at"].endswith("+00:00")
    assert registry.production().version == "v1"
    assert [(h["action"], h["by"]) for h in registry.history()] == [("approve", "dana"), ("promote", "dana")]
    assert "approved by dana: replies look right" in registry.history()[-1]["reason"]
    assert "dana" in _artifact(url, run_id, "approval")["data"]
    assert "Promoted" in _artifact(url, run_id, "promotion")["data"]

    # the same candidate again (a rerun that reuses it): the recorded answer stands, nobody is asked twice
    again = _start(config, url, env, tmp_path / "again.log")
    try:
        assert again.wait(timeout=180) == 0, (tmp_path / "again.log").read_text()[-3000:]
    finally:
        if again.poll() is None:
            again.kill()
    assert "was already approved by dana" in (tmp_path / "again.log").read_text()
    assert [h["action"] for h in registry.history()] == ["approve", "promote"]


def test_no_answer_within_the_timeout_rejects_and_the_run_completes(tmp_path, prefect_server):
    url, env = prefect_server
    config, registry = _setup(tmp_path, timeout_s=3)
    known = {r["id"] for r in _runs(url)}
    proc = _start(config, url, env, tmp_path / "flow.log")
    try:
        assert proc.wait(timeout=180) == 0, (tmp_path / "flow.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = [r for r in _runs(url) if r["id"] not in known]
    assert run["state_type"] == "COMPLETED"  # a timed-out approval is a rejection, not a crash

    answer = registry.get("v1").approval
    assert answer["approved"] is False and answer["by"] == "timeout" and "no answer within 3 s" in answer["comment"]
    assert registry.production() is None and registry.statuses()["v1"] == "rejected"
    assert "Rejected" in _artifact(url, run["id"], "promotion")["data"]


if __name__ == "__main__":
    approval_flow(sys.argv[1], sys.argv[2])
