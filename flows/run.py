"""Flow: the whole loop once — ingest new data, report drift against production, retrain, promote if better."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest_flow
from flows.monitor import monitor_flow
from flows.retrain import retrain_flow
from retune.config import load_config
from tasks.stages import stages
from tasks.summary import summarize


@flow(name="retune-run")
def run_flow(
    config: str = "retune.yaml", sources: list[str] | None = None, force: bool = False
) -> list[tuple[str, str]]:
    """ingest → anonymize → validate → version → drift report → fine-tune → export → evaluate → promote.

    The fine-tune runs when enough new data arrived, when drift was detected, or when forced; every stage whose
    inputs did not change is reused. The run's cost, stage by stage, is in its `run-cost` table.
    """
    with stages(load_config(config), "retune-run") as stage:
        ingested = ingest_flow(config, sources)  # subflows' stages join this run's cost account
        monitored = monitor_flow(config)
        drifted = monitored.result is not None and monitored.result.drift_detected
        retrained = retrain_flow(config, ingested.dataset.commit if ingested.dataset else None, force or drifted)
    return summarize(ingested, monitored, retrained, stage.account)
