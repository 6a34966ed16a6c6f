"""Flow: the whole loop once — ingest new data, report drift against production, retrain, promote if better."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import flow

from flows.heartbeats import leave_heartbeat_threads_unjoined
from flows.ingest import ingest_flow, source_configs
from flows.monitor import drift_pending, monitor_flow
from flows.retrain import retrain_flow, retrain_needed
from retune.config import Config, load_config
from tasks.ingest import unread_files
from tasks.stages import stages
from tasks.summary import summarize

leave_heartbeat_threads_unjoined()  # no second of waiting at the end of each flow run

T = TypeVar("T")


@flow(name="retune-run")
def run_flow(
    config: str = "retune.yaml", sources: list[str] | None = None, force: bool = False
) -> list[tuple[str, str]]:
    """ingest → anonymize → validate → version → drift report → fine-tune → export → evaluate → promote.

    The fine-tune runs when enough new data arrived, when drift was detected, or when forced; every stage whose
    inputs did not change is reused. Ingest, monitor and retrain show as subflow runs when they have work to do;
    with nothing new their checks run inside this run. The run's cost, stage by stage, is in its `run-cost` table.
    """
    cfg = load_config(config)
    with stages(cfg, "retune-run") as stage:  # subflows' stages join this run's cost account
        ingested = subflow_if(has_files_to_read(cfg, sources), ingest_flow, config, sources)
        monitored = subflow_if(drift_pending(cfg), monitor_flow, config)
        drifted = monitored.result is not None and monitored.result.drift_detected
        commit = ingested.dataset.commit if ingested.dataset else None
        retrained = subflow_if(retrain_needed(cfg, commit, force or drifted), retrain_flow, config, commit,
                               force or drifted)
    return summarize(ingested, monitored, retrained, stage.account)


def subflow_if(has_work: bool, subflow: Callable[..., T], *args: Any) -> T:
    """A flow with work to do runs as a subflow: its own run, logs and artifacts in the UI. One without runs its
    body inline, the same stages and checks in this run: starting a flow run costs a few tenths of a second
    (creation, state changes, its heartbeat thread), most of a run that finds nothing new. The check only picks
    where the body runs, never what it does, so a wrong guess costs time, not results."""
    return subflow(*args) if has_work else subflow.fn(*args)  # type: ignore[attr-defined]


def has_files_to_read(cfg: Config, sources: list[str] | None) -> bool:
    """Whether ingest would read any source file (one not in the ledger of files already ingested)."""
    unread, _ = unread_files(cfg, source_configs(cfg, sources))
    return bool(unread)
