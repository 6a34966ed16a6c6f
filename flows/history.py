"""Recent retune runs read back from the Prefect API, for `retune history`."""

from __future__ import annotations

from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort

FLOW_NAMES = ["retune-run", "ingest", "retrain", "monitor"]


@dataclass
class RunRow:
    flow: str
    name: str
    state: str
    started: str
    duration: str
    url: str


def recent_runs(limit: int = 15) -> list[RunRow]:
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=FLOW_NAMES)))}
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=FLOW_NAMES)), sort=FlowRunSort.START_TIME_DESC, limit=limit
        )
        ui = str(client.api_url).rstrip("/").removesuffix("/api") if client.api_url else ""
    return [
        RunRow(
            flow=flows.get(r.flow_id, "?"),
            name=r.name,
            state=r.state_name or "?",
            started=r.start_time.strftime("%Y-%m-%d %H:%M:%S") if r.start_time else "-",
            duration=f"{r.total_run_time.total_seconds():.0f} s",
            url=f"{ui}/runs/flow-run/{r.id}" if ui else str(r.id),
        )
        for r in runs
    ]
