"""Flow: drift report of the data merged since the production model was trained; drift ⇒ event ⇒ retrain."""

from __future__ import annotations

from prefect import flow

from retune.config import load_config
from retune.runs import new_run_id
from tasks.drift import Monitoring, drift


@flow(name="monitor")
def monitor_flow(config: str = "retune.yaml") -> Monitoring:
    """Compare the production model's training data with everything merged since (Evidently)."""
    cfg = load_config(config)
    return drift(cfg, cfg.path("runs") / new_run_id())
