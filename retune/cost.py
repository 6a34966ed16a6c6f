"""What a run cost: per stage wall/CPU seconds (child processes included), peak memory, GPU-seconds, tokens and
bytes written to the store, priced from the config, kept in a ledger in the workdir that `retune cost` sums."""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import json
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retune.config import BudgetConfig, CostConfig
from retune.errors import RetuneError

LEDGER = "cost/ledger.jsonl"  # under the workdir: one JSON line per top-level run
_SAMPLE_EVERY_S = 0.2  # peak-memory sampling period; a stage shorter than this still gets one sample


class BudgetExceeded(RetuneError):
    """A run's projected cost is above the configured `cost.budget`."""


@dataclass
class StageCost:
    stage: str
    status: str  # "ran", "cached" (output reused), "skipped" (not needed), "failed"
    detail: str = ""  # why it was skipped or reused, e.g. "cached (key 3f2a…)"
    key: str = ""  # the cache key the stage ran or was reused under
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system of this process and of the child processes it waited for (training ranks)
    child_cpu_s: float = 0.0  # the child processes' part of cpu_s
    peak_rss_bytes: int = 0  # this process and its descendants, sampled
    gpu_s: float = 0.0  # GPU-seconds: GPUs used x wall time
    gpu_type: str = ""
    tokens: int = 0  # processed in training (this launch) and scored in evaluation
    store_bytes: int = 0  # bytes the stage added to the store
    currency: float = 0.0  # estimated from the unit prices in the config

    def priced(self, prices: CostConfig) -> StageCost:
        self.currency = estimate(prices, self.cpu_s, self.gpu_s, self.gpu_type, self.store_bytes)
        return self


@dataclass
class RunCost:
    """One flow run's cost account; subflows add their stages to the account of the run that called them."""

    run_id: str
    flow: str
    flow_run_id: str = ""
    flow_run_name: str = ""
    started: str = ""  # ISO 8601, UTC
    finished: str = ""
    status: str = "running"  # "completed" or "failed: <error type>"
    currency_unit: str = "USD"
    wall_s: float = 0.0  # the whole run, measured on its own (stage walls + orchestration)
    cpu_s: float = 0.0
    dataset_commit: str = ""
    model_version: str = ""  # the version the run registered or reused; "" when it produced none
    stages: list[StageCost] = field(default_factory=list)

    def totals(self) -> StageCost:
        """The sum of the stages (peak memory: the largest)."""
        total = StageCost("total", "")
        for s in self.stages:
            total.wall_s += s.wall_s
            total.cpu_s += s.cpu_s
            total.child_cpu_s += s.child_cpu_s
            total.gpu_s += s.gpu_s
            total.tokens += s.tokens
            total.store_bytes += s.store_bytes
            total.currency += s.currency
            total.peak_rss_bytes = max(total.peak_rss_bytes, s.peak_rss_bytes)
        return total

    def orchestration(self) -> StageCost:
        """What the run spent outside its stages (flow and subflow start-up, the summary): the whole run, measured
        on its own, minus its stages. Added as the last stage, the stages add up to the run."""
        total = self.totals()
        return StageCost(
            "orchestration", "ran", "flow and subflow start-up, summary",
            wall_s=round(max(0.0, self.wall_s - total.wall_s), 3), cpu_s=round(max(0.0, self.cpu_s - total.cpu_s), 3),
        )

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunCost:
        known = {f.name for f in fields(StageCost)}
        stages = [StageCost(**{k: v for k, v in s.items() if k in known}) for s in data.get("stages", [])]
        run_known = {f.name for f in fields(cls)} - {"stages"}
        return cls(**{k: v for k, v in data.items() if k in run_known}, stages=stages)


def estimate(prices: CostConfig, cpu_s: float, gpu_s: float, gpu_type: str, store_bytes: int) -> float:
    """Currency: CPU core-hours and GPU-hours at their hourly prices, plus one month of storing what was written."""
    return (cpu_s / 3600 * prices.cpu_hour + gpu_s / 3600 * gpu_price(prices, gpu_type)
            + store_bytes / 1e9 * prices.storage_gb_month)


