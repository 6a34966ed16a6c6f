"""Launch the training worker as a subprocess (torchrun or the DeepSpeed launcher) and follow its events."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from retune.config import TrainingConfig
from retune.errors import TrainingError

_PROJECT_ROOT = Path(__file__).resolve().parents[2]  # so the worker imports this retune, installed or not


@dataclass
class TrainResult:
    adapter_dir: Path
    steps: int
    loss_first: float | None  # None when a rerun found the run already finished (nothing trained)
    loss_last: float | None
    eval_loss: float | None  # held-out loss on the test split; None without test examples
    tokens_per_s: float
    wall_s: float
    resumed_from_step: int | None
    metrics: list[dict] = field(default_factory=list)  # the worker's step events, in order


def model_max_length(config) -> int | None:
    """The longest sequence the architecture supports, whatever the config calls it."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_base_model(base_model: str, max_length: int, local_files_only: bool) -> None:
    """Fail early, with the user's words, on a missing base model or a sequence length it cannot take."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(base_model, local_files_only=local_files_only)
    except (OSError, ValueError):
        where = "on disk" if local_files_only or Path(base_model).exists() else "on disk or on the hub"
        raise TrainingError(f"base model not found {where}: {base_model}") from None
    limit = model_max_length(config)
    if limit is not None and max_length > limit:
        raise TrainingError(f"training.max_length={max_length} is above the base model's limit of {limit} tokens")


def config_hash(base_model: str, examples_path: Path, training: TrainingConfig, deepspeed_config: Path) -> str:
    """What makes two launches the same run (and so resumable): inputs and every knob that changes the
    trajectory. Not the launcher or the checkpoint interval."""
    knobs = training.model_dump(mode="json", exclude={"launcher", "checkpoint_every", "hostfile"})
    digest = hashlib.sha256()
    digest.update(json.dumps({"base_model": base_model, "training": knobs}, sort_keys=True).encode())
    digest.update(examples_path.read_bytes())
    digest.update(deepspeed_config.read_bytes())
    return digest.hexdigest()[:16]


def build_command(training: TrainingConfig, spec_path: Path) -> list[str]:
    worker = ["-m", "retune.training.worker", "--config", str(spec_path)]
    if training.launcher == "deepspeed":
        command = [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", str(training.nproc_per_node)]
        if training.hostfile:
            command += ["--hostfile", training.hostfile]
        else:  # one node: a free port, so runs side by side do not collide on the default 29500
            command += ["--master_port", str(_free_port())]
        if shutil.which("numactl"):
            command.append("--bind_cores_to_rank")
        return [*command, "--no_local_rank", "--module", *worker[1:]]
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", "--nproc_per_node", str(training.nproc_per_node),
        *worker,
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_env(training: TrainingConfig, cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)  # HF_HUB_OFFLINE and friends pass through
    # One thread per process per core: two processes each using every core run ~15x slower.
    env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // training.nproc_per_node))
    # DeepSpeed compiles its CPU ops once; keep them where the next run finds them.
    env.setdefault("TORCH_EXTENSIONS_DIR", str(cache_dir / "torch_extensions"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(_PROJECT_ROOT), env.get("PYTHONPATH", "")] if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen) -> None:
    """End the launcher and its workers (their own process group), politely first."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def finetune(
    base_model: str,
    examples_path: Path,
    out_dir: Path,
    training: TrainingConfig,
    *,
    deepspeed_config: Path,
    on_event: Callable[[dict], None] | None = None,
    cache_dir: Path | None = None,
) -> TrainResult:
    """Fine-tune `base_model` (a local path or a hub id) with LoRA on `examples_path` (the training set) and
    save the adapter to `out_dir/adapter`. A rerun with the same inputs and config resumes from the last
    checkpoint in `out_dir`. Each worker event is passed to `on_event`; if it raises, training is stopped.
    `cache_dir` holds DeepSpeed's compiled ops (default: out_dir's parent/cache) unless TORCH_EXTENSIONS_DIR is set.
    """
    started = time.perf_counter()
    out_dir, examples_path, deepspeed_config = Path(out_dir), Path(examples_path), Path(deepspeed_config)
    local_files_only = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    if not examples_path.is_file():
        raise TrainingError(f"training set not found: {examples_path}")
    if not deepspeed_config.is_file():
        raise TrainingError(f"DeepSpeed config not found: {deepspeed_config}")
    check_base_model(base_model, training.max_length, local_files_only)

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "base_model": base_model,
        "examples_path": str(examples_path.resolve()),
        "output_dir": str(out_dir.resolve()),
        "deepspeed_config": str(deepspeed_config.resolve()),
        "config_hash": config_hash(base_model, examples_path, training, deepspeed_config),
        "local_files_only": local_files_only,
        "training": training.model_dump(mode="json"),
    }
    spec_path = out_dir / "run.json"
    spec_path.write_text(json.dumps(spec, indent=2))

    env = worker_env(training, Path(cache_dir) if cache_dir else out_dir.parent / "cache")
    events: list[dict] = []
    stderr_path = out_dir / "worker.stderr.log"
    with open(out_dir / "worker.log", "a") as log, open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            build_command(training, spec_path),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: stopping it stops every rank
        )
        try:
            for line in process.stdout:
                event = _parse_event(line)
                if event is None:
                    log.write(line)
                    continue
                events.append(event)
                if on_event is not None:
                    on_event(event)
            returncode = process.wait()
        except BaseException:
            _stop(process)
            raise

    errors = [e["message"] for e in events if e.get("event") == "error"]
    if errors:
        raise TrainingError(f"training failed: {errors[0]}")
    if returncode != 0:
        tail = collections.deque(stderr_path.read_text(errors="replace").splitlines(), maxlen=12)
        raise TrainingError(f"training failed (exit code {returncode}); last stderr lines:\n" + "\n".join(tail))
    start = next((e for e in events if e["event"] == "start"), {})
    done = next((e for e in events if e["event"] == "done"), None)
    if done is None:
        raise TrainingError(f"the training worker ended without finishing; see {out_dir / 'worker.log'}")
    return TrainResult(
        adapter_dir=Path(done["adapter_dir"]),
        steps=done["steps"],
        loss_first=done["loss_first"],
        loss_last=done["loss_last"],
        eval_loss=done["eval_loss"],
        tokens_per_s=done["tokens_per_s"],
        wall_s=round(time.perf_counter() - started, 2),
        resumed_from_step=start.get("resumed_from_step"),
        metrics=[e for e in events if e["event"] == "step"],
    )


def _parse_event(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
