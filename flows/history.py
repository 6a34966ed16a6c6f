"""Recent retune runs read back from the Prefect API, for `retune history`."""

from __future__ import annotations

from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import get_current_settings

FLOW_NAMES = ["retune-run", "ingest", "retrain", "monitor"]


# The artifacts whose one-line descriptions tell what a run did, in the order a person reads them.
SUMMARY_KEYS = ("dataset-version", "retrain-skipped", "finetune", "export", "promotion", "drift")


@dataclass
class RunRow:
    flow: str
    name: str
    state: str
    started: str
    duration: str
    url: str
    summary: str  # data commit, model version, key metrics: from the run's artifacts
    cost: str = ""  # estimated cost, CPU- and GPU-seconds: the run's `run-cost` artifact


def recent_runs(limit: int = 15) -> list[RunRow]:
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=FLOW_NAMES)))}
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=FLOW_NAMES)), sort=FlowRunSort.START_TIME_DESC, limit=limit
        )
        # Without a configured server the API is a temporary one: its links would be dead on arrival.
        configured = bool(get_current_settings().api.url)
        ui = str(client.api_url).rstrip("/").removesuffix("/api") if configured and client.api_url else ""
        summaries = {r.id: _summary(client, r.id) for r in runs}
        costs = {r.id: _cost(client, r.id) for r in runs}
    return [
        RunRow(
            flow=flows.get(r.flow_id, "?"),
            name=r.name,
            state=r.state_name or "?",
            started=r.start_time.strftime("%Y-%m-%d %H:%M:%S") if r.start_time else "-",
            duration=f"{r.total_run_time.total_seconds():.0f} s",
            url=f"{ui}/runs/flow-run/{r.id}" if ui else "",
            summary=summaries[r.id],
            cost=costs[r.id],
        )
        for r in runs
    ]


def _summary(client, flow_run_id) -> str:
    """What the run and its subflows recorded, e.g. "main at 3f2a…; loss 2.1 → 0.9; Promoted v2 …"."""
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=_run_tree(client, flow_run_id)))
    )
    by_key = {a.key: a.description for a in artifacts if a.key in SUMMARY_KEYS and a.description}
    return "; ".join(by_key[k] for k in SUMMARY_KEYS if k in by_key)


def _cost(client, flow_run_id) -> str:
    """The run's own cost line (a subflow's says it is part of its parent's run)."""
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )
    return next((a.description for a in artifacts if a.key == "run-cost" and a.description), "")


def _run_tree(client, flow_run_id) -> list:
    """A flow run and its subflow runs (the `retune-run` flow records its stages in subflows)."""
    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    )
    return [flow_run_id] + [c.id for c in children]