def gpu_price(prices: CostConfig, device_name: str) -> float:
    """The hourly price of the GPU type whose name the device name contains ("NVIDIA A100-SXM4-40GB" -> A100)."""
    for gpu_type, price in prices.gpu_hour.items():
        if gpu_type != "default" and device_name and gpu_type.lower() in device_name.lower():
            return price
    return prices.gpu_hour.get(prices.gpu_type, prices.gpu_hour.get("default", 0.0))


# ---- measuring a stage ---------------------------------------------------------------------------------------


def _cpu_seconds() -> float:
    return _own_cpu_seconds() + _children_cpu_seconds()


def _own_cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _children_cpu_seconds() -> float:
    """Child processes that ended and were waited for (a launcher's ranks roll up into it when it waits for them)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def _process_tree(pid: int | None) -> list:
    """A process and all its descendants (psutil handles), or [] when it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process and all its descendants (the launcher and its training ranks)."""
    import psutil

    total = 0
    for p in _process_tree(pid):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a running process and its live descendants (for a projection mid-run)."""
    import psutil

    total = 0.0
    for p in _process_tree(pid):
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


class _PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True, name="retune-peak-rss")
        self.peak = tree_rss_bytes()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(_SAMPLE_EVERY_S):
            self.peak = max(self.peak, tree_rss_bytes())

    def stop(self) -> int:
        self._done.set()
        self.join(timeout=2)
        return max(self.peak, tree_rss_bytes())


