"""Flow: drift report of the data merged since the production model was trained; drift ⇒ event ⇒ retrain."""

from __future__ import annotations

from prefect import flow

from flows.heartbeats import leave_heartbeat_threads_unjoined
from retune.cache import StageCache, drift_key
from retune.config import Config, load_config
from retune.registry import ModelVersion, Registry
from retune.runs import new_run_id
from retune.store import open_store
from tasks.drift import Monitoring, drift
from tasks.stages import stages

leave_heartbeat_threads_unjoined()  # no second of waiting at the end of each flow run


@flow(name="monitor")
def monitor_flow(config: str = "retune.yaml") -> Monitoring:
    """Compare the production model's training data with everything merged since (Evidently); the same two
    commits were compared before: the report is reused (and the drift event not raised twice)."""
    cfg = load_config(config)
    _, reference, main = compared_commits(cfg)
    with stages(cfg, "monitor") as stage:
        return stage.run("drift", drift, cfg, cfg.path("runs") / new_run_id(), key=drift_key(cfg, reference, main))


def compared_commits(cfg: Config) -> tuple[ModelVersion | None, str, str]:
    """(the production model, the dataset commit it was trained on or "", main's head): what drift compares."""
    store = open_store(cfg)
    production = Registry(store).production()
    return production, production.lineage["dataset_commit"] if production else "", store.resolve("main")


def drift_pending(cfg: Config) -> bool:
    """Whether the monitor flow has a report to compute: a production model, data merged since it was trained,
    and these two commits not compared before (the flow would reuse that report)."""
    production, reference, main = compared_commits(cfg)
    if production is None:
        return False
    recorded = StageCache(cfg.path("cache/stages")).get("drift", drift_key(cfg, reference, main))
    return main != reference and recorded is None
