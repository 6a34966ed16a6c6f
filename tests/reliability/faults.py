"""Shared pieces of the fault tests: run `retune` as a real process, kill it at an observed point, and check what
`main` shows against one clean ingest of the same files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "flows"))
from dag_config import BIN, stop_process_group  # noqa: E402

from retune.config import SourceConfig  # noqa: E402
from retune.datasets import read_turns  # noqa: E402
from retune.sources import ingest  # noqa: E402
from retune.store.base import Store  # noqa: E402

BATCH1 = str(REPO / "examples/batch1/*")


@dataclass(frozen=True)
class Expected:
    kept: int
    turns: int
    hashes: frozenset[str]


def clean_ingest(pattern: str, tmp: Path) -> Expected:
    """What one uninterrupted ingest of `pattern` into an empty store lands (anonymization keeps every turn)."""
    report = ingest([SourceConfig(path=pattern)], tmp / "parts", tmp / "quarantine")
    return Expected(report.kept, report.turns, frozenset(report.new_hashes))


def assert_main_holds_exactly(store: Store, expected: Expected) -> None:
    """Main holds every expected record once: same turns, same content hashes, no (conversation, turn) twice."""
    turns = read_turns(store, "main")
    assert turns.num_rows == expected.turns, f"main has {turns.num_rows} turns, one clean ingest {expected.turns}"
    assert set(pc.unique(turns["content_hash"]).to_pylist()) == expected.hashes
    keys = {(c, t) for c, t in zip(turns["conversation_id"].to_pylist(), turns["turn"].to_pylist(), strict=True)}
    assert len(keys) == turns.num_rows, "a turn landed twice"


def publishes_on_main(store: Store) -> int:
    """How many ingest runs were merged into main."""
    return sum(1 for c in store.log("main", limit=500) if c.message.startswith("publish ingest-"))


def retune_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LAKEFS_"))}
    env.update(PREFECT_HOME=str(tmp / "prefect-client"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               HF_HUB_OFFLINE="1", DO_NOT_TRACK="1", **extra)  # fmt: skip
    return env


def retune(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "retune"), *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def kill_when(args: list[str], env: dict[str, str], reached: Callable[[], bool], timeout: float = 120) -> float:
    """Start `retune ARGS` in its own process group and SIGKILL the whole group the moment `reached()` is true
    (polled every 10 ms); return the seconds it ran. Fails if the process ends first."""
    started = time.monotonic()
    proc = subprocess.Popen([str(BIN / "retune"), *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        while not reached():
            assert proc.poll() is None, f"retune {args[0]} ended (rc {proc.returncode}) before the kill point"
            assert time.monotonic() - started < timeout, "kill point not reached in time"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            stop_process_group(proc)
    return time.monotonic() - started
