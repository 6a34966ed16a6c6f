"""Flow: look at the landing locations and announce new files (the `ingest` deployment listens)."""

from __future__ import annotations

from prefect import flow

from flows.heartbeats import leave_heartbeat_threads_unjoined
from retune.config import load_config
from retune.watch import LandedFile
from tasks.watch import watch

leave_heartbeat_threads_unjoined()  # no second of waiting at the end of each flow run


@flow(name="watch")
def watch_flow(config: str = "retune.yaml") -> list[LandedFile]:
    """Emit `retune.data.arrived` for files whose content was never seen before."""
    return watch(load_config(config))
