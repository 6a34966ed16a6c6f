"""Config helpers for the DAG tests: a tiny, fast config that still runs every stage for real."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tiny_config(workdir: Path, **overrides) -> dict:
    """A config that exercises every stage for real, sized to run in about a minute on 2 cores."""
    cfg = {
        "workdir": str(workdir),
        "sources": [{"path": str(REPO / "examples/batch1/*")}],
        "contracts": {"dir": str(REPO / "data_contracts")},
        "model": {
            "base_model": "models/base",
            "system_prompt": str(REPO / "prompts/system.md"),
            "bootstrap": {"vocab_size": 600, "hidden_size": 64, "intermediate_size": 128, "num_layers": 2,
                          "num_heads": 4, "max_position_embeddings": 512, "pretrain_steps": 40},
        },
        "training": {"nproc_per_node": 2, "deepspeed_config": str(REPO / "infra/deepspeed/zero2.json"),
                     "max_steps": 8, "per_device_batch_size": 2, "max_length": 256, "checkpoint_every": 4},
        "export": {"parity_prompts": 3, "parity_new_tokens": 8, "min_greedy_agreement": 0.5},
        "evaluation": {"max_examples": 6, "max_new_tokens": 8,
                       "tolerances": {"perplexity": 0.05, "token_accuracy": 0.05}},
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section] = {**cfg[section], **values}
        else:
            cfg[section] = values
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the group, then SIGKILL: Prefect servers and workers may ignore SIGTERM for a while."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def running_prefect_server(tmp: Path):
    """A real `prefect server start` on a free 127.0.0.1 port with its own database; stopped on exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1")
    log = open(tmp / "server.log", "w")
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
                raise RuntimeError("prefect server did not start:\n" + (tmp / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, env
    finally:
        stop_process_group(proc)
        log.close()
