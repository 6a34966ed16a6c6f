"""kill -9 of a whole `retune retrain` (the Prefect flow process, torchrun and every rank) in the middle of the
fine-tune: the next flow run on the same data resumes from the last complete checkpoint instead of starting over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "flows"))
from dag_config import BIN, tiny_config, write_config  # noqa: E402

pytestmark = pytest.mark.slow


def test_killed_retrain_flow_resumes_on_the_next_flow_run(tmp_path):
    work = tmp_path / "work"
    config = write_config(
        tmp_path / "retune.yaml",
        tiny_config(work, training={"max_steps": 80, "checkpoint_every": 5}),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1")

    def retune(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "retune"), *args, "--config", str(config)], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=600, **kw)

    ingested = retune("ingest", "--source", str(REPO / "examples/batch1/*"))
    assert ingested.returncode == 0, ingested.stderr[-2000:]

    # first attempt: killed, whole process group, as soon as a checkpoint is complete on disk
    flow = subprocess.Popen([str(BIN / "retune"), "retrain", "--config", str(config)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(work.glob("training/*/checkpoints/*/step-*/COMPLETE")):
        assert flow.poll() is None, "the retrain finished or failed before any checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.2)
    os.killpg(flow.pid, signal.SIGKILL)
    flow.wait(timeout=30)
    # torchrun dies with the flow process and the ranks with torchrun (PR_SET_PDEATHSIG): give them a moment
    pattern = f"retune.training.worker --config {work}"
    deadline = time.monotonic() + 5  # far less than the 70-odd steps left: an orphaned run would still be going
    while subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "training processes survived the kill of their flow"
        time.sleep(0.5)
    markers = work.glob("training/*/checkpoints/*/step-*/COMPLETE")
    checkpoints = sorted(int(p.parent.name.split("-")[1]) for p in markers)
    assert checkpoints and checkpoints[-1] < 80

    # the next flow run: same data, same config → resumes, and ends at the configured step count
    resumed = retune("retrain")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f"resuming from the checkpoint at step {checkpoints[-1]}" in log, log[-3000:]
    assert "v1: promoted" in log or "v1: rejected" in log