def store_size(store_root: Path | None) -> int:
    """Bytes under a local store's directory (content-addressed: growth = what was written); 0 if not local."""
    if store_root is None or not store_root.is_dir():
        return 0
    total = 0
    for dirpath, _, files in os.walk(store_root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


@contextlib.contextmanager
def measure(stage: StageCost, store_bytes: Callable[[], int] = lambda: 0) -> Iterator[StageCost]:
    """Fill `stage` with what the block used, also when the block raises. `store_bytes` reads a counter of bytes
    in (or written to) the store: its growth over the block is what the stage stored."""
    sampler = _PeakSampler()
    sampler.start()
    bytes_before, started = store_bytes(), time.perf_counter()
    own_before, children_before = _own_cpu_seconds(), _children_cpu_seconds()
    try:
        yield stage
    finally:
        stage.wall_s = round(time.perf_counter() - started, 3)
        stage.child_cpu_s = round(_children_cpu_seconds() - children_before, 3)
        stage.cpu_s = round(_own_cpu_seconds() - own_before + stage.child_cpu_s, 3)
        stage.peak_rss_bytes = sampler.stop()
        stage.store_bytes = max(0, store_bytes() - bytes_before)


def visible_gpus() -> tuple[int, str]:
    """(CUDA devices this process can see, the first one's name); (0, "") on a CPU machine."""
    try:
        import torch
    except ImportError:
        return 0, ""
    if not torch.cuda.is_available():
        return 0, ""
    return torch.cuda.device_count(), torch.cuda.get_device_name(0)


# ---- the run's account --------------------------------------------------------------------------------------

_current: contextvars.ContextVar[RunCost | None] = contextvars.ContextVar("retune_run_cost", default=None)


def current_run() -> RunCost | None:
    """The account of the run in progress in this context (a subflow sees its parent's)."""
    return _current.get()


@contextlib.contextmanager
def account(run: RunCost) -> Iterator[tuple[RunCost, bool]]:
    """Open `run` as the current account, or join the one already open (a subflow's stages count in the run that
    called it). Yields (the account stages go to, whether this one is the top level)."""
    outer = _current.get()
    if outer is not None:
        yield outer, False
        return
    token = _current.set(run)
    cpu_before, started = _cpu_seconds(), time.perf_counter()
    run.started = run.started or datetime.now(UTC).isoformat(timespec="seconds")
    try:
        yield run, True
        run.status = "completed"
    except BaseException as exc:
        run.status = f"failed: {type(exc).__name__}"
        raise
    finally:
        run.wall_s = round(time.perf_counter() - started, 3)
        run.cpu_s = round(_cpu_seconds() - cpu_before, 3)
        run.finished = datetime.now(UTC).isoformat(timespec="seconds")
        _current.reset(token)


# ---- budgets --------------------------------------------------------------------------------------------------


@dataclass
class Projection:
    """Where a run will end up if the fine-tune goes on at its current pace."""

    step: int
    max_steps: int
    tokens_per_s: float
    eta_s: float
    cpu_hours: float  # the whole run: stages so far + the fine-tune so far + what its remaining steps will use
    gpu_hours: float
    currency: float

    def line(self, unit: str) -> str:
        return (
            f"at step {self.step}/{self.max_steps} ({self.tokens_per_s:.0f} tokens/s, {self.eta_s:.0f} s to go) "
            f"the run is projected to use {self.cpu_hours:.4f} CPU-hours, {self.gpu_hours:.4f} GPU-hours, "
            f"{self.currency:.4f} {unit}"
        )


def project_finetune(
    prices: CostConfig, spent: StageCost, step: int, max_steps: int, tokens_per_s: float, eta_s: float,
    elapsed_s: float, cpu_s_so_far: float, gpus: int, gpu_type: str,
) -> Projection:
    """Extrapolate the fine-tune's CPU rate (CPU seconds per wall second so far) over its remaining time."""
    cpu_rate = cpu_s_so_far / elapsed_s if elapsed_s > 0 else 0.0
    cpu_s = spent.cpu_s + cpu_s_so_far + cpu_rate * eta_s
    gpu_s = spent.gpu_s + gpus * (elapsed_s + eta_s)
    currency = spent.currency + estimate(prices, cpu_s - spent.cpu_s, gpu_s - spent.gpu_s, gpu_type, 0)
    return Projection(step, max_steps, tokens_per_s, eta_s, cpu_s / 3600, gpu_s / 3600, currency)


def over_budget(budget: BudgetConfig, projection: Projection) -> str | None:
    """The first limit the projection breaks, as "cost.budget.NAME LIMIT", or None."""
    for name, value in (("max_cpu_hours", projection.cpu_hours), ("max_gpu_hours", projection.gpu_hours),
                        ("max_currency", projection.currency)):
        limit = getattr(budget, name)
        if limit is not None and value > limit:
            return f"cost.budget.{name} {limit:g}"
    return None


# ---- the ledger ------------------------------------------------------------------------------------------------


class CostLedger:
    """Run costs as JSON lines in the workdir: readable without any Prefect server."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, run: RunCost) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(run.to_json(), sort_keys=True) + "\n"
        with open(self.path, "a") as f:  # one write under a lock: concurrent runs never interleave lines
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line)

    def read(self, since: timedelta | None = None, now: datetime | None = None) -> list[RunCost]:
        if not self.path.exists():
            return []
        cutoff = (now or datetime.now(UTC)) - since if since is not None else None
        runs = []
        for line in self.path.read_text().splitlines():
            try:
                run = RunCost.from_json(json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut by a crash: the others still count
            if cutoff is None or datetime.fromisoformat(run.started) >= cutoff:
                runs.append(run)
        return runs


@dataclass
class CostRow:
    name: str
    runs: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    gpu_s: float = 0.0
    tokens: int = 0
    store_bytes: int = 0
    currency: float = 0.0


def allocate(runs: list[RunCost], by: str) -> list[CostRow]:
    """Sum runs by "flow", "model" (the version a run registered or reused) or "stage", most expensive first."""
    rows: dict[str, CostRow] = {}

    def add(name: str, s: StageCost, wall: float, count: bool) -> None:
        row = rows.setdefault(name, CostRow(name))
        row.runs += int(count)
        row.wall_s += wall
        row.cpu_s += s.cpu_s
        row.gpu_s += s.gpu_s
        row.tokens += s.tokens
        row.store_bytes += s.store_bytes
        row.currency += s.currency

    for run in runs:
        if by == "stage":
            for s in run.stages:
                add(s.stage, s, s.wall_s, s.status == "ran")
            continue
        name = run.flow if by == "flow" else (run.model_version or "(no model)")
        total = run.totals()  # the stages include the run's orchestration: they add up to the whole run
        add(name, total, total.wall_s, True)
    return sorted(rows.values(), key=lambda r: (-r.currency, -r.cpu_s, r.name))


def ledger_path(workdir_path: Path) -> Path:
    return Path(workdir_path) / LEDGER
