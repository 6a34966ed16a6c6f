"""A fine-tune killed with SIGKILL (the launcher's process group, or one worker) resumes on the next launch from
the last complete checkpoint and ends at the same step; a changed config starts fresh and says why."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from retune.config import TrainingConfig
from retune.errors import TrainingError
from retune.training.dataset import build_training_set
from retune.training.launch import complete_checkpoints, finetune

ZERO2 = Path(__file__).resolve().parents[2] / "infra" / "deepspeed" / "zero2.json"
RUN = TrainingConfig(
    nproc_per_node=2, max_steps=12, checkpoint_every=4, learning_rate=1e-2, per_device_batch_size=4, max_length=128
)
KILL_AT_STEP = 6  # after the step-4 checkpoint, before the step-8 one would be written


@pytest.fixture(scope="module")
def examples_path(tmp_path_factory, tiny_turns) -> Path:
    path = tmp_path_factory.mktemp("examples") / "examples.parquet"
    pq.write_table(build_training_set(tiny_turns, test_fraction=0.2), path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped) counts as dead.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def _wait_dead(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _kill_mid_run(base_model, examples_path, out: Path, cache: Path, victim: str) -> list[int]:
    """Launch, SIGKILL `victim` ("launcher": its whole process group; "worker": rank 1) once KILL_AT_STEP is
    reported, and return the worker pids. The launch must fail."""
    seen: dict = {}

    def on_event(event: dict) -> None:
        seen.setdefault(event["event"], event)
        if event["event"] == "step" and event["step"] == KILL_AT_STEP:
            if victim == "launcher":
                os.killpg(seen["launch"]["pid"], signal.SIGKILL)
            else:
                os.kill(seen["start"]["pids"][1], signal.SIGKILL)

    with pytest.raises(TrainingError, match="exit code"):
        finetune(str(base_model), examples_path, out, RUN, deepspeed_config=ZERO2, on_event=on_event, cache_dir=cache)
    assert seen["start"]["resumed_from_step"] is None
    return seen["start"]["pids"]


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["launcher", "worker"])
def test_a_killed_run_resumes_from_the_last_complete_checkpoint(
    victim, tmp_path, tiny_base_model, examples_path, deepspeed_ops_cache
):
    out = tmp_path / "run"
    pids = _kill_mid_run(tiny_base_model, examples_path, out, deepspeed_ops_cache, victim)
    # No rank survives its launcher (torchrun starts them in their own sessions; they die with their parent).
    assert _wait_dead(pids) == []
    [last] = complete_checkpoints(out / "checkpoints" / next(p.name for p in (out / "checkpoints").iterdir()))[-1:]
    assert 4 <= last < RUN.max_steps and last % RUN.checkpoint_every == 0

    resumed = finetune(
        str(tiny_base_model), examples_path, out, RUN, deepspeed_config=ZERO2, cache_dir=deepspeed_ops_cache
    )
    assert resumed.resumed_from_step == last and resumed.fresh_start_reason is None
    assert resumed.steps == RUN.max_steps
    assert [m["step"] for m in resumed.metrics] == list(range(last + 1, RUN.max_steps + 1))
    assert (resumed.adapter_dir / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_a_changed_config_starts_fresh_and_says_what_changed(
    tmp_path, tiny_base_model, examples_path, deepspeed_ops_cache
):
    out = tmp_path / "run"
    short = RUN.model_copy(update={"max_steps": 2, "checkpoint_every": 1, "nproc_per_node": 1})
    first = finetune(str(tiny_base_model), examples_path, out, short, deepspeed_config=ZERO2,
                     cache_dir=deepspeed_ops_cache)  # fmt: skip
    assert first.fresh_start_reason is None and first.resumed_from_step is None

    events: list[dict] = []
    changed = short.model_copy(update={"learning_rate": 5e-3})
    second = finetune(str(tiny_base_model), examples_path, out, changed, deepspeed_config=ZERO2,
                      on_event=events.append, cache_dir=deepspeed_ops_cache)  # fmt: skip
    assert second.resumed_from_step is None and [m["step"] for m in second.metrics] == [1, 2]
    assert "config changed" in second.fresh_start_reason
    assert "training.learning_rate: 0.01 -> 0.005" in second.fresh_start_reason
    start = next(e for e in events if e["event"] == "start")
    assert start["fresh_start_reason"] == second.fresh_start_reason  # the task logs the start event
    assert [p.name for p in (out / "checkpoints").iterdir()] == [second.config_hash]  # old ones discarded
