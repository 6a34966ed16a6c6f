"""Launch the training worker as a subprocess (torchrun or the DeepSpeed launcher) and follow its events."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import fcntl
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
from retune.cost import visible_gpus
from retune.errors import TrainingError

_PROJECT_ROOT = Path(__file__).resolve().parents[2]  # so the worker imports this retune, installed or not
CHECKPOINT_COMPLETE = "COMPLETE"  # written into step-N once every rank's shard is on disk
# Knobs that do not change the training trajectory: changing them keeps a run resumable.
NOT_IN_HASH = ("launcher", "checkpoint_every", "hostfile", "threads_per_process")


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
    # Why the run did not resume: None when it resumed or when out_dir held no earlier run.
    fresh_start_reason: str | None = None
    data: dict = field(default_factory=dict)  # truncation/packing counts per split (see dataset.DataCounts)
    method: str = "lora"  # "full": adapter_dir holds the whole fine-tuned model, not a peft adapter
    config_hash: str = ""
    tokens: int = 0  # tokens trained on in this launch (0 when a rerun found the run already finished)
    gpus: int = 0  # GPUs the ranks ran on (0 on CPU): GPU-seconds = gpus x wall_s
    gpu_type: str = ""  # the first GPU's device name


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
    knobs = training.model_dump(mode="json", exclude=set(NOT_IN_HASH))
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
    threads = training.threads_per_process or max(1, (os.cpu_count() or 1) // training.nproc_per_node)
    env["OMP_NUM_THREADS"] = str(threads)
    # DeepSpeed compiles its CPU ops once; keep them where the next run finds them.
    env.setdefault("TORCH_EXTENSIONS_DIR", str(cache_dir / "torch_extensions"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(_PROJECT_ROOT), env.get("PYTHONPATH", "")] if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def complete_checkpoints(ckpt_dir: Path) -> list[int]:
    """Steps of the checkpoints in `ckpt_dir` (the worker's step-N folders) that were written whole, oldest
    first: a step-N folder counts only once the worker has put CHECKPOINT_COMPLETE in it."""
    steps = []
    for path in Path(ckpt_dir).glob("step-*"):
        if (path / CHECKPOINT_COMPLETE).exists() and path.name[5:].isdigit():
            steps.append(int(path.name[5:]))
    return sorted(steps)


def resume_plan(out_dir: Path, spec: dict) -> tuple[int | None, str | None]:
    """(step the worker will resume from, or None; why it starts fresh, or None when there was no earlier run).
    Checkpoints of another config hash cannot be resumed: they are deleted, and the reason names what changed."""
    checkpoints = out_dir / "checkpoints"
    steps = complete_checkpoints(checkpoints / spec["config_hash"])
    if steps:
        return steps[-1], None
    others = [d for d in checkpoints.glob("*") if d.is_dir() and d.name != spec["config_hash"]]
    previous_spec = out_dir / "run.json"
    reason = None
    if others:
        changed = _changed_knobs(json.loads(previous_spec.read_text()), spec) if previous_spec.exists() else []
        found = [f"{d.name} at step {max(complete_checkpoints(d), default=0)}" for d in others]
        reason = (
            "config changed since the last run in this directory"
            + (f" ({', '.join(changed)})" if changed else "")
            + f": starting fresh; discarded checkpoints {', '.join(found)}"
        )
        for d in others:
            shutil.rmtree(d, ignore_errors=True)
    elif (checkpoints / spec["config_hash"]).exists():
        reason = "the earlier run of this config ended before its first complete checkpoint: starting fresh"
    return None, reason


def _changed_knobs(before: dict, after: dict) -> list[str]:
    changed = [
        f"training.{k}: {before.get('training', {}).get(k)!r} -> {v!r}"
        for k, v in after["training"].items()
        if before.get("training", {}).get(k) != v and k not in NOT_IN_HASH
    ]
    if before.get("base_model") != after["base_model"]:
        changed.append(f"base_model: {before.get('base_model')!r} -> {after['base_model']!r}")
    if before.get("examples_sha256") != after.get("examples_sha256"):
        changed.append("training set contents")
    if before.get("deepspeed_sha256") != after.get("deepspeed_sha256"):
        changed.append("DeepSpeed config")
    return changed


def _lock(out_dir: Path):
    """An exclusive lock on out_dir for this launch; the OS drops it when the holder dies (even by kill -9)."""
    handle = open(out_dir / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise TrainingError(f"another fine-tune is running in {out_dir}: wait for it or stop it") from None
    return handle


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies. Used twice: by the launcher (torchrun runs in
    its own session, so a `kill -9` of the flow process would leave it running) and by every rank (torchrun
    starts them in their own sessions too): a killed run never leaves training processes writing checkpoints
    beside the rerun."""
    if not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


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
    """Fine-tune `base_model` (a local path or a hub id) with LoRA (or fully: training.method) on
    `examples_path` (the training set) and save the adapter to `out_dir/adapter` (full: the model to
    `out_dir/model`). A rerun with the same inputs and config (same config hash) resumes from the last complete
    checkpoint in `out_dir`, also after a kill -9, and ends at the same step; a changed config starts fresh and
    says why in the start event and `TrainResult.fresh_start_reason`. Events (launch, start, step, checkpoint,
    done) are passed to `on_event`; if it raises, training is stopped.
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
    lock = _lock(out_dir)
    try:
        return _launch(base_model, examples_path, out_dir, training, deepspeed_config, local_files_only,
                       on_event, cache_dir, started)
    finally:
        lock.close()


def _launch(
    base_model: str,
    examples_path: Path,
    out_dir: Path,
    training: TrainingConfig,
    deepspeed_config: Path,
    local_files_only: bool,
    on_event: Callable[[dict], None] | None,
    cache_dir: Path | None,
    started: float,
) -> TrainResult:
    spec = {
        "base_model": base_model,
        "examples_path": str(examples_path.resolve()),
        "output_dir": str(out_dir.resolve()),
        "deepspeed_config": str(deepspeed_config.resolve()),
        "config_hash": config_hash(base_model, examples_path, training, deepspeed_config),
        "examples_sha256": hashlib.sha256(examples_path.read_bytes()).hexdigest(),
        "deepspeed_sha256": hashlib.sha256(deepspeed_config.read_bytes()).hexdigest(),
        "local_files_only": local_files_only,
        "training": training.model_dump(mode="json"),
    }
    _, spec["fresh_start_reason"] = resume_plan(out_dir, spec)
    spec_path = out_dir / "run.json"
    spec_path.write_text(json.dumps(spec, indent=2))

    env = worker_env(training, Path(cache_dir) if cache_dir else out_dir.parent / "cache")
    events: list[dict] = []
    stderr_path = out_dir / "worker.stderr.log"
    # worker.log unbuffered: on a full disk a line is lost, and the worker's own error still reaches the user
    with open(out_dir / "worker.log", "ab", buffering=0) as log, open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            build_command(training, spec_path),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: stopping it stops every rank
            preexec_fn=die_with_parent,  # and it dies with the flow process that launched it
        )
        try:
            launched = {"event": "launch", "pid": process.pid, "config_hash": spec["config_hash"]}
            events.append(launched)
            if on_event is not None:
                on_event(launched)
            for line in process.stdout:
                event = _parse_event(line)
                if event is None:
                    with contextlib.suppress(OSError):
                        log.write(line.encode())
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
    visible, gpu_type = visible_gpus()
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
        fresh_start_reason=start.get("fresh_start_reason"),
        data=start.get("data", {}),
        method=done.get("method", "lora"),
        config_hash=spec["config_hash"],
        tokens=int(done.get("tokens", 0)),
        gpus=min(visible, training.nproc_per_node) if visible else 0,
        gpu_type=gpu_type if visible else "",
    )


def _parse_event(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
