"""A flow's stage runner: reuse a stage's recorded output when its cache key matches, measure what each stage
cost, and leave the run's cost table (artifact, log, ledger line)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from retune import cost
from retune.cache import StageCache
from retune.config import Config
from retune.report import human_bytes
from retune.runs import new_run_id

T = TypeVar("T")


class Stages:
    """The stages of one flow run. Subflows' stages join the account of the run that called them, so a
    `retune run` has one cost table with every stage of ingest, monitor and retrain."""

    def __init__(self, cfg: Config, account: cost.RunCost, top_level: bool) -> None:
        self.cfg = cfg
        self.account = account
        self.top_level = top_level
        self.cache = StageCache(cfg.path("cache/stages"))
        self._store_bytes = store_bytes_counter(cfg)

    def run(
        self, name: str, fn: Callable[..., T], *args: Any, key: str | None = None,
        on_hit: Callable[[T], T] | None = None, **kwargs: Any,
    ) -> T:
        """Call `fn` (a task or a subflow) as stage `name`; with a `key` whose output was recorded, reuse it."""
        logger = get_run_logger()
        if key is not None:
            hit = self.cache.get(name, key)
            if hit is not None:
                detail = f"cached (key {key})"
                logger.info("%s: skipped: %s", name, detail)
                self.account.stages.append(cost.StageCost(name, "cached", detail, key))
                result = on_hit(hit) if on_hit is not None else hit
                self._note(result)
                return result
        stage = cost.StageCost(name, "ran", key=key or "")
        try:
            with cost.measure(stage, self._store_bytes):
                result = fn(*args, **kwargs)
        except BaseException as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            stage.status, stage.detail = "failed", f"{type(exc).__name__}: {first_line}"
            self.account.stages.append(stage.priced(self.cfg.cost))
            raise
        stage.tokens = tokens_in(result)
        stage.gpu_s = round(getattr(result, "gpus", 0) * getattr(result, "wall_s", 0.0), 3)
        stage.gpu_type = getattr(result, "gpu_type", "")
        stage.detail = detail_of(result)
        self.account.stages.append(stage.priced(self.cfg.cost))
        if key is not None:
            self.cache.put(name, key, result)
        self._note(result)
        logger.info("%s: ran in %.1f s (%.1f CPU-s)%s", name, stage.wall_s, stage.cpu_s,
                    f", key {key}" if key else "")
        return result

    def dataset(self, commit: str) -> None:
        """The dataset commit the run works on, recorded with its cost in the ledger."""
        self.account.dataset_commit = commit

    def _note(self, result: object) -> None:
        if getattr(result, "promoted", None) is not None:  # a Promotion: the version this run's cost goes to
            self.account.model_version = str(result.version)

    def skip(self, names: list[str], reason: str) -> None:
        """Stages that were not needed in this run, and why (the run summary lists them)."""
        for name in names:
            self.account.stages.append(cost.StageCost(name, "skipped", reason))
        get_run_logger().info("skipped %s: %s", ", ".join(names), reason)


def store_bytes_counter(cfg: Config) -> Callable[[], int]:
    """What a stage stored: the local store's growth on disk (content-addressed: only new bytes count), or the
    bytes this process uploaded to lakeFS."""
    if cfg.store.backend == "lakefs":
        from retune.store.lakefs import uploaded_bytes

        return uploaded_bytes
    root = cfg.path(cfg.store.path)
    return lambda: cost.store_size(root)


@contextlib.contextmanager
def stages(cfg: Config, flow: str) -> Iterator[Stages]:
    """Open the cost account of a flow run (or join the calling run's, also when its body runs inline); at the
    end of a top-level run, add the orchestration overhead as a stage, price it, and leave the cost table
    artifact and the ledger line."""
    run = cost.RunCost(
        run_id=new_run_id(), flow=flow, flow_run_id=str(flow_run.id or ""), flow_run_name=str(flow_run.name or ""),
        currency_unit=cfg.cost.currency,
    )
    top_level = cost.current_run() is None
    try:
        with cost.account(run) as (account, _):
            first = len(account.stages)
            try:
                yield Stages(cfg, account, top_level)
            finally:
                if not top_level and run.flow_run_id != account.flow_run_id:  # a subflow run: its own table too
                    _table_artifact(account, account.stages[first:], cfg, part_of=account.flow)
    finally:
        if top_level:  # also when the run failed (a budget stop): what it spent is still recorded
            _finish(cfg, run)


def _finish(cfg: Config, run: cost.RunCost) -> None:
    run.stages.append(run.orchestration().priced(cfg.cost))
    cost.CostLedger(cost.ledger_path(cfg.path("."))).append(run)
    _table_artifact(run, run.stages, cfg)
    total = run.totals()
    get_run_logger().info(
        "run cost: %.1f s wall, %.1f CPU-s, %.1f GPU-s, %d tokens, %s to the store: %.4f %s (%s)",
        total.wall_s, total.cpu_s, total.gpu_s, total.tokens, human_bytes(total.store_bytes), total.currency,
        run.currency_unit, ", ".join(f"{s.stage} {s.status}" for s in run.stages if s.stage != "orchestration"),
    )


def cost_rows(stages: list[cost.StageCost], unit: str) -> list[dict[str, object]]:
    rows = [_row(s, unit) for s in stages]
    total = cost.RunCost("", "", stages=list(stages)).totals()
    rows.append(_row(total, unit))
    return rows


def _row(s: cost.StageCost, unit: str) -> dict[str, object]:
    return {
        "stage": s.stage,
        "status": s.status if s.status in ("ran", "failed", "") else f"skipped: {s.detail}",
        "wall s": round(s.wall_s, 2),
        "CPU s": round(s.cpu_s, 2),
        "of which child processes": round(s.child_cpu_s, 2),
        "peak memory": human_bytes(s.peak_rss_bytes) if s.peak_rss_bytes else "-",
        "GPU s": round(s.gpu_s, 2),
        "tokens": s.tokens,
        "store bytes": human_bytes(s.store_bytes),
        f"est. {unit}": round(s.currency, 6),
    }


def _table_artifact(run: cost.RunCost, stage_list: list[cost.StageCost], cfg: Config, part_of: str = "") -> None:
    total = cost.RunCost("", "", stages=list(stage_list)).totals()
    create_table_artifact(
        cost_rows(stage_list, run.currency_unit),
        key="run-cost",
        description=cost_summary(total, run.currency_unit) + (f" (part of a {part_of} run)" if part_of else ""),
    )


def cost_summary(total: cost.StageCost, unit: str) -> str:
    """One line for `retune history`: estimated cost, CPU and GPU seconds."""
    return f"{total.currency:.4f} {unit} · {total.cpu_s:.0f} CPU-s · {total.gpu_s:.0f} GPU-s"


def tokens_in(result: object) -> int:
    """Tokens a stage processed: trained (TrainResult.tokens) or scored (evaluation metrics per model)."""
    if isinstance(result, dict):
        return sum(int(getattr(m, "n_tokens", 0)) for m in result.values())
    return int(getattr(result, "tokens", 0) or 0)


def detail_of(result: object) -> str:
    """What a stage that ran wants said next to it (skipped source files, the retrain decision)."""
    report = getattr(result, "report", None)
    skipped = getattr(report, "skipped_files", None)
    if skipped:
        return f"{len(skipped)} unchanged source file(s) skipped"
    reason = getattr(result, "reason", None)
    return str(reason) if isinstance(reason, str) else ""



def refresh_production(cfg: Config) -> Callable[[Any], Any]:
    """For a reused promotion: the production version is the registry's now (a rollback since is not undone)."""

    def refresh(promotion: Any) -> Any:
        from retune.registry import Registry
        from retune.store import open_store

        production = Registry(open_store(cfg)).production()
        return dataclasses.replace(promotion, production=production.version if production else None)

    return refresh
